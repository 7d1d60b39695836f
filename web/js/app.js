// app.js: the scanner app's entry point. Registers the service worker (the
// offline app shell, sw.js), shows sign-in or the main screens, routes every
// scan to the screen that shows, keeps the online/offline pill current, starts
// the sync loop, and handles sign-out and a refused token (401: back to
// sign-in, the queue kept), in this tab and in the app's other tabs.
import { getToken, clearToken } from './api.js';
import * as queue from './queue.js';
import { startSync, syncNow, kick } from './sync.js';
import { clearOpenCopy } from './open-copy.js';
import { attachScanInput, cameraAvailable, scanWithCamera } from './scan-input.js';
import { forgetSession } from './scan-session-manager.js';
import { initSignin, showSignin } from './screen-signin.js';
import { initInspect, lookup, failFormOpen, resetInspect } from './screen-inspect.js';
import { initSession, showSession, sessionScan } from './screen-session.js';
import { initQueue, refreshQueue } from './screen-queue.js';
import { $, confirmDialog } from './ui.js';

const SCREENS = ['inspect', 'session', 'queue'];
let screen = 'inspect';
let syncing = false;

function show(name) {
  screen = name;
  $('screen-signin').hidden = true;
  for (const s of SCREENS) $(`screen-${s}`).hidden = s !== name;
  for (const b of document.querySelectorAll('#tabs button')) {
    if (b.dataset.screen === name) b.setAttribute('aria-current', 'page');
    else b.removeAttribute('aria-current');
  }
  $('tabs').hidden = false;
  $('signout').hidden = false;
  $('scan-form').hidden = name === 'queue';
  if (name === 'session') showSession();
  if (name === 'queue') refreshQueue();
  if (name !== 'queue') $('scan').focus();
}

function showSignedOut(message) {
  for (const s of SCREENS) $(`screen-${s}`).hidden = true;
  $('tabs').hidden = true;
  $('signout').hidden = true;
  $('scan-form').hidden = true;
  resetInspect();
  showSignin(message);
}

async function authLost(why = 'Your sign-in was refused (token expired or revoked).') {
  clearToken();
  const n = await queue.count();
  showSignedOut(`${why} Sign in again.${
    n ? ` ${n} queued action${n === 1 ? ' is' : 's are'} kept and will sync after sign-in.` : ''}`);
}

// Another tab of this app signed in or out, or had its token refused (the token is
// shared through localStorage): follow it, so no tab works on with a dead token.
function followOtherTabs(ev) {
  if (ev.key !== 'scanqa.token' && ev.key !== null) return;
  if (getToken()) {
    if (!$('screen-signin').hidden) signedIn();
  } else if ($('screen-signin').hidden) {
    authLost('You were signed out in another tab, or your sign-in was refused there.');
  }
}

function signedIn() {
  show('inspect');
  if (!syncing) {
    syncing = true;
    startSync({ onAuthLost: authLost, onSynced: () => refreshQueue() });
  } else {
    syncNow();
  }
}

async function signOut() {
  const n = await queue.count();
  if (n) {
    const ok = await confirmDialog(`${n} action${n === 1 ? ' has' : 's have'} not been synced yet. ` +
      'They stay on this device and are sent after the next sign-in. Sign out anyway?');
    if (!ok) return;
  }
  clearToken();
  forgetSession();
  await clearOpenCopy();
  showSignedOut('Signed out.');
}

function updateNet() {
  const pill = $('net');
  pill.textContent = navigator.onLine ? 'Online' : 'Offline';
  pill.classList.toggle('offline', !navigator.onLine);
}

function onScan(barcode) {
  if (screen === 'session') return sessionScan(barcode);
  if (screen !== 'inspect') show('inspect');
  return lookup(barcode);
}

function init() {
  if ('serviceWorker' in navigator) {
    navigator.serviceWorker.register('sw.js', { scope: './' }).catch(() => { /* served without a SW */ });
  }
  addEventListener('online', updateNet);
  addEventListener('offline', updateNet);
  updateNet();

  initSignin({ onSignedIn: signedIn });
  initInspect({ onAuthLost: authLost, onQueued: () => { refreshQueue(); kick(); } });
  initSession({ onAuthLost: authLost });
  initQueue({ syncNow });
  attachScanInput($('scan'), onScan, () => !failFormOpen() && !$('confirm').open);
  if (cameraAvailable()) {
    $('scan-camera').hidden = false;
    $('scan-camera').addEventListener('click', async () => {
      const code = await scanWithCamera($('camera'), $('camera-video')).catch(() => null);
      if (code) onScan(code);
    });
  }
  $('camera-close').addEventListener('click', () => $('camera').close());
  for (const b of document.querySelectorAll('#tabs button')) {
    b.addEventListener('click', () => show(b.dataset.screen));
  }
  $('signout').addEventListener('click', signOut);
  addEventListener('storage', followOtherTabs);

  refreshQueue();
  if (getToken()) signedIn();
  else showSignedOut('');
  document.documentElement.dataset.ready = '1';
}

init();
