// screen-inspect.js: the inspection screen, an inspector's main loop: scan an LP,
// see it (barcode, product, batch, quantity, qa_status) and its pending
// inspection (number, status), press Pass or Fail, see the result and the LP's
// new status.
//
// Online it asks the server: GET /api/warehouse/license-plates/barcode/{barcode},
// then GET /api/quality/inspections/by-lp/{lpId}, then
// POST /api/v1/quality/scanner/quick-inspection. When the device is offline, or
// a request gets no answer (network error, timeout, 502/503/504), the scan is
// resolved from the offline copy (open-copy.js) and the verdict goes into the
// queue (queue.js) as a quick_inspection OfflineAction; the inspector sees
// "Queued" at once and the sync loop sends it later.
//
// initInspect({onAuthLost, onQueued}) wires the screen; lookup(barcode) is
// called for every scan while it shows.
import { apiFetch, deviceId, errorText } from './api.js';
import * as queue from './queue.js';
import { findByBarcode, forget } from './open-copy.js';
import { signal } from './feedback.js';
import { $, showOutcome, hideOutcome } from './ui.js';

const QUICK = '/api/v1/quality/scanner/quick-inspection';
const STATUS_WORDS = { pending: 'Pending', in_progress: 'In progress', completed: 'Completed',
  passed: 'Passed', failed: 'Failed', on_hold: 'On hold' };

let current = null; // {lp, inspection, fromCopy}
let hooks = { onAuthLost() {}, onQueued() {} };

const words = (s) => STATUS_WORDS[s] ?? s ?? '';

export function initInspect(h) {
  hooks = { ...hooks, ...h };
  $('pass').addEventListener('click', () => complete('pass'));
  $('fail').addEventListener('click', openFailForm);
  $('fail-cancel').addEventListener('click', closeFailForm);
  $('fail-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    submitFail();
  });
}

// True while the fail form is open: the scan input must not steal the focus.
export function failFormOpen() {
  return !$('fail-form').hidden;
}

function render(lp, inspection, fromCopy) {
  current = { lp, inspection, fromCopy };
  $('lp-card').hidden = false;
  $('lp-barcode').textContent = lp.barcode;
  $('lp-product').textContent = lp.product_id ?? '—';
  $('lp-batch').textContent = lp.batch_number ?? '—';
  $('lp-quantity').textContent = String(lp.quantity);
  $('lp-status').textContent = words(lp.qa_status);
  $('inspection-number').textContent = inspection ? inspection.inspection_number : 'None pending';
  $('inspection-status').textContent = inspection ? words(inspection.status) : '—';
  $('lp-source').hidden = !fromCopy;
  $('verdict').hidden = !inspection;
}

function clearCard() {
  current = null;
  $('lp-card').hidden = true;
  closeFailForm();
}

export async function lookup(barcode) {
  clearCard();
  showOutcome('info', `Looking up ${barcode}…`);
  if (!navigator.onLine) return lookupOffline(barcode);
  const r = await apiFetch('GET', `/api/warehouse/license-plates/barcode/${encodeURIComponent(barcode)}`);
  if (r.unanswered) return lookupOffline(barcode);
  if (r.status === 401) return hooks.onAuthLost();
  if (r.status !== 200) {
    signal('error');
    return showOutcome('error', r.status === 404 ? `${barcode}: no license plate with this barcode in your warehouse.` : errorText(r));
  }
  const r2 = await apiFetch('GET', `/api/quality/inspections/by-lp/${encodeURIComponent(r.json.id)}`);
  if (r2.unanswered) return lookupOffline(barcode);
  if (r2.status === 401) return hooks.onAuthLost();
  if (r2.status !== 200) {
    signal('error');
    return showOutcome('error', errorText(r2));
  }
  return present(r2.json.lp, r2.json.inspection, false);
}

async function lookupOffline(barcode) {
  const ins = await findByBarcode(barcode);
  if (!ins) {
    signal('error');
    return showOutcome('error', `${barcode}: no open inspection for this LP in the offline copy. Try again when online.`);
  }
  return present(ins.lp, ins, true);
}

