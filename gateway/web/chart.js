// Scores over a course as an SVG chart, drawn here (no library): PHQ-9 and GAD-7 per session,
// the phases as shaded bands, the caseness thresholds as dashed lines. The two measures differ
// in marker shape and line style as well as colour; a table of the same scores is its text
// equivalent (scoreTable), so nothing depends on seeing the chart.

const NS = 'http://www.w3.org/2000/svg';
const WIDTH = 640;
const HEIGHT = 300;
const PAD = { left: 44, right: 16, top: 28, bottom: 42 };
const TOP_SCORE = 27;
export const MEASURES = [
  { id: 'phq9', name: 'PHQ-9 (depression)', threshold: 10, className: 'phq9', marker: 'circle' },
  { id: 'gad7', name: 'GAD-7 (anxiety)', threshold: 8, className: 'gad7', marker: 'square' },
];
const PHASE_NAMES = { assessment: 'Assessment', middle: 'Middle', ending: 'Ending' };

function el(tag, attributes = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

let counter = 0;

/** The chart for `progress` (the API's progress answer); `label` names it for screen readers. */
export function scoreChart(progress, label) {
  counter += 1;
  const sessions = Math.max(progress.sessions, 1);
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const x = (n) => PAD.left + ((n - 0.5) / sessions) * plotW;
  const y = (score) => PAD.top + plotH - (score / TOP_SCORE) * plotH;
  const titleId = `chart-title-${counter}`;
  const descId = `chart-desc-${counter}`;
  const svg = el('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: 'score-chart', role: 'img',
    'aria-labelledby': `${titleId} ${descId}` });
  svg.append(el('title', { id: titleId }, label));
  const count = progress.check_ins.length;
  svg.append(el('desc', { id: descId }, count
    ? `${count} check-in${count === 1 ? '' : 's'}; the table below lists every score.`
    : 'No check-ins yet.'));

  for (const phase of progress.phases) {
    const left = PAD.left + ((phase.first - 1) / sessions) * plotW;
    const right = PAD.left + (phase.last / sessions) * plotW;
    svg.append(el('rect', { x: left, y: PAD.top, width: right - left, height: plotH,
      class: `band ${phase.phase}` }));
    svg.append(el('text', { x: (left + right) / 2, y: PAD.top - 8, 'text-anchor': 'middle',
      class: 'band-label' }, PHASE_NAMES[phase.phase] || phase.phase));
  }
  for (const score of [0, 5, 10, 15, 20, 25]) {
    svg.append(el('line', { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(score), y2: y(score),
      class: 'grid' }));
    svg.append(el('text', { x: PAD.left - 6, y: y(score) + 4, 'text-anchor': 'end',
      class: 'tick' }, String(score)));
  }
  const step = sessions > 20 ? Math.ceil(sessions / 13) : 1;
  for (let n = 1; n <= sessions; n += step) {
    svg.append(el('text', { x: x(n), y: HEIGHT - PAD.bottom + 16, 'text-anchor': 'middle',
      class: 'tick' }, String(n)));
  }
  svg.append(el('text', { x: PAD.left + plotW / 2, y: HEIGHT - 6, 'text-anchor': 'middle',
    class: 'axis-label' }, 'Session'));

  for (const measure of MEASURES) {
    svg.append(el('line', { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(measure.threshold),
      y2: y(measure.threshold), class: `threshold ${measure.className}` }));
    svg.append(el('text', { x: WIDTH - PAD.right - 2, y: y(measure.threshold) - 4,
      'text-anchor': 'end', class: `threshold-label ${measure.className}` },
    `${measure.id === 'phq9' ? 'PHQ-9' : 'GAD-7'} ${measure.threshold}`));
    const points = progress.check_ins.map((c) => [x(c.session_number), y(c[measure.id].total)]);
    if (points.length > 1) {
      svg.append(el('polyline', { points: points.map((p) => p.join(',')).join(' '),
        class: `series ${measure.className}` }));
    }
    for (const [px, py] of points) {
      svg.append(measure.marker === 'circle'
        ? el('circle', { cx: px, cy: py, r: 5, class: `point ${measure.className}` })
        : el('rect', { x: px - 5, y: py - 5, width: 10, height: 10,
          class: `point ${measure.className}` }));
    }
  }
  return svg;
}

const SEVERITY = { minimal: 'minimal', mild: 'mild', moderate: 'moderate',
  moderately_severe: 'moderately severe', severe: 'severe' };

/** The same scores as a table, one row per check-in. */
export function scoreTable(progress, caption, { reflections = false } = {}) {
  const table = document.createElement('table');
  table.className = 'score-table';
  const cap = document.createElement('caption');
  cap.textContent = caption;
  table.append(cap);
  const head = table.createTHead().insertRow();
  for (const name of ['Session', 'Phase', 'PHQ-9', 'GAD-7', ...(reflections ? ['Risk', 'Reflection'] : [])]) {
    const th = document.createElement('th');
    th.scope = 'col';
    th.textContent = name;
    head.append(th);
  }
  const body = table.createTBody();
  for (const c of progress.check_ins) {
    const row = body.insertRow();
    const th = document.createElement('th');
    th.scope = 'row';
    th.textContent = String(c.session_number);
    row.append(th);
    const cells = [PHASE_NAMES[c.phase] || '',
      `${c.phq9.total} (${SEVERITY[c.phq9.severity] || c.phq9.severity})`,
      `${c.gad7.total} (${SEVERITY[c.gad7.severity] || c.gad7.severity})`];
    if (reflections) cells.push(c.risk ? 'Yes: flagged' : 'No', c.reflection || '—');
    for (const text of cells) row.insertCell().textContent = text;
  }
  return table;
}

/** A key to the chart in words and shapes. */
export function chartKey() {
  const list = document.createElement('ul');
  list.className = 'chart-key';
  for (const [className, text] of [['phq9', 'PHQ-9: circles, solid line; dashed line at 10'],
    ['gad7', 'GAD-7: squares, dotted line; dashed line at 8']]) {
    const item = document.createElement('li');
    item.className = className;
    item.textContent = text;
    list.append(item);
  }
  return list;
}
