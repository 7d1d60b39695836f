// scan-input.js: where barcodes come from. Three ways, one callback:
//   - keyboard wedge: the scan engine types the barcode into a focused input and
//     ends it with Enter or Tab; the input is kept focused whenever the focus
//     would otherwise fall to nothing;
//   - manual entry: the same input, typed, Enter or the Go button;
//   - camera: BarcodeDetector (Shape Detection API), where the browser has it.
//
// cleanScan(raw) takes what the engine typed and returns the barcode: without
// an AIM symbology identifier prefix ("]C1", "]Q3"...), which some engines are
// set to send, and without leading and trailing whitespace and control
// characters (the engine's CR, LF or TAB suffix). Characters inside the barcode,
// such as GS1's group separator, are kept.

export function cleanScan(raw) {
  let s = String(raw).replace(/^[\s\x00-\x1f\x7f]+|[\s\x00-\x1f\x7f]+$/g, '');
  s = s.replace(/^\][A-Za-z][0-9A-Za-z]/, '');
  return s.replace(/^[\s\x00-\x1f\x7f]+|[\s\x00-\x1f\x7f]+$/g, '');
}

// Wires input (and its form) so that onScan(barcode) is called for every
// non-empty scan. keepFocus() says whether the input should take the focus back
// now (false while, say, the fail form is open).
export function attachScanInput(input, onScan, keepFocus = () => true) {
  const submit = () => {
    const code = cleanScan(input.value);
    input.value = '';
    if (code) onScan(code);
  };
  input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' || ev.key === 'Tab') {
      // A Tab suffix must not move the focus away from the scan input.
      if (ev.key === 'Tab' && !cleanScan(input.value)) return;
      ev.preventDefault();
      submit();
    }
  });
  if (input.form) {
    input.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      submit();
    });
  }
  // The always-focused input: when the focus drops to the page itself (a click
  // on empty space, a button that disappeared), it comes back here.
  document.addEventListener('focusout', () => {
    setTimeout(() => {
      const a = document.activeElement;
      if ((!a || a === document.body) && input.offsetParent !== null && keepFocus()) input.focus();
    }, 0);
  });
}

// True when the camera path can work here.
export function cameraAvailable() {
  return 'BarcodeDetector' in globalThis && !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
}

// Opens the camera in dialog (with a <video> inside) and resolves to the first
// barcode it sees (cleaned), or null when the dialog is closed first.
export async function scanWithCamera(dialog, video) {
  const formats = await globalThis.BarcodeDetector.getSupportedFormats();
  const detector = new globalThis.BarcodeDetector({ formats });
  const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' }, audio: false });
  video.srcObject = stream;
  dialog.showModal();
  await video.play();
  try {
    return await new Promise((resolve) => {
      dialog.addEventListener('close', () => resolve(null), { once: true });
      const look = async () => {
        if (!dialog.open) return;
        try {
          const found = await detector.detect(video);
          if (found.length) return resolve(cleanScan(found[0].rawValue));
        } catch { /* a frame that could not be read: try the next */ }
        setTimeout(look, 150);
      };
      look();
    });
  } finally {
    for (const t of stream.getTracks()) t.stop();
    video.srcObject = null;
    if (dialog.open) dialog.close();
  }
}
