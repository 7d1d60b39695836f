-- 004_database_privileges.sql: PostgreSQL lets every role create temporary tables
-- in a new database (TEMPORARY is granted to PUBLIC). The daemon's role needs none;
-- take it away so scanqa_app has no DDL of any kind. Runs as the database owner; for
-- another role REVOKE only warns, and the database keeps PostgreSQL's default.
DO $$
BEGIN
	EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
END
$$;
