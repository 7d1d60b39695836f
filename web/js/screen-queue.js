// screen-queue.js: what waits for the network (the queue, oldest first) and
// what the server refused ("needs attention", each with the server's error and
// a Dismiss button). Nothing leaves either list silently. Also keeps the
// tab bar's badges current: the number of queued actions, and "!" when
// something needs attention.
//
// initQueue({syncNow}) wires the screen; refreshQueue() re-renders it and the badges.
import * as queue from './queue.js';
import { $ } from './ui.js';

export function initQueue({ syncNow }) {
  $('sync-now').addEventListener('click', async () => {
    $('queue-summary').textContent = 'Syncing…';
    await syncNow();
    refreshQueue();
  });
  $('attention-list').addEventListener('click', async (ev) => {
    const id = ev.target.dataset.dismiss;
    if (id) await queue.dismiss(id);
  });
  queue.onQueueChange(refreshQueue);
}

function item(text, extra) {
  const li = document.createElement('li');
  li.textContent = text;
  if (extra) li.append(extra);
  return li;
}

// Changes come in bursts (a sync removes a batch, a fast inspector queues
// several): one refresh runs at a time, and calls meanwhile fold into one more.
let running = null;
let again = false;

export function refreshQueue() {
  if (running) {
    again = true;
    return running;
  }
  running = (async () => {
    do {
      again = false;
      await render();
    } while (again);
    running = null;
  })();
  return running;
}

// The badges always; the lists only while the queue screen shows.
async function render() {
  const [n, attention] = await Promise.all([queue.count(), queue.attentionList()]);
  const badge = $('queue-badge');
  badge.textContent = String(n);
  badge.classList.toggle('waiting', n > 0);
  $('attention-badge').hidden = attention.length === 0;
  if ($('screen-queue').hidden) return;
  const entries = await queue.all();
  $('queue-summary').textContent = entries.length
    ? `${entries.length} action${entries.length === 1 ? '' : 's'} waiting to sync.`
    : 'Nothing waiting: everything is synced.';
  $('queue-list').replaceChildren(...entries.map((e) =>
    item(`${e.label || e.action.type} · queued ${new Date(e.action.timestamp).toLocaleTimeString()}`)));
  $('attention-list').replaceChildren(...attention.map((a) => {
    const what = a.label || `${a.action.type} (inspection ${(a.action.payload || {}).inspection_id ?? '?'})`;
    const err = document.createElement('strong');
    err.textContent = ` — ${a.error}`;
    const btn = document.createElement('button');
    btn.type = 'button';
    btn.className = 'big';
    btn.textContent = 'Dismiss';
    btn.dataset.dismiss = a.action.id;
    const li = item(what, err);
    li.append(btn);
    return li;
  }));
  if (!attention.length) $('attention-list').replaceChildren(item('Nothing needs attention.'));
}
