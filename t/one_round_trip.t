#!/usr/bin/perl
# one_round_trip.t: every request (health aside) is one statement in PostgreSQL,
# credential check included, and the appends of concurrent inspectors of one
# organization lock neither the organization's row nor the inspector's.
#
# With log_statement = all for the daemon's role, the server log shows exactly one
# statement per request, for every endpoint, for a refused credential, and for a
# request the daemon refuses itself (415, 400: one credential check, so that a bad
# token is still answered 401 first). Then four inspectors complete inspections,
# sync actions and scan into sessions at the same time, and the organization's
# and users' rows keep the xmax they had: no foreign key check took a FOR KEY
# SHARE lock on them, so there is no MultiXact either.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;

use ScanQA::Test;

my $t = ScanQA::Test->new(private_pg => 1, conf => { workers => 1 });

my $org = $t->make_org('Round Trip Org');
my $user = $t->make_user($org, 'qa_inspector');
my $viewer = $t->make_user($org, 'viewer');
my $QI = '/api/v1/quality/scanner/quick-inspection';
my $SYNC = '/api/v1/quality/scanner/sync-offline';

# Only the daemon's statements are logged; its worker reconnects with the setting.
$t->dbh->do(q{ALTER ROLE scanqa_app SET log_statement = 'all'});
$t->stop_daemon;
$t->start_daemon;
$t->wait_health(200);
is($t->request(GET => '/api/v1/health')->{status}, 200, 'the daemon is up (its connection set up)');

# Sends one request; returns (response, the statements it made).
sub statements_of {
	my (@req) = @_;
	my $from = length $t->pg_log;
	my $r = $t->request(@req);
	my $log = substr($t->pg_log, $from);
	my @st = $log =~ /LOG:\s+((?:statement|execute [^:]*):[^\n]*)/g;
	return ($r, \@st);
}

