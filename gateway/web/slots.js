// Free times, shared by the booking and manage pages: fetching them, one list per day, each time
// a button whose name says the day, the time and the zone, and the nearest free times to one
// that was just taken (so a taken time is never a dead end).

import { get } from './api.js';
import * as t from './time.js';
import { h, replaceKeepingFocus } from './ui.js';

/** A week of free times from `from` (YYYY-MM-DD in `zone`) in `box`, one list per day
 * (`button(slot)` makes each time's button), with the week's label and its buttons set. */
export async function showWeek(box, what, from, zone, button) {
  const to = t.addDays(from, 6);
  const slots = await fetchSlots(what, from, to, zone);
  document.querySelector('#week-label').textContent = `${t.keyLabel(from)} – ${t.keyLabel(to)}`;
  setEarlierEnabled(document.querySelector('#prev-week'), document.querySelector('#next-week'),
    from > t.todayKey(zone));
  renderSlotDays(box, slots, zone, button);
}

/** `what`: {therapistId, sessionType, modality}; `from`, `to`: YYYY-MM-DD in `zone`. */
export async function fetchSlots(what, from, to, zone) {
  const answer = await get(`/api/v1/therapists/${encodeURIComponent(what.therapistId)}/slots`, {
    query: { session_type: what.sessionType, modality: what.modality, from, to, tz: zone } });
  return answer.slots;
}

// " (09:00 London time)" when the clinic's wall clock differs from the client's, else "".
function clinicTime(iso, zone) {
  const clinic = t.clinicZone();
  const same = t.time(iso, zone) === t.time(iso, clinic) && t.dateKey(iso, zone) === t.dateKey(iso, clinic);
  return same ? '' : ` (${t.time(iso, clinic)} ${t.placeName(clinic)} time)`;
}

/** A time's button. The eye sees "10:00 (09:00 London time)" under the day's heading (or the
 * date too when `long`); a screen reader hears "Tuesday 2 March 2027, 10:00 New York time
 * (09:00 London time)". */
export function slotButton(slot, zone, { pressed = false, long = false, onChoose }) {
  const day = long ? h('span', {}, `${t.day(slot.start, zone)}, `)
    : h('span', { class: 'visually-hidden' }, `${t.longDate(slot.start, zone)}, `);
  return h('button', { type: 'button', class: 'slot', 'data-start': slot.start,
    'aria-pressed': pressed ? 'true' : 'false', onclick: (event) => onChoose(slot, event.currentTarget) },
  day, t.time(slot.start, zone),
  h('span', { class: 'visually-hidden' }, ` ${t.placeName(zone)} time`),
  clinicTime(slot.start, zone));
}

/** Free times grouped by day in `zone`, each day a heading and a list of buttons. */
export function renderSlotDays(box, slots, zone, button) {
  if (!slots.length) {
    replaceKeepingFocus(box, h('p', { class: 'empty' }, 'No free times in these days. Try later dates.'));
    return;
  }
  const byDay = new Map();
  for (const slot of slots) {
    const key = t.dateKey(slot.start, zone);
    if (!byDay.has(key)) byDay.set(key, []);
    byDay.get(key).push(slot);
  }
  replaceKeepingFocus(box, [...byDay].map(([key, daySlots]) => {
    const id = `day-${box.id}-${key}`;
    return h('div', { class: 'day' },
      h('h3', { id }, t.keyLongLabel(key)),
      h('ul', { class: 'slot-list', 'aria-labelledby': id }, daySlots.map((slot) => h('li', {}, button(slot)))));
  }));
}

/** Up to `count` free times nearest to `wanted` (an instant just found taken), in time order. */
export async function nearestFree(what, wanted, zone, count = 4) {
  const day = t.dateKey(wanted, zone);
  const today = t.todayKey(zone);
  const from = day < t.addDays(today, 3) ? today : t.addDays(day, -3);
  const target = new Date(wanted).getTime();
  const distance = (slot) => Math.abs(new Date(slot.start).getTime() - target);
  try {
    const free = await fetchSlots(what, from, t.addDays(day, 14), zone);
    return free.filter((slot) => slot.start !== wanted)
      .sort((a, b) => distance(a) - distance(b)).slice(0, count)
      .sort((a, b) => new Date(a.start) - new Date(b.start));
  } catch {
    return [];
  }
}

/** The week navigation of a slot list: keeps the focus on a usable button when "Earlier" is
 * disabled at the first week. */
export function setEarlierEnabled(earlier, later, enabled) {
  const hadFocus = document.activeElement === earlier;
  earlier.disabled = !enabled;
  if (hadFocus && !enabled) later.focus();
}
