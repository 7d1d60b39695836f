-- Run by dbconfig-common as the PostgreSQL administrator, before the package's
-- postinst runs "scanqa migrate" as the schema owner (scanqa_owner): on a fresh
-- install (install-dbadmin/pgsql) and on an upgrade from a version before 0.2.0
-- (upgrade-dbadmin/pgsql/0.2.0). It may run any number of times.
--
-- scanqa_app is the role the daemon connects as. It owns nothing, has no
-- attributes beyond LOGIN, and may only execute the api_* functions (migration
-- 008). It has no password: the daemon runs as the system user of the same name
-- and PostgreSQL's default "local all all peer" rule admits it over the unix
-- socket.
--
-- scanqa_api and scanqa_auth cannot log in: they own the SECURITY DEFINER
-- functions (the endpoints, and the credential check), so those run with their
-- privileges and nobody can connect as them. The schema owner is their member,
-- which migration 008 needs to hand the functions over (ALTER FUNCTION ... OWNER).
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'scanqa_app') THEN
		CREATE ROLE scanqa_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'scanqa_api') THEN
		CREATE ROLE scanqa_api NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'scanqa_auth') THEN
		CREATE ROLE scanqa_auth NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
	END IF;
END
$$;
GRANT scanqa_api, scanqa_auth TO scanqa_owner;
