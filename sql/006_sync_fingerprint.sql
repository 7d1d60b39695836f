-- 006_sync_fingerprint.sql: an offline action id that comes back with a different
-- action fails instead of passing as a duplicate (issue 11, section 5).
--
-- A device bug, a restored backup or a cloned device image can send an action id
-- the organization already synced, with another action under it. Until now that
-- counted as a duplicate: success, nothing applied, the inspector's result lost.
-- Now each synced action keeps a fingerprint of what it was, and a replay is:
--   the same fingerprint       'duplicate' queue row, counts as success (as before);
--   a different fingerprint    'failed' queue row, error "Action id already used
--                              for a different action", nothing applied.
-- Per organization, like the action ids themselves.
--
-- The fingerprint logic is isolated in qa_jsonb_canonical(), qa_action_fingerprint()
-- and qa_sync_claim(). The daemon's three entry points keep their names and
-- signatures: each is now a wrapper that claims the action first and, unless the id
-- was reused for a different action, calls 002's function (renamed *_002), whose
-- own qa_sync_begin() then finds the same answer under the same (re-entrant)
-- advisory lock. A later rewrite of these functions calls qa_sync_claim() instead
-- of qa_sync_begin() and drops the *_002 ones.
--
-- Run by "scanqa migrate" as the schema owner, inside one transaction.

SET LOCAL search_path = public, pg_temp;

-- ---- the fingerprint ----------------------------------------------------------------

-- qa_jsonb_canonical: p_value with every number in one canonical form, so that
-- values JSON.parse (and so Zod and the reference) cannot tell apart fingerprint
-- alike. jsonb already sorts object keys, drops whitespace, keeps the last of
-- duplicate keys (as JSON.parse does) and stores strings decoded ("\u0041" is "A");
-- but it keeps a number's scale, so 1, 1.0 and 1.00 print differently.
-- trim_scale() makes them one (1e3 and 1000 already are; -0 is 0 in numeric).
-- Recursive, hence plpgsql (a SQL function cannot name itself at creation).
CREATE FUNCTION qa_jsonb_canonical(p_value jsonb)
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE
STRICT
PARALLEL SAFE
SECURITY INVOKER
SET search_path = public, pg_temp
AS $fn$
BEGIN
	CASE jsonb_typeof(p_value)
	WHEN 'number' THEN
		RETURN to_jsonb(trim_scale(p_value::numeric));
	WHEN 'object' THEN
		RETURN coalesce((SELECT jsonb_object_agg(e.key, qa_jsonb_canonical(e.value))
				   FROM jsonb_each(p_value) AS e), '{}'::jsonb);
	WHEN 'array' THEN
		RETURN coalesce((SELECT jsonb_agg(qa_jsonb_canonical(a.value) ORDER BY a.n)
				   FROM jsonb_array_elements(p_value) WITH ORDINALITY AS a(value, n)),
				'[]'::jsonb);
	ELSE
		RETURN p_value;
	END CASE;
END
$fn$;

-- qa_action_fingerprint: SHA-256 of the canonical text of {type, payload,
-- timestamp}: the jsonb text form of qa_jsonb_canonical(payload), and the
-- timestamp as the instant it names, in whole microseconds since the Unix epoch
-- (the daemon parses it; digits past microseconds are dropped). So
-- "2025-01-23T10:30Z", "2025-01-23T10:30:00Z" and "2025-01-23T10:30:00.000Z" are
-- one timestamp, key order and spacing of the payload do not matter, and 1.0 is 1.
-- The action id is not part of it: it is the key the fingerprint is stored under.
CREATE FUNCTION qa_action_fingerprint(p_type text, p_payload jsonb, p_local timestamptz)
RETURNS bytea
LANGUAGE sql
STABLE
SECURITY INVOKER
SET search_path = public, pg_temp
AS $fn$
	SELECT sha256(convert_to(jsonb_build_object(
		'type', p_type,
		'payload', qa_jsonb_canonical(p_payload),
		'timestamp_us', (extract(epoch FROM p_local) * 1000000)::bigint)::text, 'UTF8'))
$fn$;

-- Every synced action's fingerprint. Rows synced before this migration get theirs
-- from the queue row that recorded them (the action as sent, its local time).
-- The table forces row level security on its owner too, so the backfill lifts
-- FORCE for this transaction only.
ALTER TABLE scanner_synced_actions ADD COLUMN fingerprint bytea;
ALTER TABLE scanner_synced_actions NO FORCE ROW LEVEL SECURITY;
ALTER TABLE scanner_offline_queue NO FORCE ROW LEVEL SECURITY;
UPDATE scanner_synced_actions s
   SET fingerprint = qa_action_fingerprint(q.action_type, q.action_payload -> 'payload',
					   q.created_at_local)
  FROM scanner_offline_queue q
 WHERE q.id = s.queue_id;
