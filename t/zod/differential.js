// t/zod/differential.js: the spec's own Zod 3.25 schemas against the daemon.
//
// For each generated request body it asks the real Zod (zod@3.25, pinned in
// package-lock.json) whether the reference would accept it, sends it to the daemon
// through nginx, and prints one JSON line per case on stdout:
//   {"suite", "name", "zod": true|false, "zod_issues": [...], "status", "body"}
// t/zod_differential.t judges the lines: a Zod-valid body must never get 400
// "Validation failed", a Zod-invalid one must get exactly that (for the test_result
// payload, which the spec validates per action: the action fails with
// "Validation failed: ..." exactly when Zod rejects the payload).
//
// Bodies are JSON texts, not objects, so that number spellings (1e3, 1.0, -0,
// 12345678901234567890) and duplicate keys reach the daemon as a device writes
// them; Zod sees JSON.parse(text), as the reference's request.json() gives it.
//
// Not generated, by decision (README, "Decisions where the issues are silent"):
// numbers beyond double range (1e400), "\u0000" and lone surrogates, which
// JSON.parse accepts but no PostgreSQL text or jsonb column can hold.
//
// Environment: SCANQA_URL (nginx, e.g. http://127.0.0.1:8080), SCANQA_TOKEN (an
// inspector's token), SCANQA_INSPECTION (an open inspection of that organization),
// SCANQA_SEED (optional, the generator's seed), SCANQA_CASES (random cases per suite).
'use strict';

const { z } = require('zod');

// ---- the spec's schemas (seed 003, "Validation Schema (Zod)"), verbatim ----------------

const quickInspectionSchema = z.object({
  inspection_id: z.string().uuid('Invalid inspection ID'),
  result: z.enum(['pass', 'fail']),
  result_notes: z.string().max(2000).optional(),
  defects_found: z.number().int().min(0).max(1000).optional(),
  inspection_method: z.literal('scanner'),
  scanner_device_id: z.string().max(100).optional(),
  scanner_location: z.string().max(100).optional(),
});

const offlineActionSchema = z.object({
  id: z.string().uuid(),
  type: z.enum(['quick_inspection', 'test_result']),
  payload: z.record(z.any()),
  timestamp: z.string().datetime(),
});

const syncOfflineSchema = z.object({
  actions: z.array(offlineActionSchema).min(1).max(100),
});

// The test_result payload, as the README's API reference gives it.
const testResultSchema = z.object({
  inspection_id: z.string().uuid('Invalid inspection ID'),
  test_name: z.string().min(1).max(100),
  result: z.enum(['pass', 'fail']),
  measured_value: z.number().optional(),
  unit: z.string().max(20).optional(),
  notes: z.string().max(2000).optional(),
  scanner_device_id: z.string().max(100).optional(),
});

// ---- a seeded generator ------------------------------------------------------------

