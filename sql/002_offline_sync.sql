-- 002_offline_sync.sql: offline sync (POST /api/v1/quality/scanner/sync-offline):
-- the test results table, the queue's one-success-per-action index, and one
-- function per action outcome, so that each action costs one round trip and is
-- one transaction together with its queue row.
--
-- Run by "scanqa migrate" as the schema owner, inside one transaction; see
-- 001_core.sql for the roles and the row level security conventions.
--
-- Contract shared by the qa_sync_* functions below:
--   p_action     the complete action as the device sent it, {id, type, payload,
--                timestamp}; stored as scanner_offline_queue.action_payload.
--                Its "id" (a UUID, checked by the daemon) identifies the action.
--   p_device     payload.scanner_device_id when it is a string, else NULL.
--   p_local_us   the action's timestamp in microseconds since the Unix epoch
--                (the daemon parses it, so any year Zod accepts converts exactly:
--                whole seconds and microseconds are added separately, so no value
--                passes through a double beyond 2^53).
-- They never commit: with one call per autocommit statement, each action and its
-- queue row are one transaction. They set scanqa.org_id for that transaction.

SET LOCAL search_path = public, pg_temp;

-- ---- test results ----------------------------------------------------------------

-- Target of quality_test_results' (inspection_id, org_id) foreign key.
ALTER TABLE quality_inspections
	ADD CONSTRAINT quality_inspections_id_org_id_key UNIQUE (id, org_id);

-- A measured test on an open inspection, recorded by a scanner ("test_result"
-- offline actions). measured_value is double precision: it is a JSON number.
CREATE TABLE quality_test_results (
	id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	org_id          uuid NOT NULL REFERENCES organizations (id),
	inspection_id   uuid NOT NULL,
	test_name       text NOT NULL CHECK (char_length(test_name) BETWEEN 1 AND 100),
	result          text NOT NULL CHECK (result IN ('pass', 'fail')),
	measured_value  double precision,
	unit            text CHECK (char_length(unit) <= 20),
	notes           text CHECK (char_length(notes) <= 2000),
	device_id       text,
	-- When the inspector measured: the action's timestamp, never later than
	-- the time it reached the server.
	tested_at       timestamptz NOT NULL,
	recorded_by     uuid REFERENCES users (id),
	-- The offline action that recorded it.
	source_action_id uuid,
	created_at      timestamptz NOT NULL DEFAULT now(),
	FOREIGN KEY (inspection_id, org_id) REFERENCES quality_inspections (id, org_id)
);
CREATE INDEX quality_test_results_inspection_idx ON quality_test_results (inspection_id);

ALTER TABLE quality_test_results ENABLE ROW LEVEL SECURITY;
ALTER TABLE quality_test_results FORCE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON quality_test_results TO scanqa_app, CURRENT_USER
	USING (org_id = NULLIF(current_setting('scanqa.org_id', true), '')::uuid)
	WITH CHECK (org_id = NULLIF(current_setting('scanqa.org_id', true), '')::uuid);

-- ---- the queue -------------------------------------------------------------------

-- Successful syncs, one row per (organization, action id). The queue keeps
-- exactly the spec's columns, with the action id inside action_payload; but
-- under row level security PostgreSQL only uses an index condition built from
-- leakproof operators, and ->> is not one, so an index on the payload could not
-- serve the daemon's lookups. This table is keyed by plain uuids instead, is
-- filled by a trigger on the queue, and its primary key is the guarantee that
-- an action is applied at most once per organization.
CREATE TABLE scanner_synced_actions (
	org_id    uuid NOT NULL REFERENCES organizations (id),
	action_id uuid NOT NULL,
	queue_id  uuid NOT NULL REFERENCES scanner_offline_queue (id),
	PRIMARY KEY (org_id, action_id)
);
ALTER TABLE scanner_synced_actions ENABLE ROW LEVEL SECURITY;
ALTER TABLE scanner_synced_actions FORCE ROW LEVEL SECURITY;
CREATE POLICY scanner_synced_actions_org ON scanner_synced_actions
	TO scanqa_app, CURRENT_USER
	USING (org_id = NULLIF(current_setting('scanqa.org_id', true), '')::uuid)
	WITH CHECK (org_id = NULLIF(current_setting('scanqa.org_id', true), '')::uuid);
GRANT SELECT, INSERT ON scanner_synced_actions TO scanqa_app;

-- Belt and braces on the queue itself: at most one 'synced' row per action.
CREATE UNIQUE INDEX scanner_offline_queue_synced_action_key
	ON scanner_offline_queue (org_id, (action_payload ->> 'id'))
	WHERE sync_status = 'synced';

