-- 001_core.sql: organizations, users, API tokens, license plates, inspections, the
-- audit log and the offline sync queue, with row level security per organization
-- and the two functions the daemon calls (qa_authenticate, qa_complete_inspection).
--
-- Run by "scanqa migrate" as the schema owner, inside one transaction (so no
-- BEGIN/COMMIT here). Every object created below is owned by that role.
--
-- Roles: the installer creates the daemon's role ("CREATE ROLE scanqa_app LOGIN");
-- this file never creates roles, it only grants to scanqa_app, which owns nothing.
--
-- Row level security: every org-scoped table is ENABLEd and FORCEd, and its policy
-- admits only rows whose org_id equals the transaction-local setting scanqa.org_id,
-- which the daemon sets with set_config('scanqa.org_id', $org, true). With the
-- setting absent or empty, no row is visible and no row can be written. The policy
-- also names the owner (CURRENT_USER, resolved when this file runs): FORCE makes
-- the owner obey it too, so data loads by the owner (demo data) set scanqa.org_id
-- exactly like the daemon does. Superusers bypass row level security altogether.

SET LOCAL search_path = public, pg_temp;

DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'scanqa_app') THEN
		RAISE EXCEPTION 'role scanqa_app does not exist'
			USING HINT = 'The installer creates it first: CREATE ROLE scanqa_app LOGIN;';
	END IF;
	IF current_user = 'scanqa_app' THEN
		RAISE EXCEPTION 'migrations must run as the schema owner (admin_conninfo), not as scanqa_app';
	END IF;
END
$$;

-- ---- global tables: no row level security -----------------------------------
-- The bearer token is looked up before the caller's organization is known, so
-- organizations, users and api_tokens are readable by the daemon as a whole.

CREATE TABLE organizations (
	id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	name       text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);

-- Users who did QA work are deactivated (active = false) rather than deleted:
-- quality_inspections.completed_by keeps referring to them.
CREATE TABLE users (
	id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	org_id       uuid NOT NULL REFERENCES organizations (id),
	email        text NOT NULL,
	display_name text NOT NULL,
	role         text NOT NULL
		CHECK (role IN ('qa_inspector', 'qa_manager', 'admin', 'owner', 'viewer', 'operator')),
	active       boolean NOT NULL DEFAULT true,
	created_at   timestamptz NOT NULL DEFAULT now()
);
-- Emails are unique regardless of case.
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));
CREATE INDEX users_org_id_idx ON users (org_id);

-- Only the SHA-256 of a token is stored. A token whose user profile was deleted
-- keeps existing with user_id NULL and authenticates as "User not found".
CREATE TABLE api_tokens (
	id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	user_id      uuid REFERENCES users (id) ON DELETE SET NULL,
	token_sha256 bytea NOT NULL UNIQUE CHECK (octet_length(token_sha256) = 32),
	label        text,
	created_at   timestamptz NOT NULL DEFAULT now(),
	expires_at   timestamptz,
	revoked_at   timestamptz,
	last_used_at timestamptz
);
CREATE INDEX api_tokens_user_id_idx ON api_tokens (user_id);

-- ---- org-scoped tables -------------------------------------------------------

CREATE TABLE license_plates (
	id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	org_id       uuid NOT NULL REFERENCES organizations (id),
	barcode      text NOT NULL,
	product_id   text,
	batch_number text,
	quantity     numeric(14,3) NOT NULL DEFAULT 0,
	qa_status    text NOT NULL DEFAULT 'pending'
		CHECK (qa_status IN ('pending', 'passed', 'failed', 'on_hold')),
	created_at   timestamptz NOT NULL DEFAULT now(),
	updated_at   timestamptz NOT NULL DEFAULT now(),
	UNIQUE (org_id, barcode),
	-- target of quality_inspections' (lp_id, org_id) foreign key
	UNIQUE (id, org_id)
);

