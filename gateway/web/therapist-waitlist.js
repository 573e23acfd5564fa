// The therapist page's waitlist: who waits for a time with this therapist, first joined first.
// Names as initials, as elsewhere on the page.
import { explain, get } from './api.js';
import * as t from './time.js';
import { $, MODALITY_SHORT, h, initials, replace } from './ui.js';

const STATUS = { waiting: 'waiting', offered: 'offered a time' };

export async function loadWaitlist(therapistId, token, zone) {
  const box = $('#waitlist-list');
  if (!box) return;
  try {
    const entries = await get('/api/v1/waitlist', { token, query: { therapist_id: therapistId } });
    const open = entries.filter((e) => e.status in STATUS);
    if (!open.length) {
      replace(box, h('p', { class: 'empty' }, 'Nobody is waiting.'));
      return;
    }
    replace(box, h('ol', { class: 'plain-list' }, open.map((e) => h('li', { 'data-entry': e.id },
      h('strong', {}, initials(e.client && e.client.name)),
      ` · ${e.kind === 'course' ? `course of ${e.sessions}` : 'one session'} · ${MODALITY_SHORT[e.modality]}`,
      ` · ${e.windows.map((w) => `${w.weekday} ${w.start}–${w.end}`).join(', ')}`,
      ` · ${STATUS[e.status]}`,
      e.offer ? ` (${t.dateTime(e.offer.start, zone)})` : null))));
  } catch (error) {
    replace(box, h('p', { class: 'error' }, explain(error)));
  }
}
