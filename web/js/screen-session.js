// screen-session.js: the scan-session screen (seed 000). Start a session with a
// location and the number of items expected; every scan then goes to
// POST /api/v1/scan-sessions/{id}/scans, and the screen shows items, successful,
// failed and the completion percentage. Pause, resume, complete and cancel go
// through scan-session-manager.js (PATCH with If-Match; a 412 is resolved there).
//
// initSession() wires the screen; showSession() renders the current session;
// sessionScan(barcode) records a scan into it.
import * as ssm from './scan-session-manager.js';
import { signal } from './feedback.js';
import { $ } from './ui.js';

const FINAL = new Set(['COMPLETED', 'CANCELLED']);
const STATE_WORDS = { ACTIVE: 'Active', PAUSED: 'Paused', COMPLETED: 'Completed', CANCELLED: 'Cancelled' };

export function initSession({ onAuthLost }) {
  const run = async (f) => {
    const cur = ssm.currentSession();
    if (!cur) return;
    $('session-message').textContent = '';
    try {
      await f(cur.session.id);
    } catch (e) {
      if (e.status === 401) return onAuthLost();
      signal('error');
      $('session-message').textContent = e.message;
    }
    showSession();
  };
  $('session-pause').addEventListener('click', () => run(ssm.pauseSession));
  $('session-resume').addEventListener('click', () => run(ssm.resumeSession));
  $('session-complete').addEventListener('click', () => run(ssm.completeSession));
  $('session-cancel').addEventListener('click', () => run(ssm.cancelSession));
  $('session-start').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    $('session-message').textContent = '';
    const expected = $('session-expected').value.trim();
    if (expected && !(Number.isInteger(Number(expected)) && Number(expected) >= 1)) {
      $('session-message').textContent = 'Expected items must be a whole number of at least 1.';
      return;
    }
    try {
      await ssm.startScanSession({ location: $('session-location').value.trim(),
        expected_items: expected ? Number(expected) : undefined });
      $('session-last').textContent = 'Scan the first item.';
    } catch (e) {
      if (e.status === 401) return onAuthLost();
      signal('error');
      $('session-message').textContent = e.message;
    }
    showSession();
    $('scan').focus();
  });
}

export function showSession() {
  const cur = ssm.currentSession();
  const s = cur && cur.session;
  const open = s && !FINAL.has(s.status);
  $('session-start').hidden = !!open;
  $('session-card').hidden = !s;
  if (!s) return;
  const p = s.progress_summary;
  $('session-state').textContent = STATE_WORDS[s.status] ?? s.status;
  $('session-state').className = `pill state-${s.status}`;
  $('session-where').textContent = s.location ? `at ${s.location}` : '';
  $('session-items').textContent = s.expected_items ? `${p.items_scanned} of ${s.expected_items}` : String(p.items_scanned);
  $('session-ok').textContent = String(p.successful_scans);
  $('session-failed').textContent = String(p.failed_scans);
  $('session-percent').textContent = p.completion_percentage == null ? '—' : `${p.completion_percentage}%`;
  $('session-progress').value = p.completion_percentage ?? 0;
  $('session-pause').hidden = s.status !== 'ACTIVE';
  $('session-resume').hidden = s.status !== 'PAUSED';
  $('session-complete').hidden = !open;
  $('session-cancel').hidden = !open;
}

export async function sessionScan(barcode) {
  const cur = ssm.currentSession();
  if (!cur || FINAL.has(cur.session.status)) {
    $('session-message').textContent = 'Start a session first.';
    return;
  }
  $('session-message').textContent = '';
  try {
    const { found, answer } = await ssm.recordScan(cur.session.id, barcode);
    signal(found ? 'pass' : 'error');
    $('session-last').textContent = found
      ? `${barcode}: recorded${answer.has_pending_inspection ? ', inspection pending' : ''}.`
      : `${barcode}: not found, recorded as a failed scan.`;
  } catch (e) {
    signal('error');
    $('session-message').textContent = e.status === 409 && /paused/i.test(e.message)
      ? 'The session is paused: resume it to scan.' : e.message;
  }
  showSession();
}
