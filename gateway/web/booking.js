// The booking page: choose a therapist, a time (or a weekly course time), hold it, book it.

import { ApiError, explain, get, newKey, post } from './api.js';
import { calendarText, offerDownload } from './ics.js';
import * as t from './time.js';
import { $, MODALITY, busy, focusHeading, h, renderSlotDays, replace, say, show } from './ui.js';

const COURSE_SESSIONS = 16;
const zone = t.browserZone();
const state = {
  kind: 'single', sessionType: null, modality: 'in_person', specialty: '',
  therapist: null, sessionTypes: [], rooms: {}, weekFrom: t.todayKey(zone),
  slot: null, hold: null, holdTimer: null, option: null, skipWeeks: [], courseFrom: t.todayKey(zone),
};
const status = $('#status');

// --- step 1: session, specialty, modality, therapist -------------------------------------------

async function start() {
  $('#zone-name').textContent = `${t.placeName(zone)} (${zone})`;
  $('#course-from').value = state.courseFrom;
  $('#course-from').min = state.courseFrom;
  try {
    const [types, therapists, rooms] = await Promise.all([
      get('/api/v1/session-types'), get('/api/v1/therapists'), get('/api/v1/rooms')]);
    state.sessionTypes = types;
    state.rooms = Object.fromEntries(rooms.map((room) => [room.id, room.name]));
    replace($('#session-type'), types.map((type) => h('option', { value: type.id },
      `${type.name} (${type.duration_minutes} minutes)`)));
    const preferred = types.find((type) => type.id === 'dit-session') || types[0];
    if (preferred) $('#session-type').value = preferred.id;
    state.sessionType = $('#session-type').value;
    const specialties = [...new Set(therapists.flatMap((th) => th.specialties))].sort();
    $('#specialty').append(...specialties.map((s) => h('option', { value: s }, s)));
    await listTherapists();
  } catch (error) {
    say(status, explain(error), 'error');
  }
}

async function listTherapists() {
  const list = $('#therapists');
  list.setAttribute('aria-busy', 'true');
  try {
    const therapists = await get('/api/v1/therapists',
      { query: { specialty: state.specialty, modality: state.modality } });
    replace(list, therapists.length ? therapists.map(therapistCard)
      : [h('li', { class: 'empty' }, 'No therapist offers that combination. Try another specialty or way of meeting.')]);
  } catch (error) {
    say(status, explain(error), 'error');
  } finally {
    list.removeAttribute('aria-busy');
  }
}

function therapistCard(therapist) {
  const chosen = state.therapist && state.therapist.id === therapist.id;
  return h('li', { class: `card${chosen ? ' chosen' : ''}` },
    h('h4', {}, therapist.name),
    therapist.title ? h('p', { class: 'muted' }, therapist.title) : null,
    h('p', { class: 'tags' }, therapist.specialties.join(' · ')),
    therapist.bio ? h('p', {}, therapist.bio) : null,
    h('p', { class: 'muted' }, therapist.modalities.map((m) => MODALITY[m]).join(', ')),
    h('button', { type: 'button', class: 'primary', 'aria-pressed': chosen ? 'true' : 'false',
      onclick: () => chooseTherapist(therapist) }, `Choose ${therapist.name}`));
}

async function chooseTherapist(therapist) {
  state.therapist = therapist;
  await listTherapists();
  clearChoice();
  show($('#step-time'));
  focusHeading($('#step-time'));
  await loadTimes();
}

function readChoices() {
  const form = $('#choose-form');
  state.kind = form.elements.kind.value;
  state.modality = form.elements.modality.value;
  state.sessionType = form.elements.session_type.value;
  state.specialty = form.elements.specialty.value;
}

$('#choose-form').addEventListener('change', async () => {
  const before = state.modality + state.specialty;
  readChoices();
  clearChoice();
  $('#client-phone').required = state.modality === 'phone';
  if (state.modality + state.specialty !== before) {
    const stillOffered = state.therapist && state.therapist.modalities.includes(state.modality)
      && (!state.specialty || state.therapist.specialties.includes(state.specialty));
    if (!stillOffered) {
      state.therapist = null;
      show($('#step-time'), false);
    }
    await listTherapists();
  }
  if (state.therapist) await loadTimes();
});

