#!/usr/bin/perl
# security_isolation.t: organizations cannot see or change each other's data.
#
# Through the API: for every endpoint that touches organization data, a token of
# organization B aimed at organization A's data is told it does not exist (404;
# in an offline sync batch, the action's "Inspection not found"), with exactly the
# answer for an id that exists nowhere, and changes none of A's rows; the same
# request with A's own token works, so the refusal is isolation and not a broken
# request. One worker serves everything,
# so A's and B's requests share one database connection: nothing set for one
# request (scanqa.org_id) outlives it.
#
# In SQL: as the role of the daemon's functions (scanqa_api: the daemon's own
# role, scanqa_app, may touch no table at all; see security_privileges.t), with
# scanqa.org_id set to B, or not set at all, or empty, none of A's rows is
# visible in any org-scoped table, none can be changed, and no row can be
# written for A. Every table with an org_id column is covered, and must be under
# forced row level security, users included.

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
my $SYNC = '/api/v1/quality/scanner/sync-offline';
my $NOWHERE = '00000000-0000-4000-8000-000000000000';

sub uuid {
	my @b = map { int rand 256 } 1 .. 16;
	$b[6] = ($b[6] & 0x0f) | 0x40;
	$b[8] = ($b[8] & 0x3f) | 0x80;
	my $h = join '', map { sprintf '%02x', $_ } @b;
	return join '-', substr($h, 0, 8), substr($h, 8, 4), substr($h, 12, 4), substr($h, 16, 4), substr($h, 20);
}

