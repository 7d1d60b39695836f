-- 009_bulk_import.sql: "scanqa import" writes tens of thousands of license plates
-- and inspections in one statement each; these changes take away the trigger
-- calls it paid per row, with the integrity they kept (issue 15, import speed).
--
-- Measured on 100 000 new LPs (README "Operator commands: import and export"): the
-- foreign key from license_plates to organizations ran one SPI query per row, as
-- much CPU as the insert itself; the one from quality_inspections to organizations
-- did the same, and qa_inspection_touch() was a PL/pgSQL call per row.
--
-- 1. license_plates.org_id: the per-row foreign key becomes one check per
--    statement. An AFTER INSERT ... FOR EACH STATEMENT trigger reads the
--    statement's new rows (a transition table), locks each organization they
--    name FOR KEY SHARE, as the foreign key did, and raises foreign_key_violation
--    when one does not exist. An LP never changes organization: row level
--    security already refuses it to every role but a superuser (USING and WITH
--    CHECK both name scanqa.org_id), and an AFTER UPDATE OF org_id row trigger
--    refuses it to superusers too (its WHEN clause is evaluated in C, and only for
--    an UPDATE that sets org_id). Deleting an organization that still has LPs is
--    refused by organizations_delete_guard (008), which now looks at
--    license_plates too; the FOR KEY SHARE lock makes such a DELETE wait for an
--    inserting transaction and then see its rows.
-- 2. quality_inspections.org_id: its foreign key to organizations goes. It was
--    implied: (lp_id, org_id) references license_plates (id, org_id), so every
--    inspection's org_id is the org_id of an existing LP, which (1) keeps an
--    existing organization.
-- 3. qa_inspection_touch() runs only when a row does not already carry now() as
--    its changed_at (a WHEN clause, evaluated without calling PL/pgSQL): an
--    INSERT takes the column default now(), and an UPDATE may set changed_at =
--    now() itself. Every row still ends with changed_at = now(), as before.
--
-- The foreign key from quality_inspections (lp_id, org_id) to license_plates
-- stays a per-row check: it guards deletes and key changes on the LP side too.

SET LOCAL search_path = public, pg_temp;

-- ---- 1. license_plates.org_id -------------------------------------------------------

CREATE FUNCTION qa_license_plates_org_check() RETURNS trigger
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path = public, pg_temp
AS $fn$
DECLARE
	v_missing uuid;
BEGIN
	PERFORM 1 FROM organizations o
	  WHERE o.id IN (SELECT DISTINCT n.org_id FROM qa_new_lps n)
	    FOR KEY SHARE OF o;
	SELECT n.org_id INTO v_missing
	  FROM qa_new_lps n
	 WHERE NOT EXISTS (SELECT 1 FROM organizations o WHERE o.id = n.org_id)
	 LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'insert or update on table "license_plates" violates foreign key constraint "license_plates_org_id_fkey"'
			USING ERRCODE = 'foreign_key_violation',
			      DETAIL = format('Key (org_id)=(%s) is not present in table "organizations".', v_missing);
	END IF;
	RETURN NULL;
END
$fn$;

CREATE FUNCTION qa_license_plates_org_fixed() RETURNS trigger
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path = public, pg_temp
AS $fn$
BEGIN
	RAISE EXCEPTION 'a license plate never moves to another organization (% to %)', OLD.org_id, NEW.org_id
		USING ERRCODE = 'foreign_key_violation';
END
$fn$;

ALTER TABLE license_plates DROP CONSTRAINT license_plates_org_id_fkey;
CREATE TRIGGER license_plates_org_check
	AFTER INSERT ON license_plates
	REFERENCING NEW TABLE AS qa_new_lps
	FOR EACH STATEMENT EXECUTE FUNCTION qa_license_plates_org_check();
CREATE TRIGGER license_plates_org_fixed
	AFTER UPDATE OF org_id ON license_plates
	FOR EACH ROW WHEN (OLD.org_id IS DISTINCT FROM NEW.org_id)
	EXECUTE FUNCTION qa_license_plates_org_fixed();

-- 008's guard, which now looks at license_plates and quality_inspections first
-- (replaced in its body rather than repeated here, as 008 does).
DO $$
BEGIN
	EXECUTE replace(pg_get_functiondef('qa_organization_delete_guard()'::regprocedure),
		'IF EXISTS (SELECT 1 FROM quality_audit_log WHERE org_id = OLD.id)',
		'IF EXISTS (SELECT 1 FROM license_plates WHERE org_id = OLD.id)'
		|| E'\n\t   OR EXISTS (SELECT 1 FROM quality_inspections WHERE org_id = OLD.id)'
		|| E'\n\t   OR EXISTS (SELECT 1 FROM quality_audit_log WHERE org_id = OLD.id)');
	IF NOT EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'qa_organization_delete_guard'
	                 AND prosrc LIKE '%FROM license_plates WHERE org_id = OLD.id%') THEN
		RAISE EXCEPTION 'qa_organization_delete_guard must refuse an organization that has license plates';
	END IF;
END
$$;

-- ---- 2. quality_inspections.org_id ------------------------------------------------------

ALTER TABLE quality_inspections DROP CONSTRAINT quality_inspections_org_id_fkey;

-- ---- 3. changed_at ----------------------------------------------------------------------

DROP TRIGGER quality_inspections_touch ON quality_inspections;
CREATE TRIGGER quality_inspections_touch
	BEFORE INSERT OR UPDATE ON quality_inspections
	FOR EACH ROW WHEN (NEW.changed_at IS DISTINCT FROM now())
	EXECUTE FUNCTION qa_inspection_touch();

-- As 008 does for every function: the daemon's role may execute none of these.
REVOKE ALL ON FUNCTION qa_license_plates_org_check() FROM PUBLIC;
REVOKE ALL ON FUNCTION qa_license_plates_org_fixed() FROM PUBLIC;
REVOKE ALL ON FUNCTION qa_organization_delete_guard() FROM PUBLIC;
