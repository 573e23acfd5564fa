// The client's progress page: where they are in the course, the weekly check-in (one question
// at a time), their scores over time (chart and table), the agreed focus and the shared letter.
// The manage token comes from the link in their email (?token=&course=) and is sent as a header.

import { explain, get, post } from './api.js';
import { chartKey, scoreChart, scoreTable } from './chart.js';
import * as t from './time.js';
import { $, busy, h, replace, say, show } from './ui.js';

const params = new URLSearchParams(window.location.search);
const token = params.get('token');
const courseId = params.get('course');
const zone = t.browserZone();
const status = $('#status');
const PHASES = { assessment: 'Assessment', middle: 'Middle', ending: 'Ending' };
const PHASE_HELP = {
  assessment: 'the first sessions, where you and your therapist find the pattern in your relationships to work on',
  middle: 'the middle sessions, where you work on changing that pattern',
  ending: 'the final sessions, where you look back together and prepare for the ending',
};
const state = { questionnaires: [], questions: [], answers: [], at: 0 };

async function load() {
  if (!token || !courseId) {
    say(status, 'This page needs the link from your email (it carries your course and its key).', 'error');
    return;
  }
  $('#manage-link').href = `/manage?${new URLSearchParams({ token, course: courseId })}`;
  try {
    const [questionnaires, progress] = await Promise.all([
      get('/api/v1/questionnaires'),
      get(`/api/v1/courses/${encodeURIComponent(courseId)}/progress`, { token }),
    ]);
    state.questionnaires = questionnaires;
    render(progress);
  } catch (error) {
    say(status, explain(error), 'error');
  }
}

function render(progress) {
  renderWhere(progress);
  renderCheckIn(progress);
  renderScores(progress);
  renderFocus(progress);
  renderLetter(progress);
}

function fact(term, ...value) {
  return [h('dt', {}, term), h('dd', {}, ...value)];
}

function renderWhere(progress) {
  const next = progress.next_session;
  const phase = progress.current_phase;
  const facts = [];
  if (progress.status === 'cancelled') facts.push(fact('Course', 'Cancelled'));
  if (phase) facts.push(fact('Phase', `${PHASES[phase]}: ${PHASE_HELP[phase]}`));
  facts.push(fact('Session', next ? `${next.number} of ${progress.sessions}`
    : `All ${progress.sessions} sessions are behind you`));
  if (next) facts.push(fact('Next session', t.dateTimeWithClinic(next.start, zone)));
  if (progress.last_end) facts.push(fact('Course ends', t.longDate(progress.last_end, zone)));
  replace($('#where-facts'), facts.flat());
  show($('#where'));
}

// ---- the check-in, one question at a time ----------------------------------------------------

function renderCheckIn(progress) {
  const open = progress.check_in_open_for;
  show($('#check-in'), Boolean(open));
  if (!open) return;
  state.questions = state.questionnaires.flatMap((q) => q.items.map((text, index) => ({
    questionnaire: q, text, index })));
  state.answers = state.questions.map(() => null);
  state.at = 0;
  $('#check-in-intro').textContent = `Before session ${open}: ${state.questions.length} short questions about the last two weeks, then a few words if you like. It takes about three minutes.`;
  showQuestion(false);
}

function showQuestion(moveFocus = true) {
  const box = $('#question-box');
  const total = state.questions.length;
  say($('#form-error'), '');
  if (state.at >= total) {
    replace(box, h('div', { class: 'field' },
      h('h3', { id: 'step-heading', tabindex: '-1' }, 'Anything you would like to add?'),
      h('label', { for: 'reflection' }, 'What did you try since your last session, and how did it go? ',
        h('span', { class: 'optional' }, '(optional; only you and your therapist read it)')),
      h('textarea', { id: 'reflection', name: 'reflection', rows: '5', maxlength: '4000' })));
  } else {
    const question = state.questions[state.at];
    const name = `q-${state.at}`;
    const options = question.questionnaire.options.map((option) => h('label', { class: 'choice' },
      h('input', { type: 'radio', name, value: String(option.value), required: true,
        checked: state.answers[state.at] === option.value,
        onchange: () => { state.answers[state.at] = option.value; } }),
      option.label));
    replace(box, h('div', { class: 'question' },
      h('h3', { id: 'step-heading', tabindex: '-1' }, `Question ${state.at + 1} of ${total}`),
      h('p', { class: 'muted' }, question.questionnaire.prompt),
      h('fieldset', {}, h('legend', {}, question.text), options)));
  }
  show($('#back'), state.at > 0);
  show($('#next'), state.at < total);
  show($('#send'), state.at >= total);
  if (moveFocus) $('#step-heading').focus();
}

