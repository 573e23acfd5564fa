// A course at a glance: one mark per session, done / to come / cancelled.

import { h } from './ui.js';

export function sessionState(session, now = Date.now()) {
  if (session.status === 'cancelled') return 'cancelled';
  if (session.status === 'no_show') return 'missed';
  if (session.status === 'attended' || new Date(session.end).getTime() <= now) return 'done';
  return 'to-come';
}

const WORDS = { done: 'done', 'to-come': 'to come', cancelled: 'cancelled', missed: 'missed' };

export function courseMarks(sessions, label) {
  const counts = { done: 0, 'to-come': 0, cancelled: 0, missed: 0 };
  const marks = sessions.map((session) => {
    const state = sessionState(session);
    counts[state] += 1;
    return h('li', { class: `mark ${state}`, title: `Session ${session.number}: ${WORDS[state]}` },
      h('span', { class: 'visually-hidden' }, `Session ${session.number}: ${WORDS[state]}`));
  });
  const summary = `${counts.done} done, ${counts['to-come']} to come, ${counts.cancelled} cancelled`
    + (counts.missed ? `, ${counts.missed} missed` : '');
  return h('div', { class: 'progress' },
    h('ol', { class: 'marks', 'aria-label': label }, marks),
    h('p', { class: 'marks-summary' }, summary));
}

export function legend() {
  return h('ul', { class: 'legend', 'aria-hidden': 'true' },
    ['done', 'to-come', 'cancelled'].map((state) => h('li', {}, h('span', { class: `mark ${state}` }), WORDS[state])));
}
