// ui.js: small DOM helpers shared by the screens, and the outcome banner.
//   $(id)                     the element with this id
//   showOutcome(kind, text)   the big banner under the scan input; kind is
//                             'pass' | 'fail' | 'queued' | 'info' | 'error'
//                             (its class and data-kind, which tests read)
//   confirmDialog(text)       resolves to true when the inspector says yes

export const $ = (id) => document.getElementById(id);

export function showOutcome(kind, text) {
  const el = $('outcome');
  el.className = `outcome ${kind}`;
  el.dataset.kind = kind;
  el.textContent = text;
  el.hidden = false;
}

export function hideOutcome() {
  const el = $('outcome');
  el.hidden = true;
  el.textContent = '';
  delete el.dataset.kind;
}

export function confirmDialog(text) {
  const dlg = $('confirm');
  $('confirm-text').textContent = text;
  dlg.returnValue = '';
  dlg.showModal();
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'yes'), { once: true });
  });
}
