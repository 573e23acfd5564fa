// The therapist page's progress section: per course a chart of both measures with the phase
// bands, the check-ins with their reflections, the risk flag until seen, and editors for the
// focus and the goodbye letter. It starts once therapist.js has signed in (the workspace shows)
// and reads the same sessionStorage entry; it changes nothing else on the page.

import { explain, get, post, put } from './api.js';
import { chartKey, scoreChart, scoreTable } from './chart.js';
import * as t from './time.js';
import { $, busy, h, replace, say } from './ui.js';

const STORE = 'clinic.therapist';
const PHASES = { assessment: 'assessment', middle: 'middle', ending: 'ending' };
const status = $('#progress-status');
let loaded = false;

function signedIn() {
  return JSON.parse(sessionStorage.getItem(STORE) || 'null');
}

async function loadAll() {
  const who = signedIn();
  if (!who || loaded) return;
  loaded = true;
  try {
    const courses = await get(`/api/v1/therapists/${encodeURIComponent(who.id)}/courses`,
      { token: who.token });
    const active = courses.filter((c) => c.status === 'active' || c.risk_unseen).slice(0, 30);
    if (!active.length) {
      replace($('#progress-list'), h('p', { class: 'empty' }, 'No running courses yet.'));
      return;
    }
    const cards = await Promise.all(active.map((c) => courseCard(c, who.token)));
    replace($('#progress-list'), h('ul', { class: 'course-cards progress-cards' }, cards));
    const wanted = new URLSearchParams(window.location.search).get('course');
    const target = wanted && document.getElementById(`progress-${wanted}`);
    if (target) {
      target.scrollIntoView();
      target.querySelector('h3').focus();
    }
  } catch (error) {
    say(status, explain(error), 'error');
  }
}

async function courseCard(summary, token) {
  const id = summary.course_id;
  const [course, progress] = await Promise.all([
    get(`/api/v1/courses/${encodeURIComponent(id)}`, { token }),
    get(`/api/v1/courses/${encodeURIComponent(id)}/progress`, { token }),
  ]);
  const name = course.client.name;
  const card = h('li', { class: 'course-card progress-card', id: `progress-${id}` });
  const heading = h('h3', { tabindex: '-1' }, `${name}: ${progress.check_ins.length} check-in${progress.check_ins.length === 1 ? '' : 's'}`);
  const where = progress.next_session
    ? `Session ${progress.next_session.number} of ${progress.sessions} next (${t.dateTime(progress.next_session.start, t.clinicZone())}), ${PHASES[progress.current_phase]} phase.`
    : `All ${progress.sessions} sessions are behind you.`;
  card.append(heading, h('p', {}, where));
  if (progress.risk_unseen) card.append(riskFlag(id, token, card));
  card.append(scoreChart(progress, `${name}: PHQ-9 and GAD-7 by session, with the phases`), chartKey());
  if (progress.check_ins.length) {
    card.append(h('div', { class: 'table-box' }, scoreTable(progress, `${name}'s check-ins`, { reflections: true })));
  }
  card.append(focusEditor(id, token, progress.focus), letterEditor(id, token, progress.letter));
  return card;
}

function riskFlag(id, token, card) {
  const box = h('div', { class: 'warning risk-box' },
    h('p', { class: 'risk-flag' }, 'Risk flagged in a check-in (PHQ-9 question 9) — not yet seen.'),
    h('button', { type: 'button', onclick: async (event) => {
      try {
        await busy(event.currentTarget, () => post(`/api/v1/courses/${encodeURIComponent(id)}/risk/seen`, undefined, { token }));
        box.replaceWith(h('p', { class: 'muted' }, 'Risk flag marked as seen.'));
        card.querySelector('h3').focus();
      } catch (error) {
        say(status, explain(error), 'error');
      }
    } }, 'I have seen it'));
  return box;
}

let fieldCounter = 0;

function textField(label, value, maxlength, rows) {
  fieldCounter += 1;
  const id = `progress-field-${fieldCounter}`;
  const area = h('textarea', { id, rows: String(rows), maxlength: String(maxlength) });
  area.value = value || '';
  return { area, field: h('div', { class: 'field' }, h('label', { for: id }, label), area) };
}

function focusEditor(id, token, focus) {
  const interpersonal = textField('Interpersonal pattern', focus && focus.interpersonal, 2000, 3);
  const affective = textField('Feelings that go with it', focus && focus.affective, 2000, 2);
  const note = h('p', { class: 'status', role: 'status', 'aria-live': 'polite', hidden: true });
  const form = h('form', { class: 'grid-form' }, h('h4', {}, 'Focus (the client sees it)'),
    interpersonal.field, affective.field,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Save the focus')), note);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      await busy(form.querySelector('button'), () => put(`/api/v1/courses/${encodeURIComponent(id)}/focus`,
        { interpersonal: interpersonal.area.value, affective: affective.area.value }, { token }));
      say(note, 'Focus saved; the client can see it now.', 'success');
    } catch (error) {
      say(note, explain(error), 'error');
    }
  });
  return form;
}

function letterEditor(id, token, letter) {
  const shared = letter && letter.status === 'shared';
  const text = textField('Goodbye letter', letter && letter.text, 20000, 6);
  const note = h('p', { class: 'status', role: 'status', 'aria-live': 'polite', hidden: true });
  const save = h('button', { type: 'submit' }, 'Save the draft');
  const share = h('button', { type: 'button', class: 'primary' }, 'Share with the client');
  const form = h('form', { class: 'grid-form' },
    h('h4', {}, shared ? `Goodbye letter (shared ${t.longDate(letter.shared_at, t.clinicZone())})` : 'Goodbye letter (draft: only you see it)'),
    text.field, h('div', { class: 'actions' }, save, share), note);
  if (shared) {
    text.area.readOnly = true;
    save.hidden = true;
    share.hidden = true;
  }
  const path = `/api/v1/courses/${encodeURIComponent(id)}/letter`;
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      await busy(save, () => put(path, { text: text.area.value }, { token }));
      say(note, 'Draft saved. The client sees it only once you share it.', 'success');
    } catch (error) {
      say(note, explain(error), 'error');
    }
  });
  share.addEventListener('click', async () => {
    try {
      await busy(share, async () => {
        await put(path, { text: text.area.value }, { token });
        return post(`${path}/share`, undefined, { token });
      });
      text.area.readOnly = true;
      save.hidden = true;
      share.hidden = true;
      say(note, 'Shared: the client has been emailed that a letter is waiting for them.', 'success');
    } catch (error) {
      say(note, explain(error), 'error');
    }
  });
  return form;
}

// therapist.js shows the workspace once the token is proven; start then.
const workspace = $('#workspace');
new MutationObserver(() => { if (!workspace.hidden) loadAll(); })
  .observe(workspace, { attributes: true, attributeFilter: ['hidden'] });
if (!workspace.hidden) loadAll();
