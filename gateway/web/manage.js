// The manage page: a booking or a whole course, with moving and cancelling sessions.
// The manage token stays in this page's URL only; it is sent as a bearer token.

import { ApiError, explain, get, post } from './api.js';
import { clinicInfo } from './clinic.js';
import { courseMarks, legend, sessionState } from './marks.js';
import { nearestFree, showWeek, slotButton } from './slots.js';
import * as t from './time.js';
import { $, MODALITY, busy, focusAlert, focusHeading, h, replace, say, show } from './ui.js';

const zone = t.browserZone();
const params = new URLSearchParams(window.location.search);
const token = params.get('token');
const noticeHours = Number(document.body.dataset.noticeHours || 48);
const status = $('#status');
const state = { kind: null, id: null, booking: null, course: null, therapist: null,
  sessionTypes: {}, rooms: {}, target: null, weekFrom: null, pendingStart: null, cancelling: null,
  city: '' };

async function start() {
  $('#zone-name').textContent = `${t.placeName(zone)} (${zone})`;
  state.kind = params.get('course') ? 'course' : params.get('booking') ? 'booking' : null;
  state.id = params.get('course') || params.get('booking');
  if (!token || !state.kind) {
    say(status, 'This link is incomplete. Please open the manage link from your confirmation page or email exactly as it was given.', 'error');
    return;
  }
  try {
    const [types, rooms, clinic] = await Promise.all([get('/api/v1/session-types'), get('/api/v1/rooms'), clinicInfo()]);
    state.city = clinic.city;
    state.sessionTypes = Object.fromEntries(types.map((s) => [s.id, s.name]));
    state.rooms = Object.fromEntries(rooms.map((r) => [r.id, r.name]));
    await reload();
  } catch (error) {
    say(status, explain(error), 'error');
  }
}

async function reload() {
  if (state.kind === 'course') {
    state.course = await get(`/api/v1/courses/${encodeURIComponent(state.id)}`, { token });
  } else {
    state.booking = await get(`/api/v1/bookings/${encodeURIComponent(state.id)}`, { token });
  }
  const subject = state.course || state.booking;
  if (!state.therapist || state.therapist.id !== subject.therapist_id) {
    state.therapist = await get(`/api/v1/therapists/${encodeURIComponent(subject.therapist_id)}`);
  }
  render();
}

function place(modality, room) {
  if (modality === 'in_person') return `In person at the clinic in ${state.city}${room ? `, ${state.rooms[room] || room}` : ''}`;
  return MODALITY[modality];
}

// --- what the client sees ---------------------------------------------------------------------------

function render() {
  const subject = state.course || state.booking;
  const name = `${state.sessionTypes[subject.session_type] || 'Session'} with ${state.therapist.name}`;
  if (state.course) renderCourse(state.course, name);
  else renderBooking(state.booking, name);
  show($('#overview'));
  show($('#sessions'));
}

function renderCourse(course, name) {
  $('#title').textContent = 'Your course';
  const count = course.sessions.length;
  const next = course.sessions.find((s) => s.status === 'confirmed' && new Date(s.end) > Date.now());
  const position = course.status === 'cancelled' ? 'This course is cancelled.'
    : next ? `Next: session ${next.number} of ${count}, ${t.dateTimeWithClinic(next.start, zone)}.`
      : 'All sessions have taken place.';
  const live = course.sessions.filter((s) => s.status !== 'cancelled');
  const end = live.length ? live[live.length - 1].end : course.last_end;
  replace($('#overview-body'),
    h('p', { class: 'big' }, name),
    h('p', {}, place(course.modality, course.sessions[0] && course.sessions[0].room)),
    h('p', { id: 'position', class: 'position' }, position),
    h('p', {}, `${course.completed} completed, ${course.remaining} still to come. Ends ${t.longDate(end, zone)}.`),
    courseMarks(course.sessions, `Course progress, ${count} sessions`), legend());
  replace($('#session-list'), course.sessions.map((s) => sessionRow({
    id: s.booking_id, number: s.number, count, start: s.start, end: s.end, status: s.status,
    room: s.room })));
  const toCome = course.sessions.filter((s) => s.status === 'confirmed' && new Date(s.start) > Date.now());
  show($('#course-actions'), course.status !== 'cancelled' && toCome.length > 0);
}

function renderBooking(booking, name) {
  const inCourse = booking.course_id && booking.session_number;
  $('#title').textContent = inCourse ? 'Your course session' : 'Your booking';
  replace($('#overview-body'),
    h('p', { class: 'big' }, name),
    h('p', {}, place(booking.modality, booking.room)),
    inCourse ? h('p', { id: 'position', class: 'position' }, `Session ${booking.session_number} of ${booking.course_sessions}.`) : null);
  replace($('#session-list'), sessionRow({ id: booking.id, number: booking.session_number,
    count: booking.course_sessions, start: booking.start, end: booking.end, status: booking.status,
    room: booking.room, late: booking.late_cancellation }));
  show($('#course-actions'), false);
}

