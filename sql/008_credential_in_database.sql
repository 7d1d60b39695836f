-- 008_credential_in_database.sql: the tenant is decided by the credential inside
-- PostgreSQL, and every request is one statement (issue 12).
--
-- Before: the daemon looked the token up (qa_authenticate), decided organization,
-- user and role in C, and then called the endpoint's function with p_org and
-- p_user as plain arguments; its role could read every user and token hash and
-- call every function for any organization.
--
-- After, three roles:
--   scanqa_app   (LOGIN, the daemon) may EXECUTE the api_* functions below and
--                nothing else: no table, view or other function.
--   scanqa_api   (NOLOGIN) owns the api_* functions, which are SECURITY DEFINER.
--                It has the table privileges the endpoints need, under forced
--                row level security, and cannot read api_tokens at all, nor
--                users beyond the transaction's organization.
--   scanqa_auth  (NOLOGIN) owns qa_credential(), the one function that reads
--                api_tokens and every organization's users.
-- Every api_* function takes the SHA-256 of the bearer token as p_token_sha256
-- and starts with qa_credential(), which resolves user, organization and role,
-- raises SQLSTATE SQ401 (Unauthorized), SQ404 (User not found) or SQ403 (no
-- scanner role) in the README's order of checks, and sets scanqa.org_id for the
-- transaction. No api_* function takes an organization, user or role from the
-- daemon, so the only way to name a tenant is to hold one of its tokens.
-- The functions of 001-003 that take p_org stay, as the api_* functions' internal
-- steps; scanqa_app loses EXECUTE on them.
--
-- The installer creates the two NOLOGIN roles and makes the schema owner a member
-- of both (debian/dbconfig: install-dbadmin and upgrade-dbadmin/0.2.0; the tests:
-- script/lib.sh pg_create_roles), because a role without CREATEROLE cannot create
-- roles, and ALTER FUNCTION ... OWNER TO needs that membership.
--
-- Locks: the appends of a request no longer lock the organizations row or the
-- user's row through foreign keys (see "foreign keys" below), and rows that are
-- locked to be changed are locked FOR NO KEY UPDATE.
--
-- Run by "scanqa migrate" as the schema owner, inside one transaction.

SET LOCAL search_path = public, pg_temp;

DO $$
DECLARE
	r text;
BEGIN
	FOREACH r IN ARRAY ARRAY['scanqa_api', 'scanqa_auth'] LOOP
		IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
			RAISE EXCEPTION 'role % does not exist', r
				USING HINT = format('The installer creates it first: CREATE ROLE %I NOLOGIN; GRANT %I TO %I;',
					r, r, current_user);
		END IF;
		IF (SELECT rolcanlogin FROM pg_roles WHERE rolname = r) THEN
			RAISE EXCEPTION 'role % must not be able to log in (ALTER ROLE % NOLOGIN)', r, r;
		END IF;
		IF NOT pg_has_role(current_user, r, 'USAGE') THEN
			RAISE EXCEPTION 'the schema owner % must be a member of role %', current_user, r
				USING HINT = format('As a superuser: GRANT %I TO %I;', r, current_user);
		END IF;
	END LOOP;
END
$$;

-- ---- the role lists: here only --------------------------------------------------

