-- 003_scan_sessions.sql: scan sessions (one stretch of scanning by one person on
-- one device), the scans recorded in them, and the functions behind the
-- scan-session and license-plate lookup endpoints.
--
-- Run by "scanqa migrate" as the schema owner, inside one transaction, after
-- 001_core.sql. Row level security works exactly as there: each table is
-- ENABLEd and FORCEd, its policy admits only rows of the organization in the
-- transaction-local setting scanqa.org_id, and every function below sets it
-- first. Each function is one round trip for the daemon: the endpoint's whole
-- transaction happens in a single statement.

SET LOCAL search_path = public, pg_temp;

-- ---- tables ------------------------------------------------------------------

-- The spec's path parameter is an integer, hence the identity key. version
-- starts at 1 and grows by one with every change of the row (a PATCH that
-- changes something, a recorded scan); it is the session's ETag.
-- items_scanned is what the device reports (PATCH) or at least the number of
-- scans recorded here; it never decreases.
CREATE TABLE scan_sessions (
	id               integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	org_id           uuid NOT NULL REFERENCES organizations (id),
	user_id          uuid NOT NULL REFERENCES users (id),
	-- 32 random bytes, base64url without padding (made by the daemon with OpenSSL).
	session_token    text NOT NULL UNIQUE CHECK (session_token ~ '^[A-Za-z0-9_-]{43}$'),
	status           text NOT NULL DEFAULT 'ACTIVE'
		CHECK (status IN ('ACTIVE', 'PAUSED', 'COMPLETED', 'CANCELLED')),
	location         text,
	notes            text,
	auto_commit      boolean NOT NULL DEFAULT false,
	expected_items   integer CHECK (expected_items > 0),
	items_scanned    integer NOT NULL DEFAULT 0 CHECK (items_scanned >= 0),
	successful_scans integer NOT NULL DEFAULT 0 CHECK (successful_scans >= 0),
	failed_scans     integer NOT NULL DEFAULT 0 CHECK (failed_scans >= 0),
	started_at       timestamptz NOT NULL DEFAULT now(),
	last_activity    timestamptz NOT NULL DEFAULT now(),
	ended_at         timestamptz,
	updated_at       timestamptz NOT NULL DEFAULT now(),
	version          integer NOT NULL DEFAULT 1 CHECK (version > 0),
	-- target of scan_session_scans' (session_id, org_id) foreign key
	UNIQUE (id, org_id),
	CONSTRAINT scan_sessions_scans_counted_check
		CHECK (items_scanned::bigint >= successful_scans::bigint + failed_scans::bigint),
	-- COMPLETED and CANCELLED are the final states, and only they have an end.
	CONSTRAINT scan_sessions_ended_check
		CHECK ((status IN ('COMPLETED', 'CANCELLED')) = (ended_at IS NOT NULL))
);
CREATE INDEX scan_sessions_org_user_idx ON scan_sessions (org_id, user_id);

-- One row per barcode scanned in a session. A scan whose barcode matched no
-- license plate of the organization is kept too, with lp_id NULL. user_id has
-- no foreign key, like the audit log's.
CREATE TABLE scan_session_scans (
	id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	org_id     uuid NOT NULL REFERENCES organizations (id),
	session_id integer NOT NULL,
	user_id    uuid NOT NULL,
	barcode    text NOT NULL,
	lp_id      uuid,
	success    boolean GENERATED ALWAYS AS (lp_id IS NOT NULL) STORED,
	scanned_at timestamptz NOT NULL DEFAULT now(),
	FOREIGN KEY (session_id, org_id) REFERENCES scan_sessions (id, org_id),
	FOREIGN KEY (lp_id, org_id) REFERENCES license_plates (id, org_id)
);
CREATE INDEX scan_session_scans_session_idx ON scan_session_scans (session_id, id);
CREATE INDEX scan_session_scans_lp_idx ON scan_session_scans (lp_id) WHERE lp_id IS NOT NULL;

-- ---- row level security ------------------------------------------------------

ALTER TABLE scan_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE scan_sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON scan_sessions TO scanqa_app, CURRENT_USER
	USING (org_id = NULLIF(current_setting('scanqa.org_id', true), '')::uuid)
	WITH CHECK (org_id = NULLIF(current_setting('scanqa.org_id', true), '')::uuid);

ALTER TABLE scan_session_scans ENABLE ROW LEVEL SECURITY;
ALTER TABLE scan_session_scans FORCE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON scan_session_scans TO scanqa_app, CURRENT_USER
	USING (org_id = NULLIF(current_setting('scanqa.org_id', true), '')::uuid)
	WITH CHECK (org_id = NULLIF(current_setting('scanqa.org_id', true), '')::uuid);