async function present(lp, inspection, fromCopy) {
  render(lp, inspection, fromCopy);
  if (inspection && await queue.hasInspection(inspection.id)) {
    $('verdict').hidden = true;
    return showOutcome('queued', `${lp.barcode}: already inspected on this device, waiting to sync.`);
  }
  if (!inspection) {
    return showOutcome('info', `${lp.barcode}: no pending inspection. QA status: ${words(lp.qa_status)}.`);
  }
  showOutcome('info', fromCopy ? `${lp.barcode}: offline. Pass or fail; it will sync later.`
    : `${lp.barcode}: inspection ${inspection.inspection_number}. Pass or fail?`);
}

function openFailForm() {
  $('fail-notes').value = '';
  $('fail-defects').value = '';
  $('fail-error').textContent = '';
  $('fail-form').hidden = false;
  $('verdict').hidden = true;
  $('fail-notes').focus();
}

function closeFailForm() {
  $('fail-form').hidden = true;
  if (current && current.inspection) $('verdict').hidden = false;
}

// The spec's quickInspectionSchema limits: result_notes at most 2000 (UTF-16
// code units, as maxlength counts), defects_found an integer 0..1000.
function submitFail() {
  const notes = $('fail-notes').value;
  const defectsText = $('fail-defects').value.trim();
  const defectsInput = $('fail-defects');
  if (notes.length > 2000) {
    $('fail-error').textContent = 'Notes can be at most 2000 characters.';
    return;
  }
  let defects;
  if (defectsText !== '' || defectsInput.validity.badInput) {
    defects = Number(defectsText);
    if (defectsInput.validity.badInput || !Number.isInteger(defects) || defects < 0 || defects > 1000) {
      $('fail-error').textContent = 'Defects found must be a whole number from 0 to 1000.';
      defectsInput.focus();
      return;
    }
  }
  $('fail-form').hidden = true;
  complete('fail', notes.trim() || undefined, defects);
}

async function complete(result, notes, defects) {
  if (!current || !current.inspection) return;
  const { lp, inspection } = current;
  const payload = { inspection_id: inspection.id, result, inspection_method: 'scanner', scanner_device_id: deviceId() };
  if (notes !== undefined) payload.result_notes = notes;
  if (defects !== undefined) payload.defects_found = defects;
  $('verdict').hidden = true;
  const label = `${result === 'pass' ? 'Pass' : 'Fail'} ${lp.barcode}`;

  if (!navigator.onLine) return queueIt(payload, label, lp);
  const r = await apiFetch('POST', QUICK, { json: payload, timeoutMs: 8000 });
  if (r.unanswered) return queueIt(payload, label, lp);
  if (r.status === 401) {
    // Not applied; kept in the queue, sent after the next sign-in.
    await queueIt(payload, label, lp);
    return hooks.onAuthLost();
  }
  if (r.status === 200 && r.json) {
    await forget(inspection.id);
    const lpStatus = r.json.lp_new_status;
    $('lp-status').textContent = words(lpStatus);
    $('inspection-status').textContent = words(r.json.inspection.status);
    signal(result);
    return showOutcome(result, `${result === 'pass' ? 'Passed' : 'Failed'}: ${lp.barcode} is now ${words(lpStatus).toLowerCase()}.`);
  }
  signal('error');
  showOutcome('error', errorText(r));
  if (r.status === 400 && r.json && r.json.error === 'Validation failed') $('verdict').hidden = false;
}

async function queueIt(payload, label, lp) {
  await queue.enqueue('quick_inspection', payload, label);
  await forget(payload.inspection_id);
  signal('queued');
  showOutcome('queued', `Queued: ${label}. It will sync when the network is back.`);
  $('inspection-status').textContent = 'Queued on this device';
  hooks.onQueued(lp);
}

export function resetInspect() {
  clearCard();
  hideOutcome();
}
