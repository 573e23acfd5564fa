// A course's dates as a table with a caption: session number, date, time (the client's zone, the
// clinic's beside it when it differs). Read by screen readers row by row, with headers.

import * as t from './time.js';
import { h } from './ui.js';

/** rows: [{number, start, status?}]; `caption` names the table. */
export function datesTable(caption, rows, zone) {
  const clinic = t.clinicZone();
  const differs = rows.some((row) => t.time(row.start, zone) !== t.time(row.start, clinic));
  const withStatus = rows.some((row) => row.status);
  return h('div', { class: 'table-box', role: 'region', 'aria-label': caption, tabindex: '0' },
    h('table', { class: 'dates-table' },
      h('caption', {}, caption),
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, 'Session'), h('th', { scope: 'col' }, 'Date'),
        h('th', { scope: 'col' }, `Time (${t.placeName(zone)})`),
        differs ? h('th', { scope: 'col' }, `${t.placeName(clinic)} time`) : null,
        withStatus ? h('th', { scope: 'col' }, 'Status') : null)),
      h('tbody', {}, rows.map((row) => h('tr', { 'data-start': row.start },
        h('th', { scope: 'row' }, String(row.number)),
        h('td', {}, t.day(row.start, zone) + t.yearSuffix(row.start, zone)),
        h('td', {}, t.time(row.start, zone)),
        differs ? h('td', {}, t.time(row.start, clinic)) : null,
        withStatus ? h('td', {}, row.status || '') : null)))));
}