-- Roles that may use the scanner API (quick inspection, sync, LP look-ups).
CREATE FUNCTION qa_role_scans(p_role text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = public, pg_temp
AS $fn$ SELECT p_role IN ('qa_inspector', 'qa_manager', 'admin', 'owner') $fn$;

-- Roles that may change any scan session of their organization, not only their own.
CREATE FUNCTION qa_role_manages(p_role text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = public, pg_temp
AS $fn$ SELECT p_role IN ('qa_manager', 'admin', 'owner') $fn$;

-- ---- users under forced row level security --------------------------------------

-- The daemon's roles see the users of the transaction's organization only
-- (scanqa_api needs none today; the policy is there so a future function cannot
-- read another organization's). qa_credential's owner reads users by token, before
-- the organization is known. The schema owner (migrations, "scanqa issue-token",
-- admin commands) sees every user, as before.
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON users TO scanqa_api
	USING (org_id = NULLIF(current_setting('scanqa.org_id', true), '')::uuid)
	WITH CHECK (org_id = NULLIF(current_setting('scanqa.org_id', true), '')::uuid);
CREATE POLICY credential_lookup ON users FOR SELECT TO scanqa_auth USING (true);
CREATE POLICY schema_owner ON users TO CURRENT_USER USING (true) WITH CHECK (true);

-- Policies of 001-003 name scanqa_app; the daemon's table access is now scanqa_api's.
ALTER POLICY org_isolation ON license_plates TO scanqa_api, CURRENT_USER;
ALTER POLICY org_isolation ON quality_inspections TO scanqa_api, CURRENT_USER;
ALTER POLICY org_isolation ON quality_audit_log TO scanqa_api, CURRENT_USER;
ALTER POLICY org_isolation ON scanner_offline_queue TO scanqa_api, CURRENT_USER;
ALTER POLICY org_isolation ON quality_test_results TO scanqa_api, CURRENT_USER;
ALTER POLICY scanner_synced_actions_org ON scanner_synced_actions TO scanqa_api, CURRENT_USER;
ALTER POLICY org_isolation ON scan_sessions TO scanqa_api, CURRENT_USER;
ALTER POLICY org_isolation ON scan_session_scans TO scanqa_api, CURRENT_USER;

-- ---- foreign keys: no lock on the organization's or the user's row ----------------
-- An INSERT checks each foreign key with SELECT ... FOR KEY SHARE on the row it
-- points at. Every append of every inspector of an organization (audit rows,
-- queue rows, test results, scans, new sessions) locked the one organizations row,
-- turning its xmax into a MultiXact under concurrency, and completing an inspection
-- locked the inspector's users row through completed_by. These keys go; integrity
-- is kept like this:
--   - org_id of those rows is written only by the api_* functions, from
--     qa_credential() (the organization of an existing, active user), and the
--     forced policies' WITH CHECK refuses any other org_id;
--   - rows that belong to an inspection, session or LP keep their composite keys
--     (inspection_id, org_id), (session_id, org_id), (lp_id, org_id), which point
--     at rows of the same organization and lock only those rows;
--   - user columns (completed_by, recorded_by, scan_sessions.user_id) are written
--     from qa_credential() too; users are deactivated, not deleted;
--   - deleting an organization or a user that rows still name is refused by the
--     triggers below, as the foreign keys refused it.
ALTER TABLE quality_audit_log DROP CONSTRAINT quality_audit_log_org_id_fkey;
ALTER TABLE scanner_offline_queue DROP CONSTRAINT scanner_offline_queue_org_id_fkey;
ALTER TABLE scanner_synced_actions DROP CONSTRAINT scanner_synced_actions_org_id_fkey;
ALTER TABLE quality_test_results DROP CONSTRAINT quality_test_results_org_id_fkey;
ALTER TABLE quality_test_results DROP CONSTRAINT quality_test_results_recorded_by_fkey;
ALTER TABLE quality_inspections DROP CONSTRAINT quality_inspections_completed_by_fkey;
ALTER TABLE scan_sessions DROP CONSTRAINT scan_sessions_org_id_fkey;
ALTER TABLE scan_sessions DROP CONSTRAINT scan_sessions_user_id_fkey;
ALTER TABLE scan_session_scans DROP CONSTRAINT scan_session_scans_org_id_fkey;

-- Runs as the deleting role (the schema owner: scanqa_app and scanqa_api may not
-- delete), which obeys row level security, hence the organization setting.
CREATE FUNCTION qa_organization_delete_guard() RETURNS trigger
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $fn$
BEGIN
	PERFORM set_config('scanqa.org_id', OLD.id::text, true);
	IF EXISTS (SELECT 1 FROM quality_audit_log WHERE org_id = OLD.id)
	   OR EXISTS (SELECT 1 FROM scanner_offline_queue WHERE org_id = OLD.id)
	   OR EXISTS (SELECT 1 FROM scanner_synced_actions WHERE org_id = OLD.id)
	   OR EXISTS (SELECT 1 FROM quality_test_results WHERE org_id = OLD.id)
	   OR EXISTS (SELECT 1 FROM scan_sessions WHERE org_id = OLD.id)
	   OR EXISTS (SELECT 1 FROM scan_session_scans WHERE org_id = OLD.id) THEN
		RAISE EXCEPTION 'organization % still has QA records', OLD.id
			USING ERRCODE = 'foreign_key_violation';
	END IF;
	RETURN OLD;
END
$fn$;
CREATE TRIGGER organizations_delete_guard BEFORE DELETE ON organizations
	FOR EACH ROW EXECUTE FUNCTION qa_organization_delete_guard();

CREATE FUNCTION qa_user_delete_guard() RETURNS trigger
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $fn$
BEGIN
	PERFORM set_config('scanqa.org_id', OLD.org_id::text, true);
	IF EXISTS (SELECT 1 FROM quality_inspections WHERE org_id = OLD.org_id AND completed_by = OLD.id)
	   OR EXISTS (SELECT 1 FROM quality_test_results WHERE org_id = OLD.org_id AND recorded_by = OLD.id)
	   OR EXISTS (SELECT 1 FROM scan_sessions WHERE org_id = OLD.org_id AND user_id = OLD.id) THEN
		RAISE EXCEPTION 'user % did QA work: deactivate it instead (active = false)', OLD.id
			USING ERRCODE = 'foreign_key_violation';
	END IF;
	RETURN OLD;
END
$fn$;
CREATE TRIGGER users_delete_guard BEFORE DELETE ON users
	FOR EACH ROW EXECUTE FUNCTION qa_user_delete_guard();

-- ---- FOR NO KEY UPDATE where FOR UPDATE was more than needed -----------------------
-- Completing an inspection and changing a session change no key column, so they
-- lock FOR NO KEY UPDATE: it still serialises the writers, but no longer blocks
-- the FOR KEY SHARE of a foreign key check (a test result or a scan that points at
-- the row).

DO $$
BEGIN
	-- qa_complete_inspection (001) and the two session functions (003) differ from
	-- their earlier versions only in this lock: replace it in their bodies rather
	-- than repeat 250 lines here.
	EXECUTE replace(pg_get_functiondef('qa_complete_inspection(uuid, uuid, uuid, text, text, integer, text, text, timestamptz, boolean, bigint)'::regprocedure),
		E'AND i.org_id = p_org\n\t   FOR UPDATE;', E'AND i.org_id = p_org\n\t   FOR NO KEY UPDATE;');
	EXECUTE replace(pg_get_functiondef('qa_session_update(uuid, uuid, boolean, integer, integer[], text, text, text, integer, boolean)'::regprocedure),
		'AND t.org_id = p_org FOR UPDATE;', 'AND t.org_id = p_org FOR NO KEY UPDATE;');
	EXECUTE replace(pg_get_functiondef('qa_session_scan(uuid, uuid, boolean, integer, text)'::regprocedure),
		'AND t.org_id = p_org FOR UPDATE;', 'AND t.org_id = p_org FOR NO KEY UPDATE;');
	IF EXISTS (SELECT 1 FROM pg_proc
	            WHERE proname IN ('qa_complete_inspection', 'qa_session_update', 'qa_session_scan')
	              AND (prosrc LIKE '%FOR UPDATE%' OR prosrc NOT LIKE '%FOR NO KEY UPDATE%')) THEN
		RAISE EXCEPTION 'qa_complete_inspection, qa_session_update and qa_session_scan must lock FOR NO KEY UPDATE';
	END IF;
END
$$;

-- ---- the credential ---------------------------------------------------------------

-- What qa_credential() resolves: the caller, and whether its role manages sessions.
CREATE TYPE qa_caller AS (user_id uuid, org_id uuid, manager boolean);

-- qa_credential: the caller of a bearer token, given its SHA-256 (32 bytes), for a
-- route that needs p_access: 'user' (any active user) or 'scanner' (a role of
-- qa_role_scans). Checks, in the README's order, and raises:
--   SQ401 Unauthorized     no such token, or it expired or was revoked;
--   SQ404 User not found   the token's user profile is gone or inactive;
--   SQ403 forbidden        p_access = 'scanner' and the role is not a scanner role.
-- Then sets scanqa.org_id to the user's organization for the rest of the
-- transaction, and returns (user_id, org_id, manager).
--
-- last_used_at is written at most once a minute per token, and only when it can
-- be written without waiting or failing: not in a read-only transaction (a
-- standby, default_transaction_read_only), and not when another request of the
-- same token holds the row (SKIP LOCKED). So a read never fails or waits for it.
CREATE FUNCTION qa_credential(p_token_sha256 bytea, p_access text)
RETURNS qa_caller
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = public, pg_temp
AS $fn$
DECLARE
	v_token     uuid;
	v_user      uuid;
	v_last_used timestamptz;
	v_org       uuid;
	v_role      text;
	v_active    boolean;
BEGIN
	IF p_access IS NULL OR p_access NOT IN ('user', 'scanner') THEN
		RAISE EXCEPTION 'qa_credential: access must be user or scanner, not %', coalesce(p_access, 'NULL')
			USING ERRCODE = 'invalid_parameter_value';
	END IF;

	SELECT t.id, t.user_id, t.last_used_at
	  INTO v_token, v_user, v_last_used
	  FROM api_tokens t
	 WHERE t.token_sha256 = p_token_sha256
	   AND t.revoked_at IS NULL
	   AND (t.expires_at IS NULL OR t.expires_at > now());
	IF NOT FOUND THEN
		RAISE EXCEPTION 'Unauthorized' USING ERRCODE = 'SQ401';
	END IF;

	SELECT u.org_id, u.role, u.active INTO v_org, v_role, v_active
	  FROM users u
	 WHERE u.id = v_user;
	IF NOT FOUND OR NOT v_active THEN
		RAISE EXCEPTION 'User not found' USING ERRCODE = 'SQ404';
	END IF;
	IF p_access = 'scanner' AND NOT qa_role_scans(v_role) THEN
		RAISE EXCEPTION 'Scanner access requires QA Inspector role' USING ERRCODE = 'SQ403';
	END IF;

	IF (v_last_used IS NULL OR v_last_used < now() - interval '60 seconds')
	   AND current_setting('transaction_read_only') = 'off' THEN
		UPDATE api_tokens t
		   SET last_used_at = now()
		 WHERE t.id = (SELECT x.id FROM api_tokens x
		                WHERE x.id = v_token
		                  AND (x.last_used_at IS NULL OR x.last_used_at < now() - interval '60 seconds')
		                  FOR NO KEY UPDATE SKIP LOCKED);
	END IF;

	PERFORM set_config('scanqa.org_id', v_org::text, true);
	RETURN ROW(v_user, v_org, qa_role_manages(v_role))::qa_caller;
END
$fn$;
-- A new owner needs CREATE on the schema at the moment of ALTER ... OWNER TO, not
-- afterwards: granted just for that, and revoked at the end of this file.
GRANT CREATE ON SCHEMA public TO scanqa_api, scanqa_auth;
ALTER FUNCTION qa_credential(bytea, text) OWNER TO scanqa_auth;

-- ---- the endpoints: one statement each ---------------------------------------------
-- All SECURITY DEFINER, owned by scanqa_api (ALTER ... OWNER TO at the end), with a
-- fixed search_path. Each starts with qa_credential(); the rest is the endpoint's
-- work of 001-003, unchanged. The daemon calls them with named arguments.

-- api_credential: only the credential check, for a request the daemon refuses
-- before its endpoint's statement (415, or a body that fails validation), so that
-- a bad credential still gets its 401/403 first. Returns nothing.
CREATE FUNCTION api_credential(p_token_sha256 bytea, p_access text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = public, pg_temp
AS $fn$
BEGIN
	PERFORM qa_credential(p_token_sha256, p_access);
END
$fn$;

-- api_quick_inspection: POST /api/v1/quality/scanner/quick-inspection. Returns
-- qa_complete_inspection's row, completed_at as epoch microseconds.
CREATE FUNCTION api_quick_inspection(
	p_token_sha256 bytea,
	p_inspection   uuid,
	p_result       text,
	p_notes        text,
	p_defects      integer,
	p_device       text,
	p_location     text)
RETURNS TABLE (outcome text, lp_id uuid, completed_us bigint, lp_new_status text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = public, pg_temp
AS $fn$
DECLARE
	c qa_caller := qa_credential(p_token_sha256, 'scanner');
BEGIN
	RETURN QUERY
		SELECT f.outcome, f.lp_id, (extract(epoch FROM f.completed_at) * 1000000)::bigint,
		       f.lp_new_status
		  FROM qa_complete_inspection(c.org_id, c.user_id, p_inspection, p_result, p_notes,
			p_defects, p_device, p_location, NULL, false, 0) f;
END
$fn$;

-- api_sync_offline: POST /api/v1/quality/scanner/sync-offline, the whole batch in
-- one statement and one transaction. p_actions is a JSON array, in processing
-- order (the daemon sorts it), of one object per action:
--   action     the action as sent {id, type, payload, timestamp}: the queue row's
--              action_payload;
--   device     payload.scanner_device_id when a string, else null;
--   local_us   the action's timestamp, microseconds since the epoch (an integer);
--   reject     null, or the client's error for a payload that failed its schema;
--   inspection_id, result, notes, defects, location (quick_inspection) and
--   test_name, measured_value, unit (test_result): the validated payload fields,
--              as strings or null.
-- Each action runs as before (qa_sync_quick_inspection, qa_sync_test_result,
-- qa_sync_record_failure): its work in a sub-transaction, so one failing action
-- never undoes another, and one queue row for every outcome. Returns one row per
-- action, in order: (action_id, sync_status, error, detail) as those functions
-- define them. Everything commits together, or (statement timeout, lost
-- connection) nothing does, and a resent batch is safe: synced ids are duplicates.
CREATE FUNCTION api_sync_offline(p_token_sha256 bytea, p_actions jsonb)
RETURNS TABLE (action_id uuid, sync_status text, error text, detail text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = public, pg_temp
AS $fn$
#variable_conflict use_column
DECLARE
	c qa_caller := qa_credential(p_token_sha256, 'scanner');
	a jsonb;
	r record;
	v_status text;
BEGIN
	IF jsonb_typeof(p_actions) IS DISTINCT FROM 'array' THEN
		RAISE EXCEPTION 'api_sync_offline: actions must be an array'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	FOR a IN SELECT e FROM jsonb_array_elements(p_actions) e LOOP
		action_id := (a #>> '{action,id}')::uuid;
		IF a ->> 'reject' IS NOT NULL THEN
			PERFORM qa_sync_record_failure(c.org_id, c.user_id, a -> 'action', a ->> 'device',
				(a ->> 'local_us')::bigint, a ->> 'reject', false);
			sync_status := 'failed';
			error := a ->> 'reject';
			detail := NULL;
		ELSIF a #>> '{action,type}' = 'test_result' THEN
			SELECT * INTO r FROM qa_sync_test_result(c.org_id, c.user_id, a -> 'action',
				a ->> 'device', (a ->> 'local_us')::bigint, (a ->> 'inspection_id')::uuid,
				a ->> 'test_name', a ->> 'result', (a ->> 'measured_value')::double precision,
				a ->> 'unit', a ->> 'notes');
			sync_status := r.sync_status;
			error := r.error;
			detail := r.detail;
		ELSE
			SELECT * INTO r FROM qa_sync_quick_inspection(c.org_id, c.user_id, a -> 'action',
				a ->> 'device', (a ->> 'local_us')::bigint, (a ->> 'inspection_id')::uuid,
				a ->> 'result', a ->> 'notes', (a ->> 'defects')::integer, a ->> 'location');
			sync_status := r.sync_status;
			error := r.error;
			detail := r.detail;
		END IF;
		RETURN NEXT;
	END LOOP;
END
$fn$;

-- api_session_create: POST /api/v1/scan-sessions; qa_session_create for the caller.
CREATE FUNCTION api_session_create(
	p_token_sha256  bytea,
	p_session_token text,
	p_location      text,
	p_notes         text,
	p_expected      integer,
	p_auto_commit   boolean)
RETURNS SETOF scan_session_view
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = public, pg_temp
AS $fn$
DECLARE
	c qa_caller := qa_credential(p_token_sha256, 'user');
BEGIN
	RETURN QUERY SELECT * FROM qa_session_create(c.org_id, c.user_id, p_session_token,
		p_location, p_notes, p_expected, p_auto_commit);
END
$fn$;

-- api_session_get: GET /api/v1/scan-sessions/{id}; no row when there is none in
-- the caller's organization.
CREATE FUNCTION api_session_get(p_token_sha256 bytea, p_id integer)
RETURNS SETOF scan_session_view
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = public, pg_temp
AS $fn$
DECLARE
	c qa_caller := qa_credential(p_token_sha256, 'user');
BEGIN
	RETURN QUERY SELECT * FROM qa_session_get(c.org_id, p_id);
END
$fn$;

-- api_session_update: PATCH /api/v1/scan-sessions/{id}; qa_session_update with
-- the caller, who may change any session of the organization when qa_role_manages.
-- Returns the session's columns, then outcome.
CREATE FUNCTION api_session_update(
	p_token_sha256 bytea,
	p_id           integer,
	p_if_match     integer[],
	p_status       text,
	p_location     text,
	p_notes        text,
	p_items        integer,
	p_auto_commit  boolean)
RETURNS TABLE (session scan_session_view, outcome text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = public, pg_temp
AS $fn$
DECLARE
	c qa_caller := qa_credential(p_token_sha256, 'user');
BEGIN
	RETURN QUERY SELECT * FROM qa_session_update(c.org_id, c.user_id, c.manager, p_id,
		p_if_match, p_status, p_location, p_notes, p_items, p_auto_commit);
END
$fn$;

-- api_session_scan: POST /api/v1/scan-sessions/{id}/scans; qa_session_scan's row.
CREATE FUNCTION api_session_scan(p_token_sha256 bytea, p_id integer, p_barcode text)
RETURNS TABLE (
	session           scan_session_view,
	outcome           text,
	scan_id           bigint,
	scanned_us        bigint,
	lp_id             uuid,
	lp_barcode        text,
	product_id        text,
	batch_number      text,
	quantity          text,
	qa_status         text,
	inspection_id     uuid,
	inspection_number text,
	inspection_status text,
	inspection_result text,
	inspection_created_us bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = public, pg_temp
AS $fn$
DECLARE
	c qa_caller := qa_credential(p_token_sha256, 'user');
BEGIN
	RETURN QUERY SELECT * FROM qa_session_scan(c.org_id, c.user_id, c.manager, p_id, p_barcode);
END
$fn$;

-- api_lp_by_barcode: GET /api/warehouse/license-plates/barcode/{barcode}.
CREATE FUNCTION api_lp_by_barcode(p_token_sha256 bytea, p_barcode text)
RETURNS TABLE (
	lp_id                uuid,
	barcode              text,
	product_id           text,
	batch_number         text,
	quantity             text,
	qa_status            text,
	pending_inspections  bigint,
	created_us           bigint,
	updated_us           bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = public, pg_temp
AS $fn$
DECLARE
	c qa_caller := qa_credential(p_token_sha256, 'scanner');
BEGIN
	RETURN QUERY SELECT * FROM qa_lp_by_barcode(c.org_id, p_barcode);
END
$fn$;

-- api_inspection_by_lp: GET /api/quality/inspections/by-lp/{lpId}.
CREATE FUNCTION api_inspection_by_lp(p_token_sha256 bytea, p_lp uuid)
RETURNS TABLE (
	lp_id                 uuid,
	barcode               text,
	product_id            text,
	batch_number          text,
	quantity              text,
	qa_status             text,
	inspection_id         uuid,
	inspection_number     text,
	inspection_status     text,
	inspection_result     text,
	inspection_created_us bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = public, pg_temp
AS $fn$
DECLARE
	c qa_caller := qa_credential(p_token_sha256, 'scanner');
BEGIN
	RETURN QUERY SELECT * FROM qa_inspection_by_lp(c.org_id, p_lp);
END
$fn$;

-- api_open_inspections: GET /api/quality/inspections/open (005); qa_open_inspections'
-- rows for the caller's organization.
CREATE FUNCTION api_open_inspections(p_token_sha256 bytea, p_since timestamptz, p_after_us bigint,
                                     p_after_id uuid, p_limit integer)
RETURNS TABLE (
	lp_id                 uuid,
	barcode               text,
	product_id            text,
	batch_number          text,
	quantity              text,
	qa_status             text,
	inspection_id         uuid,
	inspection_number     text,
	inspection_status     text,
	inspection_result     text,
	inspection_created_us bigint,
	changed_us            bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = public, pg_temp
AS $fn$
DECLARE
	c qa_caller := qa_credential(p_token_sha256, 'scanner');
BEGIN
	RETURN QUERY SELECT * FROM qa_open_inspections(c.org_id, p_since, p_after_us, p_after_id, p_limit);
END
$fn$;

-- ---- privileges ---------------------------------------------------------------------

-- The old credential function goes: the daemon no longer looks tokens up.
DROP FUNCTION qa_authenticate(text);

-- scanqa_app: the api_* functions, nothing else. Every table, view and internal
-- function privilege it had moves to scanqa_api (minus users and api_tokens).
DO $$
DECLARE
	o record;
BEGIN
	FOR o IN SELECT c.oid::regclass AS rel FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	          WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'p', 'S') LOOP
		EXECUTE format('REVOKE ALL ON %s FROM scanqa_app', o.rel);
	END LOOP;
	FOR o IN SELECT p.oid::regprocedure AS fn FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
	          WHERE n.nspname = 'public' AND p.prokind = 'f' LOOP
		EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC, scanqa_app', o.fn);
	END LOOP;
END
$$;

GRANT SELECT, UPDATE (qa_status, updated_at) ON license_plates TO scanqa_api;
GRANT SELECT,
      UPDATE (status, result, result_notes, defects_found, inspection_method,
              scanner_device_id, scanner_location, completed_at, completed_by)
   ON quality_inspections TO scanqa_api;
GRANT SELECT, INSERT ON quality_audit_log, scanner_offline_queue, scanner_synced_actions,
	quality_test_results, scan_session_scans TO scanqa_api;
GRANT SELECT, INSERT,
      UPDATE (status, location, notes, auto_commit, items_scanned, successful_scans,
              failed_scans, last_activity, ended_at, updated_at, version)
   ON scan_sessions TO scanqa_api;
GRANT SELECT ON scan_session_view TO scanqa_api;

GRANT SELECT, UPDATE (last_used_at) ON api_tokens TO scanqa_auth;
GRANT SELECT ON users TO scanqa_auth;

GRANT USAGE ON SCHEMA public TO scanqa_api, scanqa_auth;
GRANT EXECUTE ON FUNCTION qa_role_scans(text), qa_role_manages(text) TO scanqa_auth;
GRANT EXECUTE ON FUNCTION qa_credential(bytea, text) TO scanqa_api;
-- Every internal function (001-007: the work behind the api_* functions) is
-- scanqa_api's to call; none is scanqa_app's any more.
DO $$
DECLARE
	f regprocedure;
BEGIN
	FOR f IN SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
	          WHERE n.nspname = 'public' AND p.prokind = 'f' AND p.proname NOT LIKE 'api\_%'
	            AND p.proname <> 'qa_credential' LOOP
		EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO scanqa_api', f);
	END LOOP;
END
$$;

DO $$
DECLARE
	f regprocedure;
BEGIN
	FOR f IN SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
	          WHERE n.nspname = 'public' AND p.proname LIKE 'api\_%' LOOP
		EXECUTE format('ALTER FUNCTION %s OWNER TO scanqa_api', f);
		EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
		EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO scanqa_app', f);
	END LOOP;
END
$$;
REVOKE CREATE ON SCHEMA public FROM scanqa_api, scanqa_auth;
DO $$
BEGIN
	IF has_schema_privilege('scanqa_api', 'public', 'CREATE')
	   OR has_schema_privilege('scanqa_auth', 'public', 'CREATE') THEN
		RAISE EXCEPTION 'scanqa_api or scanqa_auth can still create objects in schema public';
	END IF;
END
$$;
