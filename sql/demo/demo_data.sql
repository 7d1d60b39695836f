-- demo_data.sql: two organizations, their users, fixed API tokens, license plates
-- and inspections, so that the API reference's examples work verbatim against a
-- fresh "script/server".
--
-- Loaded by the schema owner after "scanqa migrate". Loading it again puts every
-- demo row back into the state below (inspections in progress again, tokens
-- unrevoked) without deleting anything: rows are upserted by their fixed ids.
-- Audit entries and offline-queue rows written by earlier demo sessions stay.
--
-- Tokens (the Authorization header is "Bearer <token>"); only their SHA-256 is stored:
--   demo-inspector   qa_inspector, Demo Warehouse
--   demo-manager     qa_manager,   Demo Warehouse
--   demo-viewer      viewer,       Demo Warehouse (no scanner access: 403)
--   demo-other-org   qa_inspector, Other Org (Demo Warehouse's rows are invisible: 404)
--
-- Org-scoped tables obey row level security even for their owner, so each
-- organization's rows are written with scanqa.org_id set to it, as the daemon does.

BEGIN;

-- ---- global rows -------------------------------------------------------------

INSERT INTO organizations (id, name) VALUES
	('00000000-0000-4000-8000-000000000001', 'Demo Warehouse'),
	('00000000-0000-4000-8000-000000000002', 'Other Org')
ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name;

INSERT INTO users (id, org_id, email, display_name, role, active) VALUES
	('00000000-0000-4000-8000-000000000101', '00000000-0000-4000-8000-000000000001',
	 'inspector@demo-warehouse.example', 'Demo Inspector', 'qa_inspector', true),
	('00000000-0000-4000-8000-000000000102', '00000000-0000-4000-8000-000000000001',
	 'manager@demo-warehouse.example', 'Demo Manager', 'qa_manager', true),
	('00000000-0000-4000-8000-000000000103', '00000000-0000-4000-8000-000000000001',
	 'viewer@demo-warehouse.example', 'Demo Viewer', 'viewer', true),
	('00000000-0000-4000-8000-000000000201', '00000000-0000-4000-8000-000000000002',
	 'inspector@other-org.example', 'Other Org Inspector', 'qa_inspector', true)
ON CONFLICT (id) DO UPDATE SET
	org_id = EXCLUDED.org_id, email = EXCLUDED.email,
	display_name = EXCLUDED.display_name, role = EXCLUDED.role, active = EXCLUDED.active;

INSERT INTO api_tokens (id, user_id, token_sha256, label) VALUES
	('00000000-0000-4000-8000-000000001101', '00000000-0000-4000-8000-000000000101',
	 sha256('demo-inspector'::bytea), 'demo token: inspector'),
	('00000000-0000-4000-8000-000000001102', '00000000-0000-4000-8000-000000000102',
	 sha256('demo-manager'::bytea), 'demo token: manager'),
	('00000000-0000-4000-8000-000000001103', '00000000-0000-4000-8000-000000000103',
	 sha256('demo-viewer'::bytea), 'demo token: viewer'),
	('00000000-0000-4000-8000-000000001201', '00000000-0000-4000-8000-000000000201',
	 sha256('demo-other-org'::bytea), 'demo token: other org inspector')
ON CONFLICT (id) DO UPDATE SET
	user_id = EXCLUDED.user_id, token_sha256 = EXCLUDED.token_sha256,
	label = EXCLUDED.label, expires_at = NULL, revoked_at = NULL;

-- ---- Demo Warehouse ----------------------------------------------------------

SET LOCAL scanqa.org_id = '00000000-0000-4000-8000-000000000001';

INSERT INTO license_plates
	(id, org_id, barcode, product_id, batch_number, quantity, qa_status, created_at, updated_at)
VALUES
	('550e8400-e29b-41d4-a716-446655440010', '00000000-0000-4000-8000-000000000001',
	 'LP00000001', 'prod-uuid', 'BATCH-2025-001', 100, 'pending',
	 '2025-01-23T09:00:00Z', '2025-01-23T09:00:00Z'),
	('550e8400-e29b-41d4-a716-446655440011', '00000000-0000-4000-8000-000000000001',
	 'LP00000002', 'prod-uuid', 'BATCH-2025-001', 250, 'pending',
	 '2025-01-23T09:05:00Z', '2025-01-23T09:05:00Z'),
	('550e8400-e29b-41d4-a716-446655440012', '00000000-0000-4000-8000-000000000001',
	 'LP00000003', 'prod-flour-25kg', 'BATCH-2025-002', 40, 'pending',
	 '2025-01-23T09:10:00Z', '2025-01-23T09:10:00Z'),
	('550e8400-e29b-41d4-a716-446655440013', '00000000-0000-4000-8000-000000000001',
	 'LP00000004', 'prod-sugar-1kg', 'BATCH-2025-003', 600, 'pending',
	 '2025-01-23T09:15:00Z', '2025-01-23T09:15:00Z'),
	('550e8400-e29b-41d4-a716-446655440014', '00000000-0000-4000-8000-000000000001',
	 'LP00000005', 'prod-oil-5l', 'BATCH-2025-004', 12.5, 'passed',
	 '2025-01-22T08:00:00Z', '2025-01-22T11:20:00Z'),
	('550e8400-e29b-41d4-a716-446655440015', '00000000-0000-4000-8000-000000000001',
	 'LP00000006', 'prod-salt-500g', 'BATCH-2025-005', 1000, 'on_hold',
	 '2025-01-23T09:20:00Z', '2025-01-23T09:20:00Z')
ON CONFLICT (id) DO UPDATE SET
	org_id = EXCLUDED.org_id, barcode = EXCLUDED.barcode, product_id = EXCLUDED.product_id,
	batch_number = EXCLUDED.batch_number, quantity = EXCLUDED.quantity,
	qa_status = EXCLUDED.qa_status, created_at = EXCLUDED.created_at,
	updated_at = EXCLUDED.updated_at;

-- 0001 and 0002 are the API reference's pass and fail examples; 0005 is done.
INSERT INTO quality_inspections
	(id, org_id, lp_id, inspection_number, status, result, result_notes, defects_found,
	 inspection_method, scanner_device_id, scanner_location, completed_at, completed_by,
	 created_at)
VALUES
	('550e8400-e29b-41d4-a716-446655440001', '00000000-0000-4000-8000-000000000001',
	 '550e8400-e29b-41d4-a716-446655440010', 'INS-INC-2025-00001', 'in_progress',
	 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '2025-01-23T10:00:00Z'),
	('550e8400-e29b-41d4-a716-446655440002', '00000000-0000-4000-8000-000000000001',
	 '550e8400-e29b-41d4-a716-446655440011', 'INS-INC-2025-00002', 'in_progress',
	 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '2025-01-23T10:05:00Z'),
	('550e8400-e29b-41d4-a716-446655440003', '00000000-0000-4000-8000-000000000001',
	 '550e8400-e29b-41d4-a716-446655440012', 'INS-INC-2025-00003', 'in_progress',
	 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '2025-01-23T10:10:00Z'),
	('550e8400-e29b-41d4-a716-446655440004', '00000000-0000-4000-8000-000000000001',
	 '550e8400-e29b-41d4-a716-446655440013', 'INS-INC-2025-00004', 'in_progress',
	 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '2025-01-23T10:15:00Z'),
	('550e8400-e29b-41d4-a716-446655440005', '00000000-0000-4000-8000-000000000001',
	 '550e8400-e29b-41d4-a716-446655440014', 'INS-INC-2025-00005', 'completed',
	 'pass', 'Seals intact', 0, 'scanner', 'ZEBRA-TC52-002', NULL,
	 '2025-01-22T11:20:00Z', '00000000-0000-4000-8000-000000000101', '2025-01-22T08:30:00Z'),
	('550e8400-e29b-41d4-a716-446655440006', '00000000-0000-4000-8000-000000000001',
	 '550e8400-e29b-41d4-a716-446655440015', 'INS-INC-2025-00006', 'pending',
	 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '2025-01-23T10:20:00Z')
ON CONFLICT (id) DO UPDATE SET
	org_id = EXCLUDED.org_id, lp_id = EXCLUDED.lp_id,
	inspection_number = EXCLUDED.inspection_number, status = EXCLUDED.status,
	result = EXCLUDED.result, result_notes = EXCLUDED.result_notes,
	defects_found = EXCLUDED.defects_found, inspection_method = EXCLUDED.inspection_method,
	scanner_device_id = EXCLUDED.scanner_device_id,
	scanner_location = EXCLUDED.scanner_location, completed_at = EXCLUDED.completed_at,
	completed_by = EXCLUDED.completed_by, created_at = EXCLUDED.created_at;

-- ---- Other Org ---------------------------------------------------------------

SET LOCAL scanqa.org_id = '00000000-0000-4000-8000-000000000002';

INSERT INTO license_plates
	(id, org_id, barcode, product_id, batch_number, quantity, qa_status, created_at, updated_at)
VALUES
	('550e8400-e29b-41d4-a716-446655440020', '00000000-0000-4000-8000-000000000002',
	 'LP00000101', 'prod-other-1', 'OTHER-2025-001', 30, 'pending',
	 '2025-01-23T09:00:00Z', '2025-01-23T09:00:00Z'),
	('550e8400-e29b-41d4-a716-446655440021', '00000000-0000-4000-8000-000000000002',
	 'LP00000102', 'prod-other-2', 'OTHER-2025-002', 75, 'pending',
	 '2025-01-23T09:30:00Z', '2025-01-23T09:30:00Z')
ON CONFLICT (id) DO UPDATE SET
	org_id = EXCLUDED.org_id, barcode = EXCLUDED.barcode, product_id = EXCLUDED.product_id,
	batch_number = EXCLUDED.batch_number, quantity = EXCLUDED.quantity,
	qa_status = EXCLUDED.qa_status, created_at = EXCLUDED.created_at,
	updated_at = EXCLUDED.updated_at;

INSERT INTO quality_inspections
	(id, org_id, lp_id, inspection_number, status, result, result_notes, defects_found,
	 inspection_method, scanner_device_id, scanner_location, completed_at, completed_by,
	 created_at)
VALUES
	('550e8400-e29b-41d4-a716-446655440007', '00000000-0000-4000-8000-000000000002',
	 '550e8400-e29b-41d4-a716-446655440020', 'INS-INC-2025-00101', 'in_progress',
	 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '2025-01-23T10:00:00Z'),
	('550e8400-e29b-41d4-a716-446655440008', '00000000-0000-4000-8000-000000000002',
	 '550e8400-e29b-41d4-a716-446655440021', 'INS-INC-2025-00102', 'in_progress',
	 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '2025-01-23T10:30:00Z')
ON CONFLICT (id) DO UPDATE SET
	org_id = EXCLUDED.org_id, lp_id = EXCLUDED.lp_id,
	inspection_number = EXCLUDED.inspection_number, status = EXCLUDED.status,
	result = EXCLUDED.result, result_notes = EXCLUDED.result_notes,
	defects_found = EXCLUDED.defects_found, inspection_method = EXCLUDED.inspection_method,
	scanner_device_id = EXCLUDED.scanner_device_id,
	scanner_location = EXCLUDED.scanner_location, completed_at = EXCLUDED.completed_at,
	completed_by = EXCLUDED.completed_by, created_at = EXCLUDED.created_at;

COMMIT;