let seed = Number(process.env.SCANQA_SEED || 20250123) >>> 0;
function random() { // mulberry32
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (list) => list[Math.floor(random() * list.length)];
const hex = (n) => Array.from({ length: n }, () => '0123456789abcdef'[Math.floor(random() * 16)]).join('');
const uuid4 = () => `${hex(8)}-${hex(4)}-4${hex(3)}-${pick(['8', '9', 'a', 'b'])}${hex(3)}-${hex(12)}`;
const str = (s) => JSON.stringify(s);
// The first n characters of s (300 by default), never half of a surrogate pair.
const cut = (s, n = 300) => Array.from(s).slice(0, n).join('');
const ABSENT = undefined;

// Raw JSON texts of values, valid and invalid, for each kind of field. A value of
// ABSENT leaves the key out.
const uuids = () => [
  str(uuid4()), str(uuid4().toUpperCase()), str(uuid4().replace(/[a-f]/g, (c) => (random() < 0.5 ? c.toUpperCase() : c))),
  str('00000000-0000-0000-0000-000000000000'), str('ffffffff-ffff-ffff-ffff-ffffffffffff'),
  str(`${hex(8)}-${hex(4)}-1${hex(3)}-${hex(4)}-${hex(12)}`), str(`${hex(8)}-${hex(4)}-${hex(4)}-${hex(4)}-${hex(12)}`),
  str(uuid4().replace(/-/g, '')), str(`{${uuid4()}}`), str(`urn:uuid:${uuid4()}`), str(uuid4().slice(1)),
  str(`${uuid4()}0`), str(uuid4().replace(/^./, 'g')), str(`${uuid4()}\n`), str(` ${uuid4()}`),
  str('local-uuid-001'), str(''), '1', 'null', '[]', '{}', 'true',
];
const texts = (max) => [
  ABSENT, str(''), str('x'), str('x'.repeat(max)), str('x'.repeat(max + 1)),
  str('\u{1F600}'.repeat(max / 2)), str('\u{1F600}'.repeat(max / 2) + 'x'), str('é'.repeat(max)),
  str('é'.repeat(max + 1)), '"\\u00e9\\n\\t\\"\\\\"', str('日本'.repeat(Math.floor(max / 2))),
  'null', '5', 'true', '[]', '{}',
];
const enums = (ok) => [...ok.map(str), str(ok[0].toUpperCase()), str(` ${ok[0]}`), str(''), str('maybe'),
  'null', '1', 'true', ABSENT];
const numbers = [
  ABSENT, '0', '-0', '1', '1.0', '1e3', '1E2', '1e+2', '1.5e3', '10.5', '0.0', '-1', '1000', '1001', '-0.0',
  '999.9999999999999999999', '1000.0000000000001', '1e-7', '5e-324', '1.7976931348623157e308',
  '12345678901234567890', '-12345678901234567890', '9007199254740993', '"3"', 'null', 'true', '[]', '{}',
];
const datetimes = [
  '2025-01-23T10:30Z', '2025-01-23T10:30:00Z', '2025-01-23T10:30:00.1Z', '2025-01-23T10:30:00.123Z',
  '2025-01-23T10:30:00.123456789Z', '2024-02-29T00:00Z', '2000-02-29T23:59:59Z', '0000-02-29T00:00:00Z',
  '9999-12-31T23:59:59.999Z', '1970-01-01T00:00Z', '1969-12-31T23:59:59.5Z',
  '2025-01-23T10:30:00+00:00', '2025-01-23T10:30+01:00', '2025-01-23T10:30:00', '2025-01-23T10:30.5Z',
  '2025-01-23T10Z', '2025-01-23T24:00Z', '2025-01-23T10:60Z', '2025-01-23T10:30:60Z', '2023-02-29T00:00Z',
  '1900-02-29T00:00:00Z', '2100-02-29T00:00Z', '2025-04-31T00:00Z', '2025-1-23T10:30Z', '2025-01-23t10:30Z',
  '2025-01-23T10:30z', '2025-01-23 10:30Z', '2025-01-23T10:30:00.Z', '2025-01-23T10:30:Z', '+2025-01-23T10:30Z',
  '2025-01-23T10:30:00Z\n', ' 2025-01-23T10:30Z', '', '2025-01-23', '20250123T103000Z', '2025-01-23T1:30Z',
].map(str).concat(['1737628200000', 'null', ABSENT]);
const records = ['{}', '{"a":1}', '{"inspection_id":null}', '[]', 'null', '"x"', '1', ABSENT, '{"__proto__":{"a":1}}'];

// Builds an object's JSON text from [key, raw value text] pairs (ABSENT values skipped).
const object = (pairs) => `{${pairs.filter(([, v]) => v !== ABSENT).map(([k, v]) => `${str(k)}:${v}`).join(',')}}`;

// Every single-field variation of a valid base, then `extra` random combinations.
function cases(fields, valid, extra, wrap) {
  const out = [];
  const keys = Object.keys(fields);
  for (const k of keys) {
    for (const v of fields[k]) {
      out.push({ name: `${k}=${v === ABSENT ? '(absent)' : cut(v, 60)}`,
        text: wrap(object(keys.map((key) => [key, key === k ? v : valid[key]]))) });
    }
  }
  for (let i = 0; i < extra; i++) {
    // Mostly valid values, so that both answers occur often.
    const pairs = keys.map((k) => [k, random() < 0.7 ? valid[k] : pick(fields[k])]);
    if (random() < 0.2) pairs.push(['extra_key', pick(['1', 'null', '"x"', '{"y":[1,2]}'])]);
    if (random() < 0.1) pairs.push([pick(keys), pick(fields[pick(keys)]) ?? '"dup"']); // a duplicate key: the last wins
    out.push({ name: `random ${i}`, text: wrap(object(pairs)) });
  }
  return out;
}

const N = Number(process.env.SCANQA_CASES || 150);
const INSPECTION = process.env.SCANQA_INSPECTION;

function quickInspectionCases() {
  const fields = {
    inspection_id: uuids(), result: enums(['pass', 'fail']), result_notes: texts(2000), defects_found: numbers,
    inspection_method: [str('scanner'), str('Scanner'), str('manual'), 'null', ABSENT],
    scanner_device_id: texts(100), scanner_location: texts(100),
  };
  const valid = { inspection_id: str(uuid4()), result: str('pass'), result_notes: ABSENT, defects_found: ABSENT,
    inspection_method: str('scanner'), scanner_device_id: ABSENT, scanner_location: ABSENT };
  const list = cases(fields, valid, N, (o) => o);
  for (const root of ['[]', 'null', '"x"', '1', 'true', '{}', `[${object(Object.entries(valid))}]`]) {
    list.push({ name: `root ${cut(root, 40)}`, text: root });
  }
  return list;
}

function action(over) {
  const a = { id: str(uuid4()), type: str('quick_inspection'),
    payload: object([['inspection_id', str(uuid4())], ['result', str('pass')], ['inspection_method', str('scanner')]]),
    timestamp: str('2025-01-23T10:30:00.000Z'), ...over };
  return object(Object.entries(a));
}

function syncBatchCases() {
  const fields = { id: uuids(), type: enums(['quick_inspection', 'test_result']), payload: records, timestamp: datetimes };
  const valid = { id: str(uuid4()), type: str('test_result'), payload: '{}', timestamp: str('2025-01-23T10:30Z') };
  // Each action in its own fresh id, so that no generated action replays another.
  const list = cases(fields, valid, N, (a) => `{"actions":[${a}]}`).map((c) => ({
    ...c, text: c.text.replace(/"id":"[0-9a-f-]{36}"/, () => `"id":${str(uuid4())}`),
  }));
  for (const n of [0, 1, 2, 99, 100, 101]) {
    list.push({ name: `${n} actions`, text: `{"actions":[${Array.from({ length: n }, () => action({})).join(',')}]}` });
  }
  list.push({ name: 'the second of three actions invalid',
    text: `{"actions":[${action({})},${action({ timestamp: str('2025-01-23T10:30:00+01:00') })},${action({})}]}` });
  list.push({ name: 'three actions, minute precision',
    text: `{"actions":[${[1, 2, 3].map((m) => action({ timestamp: str(`2025-01-23T10:3${m}Z`) })).join(',')}]}` });
  for (const root of ['{}', '{"actions":null}', '{"actions":{}}', '{"actions":"x"}', '[]', 'null', '{"actions":[1]}',
    '{"actions":[null]}', '{"actions":[[]]}']) {
    list.push({ name: `root ${root}`, text: root });
  }
  return list;
}

function testResultCases() {
  const fields = {
    inspection_id: [str(INSPECTION), str(INSPECTION.toUpperCase()), ...uuids()], test_name: texts(100),
    result: enums(['pass', 'fail']), measured_value: numbers, unit: texts(20), notes: texts(2000),
    scanner_device_id: texts(100),
  };
  const valid = { inspection_id: str(INSPECTION), test_name: str('Weight check'), result: str('pass'),
    measured_value: ABSENT, unit: ABSENT, notes: ABSENT, scanner_device_id: ABSENT };
  fields.test_name = fields.test_name.filter((v) => v !== ABSENT).concat([ABSENT]);
  return cases(fields, valid, N, (p) => p);
}

// ---- running ---------------------------------------------------------------------------

async function send(text) {
  const r = await fetch(`${process.env.SCANQA_URL}${text.path}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${process.env.SCANQA_TOKEN}`, 'Content-Type': 'application/json' },
    body: text.body,
  });
  return { status: r.status, body: await r.text() };
}

