-- 005_open_inspections.sql: what the scanner app needs to keep an offline copy of
-- its organization's open inspections (GET /api/quality/inspections/open): a
-- change time on every inspection, kept by a trigger, an index per listing, and
-- one function that returns a page of the listing.
--
-- changed_at is the start of the transaction that last inserted or updated the
-- row (now(), not clock_timestamp(): the earliest time the change can carry, so
-- a reader's overlap window covers it). A change committed after a reader's
-- snapshot can carry a changed_at earlier than that snapshot; the listing's
-- refresh point is therefore 60 seconds before the reader's own transaction
-- start, far beyond any write transaction's length (statement_timeout is 5 s,
-- and every write of an inspection is a single statement).

ALTER TABLE quality_inspections
	ADD COLUMN changed_at timestamptz NOT NULL DEFAULT now();

CREATE FUNCTION qa_inspection_touch() RETURNS trigger
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path = public, pg_temp
AS $fn$
BEGIN
	NEW.changed_at := now();
	RETURN NEW;
END
$fn$;

CREATE TRIGGER quality_inspections_touch
	BEFORE INSERT OR UPDATE ON quality_inspections
	FOR EACH ROW EXECUTE FUNCTION qa_inspection_touch();

-- Incremental refresh: every change of an organization since a point in time.
CREATE INDEX quality_inspections_changed_idx ON quality_inspections (org_id, changed_at, id);
-- First copy: the open inspections only.
CREATE INDEX quality_inspections_open_changed_idx ON quality_inspections (org_id, changed_at, id)
	WHERE status <> 'completed';

-- qa_open_inspections: one page of p_org's inspections in (changed_at, id) order,
-- after the keyset position (p_after_us, p_after_id) when given, at most p_limit
-- rows (the caller asks for one more than it returns, to know whether another
-- page follows).
--   p_since NULL: open inspections only (pending, in_progress): the first copy.
--   p_since set:  every inspection changed at or after p_since, completed ones
--                 included, so that the device drops what was completed elsewhere.
-- Each row carries the LP's six columns (as qa_inspection_by_lp), the inspection's
-- five, and changed_us; times are epoch microseconds. The organization is also
-- set for row level security, as every daemon function does.
CREATE FUNCTION qa_open_inspections(p_org uuid, p_since timestamptz, p_after_us bigint,
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
LANGUAGE plpgsql
VOLATILE
SECURITY INVOKER
SET search_path = public, pg_temp
AS $fn$
DECLARE
	v_after timestamptz := CASE WHEN p_after_us IS NULL THEN '-infinity'::timestamptz
		ELSE 'epoch'::timestamptz + p_after_us * interval '1 microsecond' END;
	v_after_id uuid := coalesce(p_after_id, '00000000-0000-0000-0000-000000000000');
BEGIN
	PERFORM set_config('scanqa.org_id', p_org::text, true);
	RETURN QUERY
		SELECT l.id, l.barcode, l.product_id, l.batch_number, trim_scale(l.quantity)::text,
		       l.qa_status,
		       q.id, q.inspection_number, q.status, q.result,
		       (extract(epoch FROM q.created_at) * 1000000)::bigint,
		       (extract(epoch FROM q.changed_at) * 1000000)::bigint
		  FROM quality_inspections q
		  JOIN license_plates l ON l.id = q.lp_id AND l.org_id = q.org_id
		 WHERE q.org_id = p_org
		   AND (p_since IS NOT NULL OR q.status <> 'completed')
		   AND (p_since IS NULL OR q.changed_at >= p_since)
		   AND (q.changed_at, q.id) > (v_after, v_after_id)
		 ORDER BY q.changed_at, q.id
		 LIMIT p_limit;
END
$fn$;

REVOKE ALL ON FUNCTION qa_inspection_touch() FROM PUBLIC;
REVOKE ALL ON FUNCTION qa_open_inspections(uuid, timestamptz, bigint, uuid, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION qa_open_inspections(uuid, timestamptz, bigint, uuid, integer) TO scanqa_app;