const STATUS_WORDS = { confirmed: 'Booked', cancelled: 'Cancelled', attended: 'Attended', no_show: 'Missed' };

function sessionRow(session) {
  const changeable = session.status === 'confirmed' && new Date(session.start) > Date.now();
  const label = session.number ? `Session ${session.number}` : 'Session';
  const when = t.dateTimeWithClinic(session.start, zone);
  const stateWord = sessionState(session) === 'done' && session.status === 'confirmed' ? 'Done' : STATUS_WORDS[session.status];
  return h('li', { class: `session ${session.status}`, 'data-booking': session.id },
    h('span', { class: 'when' }, h('strong', {}, session.number ? `${session.number}. ` : ''), when),
    h('span', { class: `badge ${session.status}` }, stateWord + (session.late ? ' (late)' : '')),
    changeable ? h('span', { class: 'row-actions' },
      h('button', { type: 'button', 'aria-label': `Move ${label.toLowerCase()}, ${when}`, onclick: () => openMove(session) }, 'Move'),
      h('button', { type: 'button', class: 'danger', 'aria-label': `Cancel ${label.toLowerCase()}, ${when}`, onclick: () => openCancel(session) }, 'Cancel'))
      : null);
}

// --- cancelling ---------------------------------------------------------------------------------------

function lateSentence(start) {
  const hours = t.hoursUntil(start);
  if (hours >= noticeHours) return null;
  return `This is less than ${noticeHours} hours before the session (${t.dateTimeWithClinic(start, zone)}), so it counts as a late cancellation under the clinic's policy.`;
}

// The button that opened a panel gets the focus back when the panel closes without a change.
function returnFocus() {
  if (state.opener && state.opener.isConnected) state.opener.focus();
  else focusHeading($('#sessions'));
}

function openCancel(session) {
  closePanels();
  state.opener = document.activeElement;
  state.cancelling = { kind: 'session', session };
  const label = session.number ? `session ${session.number}` : 'this session';
  $('#cancel-heading').textContent = session.number ? `Cancel session ${session.number}` : 'Cancel this session';
  $('#cancel-what').textContent = `Cancel ${label} on ${t.dateTimeWithClinic(session.start, zone)}?`;
  $('#cancel-confirm').textContent = `Yes, cancel ${label}`;
  openCancelPanel(lateSentence(session.start));
}

$('#cancel-course').addEventListener('click', () => {
  closePanels();
  state.opener = document.activeElement;
  const toCome = state.course.sessions.filter((s) => s.status === 'confirmed' && new Date(s.start) > Date.now());
  state.cancelling = { kind: 'course' };
  $('#cancel-heading').textContent = 'Cancel the rest of the course';
  $('#cancel-what').textContent = `This cancels the ${toCome.length} sessions still to come, from ${t.dateTimeWithClinic(toCome[0].start, zone)} to ${t.longDate(toCome[toCome.length - 1].start, zone)}.`;
  $('#cancel-confirm').textContent = `Yes, cancel ${toCome.length} sessions`;
  openCancelPanel(lateSentence(toCome[0].start));
});

function openCancelPanel(late) {
  const warning = $('#late-warning');
  warning.textContent = late || '';
  show(warning, Boolean(late));
  $('#cancel-reason').value = '';
  show($('#confirm-cancel'));
  focusHeading($('#confirm-cancel'));
}

$('#cancel-keep').addEventListener('click', () => {
  closePanels();
  say(status, 'Nothing was cancelled.');
  returnFocus();
});

$('#cancel-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const reason = $('#cancel-reason').value.trim();
  const body = reason ? { reason } : {};
  await busy($('#cancel-confirm'), async () => {
    try {
      let message;
      if (state.cancelling.kind === 'course') {
        await post(`/api/v1/courses/${encodeURIComponent(state.course.id)}/cancel`, body, { token });
        message = 'The rest of your course is cancelled.';
      } else {
        const { session } = state.cancelling;
        const booking = await post(`/api/v1/bookings/${encodeURIComponent(session.id)}/cancel`, body, { token });
        message = `${session.number ? `Session ${session.number}` : 'Your session'} on ${t.dateTimeWithClinic(session.start, zone)} is cancelled.`
          + (booking.late_cancellation ? ' It was recorded as a late cancellation.' : '');
      }
      closePanels();
      await reload();
      say(status, message, 'success');
      focusHeading($('#sessions'));
    } catch (error) {
      say(status, explain(error), 'error');
      if (error instanceof ApiError && error.code === 'invalid_state') await reload();
      focusAlert();
    }
  });
});

