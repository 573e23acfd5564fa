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

// A message for screen readers and eyes alike; kind: info | error | success. A page's errors
// for its #status go to its role="alert" region (#alert, announced at once) when it has one.
// Regions marked `live` stay in the page while empty (a region that appears together with its
// text is not always read out); others are hidden while they have nothing to say.
export function say(region, message, kind = 'info') {
  const alert = region.id === 'status' ? document.getElementById('alert') : null;
  const target = kind === 'error' && alert ? alert : region;
  for (const node of [region, alert]) {
    if (node && node !== target) put(node, '');
  }
  put(target, message);
  target.dataset.kind = kind;
}

function put(node, message) {
  node.textContent = message;
  if (!node.classList.contains('live')) node.hidden = !message;
}

// After a submit that failed: the error takes the focus, so it is read out and seen.
export function focusAlert() {
  const alert = document.getElementById('alert');
  if (alert && alert.textContent) {
    alert.setAttribute('tabindex', '-1');
    alert.focus();
  }
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

export const MODALITY = { in_person: 'In person at the clinic', video: 'Video', phone: 'Phone' };
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

/** Re-render `box` without losing the keyboard focus: when the focus was inside it, it goes to
 * the new element with the same `data-key` (or `data-start`), else to the box's first control. */
export function replaceKeepingFocus(box, ...children) {
  const active = document.activeElement;
  const inside = active && active !== box && box.contains(active);
  const key = inside ? (active.dataset.key || active.dataset.start) : null;
  replace(box, ...children);
  if (!inside) return;
  const same = key && [...box.querySelectorAll('[data-key], [data-start]')]
    .find((node) => (node.dataset.key || node.dataset.start) === key);
  const next = same || box.querySelector('button:not([disabled]), input, a[href]');
  if (next) next.focus();
  else {
    box.setAttribute('tabindex', '-1');
    box.focus();
  }
}
