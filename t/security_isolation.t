#!/usr/bin/perl
# security_isolation.t: organizations cannot see or change each other's data.
#
# Through the API: for every endpoint that touches organization data, a token of
# organization B aimed at organization A's data gets 404, exactly as if the data
# did not exist, and changes nothing; the same request with A's own token works,
# so the 404 is isolation and not a broken request. One worker serves everything,
# so A's and B's requests share one database connection: nothing set for one
# request (scanqa.org_id) outlives it.
#
# In SQL: connected as the daemon's role (scanqa_app), with scanqa.org_id set to
# B, or not set at all, or empty, none of A's rows is visible in any org-scoped
# table, none can be changed, and no row can be written for A. Every table with
# an org_id column is covered, and must be under forced row level security,
# except the global tables authentication needs (listed below).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP;
use Test::More;

use ScanQA::Test;

my $t = ScanQA::Test->new(conf => { workers => 1 });

my $org_a = $t->make_org('Org A');
my $org_b = $t->make_org('Org B');
my %user;
for my $role (qw(qa_inspector qa_manager admin)) {
	$user{a}{$role} = $t->make_user($org_a, $role);
	$user{b}{$role} = $t->make_user($org_b, $role);
}
my $QI = '/api/v1/quality/scanner/quick-inspection';

# ---- through the API ---------------------------------------------------------------
#
# Each endpoint: an attempt on A's data (given a token) and what a 404 must say.
# attempt($token) returns the response; the same call with an A token must succeed.

my @ENDPOINTS = (
	{
		name => 'POST quick-inspection',
		setup => sub { return { ins => $t->make_inspection($org_a, $t->make_lp($org_a)) } },
		attempt => sub {
			my ($s, $token) = @_;
			return $t->request(POST => $QI, token => $token, json => {
				inspection_id => $s->{ins}, result => 'fail', inspection_method => 'scanner',
				result_notes => 'written by another organization' });
		},
		error => 'Inspection not found',
	},
);

for my $ep (@ENDPOINTS) {
	for my $role (sort keys %{ $user{b} }) {
		my $s = $ep->{setup}->();
		my $before = $t->db_fingerprint;
		my $r = $ep->{attempt}->($s, $user{b}{$role}{token});
		is($r->{status}, 404, "$ep->{name}: org B's $role on org A's data gets 404");
		is_deeply($r->{json}, { error => $ep->{error} }, "$ep->{name}: the 404 says \"$ep->{error}\", as for data that does not exist")
			or diag($r->{body});
		is_deeply($t->db_fingerprint, $before, "$ep->{name}: org B's $role changed nothing");
		$r = $ep->{attempt}->($s, $user{a}{$role}{token});
		ok($r->{status} >= 200 && $r->{status} < 300, "$ep->{name}: org A's $role on the same data succeeds")
			or diag("$r->{status} $r->{body}");
		$r = $ep->{attempt}->($ep->{setup}->(), $user{b}{$role}{token});
		is($r->{status}, 404, "$ep->{name}: right after org A's request on the same connection, org B still gets 404");
	}
}

# An id that exists in A answers exactly like one that exists nowhere, so B cannot
# even learn which ids A has.
{
	my $a_ins = $t->make_inspection($org_a, $t->make_lp($org_a));
	my $body = sub { { inspection_id => $_[0], result => 'pass', inspection_method => 'scanner' } };
	my $r1 = $t->request(POST => $QI, token => $user{b}{qa_inspector}{token}, json => $body->($a_ins));
	my $r2 = $t->request(POST => $QI, token => $user{b}{qa_inspector}{token},
		json => $body->('00000000-0000-4000-8000-000000000000'));
	is("$r1->{status} $r1->{body}", "$r2->{status} $r2->{body}",
		"org B gets the same answer for org A's inspection as for one that does not exist");
}

# ---- in SQL, as the daemon's role ----------------------------------------------------

# Tables the daemon reads without row level security: authentication looks up a
# token before it knows the organization. Any other table with an org_id column
# must be under forced RLS.
my %GLOBAL = map { $_ => 1 } qw(organizations users api_tokens);

my $tables = $t->rows(q{
	SELECT c.relname AS name, c.relrowsecurity AS rls, c.relforcerowsecurity AS forced,
	       (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
	  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
	   AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'org_id' AND NOT a.attisdropped)
	 ORDER BY 1});
my @scoped = map { $_->{name} } grep { !$GLOBAL{ $_->{name} } } @$tables;
ok(scalar(@scoped) >= 4, "org-scoped tables: @scoped");
for my $tb (@$tables) {
	next if $GLOBAL{ $tb->{name} };
	ok($tb->{rls} && $tb->{forced} && $tb->{policies} > 0,
		"$tb->{name} has row level security, forced (the owner obeys it too), with a policy");
}

