// Times shown in the browser's own zone, with the clinic's beside them when they differ.

const LOCALE = 'en-GB';
const formats = new Map();

function format(zone, options) {
  const key = `${zone}|${JSON.stringify(options)}`;
  if (!formats.has(key)) {
    formats.set(key, new Intl.DateTimeFormat(LOCALE, { timeZone: zone, ...options }));
  }
  return formats.get(key);
}

export function browserZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

export function clinicZone() {
  return document.body.dataset.clinicZone || 'Europe/London';
}

// A short, readable name of a zone: "London" for Europe/London.
export function placeName(zone) {
  return zone.split('/').pop().replace(/_/g, ' ');
}

export const time = (iso, zone) => format(zone, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(new Date(iso));
export const day = (iso, zone) => format(zone, { weekday: 'short', day: 'numeric', month: 'short' }).format(new Date(iso));
export const longDate = (iso, zone) => format(zone, { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' }).format(new Date(iso));
export const dateTime = (iso, zone) => `${format(zone, { weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' }).format(new Date(iso))}, ${time(iso, zone)}`;

// "10:00" or, when the clinic's wall clock differs, "10:00 (09:00 London time)".
export function timeWithClinic(iso, zone) {
  const here = time(iso, zone);
  const there = time(iso, clinicZone());
  return here === there && dateKey(iso, zone) === dateKey(iso, clinicZone())
    ? here : `${here} (${there} ${placeName(clinicZone())} time)`;
}

export function dateTimeWithClinic(iso, zone) {
  const here = dateTime(iso, zone);
  const clinic = clinicZone();
  const there = dateTime(iso, clinic);
  return here === there ? here : `${here} (${time(iso, clinic)} ${placeName(clinic)} time)`;
}

// YYYY-MM-DD of an instant in a zone.
export function dateKey(iso, zone) {
  const parts = Object.fromEntries(format(zone, { year: 'numeric', month: '2-digit', day: '2-digit' })
    .formatToParts(new Date(iso)).map((p) => [p.type, p.value]));
  return `${parts.year}-${parts.month}-${parts.day}`;
}

export const todayKey = (zone) => dateKey(new Date().toISOString(), zone);

export function addDays(key, days) {
  const d = new Date(`${key}T12:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

export function mondayOf(key) {
  const weekday = new Date(`${key}T12:00:00Z`).getUTCDay(); // 0 = Sunday
  return addDays(key, weekday === 0 ? -6 : 1 - weekday);
}

// A date key as words, without a zone shift ("Tue 1 Dec").
export const keyLabel = (key) => day(`${key}T12:00:00Z`, 'UTC');
export const keyLongLabel = (key) => longDate(`${key}T12:00:00Z`, 'UTC');

export function hoursUntil(iso) {
  return (new Date(iso).getTime() - Date.now()) / 3600000;
}

// ", 2027" when the instant is not in the current year (a course may run into the next).
export function yearSuffix(iso, zone) {
  const year = dateKey(iso, zone).slice(0, 4);
  return year === todayKey(zone).slice(0, 4) ? '' : ` ${year}`;
}