// --- step 2: a single session's time --------------------------------------------------------------

function sessionName() {
  const type = state.sessionTypes.find((s) => s.id === state.sessionType);
  return type ? type.name : 'Session';
}

async function loadTimes() {
  show($('#single-times'), state.kind === 'single');
  show($('#course-times'), state.kind === 'course');
  show($('#alternatives'), false);
  if (state.kind === 'single') await loadSlots(true);
  else await loadCourseOptions();
}

async function fetchSlots(from, to) {
  const answer = await get(`/api/v1/therapists/${encodeURIComponent(state.therapist.id)}/slots`, {
    query: { session_type: state.sessionType, modality: state.modality, from, to, tz: zone } });
  return answer.slots;
}

async function loadSlots(jumpToFirst = false) {
  const box = $('#slots');
  box.setAttribute('aria-busy', 'true');
  try {
    if (jumpToFirst) {
      // Open on the first week that has a free time, within the next two months.
      const ahead = await fetchSlots(state.weekFrom, t.addDays(state.weekFrom, 60));
      if (ahead.length) state.weekFrom = t.dateKey(ahead[0].start, zone);
    }
    const to = t.addDays(state.weekFrom, 6);
    const slots = await fetchSlots(state.weekFrom, to);
    $('#week-label').textContent = `${t.keyLabel(state.weekFrom)} – ${t.keyLabel(to)}`;
    $('#prev-week').disabled = state.weekFrom <= t.todayKey(zone);
    renderSlotDays(box, slots, zone, (slot) => slotButton(slot, (chosen) => holdSlot(chosen)));
  } catch (error) {
    say(status, explain(error), 'error');
  } finally {
    box.removeAttribute('aria-busy');
  }
}

function slotButton(slot, onChoose) {
  const chosen = state.slot && state.slot.start === slot.start;
  return h('button', { type: 'button', class: 'slot', 'aria-pressed': chosen ? 'true' : 'false',
    'data-start': slot.start, onclick: (event) => busy(event.currentTarget, () => onChoose(slot)) },
  t.timeWithClinic(slot.start, zone));
}

$('#prev-week').addEventListener('click', () => {
  state.weekFrom = t.addDays(state.weekFrom, -7);
  if (state.weekFrom < t.todayKey(zone)) state.weekFrom = t.todayKey(zone);
  loadSlots();
});
$('#next-week').addEventListener('click', () => {
  state.weekFrom = t.addDays(state.weekFrom, 7);
  loadSlots();
});

async function holdSlot(slot) {
  try {
    const hold = await post('/api/v1/holds', { therapist_id: state.therapist.id,
      session_type: state.sessionType, modality: state.modality, start: slot.start });
    state.slot = slot;
    state.hold = hold;
    show($('#alternatives'), false);
    say(status, '');
    openDetails();
  } catch (error) {
    await offerAlternatives(error, slot.start);
  }
}

// The nearest free times to the one wanted, so a taken time is never a dead end.
async function offerAlternatives(error, wanted) {
  if (!(error instanceof ApiError) || error.status !== 409) {
    say(status, explain(error), 'error');
    return;
  }
  const day = t.dateKey(wanted, zone);
  const from = day < t.addDays(t.todayKey(zone), 3) ? t.todayKey(zone) : t.addDays(day, -3);
  let nearest = [];
  try {
    const free = await fetchSlots(from, t.addDays(day, 14));
    const target = new Date(wanted).getTime();
    nearest = free.filter((s) => s.start !== wanted)
      .sort((a, b) => Math.abs(new Date(a.start) - target) - Math.abs(new Date(b.start) - target))
      .slice(0, 4).sort((a, b) => new Date(a.start) - new Date(b.start));
  } catch {
    nearest = [];
  }
  const box = $('#alternatives');
  const sentence = `${explain(error)} ${nearest.length ? 'The nearest free times are below.' : 'Please pick another day.'}`;
  say(status, sentence, 'error');
  replace(box, h('h3', {}, 'Nearest free times'),
    nearest.length ? h('ul', { class: 'slot-list' }, nearest.map((slot) => h('li', {},
      h('button', { type: 'button', class: 'slot', 'data-start': slot.start,
        onclick: (event) => busy(event.currentTarget, () => holdSlot(slot)) },
      t.dateTimeWithClinic(slot.start, zone)))))
      : h('p', {}, 'No free time in the two weeks around it; use “Later →” to look further.'));
  show(box);
  if (state.kind === 'single') {
    show($('#step-time'));
    await loadSlots();
  }
  box.querySelector('button')?.focus();
}