# Rows of both organizations in every org-scoped table.
for my $o ([$org_a, 'a'], [$org_b, 'b']) {
	my ($org, $k) = @$o;
	my $lp = $t->make_lp($org);
	my $ins = $t->make_inspection($org, $lp);
	my $r = $t->request(POST => $QI, token => $user{$k}{qa_inspector}{token},
		json => { inspection_id => $ins, result => 'pass', inspection_method => 'scanner' });
	is($r->{status}, 200, "org " . uc($k) . " completes an inspection (an audit row)");
	$t->dbh->do(q{INSERT INTO scanner_offline_queue (org_id, user_id, action_type, action_payload, sync_status)
		VALUES (?, ?, 'quick_inspection', '{}', 'synced')}, undef, $org, $user{$k}{qa_inspector}{id});
}
for my $table (@scoped) {
	ok($t->one(qq{SELECT count(*) FROM "$table" WHERE org_id = ?}, $org_a) > 0,
		"$table holds rows of org A to hide (add a fixture here for a new table)");
}

my $app = $t->connect_as('scanqa_app');
$app->{AutoCommit} = 0;

# Runs $code inside a transaction of scanqa_app with scanqa.org_id set as given
# (undef: not set at all), then rolls back.
sub as_app {
	my ($setting, $code) = @_;
	my @r = eval {
		$app->do(q{SELECT set_config('scanqa.org_id', ?, true)}, undef, $setting) if defined $setting;
		$code->();
	};
	my $err = $@;
	$app->rollback;
	die $err if $err;
	return wantarray ? @r : $r[0];
}

sub app_one {
	my ($sql, @bind) = @_;
	return ($app->selectrow_array($sql, undef, @bind))[0];
}

for my $table (@scoped) {
	my $b_rows = $t->one(qq{SELECT count(*) FROM "$table" WHERE org_id = ?}, $org_b);
	is(as_app($org_b, sub { app_one(qq{SELECT count(*) FROM "$table" WHERE org_id = ?}, $org_a) }), 0,
		"scanqa_app as org B sees none of org A's rows in $table");
	is(as_app($org_b, sub { app_one(qq{SELECT count(*) FROM "$table"}) }), $b_rows,
		"scanqa_app as org B sees exactly org B's rows in $table");
	is(as_app(undef, sub { app_one(qq{SELECT count(*) FROM "$table"}) }), 0,
		"scanqa_app with scanqa.org_id not set sees no row of $table");
	is(as_app('', sub { app_one(qq{SELECT count(*) FROM "$table"}) }), 0,
		"scanqa_app with scanqa.org_id empty sees no row of $table");
}

# Writes as org B against org A.
is(as_app($org_b, sub { $app->do(q{UPDATE quality_inspections SET result_notes = 'x' WHERE org_id = ?}, undef, $org_a) + 0 }),
	0, 'scanqa_app as org B updates none of org A\'s inspections');
is(as_app($org_b, sub { $app->do(q{UPDATE license_plates SET qa_status = 'on_hold' WHERE org_id = ?}, undef, $org_a) + 0 }),
	0, 'scanqa_app as org B updates none of org A\'s license plates');
for my $w (
	['an audit row', q{INSERT INTO quality_audit_log (org_id, entity_type, entity_id, action) VALUES (?, 'inspection', 'x', 'forged')}],
	['an offline queue row', q{INSERT INTO scanner_offline_queue (org_id, user_id, action_type, action_payload, sync_status)
		VALUES (?, gen_random_uuid(), 'quick_inspection', '{}', 'synced')}],
) {
	my $ok = eval { as_app($org_b, sub { $app->do($w->[1], undef, $org_a) }); 1 };
	like($ok ? '' : $@, qr/row-level security/, "scanqa_app as org B cannot write $w->[0] for org A");
	$ok = eval { as_app(undef, sub { $app->do($w->[1], undef, $org_a) }); 1 };
	like($ok ? '' : $@, qr/row-level security/, "scanqa_app without scanqa.org_id cannot write $w->[0] for anyone");
}
{
	my $a_ins = $t->make_inspection($org_a, $t->make_lp($org_a));
	my $outcome = as_app(undef, sub {
		app_one(q{SELECT outcome FROM qa_complete_inspection(?, ?, ?, 'pass', NULL, NULL, NULL, NULL, NULL, false, 0)},
			$org_b, $user{b}{qa_inspector}{id}, $a_ins) });
	is($outcome, 'not_found', 'qa_complete_inspection for org B does not find org A\'s inspection');
	is($t->one('SELECT status FROM quality_inspections WHERE id = ?', $a_ins), 'in_progress',
		'org A\'s inspection is untouched');
}
# The setting is transaction-local: the next transaction of the same connection
# starts without it.
{
	$app->do(q{SELECT set_config('scanqa.org_id', ?, true)}, undef, $org_a);
	$app->commit;
	is(app_one(q{SELECT coalesce(current_setting('scanqa.org_id', true), '')}), '',
		'scanqa.org_id set in one transaction is gone in the next');
	is(app_one(q{SELECT count(*) FROM quality_inspections}), 0, '...and with it every org-scoped row');
	$app->rollback;
}
$app->disconnect;

is($t->stop_daemon, 0, 'the daemon exits cleanly on SIGTERM');
is($t->daemon_errors, '', 'the daemon reported no memory errors');
is($t->nginx_alerts, '', 'nginx logged no alerts');

done_testing;
