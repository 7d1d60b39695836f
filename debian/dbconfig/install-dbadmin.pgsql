-- dbconfig-common runs this as the PostgreSQL administrator on a fresh
-- install, after it created the database and its owner (the scanqa_owner
-- role), and before the package's postinst runs "scanqa migrate" as that
-- owner.
--
-- scanqa_app is the role the daemon connects as. It owns nothing, has no
-- attributes beyond LOGIN, and gets its privileges from the migrations'
-- GRANTs, which is why it must exist first. It has no password: the daemon
-- runs as the system user of the same name and PostgreSQL's default
-- "local all all peer" rule admits it over the unix socket.
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'scanqa_app') THEN
		CREATE ROLE scanqa_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
	END IF;
END
$$;
