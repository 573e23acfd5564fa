// The therapist's page: the week as a grid, running courses, time off and the calendar feed.
// The therapist token is kept in sessionStorage: this tab only, gone when it closes.

import { ApiError, del, explain, get, post, put } from './api.js';
import { courseMarks, legend } from './marks.js';
import * as t from './time.js';
import { $, MODALITY_SHORT, busy, h, initials, replace, say, show } from './ui.js';

const STORE = 'clinic.therapist';
const status = $('#status');
const state = { id: null, token: null, therapist: null, zone: 'Europe/London', monday: null,
  rooms: {}, schedule: null };

const api = (path) => `/api/v1/therapists/${encodeURIComponent(state.id)}${path}`;

async function start() {
  try {
    const [therapists, rooms] = await Promise.all([get('/api/v1/therapists'), get('/api/v1/rooms')]);
    state.rooms = Object.fromEntries(rooms.map((r) => [r.id, r.name]));
    replace($('#therapist-id'), therapists.map((th) => h('option', { value: th.id }, th.name)));
    const saved = JSON.parse(sessionStorage.getItem(STORE) || 'null');
    if (saved) await signIn(saved.id, saved.token);
  } catch (error) {
    say(status, explain(error), 'error');
  }
}

$('#sign-in-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  await busy(form.querySelector('button'), () => signIn(form.elements.therapist.value,
    form.elements.token.value.trim()));
});

async function signIn(id, token) {
  state.id = id;
  state.token = token;
  try {
    state.therapist = await get(api(''));
    state.zone = state.therapist.timezone || t.clinicZone();
    state.schedule = await get(api('/schedule'));
    state.monday = t.mondayOf(t.todayKey(state.zone));
    await loadWeek(); // proves the token: 401/403 land in the catch below
  } catch (error) {
    sessionStorage.removeItem(STORE);
    say(status, error instanceof ApiError && [401, 403].includes(error.status)
      ? 'That token is not valid for this therapist.' : explain(error), 'error');
    $('#therapist-token').focus();
    return;
  }
  sessionStorage.setItem(STORE, JSON.stringify({ id, token }));
  $('#therapist-token').value = '';
  $('#title').textContent = `${state.therapist.name}: your week`;
  show($('#sign-in'), false);
  show($('#workspace'));
  say(status, '');
  $('#week-heading').focus();
  await Promise.all([loadCourses(), loadTimeOff(), loadFeed(), loadOutside()]);
}

$('#sign-out').addEventListener('click', () => {
  sessionStorage.removeItem(STORE);
  window.location.reload();
});

// --- the week grid -------------------------------------------------------------------------------------

const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

function hourOf(hhmm) {
  return Number(hhmm.slice(0, 2));
}

async function loadWeek() {
  const sunday = t.addDays(state.monday, 6);
  const bookings = await get(api('/bookings'), { token: state.token,
    query: { from: state.monday, to: sunday, tz: state.zone } });
  const outside = await outsideBusy(state.monday, sunday);
  $('#week-heading').textContent = `Week of ${t.keyLongLabel(state.monday)}`;
  $('#week-heading').setAttribute('tabindex', '-1');
  $('#week-of').value = state.monday;
  $('#week-zone').textContent = `Times in ${t.placeName(state.zone)} time (${state.zone}). ${plural(bookings.filter((b) => b.status !== 'cancelled').length, 'session')} this week.`;
  renderGrid(bookings, outside);
}

function renderGrid(bookings, outside = []) {
  const days = Array.from({ length: 7 }, (_, i) => t.addDays(state.monday, i));
  const rules = (state.schedule && state.schedule.weekly) || [];
  let first = Math.min(8, ...rules.map((r) => hourOf(r.start)));
  let last = Math.max(18, ...rules.map((r) => hourOf(r.end) + (r.end.endsWith(':00') ? 0 : 1)));
  const cells = new Map();
  for (const booking of bookings) {
    const hour = Number(t.time(booking.start, state.zone).slice(0, 2));
    first = Math.min(first, hour);
    last = Math.max(last, hour + 1);
    const key = `${t.dateKey(booking.start, state.zone)}|${hour}`;
    if (!cells.has(key)) cells.set(key, []);
    cells.get(key).push(booking);
  }
  addOutsideBusy(cells, outside);
  const today = t.todayKey(state.zone);
  const head = h('tr', {}, h('th', { scope: 'col', class: 'hour' }, h('span', { class: 'visually-hidden' }, 'Time')),
    days.map((key) => h('th', { scope: 'col', class: key === today ? 'today' : null }, t.keyLabel(key))));
  const rows = [];
  for (let hour = first; hour < last; hour += 1) {
    const label = `${String(hour).padStart(2, '0')}:00`;
    rows.push(h('tr', {}, h('th', { scope: 'row', class: 'hour' }, label),
      days.map((key) => h('td', { class: key === today ? 'today' : null },
        (cells.get(`${key}|${hour}`) || []).map(cellCard)))));
  }
  replace($('#grid-box'), h('table', { class: 'week-grid' },
    h('caption', { class: 'visually-hidden' }, `Sessions in the week of ${t.keyLongLabel(state.monday)}`),
    h('thead', {}, head), h('tbody', {}, rows)));
}