ALTER TABLE scanner_synced_actions FORCE ROW LEVEL SECURITY;
ALTER TABLE scanner_offline_queue FORCE ROW LEVEL SECURITY;
ALTER TABLE scanner_synced_actions ALTER COLUMN fingerprint SET NOT NULL;

-- The queue's trigger records the fingerprint with the synced action id.
CREATE OR REPLACE FUNCTION qa_queue_record_synced() RETURNS trigger
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path = public, pg_temp
AS $fn$
BEGIN
	INSERT INTO scanner_synced_actions (org_id, action_id, queue_id, fingerprint)
	VALUES (NEW.org_id, (NEW.action_payload ->> 'id')::uuid, NEW.id,
		qa_action_fingerprint(NEW.action_type, NEW.action_payload -> 'payload',
				      NEW.created_at_local));
	RETURN NULL;
END
$fn$;

-- qa_sync_claim: the common start of an action, replacing qa_sync_begin: sets
-- scanqa.org_id, takes the action's advisory lock (as qa_sync_begin does), and
-- tells what the organization's earlier syncs make of p_action (the action as
-- sent, with p_local its parsed timestamp):
--   'new'        the id was never synced: apply the action;
--   'duplicate'  synced before with the same fingerprint: a replay;
--   'conflict'   synced before with a different fingerprint: another action
--                under a used id; it must fail, never count as synced.
CREATE FUNCTION qa_sync_claim(p_org uuid, p_action jsonb, p_local timestamptz)
RETURNS text
LANGUAGE plpgsql
VOLATILE
SECURITY INVOKER
SET search_path = public, pg_temp
AS $fn$
DECLARE
	v_action_id uuid := (p_action ->> 'id')::uuid;
	v_stored    bytea;
BEGIN
	IF NOT qa_sync_begin(p_org, v_action_id) THEN
		RETURN 'new';
	END IF;
	SELECT s.fingerprint INTO v_stored
	  FROM scanner_synced_actions s
	 WHERE s.org_id = p_org
	   AND s.action_id = v_action_id;
	IF v_stored = qa_action_fingerprint(p_action ->> 'type', p_action -> 'payload', p_local) THEN
		RETURN 'duplicate';
	END IF;
	RETURN 'conflict';
END
$fn$;

-- ---- the daemon's entry points: claim, then 002's function ------------------------------

-- The client's message for an action id reused for a different action.
CREATE FUNCTION qa_sync_reused_id_error()
RETURNS text
LANGUAGE sql
IMMUTABLE
SECURITY INVOKER
SET search_path = public, pg_temp
AS $fn$
	SELECT 'Action id already used for a different action'::text
$fn$;

-- qa_sync_refuse_reused_id: claims p_action (see qa_sync_claim). When its id was
-- synced for a different action, writes the 'failed' queue row and returns the
-- client's message; otherwise writes nothing and returns NULL.
CREATE FUNCTION qa_sync_refuse_reused_id(
	p_org      uuid,
	p_user     uuid,
	p_action   jsonb,
	p_device   text,
	p_local_us bigint)
RETURNS text
LANGUAGE plpgsql
VOLATILE
SECURITY INVOKER
SET search_path = public, pg_temp
AS $fn$
DECLARE
	v_local timestamptz := timestamptz 'epoch' + (p_local_us / 1000000) * interval '1 second'
		+ (p_local_us % 1000000) * interval '1 microsecond';
BEGIN
	IF qa_sync_claim(p_org, p_action, v_local) <> 'conflict' THEN
		RETURN NULL;
	END IF;
	PERFORM qa_sync_queue(p_org, p_user, p_action ->> 'type', p_action, p_device, v_local,
		'failed', qa_sync_reused_id_error(), NULL);
	RETURN qa_sync_reused_id_error();
END
$fn$;

ALTER FUNCTION qa_sync_quick_inspection(uuid, uuid, jsonb, text, bigint, uuid, text, text, integer, text)
	RENAME TO qa_sync_quick_inspection_002;
ALTER FUNCTION qa_sync_test_result(uuid, uuid, jsonb, text, bigint, uuid, text, text, double precision,
	text, text) RENAME TO qa_sync_test_result_002;
