// api.js: the scanner app's only way to the server. Every call is same-origin,
// carries the token as "Authorization: Bearer" (never in a URL, never logged),
// is never cached (cache: 'no-store'), and gives up after a timeout.
//
// apiFetch(method, path, {json, headers, timeoutMs}) resolves to
//   {status, json, headers, unanswered}
// for every HTTP answer, 4xx and 5xx included; `unanswered` is true when the
// request may not have reached the server or its answer never came back: a
// network error or timeout (status 0), or a 502/503/504 from nginx or the
// daemon. Those are the cases the offline queue takes over (issue 10, "Work
// offline"). It never rejects, except when no token is stored (NotSignedIn).

const TOKEN_KEY = 'scanqa.token';
const DEVICE_KEY = 'scanqa.device';

export class NotSignedIn extends Error {}

export function getToken() {
  return localStorage.getItem(TOKEN_KEY);
}

export function setToken(token) {
  localStorage.setItem(TOKEN_KEY, token);
}

export function clearToken() {
  localStorage.removeItem(TOKEN_KEY);
}

// The scanner_device_id this browser sends: made once, kept in localStorage.
export function deviceId() {
  let id = localStorage.getItem(DEVICE_KEY);
  if (!id) {
    id = 'WEB-' + crypto.randomUUID().slice(0, 8).toUpperCase();
    localStorage.setItem(DEVICE_KEY, id);
  }
  return id;
}

// Seconds the server asked us to wait (Retry-After, RFC 9110 10.2.3: delay-seconds
// or an HTTP-date), or 0.
export function retryAfterSeconds(headers) {
  const v = headers && headers.get('Retry-After');
  if (!v) return 0;
  if (/^\d+$/.test(v.trim())) return Number(v.trim());
  const t = Date.parse(v);
  return Number.isNaN(t) ? 0 : Math.max(0, Math.ceil((t - Date.now()) / 1000));
}

export async function apiFetch(method, path, { json, headers = {}, timeoutMs = 10000, token } = {}) {
  const bearer = token ?? getToken();
  if (!bearer) throw new NotSignedIn('not signed in');
  const h = { Authorization: `Bearer ${bearer}`, Accept: 'application/json', ...headers };
  const init = { method, headers: h, cache: 'no-store', credentials: 'omit', redirect: 'error' };
  if (json !== undefined) {
    h['Content-Type'] = 'application/json';
    init.body = JSON.stringify(json);
  }
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeoutMs);
  init.signal = ctl.signal;
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    return { status: 0, json: null, headers: new Headers(), unanswered: true };
  } finally {
    clearTimeout(timer);
  }
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  const unanswered = res.status === 502 || res.status === 503 || res.status === 504;
  return { status: res.status, json: body, headers: res.headers, unanswered };
}

// A sentence a person understands for an API error answer (the spec's errors,
// README "API reference"), or null when r is a success.
export function errorText(r) {
  if (r.status >= 200 && r.status < 300) return null;
  if (r.unanswered) return 'The server did not answer.';
  const e = r.json && r.json.error;
  switch (r.status) {
    case 401: return 'Your sign-in was refused. Sign in again.';
    case 403: return 'Your user has no scanner access (QA Inspector role needed).';
    case 404:
      if (e === 'License plate not found') return 'No license plate with this barcode in your warehouse.';
      if (e === 'Inspection not found') return 'This inspection no longer exists.';
      return 'Not found.';
    case 400:
      if (e === 'Inspection already completed') return 'This inspection was already completed.';
      if (e === 'Validation failed' && Array.isArray(r.json.details)) {
        return 'Not accepted: ' + r.json.details.map((d) => `${d.field || 'request'}: ${d.message}`).join('; ');
      }
      return e || 'The request was not accepted.';
    case 429: return 'Too many requests; wait a moment.';
    default: return e ? `Server error: ${e}` : `Server error (${r.status}).`;
  }
}
