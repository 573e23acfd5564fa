// The waitlist page (/waitlist?token=…&entry=…): the entry, its live offer, accept or decline,
// leave. The token goes in the Authorization header, never into another address.
import { call, explain, get, post } from './api.js';
import * as t from './time.js';
import { $, busy, focusHeading, h, MODALITY, replace, say, show } from './ui.js';

const params = new URLSearchParams(window.location.search);
const token = params.get('token');
const entryId = params.get('entry');
const zone = t.browserZone();
const status = $('#status');
const STATUS_WORDS = {
  waiting: 'Waiting for a time like this to come free.',
  offered: 'A time is being held for you.',
  booked: 'Booked.',
  left: 'You left the waitlist.',
  expired: 'The date you gave has passed; you are no longer waiting.',
};
let entry = null;

function windowsText(windows, tz) {
  return windows.map((w) => `${w.weekday[0].toUpperCase()}${w.weekday.slice(1)} ${w.start}–${w.end}`)
    .join(', ') + ` (${t.placeName(tz)} time)`;
}

function render() {
  const facts = [
    ['Status', STATUS_WORDS[entry.status] || entry.status],
    ['Session', `${entry.kind === 'course' ? `A course of ${entry.sessions} weekly sessions` : 'One session'}, ${MODALITY[entry.modality] || entry.modality}`],
    ['Therapist', entry.therapist_id || 'Any therapist'],
    ['When you could come', windowsText(entry.windows, entry.tz)],
  ];
  if (entry.until) facts.push(['Waiting until', entry.until]);
  replace($('#entry-body'), facts.flatMap(([term, detail]) => [h('dt', {}, term), h('dd', {}, detail)]));
  show($('#entry'));
  show($('#leave').parentElement, entry.status === 'waiting' || entry.status === 'offered');
  const offer = entry.offer;
  show($('#offer'), Boolean(offer));
  if (offer) {
    $('#offer-expires').textContent = `We hold it for you until ${t.dateTimeWithClinic(offer.expires_at, zone)}.`;
    replace($('#offer-times'), offer.sessions.map((start) => h('li', {}, t.dateTimeWithClinic(start, zone))));
  }
}

async function load() {
  entry = await get(`/api/v1/waitlist/${encodeURIComponent(entryId)}`, { token });
  render();
}

async function accept() {
  try {
    const booked = await post(`/api/v1/waitlist/${encodeURIComponent(entryId)}/accept`,
      { offer_id: entry.offer.id }, { token });
    show($('#offer'), false);
    show($('#entry'), false);
    const isCourse = Array.isArray(booked.sessions);
    $('#booked-body').textContent = isCourse
      ? `Your course of ${booked.sessions.length} sessions begins ${t.dateTimeWithClinic(booked.first_start, zone)}. A confirmation is on its way by email.`
      : `Your session is on ${t.dateTimeWithClinic(booked.start, zone)}. A confirmation is on its way by email.`;
    const link = new URLSearchParams({ token: booked.manage_token, [isCourse ? 'course' : 'booking']: booked.id });
    $('#booked-link').href = `/manage?${link}`;
    show($('#booked'));
    say(status, 'Booked. A confirmation is on its way by email.', 'success');
    focusHeading($('#booked'));
  } catch (error) {
    say(status, error.code === 'hold_expired'
      ? 'Sorry, the time was no longer held for you. You keep your place on the waitlist.'
      : explain(error), 'error');
    await load().catch(() => {});
    focusHeading($('#entry'));
  }
}

async function decline() {
  try {
    entry = await post(`/api/v1/waitlist/${encodeURIComponent(entryId)}/decline`,
      { offer_id: entry.offer.id }, { token });
    render();
    say(status, 'Declined. The time goes to the next person; you keep your place for another time.', 'success');
    focusHeading($('#entry'));
  } catch (error) {
    say(status, explain(error), 'error');
  }
}

async function leave() {
  try {
    await call('DELETE', `/api/v1/waitlist/${encodeURIComponent(entryId)}`, { token });
    await load();
    say(status, 'You have left the waitlist.', 'success');
    focusHeading($('#entry'));
  } catch (error) {
    say(status, explain(error), 'error');
  }
}

$('#zone-name').textContent = t.placeName(zone);
$('#accept').addEventListener('click', (event) => busy(event.currentTarget, accept));
$('#decline').addEventListener('click', (event) => busy(event.currentTarget, decline));
$('#leave').addEventListener('click', (event) => busy(event.currentTarget, leave));
if (!token || !entryId) {
  say(status, 'This link is incomplete. Please open the link from your email again.', 'error');
} else {
  load().catch((error) => say(status, explain(error), 'error'));
}
