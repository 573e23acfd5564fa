import * as t from './time.js';

// Small DOM helpers shared by the pages.

export function h(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export const $ = (selector, root = document) => root.querySelector(selector);

export function replace(node, ...children) {
  node.replaceChildren();
  for (const child of children.flat()) if (child) node.append(child);
}

// A message for screen readers and eyes alike; kind: info | error | success.
export function say(region, message, kind = 'info') {
  region.textContent = message;
  region.dataset.kind = kind;
  region.hidden = !message;
}

export function show(node, visible = true) {
  node.hidden = !visible;
}

export function focusHeading(section) {
  const heading = section.querySelector('h2, h3');
  if (heading) {
    heading.setAttribute('tabindex', '-1');
    heading.focus();
  }
}

export const MODALITY = { in_person: 'In person (London clinic)', video: 'Video', phone: 'Phone' };
export const MODALITY_SHORT = { in_person: 'In person', video: 'Video', phone: 'Phone' };

export function initials(name) {
  return (name || '').split(/\s+/).filter(Boolean).map((part) => part[0].toUpperCase()).join('').slice(0, 3) || '?';
}

export async function busy(button, work) {
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}

/** Free times grouped by day in `zone`; `button(slot)` makes each time's button. */
export function renderSlotDays(box, slots, zone, button) {
  if (!slots.length) {
    replace(box, h('p', { class: 'empty' }, 'No free times in these days. Try later dates.'));
    return;
  }
  const byDay = new Map();
  for (const slot of slots) {
    const key = t.dateKey(slot.start, zone);
    if (!byDay.has(key)) byDay.set(key, []);
    byDay.get(key).push(slot);
  }
  replace(box, [...byDay].map(([key, daySlots]) => h('div', { class: 'day' },
    h('h3', {}, t.keyLongLabel(key)),
    h('ul', { class: 'slot-list' }, daySlots.map((slot) => h('li', {}, button(slot)))))));
}
