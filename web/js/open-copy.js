// open-copy.js: the device's copy of its organization's open inspections and
// their LPs, so that a scan resolves with no network (issue 10, "Work offline").
// Filled from GET /api/quality/inspections/open (README): a full copy the first
// time, then cheap refreshes with ?since=<refresh_since of the last answer>,
// which return only what changed, completed inspections included (they are
// dropped here). Pages are followed through next_cursor.
//
// refreshOpenCopy() resolves to {ok: true, count} or {ok: false, response} with
// the API answer that stopped it (401, network...). findByBarcode(barcode)
// resolves to the stored inspection (with .lp) or null.
import { apiFetch } from './api.js';
import { db } from './db.js';

const PAGE = 500;
const OPEN = '/api/quality/inspections/open';

export async function refreshOpenCopy() {
  const d = await db();
  const since = await d.get('meta', 'refresh_since');
  const full = !since;
  let after = null;
  let nextSince = null;
  const fetched = [];
  for (;;) {
    const q = new URLSearchParams({ limit: String(PAGE) });
    if (since) q.set('since', since);
    if (after) q.set('after', after);
    const r = await apiFetch('GET', `${OPEN}?${q}`);
    if (r.status !== 200 || !r.json) return { ok: false, response: r };
    // The first page's refresh point is the earliest: it covers every later page.
    nextSince ??= r.json.refresh_since;
    fetched.push(...r.json.inspections);
    after = r.json.next_cursor;
    if (!after) break;
  }
  const tx = d.transaction(['inspections', 'meta'], 'readwrite');
  const store = tx.objectStore('inspections');
  if (full) store.clear();
  for (const ins of fetched) {
    if (ins.status === 'completed') store.delete(ins.id);
    else store.put(ins);
  }
  tx.objectStore('meta').put(nextSince, 'refresh_since');
  await tx.done;
  return { ok: true, count: fetched.length };
}

// The oldest open inspection of the LP with this barcode, or null.
export async function findByBarcode(barcode) {
  const list = await (await db()).getAllFromIndex('inspections', 'barcode', barcode);
  if (!list.length) return null;
  list.sort((a, b) => (a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : 0));
  return list[0];
}

// The inspection was completed here (online or queued): it is no longer open.
export async function forget(inspectionId) {
  await (await db()).delete('inspections', inspectionId);
}

// Drops the copy (sign-out): the next sign-in starts with a full copy.
export async function clearOpenCopy() {
  const d = await db();
  const tx = d.transaction(['inspections', 'meta'], 'readwrite');
  tx.objectStore('inspections').clear();
  tx.objectStore('meta').delete('refresh_since');
  await tx.done;
}
