// The booking page: choose a therapist, a time (or a weekly course time), hold it, book it.

import { ApiError, explain, get, newKey, post } from './api.js';
import { clinicInfo } from './clinic.js';
import { datesTable } from './dates.js';
import { fetchSlots, nearestFree, showWeek, slotButton } from './slots.js';
import * as t from './time.js';
import { $, MODALITY, busy, focusAlert, focusHeading, h, replace, replaceKeepingFocus, say, show } from './ui.js';
import { offerWaitlist } from './waitlist-join.js';

const zone = t.browserZone();
// Warn this long before a hold lapses (WCAG 2.2.1 asks for at least 20 seconds to react).
const HOLD_WARNING_SECONDS = 120;
const state = {
  kind: 'single', sessionType: null, modality: 'in_person', specialty: '',
  therapist: null, sessionTypes: [], rooms: {}, weekFrom: t.todayKey(zone),
  slot: null, hold: null, holdTimer: null, holdDeadline: 0, option: null, skipWeeks: [],
  courseFrom: t.todayKey(zone), clinic: null, // GET /api/v1/clinic, read first
};
const status = $('#status');

// --- step 1: session, specialty, modality, therapist -------------------------------------------

async function start() {
  $('#zone-name').textContent = `${t.placeName(zone)} (${zone})`;
  $('#course-from').value = state.courseFrom;
  $('#course-from').min = state.courseFrom;
  try {
    const [types, therapists, rooms, clinic] = await Promise.all([
      get('/api/v1/session-types'), get('/api/v1/therapists'), get('/api/v1/rooms'), clinicInfo()]);
    state.clinic = clinic;
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
    replaceKeepingFocus(list, therapists.length ? therapists.map(therapistCard)
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
      'data-key': therapist.id, onclick: () => chooseTherapist(therapist) }, `Choose ${therapist.name}`));
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
  offerWaitlist({ therapistId: state.therapist.id, sessionType: state.sessionType,
    modality: state.modality, kind: state.kind, sessions: state.clinic.course_sessions });
}

function wanted() {
  return { therapistId: state.therapist.id, sessionType: state.sessionType, modality: state.modality };
}

function timeButton(slot, long = false) {
  return slotButton(slot, zone, { long, pressed: state.slot && state.slot.start === slot.start,
    onChoose: (chosen, button) => busy(button, () => holdSlot(chosen)) });
}

async function loadSlots(jumpToFirst = false) {
  const box = $('#slots');
  box.setAttribute('aria-busy', 'true');
  try {
    if (jumpToFirst) {
      // Open on the first week that has a free time, within the next two months.
      const ahead = await fetchSlots(wanted(), state.weekFrom, t.addDays(state.weekFrom, 60), zone);
      if (ahead.length) state.weekFrom = t.dateKey(ahead[0].start, zone);
    }
    await showWeek(box, wanted(), state.weekFrom, zone, (slot) => timeButton(slot));
  } catch (error) {
    say(status, explain(error), 'error');
  } finally {
    box.removeAttribute('aria-busy');
  }
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
    state.holdDeadline = Date.now() + state.clinic.hold_minutes * 60000;
    show($('#alternatives'), false);
    say(status, '');
    openDetails();
  } catch (error) {
    await offerAlternatives(error, slot.start);
  }
}

// The nearest free times to the one wanted, so a taken time is never a dead end.
async function offerAlternatives(error, wantedStart) {
  if (!(error instanceof ApiError) || error.status !== 409) {
    say(status, explain(error), 'error');
    focusAlert();
    return;
  }
  const nearest = await nearestFree(wanted(), wantedStart, zone);
  const box = $('#alternatives');
  const sentence = `${explain(error)} ${nearest.length ? 'The nearest free times are below.' : 'Please pick another day.'}`;
  say(status, sentence, 'error');
  replace(box, h('h3', { id: 'alternatives-heading' }, 'Nearest free times'),
    nearest.length ? h('ul', { class: 'slot-list', 'aria-labelledby': 'alternatives-heading' },
      nearest.map((slot) => h('li', {}, timeButton(slot, true))))
      : h('p', {}, 'No free time in the two weeks around it; use “Later →” to look further.'));
  show(box);
  if (state.kind === 'single') {
    show($('#step-time'));
    await loadSlots();
  }
  const first = box.querySelector('button');
  if (first) first.focus();
  else focusAlert();
}