// --- step 2, course: a weekly time for all sessions -------------------------------------------------

async function loadCourseOptions() {
  const box = $('#course-options');
  box.setAttribute('aria-busy', 'true');
  replace($('#course-dates'));
  try {
    const answer = await get(`/api/v1/therapists/${encodeURIComponent(state.therapist.id)}/course-options`, {
      query: { session_type: state.sessionType, modality: state.modality, sessions: COURSE_SESSIONS,
        from: state.courseFrom, tz: zone, skip_weeks: state.skipWeeks.join(',') } });
    renderCourseOptions(answer.options);
    return answer.options;
  } catch (error) {
    say(status, explain(error), 'error');
    return [];
  } finally {
    box.removeAttribute('aria-busy');
  }
}

function optionLabel(option) {
  const first = option.sessions[0];
  const weekday = new Intl.DateTimeFormat('en-GB', { weekday: 'long', timeZone: zone }).format(new Date(first));
  return `${weekday}s at ${t.timeWithClinic(first, zone)}, from ${t.day(first, zone)}`;
}

function renderCourseOptions(options, highlight = null) {
  const box = $('#course-options');
  if (!options.length) {
    replace(box, h('p', { class: 'empty' }, 'No weekly time is free for all 16 weeks from that date. Try a later start or fewer skipped weeks.'));
    return;
  }
  const list = h('div', { class: 'options' }, options.map((option, index) => {
    const id = `option-${index}`;
    return h('div', { class: `option${highlight && highlight.includes(option) ? ' suggested' : ''}` },
      h('input', { type: 'radio', name: 'course-option', id, value: String(index),
        checked: state.option && state.option.sessions[0] === option.sessions[0],
        onchange: () => chooseOption(option) }),
      h('label', { for: id }, optionLabel(option)));
  }));
  replace(box, h('fieldset', {}, h('legend', {}, 'Weekly times free for the whole course'), list));
}

function chooseOption(option) {
  state.option = option;
  const sessions = option.sessions;
  const last = sessions[sessions.length - 1];
  const skipped = state.skipWeeks.map((key) => h('li', { class: 'skipped' },
    `Week of ${t.keyLabel(t.mondayOf(key))}: skipped`));
  replace($('#course-dates'),
    h('h3', { id: 'course-dates-heading' }, `Your ${sessions.length} sessions`),
    h('p', { class: 'end-date' }, `Ends ${t.longDate(last, zone)}.`),
    h('ol', { class: 'dates', 'aria-labelledby': 'course-dates-heading' },
      sessions.map((start) => h('li', {}, t.dateTimeWithClinic(start, zone)))),
    skipped.length ? h('ul', { class: 'dates' }, skipped) : null,
    h('button', { type: 'button', class: 'primary', onclick: openDetails },
      `Continue with these ${sessions.length} dates`));
}

$('#course-from').addEventListener('change', (event) => {
  state.courseFrom = event.target.value || t.todayKey(zone);
  state.option = null;
  loadCourseOptions();
});

$('#add-skip').addEventListener('click', () => {
  const value = $('#skip-date').value;
  if (!value) {
    say(status, 'Choose a date in the week you want to skip first.', 'error');
    $('#skip-date').focus();
    return;
  }
  if (!state.skipWeeks.some((key) => t.mondayOf(key) === t.mondayOf(value))) state.skipWeeks.push(value);
  state.skipWeeks.sort();
  $('#skip-date').value = '';
  renderSkips();
  state.option = null;
  loadCourseOptions();
});

function renderSkips() {
  replace($('#skip-list'), state.skipWeeks.map((key) => h('li', {},
    `Week of ${t.keyLabel(t.mondayOf(key))} `,
    h('button', { type: 'button', class: 'link', 'aria-label': `Stop skipping the week of ${t.keyLabel(t.mondayOf(key))}`,
      onclick: () => {
        state.skipWeeks = state.skipWeeks.filter((k) => k !== key);
        renderSkips();
        state.option = null;
        loadCourseOptions();
      } }, 'remove'))));
}

