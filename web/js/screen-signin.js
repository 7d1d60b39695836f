// screen-signin.js: the sign-in screen. The inspector types the API token or
// scans its QR code (the scan engine types it, like any barcode; or the camera,
// where BarcodeDetector exists). The token is checked with one small call
// (GET /api/quality/inspections/open?limit=1: 200 a scanner, 401 unknown, 403
// no scanner role) and then kept in localStorage on this device only; it never
// goes into a URL, the page or a log. With no network the token is taken as it
// is and checked at the first answer from the server.
//
// initSignin({onSignedIn(verified)}) wires the screen; showSignin(message)
// shows it with an optional message.
import { apiFetch, setToken } from './api.js';
import { cleanScan, cameraAvailable, scanWithCamera } from './scan-input.js';
import { signal } from './feedback.js';
import { $ } from './ui.js';

export function initSignin({ onSignedIn }) {
  const input = $('token');
  const msg = $('signin-message');
  const submit = async () => {
    const token = cleanScan(input.value);
    input.value = '';
    if (!token) {
      msg.textContent = 'Type or scan your token first.';
      return;
    }
    msg.textContent = 'Checking…';
    const r = await apiFetch('GET', '/api/quality/inspections/open?limit=1', { token, timeoutMs: 8000 });
    if (r.status === 200 || r.unanswered) {
      setToken(token);
      msg.textContent = '';
      onSignedIn(!r.unanswered);
      return;
    }
    signal('error');
    msg.textContent = r.status === 401 ? 'This token was not accepted. Check it and try again.'
      : r.status === 403 ? 'This user has no scanner access (QA Inspector role needed).'
      : `The server refused the sign-in (${r.status}).`;
    input.focus();
  };
  $('signin-form').addEventListener('submit', (ev) => { ev.preventDefault(); submit(); });
  // A scan engine may end the token with Tab instead of Enter.
  input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Tab' && cleanScan(input.value)) { ev.preventDefault(); submit(); }
  });
  if (cameraAvailable()) {
    const cam = $('signin-camera');
    cam.hidden = false;
    cam.addEventListener('click', async () => {
      const code = await scanWithCamera($('camera'), $('camera-video')).catch(() => null);
      if (code) { input.value = code; submit(); }
    });
  }
}

export function showSignin(message = '') {
  $('signin-message').textContent = message;
  $('screen-signin').hidden = false;
  $('token').focus();
}
