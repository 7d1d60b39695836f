// scan-session-manager.js: the seed's scanner interface for scan sessions (seed
// 000, "Frontend Integration": updateScanSession(), pauseSession(),
// resumeSession()), on the endpoints of README "Scan sessions". Sessions need
// the network: they are live progress on the server, not queued work.
//
// The current session and its ETag are kept in localStorage ("scanqa.session"),
// so a reload carries on with it. Every function resolves to the session object
// as the API returns it, or rejects with a SessionError {message, status}.
import { apiFetch, errorText } from './api.js';

const KEY = 'scanqa.session';
const BASE = '/api/v1/scan-sessions';

export class SessionError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

// {session, etag} of the session this device works in, or null.
export function currentSession() {
  try {
    return JSON.parse(localStorage.getItem(KEY));
  } catch {
    return null;
  }
}

function remember(session, etag) {
  localStorage.setItem(KEY, JSON.stringify({ session, etag }));
  return session;
}

export function forgetSession() {
  localStorage.removeItem(KEY);
}

function fail(r) {
  if (r.unanswered) throw new SessionError('No connection: scan sessions need the network. Try again.', r.status);
  const e = r.json && r.json.error;
  if (r.status === 409 && e) throw new SessionError(e, 409);
  throw new SessionError(errorText(r), r.status);
}

// POST /api/v1/scan-sessions with {location, expected_items} (both optional).
export async function startScanSession({ location, expected_items } = {}) {
  const body = {};
  if (location) body.location = location;
  if (expected_items) body.expected_items = expected_items;
  const r = await apiFetch('POST', BASE, { json: body });
  if (r.status !== 201) fail(r);
  return remember(r.json, r.headers.get('ETag'));
}

// GET the session again (and its ETag).
export async function getScanSession(id) {
  const r = await apiFetch('GET', `${BASE}/${id}`);
  if (r.status !== 200) fail(r);
  return remember(r.json, r.headers.get('ETag'));
}

// True when the session already holds every value of changes.
function applied(session, changes) {
  return Object.entries(changes).every(([k, v]) => {
    if (k === 'items_scanned') return session.progress_summary.items_scanned === v;
    return session[k] === v;
  });
}

// PATCH the session with only the changed fields and If-Match: the last ETag.
// On 412 (someone else changed it) it GETs the session and applies the change
// again to the new version; on the items 409 it adopts current_items_scanned
// (the server's count is never lowered). Gives up after 5 tries.
export async function updateScanSession(id, changes) {
  let etag = currentSession()?.etag;
  let want = { ...changes };
  for (let attempt = 0; attempt < 5; attempt++) {
    const headers = etag ? { 'If-Match': etag } : {};
    const r = await apiFetch('PATCH', `${BASE}/${id}`, { json: want, headers });
    if (r.status === 200) return remember(r.json, r.headers.get('ETag'));
    if (r.status === 412) {
      const fresh = await getScanSession(id);
      etag = currentSession().etag;
      if (applied(fresh, want)) return fresh;
      continue;
    }
    if (r.status === 409 && r.json && Number.isInteger(r.json.current_items_scanned)) {
      want = { ...want, items_scanned: r.json.current_items_scanned };
      continue;
    }
    fail(r);
  }
  throw new SessionError('The session keeps changing elsewhere; try again.', 412);
}

export const pauseSession = (id) => updateScanSession(id, { status: 'PAUSED' });
export const resumeSession = (id) => updateScanSession(id, { status: 'ACTIVE' });
export const completeSession = (id) => updateScanSession(id, { status: 'COMPLETED' });
export const cancelSession = (id) => updateScanSession(id, { status: 'CANCELLED' });

// POST a scanned barcode into the session. Resolves to
// {found: boolean, answer: the API's body}; the session in it becomes current.
export async function recordScan(id, barcode) {
  const r = await apiFetch('POST', `${BASE}/${id}/scans`, { json: { barcode } });
  if ((r.status === 201 || r.status === 404) && r.json && r.json.session) {
    // A scan raises the session's version. When the answer names no ETag, the
    // old one is kept: the next PATCH then meets a 412 and GETs the session,
    // which is slower but never wrong.
    remember(r.json.session, r.headers.get('ETag') || currentSession()?.etag);
    return { found: r.status === 201, answer: r.json };
  }
  fail(r);
}
