// feedback.js: what an inspector hears and feels, so a result is noticed without
// looking: pass, fail, queued and error each have their own tone pattern (Web
// Audio, no sound files) and vibration pattern (navigator.vibrate, where the
// device has it). signal(kind) with kind 'pass' | 'fail' | 'queued' | 'error'.

const PATTERNS = {
  pass:   { tones: [[880, 0.09], [1320, 0.14]], vibrate: [60] },
  fail:   { tones: [[330, 0.35]], vibrate: [250, 80, 250] },
  queued: { tones: [[660, 0.12], [660, 0.12]], vibrate: [40, 60, 40] },
  error:  { tones: [[200, 0.12], [0, 0.06], [200, 0.12], [0, 0.06], [200, 0.12]], vibrate: [100, 50, 100, 50, 100] },
};

let audio = null;

export function signal(kind) {
  const p = PATTERNS[kind];
  if (!p) return;
  if (navigator.vibrate) navigator.vibrate(p.vibrate);
  try {
    audio ??= new AudioContext();
    let t = audio.currentTime;
    for (const [hz, secs] of p.tones) {
      if (hz) {
        const osc = audio.createOscillator();
        const gain = audio.createGain();
        osc.type = 'square';
        osc.frequency.value = hz;
        gain.gain.value = 0.15;
        osc.connect(gain).connect(audio.destination);
        osc.start(t);
        osc.stop(t + secs);
      }
      t += secs;
    }
  } catch { /* no audio output: the vibration and the screen remain */ }
}
