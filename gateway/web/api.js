// Calls to the clinic's public API (API.md) and readable sentences for its errors.

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

export async function call(method, path, { body, token, query, headers } = {}) {
  const url = new URL(path, window.location.origin);
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== '') url.searchParams.set(key, value);
  }
  const init = { method, headers: { Accept: 'application/json', ...headers } };
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch {
    throw new ApiError(0, 'network', 'We could not reach the clinic. Check your connection and try again.');
  }
  if (response.status === 204) return null;
  let payload;
  try {
    payload = await response.json();
  } catch {
    payload = null;
  }
  if (!response.ok) {
    const error = (payload && payload.error) || {};
    throw new ApiError(response.status, error.code || `http_${response.status}`,
      error.message || `The clinic answered with status ${response.status}.`, error.details);
  }
  return payload;
}

export const get = (path, options) => call('GET', path, options);
export const post = (path, body, options = {}) => call('POST', path, { ...options, body });
export const put = (path, body, options = {}) => call('PUT', path, { ...options, body });
export const del = (path, options) => call('DELETE', path, options);

// A fresh Idempotency-Key: a retried click then books once, not twice.
export function newKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

const SENTENCES = {
  slot_unavailable: 'Sorry, that time has just been taken or is no longer offered.',
  hold_expired: 'Your hold on that time ran out before the booking was made.',
  course_conflict: 'Some dates of that course are no longer free.',
  idempotency_conflict: 'This request was already sent with different details. Please start again.',
  unauthorized: 'This link or token is not valid (any more).',
  forbidden: 'This token may not see or change that.',
  service_unavailable: 'The clinic’s booking system is busy. Please try again in a moment.',
  network: 'We could not reach the clinic. Check your connection and try again.',
};

// One clear sentence for an error, with the fields at fault when the API names them.
export function explain(error) {
  if (!(error instanceof ApiError)) return 'Something went wrong on this page. Please reload it.';
  if (error.code === 'invalid_request') {
    const fields = (error.details.fields || []).map((f) => `${f.field}: ${f.message}`);
    return fields.length ? `Please check: ${fields.join('; ')}.` : error.message;
  }
  if (error.code === 'rate_limited') {
    const wait = error.details.retry_after_seconds;
    return `Too many attempts just now; please wait ${wait ? `${wait} seconds` : 'a moment'} and try again.`;
  }
  return SENTENCES[error.code] || error.message;
}