-- ---- the session as the API shows it -------------------------------------------

-- One row per session in the shape the daemon turns into JSON (src/h_scan_sessions.c
-- reads these columns by position: keep the order, and add new ones only before
-- org_id, which is last). Timestamps are microseconds
-- since the epoch. duration_minutes counts whole minutes from started_at to
-- ended_at, or to now() (the transaction's start) while the session is open.
-- security_invoker: the caller's row level security applies, not the owner's.
CREATE VIEW scan_session_view WITH (security_invoker = true) AS
SELECT s.id,
       s.session_token,
       s.status,
       s.location,
       s.notes,
       s.auto_commit,
       s.expected_items,
       s.items_scanned,
       s.successful_scans,
       s.failed_scans,
       (extract(epoch FROM s.started_at) * 1000000)::bigint    AS started_us,
       (extract(epoch FROM s.last_activity) * 1000000)::bigint AS last_activity_us,
       (extract(epoch FROM s.updated_at) * 1000000)::bigint    AS updated_us,
       greatest(0, floor((extract(epoch FROM coalesce(s.ended_at, now()))
                          - extract(epoch FROM s.started_at)) / 60))::integer AS duration_minutes,
       s.version,
       s.org_id
  FROM scan_sessions s;

-- ---- functions -----------------------------------------------------------------
-- All SECURITY INVOKER with a fixed search_path, like 001's. Each sets
-- scanqa.org_id to p_org for the rest of the transaction, and repeats the
-- org_id test of the policies in its own WHERE clauses. p_manager says whether
-- the caller's role may change any session of the organization (the daemon
-- decides that: auth_is_manager_role()).

-- qa_session_create: a new ACTIVE session of p_user, and an audit entry
-- (action session_create). Returns the session. Raises invalid_parameter_value
-- (22023) when organization, user or token is NULL; a token already in use
-- raises unique_violation (23505).
CREATE FUNCTION qa_session_create(
	p_org         uuid,
	p_user        uuid,
	p_token       text,
	p_location    text,
	p_notes       text,
	p_expected    integer,
	p_auto_commit boolean)
RETURNS SETOF scan_session_view
LANGUAGE plpgsql
VOLATILE
SECURITY INVOKER
SET search_path = public, pg_temp
AS $fn$
DECLARE
	v_id integer;
BEGIN
	IF p_org IS NULL OR p_user IS NULL OR p_token IS NULL THEN
		RAISE EXCEPTION 'qa_session_create: organization, user and token are required'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	PERFORM set_config('scanqa.org_id', p_org::text, true);

	INSERT INTO scan_sessions (org_id, user_id, session_token, location, notes,
	                           expected_items, auto_commit)
	VALUES (p_org, p_user, p_token, p_location, p_notes, p_expected,
	        coalesce(p_auto_commit, false))
	RETURNING id INTO v_id;

	INSERT INTO quality_audit_log
		(org_id, entity_type, entity_id, action, user_id, old_value, new_value, metadata)
	VALUES
		(p_org, 'scan_session', v_id::text, 'session_create', p_user, NULL,
		 jsonb_build_object('status', 'ACTIVE', 'location', p_location, 'notes', p_notes,
		                    'expected_items', p_expected,
		                    'auto_commit', coalesce(p_auto_commit, false)),
		 jsonb_build_object('version', 1));

	RETURN QUERY SELECT v.* FROM scan_session_view v WHERE v.id = v_id;
END
$fn$;

-- qa_session_get: the session p_id of p_org, or no row.
CREATE FUNCTION qa_session_get(p_org uuid, p_id integer)
RETURNS SETOF scan_session_view
LANGUAGE plpgsql
VOLATILE
SECURITY INVOKER
SET search_path = public, pg_temp
AS $fn$
BEGIN
	PERFORM set_config('scanqa.org_id', p_org::text, true);
	RETURN QUERY
		SELECT v.* FROM scan_session_view v WHERE v.id = p_id AND v.org_id = p_org;
END
$fn$;