CREATE TABLE quality_inspections (
	id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	org_id            uuid NOT NULL REFERENCES organizations (id),
	lp_id             uuid NOT NULL,
	inspection_number text NOT NULL,
	status            text NOT NULL DEFAULT 'pending'
		CHECK (status IN ('pending', 'in_progress', 'completed')),
	result            text CHECK (result IN ('pass', 'fail')),
	result_notes      text,
	defects_found     integer CHECK (defects_found BETWEEN 0 AND 1000),
	inspection_method text,
	scanner_device_id text,
	scanner_location  text,
	completed_at      timestamptz,
	completed_by      uuid REFERENCES users (id),
	created_at        timestamptz NOT NULL DEFAULT now(),
	UNIQUE (org_id, inspection_number),
	-- The inspected LP belongs to the inspection's own organization.
	FOREIGN KEY (lp_id, org_id) REFERENCES license_plates (id, org_id),
	-- A completed inspection has a result and a completion time; any other has neither.
	CONSTRAINT quality_inspections_completion_check CHECK (
		(status = 'completed' AND result IS NOT NULL AND completed_at IS NOT NULL)
		OR (status <> 'completed' AND result IS NULL AND completed_at IS NULL))
);
-- "Inspection by LP": the pending inspection of a license plate.
CREATE INDEX quality_inspections_open_by_lp_idx ON quality_inspections (lp_id)
	WHERE status <> 'completed';

