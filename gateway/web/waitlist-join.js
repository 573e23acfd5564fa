// "Tell me when a time like this frees up": joining the waitlist from the booking page.
// The booking page calls offerWaitlist() with what the client chose; this module owns the
// #waitlist-join section of index.html.
import { explain, post } from './api.js';
import * as t from './time.js';
import { $, busy, focusHeading, h, replace, say, show } from './ui.js';

const WEEKDAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];
let choice = null;

function field(id, label, input) {
  return h('div', { class: 'field' }, h('label', { for: id }, label), input);
}

function buildForm() {
  const zone = t.browserZone();
  const form = h('form', { id: 'waitlist-form', class: 'grid-form', novalidate: true },
    h('fieldset', {},
      h('legend', {}, `When could you come? (${t.placeName(zone)} time)`),
      field('wl-weekday', 'Day', h('select', { id: 'wl-weekday', name: 'weekday', required: true },
        WEEKDAYS.map((day) => h('option', { value: day }, day[0].toUpperCase() + day.slice(1))))),
      field('wl-start', 'From', h('input', { id: 'wl-start', name: 'start', type: 'time', value: '09:00', required: true })),
      field('wl-end', 'Until', h('input', { id: 'wl-end', name: 'end', type: 'time', value: '17:00', required: true }))),
    field('wl-until', 'Keep waiting until (optional)', h('input', { id: 'wl-until', name: 'until', type: 'date', min: t.todayKey(zone) })),
    field('wl-name', 'Your name', h('input', { id: 'wl-name', name: 'name', autocomplete: 'name', required: true, maxlength: 200 })),
    field('wl-email', 'Your email', h('input', { id: 'wl-email', name: 'email', type: 'email', autocomplete: 'email', required: true, maxlength: 320 })),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary', id: 'wl-join' }, 'Join the waitlist')));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    busy($('#wl-join'), () => join(form, zone));
  });
  return form;
}

async function join(form, zone) {
  const region = $('#waitlist-status');
  const values = Object.fromEntries(new FormData(form));
  if (!values.name || !values.email || !values.start || !values.end) {
    say(region, 'Please give a day, the hours you could come, your name and your email.', 'error');
    return;
  }
  const body = {
    session_type: choice.sessionType, modality: choice.modality, kind: choice.kind,
    windows: [{ weekday: values.weekday, start: values.start, end: values.end }], tz: zone,
    client: { name: values.name, email: values.email },
  };
  if (choice.therapistId) body.therapist_id = choice.therapistId;
  if (choice.kind === 'course') body.sessions = choice.sessions;
  if (values.until) body.until = values.until;
  try {
    const entry = await post('/api/v1/waitlist', body);
    const link = `/waitlist?${new URLSearchParams({ token: entry.manage_token, entry: entry.id })}`;
    replace($('#waitlist-body'),
      h('p', {}, 'You are on the waitlist. When a time like this frees up we hold it for you and email you a link to accept it.'),
      h('p', {}, h('a', { href: link }, 'See or leave your place on the waitlist')),
      h('p', { class: 'note' }, 'Keep this link: it is the only way to see your place without the email.'));
    say(region, 'You are on the waitlist.', 'success');
    focusHeading($('#waitlist-join'));
  } catch (error) {
    say(region, explain(error), 'error');
  }
}

export function offerWaitlist({ therapistId, sessionType, modality, kind, sessions }) {
  const section = $('#waitlist-join');
  if (!section) return;
  choice = { therapistId, sessionType, modality, kind: kind === 'course' ? 'course' : 'session', sessions };
  const open = h('button', { type: 'button', id: 'wl-open', 'aria-expanded': 'false', 'aria-controls': 'waitlist-body' },
    'None of these times suit me: tell me when a time like this frees up');
  open.addEventListener('click', () => {
    replace($('#waitlist-body'), buildForm());
    open.setAttribute('aria-expanded', 'true');
    show(open, false);
    $('#wl-weekday').focus();
  });
  replace($('#waitlist-body'));
  replace($('#waitlist-open'), open);
  say($('#waitlist-status'), '');
  show(section);
}
