// queue.js: the offline queue, the single source of truth for work that has not
// reached the server (issue 10). An action is the spec's OfflineAction
//   {id: crypto.randomUUID(), type: 'quick_inspection' | 'test_result',
//    payload, timestamp: ISO 8601 UTC with milliseconds}
// written in one IndexedDB transaction with durability "strict" (the browser
// flushes it to disk before the write counts as done), so a queued action
// survives a reload, a killed tab and a crash. An action leaves the queue only
// when the server has confirmed it (synced or duplicate) or has refused it for
// good, and then moves to "attention" in the same transaction.
//
// Every change is announced on the BroadcastChannel "scanqa-queue", so every
// open tab updates its badge.
import { db } from './db.js';

const channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel('scanqa-queue') : null;
const listeners = new Set();

function changed() {
  for (const f of listeners) f();
  if (channel) channel.postMessage('changed');
}
if (channel) channel.onmessage = () => { for (const f of listeners) f(); };

// Calls f() after every change of the queue or the attention list, in any tab.
export function onQueueChange(f) {
  listeners.add(f);
}

// Makes an OfflineAction and stores it with a label for the queue screen (e.g.
// "Pass LP00000002"; never sent). Resolves to the action once it is durable.
export async function enqueue(type, payload, label = '') {
  const action = { id: crypto.randomUUID(), type, payload, timestamp: new Date().toISOString() };
  const d = await db();
  const tx = d.transaction('queue', 'readwrite', { durability: 'strict' });
  tx.store.add({ action, label });
  await tx.done;
  changed();
  return action;
}

// The n oldest queued entries, [{seq, action}], oldest first.
export async function oldest(n) {
  const d = await db();
  const out = [];
  let cursor = await d.transaction('queue').store.openCursor();
  while (cursor && out.length < n) {
    out.push(cursor.value);
    cursor = await cursor.continue();
  }
  return out;
}

// Takes the entries (by seq) off the queue: the server confirmed them.
export async function remove(seqs) {
  if (!seqs.length) return;
  const d = await db();
  const tx = d.transaction('queue', 'readwrite', { durability: 'strict' });
  for (const s of seqs) tx.store.delete(s);
  await tx.done;
  changed();
}

// Moves entries [{seq, action, label, error}] from the queue to the attention list, in
// one transaction: an action is never in neither.
export async function moveToAttention(entries) {
  if (!entries.length) return;
  const d = await db();
  const tx = d.transaction(['queue', 'attention'], 'readwrite', { durability: 'strict' });
  const failedAt = new Date().toISOString();
  for (const e of entries) {
    tx.objectStore('queue').delete(e.seq);
    tx.objectStore('attention').put({ action: e.action, label: e.label, error: e.error, failed_at: failedAt });
  }
  await tx.done;
  changed();
}

export async function count() {
  return (await db()).count('queue');
}

export async function all() {
  return (await db()).getAll('queue');
}

// True when an action for this inspection waits in the queue.
export async function hasInspection(inspectionId) {
  const entries = await all();
  return entries.some((e) => e.action.payload && e.action.payload.inspection_id === inspectionId);
}

export async function attentionList() {
  const list = await (await db()).getAll('attention');
  return list.sort((a, b) => (a.failed_at < b.failed_at ? -1 : 1));
}

// The inspector has read the server's refusal: forget the action.
export async function dismiss(actionId) {
  await (await db()).delete('attention', actionId);
  changed();
}