-- qa_session_update: the PATCH of a session, in one call. Arguments that are NULL
-- are not part of the update. p_if_match NULL means no precondition; otherwise
-- the session's version must be one of its elements.
--
-- The session row is locked (FOR UPDATE) before anything is decided, so
-- concurrent updates of one session run one after the other and each is judged
-- against the state the previous one left. In this order, returns one row with
-- outcome
--   'not_found'       no such session in p_org; the session columns are NULL;
--   'forbidden'       p_user is neither the session's owner nor p_manager;
--   'stale'           p_if_match does not contain the current version;
--   'unchanged'       every given field already has the given value (setting
--                     the same status again is a no-op, even on a final session);
--   'final'           the session is COMPLETED or CANCELLED and would change;
--   'items_decrease'  p_items is below the current items_scanned;
--   'ok'              the fields that differ are changed, ended_at is set when the
--                     status becomes final, last_activity, updated_at and version
--                     move on, and one audit entry (session_update) holds the old
--                     and new values of the changed fields.
-- Every outcome but 'not_found' comes with the session as it is now.
-- Any status may become any other, except out of COMPLETED and CANCELLED: ACTIVE
-- and PAUSED go both ways, and either may end as COMPLETED or CANCELLED.
-- Raises invalid_parameter_value (22023) for a status outside the four, or a
-- negative p_items.
CREATE FUNCTION qa_session_update(
	p_org         uuid,
	p_user        uuid,
	p_manager     boolean,
	p_id          integer,
	p_if_match    integer[],
	p_status      text,
	p_location    text,
	p_notes       text,
	p_items       integer,
	p_auto_commit boolean)
RETURNS TABLE (session scan_session_view, outcome text)
LANGUAGE plpgsql
VOLATILE
SECURITY INVOKER
SET search_path = public, pg_temp
AS $fn$
DECLARE
	s     scan_sessions%ROWTYPE;
	v_old jsonb := '{}';
	v_new jsonb := '{}';
BEGIN
	IF p_org IS NULL OR p_user IS NULL THEN
		RAISE EXCEPTION 'qa_session_update: organization and user are required'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF p_status IS NOT NULL AND p_status NOT IN ('ACTIVE', 'PAUSED', 'COMPLETED', 'CANCELLED') THEN
		RAISE EXCEPTION 'qa_session_update: unknown status %', p_status
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF p_items < 0 THEN
		RAISE EXCEPTION 'qa_session_update: items_scanned must not be negative'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	PERFORM set_config('scanqa.org_id', p_org::text, true);

	SELECT * INTO s FROM scan_sessions t WHERE t.id = p_id AND t.org_id = p_org FOR UPDATE;
	IF NOT FOUND THEN
		RETURN QUERY SELECT NULL::scan_session_view, 'not_found'::text;
		RETURN;
	END IF;

	IF s.user_id <> p_user AND NOT coalesce(p_manager, false) THEN
		outcome := 'forbidden';
	ELSIF p_if_match IS NOT NULL AND NOT (s.version = ANY (p_if_match)) THEN
		outcome := 'stale';
	ELSE
		IF p_status IS NOT NULL AND p_status <> s.status THEN
			v_old := v_old || jsonb_build_object('status', s.status);
			v_new := v_new || jsonb_build_object('status', p_status);
		END IF;
		IF p_location IS NOT NULL AND p_location IS DISTINCT FROM s.location THEN
			v_old := v_old || jsonb_build_object('location', s.location);
			v_new := v_new || jsonb_build_object('location', p_location);
		END IF;
		IF p_notes IS NOT NULL AND p_notes IS DISTINCT FROM s.notes THEN
			v_old := v_old || jsonb_build_object('notes', s.notes);
			v_new := v_new || jsonb_build_object('notes', p_notes);
		END IF;
		IF p_items IS NOT NULL AND p_items <> s.items_scanned THEN
			v_old := v_old || jsonb_build_object('items_scanned', s.items_scanned);
			v_new := v_new || jsonb_build_object('items_scanned', p_items);
		END IF;
		IF p_auto_commit IS NOT NULL AND p_auto_commit <> s.auto_commit THEN
			v_old := v_old || jsonb_build_object('auto_commit', s.auto_commit);
			v_new := v_new || jsonb_build_object('auto_commit', p_auto_commit);
		END IF;

		IF v_new = '{}'::jsonb THEN
			outcome := 'unchanged';
		ELSIF s.status IN ('COMPLETED', 'CANCELLED') THEN
			outcome := 'final';
		ELSIF p_items < s.items_scanned THEN
			outcome := 'items_decrease';
		ELSE
			UPDATE scan_sessions t
			   SET status        = coalesce(p_status, t.status),
			       location      = coalesce(p_location, t.location),
			       notes         = coalesce(p_notes, t.notes),
			       items_scanned = coalesce(p_items, t.items_scanned),
			       auto_commit   = coalesce(p_auto_commit, t.auto_commit),
			       ended_at      = CASE WHEN coalesce(p_status, t.status) IN ('COMPLETED', 'CANCELLED')
			                            THEN now() END,
			       last_activity = now(),
			       updated_at    = now(),
			       version       = t.version + 1
			 WHERE t.id = p_id
			   AND t.org_id = p_org;

			INSERT INTO quality_audit_log
				(org_id, entity_type, entity_id, action, user_id, old_value, new_value, metadata)
			VALUES
				(p_org, 'scan_session', p_id::text, 'session_update', p_user, v_old, v_new,
				 jsonb_build_object('version', s.version + 1,
				                    'if_match', p_if_match IS NOT NULL));
			outcome := 'ok';
		END IF;
	END IF;

	RETURN QUERY SELECT v, outcome FROM scan_session_view v WHERE v.id = p_id;