function sessionCard(booking) {
  const parts = [MODALITY_SHORT[booking.modality]];
  if (booking.room) parts.push(state.rooms[booking.room] || booking.room);
  const position = booking.session_number && booking.course_sessions
    ? `${booking.session_number}/${booking.course_sessions}` : null;
  const words = booking.status === 'cancelled' ? 'cancelled' : booking.status === 'no_show' ? 'missed' : null;
  return h('div', { class: `session-card ${booking.modality} ${booking.status}`, 'data-booking': booking.id },
    h('span', { class: 'card-time' }, `${t.time(booking.start, state.zone)}–${t.time(booking.end, state.zone)}`),
    h('strong', { class: 'client', title: 'Client initials' }, initials(booking.client && booking.client.name)),
    h('span', { class: 'card-meta' }, parts.join(' · ')),
    position ? h('span', { class: 'course-position', title: 'Session of the course' }, position) : null,
    words ? h('span', { class: 'card-status' }, words) : null);
}

async function changeWeek(monday) {
  state.monday = monday;
  try {
    await loadWeek();
  } catch (error) {
    say(status, explain(error), 'error');
  }
}

$('#prev-week').addEventListener('click', () => changeWeek(t.addDays(state.monday, -7)));
$('#next-week').addEventListener('click', () => changeWeek(t.addDays(state.monday, 7)));
$('#this-week').addEventListener('click', () => changeWeek(t.mondayOf(t.todayKey(state.zone))));
$('#week-of').addEventListener('change', (event) => {
  if (event.target.value) changeWeek(t.mondayOf(event.target.value));
});

// --- running courses -------------------------------------------------------------------------------------

async function loadCourses() {
  const box = $('#course-list');
  try {
    const today = t.todayKey(state.zone);
    const bookings = await get(api('/bookings'), { token: state.token,
      query: { from: t.addDays(today, -120), to: t.addDays(today, 400), tz: state.zone } });
    const running = new Set(bookings.filter((b) => b.course_id && b.status === 'confirmed'
      && new Date(b.end) > Date.now()).map((b) => b.course_id));
    const courses = await Promise.all([...running].map((id) =>
      get(`/api/v1/courses/${encodeURIComponent(id)}`, { token: state.token })));
    const active = courses.filter((c) => c.status === 'active')
      .sort((a, b) => new Date(a.first_start) - new Date(b.first_start));
    if (!active.length) {
      replace(box, h('p', { class: 'empty' }, 'No course is running.'));
      return;
    }
    replace(box, legend(), h('ul', { class: 'course-cards' }, active.map(courseCard)));
  } catch (error) {
    replace(box, h('p', { class: 'error' }, explain(error)));
  }
}

function courseCard(course) {
  const who = initials(course.client && course.client.name);
  const count = course.sessions.length;
  const next = course.sessions.find((s) => s.status === 'confirmed' && new Date(s.end) > Date.now());
  const weekday = new Intl.DateTimeFormat('en-GB', { weekday: 'long', timeZone: state.zone })
    .format(new Date(course.first_start));
  return h('li', { class: 'course-card', 'data-course': course.id },
    h('p', {}, h('strong', {}, who), ` · ${MODALITY_SHORT[course.modality]} · ${weekday}s at ${t.time(course.first_start, state.zone)}`),
    h('p', { class: 'muted' }, next ? `Next: session ${next.number} of ${count}, ${t.dateTime(next.start, state.zone)}` : 'No session to come'),
    courseMarks(course.sessions, `Course of ${who}: ${count} sessions`));
}

// --- time off ------------------------------------------------------------------------------------------

