#!/usr/bin/perl
# security_privileges.t: the daemon's database role (scanqa_app) has the least
# privilege it needs. It owns nothing, has no role attributes beyond LOGIN,
# cannot define or alter anything (no DDL: no CREATE on the schema or the
# database, not the owner of any table, function or policy), cannot TRUNCATE or
# DELETE anything, and cannot UPDATE, DELETE or TRUNCATE the audit log, which is
# append-only for it. Each refusal is tried for real, as scanqa_app, not only
# read from the catalogs.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;

use ScanQA::Test;

my $t = ScanQA::Test->new(conf => { workers => 1 });

my $org = $t->make_org('Privileges Org');
my $user = $t->make_user($org, 'qa_inspector');
my $ins = $t->make_inspection($org, $t->make_lp($org));
my $r = $t->request(POST => '/api/v1/quality/scanner/quick-inspection', token => $user->{token},
	json => { inspection_id => $ins, result => 'pass', inspection_method => 'scanner' });
is($r->{status}, 200, 'an inspection is completed, so the audit log has a row') or diag($r->{body});
my $audit = $t->one('SELECT count(*) FROM quality_audit_log');
is($audit, 1, 'one audit row');

# ---- the catalogs --------------------------------------------------------------------

my $role = $t->row(q{SELECT rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls
	FROM pg_roles WHERE rolname = 'scanqa_app'});
ok(!$role->{rolsuper}, 'scanqa_app is not a superuser');
ok(!$role->{rolcreaterole}, 'scanqa_app cannot create roles');
ok(!$role->{rolcreatedb}, 'scanqa_app cannot create databases');
ok(!$role->{rolreplication}, 'scanqa_app is not a replication role');
ok(!$role->{rolbypassrls}, 'scanqa_app does not bypass row level security');
is($t->one(q{SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = 'scanqa_app'}),
	0, 'scanqa_app is a member of no other role (it has only its own grants)');

is($t->one(q{SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE r.rolname = 'scanqa_app'}),
	0, 'scanqa_app owns no table, view, sequence or index');
is($t->one(q{SELECT count(*) FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner WHERE r.rolname = 'scanqa_app'}),
	0, 'scanqa_app owns no function');
is($t->one(q{SELECT count(*) FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner WHERE r.rolname = 'scanqa_app'}),
	0, 'scanqa_app owns no schema');
ok(!$t->one(q{SELECT has_schema_privilege('scanqa_app', 'public', 'CREATE')}), 'scanqa_app has no CREATE on schema public');
ok(!$t->one(q{SELECT has_database_privilege('scanqa_app', current_database(), 'CREATE')}),
	'scanqa_app has no CREATE on the database (no new schemas)');

my @tables = @{ $t->dbh->selectcol_arrayref(q{
	SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1}) };
for my $table (@tables) {
	my @held = grep { $t->one(q{SELECT has_table_privilege('scanqa_app', ?, ?)}, "public.$table", $_) }
		qw(DELETE TRUNCATE REFERENCES TRIGGER);
	is("@held", '', "scanqa_app has no DELETE, TRUNCATE, REFERENCES or TRIGGER on $table");
}
for my $p (qw(UPDATE DELETE TRUNCATE)) {
	ok(!$t->one(q{SELECT has_table_privilege('scanqa_app', 'public.quality_audit_log', ?)}, $p),
		"scanqa_app has no $p on quality_audit_log");
	ok(!$t->one(q{SELECT has_any_column_privilege('scanqa_app', 'public.quality_audit_log', 'UPDATE')}),
		'scanqa_app may UPDATE no column of quality_audit_log') if $p eq 'UPDATE';
}

# ---- for real, as scanqa_app ------------------------------------------------------------

my $app = $t->connect_as('scanqa_app');
$app->{AutoCommit} = 0;

# Runs one statement as scanqa_app with the organization set (so row level
# security is not what refuses it); returns the error, or '' when it worked.
sub try_as_app {
	my ($sql) = @_;
	my $ok = eval {
		$app->do(q{SELECT set_config('scanqa.org_id', ?, true)}, undef, $org);
		$app->do($sql);
		1;
	};
	my $err = $ok ? '' : $@;
	$app->rollback;
	return $err;
}