END
$fn$;

-- qa_session_scan: records one scan of p_barcode in session p_id. Returns one row;
-- outcome is, in this order,
--   'not_found'     no such session in p_org; every other column NULL;
--   'forbidden'     p_user is neither the session's owner nor p_manager;
--   'not_active'    the session is PAUSED, COMPLETED or CANCELLED (see its status);
--   'lp_not_found'  no license plate of p_org has this barcode: the scan is
--                   recorded as failed and counted in failed_scans;
--   'ok'            the scan is recorded with its LP and counted in
--                   successful_scans; the LP's columns are filled, and the
--                   inspection columns hold its oldest open (pending or
--                   in_progress) inspection, or NULL when it has none.
-- On both recording outcomes items_scanned becomes at least successful_scans +
-- failed_scans, and last_activity, updated_at and version move on. The session
-- columns show the session as it is now. Locks the session row, then (through
-- the foreign key) shares the LP's.
CREATE FUNCTION qa_session_scan(
	p_org     uuid,
	p_user    uuid,
	p_manager boolean,
	p_id      integer,
	p_barcode text)
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
LANGUAGE plpgsql
VOLATILE
SECURITY INVOKER
SET search_path = public, pg_temp
AS $fn$
#variable_conflict use_column
DECLARE
	s      scan_sessions%ROWTYPE;
	v_lp   uuid;
	v_scan bigint;
	v_at   timestamptz;
BEGIN
	IF p_org IS NULL OR p_user IS NULL OR p_barcode IS NULL THEN
		RAISE EXCEPTION 'qa_session_scan: organization, user and barcode are required'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	PERFORM set_config('scanqa.org_id', p_org::text, true);

	SELECT * INTO s FROM scan_sessions t WHERE t.id = p_id AND t.org_id = p_org FOR UPDATE;
	IF NOT FOUND THEN
		RETURN QUERY SELECT NULL::scan_session_view, 'not_found'::text,
			NULL::bigint, NULL::bigint, NULL::uuid, NULL::text, NULL::text, NULL::text,
			NULL::text, NULL::text, NULL::uuid, NULL::text, NULL::text, NULL::text, NULL::bigint;
		RETURN;
	END IF;
	IF s.user_id <> p_user AND NOT coalesce(p_manager, false) THEN
		outcome := 'forbidden';
	ELSIF s.status <> 'ACTIVE' THEN
		outcome := 'not_active';
	END IF;
	IF outcome IS NOT NULL THEN
		RETURN QUERY SELECT v, outcome,
			NULL::bigint, NULL::bigint, NULL::uuid, NULL::text, NULL::text, NULL::text,
			NULL::text, NULL::text, NULL::uuid, NULL::text, NULL::text, NULL::text, NULL::bigint
			FROM scan_session_view v WHERE v.id = p_id;
		RETURN;
	END IF;

	SELECT l.id INTO v_lp FROM license_plates l WHERE l.org_id = p_org AND l.barcode = p_barcode;

	INSERT INTO scan_session_scans (org_id, session_id, user_id, barcode, lp_id)
	VALUES (p_org, p_id, p_user, p_barcode, v_lp)
	RETURNING id, scanned_at INTO v_scan, v_at;

	UPDATE scan_sessions t
	   SET successful_scans = t.successful_scans + CASE WHEN v_lp IS NULL THEN 0 ELSE 1 END,
	       failed_scans     = t.failed_scans + CASE WHEN v_lp IS NULL THEN 1 ELSE 0 END,
	       items_scanned    = greatest(t.items_scanned, t.successful_scans + t.failed_scans + 1),
	       last_activity    = now(),
	       updated_at       = now(),
	       version          = t.version + 1
	 WHERE t.id = p_id
	   AND t.org_id = p_org;

	RETURN QUERY
		SELECT v, CASE WHEN v_lp IS NULL THEN 'lp_not_found' ELSE 'ok' END,
		       v_scan, (extract(epoch FROM v_at) * 1000000)::bigint,
		       l.id, l.barcode, l.product_id, l.batch_number, trim_scale(l.quantity)::text,
		       l.qa_status,
		       i.id, i.inspection_number, i.status, i.result,
		       (extract(epoch FROM i.created_at) * 1000000)::bigint
		  FROM scan_session_view v
		  LEFT JOIN license_plates l ON l.id = v_lp AND l.org_id = p_org
		  LEFT JOIN LATERAL (
			SELECT q.id, q.inspection_number, q.status, q.result, q.created_at
			  FROM quality_inspections q
			 WHERE q.lp_id = l.id AND q.org_id = p_org AND q.status <> 'completed'
			 ORDER BY q.created_at, q.id
			 LIMIT 1) i ON true
		 WHERE v.id = p_id;