sub sync {
	my ($token, $type, $payload, %o) = @_;
	return $t->request(POST => $SYNC, token => $token, json => { actions => [{
		id => $o{id} // uuid(), type => $type, timestamp => '2025-01-23T14:30:00.000Z', payload => $payload }] });
}

# ---- through the API ---------------------------------------------------------------
#
# Each endpoint: setup() makes org A's data, attempt($data, $token) aims a request
# at it, and missing($response) is true when the answer is the one for data that
# does not exist (a 404, or in a sync batch the action's "Inspection not found").

sub not_found_404 {
	my ($r) = @_;
	return $r->{status} == 404 && ($r->{json}{error} // '') eq 'Inspection not found';
}

sub not_found_action {
	my ($r) = @_;
	my $j = $r->{json} // {};
	return $r->{status} == 200 && ($j->{success} // -1) == 0 && ($j->{failed} // -1) == 1
		&& ($j->{errors}[0]{error} // '') eq 'Inspection not found';
}

sub open_inspection { return { ins => $t->make_inspection($org_a, $t->make_lp($org_a)) } }

my $SESSIONS = '/api/v1/scan-sessions';
my $BY_BARCODE = '/api/warehouse/license-plates/barcode';
my $BY_LP = '/api/quality/inspections/by-lp';

# An ACTIVE scan session of org A's inspector, and an LP of A with an open inspection.
sub a_session {
	my $r = $t->request(POST => $SESSIONS, token => $user{a}{qa_inspector}{token}, json => { location => 'Dock A' });
	die "creating org A's session: $r->{status} $r->{body}" unless $r->{status} == 201;
	my $lp = $t->make_lp($org_a);
	$t->make_inspection($org_a, $lp);
	return { session => $r->{json}{id}, lp => $lp, barcode => $t->one('SELECT barcode FROM license_plates WHERE id = ?', $lp) };
}

sub missing_as {
	my ($status, $error) = @_;
	return sub { $_[0]{status} == $status && ($_[0]{json}{error} // '') eq $error };
}

my @ENDPOINTS = (
	{
		name => 'POST quick-inspection', setup => \&open_inspection, missing => \&not_found_404,
		attempt => sub {
			my ($s, $token) = @_;
			return $t->request(POST => $QI, token => $token, json => {
				inspection_id => $s->{ins}, result => 'fail', inspection_method => 'scanner',
				result_notes => 'written by another organization' });
		},
	},
	{
		name => 'POST sync-offline, quick_inspection', setup => \&open_inspection, missing => \&not_found_action,
		attempt => sub {
			my ($s, $token) = @_;
			return sync($token, quick_inspection => { inspection_id => $s->{ins}, result => 'fail',
				inspection_method => 'scanner' });
		},
	},
	{
		name => 'POST sync-offline, test_result', setup => \&open_inspection, missing => \&not_found_action,
		attempt => sub {
			my ($s, $token) = @_;
			return sync($token, test_result => { inspection_id => $s->{ins}, test_name => 'Seal', result => 'fail' });
		},
	},
	{
		name => 'GET scan-sessions/{id}', setup => \&a_session, missing => missing_as(404, 'Scan session not found'),
		nowhere => { session => 2147483647 },
		attempt => sub { $t->request(GET => "$SESSIONS/$_[0]{session}", token => $_[1]) },
	},
	{
		# The session's owner changes it on A's side (B has no owner, so managers' role is what counts).
		name => 'PATCH scan-sessions/{id}', setup => \&a_session, missing => missing_as(404, 'Scan session not found'),
		nowhere => { session => 2147483647 }, a_token => sub { $user{a}{qa_manager}{token} },
		attempt => sub {
			$t->request(PATCH => "$SESSIONS/$_[0]{session}", token => $_[1],
				json => { status => 'CANCELLED', notes => 'by another organization' });
		},
	},
	{
		name => 'POST scan-sessions/{id}/scans', setup => \&a_session, missing => missing_as(404, 'Scan session not found'),
		nowhere => { session => 2147483647, barcode => 'NOWHERE-1' },
		attempt => sub { $t->request(POST => "$SESSIONS/$_[0]{session}/scans", token => $_[1], json => { barcode => $_[0]{barcode} }) },
	},
	{
		name => 'GET license-plates/barcode/{barcode}', setup => \&a_session, missing => missing_as(404, 'License plate not found'),
		nowhere => { barcode => 'NOWHERE-1' },
		attempt => sub { $t->request(GET => "$BY_BARCODE/$_[0]{barcode}", token => $_[1]) },
	},
	{
		name => 'GET inspections/by-lp/{lpId}', setup => \&a_session, missing => missing_as(404, 'License plate not found'),
		nowhere => { lp => $NOWHERE },
		attempt => sub { $t->request(GET => "$BY_LP/$_[0]{lp}", token => $_[1]) },
	},
);

for my $ep (@ENDPOINTS) {
	for my $role (sort keys %{ $user{b} }) {
		my $s = $ep->{setup}->();
		my $before = $t->db_fingerprint(org => $org_a);
		my $r = $ep->{attempt}->($s, $user{b}{$role}{token});
		ok($ep->{missing}->($r), "$ep->{name}: org B's $role on org A's data is told it does not exist")
			or diag("$r->{status} $r->{body}");
		is_deeply($t->db_fingerprint(org => $org_a), $before, "$ep->{name}: org B's $role changed none of org A's data");
		$r = $ep->{attempt}->($s, $ep->{a_token} ? $ep->{a_token}->() : $user{a}{$role}{token});
		ok($r->{status} >= 200 && $r->{status} < 300 && !$ep->{missing}->($r) && !($r->{json}{failed} // 0),
			"$ep->{name}: org A's $role on the same data succeeds") or diag("$r->{status} $r->{body}");
		# One worker, so one database connection served A just now: nothing of it remains.
		$r = $ep->{attempt}->($ep->{setup}->(), $user{b}{$role}{token});
		ok($ep->{missing}->($r), "$ep->{name}: right after org A's request on the same connection, org B is still told it does not exist")
			or diag("$r->{status} $r->{body}");
	}
	# An id that exists in A is answered exactly like one that exists nowhere, so B
	# cannot even learn which ids A has.
	my $r1 = $ep->{attempt}->($ep->{setup}->(), $user{b}{qa_inspector}{token});
	my $r2 = $ep->{attempt}->($ep->{nowhere} // { ins => $NOWHERE }, $user{b}{qa_inspector}{token});
	my $answer = sub {
		my ($r) = @_;
		my $j = $r->{json} // {};
		delete $_->{action_id} for ref $j->{errors} eq 'ARRAY' ? @{ $j->{errors} } : ();
		# A failed scan is reported with the scan it recorded (for B, in B's own records).
		delete @{$j}{qw(scan session)};
		return "$r->{status} " . JSON::PP->new->canonical->encode($j);
	};
	is($answer->($r1), $answer->($r2), "$ep->{name}: org B gets the same answer for org A's inspection as for one that does not exist");
}

# Offline action ids are per organization: B sending an id A has already synced is
# neither told "duplicate" nor blocked, so it learns nothing about A's actions.
{
	my $id = uuid();
	my $a_ins = $t->make_inspection($org_a, $t->make_lp($org_a));
	my $b_ins = $t->make_inspection($org_b, $t->make_lp($org_b));
	my $r = sync($user{a}{qa_inspector}{token}, quick_inspection => { inspection_id => $a_ins, result => 'pass',
		inspection_method => 'scanner' }, id => $id);
	is($r->{json}{success}, 1, 'org A syncs an action');
	$r = sync($user{b}{qa_inspector}{token}, quick_inspection => { inspection_id => $b_ins, result => 'pass',
		inspection_method => 'scanner' }, id => $id);
	is($r->{json}{success}, 1, 'org B sending the same action id for its own inspection is applied');
	is($t->one('SELECT status FROM quality_inspections WHERE id = ?', $b_ins), 'completed', "...to org B's inspection");
	is($t->one(q{SELECT sync_status FROM scanner_offline_queue WHERE org_id = ? AND action_payload->>'id' = ?}, $org_b, $id),
		'synced', "...as synced, not as a duplicate of org A's action");
}

# The offline copy's listing: B's full listing and B's refresh hold none of A's
# inspections, open or completed, right after A listed them on the same connection.
{
	my $a_open = $t->make_inspection($org_a, $t->make_lp($org_a));
	my $b_open = $t->make_inspection($org_b, $t->make_lp($org_b));
	my %a_ids = map { $_ => 1 } @{ $t->dbh->selectcol_arrayref('SELECT id FROM quality_inspections WHERE org_id = ?', undef, $org_a) };
	for my $role (sort keys %{ $user{b} }) {
		my $ra = $t->request(GET => '/api/quality/inspections/open', token => $user{a}{$role}{token});
		ok((grep { $_->{id} eq $a_open } @{ $ra->{json}{inspections} // [] }), "open listing: org A's $role sees A's inspection");
		for my $query ('', '?since=2000-01-01T00:00:00Z', '?limit=1') {
			my $r = $t->request(GET => "/api/quality/inspections/open$query", token => $user{b}{$role}{token});
			is($r->{status}, 200, "open listing$query: org B's $role is answered");
			is(scalar(grep { $a_ids{ $_->{id} } } @{ $r->{json}{inspections} // [] }), 0,
				"open listing$query: org B's $role sees none of org A's inspections");
		}
		my $r = $t->request(GET => '/api/quality/inspections/open?since=2000-01-01T00:00:00Z', token => $user{b}{$role}{token});
		ok((grep { $_->{id} eq $b_open } @{ $r->{json}{inspections} // [] }), "open listing: org B's $role sees B's own");
	}
}

# ---- in SQL, as the role of the daemon's functions -------------------------------------

# Every table with an org_id column must be under forced RLS. scanqa_api reads
# no users (only qa_credential's owner does), so that table's rows are not
# counted below, only its policy checked.
my %GLOBAL = ();
my %NO_GRANT = (users => 1);

my $tables = $t->rows(q{
	SELECT c.relname AS name, c.relrowsecurity AS rls, c.relforcerowsecurity AS forced,
	       (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
	  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
	   AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'org_id' AND NOT a.attisdropped)
	 ORDER BY 1});
my @scoped = map { $_->{name} } grep { !$GLOBAL{ $_->{name} } && !$NO_GRANT{ $_->{name} } } @$tables;
ok(!$t->one(q{SELECT has_table_privilege('scanqa_api', 'public.users', 'SELECT')}),
	'scanqa_api cannot read users at all');
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
	my $open = $t->make_inspection($org, $t->make_lp($org));
	$r = sync($user{$k}{qa_inspector}{token}, test_result => { inspection_id => $open, test_name => 'Seal', result => 'pass' });
	is($r->{json}{success}, 1, "org " . uc($k) . " syncs a test result (a test result, a queue row, a synced action)");
	$r = $t->request(POST => $SESSIONS, token => $user{$k}{qa_inspector}{token}, json => {});
	is($r->{status}, 201, "org " . uc($k) . " opens a scan session");
	my $barcode = $t->one('SELECT barcode FROM license_plates WHERE id = ?', $t->make_lp($org));
	$r = $t->request(POST => "$SESSIONS/$r->{json}{id}/scans", token => $user{$k}{qa_inspector}{token},
		json => { barcode => $barcode });
	is($r->{status}, 201, "org " . uc($k) . " scans an LP in it");
}
for my $table (@scoped) {
	ok($t->one(qq{SELECT count(*) FROM "$table" WHERE org_id = ?}, $org_a) > 0,
		"$table holds rows of org A to hide (add a fixture here for a new table)");
}

my $app = $t->connect_as('postgres');
$app->do('SET ROLE scanqa_api');
$app->{AutoCommit} = 0;

# Runs $code inside a transaction of scanqa_api with scanqa.org_id set as given
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

# Views the daemon reads are checked like tables: a view runs with its owner's
# rights unless security_invoker is set, and the owner must not lend it theirs.
my @views = @{ $t->dbh->selectcol_arrayref(q{
	SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	 WHERE n.nspname = 'public' AND c.relkind = 'v' AND has_table_privilege('scanqa_api', c.oid, 'SELECT')
	   AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'org_id')
	 ORDER BY 1}) };
for my $view (@views) {
	ok($t->one(qq{SELECT count(*) FROM "$view" WHERE org_id = ?}, $org_a) > 0, "view $view shows org A's rows to the superuser");
	is(as_app($org_b, sub { app_one(qq{SELECT count(*) FROM "$view" WHERE org_id = ?}, $org_a) }), 0,
		"scanqa_api as org B sees none of org A's rows through view $view");
	is(as_app(undef, sub { app_one(qq{SELECT count(*) FROM "$view"}) }), 0,
		"scanqa_api with scanqa.org_id not set sees no row through view $view");
}

for my $table (@scoped) {
	my $b_rows = $t->one(qq{SELECT count(*) FROM "$table" WHERE org_id = ?}, $org_b);
	is(as_app($org_b, sub { app_one(qq{SELECT count(*) FROM "$table" WHERE org_id = ?}, $org_a) }), 0,
		"scanqa_api as org B sees none of org A's rows in $table");
	is(as_app($org_b, sub { app_one(qq{SELECT count(*) FROM "$table"}) }), $b_rows,
		"scanqa_api as org B sees exactly org B's rows in $table");
	is(as_app(undef, sub { app_one(qq{SELECT count(*) FROM "$table"}) }), 0,
		"scanqa_api with scanqa.org_id not set sees no row of $table");
	is(as_app('', sub { app_one(qq{SELECT count(*) FROM "$table"}) }), 0,
		"scanqa_api with scanqa.org_id empty sees no row of $table");
}

# Writes as org B against org A.
is(as_app($org_b, sub { $app->do(q{UPDATE quality_inspections SET result_notes = 'x' WHERE org_id = ?}, undef, $org_a) + 0 }),
	0, 'scanqa_api as org B updates none of org A\'s inspections');
is(as_app($org_b, sub { $app->do(q{UPDATE license_plates SET qa_status = 'on_hold' WHERE org_id = ?}, undef, $org_a) + 0 }),
	0, 'scanqa_api as org B updates none of org A\'s license plates');
my $a_ins = $t->one('SELECT id FROM quality_inspections WHERE org_id = ? LIMIT 1', $org_a);
my $a_queue = $t->one('SELECT id FROM scanner_offline_queue WHERE org_id = ? LIMIT 1', $org_a);
my $a_session = $t->one('SELECT min(id) FROM scan_sessions WHERE org_id = ?', $org_a);
for my $w (
	['an audit row', q{INSERT INTO quality_audit_log (org_id, entity_type, entity_id, action) VALUES (?, 'inspection', 'x', 'forged')}],
	['an offline queue row', q{INSERT INTO scanner_offline_queue (org_id, user_id, action_type, action_payload, sync_status)
		VALUES (?, gen_random_uuid(), 'quick_inspection', '{}', 'synced')}],
	['a test result', qq{INSERT INTO quality_test_results (org_id, inspection_id, test_name, result, tested_at)
		VALUES (?, '$a_ins', 'forged', 'pass', now())}],
	['a synced action (to make org A\'s next sync look like a replay)', qq{INSERT INTO scanner_synced_actions
		(org_id, action_id, queue_id) VALUES (?, gen_random_uuid(), '$a_queue')}],
	['a scan session', qq{INSERT INTO scan_sessions (org_id, user_id, session_token)
		VALUES (?, '$user{a}{qa_inspector}{id}', repeat('A', 43))}],
	['a scan in org A\'s session', qq{INSERT INTO scan_session_scans (org_id, session_id, user_id, barcode)
		VALUES (?, $a_session, '$user{a}{qa_inspector}{id}', 'X')}],
) {
	my $ok = eval { as_app($org_b, sub { $app->do($w->[1], undef, $org_a) }); 1 };
	like($ok ? '' : $@, qr/row-level security/, "scanqa_api as org B cannot write $w->[0] for org A");
	$ok = eval { as_app(undef, sub { $app->do($w->[1], undef, $org_a) }); 1 };
	like($ok ? '' : $@, qr/row-level security/, "scanqa_api without scanqa.org_id cannot write $w->[0] for anyone");
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