CREATE FUNCTION qa_queue_record_synced() RETURNS trigger
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path = public, pg_temp
AS $fn$
BEGIN
	INSERT INTO scanner_synced_actions (org_id, action_id, queue_id)
	VALUES (NEW.org_id, (NEW.action_payload ->> 'id')::uuid, NEW.id);
	RETURN NULL;
END
$fn$;

CREATE TRIGGER scanner_offline_queue_synced
	AFTER INSERT ON scanner_offline_queue
	FOR EACH ROW WHEN (NEW.sync_status = 'synced')
	EXECUTE FUNCTION qa_queue_record_synced();

-- ---- functions -------------------------------------------------------------------

-- qa_sync_begin: the common start of an action: sets scanqa.org_id, takes the
-- transaction-level advisory lock of (organization, action id), so concurrent
-- replays of one action run one after the other, and tells whether this
-- organization already synced the action successfully.
CREATE FUNCTION qa_sync_begin(p_org uuid, p_action_id uuid)
RETURNS boolean
LANGUAGE plpgsql
VOLATILE
SECURITY INVOKER
SET search_path = public, pg_temp
AS $fn$
BEGIN
	IF p_org IS NULL OR p_action_id IS NULL THEN
		RAISE EXCEPTION 'qa_sync_begin: organization and action id are required'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	PERFORM set_config('scanqa.org_id', p_org::text, true);
	-- The two-key advisory lock space is separate from the one-key space that
	-- "scanqa migrate" uses. A hash collision only makes two actions wait for
	-- each other.
	PERFORM pg_advisory_xact_lock(hashtext(p_org::text), hashtext(p_action_id::text));
	RETURN EXISTS (
		SELECT 1
		  FROM scanner_synced_actions s
		 WHERE s.org_id = p_org
		   AND s.action_id = p_action_id);
END
$fn$;

-- qa_sync_queue: writes one scanner_offline_queue row: the action as sent and
-- its outcome. The error message carries the database's reason (p_detail) in
-- parentheses when there is one; the client only ever sees p_error.
CREATE FUNCTION qa_sync_queue(
	p_org    uuid,
	p_user   uuid,
	p_type   text,
	p_action jsonb,
	p_device text,
	p_local  timestamptz,
	p_status text,
	p_error  text,
	p_detail text)
RETURNS void
LANGUAGE sql
VOLATILE
SECURITY INVOKER
SET search_path = public, pg_temp
AS $fn$
	INSERT INTO scanner_offline_queue
		(org_id, user_id, action_type, action_payload, device_id,
		 created_at_local, sync_status, error_message)
	VALUES
		(p_org, p_user, p_type, p_action, p_device, p_local, p_status,
		 CASE WHEN p_detail IS NULL THEN p_error ELSE p_error || ' (' || p_detail || ')' END)
$fn$;

-- qa_sync_busy_state: true for the SQLSTATEs of a lock that could not be had in
-- time, a deadlock or a serialization failure: resending the batch may succeed.
CREATE FUNCTION qa_sync_busy_state(p_state text)
RETURNS boolean
LANGUAGE sql
IMMUTABLE
SECURITY INVOKER
SET search_path = public, pg_temp
AS $fn$
	SELECT p_state IN ('55P03', '40P01', '40001')
$fn$;

-- qa_sync_quick_inspection: one offline "quick_inspection" action, whose payload
-- the daemon has validated (p_inspection .. p_location are its fields).
--
-- Returns one row (sync_status, error, detail):
--   'duplicate', NULL, NULL   the organization already synced this action id:
--                             nothing applied, no audit row;
--   'synced', NULL, NULL      the inspection is completed as by the online
--                             endpoint (qa_complete_inspection), with
--                             completed_at = the action's time (never later
--                             than now()) and audit metadata offline_queued
--                             true, sync_delay_seconds = whole seconds from the
--                             action's time to now(), never negative;
--   'failed', error, detail   nothing applied. error is the client's message:
--                             'Inspection not found', 'Inspection already
--                             completed', 'Resource is busy, resend the batch'
--                             or 'Failed to update inspection'; detail is the
--                             SQLSTATE and message of an unexpected error (for
--                             the log), else NULL.
-- In every case one scanner_offline_queue row records the outcome (its
-- error_message holds error and detail). An unexpected error while applying
-- is caught in a sub-transaction, so that row is still written.
CREATE FUNCTION qa_sync_quick_inspection(
	p_org        uuid,
	p_user       uuid,
	p_action     jsonb,
	p_device     text,
	p_local_us   bigint,
	p_inspection uuid,
	p_result     text,
	p_notes      text,
	p_defects    integer,
	p_location   text)
RETURNS TABLE (sync_status text, error text, detail text)
LANGUAGE plpgsql
VOLATILE
SECURITY INVOKER
SET search_path = public, pg_temp
AS $fn$
#variable_conflict use_column
DECLARE
	v_local  timestamptz := timestamptz 'epoch' + (p_local_us / 1000000) * interval '1 second'
		+ (p_local_us % 1000000) * interval '1 microsecond';
	v_status text;
	v_error  text;
	v_detail text;
	v_delay  bigint;
	v_out    text;