ALTER FUNCTION qa_sync_record_failure(uuid, uuid, jsonb, text, bigint, text, boolean)
	RENAME TO qa_sync_record_failure_002;

-- qa_sync_quick_inspection: as in 002 (see there for the contract); an action id
-- reused for a different action gives ('failed', 'Action id already used for a
-- different action', NULL) and a 'failed' queue row, and applies nothing.
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
DECLARE
	v_refused text := qa_sync_refuse_reused_id(p_org, p_user, p_action, p_device, p_local_us);
BEGIN
	IF v_refused IS NOT NULL THEN
		RETURN QUERY SELECT 'failed'::text, v_refused, NULL::text;
		RETURN;
	END IF;
	RETURN QUERY SELECT * FROM qa_sync_quick_inspection_002(p_org, p_user, p_action, p_device,
		p_local_us, p_inspection, p_result, p_notes, p_defects, p_location);
END
$fn$;

-- qa_sync_test_result: as in 002, with the same refusal of a reused id.
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
DECLARE
	v_refused text := qa_sync_refuse_reused_id(p_org, p_user, p_action, p_device, p_local_us);
BEGIN
	IF v_refused IS NOT NULL THEN
		RETURN QUERY SELECT 'failed'::text, v_refused, NULL::text;
		RETURN;
	END IF;
	RETURN QUERY SELECT * FROM qa_sync_test_result_002(p_org, p_user, p_action, p_device,
		p_local_us, p_inspection, p_test_name, p_result, p_measured, p_unit, p_notes);
END
$fn$;

-- qa_sync_record_failure: as in 002, except that with p_unless_synced only a synced
-- action with the same fingerprint counts as 'synced'; a different one under the id
-- is recorded as failed with the reused-id message instead of p_error.
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
	v_error text := p_error;
BEGIN
	IF coalesce(p_unless_synced, false) THEN
		CASE qa_sync_claim(p_org, p_action, timestamptz 'epoch'
				+ (p_local_us / 1000000) * interval '1 second'
				+ (p_local_us % 1000000) * interval '1 microsecond')
		WHEN 'duplicate' THEN
			RETURN 'synced';
		WHEN 'conflict' THEN
			v_error := qa_sync_reused_id_error();
		ELSE
			NULL;
		END CASE;
	END IF;
	RETURN qa_sync_record_failure_002(p_org, p_user, p_action, p_device, p_local_us, v_error, false);
END
$fn$;

-- ---- privileges of the daemon's role ----------------------------------------------

REVOKE ALL ON FUNCTION qa_jsonb_canonical(jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION qa_action_fingerprint(text, jsonb, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION qa_sync_claim(uuid, jsonb, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION qa_sync_reused_id_error() FROM PUBLIC;
REVOKE ALL ON FUNCTION qa_sync_refuse_reused_id(uuid, uuid, jsonb, text, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION qa_sync_quick_inspection(uuid, uuid, jsonb, text, bigint, uuid, text,
	text, integer, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION qa_sync_test_result(uuid, uuid, jsonb, text, bigint, uuid, text, text,
	double precision, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION qa_sync_record_failure(uuid, uuid, jsonb, text, bigint, text, boolean)
	FROM PUBLIC;
GRANT EXECUTE ON FUNCTION qa_jsonb_canonical(jsonb) TO scanqa_app;
GRANT EXECUTE ON FUNCTION qa_action_fingerprint(text, jsonb, timestamptz) TO scanqa_app;
GRANT EXECUTE ON FUNCTION qa_sync_claim(uuid, jsonb, timestamptz) TO scanqa_app;
GRANT EXECUTE ON FUNCTION qa_sync_reused_id_error() TO scanqa_app;
GRANT EXECUTE ON FUNCTION qa_sync_refuse_reused_id(uuid, uuid, jsonb, text, bigint) TO scanqa_app;
GRANT EXECUTE ON FUNCTION qa_sync_quick_inspection(uuid, uuid, jsonb, text, bigint, uuid, text,
	text, integer, text) TO scanqa_app;
GRANT EXECUTE ON FUNCTION qa_sync_test_result(uuid, uuid, jsonb, text, bigint, uuid, text, text,
	double precision, text, text) TO scanqa_app;
GRANT EXECUTE ON FUNCTION qa_sync_record_failure(uuid, uuid, jsonb, text, bigint, text, boolean)
	TO scanqa_app;