function zodVerdict(schema, text) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { zod: false, zod_issues: [`JSON.parse: ${e.message}`] };
  }
  const r = schema.safeParse(value);
  return { zod: r.success, zod_issues: r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) };
}

async function main() {
  for (const v of ['SCANQA_URL', 'SCANQA_TOKEN', 'SCANQA_INSPECTION']) {
    if (!process.env[v]) throw new Error(`${v} is not set`);
  }
  const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
  out({ zod_version: require('zod/package.json').version });

  for (const c of quickInspectionCases()) {
    const r = await send({ path: '/api/v1/quality/scanner/quick-inspection', body: c.text });
    out({ suite: 'quick_inspection', name: c.name, ...zodVerdict(quickInspectionSchema, c.text), ...r, sent: cut(c.text) });
  }
  for (const c of syncBatchCases()) {
    const r = await send({ path: '/api/v1/quality/scanner/sync-offline', body: c.text });
    out({ suite: 'sync_batch', name: c.name, ...zodVerdict(syncOfflineSchema, c.text), ...r, sent: cut(c.text) });
  }
  for (const c of testResultCases()) {
    const batch = `{"actions":[{"id":${str(uuid4())},"type":"test_result","payload":${c.text},"timestamp":"2025-01-23T10:30Z"}]}`;
    const r = await send({ path: '/api/v1/quality/scanner/sync-offline', body: batch });
    out({ suite: 'test_result', name: c.name, ...zodVerdict(testResultSchema, c.text), ...r, sent: cut(c.text) });
  }
}

main().catch((e) => {
  process.stderr.write(`${e.stack}\n`);
  process.exit(1);
});
