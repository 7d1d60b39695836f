-- bench/dataset.sql: the benchmark's data set, generated set-based in one
-- transaction. Run by script/bench as the superuser (row level security does not
-- apply to it), on a freshly migrated database, with the psql variables
--   orgs     number of organizations (1..99)
--   per_org  license plates per organization, each with one pending inspection
--
-- Every id is derived from (organization k, index i), so that wrk's Lua script and
-- pgbench can name a fresh row without asking the database (bench/wrk/scanqa.lua
-- builds the same strings):
--   organization k     0000000k-0000-4000-8000-000000000000   (k zero-padded to 8 digits)
--   its inspector      0000000k-0000-4000-8000-000000000001   token "bench-org-k"
--   inspection i       0000000k-0001-4000-8000-<100000000000 + i>
--   license plate i    0000000k-0002-4000-8000-<100000000000 + i>
--   barcode of LP i    <k * 10^15 + i>   (16 digits, like a GS1 number)
-- Index i runs from 0 to per_org - 1; inspection i is the pending inspection of
-- license plate i. The 12 decimal digits of the last group keep the ids valid
-- version-4 UUIDs that sort by i.

\set ON_ERROR_STOP 1

BEGIN;

-- The rows below are consistent by construction: skip the per-row foreign key
-- triggers, which would otherwise dominate the load time.
SET LOCAL session_replication_role = replica;

CREATE TEMP TABLE bench_orgs ON COMMIT DROP AS
SELECT k, lpad(k::text, 8, '0') AS p
  FROM generate_series(1, :orgs) AS k;

INSERT INTO organizations (id, name)
SELECT (p || '-0000-4000-8000-000000000000')::uuid, 'Bench Warehouse ' || k
  FROM bench_orgs;

INSERT INTO users (id, org_id, email, display_name, role, active)
SELECT (p || '-0000-4000-8000-000000000001')::uuid,
       (p || '-0000-4000-8000-000000000000')::uuid,
       'inspector' || k || '@bench.example', 'Bench Inspector ' || k, 'qa_inspector', true
  FROM bench_orgs;

INSERT INTO api_tokens (user_id, token_sha256, label)
SELECT (p || '-0000-4000-8000-000000000001')::uuid,
       sha256(convert_to('bench-org-' || k, 'UTF8')), 'bench token ' || k
  FROM bench_orgs;

INSERT INTO license_plates
	(id, org_id, barcode, product_id, batch_number, quantity, qa_status, created_at, updated_at)
SELECT (o.p || '-0002-4000-8000-' || (100000000000 + i))::uuid,
       (o.p || '-0000-4000-8000-000000000000')::uuid,
       (o.k * 1000000000000000 + i)::text,
       'prod-' || (i % 500),
       'BATCH-2025-' || lpad((i / 1000)::text, 4, '0'),
       (i % 997) + 1,
       'pending',
       timestamptz '2025-01-01T00:00:00Z' + i * interval '1 second',
       timestamptz '2025-01-01T00:00:00Z' + i * interval '1 second'
  FROM bench_orgs o, generate_series(0, :per_org - 1) AS i;

INSERT INTO quality_inspections
	(id, org_id, lp_id, inspection_number, status, created_at)
SELECT (o.p || '-0001-4000-8000-' || (100000000000 + i))::uuid,
       (o.p || '-0000-4000-8000-000000000000')::uuid,
       (o.p || '-0002-4000-8000-' || (100000000000 + i))::uuid,
       'INS-BENCH-' || o.k || '-' || i,
       'pending',
       timestamptz '2025-01-01T00:00:00Z' + i * interval '1 second'
  FROM bench_orgs o, generate_series(0, :per_org - 1) AS i;

COMMIT;