$('#next').addEventListener('click', () => {
  if (state.answers[state.at] === null) {
    say($('#form-error'), 'Please choose one answer to go on.', 'error');
    const first = $('#question-box input[type="radio"]');
    if (first) first.focus();
    return;
  }
  state.at += 1;
  showQuestion();
});

$('#back').addEventListener('click', () => {
  state.at = Math.max(0, state.at - 1);
  showQuestion();
});

$('#check-in-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const phq9 = state.questions.map((q, i) => [q, state.answers[i]])
    .filter(([q]) => q.questionnaire.id === 'phq9').map(([, a]) => a);
  const gad7 = state.questions.map((q, i) => [q, state.answers[i]])
    .filter(([q]) => q.questionnaire.id === 'gad7').map(([, a]) => a);
  const reflection = $('#reflection').value.trim();
  try {
    const answer = await busy($('#send'), () => post(
      `/api/v1/courses/${encodeURIComponent(courseId)}/check-ins`,
      { answers: { phq9, gad7 }, ...(reflection ? { reflection } : {}) }, { token }));
    const progress = await get(`/api/v1/courses/${encodeURIComponent(courseId)}/progress`, { token });
    render(progress);
    if (answer.risk) {
      showUrgentHelp(answer.urgent_help);
    } else {
      say(status, `Thank you: your check-in for session ${answer.session_number} is in.`, 'success');
      $('#scores-heading').setAttribute('tabindex', '-1');
      $('#scores-heading').focus();
    }
  } catch (error) {
    say($('#form-error'), explain(error), 'error');
  }
});

function showUrgentHelp(help) {
  $('#urgent-message').textContent = help.message;
  replace($('#urgent-contacts'), help.contacts.map((c) => h('li', {},
    h('strong', {}, `${c.name}: `), h('a', { href: `tel:${c.phone.replace(/\s/g, '')}` }, c.phone),
    ` — ${c.when}`)));
  show($('#urgent'));
  say(status, 'Thank you: your check-in is in.', 'success');
  $('#urgent-heading').focus();
}

// ---- scores, focus, letter ---------------------------------------------------------------------

function verdict(progress) {
  if (!progress.latest) {
    return progress.baseline ? 'Your first check-in is your starting point; the next ones will show the change.'
      : 'Your scores will appear here after your first check-in.';
  }
  const parts = [`From session ${progress.check_ins[0].session_number} to ${progress.check_ins.at(-1).session_number}: PHQ-9 ${progress.baseline.phq9} → ${progress.latest.phq9}, GAD-7 ${progress.baseline.gad7} → ${progress.latest.gad7}.`];
  if (progress.recovery) parts.push('Both scores are now below the usual thresholds.');
  else if (progress.reliable_improvement) parts.push('That is a reliable improvement.');
  else if (progress.reliable_deterioration) parts.push('Scores have risen; it may help to talk about this with your therapist.');
  return parts.join(' ');
}

function renderScores(progress) {
  replace($('#chart-box'), scoreChart(progress, 'Your PHQ-9 and GAD-7 scores by session, with the course’s phases'), chartKey());
  replace($('#summary'), h('p', {}, verdict(progress)));
  replace($('#table-box'), progress.check_ins.length
    ? scoreTable(progress, 'Your scores by session') : null);
  show($('#scores'));
}

function renderFocus(progress) {
  const focus = progress.focus;
  show($('#focus'), Boolean(focus));
  if (!focus) return;
  replace($('#focus-body'),
    h('h3', {}, 'The pattern in your relationships'), h('p', {}, focus.interpersonal),
    h('h3', {}, 'The feelings that go with it'), h('p', {}, focus.affective));
}

function renderLetter(progress) {
  const letter = progress.letter;
  show($('#letter'), Boolean(letter && letter.status === 'shared'));
  if (!letter || letter.status !== 'shared') return;
  replace($('#letter-body'), h('p', { class: 'muted' }, `Shared on ${t.longDate(letter.shared_at, zone)}`),
    h('div', { class: 'letter-text' }, letter.text));
}

load();