// --- step 2, course: a weekly time for all sessions -------------------------------------------------

async function loadCourseOptions() {
  const box = $('#course-options');
  box.setAttribute('aria-busy', 'true');
  replace($('#course-dates'));
  try {
    const answer = await get(`/api/v1/therapists/${encodeURIComponent(state.therapist.id)}/course-options`, {
      query: { session_type: state.sessionType, modality: state.modality, sessions: state.clinic.course_sessions,
        from: state.courseFrom, tz: zone, skip_weeks: state.skipWeeks.join(',') } });
    renderCourseOptions(answer.options);
    return answer.options;
  } catch (error) {
    say(status, explain(error), 'error');
    focusAlert();
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
    replaceKeepingFocus(box, h('p', { class: 'empty' }, `No weekly time is free for all ${state.clinic.course_sessions} weeks from that date. Try a later start or fewer skipped weeks.`));
    return;
  }
  const list = h('div', { class: 'options' }, options.map((option, index) => {
    const id = `option-${index}`;
    return h('div', { class: `option${highlight && highlight.includes(option) ? ' suggested' : ''}` },
      h('input', { type: 'radio', name: 'course-option', id, value: String(index), 'data-key': option.sessions[0],
        checked: state.option && state.option.sessions[0] === option.sessions[0],
        onchange: () => chooseOption(option) }),
      h('label', { for: id }, optionLabel(option)));
  }));
  replaceKeepingFocus(box, h('fieldset', {}, h('legend', {}, 'Weekly times free for the whole course'), list));
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
    datesTable(`Dates of your ${sessions.length} sessions, ${t.day(sessions[0], zone)} to ${t.day(last, zone)}`,
      sessions.map((start, index) => ({ number: index + 1, start })), zone),
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
    $('#skip-date').setAttribute('aria-describedby', 'alert');
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
        $('#skip-date').focus(); // the focused button has gone with its week
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
  replace($('#hold-warning'));
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
    replace($('#hold-warning'));
    $('#hold-status').textContent = 'Course times are booked together when you press Book; nothing is held until then.';
  }
  $('#book-button').textContent = state.kind === 'single' ? 'Book this session' : `Book all ${state.option.sessions.length} sessions`;
  $('#client-phone').required = state.modality === 'phone';
  show(section);
  focusHeading(section);
}

// The hold's time, said and counted down; a warning HOLD_WARNING_SECONDS before it lapses, with a
// button to hold the time once more (WCAG 2.2.1). The deadline is kept on this browser's clock
// from when the answer came, so a client whose clock is wrong is still warned in time.
function startCountdown() {
  clearInterval(state.holdTimer);
  const line = $('#hold-status');
  const warning = $('#hold-warning');
  replace(warning);
  let warned = false;
  const tick = () => {
    const left = Math.round((state.holdDeadline - Date.now()) / 1000);
    if (left <= 0) {
      clearInterval(state.holdTimer);
      state.hold = null;
      line.textContent = 'Your hold has ended. The time may still be free: book now, or choose another time.';
      replace(warning);
      say(status, 'Your hold on this time has ended. You can still book it if nobody else has.', 'error');
      return;
    }
    const minutes = Math.floor(left / 60);
    const seconds = String(left % 60).padStart(2, '0');
    line.textContent = `We are holding this time for you for ${minutes}:${seconds} more (until ${t.time(new Date(state.holdDeadline).toISOString(), zone)}).`;
    if (left <= HOLD_WARNING_SECONDS && !warned) {
      warned = true;
      warnHold(warning, left);
    }
  };
  tick();
  state.holdTimer = setInterval(tick, 1000);
}