// --- step 3: details, hold countdown, booking ------------------------------------------------------

function clearChoice() {
  state.slot = null;
  state.hold = null;
  state.option = null;
  clearInterval(state.holdTimer);
  show($('#step-details'), false);
}

function openDetails() {
  const section = $('#step-details');
  const who = `${sessionName()} with ${state.therapist.name}, ${MODALITY[state.modality].toLowerCase()}`;
  if (state.kind === 'single') {
    $('#chosen').textContent = `${who}: ${t.dateTimeWithClinic(state.slot.start, zone)}.`;
    startCountdown();
  } else {
    const sessions = state.option.sessions;
    $('#chosen').textContent = `${who}: ${sessions.length} weekly sessions, ${t.day(sessions[0], zone)} to ${t.longDate(sessions[sessions.length - 1], zone)}, at ${t.timeWithClinic(sessions[0], zone)}.`;
    clearInterval(state.holdTimer);
    $('#hold-status').textContent = 'Course times are booked together when you press Book.';
  }
  $('#book-button').textContent = state.kind === 'single' ? 'Book this session' : `Book all ${state.option.sessions.length} sessions`;
  $('#client-phone').required = state.modality === 'phone';
  show(section);
  focusHeading(section);
}

function startCountdown() {
  clearInterval(state.holdTimer);
  const line = $('#hold-status');
  const tick = () => {
    const left = Math.round((new Date(state.hold.expires_at) - Date.now()) / 1000);
    if (left <= 0) {
      clearInterval(state.holdTimer);
      state.hold = null;
      line.textContent = 'Your hold has ended. The time may still be free: book now, or choose another time.';
      say(status, 'Your hold on this time has ended.', 'info');
      return;
    }
    const minutes = Math.floor(left / 60);
    const seconds = String(left % 60).padStart(2, '0');
    line.textContent = `We are holding this time for you for ${minutes}:${seconds} more (until ${t.time(state.hold.expires_at, zone)}).`;
  };
  tick();
  state.holdTimer = setInterval(tick, 1000);
}

$('#change-time').addEventListener('click', () => {
  show($('#step-details'), false);
  clearInterval(state.holdTimer);
  focusHeading($('#step-time'));
});

// One Idempotency-Key per form content: a retry after a 503 or a dropped connection sends the
// same key, so the clinic replays what it did (201) instead of refusing the client's own
// booking (409); changing anything in the form makes it a new request with a new key.
const sentKeys = new Map();
function keyFor(path, body) {
  const content = `${path} ${JSON.stringify(body)}`;
  if (!sentKeys.has(content)) sentKeys.set(content, newKey());
  return sentKeys.get(content);
}

$('#details-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  if (!form.reportValidity()) return;
  const client = { name: form.elements.name.value.trim(), email: form.elements.email.value.trim(),
    timezone: zone };
  if (form.elements.phone.value.trim()) client.phone = form.elements.phone.value.trim();
  const notes = form.elements.notes.value.trim();
  const common = { therapist_id: state.therapist.id, session_type: state.sessionType,
    modality: state.modality, client };
  if (notes) common.notes = notes;
  await busy($('#book-button'), async () => {
    say(status, 'Booking…');
    try {
      if (state.kind === 'single') {
        const body = { ...common, start: state.slot.start };
        if (state.hold) body.hold_id = state.hold.id;
        const headers = { 'Idempotency-Key': keyFor('/api/v1/bookings', body) };
        // only the hold's holder may turn it into the booking
        if (state.hold) headers.Authorization = `Bearer ${state.hold.manage_token}`;
        const booking = await post('/api/v1/bookings', body, { headers });
        confirmSingle(booking);
      } else {
        const body = { ...common, first_start: state.option.sessions[0],
          sessions: state.option.sessions.length };
        if (state.skipWeeks.length) body.skip_weeks = state.skipWeeks;
        const course = await post('/api/v1/courses', body,
          { headers: { 'Idempotency-Key': keyFor('/api/v1/courses', body) } });
        confirmCourse(course);
      }
    } catch (error) {
      if (state.kind === 'single') await offerAlternatives(error, state.slot.start);
      else await courseFailed(error);
    }
  });
});