sub one_statement {
	my ($what, $status, @req) = @_;
	my ($r, $st) = statements_of(@req);
	is($r->{status}, $status, "$what: answered $status") or diag($r->{body});
	is(scalar @$st, 1, "$what: exactly one statement in PostgreSQL") or diag(join "\n", @$st);
	return ($r, $st->[0] // '');
}

my $lp = $t->make_lp($org);
my $barcode = $t->one('SELECT barcode FROM license_plates WHERE id = ?', $lp);
my @ins = map { $t->make_inspection($org, $t->make_lp($org)) } 1 .. 3;

my ($r, $st) = one_statement('quick inspection', 200, POST => $QI, token => $user->{token},
	json => { inspection_id => $ins[0], result => 'pass', inspection_method => 'scanner' });
like($st, qr/api_quick_inspection\(p_token_sha256 => \$1, p_inspection => \$2/, 'with named arguments');
($r, $st) = one_statement('offline sync of three actions', 200, POST => $SYNC, token => $user->{token}, json => { actions => [
	{ id => '5b0e1a2c-0000-4000-8000-000000000001', type => 'quick_inspection', timestamp => '2025-01-01T00:00:00Z',
	  payload => { inspection_id => $ins[1], result => 'fail', inspection_method => 'scanner' } },
	{ id => '5b0e1a2c-0000-4000-8000-000000000002', type => 'test_result', timestamp => '2025-01-01T00:00:01Z',
	  payload => { inspection_id => $ins[2], test_name => 'Seal', result => 'pass' } },
	{ id => '5b0e1a2c-0000-4000-8000-000000000003', type => 'quick_inspection', timestamp => '2025-01-01T00:00:02Z',
	  payload => { result => 'pass' } },
] });
is_deeply([ @{ $r->{json} }{qw(success failed)} ], [ 2, 1 ], 'two actions synced, the invalid one failed');
like($st, qr/api_sync_offline\(p_token_sha256 => \$1, p_actions => \$2\)/, 'the whole batch in one call');
($r) = one_statement('scan session create', 201, POST => '/api/v1/scan-sessions', token => $user->{token}, json => {});
my $sid = $r->{json}{id};
one_statement('scan session get', 200, GET => "/api/v1/scan-sessions/$sid", token => $user->{token});
one_statement('scan session patch', 200, PATCH => "/api/v1/scan-sessions/$sid", token => $user->{token},
	json => { notes => 'dock 4' });
one_statement('scan', 201, POST => "/api/v1/scan-sessions/$sid/scans", token => $user->{token}, json => { barcode => $barcode });
one_statement('LP look-up by barcode', 200, GET => "/api/warehouse/license-plates/barcode/$barcode", token => $user->{token});
one_statement('inspection by LP', 200, GET => "/api/quality/inspections/by-lp/$lp", token => $user->{token});
one_statement('open inspections listing', 200, GET => '/api/quality/inspections/open', token => $user->{token});
one_statement('an unknown token', 401, GET => "/api/warehouse/license-plates/barcode/$barcode", token => 'no-such-token');
one_statement('a role without scanner access', 403, GET => "/api/warehouse/license-plates/barcode/$barcode", token => $viewer->{token});
($r, $st) = one_statement('an invalid body', 400, POST => $QI, token => $user->{token}, json => { result => 'maybe' });
like($st, qr/api_credential\(/, '...which is the credential check alone');
($r) = one_statement('an invalid body with an unknown token', 401, POST => $QI, token => 'no-such-token', json => { result => 'maybe' });
is($r->{json}{error}, 'Unauthorized', '...is answered 401, as the order of checks says');
($r) = one_statement('a wrong Content-Type with a viewer token', 403, POST => $QI, token => $viewer->{token},
	body => '{}', headers => { 'Content-Type' => 'text/plain' });
my (undef, $none) = statements_of(POST => $QI, json => {});
is(scalar @$none, 0, 'no Authorization header: 401 without asking PostgreSQL');

# ---- concurrent inspectors: no lock on the organization's or a user's row --------------

$t->rewrite_conf(workers => 4);
$t->stop_daemon;
$t->start_daemon;
$t->wait_health(200);
my @inspectors = map { $t->make_user($org, 'qa_inspector') } 1 .. 4;
my @sessions;
for my $u (@inspectors) {
	$r = $t->request(POST => '/api/v1/scan-sessions', token => $u->{token}, json => {});
	push @sessions, $r->{json}{id};
}
my @work = map { $t->make_inspection($org, $t->make_lp($org)) } 1 .. 80;
my $xmax = sub { $t->one("SELECT xmax::text FROM $_[0] WHERE id = ?", $_[1]) };
my %before = (org => $xmax->('organizations', $org), map { ("user$_" => $xmax->('users', $inspectors[$_]{id})) } 0 .. 3);

my @inflight;
my $n_ok = 0;
for my $round (0 .. 19) {
	for my $k (0 .. 3) {
		my $u = $inspectors[$k];
		my $ins = $work[$round * 4 + $k];
		push @inflight, $round % 2
			? $t->request_start(POST => $SYNC, token => $u->{token}, json => { actions => [
				{ id => sprintf('6c1f0000-0000-4000-8000-%012d', $round * 4 + $k), type => 'quick_inspection',
				  timestamp => '2025-01-01T00:00:00Z', payload => { inspection_id => $ins, result => 'pass', inspection_method => 'scanner' } } ] })
			: $t->request_start(POST => $QI, token => $u->{token},
				json => { inspection_id => $ins, result => 'pass', inspection_method => 'scanner' });
		push @inflight, $t->request_start(POST => "/api/v1/scan-sessions/$sessions[$k]/scans", token => $u->{token},
			json => { barcode => $barcode });
	}
	for my $s (splice @inflight) {
		my $resp = $t->request_finish($s);
		$n_ok++ if $resp->{status} == 200 || $resp->{status} == 201;
	}
}
is($n_ok, 160, 'four inspectors at once: 160 completions, syncs and scans answered 200/201');
is($t->one(q{SELECT count(*) FROM quality_inspections WHERE id = ANY (?) AND status = 'completed'}, \@work), 80,
	'all 80 inspections are completed');
is($t->one(q{SELECT count(*) FROM quality_audit_log WHERE action = 'scanner_complete' AND entity_id = ANY (?)}, \@work), 80,
	'with an audit row each');
is($xmax->('organizations', $org), $before{org},
	"the organization's row was never locked (its xmax is unchanged: no FOR KEY SHARE, no MultiXact)");
is($xmax->('users', $inspectors[$_]{id}), $before{"user$_"}, "the users row of inspector $_ was never locked") for 0 .. 3;

is($t->stop_daemon, 0, 'the daemon exits cleanly on SIGTERM');
is($t->daemon_errors, '', 'the daemon reported no memory errors');
is($t->nginx_alerts, '', 'nginx logged no alerts');

done_testing;
