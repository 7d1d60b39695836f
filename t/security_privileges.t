#!/usr/bin/perl
# security_privileges.t: the daemon's database role (scanqa_app) has the least
# privilege it needs. It owns nothing, has no role attributes beyond LOGIN,
# cannot define or alter anything (no DDL: no CREATE on the schema or the
# database, not the owner of any table, function or policy), and touches no
# table, view or internal function: it may only execute the api_* functions,
# which are SECURITY DEFINER functions owned by NOLOGIN roles and decide the
# organization from the token's SHA-256 they are given. So the credential is the
# only way to name a tenant: scanqa_app cannot read a token hash or another
# organization's users, setting scanqa.org_id by hand gains nothing, and no
# api_* function acts for an organization without one of its tokens. Each
# refusal is tried for real, as scanqa_app, not only read from the catalogs.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Digest::SHA ();

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
	['CREATE TRIGGER', q{CREATE TRIGGER probe BEFORE UPDATE ON quality_inspections FOR EACH ROW EXECUTE FUNCTION qa_organization_delete_guard()}],
	['CREATE OR REPLACE FUNCTION qa_credential', q{CREATE OR REPLACE FUNCTION qa_credential(p_token_sha256 bytea, p_access text)
		RETURNS qa_caller LANGUAGE sql AS $$ SELECT NULL::uuid, NULL::uuid, true $$}],
	['ALTER FUNCTION api_quick_inspection', q{ALTER FUNCTION api_quick_inspection(bytea, uuid, text, text, integer, text, text) SECURITY INVOKER}],
	['COMMENT ON TABLE', q{COMMENT ON TABLE quality_audit_log IS 'probe'}],
);
for my $d (@DDL) {
	like(try_as_app($d->[1]), $DENIED, "scanqa_app cannot $d->[0]");
}
{
	# Without the grant option PostgreSQL refuses or only warns; what matters is that nothing changed.
	my @warnings;
	local $SIG{__WARN__} = sub { push @warnings, @_ };
	my $acl = $t->one(q{SELECT relacl::text FROM pg_class WHERE relname = 'quality_audit_log'});
	my $err = try_as_app('GRANT SELECT, UPDATE, DELETE ON quality_audit_log TO PUBLIC');
	like("@warnings $err", qr/no privileges were granted|permission denied/, 'scanqa_app cannot GRANT privileges on a table to others');
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
like(try_as_app(q{INSERT INTO quality_audit_log (org_id, entity_type, entity_id, action) VALUES (current_setting('scanqa.org_id')::uuid, 'probe', 'x', 'probe')}),
	$DENIED, 'scanqa_app cannot append to the audit log directly either: only through the api_* functions');
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


# ---- the credential is the only way to name a tenant ------------------------------------

my $org_b = $t->make_org('Privileges Org B');
my $user_b = $t->make_user($org_b, 'qa_inspector');
my $lp_a = $t->make_lp($org);
my $barcode_a = $t->one('SELECT barcode FROM license_plates WHERE id = ?', $lp_a);
my $ins_a = $t->make_inspection($org, $lp_a);
my $lp_b = $t->make_lp($org_b);
my $barcode_b = $t->one('SELECT barcode FROM license_plates WHERE id = ?', $lp_b);
$r = $t->request(POST => '/api/v1/scan-sessions', token => $user->{token}, json => {});
is($r->{status}, 201, 'org A opens a scan session') or diag($r->{body});
my $session_a = $r->{json}{id};

my $app2 = $t->connect_as('scanqa_app');
$app2->{AutoCommit} = 0;
$app2->{PrintError} = 0;
# Runs $sql as scanqa_app with @bind, in a transaction that is rolled back;
# returns (rows as arrayrefs, error or '').
sub app_try {
	my ($sql, @bind) = @_;
	my $rows = eval { $app2->selectall_arrayref($sql, undef, @bind) };
	my $err = $rows ? '' : ($@ || $app2->errstr || 'error');
	$app2->rollback;
	return ($rows, $err);
}
sub hash_of { Digest::SHA::sha256_hex($_[0]) }

my @relations = @{ $t->dbh->selectcol_arrayref(q{
	SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm') ORDER BY 1}) };
for my $rel (@relations) {
	my (undef, $err) = app_try(qq{SELECT * FROM "$rel" LIMIT 1});
	like($err, $DENIED, "scanqa_app cannot read $rel");
}
like((app_try('SELECT token_sha256 FROM api_tokens'))[1], $DENIED, 'scanqa_app cannot read a token hash');
like((app_try('SELECT email FROM users WHERE org_id = ?', $org_b))[1], $DENIED, "scanqa_app cannot read another organization's users");
like((app_try(q{SELECT set_config('scanqa.org_id', ?, true), (SELECT count(*) FROM users)}, $org_b))[1], $DENIED,
	'not even with scanqa.org_id set to that organization by hand');

my @executable = @{ $t->dbh->selectcol_arrayref(q{
	SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
	 WHERE n.nspname = 'public' AND has_function_privilege('scanqa_app', p.oid, 'EXECUTE') ORDER BY 1}) };
is_deeply([ grep { !/^api_/ } @executable ], [], 'scanqa_app may execute no function but the api_* ones');
ok(scalar(grep { /^api_/ } @executable) >= 8, "the api_* functions: @executable");
is($t->one(q{SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_roles r ON r.oid = p.proowner
	WHERE n.nspname = 'public' AND p.prosecdef AND r.rolcanlogin}), 0,
	'every SECURITY DEFINER function belongs to a role that cannot log in');
is($t->one(q{SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
	WHERE n.nspname = 'public' AND p.proname LIKE 'api\_%' AND NOT p.prosecdef}), 0, 'every api_* function is SECURITY DEFINER');
is($t->one(q{SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
	WHERE n.nspname = 'public' AND p.proname LIKE 'api\_%'
	  AND EXISTS (SELECT 1 FROM unnest(p.proargnames) a WHERE a IN ('p_org', 'p_user', 'p_manager'))}), 0,
	'no api_* function takes an organization, user or manager argument');
like((app_try(q{SELECT * FROM qa_complete_inspection(?, ?, ?, 'pass', NULL, NULL, NULL, NULL, NULL, false, 0)},
	$org, $user->{id}, $ins_a))[1], $DENIED, 'scanqa_app cannot call the internal functions that take an organization');
like((app_try(q{SELECT * FROM qa_credential(decode(?, 'hex'), 'scanner')}, hash_of($user->{token})))[1], $DENIED,
	'scanqa_app cannot call qa_credential itself');

my ($rows, $err) = app_try(q{SELECT * FROM api_lp_by_barcode(p_token_sha256 => decode(?, 'hex'), p_barcode => ?)},
	hash_of('not-a-token'), $barcode_a);
like($err, qr/Unauthorized/, 'an unknown token is refused (SQLSTATE SQ401)');
($rows, $err) = app_try(q{SELECT barcode FROM api_lp_by_barcode(p_token_sha256 => decode(?, 'hex'), p_barcode => ?)},
	hash_of($user->{token}), $barcode_a);
is($rows && $rows->[0][0], $barcode_a, "org A's token finds org A's LP (the check below is not a broken call)");

# scanqa.org_id set by hand to org A, with org B's token: the token decides.
sub as_b_with_org_a {
	my ($sql, @bind) = @_;
	return app_try(qq{WITH s AS (SELECT set_config('scanqa.org_id', '$org', true)) SELECT f.*, current_setting('scanqa.org_id')
		FROM s, LATERAL ($sql) f}, hash_of($user_b->{token}), @bind);
}
($rows, $err) = as_b_with_org_a(q{SELECT barcode FROM api_lp_by_barcode(p_token_sha256 => decode(?, 'hex'), p_barcode => ?)}, $barcode_a);
is_deeply($rows, [], "with scanqa.org_id set to org A by hand, org B's token does not find org A's LP") or diag($err);
($rows, $err) = as_b_with_org_a(q{SELECT barcode FROM api_lp_by_barcode(p_token_sha256 => decode(?, 'hex'), p_barcode => ?)}, $barcode_b);
is($rows && $rows->[0][1], $org_b, "...it finds its own, and the credential set scanqa.org_id to org B") or diag($err);
($rows, $err) = as_b_with_org_a(q{SELECT lp_id FROM api_inspection_by_lp(p_token_sha256 => decode(?, 'hex'), p_lp => ?)}, $lp_a);
is_deeply($rows, [], "org B's token does not find org A's inspection by LP") or diag($err);
($rows, $err) = as_b_with_org_a(q{SELECT id FROM api_session_get(p_token_sha256 => decode(?, 'hex'), p_id => ?)}, $session_a);
is_deeply($rows, [], "org B's token does not read org A's scan session") or diag($err);

# Writes, committed for real: org B's token must change none of org A's rows.
my $before = $t->row('SELECT status, completed_by FROM quality_inspections WHERE id = ?', $ins_a);
my $b_hash = hash_of($user_b->{token});
$app2->{AutoCommit} = 1;
my $out = $app2->selectrow_array(q{SELECT outcome FROM api_quick_inspection(p_token_sha256 => decode(?, 'hex'),
	p_inspection => ?, p_result => 'pass', p_notes => NULL, p_defects => NULL, p_device => NULL, p_location => NULL)},
	undef, $b_hash, $ins_a);
is($out, 'not_found', "api_quick_inspection with org B's token does not find org A's inspection");
my $sync = $app2->selectall_arrayref(q{SELECT sync_status, error FROM api_sync_offline(p_token_sha256 => decode(?, 'hex'), p_actions => ?::jsonb)},
	undef, $b_hash, qq{[{"action":{"id":"0f4e8a40-0000-4000-8000-00000000a001","type":"quick_inspection","payload":{},"timestamp":"2025-01-01T00:00:00Z"},
		"local_us":1735689600000000,"inspection_id":"$ins_a","result":"pass"}]});
is_deeply($sync, [[ 'failed', 'Inspection not found' ]], "api_sync_offline with org B's token does not find it either");
my $upd = $app2->selectrow_array(q{SELECT outcome FROM api_session_update(p_token_sha256 => decode(?, 'hex'), p_id => ?,
	p_if_match => NULL, p_status => 'CANCELLED', p_location => NULL, p_notes => NULL, p_items => NULL, p_auto_commit => NULL)},
	undef, $b_hash, $session_a);
is($upd, 'not_found', "api_session_update with org B's token does not find org A's session");
my $scan = $app2->selectrow_array(q{SELECT outcome FROM api_session_scan(p_token_sha256 => decode(?, 'hex'), p_id => ?, p_barcode => ?)},
	undef, $b_hash, $session_a, $barcode_a);
is($scan, 'not_found', "api_session_scan with org B's token does not find org A's session");
is_deeply($t->row('SELECT status, completed_by FROM quality_inspections WHERE id = ?', $ins_a), $before, "org A's inspection is unchanged");
is($t->one('SELECT status FROM scan_sessions WHERE id = ?', $session_a), 'ACTIVE', "org A's session is unchanged");
is($t->one('SELECT count(*) FROM scan_session_scans WHERE session_id = ?', $session_a), 0, '...and has no scans');
is($t->one('SELECT count(*) FROM scanner_offline_queue WHERE org_id = ?', $org), 0, 'org A has no queue row');
is($t->one('SELECT count(*) FROM scanner_offline_queue WHERE org_id = ?', $org_b), 1, "org B's failed action is queued in org B");
$app2->disconnect;

is($t->stop_daemon, 0, 'the daemon exits cleanly on SIGTERM');
is($t->daemon_errors, '', 'the daemon reported no memory errors');
is($t->nginx_alerts, '', 'nginx logged no alerts');

done_testing;
