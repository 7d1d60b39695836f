// sync.js: the loop that sends the offline queue to
// POST /api/v1/quality/scanner/sync-offline, oldest first, in batches of at most
// 100 (the spec's syncOfflineSchema). Like PouchDB's replication it can stop at
// any point and start again without harm: every action carries its own id and
// the server applies an id once (README, "Replays"), so a batch whose answer was
// lost is simply sent again. Nothing is "in flight" in storage: an action stays
// in the queue until an answer about it has been read.
//
// It runs at start, on the "online" event, after an enqueue (kick()), and on a timer:
// every 30 s while work waits, backing off 2, 4, ... 60 s after failures, and
// never sooner than a Retry-After asks. A Web Lock ("scanqa-sync") makes sure
// two tabs never send the queue at the same time.
//
// Answers, per action: success or duplicate -> leaves the queue; an error that
// says "resend the batch" (busy, timed out, unavailable) -> stays queued; any
// other error -> "needs attention" with the server's message. A 400 for the
// batch names the actions at fault (details "actions.N..."): those need
// attention, the rest are sent again. 401 stops the loop and asks for sign-in
// (the queue is kept).
import { apiFetch, retryAfterSeconds, NotSignedIn } from './api.js';
import * as queue from './queue.js';
import { refreshOpenCopy } from './open-copy.js';

const SYNC = '/api/v1/quality/scanner/sync-offline';
const BATCH = 100;
const IDLE_MS = 30000;
const BACKOFF_MIN_MS = 2000;
const BACKOFF_MAX_MS = 60000;

let timer = null;
let backoff = 0;
let handlers = { onAuthLost() {}, onSynced() {}, onStatus() {} };

// Starts the loop. h: {onAuthLost(), onSynced(result), onStatus(text)}.
export function startSync(h) {
  handlers = { ...handlers, ...h };
  addEventListener('online', () => { backoff = 0; syncNow(); });
  schedule(0);
}

// Something was queued: try soon, unless the loop is backing off.
export function kick() {
  if (!backoff) schedule(0);
}

function schedule(ms) {
  clearTimeout(timer);
  timer = setTimeout(() => { timer = null; syncNow(); }, ms);
}

// One pass: sends batches until the queue is empty or the server cannot be
// reached. Resolves to {sent, synced, attention, kept, busy, stopped}.
export async function syncNow() {
  if (!navigator.locks) return pass();
  return navigator.locks.request('scanqa-sync', { ifAvailable: true }, (lock) => {
    if (!lock) {
      // Another pass holds the lock: another tab's, or this tab's own, whose
      // lock is released only after it has scheduled its next pass (an "online"
      // event can fall in between). Look again soon: waiting IDLE_MS here would
      // replace that pass's timer, and a queue would sit for 30 s after the
      // network came back. Only the lock is polled; nothing is sent.
      schedule(BACKOFF_MIN_MS);
      return { busy: true };
    }
    return pass();
  });
}

async function pass() {
  const result = { sent: 0, synced: 0, attention: 0, kept: 0, stopped: null };
  try {
    for (;;) {
      const batch = await queue.oldest(BATCH);
      if (!batch.length) break;
      const r = await apiFetch('POST', SYNC, { json: { actions: batch.map((e) => e.action) }, timeoutMs: 30000 });
      result.sent += batch.length;
      if (r.status === 200 && r.json) {
        const failed = new Map((r.json.errors || []).map((e) => [e.action_id, e.error]));
        const done = [], refused = [];
        for (const e of batch) {
          const err = failed.get(e.action.id);
          if (err === undefined) done.push(e.seq);
          else if (/resend the batch/.test(err)) result.kept++;
          else refused.push({ ...e, error: err });
        }
        await queue.remove(done);
        await queue.moveToAttention(refused);
        result.synced += done.length;
        result.attention += refused.length;
        if (result.kept) { result.stopped = 'busy'; break; }
        continue;
      }
      if (r.status === 400 && r.json && Array.isArray(r.json.details)) {
        const bad = new Map();
        for (const d of r.json.details) {
          const m = /^actions\.(\d+)/.exec(d.field || '');
          if (m && batch[m[1]]) bad.set(Number(m[1]), `Validation failed: ${d.field}: ${d.message}`);
        }
        if (bad.size) {
          await queue.moveToAttention([...bad].map(([i, error]) => ({ ...batch[i], error })));
          result.attention += bad.size;
          continue;
        }
      }
      if (r.status === 401) { result.stopped = 'auth'; handlers.onAuthLost(); break; }
      result.stopped = r.unanswered ? 'unanswered' : `http ${r.status}`;
      result.retryAfter = retryAfterSeconds(r.headers);
      break;
    }
  } catch (e) {
    if (!(e instanceof NotSignedIn)) throw e;
    result.stopped = 'signed out';
  }
  // Keep the offline copy fresh while the server answers.
  if (!result.stopped && navigator.onLine) {
    const c = await refreshOpenCopy().catch(() => null);
    if (c && !c.ok && c.response.status === 401) { result.stopped = 'auth'; handlers.onAuthLost(); }
  }
  const left = await queue.count();
  if (result.stopped === 'auth' || result.stopped === 'signed out') {
    clearTimeout(timer);
    timer = null;
  } else if (result.stopped) {
    backoff = Math.min(BACKOFF_MAX_MS, backoff ? backoff * 2 : BACKOFF_MIN_MS);
    schedule(Math.max(backoff, (result.retryAfter || 0) * 1000));
  } else {
    backoff = 0;
    schedule(left ? BACKOFF_MIN_MS : IDLE_MS);
  }
  handlers.onSynced(result);
  return result;
}