END
$fn$;

-- qa_lp_by_barcode: the license plate of p_org with this barcode and the number
-- of its open (pending or in_progress) inspections, or no row. Uses the
-- (org_id, barcode) unique index and the open-inspections partial index.
CREATE FUNCTION qa_lp_by_barcode(p_org uuid, p_barcode text)
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
LANGUAGE plpgsql
VOLATILE
SECURITY INVOKER
SET search_path = public, pg_temp
AS $fn$
BEGIN
	PERFORM set_config('scanqa.org_id', p_org::text, true);
	RETURN QUERY
		SELECT l.id, l.barcode, l.product_id, l.batch_number, trim_scale(l.quantity)::text,
		       l.qa_status,
		       (SELECT count(*) FROM quality_inspections q
		         WHERE q.lp_id = l.id AND q.org_id = p_org AND q.status <> 'completed'),
		       (extract(epoch FROM l.created_at) * 1000000)::bigint,
		       (extract(epoch FROM l.updated_at) * 1000000)::bigint
		  FROM license_plates l
		 WHERE l.org_id = p_org
		   AND l.barcode = p_barcode;
END
$fn$;

-- qa_inspection_by_lp: the license plate p_lp of p_org with its oldest open
-- (pending or in_progress) inspection, the inspection columns NULL when it has
-- none; no row when the LP does not exist in p_org.
CREATE FUNCTION qa_inspection_by_lp(p_org uuid, p_lp uuid)
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
LANGUAGE plpgsql
VOLATILE
SECURITY INVOKER
SET search_path = public, pg_temp
AS $fn$
BEGIN
	PERFORM set_config('scanqa.org_id', p_org::text, true);
	RETURN QUERY
		SELECT l.id, l.barcode, l.product_id, l.batch_number, trim_scale(l.quantity)::text,
		       l.qa_status,
		       i.id, i.inspection_number, i.status, i.result,
		       (extract(epoch FROM i.created_at) * 1000000)::bigint
		  FROM license_plates l
		  LEFT JOIN LATERAL (
			SELECT q.id, q.inspection_number, q.status, q.result, q.created_at
			  FROM quality_inspections q
			 WHERE q.lp_id = l.id AND q.org_id = p_org AND q.status <> 'completed'
			 ORDER BY q.created_at, q.id
			 LIMIT 1) i ON true
		 WHERE l.id = p_lp
		   AND l.org_id = p_org;
END
$fn$;

-- ---- privileges of the daemon's role ----------------------------------------

GRANT SELECT, INSERT,
      UPDATE (status, location, notes, auto_commit, items_scanned, successful_scans,
              failed_scans, last_activity, ended_at, updated_at, version)
   ON scan_sessions TO scanqa_app;
GRANT SELECT, INSERT ON scan_session_scans TO scanqa_app;
GRANT SELECT ON scan_session_view TO scanqa_app;

REVOKE ALL ON FUNCTION qa_session_create(uuid, uuid, text, text, text, integer, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION qa_session_get(uuid, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION qa_session_update(uuid, uuid, boolean, integer, integer[], text, text,
	text, integer, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION qa_session_scan(uuid, uuid, boolean, integer, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION qa_lp_by_barcode(uuid, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION qa_inspection_by_lp(uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION qa_session_create(uuid, uuid, text, text, text, integer, boolean) TO scanqa_app;
GRANT EXECUTE ON FUNCTION qa_session_get(uuid, integer) TO scanqa_app;
GRANT EXECUTE ON FUNCTION qa_session_update(uuid, uuid, boolean, integer, integer[], text, text,
	text, integer, boolean) TO scanqa_app;
GRANT EXECUTE ON FUNCTION qa_session_scan(uuid, uuid, boolean, integer, text) TO scanqa_app;
GRANT EXECUTE ON FUNCTION qa_lp_by_barcode(uuid, text) TO scanqa_app;
GRANT EXECUTE ON FUNCTION qa_inspection_by_lp(uuid, uuid) TO scanqa_app;