// --- moving ------------------------------------------------------------------------------------------

function subjectOf() {
  return state.course || state.booking;
}

async function openMove(session) {
  closePanels();
  state.opener = document.activeElement;
  state.target = session;
  state.weekFrom = t.dateKey(session.start, zone) > t.todayKey(zone)
    ? t.mondayOf(t.dateKey(session.start, zone)) : t.todayKey(zone);
  if (state.weekFrom < t.todayKey(zone)) state.weekFrom = t.todayKey(zone);
  const label = session.number ? `session ${session.number}` : 'your session';
  $('#move-heading').textContent = session.number ? `Move session ${session.number}` : 'Move your session';
  $('#move-what').textContent = `Now: ${t.dateTimeWithClinic(session.start, zone)}. Choose a new time for ${label}.`;
  show($('#move'));
  focusHeading($('#move'));
  await loadMoveSlots();
}

function wanted() {
  const subject = subjectOf();
  return { therapistId: subject.therapist_id, sessionType: subject.session_type, modality: subject.modality };
}

async function loadMoveSlots() {
  const box = $('#move-slots');
  box.setAttribute('aria-busy', 'true');
  try {
    await showWeek(box, wanted(), state.weekFrom, zone, (slot) => timeButton(slot));
  } catch (error) {
    say(status, explain(error), 'error');
  } finally {
    box.removeAttribute('aria-busy');
  }
}

function timeButton(slot, long = false) {
  return slotButton(slot, zone, { long, pressed: state.pendingStart === slot.start,
    onChoose: pickNewTime });
}

$('#prev-week').addEventListener('click', () => {
  state.weekFrom = t.addDays(state.weekFrom, -7);
  if (state.weekFrom < t.todayKey(zone)) state.weekFrom = t.todayKey(zone);
  loadMoveSlots();
});
$('#next-week').addEventListener('click', () => {
  state.weekFrom = t.addDays(state.weekFrom, 7);
  loadMoveSlots();
});

function pickNewTime(slot) {
  state.pendingStart = slot.start;
  const label = state.target.number ? `session ${state.target.number}` : 'your session';
  $('#move-to').textContent = `Move ${label} from ${t.dateTimeWithClinic(state.target.start, zone)} to ${t.dateTimeWithClinic(slot.start, zone)}?`;
  for (const button of document.querySelectorAll('#move .slot')) {
    button.setAttribute('aria-pressed', button.dataset.start === slot.start ? 'true' : 'false');
  }
  show($('#move-confirm'));
  $('#move-yes').focus();
}

$('#move-no').addEventListener('click', () => {
  state.pendingStart = null;
  show($('#move-confirm'), false);
  $('#move-slots button')?.focus();
});

$('#move-close').addEventListener('click', () => {
  closePanels();
  say(status, 'Nothing was moved.');
  returnFocus();
});

$('#move-yes').addEventListener('click', (event) => busy(event.currentTarget, async () => {
  const session = state.target;
  const wanted = state.pendingStart;
  try {
    const moved = await post(`/api/v1/bookings/${encodeURIComponent(session.id)}/reschedule`, { start: wanted }, { token });
    closePanels();
    await reload();
    say(status, `${session.number ? `Session ${session.number}` : 'Your session'} is now on ${t.dateTimeWithClinic(moved.start, zone)}.`, 'success');
    focusHeading($('#sessions'));
  } catch (error) {
    await moveFailed(error, wanted);
  }
}));

// A taken time: say so, refresh the times and offer the nearest free ones.
async function moveFailed(error, wantedStart) {
  state.pendingStart = null;
  show($('#move-confirm'), false);
  if (!(error instanceof ApiError) || error.status !== 409) {
    say(status, explain(error), 'error');
    focusAlert();
    return;
  }
  await loadMoveSlots();
  const nearest = await nearestFree(wanted(), wantedStart, zone);
  say(status, `${explain(error)} Your session stays at ${t.dateTimeWithClinic(state.target.start, zone)}. ${nearest.length ? 'The nearest free times are listed.' : 'Please choose another day.'}`, 'error');
  const box = $('#move-alternatives');
  replace(box, h('h3', { id: 'move-nearest' }, 'Nearest free times'),
    h('ul', { class: 'slot-list', 'aria-labelledby': 'move-nearest' }, nearest.map((slot) => h('li', {}, timeButton(slot, true)))));
  show(box, nearest.length > 0);
  const first = box.querySelector('button');
  if (first) first.focus();
  else focusAlert();
}

function closePanels() {
  show($('#confirm-cancel'), false);
  show($('#move'), false);
  show($('#move-confirm'), false);
  show($('#move-alternatives'), false);
  state.pendingStart = null;
}

start();
