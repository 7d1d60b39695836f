// db.js: the app's IndexedDB database "scanqa", opened once through idb
// (vendored, web/vendor/). Stores:
//   queue        {seq, action, label}: the offline queue, oldest first by seq
//                (auto-increment); action is the spec's OfflineAction
//                {id, type, payload, timestamp}. Unique index "id" on action.id.
//   attention    {action, error, failed_at}: actions the server refused, keyed by
//                action.id, until the inspector dismisses them.
//   inspections  the offline copy of the organization's open inspections, as
//                GET /api/quality/inspections/open returns them (with lp), keyed
//                by id, index "barcode" on lp.barcode.
//   meta         key/value: "refresh_since" of the offline copy.
// Habit from idb's author: one transaction per logical change, no awaits on
// other work inside a transaction.
import { openDB } from '../vendor/idb-8.0.4/index.js';

export const DB_NAME = 'scanqa';
const DB_VERSION = 1;

let opening = null;

export function db() {
  if (!opening) {
    opening = openDB(DB_NAME, DB_VERSION, {
      upgrade(d, oldVersion) {
        if (oldVersion < 1) {
          const q = d.createObjectStore('queue', { keyPath: 'seq', autoIncrement: true });
          q.createIndex('id', 'action.id', { unique: true });
          d.createObjectStore('attention', { keyPath: 'action.id' });
          const c = d.createObjectStore('inspections', { keyPath: 'id' });
          c.createIndex('barcode', 'lp.barcode');
          d.createObjectStore('meta');
        }
      },
      // A newer version of the app wants to upgrade the database in another tab:
      // let it, and open again on next use.
      blocking(_cur, _next, event) {
        event.target.close();
        opening = null;
      },
      terminated() {
        opening = null;
      },
    });
  }
  return opening;
}