async function courseFailed(error) {
  if (!(error instanceof ApiError) || error.code !== 'course_conflict') {
    say(status, explain(error), 'error');
    return;
  }
  const conflicts = (error.details.conflicts || []).map((iso) => t.dateTimeWithClinic(iso, zone));
  const wanted = state.option.sessions[0];
  state.option = null;
  const options = await loadCourseOptions();
  // Nearest weekly times first: the same week and time of day matter most to a client.
  const target = new Date(wanted).getTime();
  const nearest = [...options].sort((a, b) => Math.abs(new Date(a.sessions[0]) - target)
    - Math.abs(new Date(b.sessions[0]) - target)).slice(0, 3);
  renderCourseOptions(options, nearest);
  say(status, `${explain(error)} Taken: ${conflicts.join('; ') || 'some dates'}. `
    + (nearest.length ? 'Please choose another weekly time; the nearest are marked “suggested”.' : 'Please try a later start date.'), 'error');
  const box = $('#alternatives');
  replace(box, h('h3', {}, 'Dates no longer free'), h('ul', {}, conflicts.map((c) => h('li', {}, c))),
    nearest.length ? h('h3', {}, 'Nearest weekly times') : null,
    nearest.length ? h('ul', { class: 'slot-list' }, nearest.map((option) => h('li', {},
      h('button', { type: 'button', class: 'slot', onclick: () => { chooseOption(option); show(box, false); openDetails(); } },
        optionLabel(option))))) : null);
  show(box);
  show($('#step-details'), false);
  box.querySelector('button')?.focus();
}

// --- confirmation -----------------------------------------------------------------------------------

function place(modality, room) {
  if (modality === 'in_person') return `In person at the clinic in London${room ? `, ${state.rooms[room] || room}` : ''}`;
  return modality === 'video' ? 'By video (the link is in your confirmation email)' : 'By phone: your therapist will call you';
}

function finish(summaryNodes, events, fileName, manageUrl) {
  clearInterval(state.holdTimer);
  for (const id of ['#step-choose', '#step-time', '#step-details']) show($(id), false);
  replace($('#summary'), summaryNodes);
  offerDownload($('#ics-link'), calendarText(events), fileName);
  const link = $('#manage-link');
  link.href = manageUrl;
  link.textContent = new URL(manageUrl, window.location.origin).href;
  say(status, 'Booked. A confirmation email is on its way.', 'success');
  show($('#step-done'));
  focusHeading($('#step-done'));
}

function confirmSingle(booking) {
  const title = `${sessionName()} with ${state.therapist.name}`;
  finish([
    h('p', { class: 'big' }, title),
    h('p', {}, t.longDate(booking.start, zone), ', ', t.timeWithClinic(booking.start, zone), ` – ${t.time(booking.end, zone)}`),
    h('p', {}, place(booking.modality, booking.room)),
  ], [{ id: booking.id, start: booking.start, end: booking.end, summary: title,
    location: place(booking.modality, booking.room), sequence: booking.sequence }],
  'session.ics', `/manage?token=${encodeURIComponent(booking.manage_token)}&booking=${encodeURIComponent(booking.id)}`);
}

function confirmCourse(course) {
  const title = `${sessionName()} with ${state.therapist.name}`;
  const count = course.sessions.length;
  finish([
    h('p', { class: 'big' }, `${count}-week course: ${title}`),
    h('p', {}, `Weekly on ${optionLabel({ sessions: [course.sessions[0].start] }).replace(/, from .*/, '')}, from ${t.longDate(course.first_start, zone)} to ${t.longDate(course.last_end, zone)}.`),
    h('p', {}, place(course.modality, course.sessions[0].room)),
    h('ol', { class: 'dates' }, course.sessions.map((s) => h('li', {}, t.dateTimeWithClinic(s.start, zone)))),
  ], course.sessions.map((s) => ({ id: s.booking_id, start: s.start, end: s.end,
    summary: `${title} (${s.number}/${count})`, location: place(course.modality, s.room) })),
  'course.ics', `/manage?token=${encodeURIComponent(course.manage_token)}&course=${encodeURIComponent(course.id)}`);
}

readChoices();
start();