my $DENIED = qr/permission denied|must be owner|must be the owner/;
my @DDL = (
	['CREATE TABLE in public', 'CREATE TABLE public.scanqa_probe (id int)'],
	['CREATE TABLE without a schema', 'CREATE TABLE scanqa_probe (id int)'],
	['CREATE SCHEMA', 'CREATE SCHEMA scanqa_probe'],
	['CREATE VIEW', 'CREATE VIEW public.scanqa_probe AS SELECT 1'],
	['CREATE SEQUENCE', 'CREATE SEQUENCE public.scanqa_probe'],
	['CREATE TYPE', q{CREATE TYPE public.scanqa_probe AS ENUM ('a')}],
	['CREATE FUNCTION', 'CREATE FUNCTION public.scanqa_probe() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$'],
	['CREATE INDEX', 'CREATE INDEX scanqa_probe ON quality_inspections (result)'],
	['ALTER TABLE ADD COLUMN', 'ALTER TABLE quality_inspections ADD COLUMN probe int'],
	['ALTER TABLE DISABLE ROW LEVEL SECURITY', 'ALTER TABLE quality_inspections DISABLE ROW LEVEL SECURITY'],
	['ALTER TABLE NO FORCE ROW LEVEL SECURITY', 'ALTER TABLE quality_audit_log NO FORCE ROW LEVEL SECURITY'],
	['CREATE POLICY', 'CREATE POLICY probe ON quality_audit_log USING (true)'],
	['DROP POLICY', 'DROP POLICY org_isolation ON quality_inspections'],
	['DROP TABLE', 'DROP TABLE quality_audit_log'],
	['CREATE TRIGGER', q{CREATE TRIGGER probe BEFORE UPDATE ON quality_inspections FOR EACH ROW EXECUTE FUNCTION qa_authenticate('x')}],
	['CREATE OR REPLACE FUNCTION qa_authenticate', q{CREATE OR REPLACE FUNCTION qa_authenticate(p_sha256_hex text)
		RETURNS TABLE (user_id uuid, org_id uuid, role text, active boolean) LANGUAGE sql AS $$ SELECT NULL::uuid, NULL::uuid, 'admin', true $$}],
	['COMMENT ON TABLE', q{COMMENT ON TABLE quality_audit_log IS 'probe'}],
);
for my $d (@DDL) {
	like(try_as_app($d->[1]), $DENIED, "scanqa_app cannot $d->[0]");
}
{
	# Without the grant option PostgreSQL only warns; what matters is that nothing changed.
	my @warnings;
	local $SIG{__WARN__} = sub { push @warnings, @_ };
	my $acl = $t->one(q{SELECT relacl::text FROM pg_class WHERE relname = 'quality_audit_log'});
	try_as_app('GRANT SELECT, UPDATE, DELETE ON quality_audit_log TO PUBLIC');
	like("@warnings", qr/no privileges were granted/, 'scanqa_app cannot GRANT privileges on a table to others');
	is($t->one(q{SELECT relacl::text FROM pg_class WHERE relname = 'quality_audit_log'}), $acl,
		'the audit log\'s privileges are unchanged');
}
for my $table (@tables) {
	like(try_as_app(qq{TRUNCATE "$table"}), $DENIED, "scanqa_app cannot TRUNCATE $table");
	like(try_as_app(qq{DELETE FROM "$table"}), $DENIED, "scanqa_app cannot DELETE FROM $table");
}
like(try_as_app(q{UPDATE quality_audit_log SET action = 'rewritten'}), $DENIED, 'scanqa_app cannot UPDATE audit rows');
like(try_as_app(q{UPDATE quality_audit_log SET metadata = '{}' WHERE id = (SELECT min(id) FROM quality_audit_log)}),
	$DENIED, 'scanqa_app cannot UPDATE one audit row by id');
like(try_as_app(q{DELETE FROM quality_audit_log WHERE id = (SELECT min(id) FROM quality_audit_log)}),
	$DENIED, 'scanqa_app cannot DELETE one audit row by id');
like(try_as_app(q{SELECT setval(pg_get_serial_sequence('quality_audit_log', 'id'), 1)}), $DENIED,
	'scanqa_app cannot rewind the audit log\'s id sequence');
is(try_as_app(q{INSERT INTO quality_audit_log (org_id, entity_type, entity_id, action) VALUES (current_setting('scanqa.org_id')::uuid, 'probe', 'x', 'probe')}),
	'', 'scanqa_app can append to the audit log (and this test rolls that back)');
$app->disconnect;

is($t->one('SELECT count(*) FROM quality_audit_log'), $audit, 'the audit log is as it was');
is($t->one(q{SELECT count(*) FROM pg_class WHERE relname LIKE 'scanqa_probe%'}), 0, 'nothing scanqa_app tried to create exists');

{
	# Database-level grants are not copied by CREATE DATABASE ... TEMPLATE, so apply
	# migration 004 to this test's database as the owner, as "scanqa migrate" does.
	my $owner = $t->connect_as('scanqa_owner');
	ok(has_temp(), 'PostgreSQL grants TEMPORARY to every role by default');
	open(my $fh, '<', "$FindBin::Bin/../sql/004_database_privileges.sql") or die $!;
	$owner->do(do { local $/; <$fh> });
	$owner->disconnect;
	ok(!has_temp(), 'after migration 004 scanqa_app may not create temporary tables');
	my $probe = $t->connect_as('scanqa_app');
	ok(!eval { $probe->do('CREATE TEMP TABLE scanqa_probe_temp (x int)'); 1 }, 'CREATE TEMP TABLE is refused to scanqa_app');
	$probe->disconnect;
}
sub has_temp { $t->one(q{SELECT has_database_privilege('scanqa_app', current_database(), 'TEMP')}) }

is($t->stop_daemon, 0, 'the daemon exits cleanly on SIGTERM');
is($t->daemon_errors, '', 'the daemon reported no memory errors');
is($t->nginx_alerts, '', 'nginx logged no alerts');

done_testing;