BEGIN
	IF p_user IS NULL OR p_action IS NULL OR v_local IS NULL THEN
		RAISE EXCEPTION 'qa_sync_quick_inspection: user, action and time are required'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;

	IF qa_sync_begin(p_org, (p_action ->> 'id')::uuid) THEN
		v_status := 'duplicate';
	ELSE
		v_delay := greatest(0, floor(extract(epoch FROM now() - v_local)))::bigint;
		BEGIN
			SELECT c.outcome INTO v_out
			  FROM qa_complete_inspection(p_org, p_user, p_inspection, p_result, p_notes,
				p_defects, p_device, p_location, v_local, true, v_delay) c;
			CASE v_out
			WHEN 'ok' THEN
				v_status := 'synced';
			WHEN 'not_found' THEN
				v_status := 'failed';
				v_error := 'Inspection not found';
			WHEN 'already_completed' THEN
				v_status := 'failed';
				v_error := 'Inspection already completed';
			ELSE
				RAISE EXCEPTION 'qa_complete_inspection returned outcome %', coalesce(v_out, 'NULL');
			END CASE;
		EXCEPTION WHEN OTHERS THEN
			v_status := 'failed';
			v_error := CASE WHEN qa_sync_busy_state(SQLSTATE)
				THEN 'Resource is busy, resend the batch'
				ELSE 'Failed to update inspection' END;
			v_detail := SQLSTATE || ': ' || SQLERRM;
		END;
	END IF;

	PERFORM qa_sync_queue(p_org, p_user, 'quick_inspection', p_action, p_device, v_local, v_status, v_error, v_detail);

	sync_status := v_status;
	error := v_error;
	detail := v_detail;
	RETURN NEXT;
END
$fn$;

-- qa_sync_test_result: one offline "test_result" action, whose payload the
-- daemon has validated: records a measured test on an open (not completed)
-- inspection of p_org, with an audit row (action 'scanner_test_result').
-- Returns and records its outcome like qa_sync_quick_inspection; the errors
-- are 'Inspection not found', 'Inspection already completed', 'Resource is
-- busy, resend the batch' and 'Failed to record test result'. The inspection
-- row is locked FOR SHARE, so a completion running at the same time comes
-- either before (the test fails) or after (the test is recorded).
CREATE FUNCTION qa_sync_test_result(
	p_org        uuid,
	p_user       uuid,
	p_action     jsonb,
	p_device     text,
	p_local_us   bigint,
	p_inspection uuid,
	p_test_name  text,
	p_result     text,
	p_measured   double precision,
	p_unit       text,
	p_notes      text)
RETURNS TABLE (sync_status text, error text, detail text)
LANGUAGE plpgsql
VOLATILE
SECURITY INVOKER
SET search_path = public, pg_temp
AS $fn$
#variable_conflict use_column
DECLARE
	v_local     timestamptz := timestamptz 'epoch' + (p_local_us / 1000000) * interval '1 second'
		+ (p_local_us % 1000000) * interval '1 microsecond';
	v_action_id uuid := (p_action ->> 'id')::uuid;
	v_status    text;
	v_error     text;
	v_detail    text;
	v_delay     bigint;
	v_ins       text;
	v_test_id   uuid;
BEGIN
	IF p_user IS NULL OR p_action IS NULL OR v_local IS NULL THEN
		RAISE EXCEPTION 'qa_sync_test_result: user, action and time are required'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;

	IF qa_sync_begin(p_org, v_action_id) THEN
		v_status := 'duplicate';
	ELSE
		v_delay := greatest(0, floor(extract(epoch FROM now() - v_local)))::bigint;
		BEGIN
			-- The org_id test repeats the policy's, as in qa_complete_inspection.
			SELECT i.status INTO v_ins
			  FROM quality_inspections i
			 WHERE i.id = p_inspection
			   AND i.org_id = p_org
			   FOR SHARE;
			IF NOT FOUND THEN
				v_status := 'failed';
				v_error := 'Inspection not found';
			ELSIF v_ins = 'completed' THEN
				v_status := 'failed';
				v_error := 'Inspection already completed';
			ELSE
				INSERT INTO quality_test_results
					(org_id, inspection_id, test_name, result, measured_value, unit,
					 notes, device_id, tested_at, recorded_by, source_action_id)
				VALUES
					(p_org, p_inspection, p_test_name, p_result, p_measured, p_unit,
					 p_notes, p_device, LEAST(v_local, now()), p_user, v_action_id)
				RETURNING id INTO v_test_id;

				INSERT INTO quality_audit_log
					(org_id, entity_type, entity_id, action, user_id,
					 old_value, new_value, change_reason, metadata)
				VALUES
					(p_org, 'inspection', p_inspection::text, 'scanner_test_result', p_user,
					 NULL,
					 jsonb_build_object(
						'test_result_id', v_test_id,
						'test_name', p_test_name,
						'result', p_result,
						'measured_value', p_measured,
						'unit', p_unit,
						'notes', p_notes),
					 CASE p_result WHEN 'pass' THEN 'Scanner test passed' ELSE 'Scanner test failed' END,
					 jsonb_build_object(
						'inspection_method', 'scanner',
						'device_id', p_device,
						'offline_queued', true,
						'sync_delay_seconds', v_delay,
						'action_id', v_action_id));
				v_status := 'synced';
			END IF;
		EXCEPTION WHEN OTHERS THEN
			v_status := 'failed';
			v_error := CASE WHEN qa_sync_busy_state(SQLSTATE)
				THEN 'Resource is busy, resend the batch'
				ELSE 'Failed to record test result' END;
			v_detail := SQLSTATE || ': ' || SQLERRM;
		END;
	END IF;

	PERFORM qa_sync_queue(p_org, p_user, 'test_result', p_action, p_device, v_local, v_status, v_error, v_detail);

	sync_status := v_status;
	error := v_error;
	detail := v_detail;
	RETURN NEXT;