async function loadTimeOff() {
  $('#off-zone').textContent = `(your time, ${t.browserZone()})`;
  try {
    const items = await get(api('/time-off'), { token: state.token });
    replace($('#time-off-list'), items.length ? items.map((item) => h('li', {},
      `${t.dateTime(item.start, state.zone)} – ${t.dateTime(item.end, state.zone)}${item.reason ? ` (${item.reason})` : ''} `,
      h('button', { type: 'button', class: 'link', 'aria-label': `Remove time off from ${t.dateTime(item.start, state.zone)}`,
        onclick: (event) => busy(event.currentTarget, () => removeTimeOff(item)) }, 'remove')))
      : [h('li', { class: 'empty' }, 'No time off booked.')]);
  } catch (error) {
    say(status, explain(error), 'error');
  }
}

async function removeTimeOff(item) {
  try {
    await del(api(`/time-off/${encodeURIComponent(item.id)}`), { token: state.token });
    say(status, 'Time off removed.', 'success');
    await loadTimeOff();
  } catch (error) {
    say(status, explain(error), 'error');
  }
}

$('#time-off-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const start = new Date(form.elements.start.value);
  const end = new Date(form.elements.end.value);
  if (!(end > start)) {
    say(status, 'The end of the time off must be after its start.', 'error');
    form.elements.end.focus();
    return;
  }
  const body = { start: start.toISOString(), end: end.toISOString() };
  if (form.elements.reason.value.trim()) body.reason = form.elements.reason.value.trim();
  await busy(form.querySelector('button'), async () => {
    try {
      await post(api('/time-off'), body, { token: state.token });
      form.reset();
      say(status, 'Time off added; clients can no longer book those hours.', 'success');
      await loadTimeOff();
    } catch (error) {
      say(status, explain(error), 'error');
    }
  });
});

// --- calendar feed ---------------------------------------------------------------------------------------

async function loadFeed() {
  try {
    const feed = await get(api('/calendar-feed'), { token: state.token });
    renderFeed(feed.url);
  } catch (error) {
    replace($('#feed-body'), h('p', { class: 'note' }, explain(error)));
  }
}

function renderFeed(url) {
  const input = h('input', { id: 'feed-url', type: 'text', readonly: true, value: url });
  // Asked in the page, like the manage page's cancellation: the old address dies at once.
  const keep = h('button', { type: 'button', onclick: () => hideRotate() }, 'Keep this address');
  const confirmRotate = h('div', { id: 'feed-rotate', class: 'panel', role: 'group', 'aria-label': 'Confirm the new address', hidden: true },
    h('p', {}, 'Make a new address? The old one stops working at once, in every calendar app that uses it.'),
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'danger', onclick: (event) => busy(event.currentTarget, rotateFeed) },
        'Yes, make a new address'),
      keep));
  replace($('#feed-body'),
    h('p', {}, 'Subscribe to this address in your calendar app. Anyone with it can see your sessions (initials only), so keep it private.'),
    h('div', { class: 'field' }, h('label', { for: 'feed-url' }, 'Feed address'), input),
    h('div', { class: 'actions' },
      h('button', { type: 'button', onclick: () => copyFeed(input) }, 'Copy address'),
      h('button', { type: 'button', class: 'danger', onclick: () => { confirmRotate.hidden = false; keep.focus(); } },
        'Make a new address')),
    confirmRotate,
    h('p', { class: 'note' }, 'A new address stops the old one working at once.'));
}

function hideRotate() {
  const panel = $('#feed-rotate');
  if (panel) panel.hidden = true;
}

async function copyFeed(input) {
  try {
    await navigator.clipboard.writeText(input.value);
    say(status, 'Feed address copied.', 'success');
  } catch {
    input.select();
    say(status, 'Press Ctrl+C (or ⌘C) to copy the selected address.', 'info');
  }
}

async function rotateFeed() {
  try {
    const feed = await post(api('/calendar-feed/rotate'), {}, { token: state.token });
    renderFeed(feed.url);
    say(status, 'New feed address made; update it in your calendar app.', 'success');
  } catch (error) {
    say(status, explain(error), 'error');
  }
}

// --- your own calendar (outside calendar) ----------------------------------------------------------------

const HOUR = 3600000;

// Its busy times for the week, or none when no calendar is linked: times only, never titles.
async function outsideBusy(from, to) {
  try {
    return (await get(api('/external-calendar/busy'), { token: state.token,
      query: { from, to, tz: state.zone } })).busy;
  } catch {
    return [];
  }
}