function warnHold(warning, left) {
  const minutes = Math.max(1, Math.round(left / 60));
  const canExtend = state.hold && !state.hold.extended;
  replace(warning,
    h('p', {}, `Your hold ends in about ${minutes} minute${minutes === 1 ? '' : 's'}.`
      + (canExtend ? ` You can keep it ${state.clinic.hold_minutes} minutes longer, once.`
        : ' It cannot be extended again; book now to keep this time.')),
    canExtend ? h('button', { type: 'button', id: 'extend-hold', class: 'primary',
      onclick: (event) => busy(event.currentTarget, extendHold) },
    `Hold it ${state.clinic.hold_minutes} more minutes`) : null);
}

async function extendHold() {
  try {
    const hold = await post(`/api/v1/holds/${encodeURIComponent(state.hold.id)}/extend`, {},
      { token: state.hold.manage_token });
    state.hold = { ...state.hold, expires_at: hold.expires_at, extended: true };
    state.holdDeadline = Date.now() + state.clinic.hold_minutes * 60000;
    startCountdown();
    say(status, `We will hold this time until ${t.time(new Date(state.holdDeadline).toISOString(), zone)}.`, 'success');
    $('#client-name').focus();
  } catch (error) {
    say(status, explain(error), 'error');
    replace($('#hold-warning'));
    focusAlert();
  }
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
  if (!form.checkValidity()) {
    // The browser's own bubble is not announced everywhere: name the fields in the alert too.
    const missing = [...form.elements].filter((field) => field.willValidate && !field.validity.valid);
    say(status, `Please check: ${missing.map((field) => `${field.labels[0].childNodes[0].textContent.trim()} (${field.validationMessage})`).join('; ')}.`, 'error');
    for (const field of missing) field.setAttribute('aria-invalid', 'true');
    missing[0].focus();
    return;
  }
  for (const field of form.elements) field.removeAttribute('aria-invalid');
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
    focusAlert();
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
    nearest.length ? h('h3', { id: 'nearest-weekly' }, 'Nearest weekly times') : null,
    nearest.length ? h('ul', { class: 'slot-list', 'aria-labelledby': 'nearest-weekly' }, nearest.map((option) => h('li', {},
      h('button', { type: 'button', class: 'slot', onclick: () => { chooseOption(option); show(box, false); openDetails(); } },
        optionLabel(option))))) : null);
  show(box);
  show($('#step-details'), false);
  const first = box.querySelector('button');
  if (first) first.focus();
  else focusAlert();
}

// --- confirmation -----------------------------------------------------------------------------------

function place(modality, room) {
  if (modality === 'in_person') return `In person at the clinic in ${state.clinic.city}${room ? `, ${state.rooms[room] || room}` : ''}`;
  return modality === 'video' ? 'By video (the link is in your confirmation email)' : 'By phone: your therapist will call you';
}

// The calendar file is the server's (GET /api/v1/bookings/{id}.ics or courses'), with the
// manage token as ?token=: the same file the confirmation email carries.
function finish(summaryNodes, kind, id, token) {
  clearInterval(state.holdTimer);
  for (const step of ['#step-choose', '#step-time', '#step-details']) show($(step), false);
  replace($('#summary'), summaryNodes);
  const plural = kind === 'course' ? 'courses' : 'bookings';
  $('#ics-link').href = `/api/v1/${plural}/${encodeURIComponent(id)}.ics?token=${encodeURIComponent(token)}`;
  const manageUrl = `/manage?token=${encodeURIComponent(token)}&${kind}=${encodeURIComponent(id)}`;
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
  ], 'booking', booking.id, booking.manage_token);
}

function confirmCourse(course) {
  const title = `${sessionName()} with ${state.therapist.name}`;
  const count = course.sessions.length;
  finish([
    h('p', { class: 'big' }, `${count}-week course: ${title}`),
    h('p', {}, `Weekly on ${optionLabel({ sessions: [course.sessions[0].start] }).replace(/, from .*/, '')}, from ${t.longDate(course.first_start, zone)} to ${t.longDate(course.last_end, zone)}.`),
    h('p', {}, place(course.modality, course.sessions[0].room)),
    datesTable(`Your ${count} booked sessions`, course.sessions.map((s) => ({ number: s.number, start: s.start })), zone),
  ], 'course', course.id, course.manage_token);
}

readChoices();
start();