-- Append-only for the daemon (see the grants below). user_id has no foreign key:
-- the trail outlives the users it names.
CREATE TABLE quality_audit_log (
	id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	org_id        uuid NOT NULL REFERENCES organizations (id),
	entity_type   text NOT NULL,
	entity_id     text NOT NULL,
	action        text NOT NULL,
	user_id       uuid,
	old_value     jsonb,
	new_value     jsonb,
	change_reason text,
	metadata      jsonb NOT NULL DEFAULT '{}',
	created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX quality_audit_log_entity_idx ON quality_audit_log (org_id, entity_type, entity_id);

-- Offline actions as synced from scanner devices, kept for audit and debugging.
-- The columns are exactly those of the API reference; indexes for the sync
-- endpoint come with a later migration. Like the audit log, user_id has no
-- foreign key.
CREATE TABLE scanner_offline_queue (
	id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	org_id           uuid NOT NULL REFERENCES organizations (id),
	user_id          uuid NOT NULL,
	action_type      text NOT NULL
		CHECK (action_type IN ('quick_inspection', 'test_result', 'qa_status_update')),
	action_payload   jsonb NOT NULL,
	device_id        text,
	created_at_local timestamptz,
	synced_at        timestamptz NOT NULL DEFAULT now(),
	sync_status      text NOT NULL CHECK (sync_status IN ('synced', 'failed', 'duplicate')),
	error_message    text
);

-- ---- row level security ------------------------------------------------------

ALTER TABLE license_plates ENABLE ROW LEVEL SECURITY;
ALTER TABLE license_plates FORCE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON license_plates TO scanqa_app, CURRENT_USER
	USING (org_id = NULLIF(current_setting('scanqa.org_id', true), '')::uuid)
	WITH CHECK (org_id = NULLIF(current_setting('scanqa.org_id', true), '')::uuid);

ALTER TABLE quality_inspections ENABLE ROW LEVEL SECURITY;
ALTER TABLE quality_inspections FORCE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON quality_inspections TO scanqa_app, CURRENT_USER
	USING (org_id = NULLIF(current_setting('scanqa.org_id', true), '')::uuid)
	WITH CHECK (org_id = NULLIF(current_setting('scanqa.org_id', true), '')::uuid);

ALTER TABLE quality_audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE quality_audit_log FORCE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON quality_audit_log TO scanqa_app, CURRENT_USER
	USING (org_id = NULLIF(current_setting('scanqa.org_id', true), '')::uuid)
	WITH CHECK (org_id = NULLIF(current_setting('scanqa.org_id', true), '')::uuid);

ALTER TABLE scanner_offline_queue ENABLE ROW LEVEL SECURITY;
ALTER TABLE scanner_offline_queue FORCE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON scanner_offline_queue TO scanqa_app, CURRENT_USER
	USING (org_id = NULLIF(current_setting('scanqa.org_id', true), '')::uuid)
	WITH CHECK (org_id = NULLIF(current_setting('scanqa.org_id', true), '')::uuid);

-- ---- functions ---------------------------------------------------------------
-- Both are SECURITY INVOKER: they run with the caller's privileges, so the
-- grants and policies above apply to them as to any other statement. The fixed
-- search_path keeps a caller's schemas from shadowing these tables; it does not
-- confine scanqa.org_id, which stays set for the rest of the transaction.

-- qa_authenticate: the caller of a bearer token, given the SHA-256 of the token
-- as 64 hex digits. Returns no row for an unknown, expired or revoked token (and
-- for anything that is not 64 hex digits); one row with every column NULL when
-- the token's user profile is gone ("User not found"); otherwise the user's id,
-- organization, role and active flag, which the caller checks.
--
-- last_used_at is written only when it is NULL or more than 60 seconds old: it
-- is a coarse "still in use" marker, and writing it on every request would turn
-- every authenticated read into a row update (WAL, dead tuples, row lock waits
-- between a token's concurrent requests). The UPDATE repeats the age test, so of
-- two concurrent requests only one writes.
CREATE FUNCTION qa_authenticate(p_sha256_hex text)
RETURNS TABLE (user_id uuid, org_id uuid, role text, active boolean)
LANGUAGE plpgsql
VOLATILE
SECURITY INVOKER
SET search_path = public, pg_temp
AS $fn$
#variable_conflict use_column
DECLARE
	v_token_id  uuid;
	v_user_id   uuid;
	v_last_used timestamptz;
BEGIN
	IF p_sha256_hex IS NULL OR p_sha256_hex !~ '^[0-9A-Fa-f]{64}$' THEN
		RETURN;
	END IF;

	SELECT t.id, t.user_id, t.last_used_at
	  INTO v_token_id, v_user_id, v_last_used
	  FROM api_tokens t
	 WHERE t.token_sha256 = decode(p_sha256_hex, 'hex')
	   AND t.revoked_at IS NULL
	   AND (t.expires_at IS NULL OR t.expires_at > now());
	IF NOT FOUND THEN
		RETURN;
	END IF;

	IF v_last_used IS NULL OR v_last_used < now() - interval '60 seconds' THEN
		UPDATE api_tokens t
		   SET last_used_at = now()
		 WHERE t.id = v_token_id
		   AND (t.last_used_at IS NULL OR t.last_used_at < now() - interval '60 seconds');
	END IF;

	RETURN QUERY
		SELECT u.id, u.org_id, u.role, u.active
		  FROM (VALUES (v_user_id)) AS tok (user_id)
		  LEFT JOIN users u ON u.id = tok.user_id;
END
$fn$;

-- qa_complete_inspection: the whole quick pass/fail of an inspection in one round
-- trip, in the caller's transaction (it never commits, so the offline sync may
-- call it once per action inside its own transaction). Sets scanqa.org_id to
-- p_org for the rest of the transaction.
--
-- Returns one row; outcome is
--   'not_found'          no such inspection in p_org (other organizations' rows
--                        are invisible): every other column NULL;
--   'already_completed'  nothing changed: lp_id and the earlier completed_at;
--   'ok'                 the inspection is completed, its LP's qa_status set
--                        ('passed' or 'failed', in lp_new_status; NULL if the LP
--                        row was not updated) and one audit entry written.
-- completed_at is p_completed_at (the device's time for an offline action) but
-- never later than now(); NULL means now(). p_device NULL is stored as SQL NULL
-- and appears as JSON null in the audit metadata. p_offline NULL counts as false,
-- p_sync_delay NULL as 0.
-- Raises invalid_parameter_value (22023) for a NULL id or a result other than
-- 'pass' or 'fail'. Locks the inspection row, then its LP row, in that order.
CREATE FUNCTION qa_complete_inspection(
	p_org          uuid,
	p_user         uuid,
	p_inspection   uuid,
	p_result       text,
	p_notes        text,
	p_defects      integer,
	p_device       text,
	p_location     text,
	p_completed_at timestamptz,
	p_offline      boolean,
	p_sync_delay   bigint)
RETURNS TABLE (outcome text, lp_id uuid, completed_at timestamptz, lp_new_status text)
LANGUAGE plpgsql
VOLATILE
SECURITY INVOKER
SET search_path = public, pg_temp
AS $fn$
#variable_conflict use_column
DECLARE
	v_old_status text;
	v_old_result text;
	v_lp         uuid;
	v_done       timestamptz;
	v_lp_status  text;
BEGIN
	IF p_org IS NULL OR p_user IS NULL OR p_inspection IS NULL THEN
		RAISE EXCEPTION 'qa_complete_inspection: organization, user and inspection are required'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF p_result IS NULL OR p_result NOT IN ('pass', 'fail') THEN
		RAISE EXCEPTION 'qa_complete_inspection: result must be pass or fail, not %',
			coalesce(p_result, 'NULL')
			USING ERRCODE = 'invalid_parameter_value';
	END IF;

	PERFORM set_config('scanqa.org_id', p_org::text, true);

	-- The org_id test repeats the policy's, so the answer does not depend on
	-- row level security alone.
	SELECT i.status, i.result, i.lp_id, i.completed_at
	  INTO v_old_status, v_old_result, v_lp, v_done
	  FROM quality_inspections i
	 WHERE i.id = p_inspection
	   AND i.org_id = p_org
	   FOR UPDATE;
	IF NOT FOUND THEN
		outcome := 'not_found';
		RETURN NEXT;
		RETURN;
	END IF;

	IF v_old_status = 'completed' THEN
		outcome := 'already_completed';
		lp_id := v_lp;
		completed_at := v_done;
		RETURN NEXT;
		RETURN;
	END IF;

	UPDATE quality_inspections i
	   SET status            = 'completed',
	       result            = p_result,
	       result_notes      = p_notes,
	       defects_found     = p_defects,
	       inspection_method = 'scanner',
	       scanner_device_id = p_device,
	       scanner_location  = p_location,
	       completed_at      = LEAST(coalesce(p_completed_at, now()), now()),
	       completed_by      = p_user
	 WHERE i.id = p_inspection
	RETURNING i.completed_at INTO v_done;

	UPDATE license_plates l
	   SET qa_status  = CASE p_result WHEN 'pass' THEN 'passed' ELSE 'failed' END,
	       updated_at = now()
	 WHERE l.id = v_lp
	   AND l.org_id = p_org
	RETURNING l.qa_status INTO v_lp_status;

	INSERT INTO quality_audit_log
		(org_id, entity_type, entity_id, action, user_id,
		 old_value, new_value, change_reason, metadata)
	VALUES
		(p_org, 'inspection', p_inspection::text, 'scanner_complete', p_user,
		 jsonb_build_object('status', v_old_status, 'result', v_old_result),
		 jsonb_build_object('status', 'completed', 'result', p_result),
		 CASE p_result WHEN 'pass' THEN 'Scanner quick pass' ELSE 'Scanner quick fail' END,
		 jsonb_build_object(
			'inspection_method', 'scanner',
			'device_id', p_device,
			'offline_queued', coalesce(p_offline, false),
			'sync_delay_seconds', coalesce(p_sync_delay, 0)));

	outcome := 'ok';
	lp_id := v_lp;
	completed_at := v_done;
	lp_new_status := v_lp_status;
	RETURN NEXT;
END
$fn$;

-- ---- privileges of the daemon's role ----------------------------------------

GRANT SELECT ON organizations, users TO scanqa_app;
GRANT SELECT, UPDATE (last_used_at) ON api_tokens TO scanqa_app;
GRANT SELECT, UPDATE (qa_status, updated_at) ON license_plates TO scanqa_app;
GRANT SELECT,
      UPDATE (status, result, result_notes, defects_found, inspection_method,
              scanner_device_id, scanner_location, completed_at, completed_by)
   ON quality_inspections TO scanqa_app;
-- Append-only: no UPDATE, DELETE or TRUNCATE. The identity column needs no
-- sequence privilege (an identity default does not check one).
GRANT SELECT, INSERT ON quality_audit_log TO scanqa_app;
GRANT SELECT, INSERT ON scanner_offline_queue TO scanqa_app;

-- Functions are executable by PUBLIC unless revoked.
REVOKE ALL ON FUNCTION qa_authenticate(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION qa_complete_inspection(uuid, uuid, uuid, text, text, integer,
	text, text, timestamptz, boolean, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION qa_authenticate(text) TO scanqa_app;
GRANT EXECUTE ON FUNCTION qa_complete_inspection(uuid, uuid, uuid, text, text, integer,
	text, text, timestamptz, boolean, bigint) TO scanqa_app;

-- The daemon may use schema public but never create objects in it. PostgreSQL 15
-- already withholds CREATE from PUBLIC; older clusters upgraded in place may not.
-- The statements run only when needed, so an owner that does not own the schema
-- gets no "no privileges could be revoked" warnings, and a role that still has
-- CREATE through some other grant stops the migration.
DO $$
BEGIN
	IF has_schema_privilege('scanqa_app', 'public', 'CREATE') THEN
		REVOKE CREATE ON SCHEMA public FROM PUBLIC;
		REVOKE CREATE ON SCHEMA public FROM scanqa_app;
	END IF;
	IF has_schema_privilege('scanqa_app', 'public', 'CREATE') THEN
		RAISE EXCEPTION 'scanqa_app can still create objects in schema public'
			USING HINT = 'Revoke CREATE on schema public from the roles scanqa_app belongs to.';
	END IF;
	IF NOT has_schema_privilege('scanqa_app', 'public', 'USAGE') THEN
		GRANT USAGE ON SCHEMA public TO scanqa_app;
	END IF;
END
$$;