// Each busy span greys every hour cell it touches.
function addOutsideBusy(cells, spans) {
  for (const span of spans) {
    const end = new Date(span.end).getTime();
    for (let at = new Date(span.start).getTime(); at < end; at = Math.floor(at / HOUR) * HOUR + HOUR) {
      const iso = new Date(at).toISOString();
      const key = `${t.dateKey(iso, state.zone)}|${Number(t.time(iso, state.zone).slice(0, 2))}`;
      if (!cells.has(key)) cells.set(key, []);
      if (!cells.get(key).some((item) => item.outside === span)) cells.get(key).push({ outside: span });
    }
  }
}

function cellCard(item) {
  if (!item.outside) return sessionCard(item);
  const { start, end } = item.outside;
  return h('div', { class: 'outside-busy', title: 'Busy in your own calendar' },
    h('span', { class: 'card-time' }, `${t.time(start, state.zone)}–${t.time(end, state.zone)}`),
    h('span', { class: 'card-meta' }, 'Busy elsewhere'));
}

const OUTSIDE_STATUS = { pending: 'Waiting for the first fetch…', ok: 'Working', failing: 'Failing' };

async function loadOutside() {
  try {
    // The busy listing says whether a calendar is linked, so nothing here answers 404.
    const today = t.todayKey(state.zone);
    const found = await get(api('/external-calendar/busy'), { token: state.token,
      query: { from: today, to: today, tz: state.zone } });
    renderOutside(found.linked ? await get(api('/external-calendar'), { token: state.token }) : null);
  } catch (error) {
    replace($('#outside-body'), h('p', { class: 'note' }, explain(error)));
  }
}

function renderOutside(linked) {
  const input = h('input', { id: 'outside-url', name: 'url', type: 'url', required: true, maxlength: 2000,
    autocomplete: 'off', value: linked ? linked.url : '' });
  const form = h('form', { id: 'outside-form', class: 'grid-form' },
    h('div', { class: 'field' }, h('label', { for: 'outside-url' }, 'Your calendar\'s iCalendar (.ics) address'), input),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, linked ? 'Change address' : 'Link calendar'),
      linked ? h('button', { type: 'button', class: 'danger', id: 'outside-unlink',
        onclick: (event) => busy(event.currentTarget, unlinkOutside) }, 'Unlink') : null));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    await busy(form.querySelector('button'), () => linkOutside(input.value.trim()));
  });
  const facts = linked ? h('dl', { class: 'facts', id: 'outside-status' },
    h('dt', {}, 'Status'), h('dd', { class: `outside-${linked.status}` }, OUTSIDE_STATUS[linked.status] || linked.status),
    h('dt', {}, 'Busy times found'), h('dd', {}, String(linked.busy_count)),
    h('dt', {}, 'Last read'), h('dd', {}, linked.last_synced_at ? t.dateTime(linked.last_synced_at, state.zone) : 'not yet'),
    linked.last_error ? [h('dt', {}, 'Problem'), h('dd', {}, linked.last_error)] : null) : null;
  const conflicts = linked && linked.conflicts && linked.conflicts.length
    ? h('div', { class: 'panel warning', role: 'group', 'aria-label': 'Bookings your calendar now overlaps' },
      h('p', {}, 'Your own calendar now shows you busy during these booked sessions. They stand; move or cancel them if you cannot keep them:'),
      h('ul', {}, linked.conflicts.map((c) => h('li', {}, t.dateTime(c.start, state.zone)))))
    : null;
  replace($('#outside-body'),
    h('p', {}, 'Link the private address of your own calendar: its busy times are kept free of clinic bookings. Only the times are read, never titles.'),
    form, facts, conflicts);
}

async function linkOutside(url) {
  try {
    await put(api('/external-calendar'), { url }, { token: state.token });
    say(status, 'Calendar linked; its busy times are read within a minute or so.', 'success');
    await loadOutside();
  } catch (error) {
    say(status, explain(error), 'error');
  }
}

async function unlinkOutside() {
  try {
    await del(api('/external-calendar'), { token: state.token });
    say(status, 'Calendar unlinked; its busy times no longer block clinic times.', 'success');
    await Promise.all([loadOutside(), loadWeek()]);
  } catch (error) {
    say(status, explain(error), 'error');
  }
}

start();
