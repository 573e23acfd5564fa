// An RFC 5545 calendar file made in the browser from the booking the API returned: UTC times,
// CRLF line ends, escaped text, lines folded at 75 octets.

const encoder = new TextEncoder();

export function utcStamp(iso) {
  return new Date(iso).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

export function escapeText(text) {
  return String(text).replace(/\\/g, '\\\\').replace(/;/g, '\\;').replace(/,/g, '\\,')
    .replace(/\r\n|\r|\n/g, '\\n');
}

export function fold(line) {
  if (encoder.encode(line).length <= 75) return line;
  const pieces = [];
  let current = '';
  let size = 0;
  for (const ch of line) {
    const octets = encoder.encode(ch).length;
    if (size + octets > 75) {
      pieces.push(current);
      current = ' ';
      size = 1;
    }
    current += ch;
    size += octets;
  }
  pieces.push(current);
  return pieces.join('\r\n');
}

// events: [{id, start, end, summary, description?, location?, sequence?}]
export function calendarText(events, now = new Date()) {
  const stamp = utcStamp(now.toISOString());
  const lines = ['BEGIN:VCALENDAR', 'VERSION:2.0', 'PRODID:-//Clinic//Booking page//EN',
    'CALSCALE:GREGORIAN', 'METHOD:PUBLISH'];
  for (const event of events) {
    lines.push('BEGIN:VEVENT', `UID:booking-${event.id}@clinic`, `DTSTAMP:${stamp}`,
      `DTSTART:${utcStamp(event.start)}`, `DTEND:${utcStamp(event.end)}`,
      `SEQUENCE:${event.sequence || 0}`, 'STATUS:CONFIRMED', `SUMMARY:${escapeText(event.summary)}`);
    if (event.location) lines.push(`LOCATION:${escapeText(event.location)}`);
    if (event.description) lines.push(`DESCRIPTION:${escapeText(event.description)}`);
    lines.push('END:VEVENT');
  }
  lines.push('END:VCALENDAR');
  return `${lines.map(fold).join('\r\n')}\r\n`;
}

// Point a link at the file; the browser downloads it when the link is followed.
export function offerDownload(link, text, fileName) {
  if (link.href && link.href.startsWith('blob:')) URL.revokeObjectURL(link.href);
  link.href = URL.createObjectURL(new Blob([text], { type: 'text/calendar;charset=utf-8' }));
  link.download = fileName;
}