END
$fn$;

-- qa_sync_record_failure: records an action that was not applied, with the
-- client's error message p_error: one 'failed' scanner_offline_queue row.
-- Used for an action whose payload failed validation, and for one whose
-- qa_sync_* call failed as a whole.
--
-- With p_unless_synced, the call settles an action whose earlier call lost its
-- connection, outcome unknown: it takes the action's advisory lock (so an
-- earlier call still running finishes first) and, when the organization has
-- synced the action by now, writes nothing and returns 'synced'. Otherwise, and
-- always without p_unless_synced, it returns 'failed'.
CREATE FUNCTION qa_sync_record_failure(
	p_org           uuid,
	p_user          uuid,
	p_action        jsonb,
	p_device        text,
	p_local_us      bigint,
	p_error         text,
	p_unless_synced boolean)
RETURNS text
LANGUAGE plpgsql
VOLATILE
SECURITY INVOKER
SET search_path = public, pg_temp
AS $fn$
DECLARE
	v_type text := p_action ->> 'type';
BEGIN
	IF p_org IS NULL OR p_user IS NULL OR p_action IS NULL OR p_error IS NULL THEN
		RAISE EXCEPTION 'qa_sync_record_failure: organization, user, action and error are required'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF coalesce(p_unless_synced, false) THEN
		IF qa_sync_begin(p_org, (p_action ->> 'id')::uuid) THEN
			RETURN 'synced';
		END IF;
	ELSE
		PERFORM set_config('scanqa.org_id', p_org::text, true);
	END IF;

	PERFORM qa_sync_queue(p_org, p_user, v_type, p_action, p_device,
		timestamptz 'epoch' + (p_local_us / 1000000) * interval '1 second'
			+ (p_local_us % 1000000) * interval '1 microsecond',
		'failed', p_error, NULL);
	RETURN 'failed';
END
$fn$;

-- ---- privileges of the daemon's role ----------------------------------------------

GRANT SELECT, INSERT ON quality_test_results TO scanqa_app;

REVOKE ALL ON FUNCTION qa_sync_begin(uuid, uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION qa_sync_busy_state(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION qa_sync_queue(uuid, uuid, text, jsonb, text, timestamptz, text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION qa_sync_quick_inspection(uuid, uuid, jsonb, text, bigint, uuid, text,
	text, integer, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION qa_sync_test_result(uuid, uuid, jsonb, text, bigint, uuid, text, text,
	double precision, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION qa_sync_record_failure(uuid, uuid, jsonb, text, bigint, text, boolean)
	FROM PUBLIC;
GRANT EXECUTE ON FUNCTION qa_sync_begin(uuid, uuid) TO scanqa_app;
GRANT EXECUTE ON FUNCTION qa_sync_busy_state(text) TO scanqa_app;
GRANT EXECUTE ON FUNCTION qa_sync_queue(uuid, uuid, text, jsonb, text, timestamptz, text, text, text) TO scanqa_app;
GRANT EXECUTE ON FUNCTION qa_sync_quick_inspection(uuid, uuid, jsonb, text, bigint, uuid, text,
	text, integer, text) TO scanqa_app;
GRANT EXECUTE ON FUNCTION qa_sync_test_result(uuid, uuid, jsonb, text, bigint, uuid, text, text,
	double precision, text, text) TO scanqa_app;
GRANT EXECUTE ON FUNCTION qa_sync_record_failure(uuid, uuid, jsonb, text, bigint, text, boolean)
	TO scanqa_app;
