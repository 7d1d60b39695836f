#!/usr/bin/perl
# sync_offline.t: POST /api/v1/quality/scanner/sync-offline, as the API reference's
# "Sync Offline Actions" section and issue 3 describe it: batch validation, the
# chronological order, each action in its own transaction, replays (also
# concurrent) that never apply an action twice, an action id reused for a different
# action (refused, never counted as synced), test_result actions, a
# scanner_offline_queue row for every outcome, and row level security on the queue.
# The database outage cases are in sync_offline_outage.t.
#
# After every request the test reads the database back and checks exactly what
# changed: inspections, LP statuses, audit rows, test results and queue rows.

use strict;
use utf8;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP;
use POSIX qw(floor strftime);
use Test::More;
use Time::HiRes qw(sleep time);

use ScanQA::Test;

my $PATH = '/api/v1/quality/scanner/sync-offline';

my $t = ScanQA::Test->new(conf => { workers => 3, lock_timeout => 1500 });

my $org   = $t->make_org('Acme Warehouse');
my $other = $t->make_org('Rival Warehouse');
my $inspector = $t->make_user($org, 'qa_inspector');
my $manager   = $t->make_user($org, 'qa_manager');
my $rival     = $t->make_user($other, 'qa_inspector');

# ---- helpers ------------------------------------------------------------------

sub uuid {
	my @b = map { int rand 256 } 1 .. 16;
	$b[6] = ($b[6] & 0x0f) | 0x40;
	$b[8] = ($b[8] & 0x3f) | 0x80;
	my $h = join '', map { sprintf '%02x', $_ } @b;
	return join '-', substr($h, 0, 8), substr($h, 8, 4), substr($h, 12, 4), substr($h, 16, 4), substr($h, 20);
}

# ISO 8601 UTC with milliseconds for an epoch time (fractional seconds allowed).
sub iso {
	my ($epoch) = @_;
	my $s = floor($epoch);
	return strftime('%Y-%m-%dT%H:%M:%S', gmtime $s) . sprintf('.%03dZ', floor(($epoch - $s) * 1000 + 0.5) % 1000);
}

sub fresh {
	my ($o, %cols) = @_;
	my $lp = $t->make_lp($o // $org);
	return ($t->make_inspection($o // $org, $lp, %cols), $lp);
}

sub qi_action {
	my ($ins, $result, $ts, %o) = @_;
	my $id = delete $o{id} // uuid();
	return { id => $id, type => 'quick_inspection', timestamp => $ts,
		payload => { inspection_id => $ins, result => $result, inspection_method => 'scanner', %o } };
}

sub tr_action {
	my ($ins, $name, $result, $ts, %o) = @_;
	my $id = delete $o{id} // uuid();
	return { id => $id, type => 'test_result', timestamp => $ts,
		payload => { inspection_id => $ins, test_name => $name, result => $result, %o } };
}

sub sync {
	my ($actions, %o) = @_;
	my $token = delete $o{token} // $inspector->{token};
	my $r = $t->request(POST => $PATH, token => $token, json => { actions => $actions }, %o);
	diag("response: $r->{status} $r->{body}") if $ENV{TEST_VERBOSE};
	return $r;
}

sub inspection { $t->row('SELECT * FROM quality_inspections WHERE id = ?', $_[0]) }
sub lp_status  { $t->one('SELECT qa_status FROM license_plates WHERE id = ?', $_[0]) }
sub utc {
	$t->one(q{SELECT to_char(? ::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')}, $_[0]);
}

sub decode_cols {
	my ($rows, @cols) = @_;
	for my $r (@$rows) {
		$r->{$_} = JSON::PP->new->decode($r->{$_}) for grep { defined $r->{$_} } @cols;
	}
	return $rows;
}

sub audit_rows {
	my ($entity) = @_;
	return decode_cols($t->rows(q{SELECT id, org_id, entity_type, entity_id, action, user_id,
		old_value::text AS old_value, new_value::text AS new_value, change_reason,
		metadata::text AS metadata
		FROM quality_audit_log WHERE entity_id = ? ORDER BY id}, $entity),
		qw(old_value new_value metadata));
}

# The queue rows of one action id, oldest first.
sub queue_rows {
	my ($action_id) = @_;
	return decode_cols($t->rows(q{SELECT org_id, user_id, action_type, action_payload::text AS action_payload,
		device_id, to_char(created_at_local AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_at_local,
		synced_at, sync_status, error_message
		FROM scanner_offline_queue WHERE lower(action_payload->>'id') = lower(?)
		ORDER BY synced_at, sync_status DESC}, $action_id), 'action_payload');
}

sub queue_statuses {
	my ($action_id) = @_;
	return [ map { $_->{sync_status} } @{ queue_rows($action_id) } ];
}

# Row counts of everything the endpoint may write.
sub counts {
	my $c = $t->row(q{SELECT
		(SELECT count(*) FROM quality_inspections WHERE status = 'completed') AS completed,
		(SELECT count(*) FROM license_plates WHERE qa_status <> 'pending') AS lp_changed,
		(SELECT count(*) FROM quality_audit_log) AS audit,
		(SELECT count(*) FROM quality_test_results) AS tests,
		(SELECT count(*) FROM scanner_offline_queue WHERE sync_status = 'synced') AS q_synced,
		(SELECT count(*) FROM scanner_offline_queue WHERE sync_status = 'duplicate') AS q_duplicate,
		(SELECT count(*) FROM scanner_offline_queue WHERE sync_status = 'failed') AS q_failed});
	return { map { $_ => $c->{$_} + 0 } keys %$c };
}

# Checks that the counts moved by exactly %delta (every other count unchanged).
sub changed {
	my ($before, $what, %delta) = @_;
	my $after = counts();
	my %want = map { $_ => $before->{$_} + ($delta{$_} // 0) } keys %$before;
	is_deeply($after, \%want, $what)
		or diag(explain { before => $before, after => $after });
}

sub json_ok {
	my ($r, $want, $what) = @_;
	is($r->{status}, 200, "$what: status 200") or diag($r->{body});
	is_deeply($r->{json}, $want, "$what: body") or diag($r->{body});
}

my $NOW = time;
my $T0  = floor($NOW) - 3600;    # an hour ago: the device was offline

# ---- authentication and roles --------------------------------------------------------

{
	my ($ins) = fresh();
	my $before = counts();
	my $r = $t->request(POST => $PATH, json => { actions => [ qi_action($ins, 'pass', iso($T0)) ] });
	is($r->{status}, 401, 'a request without a token gets 401');
	is_deeply($r->{json}, { error => 'Unauthorized' }, 'with {"error":"Unauthorized"}');

	my $viewer = $t->make_user($org, 'viewer');
	$r = sync([ qi_action($ins, 'pass', iso($T0)) ], token => $viewer->{token});
	is($r->{status}, 403, 'a viewer gets 403');
	is_deeply($r->{json}, { error => 'Scanner access requires QA Inspector role' },
		"with the spec's role message");
	changed($before, 'nothing is applied or queued for an unauthorised caller');

	$r = $t->request(GET => $PATH, token => $inspector->{token});
	is($r->{status}, 405, 'GET is not allowed');
}

# ---- batch validation ----------------------------------------------------------------------

sub batch_invalid {
	my ($body, $details, $what) = @_;
	subtest $what => sub {
		my $before = counts();
		my $r = ref $body
			? $t->request(POST => $PATH, token => $inspector->{token}, json => $body)
			: $t->request(POST => $PATH, token => $inspector->{token}, body => $body,
				headers => { 'Content-Type' => 'application/json' });
		is($r->{status}, 400, 'status 400');
		is($r->{json}{error}, 'Validation failed', '"Validation failed"');
		is_deeply($r->{json}{details}, $details, 'details name each failing path') or diag($r->{body});
		changed($before, 'nothing is applied, nothing is queued');
	};
}

{
	my ($ins) = fresh();
	my @ok = map { qi_action($ins, 'pass', iso($T0 + $_)) } 0 .. 2;

	batch_invalid({}, [ { field => 'actions', message => 'Required' } ], 'a body without actions');
	batch_invalid([], [ { field => '', message => 'Expected object, received array' } ], 'a body that is an array');
	batch_invalid({ actions => 'all' }, [ { field => 'actions', message => 'Expected array, received string' } ],
		'actions that are not an array');
	batch_invalid({ actions => [] }, [ { field => 'actions', message => 'Array must contain at least 1 element(s)' } ],
		'an empty batch');
	batch_invalid({ actions => [ map { qi_action($ins, 'pass', iso($T0)) } 1 .. 101 ] },
		[ { field => 'actions', message => 'Array must contain at most 100 element(s)' } ],
		'101 actions are rejected as a whole');
	batch_invalid({ actions => [ @ok, { %{ qi_action($ins, 'pass', 'x') }, timestamp => '2025-01-23T10:30:00+02:00' } ] },
		[ { field => 'actions.3.timestamp', message => 'Invalid datetime' } ],
		'one bad timestamp (an offset) rejects the whole batch, valid actions included');
	batch_invalid({ actions => [ { %{ $ok[0] }, id => 'local-uuid-001' }, { %{ $ok[1] }, id => 'local-uuid-002' } ] },
		[ { field => 'actions.0.id', message => 'Invalid uuid' }, { field => 'actions.1.id', message => 'Invalid uuid' } ],
		"the spec's sample ids (local-uuid-001) fail the spec's own schema");
	batch_invalid({ actions => [ { %{ $ok[0] }, type => 'qa_status_update' } ] },
		[ { field => 'actions.0.type', message => "Expected 'quick_inspection' | 'test_result', received 'qa_status_update'" } ],
		'an unknown action type');
	batch_invalid({ actions => [ { %{ $ok[0] }, payload => 'pass' }, { %{ $ok[1] }, payload => [] }, { %{ $ok[2] }, payload => undef } ] },
		[ { field => 'actions.0.payload', message => 'Expected object, received string' },
		  { field => 'actions.1.payload', message => 'Expected object, received array' },
		  { field => 'actions.2.payload', message => 'Expected object, received null' } ],
		'payloads that are not objects');
	batch_invalid({ actions => [ {}, 7 ] },
		[ { field => 'actions.0.id', message => 'Required' }, { field => 'actions.0.type', message => 'Required' },
		  { field => 'actions.0.payload', message => 'Required' }, { field => 'actions.0.timestamp', message => 'Required' },
		  { field => 'actions.1', message => 'Expected object, received number' } ],
		'an empty action and one that is not an object, every field in schema order');
	batch_invalid({ actions => [ { id => 5, type => 5, payload => {}, timestamp => 5 } ] },
		[ { field => 'actions.0.id', message => 'Expected string, received number' },
		  { field => 'actions.0.type', message => "Expected 'quick_inspection' | 'test_result', received number" },
		  { field => 'actions.0.timestamp', message => 'Expected string, received number' } ],
		'wrong JSON types');
	for my $bad ('2025-01-23T10:30.5Z', '2025-01-23T10:30:00+00:00', '2025-01-23 10:30:00Z', '2025-01-23T10:30:00z', '2025-02-29T10:30:00Z',
		'2025-01-23T10:30:00.Z', '2025-01-23T24:00:00Z', '2025-01-23') {
		batch_invalid({ actions => [ { %{ $ok[0] }, timestamp => $bad } ] },
			[ { field => 'actions.0.timestamp', message => 'Invalid datetime' } ], "timestamp '$bad' is not a Zod datetime");
	}
	batch_invalid('{"actions":[', [ { field => '', message => 'Invalid JSON: unexpected end of input' } ],
		'a truncated body');

	is(inspection($ins)->{status}, 'in_progress', 'the inspection of all these batches is still in progress');
}

{
	# Zod 3.25 accepts a datetime without seconds (since 3.24.4): a device whose
	# clock library writes minute precision must be able to sync.
	my ($ins, $lp) = fresh();
	my $minute = strftime('%Y-%m-%dT%H:%MZ', gmtime $T0);
	my $before = counts();
	json_ok(sync([ qi_action($ins, 'pass', $minute) ]), { success => 1, failed => 0, errors => [] },
		"an action timestamped to the minute ($minute) syncs");
	changed($before, 'and is applied', completed => 1, lp_changed => 1, audit => 1, q_synced => 1);
	is(utc(inspection($ins)->{completed_at}), strftime('%Y-%m-%dT%H:%M:00.000000Z', gmtime $T0),
		'completed_at is that minute');
}

# ---- the spec's example ----------------------------------------------------------------

{
	my ($a, $lpa) = fresh();
	my ($b, $lpb) = fresh();
	my $ta = $T0 + 0.123;
	my $tb = $T0 + 300;
	my @actions = (
		qi_action($a, 'pass', iso($ta), scanner_device_id => 'ZEBRA-TC52-001'),
		qi_action($b, 'fail', iso($tb), result_notes => 'Contamination detected', defects_found => 1,
			scanner_location => '52.52,13.40'),
	);
	my $before = counts();
	my $start = $t->one('SELECT now()');
	my $r = sync(\@actions);
	json_ok($r, { success => 2, failed => 0, errors => [] }, "the spec's two-action batch syncs");
	changed($before, 'two inspections completed, two LPs, two audit rows, two synced queue rows',
		completed => 2, lp_changed => 2, audit => 2, q_synced => 2);

	my $ia = inspection($a);
	is($ia->{status}, 'completed', 'the first inspection is completed');
	is($ia->{result}, 'pass', 'with result pass');
	is($ia->{inspection_method}, 'scanner', "inspection_method 'scanner'");
	is($ia->{scanner_device_id}, 'ZEBRA-TC52-001', 'the device id is kept');
	is($ia->{completed_by}, $inspector->{id}, 'completed by the syncing inspector');
	is(utc($ia->{completed_at}), $t->one(q{SELECT to_char(?::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')}, iso($ta)),
		'completed_at is the time the inspector did it, to the millisecond sent');
	is(lp_status($lpa), 'passed', 'its LP is passed');

	my $ib = inspection($b);
	is($ib->{result}, 'fail', 'the second inspection failed');
	is($ib->{result_notes}, 'Contamination detected', 'with its notes');
	is($ib->{defects_found}, 1, 'and its defect count');
	is($ib->{scanner_location}, '52.52,13.40', 'and its location');
	is(lp_status($lpb), 'failed', 'its LP is failed');

	my $audit = audit_rows($a);
	is(scalar @$audit, 1, 'one audit row for the first inspection');
	is($audit->[0]{action}, 'scanner_complete', "action 'scanner_complete', as online");
	is($audit->[0]{user_id}, $inspector->{id}, 'by the inspector');
	is_deeply($audit->[0]{old_value}, { status => 'in_progress', result => undef }, 'old value');
	is_deeply($audit->[0]{new_value}, { status => 'completed', result => 'pass' }, 'new value');
	is($audit->[0]{change_reason}, 'Scanner quick pass', 'change reason');
	my $m = $audit->[0]{metadata};
	ok($m->{offline_queued} && JSON::PP::is_bool($m->{offline_queued}), 'metadata offline_queued is true');
	is($m->{device_id}, 'ZEBRA-TC52-001', 'metadata device_id');
	is($m->{inspection_method}, 'scanner', 'metadata inspection_method');
	my $delay = floor($t->one('SELECT extract(epoch FROM ?::timestamptz)', $start) - $ta);
	ok($m->{sync_delay_seconds} >= $delay && $m->{sync_delay_seconds} <= $delay + 5,
		"sync_delay_seconds is the whole seconds since the action ($m->{sync_delay_seconds}, about $delay)");
	is($m->{sync_delay_seconds}, int $m->{sync_delay_seconds}, 'sync_delay_seconds is whole');
	my $mb = audit_rows($b)->[0];
	is($mb->{change_reason}, 'Scanner quick fail', 'the failed one has "Scanner quick fail"');
	is($mb->{metadata}{device_id}, undef, 'a payload without scanner_device_id gives device_id null');

	for my $i (0, 1) {
		my $q = queue_rows($actions[$i]{id});
		is(scalar @$q, 1, "action $i has one queue row");
		is($q->[0]{sync_status}, 'synced', "action $i is 'synced'");
		is($q->[0]{org_id}, $org, "action $i is queued under the caller's organization");
		is($q->[0]{user_id}, $inspector->{id}, "action $i names the syncing user");
		is($q->[0]{action_type}, 'quick_inspection', "action $i has its type");
		is_deeply($q->[0]{action_payload}, $actions[$i], "action $i is stored complete: id, type, payload, timestamp");
		is($q->[0]{error_message}, undef, "action $i has no error message");
	}
	is(queue_rows($actions[0]{id})->[0]{device_id}, 'ZEBRA-TC52-001', "the queue row names the payload's scanner_device_id");
	is(queue_rows($actions[1]{id})->[0]{device_id}, undef, 'or NULL without one');
	is(queue_rows($actions[0]{id})->[0]{created_at_local}, utc(iso($ta)), 'created_at_local is the device time');

	# The spec's partial failure example: a new action on an already completed inspection.
	my $again = qi_action($b, 'pass', iso($T0 + 600));
	my ($c) = fresh();
	$before = counts();
	$r = sync([ qi_action($c, 'pass', iso($T0 + 500)), $again ]);
	json_ok($r, { success => 1, failed => 1, errors => [ { action_id => $again->{id}, error => 'Inspection already completed' } ] },
		'a different action on a completed inspection fails, the other syncs');
	changed($before, 'one completion and its failed neighbour are queued',
		completed => 1, lp_changed => 1, audit => 1, q_synced => 1, q_failed => 1);
	is(inspection($b)->{result}, 'fail', 'the completed inspection keeps its result');
	is(scalar @{ audit_rows($b) }, 1, 'and gets no second audit row');
	is(queue_rows($again->{id})->[0]{error_message}, 'Inspection already completed', 'its queue row says why');
}

# ---- completed_at and sync_delay_seconds --------------------------------------------------

{
	my ($past) = fresh();
	my ($future) = fresh();
	my $fine = '2025-01-23T10:30:00.123456789Z';
	my $before = counts();
	my $r = sync([ qi_action($past, 'pass', $fine), qi_action($future, 'pass', iso(time + 86400)) ]);
	my $after_req = $t->one('SELECT now()');
	json_ok($r, { success => 2, failed => 0, errors => [] }, 'a nanosecond timestamp and a future one are accepted');
	changed($before, 'both complete', completed => 2, lp_changed => 2, audit => 2, q_synced => 2);
	is(utc(inspection($past)->{completed_at}), '2025-01-23T10:30:00.123456Z',
		'completed_at keeps the microseconds of a nanosecond timestamp');
	my $f = inspection($future);
	ok($t->one('SELECT ?::timestamptz <= ?::timestamptz', $f->{completed_at}, $after_req),
		'a completion time in the future is clamped to the server time');
	is(audit_rows($future)->[0]{metadata}{sync_delay_seconds}, 0, 'and its sync delay is 0, never negative');
	my $d = audit_rows($past)->[0]{metadata}{sync_delay_seconds};
	my $want = floor($t->one(q{SELECT extract(epoch FROM now() - '2025-01-23T10:30:00.123456Z'::timestamptz)}));
	ok($d <= $want && $d >= $want - 60, "a delay of many days is counted in whole seconds ($d)");

	my ($first) = fresh();
	my ($last) = fresh();
	$before = counts();
	$r = sync([ qi_action($first, 'pass', '0000-01-01T00:00:00Z'), qi_action($last, 'pass', '9999-12-31T23:59:59.999999Z') ]);
	json_ok($r, { success => 2, failed => 0, errors => [] }, 'the extreme years Zod accepts are stored');
	changed($before, 'both complete', completed => 2, lp_changed => 2, audit => 2, q_synced => 2);
	is($t->one(q{SELECT to_char(completed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS BC') FROM quality_inspections WHERE id = ?}, $first),
		'0001-01-01 00:00:00 BC', 'year 0000 is 1 BC');
	ok($t->one('SELECT completed_at <= now() FROM quality_inspections WHERE id = ?', $last), 'year 9999 is clamped to now');
}

# ---- chronological order ------------------------------------------------------------------

{
	my ($ins, $lp) = fresh();
	my ($x) = fresh();
	my ($y) = fresh();
	my $later   = qi_action($ins, 'fail', iso($T0 + 120), result_notes => 'second look');
	my $earlier = qi_action($ins, 'pass', iso($T0 + 60));
	my $xa      = qi_action($x, 'pass', iso($T0 + 300));
	my $ya      = qi_action($y, 'fail', iso($T0 + 30));
	my $before = counts();
	my $r = sync([ $xa, $later, $earlier, $ya ]);
	json_ok($r, { success => 3, failed => 1, errors => [ { action_id => $later->{id}, error => 'Inspection already completed' } ] },
		'unsorted input: the later action on the same inspection is the one that fails');
	changed($before, 'three completions, one failure queued', completed => 3, lp_changed => 3, audit => 3, q_synced => 3, q_failed => 1);
	is(inspection($ins)->{result}, 'pass', 'the earlier (pass) action was applied, though sent second');
	is(lp_status($lp), 'passed', 'its LP follows the earlier action');
	my @order = map { $_->{entity_id} } @{ $t->rows(q{SELECT entity_id FROM quality_audit_log
		WHERE entity_id IN (?, ?, ?) ORDER BY id}, $x, $ins, $y) };
	is_deeply(\@order, [ $y, $ins, $x ], 'audit rows were written oldest action first');

	my ($same, $slp) = fresh();
	my $first  = qi_action($same, 'fail', iso($T0 + 900));
	my $second = qi_action($same, 'pass', iso($T0 + 900));
	$before = counts();
	$r = sync([ $first, $second ]);
	json_ok($r, { success => 1, failed => 1, errors => [ { action_id => $second->{id}, error => 'Inspection already completed' } ] },
		'equal timestamps keep the array order');
	is(inspection($same)->{result}, 'fail', 'the first in the array wins a tie');
	changed($before, 'one completion, one failure', completed => 1, lp_changed => 1, audit => 1, q_synced => 1, q_failed => 1);
}

# ---- partial failure, and a queue row for every outcome ---------------------------------

{
	my ($ok1, $lp1) = fresh();
	my ($ok2, $lp2) = fresh();
	my ($theirs, $their_lp) = fresh($other);
	my ($done) = fresh();
	my ($badp) = fresh();
	$t->dbh->do(q{UPDATE quality_inspections SET status = 'completed', result = 'pass', completed_at = now() - interval '1 day'
		WHERE id = ?}, undef, $done);
	my @a = (
		qi_action($ok1, 'pass', iso($T0 + 1), scanner_device_id => 'DEV-1'),          # synced
		qi_action(uuid(), 'pass', iso($T0 + 2)),                                       # no such inspection
		qi_action($theirs, 'fail', iso($T0 + 3)),                                      # another org's
		qi_action($done, 'fail', iso($T0 + 4)),                                        # already completed
		qi_action($badp, 'maybe', iso($T0 + 5), scanner_device_id => 'DEV-2'),         # invalid payload
		{ id => uuid(), type => 'quick_inspection', timestamp => iso($T0 + 6),
		  payload => { inspection_id => 'nope', scanner_device_id => 17 } },          # several errors
		qi_action($ok2, 'fail', iso($T0 + 7)),                                         # synced
	);
	$a[7] = { %{ $a[0] } };                                                            # same action again: duplicate
	my $before = counts();
	my $r = sync(\@a);
	json_ok($r, { success => 3, failed => 5, errors => [
		{ action_id => $a[1]{id}, error => 'Inspection not found' },
		{ action_id => $a[2]{id}, error => 'Inspection not found' },
		{ action_id => $a[3]{id}, error => 'Inspection already completed' },
		{ action_id => $a[4]{id}, error => "Validation failed: payload.result: Expected 'pass' | 'fail', received 'maybe'" },
		{ action_id => $a[5]{id}, error => 'Validation failed: payload.inspection_id: Invalid inspection ID' },
	] }, 'a mixed batch: each failure has its message, the rest syncs (a repeated id counts as success)');
	changed($before, 'two completions; every action queued',
		completed => 2, lp_changed => 2, audit => 2, q_synced => 2, q_duplicate => 1, q_failed => 5);

	is_deeply(queue_statuses($a[0]{id}), [ 'synced', 'duplicate' ], 'the repeated action id is synced once, then a duplicate');
	my %want = (1 => 'Inspection not found', 2 => 'Inspection not found', 3 => 'Inspection already completed',
		4 => "Validation failed: payload.result: Expected 'pass' | 'fail', received 'maybe'",
		5 => 'Validation failed: payload.inspection_id: Invalid inspection ID');
	for my $i (sort keys %want) {
		my $q = queue_rows($a[$i]{id});
		is(scalar @$q, 1, "failed action $i has one queue row");
		is($q->[0]{sync_status}, 'failed', "failed action $i is queued as failed");
		is($q->[0]{error_message}, $want{$i}, "failed action ${i}'s queue row says: $want{$i}");
		is($q->[0]{org_id}, $org, "failed action $i is queued under the caller's organization");
		is_deeply($q->[0]{action_payload}, $a[$i], "failed action $i is stored complete");
	}
	is(queue_rows($a[4]{id})->[0]{device_id}, 'DEV-2', 'a rejected payload still names its device');
	is(queue_rows($a[5]{id})->[0]{device_id}, undef, 'a device id that is not a string is stored as NULL');
	is(inspection($theirs)->{status}, 'in_progress', "the other organization's inspection is untouched");
	is(lp_status($their_lp), 'pending', 'and so is its LP');
	is(scalar @{ audit_rows($theirs) }, 0, 'with no audit row');
	is(inspection($badp)->{status}, 'in_progress', 'the inspection of the invalid payload is untouched');
	is(inspection($done)->{result}, 'pass', 'the completed inspection keeps its result');
	is(lp_status($lp1), 'passed', 'the first synced action changed its LP');
	is(lp_status($lp2), 'failed', 'and so did the last');
	is(scalar @{ audit_rows($ok1) }, 1, 'the duplicate wrote no second audit row');
}

{
	# The first error names the value it received; a long one is cut, at a character boundary.
	my ($ins) = fresh();
	my $a = qi_action($ins, "\x{e9}" x 600, iso($T0));
	my $before = counts();
	my $r = sync([ $a ]);
	is($r->{status}, 200, 'a payload with a very long invalid value is answered');
	ok($r->{json}, 'in valid UTF-8 JSON');
	my $err = $r->{json}{errors}[0]{error} // '';
	like($err, qr/^Validation failed: payload\.result: Expected 'pass' \| 'fail', received '\x{e9}+$/,
		'the error is cut short after whole characters');
	ok(length $err < 512, 'and stays short (' . length($err) . ' characters)');
	changed($before, 'its failure is queued', q_failed => 1);
	is(queue_rows($a->{id})->[0]{error_message}, $err, 'with the same message');
}

# ---- replaying a batch ------------------------------------------------------------------

{
	my @ins = map { [ fresh() ] } 1 .. 5;
	my @a = map { qi_action($ins[$_][0], $_ % 2 ? 'fail' : 'pass', iso($T0 + 10 * $_)) } 0 .. 4;
	push @a, qi_action(uuid(), 'pass', iso($T0 + 100));
	my $before = counts();
	my $r = sync(\@a);
	my $want = { success => 5, failed => 1, errors => [ { action_id => $a[5]{id}, error => 'Inspection not found' } ] };
	json_ok($r, $want, 'the first sync of a batch');
	changed($before, 'five completions', completed => 5, lp_changed => 5, audit => 5, q_synced => 5, q_failed => 1);
	my %completed = map { $_->[0] => inspection($_->[0])->{completed_at} } @ins;

	$before = counts();
	$r = sync(\@a);
	json_ok($r, $want, 'resending the whole batch gives the same answer (duplicates count as success)');
	changed($before, 'the replay applies nothing: five duplicate rows, one more failed row, no audit rows',
		q_duplicate => 5, q_failed => 1);
	is_deeply(queue_statuses($a[$_]{id}), [ 'synced', 'duplicate' ], "action $_: synced, then duplicate") for 0 .. 4;
	is_deeply(queue_statuses($a[5]{id}), [ 'failed', 'failed' ], 'the failing action fails again');
	is(inspection($_->[0])->{completed_at}, $completed{ $_->[0] }, 'completed_at is unchanged by the replay') for @ins[0, 4];
	is(scalar @{ audit_rows($ins[$_][0]) }, 1, "inspection $_ has exactly one audit row") for 0 .. 4;

	# The replay may come from another user of the organization, with upper-case ids.
	$before = counts();
	$r = sync([ { %{ $a[0] }, id => uc $a[0]{id} } ], token => $manager->{token});
	json_ok($r, { success => 1, failed => 0, errors => [] }, 'a replay by another user of the organization is a duplicate too');
	changed($before, 'one more duplicate row', q_duplicate => 1);

	# A synced id sent again with a payload that fails validation: the payload is judged first.
	my $reused = { %{ $a[1] }, payload => { %{ $a[1]{payload} }, result => 'maybe' } };
	$before = counts();
	$r = sync([ $reused ]);
	json_ok($r, { success => 0, failed => 1, errors => [ { action_id => $a[1]{id},
		error => "Validation failed: payload.result: Expected 'pass' | 'fail', received 'maybe'" } ] },
		'a synced id with an invalid payload fails validation rather than counting as a duplicate');
	changed($before, 'only a failed queue row', q_failed => 1);

	# Another organization using the same action id is a different action.
	my ($theirs) = fresh($other);
	$before = counts();
	$r = sync([ qi_action($theirs, 'pass', iso($T0), id => $a[0]{id}) ], token => $rival->{token});
	json_ok($r, { success => 1, failed => 0, errors => [] }, "another organization's action with the same id is applied");
	changed($before, 'and synced in that organization', completed => 1, lp_changed => 1, audit => 1, q_synced => 1);
}

# ---- an action id used again for a different action ---------------------------------------

{
	# A device bug, a restored backup or a cloned device image: the id of a synced
	# action comes back with another action under it. It must fail, not pass as a
	# duplicate with the inspector's result silently dropped.
	my ($ins) = fresh();
	my $id = uuid();
	my $weight = tr_action($ins, 'Weight check', 'pass', '2025-01-23T10:30:00.000Z', id => $id,
		measured_value => 12.5, unit => 'kg');
	my $seal = tr_action($ins, 'Seal intact', 'fail', '2025-01-23T10:31:00.000Z', id => $id);
	my $before = counts();
	json_ok(sync([ $weight ]), { success => 1, failed => 0, errors => [] }, 'the first test result syncs');
	changed($before, 'one test result, its audit row and queue row', tests => 1, audit => 1, q_synced => 1);

	$before = counts();
	json_ok(sync([ $seal ]), { success => 0, failed => 1, errors => [
		{ action_id => $id, error => 'Action id already used for a different action' } ] },
		'a different action under a synced id fails, and says why');
	changed($before, 'nothing is applied; one failed queue row', q_failed => 1);
	my $q = queue_rows($id);
	is_deeply([ map { $_->{sync_status} } @$q ], [ 'synced', 'failed' ], 'the queue shows the sync, then the refusal');
	is($q->[1]{error_message}, 'Action id already used for a different action', 'the failed queue row says why');
	is_deeply($q->[1]{action_payload}, $seal, 'and holds the refused action as sent, so it can be recovered');
	is_deeply($t->rows('SELECT test_name, result FROM quality_test_results WHERE inspection_id = ?', $ins),
		[ { test_name => 'Weight check', result => 'pass' } ], 'only the first test result is recorded');

	# Each part of the action counts: the type, any payload field, the timestamp.
	for my $variant (
		[ 'another timestamp', { %$weight, timestamp => '2025-01-23T10:30:01.000Z' } ],
		[ 'another measured value', { %$weight, payload => { %{ $weight->{payload} }, measured_value => 12.6 } } ],
		[ 'an extra payload field', { %$weight, payload => { %{ $weight->{payload} }, notes => 'x' } } ],
		[ 'another type', { %$weight, type => 'quick_inspection',
			payload => { inspection_id => $ins, result => 'pass', inspection_method => 'scanner' } } ],
	) {
		my ($what, $action) = @$variant;
		$before = counts();
		json_ok(sync([ $action ]), { success => 0, failed => 1, errors => [
			{ action_id => $id, error => 'Action id already used for a different action' } ] },
			"the same id with $what is a different action");
		changed($before, "$what: nothing applied, one failed queue row", q_failed => 1);
	}
	is(inspection($ins)->{status}, 'in_progress', 'the quick inspection under the reused id was not applied');

	# The same action, written differently: keys in another order, other spacing,
	# minute-precision or more fraction digits in the timestamp, 12.50 for 12.5,
	# escaped characters. JSON.parse (and so the reference) cannot tell these apart.
	for my $body (
		qq({"actions":[{"timestamp":"2025-01-23T10:30Z","payload":{"unit":"kg","measured_value":12.50,) .
			qq("result":"pass","test_name":"Weight check","inspection_id":"$ins"},"type":"test_result","id":"$id"}]}),
		qq({ "actions" : [ { "id" : "\U$id\E", "type" : "test_result", "timestamp" : "2025-01-23T10:30:00.000000Z",) .
			qq( "payload" : { "inspection_id" : "$ins", "test_name" : "Weight \\u0063heck", "result" : "pass",) .
			qq( "measured_value" : 1.25e1, "unit" : "kg" } } ] }),
	) {
		$before = counts();
		my $r = $t->request(POST => $PATH, token => $inspector->{token}, body => $body,
			headers => { 'Content-Type' => 'application/json' });
		json_ok($r, { success => 1, failed => 0, errors => [] }, 'the same action written differently is a duplicate');
		changed($before, 'a duplicate queue row, nothing applied', q_duplicate => 1);
	}
	is($t->one('SELECT count(*) FROM quality_test_results WHERE inspection_id = ?', $ins), 1,
		'still one test result');
}

{
	# A reused id with a different action, inside one batch: the first is applied,
	# the second fails.
	my ($ins1) = fresh();
	my ($ins2) = fresh();
	my $id = uuid();
	my @a = (qi_action($ins1, 'pass', iso($T0 + 1), id => $id), qi_action($ins2, 'fail', iso($T0 + 2), id => $id));
	my $before = counts();
	json_ok(sync(\@a), { success => 1, failed => 1, errors => [
		{ action_id => $id, error => 'Action id already used for a different action' } ] },
		'two different actions with one id in a batch: the older is applied, the other fails');
	changed($before, 'one completion, one synced and one failed queue row',
		completed => 1, lp_changed => 1, audit => 1, q_synced => 1, q_failed => 1);
	is(inspection($ins2)->{status}, 'in_progress', 'the second inspection is untouched');
}

# ---- concurrent replay from two connections ----------------------------------------------

{
	my @ins = map { [ fresh() ] } 1 .. 40;
	my @a = map { qi_action($ins[$_][0], 'pass', iso($T0 + $_)) } 0 .. 39;
	push @a, tr_action($ins[0][0], 'weight', 'pass', iso($T0 - 1), measured_value => 9.5, unit => 'kg');
	my $before = counts();
	# Both copies start by waiting for the first action's advisory lock, held here,
	# so that they really run side by side once it is released.
	my $holder = $t->_connect('postgres');
	$holder->do('SELECT pg_advisory_lock(hashtext(?), hashtext(?))', undef, $org, $a[-1]{id});
	my $s1 = $t->request_start(POST => $PATH, token => $inspector->{token}, json => { actions => \@a });
	my $s2 = $t->request_start(POST => $PATH, token => $manager->{token}, json => { actions => \@a });
	my $waiting = 0;
	for (1 .. 100) {
		$waiting = $t->one(q{SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted});
		last if $waiting == 2;
		sleep 0.01;
	}
	is($waiting, 2, 'both copies wait for the first action at the same time');
	$holder->do('SELECT pg_advisory_unlock(hashtext(?), hashtext(?))', undef, $org, $a[-1]{id});
	$holder->disconnect;
	my $r1 = $t->request_finish($s1);
	my $r2 = $t->request_finish($s2);
	json_ok($r1, { success => 41, failed => 0, errors => [] }, 'the first of two concurrent copies succeeds');
	json_ok($r2, { success => 41, failed => 0, errors => [] }, 'so does the second');
	changed($before, 'every action is applied exactly once; the other copy is a duplicate',
		completed => 40, lp_changed => 40, audit => 41, tests => 1, q_synced => 41, q_duplicate => 41);
	my $bad = 0;
	for my $x (@a) {
		my @s = sort @{ queue_statuses($x->{id}) };
		$bad++ unless "@s" eq 'duplicate synced';
	}
	is($bad, 0, 'each action has exactly one synced and one duplicate queue row');
	note(sprintf 'synced by the first copy: %d, by the second: %d',
		map { $t->one(q{SELECT count(*) FROM scanner_offline_queue WHERE sync_status = 'synced'
			AND user_id = ? AND (action_payload->>'id')::uuid = ANY (?::uuid[])}, $_, [ map { $_->{id} } @a ]) } $inspector->{id}, $manager->{id});
	is($t->one('SELECT count(*) FROM quality_test_results WHERE inspection_id = ?', $ins[0][0]), 1,
		'the test result is recorded once');
}

# ---- 100 actions --------------------------------------------------------------------------

{
	my @ins = map { [ fresh() ] } 1 .. 100;
	my @a = map { qi_action($ins[$_][0], 'pass', iso($T0 + $_)) } 0 .. 99;
	my $before = counts();
	my $t0 = time;
	my $r = sync(\@a);
	my $ms = (time - $t0) * 1000;
	json_ok($r, { success => 100, failed => 0, errors => [] }, '100 actions are accepted');
	changed($before, 'all 100 are applied and queued', completed => 100, lp_changed => 100, audit => 100, q_synced => 100);
	note(sprintf '100-action batch took %.1f ms end to end', $ms);
}

# ---- test_result actions, mixed with quick inspections ---------------------------------

{
	my ($ins, $lp) = fresh();
	my ($theirs) = fresh($other);
	my $before_t = tr_action($ins, 'Core temperature', 'pass', iso($T0 + 10),
		measured_value => -18.25, unit => '°C', notes => 'probe 2', scanner_device_id => 'ZEBRA-TC52-007');
	my $plain    = tr_action($ins, 'Seal check', 'fail', iso($T0 + 11));
	my $complete = qi_action($ins, 'pass', iso($T0 + 20));
	my $after_t  = tr_action($ins, 'Weight', 'pass', iso($T0 + 30), measured_value => 12);
	my $invalid  = tr_action($ins, '', 'ok', iso($T0 + 5), unit => 'x' x 21);
	my $foreign  = tr_action($theirs, 'Weight', 'pass', iso($T0 + 6));
	my $before = counts();
	my $r = sync([ $after_t, $complete, $invalid, $plain, $before_t, $foreign ]);
	json_ok($r, { success => 3, failed => 3, errors => [
		{ action_id => $invalid->{id}, error => 'Validation failed: payload.test_name: String must contain at least 1 character(s)' },
		{ action_id => $foreign->{id}, error => 'Inspection not found' },
		{ action_id => $after_t->{id}, error => 'Inspection already completed' },
	] }, 'mixed types run in time order: tests before the completion are recorded, the one after fails');
	changed($before, 'two test results and one completion, each with an audit row; six queue rows',
		tests => 2, completed => 1, lp_changed => 1, audit => 3, q_synced => 3, q_failed => 3);

	my $rows = $t->rows(q{SELECT org_id, test_name, result, measured_value, unit, notes, device_id,
		to_char(tested_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS tested_at, recorded_by, source_action_id
		FROM quality_test_results WHERE inspection_id = ? ORDER BY tested_at}, $ins);
	is_deeply($rows, [
		{ org_id => $org, test_name => 'Core temperature', result => 'pass', measured_value => -18.25, unit => '°C',
		  notes => 'probe 2', device_id => 'ZEBRA-TC52-007', tested_at => utc(iso($T0 + 10)),
		  recorded_by => $inspector->{id}, source_action_id => $before_t->{id} },
		{ org_id => $org, test_name => 'Seal check', result => 'fail', measured_value => undef, unit => undef,
		  notes => undef, device_id => undef, tested_at => utc(iso($T0 + 11)),
		  recorded_by => $inspector->{id}, source_action_id => $plain->{id} },
	], 'the test results are recorded with every field');

	my @audit = @{ audit_rows($ins) };
	is_deeply([ map { $_->{action} } @audit ], [ 'scanner_test_result', 'scanner_test_result', 'scanner_complete' ],
		'audit: two test results, then the completion, in time order');
	is_deeply($audit[0]{new_value}{test_name}, 'Core temperature', 'the test audit row names the test');
	is($audit[0]{new_value}{measured_value}, -18.25, 'and its measured value');
	is($audit[0]{change_reason}, 'Scanner test passed', 'change reason for a passed test');
	is($audit[1]{change_reason}, 'Scanner test failed', 'change reason for a failed test');
	is($audit[0]{metadata}{action_id}, $before_t->{id}, 'the test audit row names its action');
	ok($audit[0]{metadata}{offline_queued}, 'and is offline_queued');
	is($audit[0]{metadata}{device_id}, 'ZEBRA-TC52-007', 'with its device');
	is(queue_rows($before_t->{id})->[0]{action_type}, 'test_result', "the queue row has type 'test_result'");
	is(queue_rows($invalid->{id})->[0]{action_type}, 'test_result', 'so has the rejected one');
	is(lp_status($lp), 'passed', 'a test result does not change the LP; the completion does');
	is($t->one('SELECT count(*) FROM quality_test_results WHERE inspection_id = ?', $theirs), 0,
		"nothing is recorded on the other organization's inspection");

	my @cases = (
		[ { inspection_id => $ins, result => 'pass' }, 'payload.test_name: Required' ],
		[ { inspection_id => $ins, test_name => 'x' x 101, result => 'pass' }, 'payload.test_name: String must contain at most 100 character(s)' ],
		[ { inspection_id => $ins, test_name => 'pH', result => 'pass', measured_value => '7' }, 'payload.measured_value: Expected number, received string' ],
		[ { inspection_id => $ins, test_name => 'pH', result => 'pass', unit => 'x' x 21 }, 'payload.unit: String must contain at most 20 character(s)' ],
		[ { inspection_id => $ins, test_name => 'pH', result => 'pass', notes => 'n' x 2001 }, 'payload.notes: String must contain at most 2000 character(s)' ],
		[ { inspection_id => $ins, test_name => 'pH', result => 'pass', scanner_device_id => 'D' x 101 }, 'payload.scanner_device_id: String must contain at most 100 character(s)' ],
		[ { inspection_id => $ins, test_name => 'pH', result => 'ok' }, "payload.result: Expected 'pass' | 'fail', received 'ok'" ],
		[ { test_name => 'pH', result => 'pass' }, 'payload.inspection_id: Required' ],
	);
	for my $c (@cases) {
		my $a = { id => uuid(), type => 'test_result', timestamp => iso($T0), payload => $c->[0] };
		$before = counts();
		$r = sync([ $a ]);
		json_ok($r, { success => 0, failed => 1, errors => [ { action_id => $a->{id}, error => "Validation failed: $c->[1]" } ] },
			"test_result payload: $c->[1]");
		changed($before, 'only a failed queue row', q_failed => 1);
	}
}

# ---- an unexpected database error inside one action ---------------------------------------

{
	$t->dbh->do(q{CREATE FUNCTION t_explode() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'disk on fire'; END $$});
	$t->dbh->do(q{CREATE TRIGGER t_explode BEFORE UPDATE ON quality_inspections FOR EACH ROW
		WHEN (NEW.result_notes = 'explode') EXECUTE FUNCTION t_explode()});
	my ($i1, $lp1) = fresh();
	my ($i2) = fresh();
	my ($i3) = fresh();
	my @a = (qi_action($i1, 'pass', iso($T0 + 1), result_notes => 'explode'),
		qi_action($i2, 'pass', iso($T0 + 2)));
	my $before = counts();
	my $r = sync(\@a);
	json_ok($r, { success => 1, failed => 1, errors => [ { action_id => $a[0]{id}, error => 'Failed to update inspection' } ] },
		'an unexpected error fails only its own action, with the spec message');
	changed($before, 'the other action is applied; both are queued', completed => 1, lp_changed => 1, audit => 1,
		q_synced => 1, q_failed => 1);
	is(inspection($i1)->{status}, 'in_progress', 'the failed action left its inspection alone');
	is(lp_status($lp1), 'pending', 'and its LP');
	like(queue_rows($a[0]{id})->[0]{error_message}, qr/^Failed to update inspection \(P0001: disk on fire\)$/,
		'its queue row keeps the database error for debugging');
	like($t->daemon_log, qr/disk on fire/, 'and the daemon logs it');
	unlike($r->{body}, qr/disk on fire/, 'the client does not see it');
	$t->dbh->do('DROP TRIGGER t_explode ON quality_inspections');

	# A row lock held elsewhere: lock_timeout (1.5 s here) ends the wait.
	my $locker = $t->_connect('postgres');
	$locker->begin_work;
	$locker->do('SELECT 1 FROM quality_inspections WHERE id = ? FOR UPDATE', undef, $i3);
	my $busy = qi_action($i3, 'pass', iso($T0 + 3));
	$before = counts();
	$r = sync([ $busy ]);
	json_ok($r, { success => 0, failed => 1, errors => [ { action_id => $busy->{id}, error => 'Resource is busy, resend the batch' } ] },
		'an inspection locked elsewhere fails the action as busy');
	changed($before, 'only a failed queue row', q_failed => 1);
	like(queue_rows($busy->{id})->[0]{error_message}, qr/^Resource is busy, resend the batch \(55P03: /, 'queued with the lock error');
	$locker->rollback;
	$locker->disconnect;
	$before = counts();
	$r = sync([ $busy ]);
	json_ok($r, { success => 1, failed => 0, errors => [] }, 'resent after the lock is gone, it syncs');
	changed($before, 'and is applied', completed => 1, lp_changed => 1, audit => 1, q_synced => 1);
}

# ---- row level security on the queue and the test results -------------------------------

{
	my $app = $t->api_dbh;
	my $total = $t->one('SELECT count(*) FROM scanner_offline_queue WHERE org_id = ?', $org);
	ok($total > 0, "the organization has $total queue rows");
	is($app->selectrow_array('SELECT count(*) FROM scanner_offline_queue'), 0,
		'the daemon role without an organization setting sees no queue rows');
	$app->begin_work;
	$app->do(q{SELECT set_config('scanqa.org_id', ?, true)}, undef, $other);
	my $theirs = $app->selectrow_array('SELECT count(*) FROM scanner_offline_queue');
	is($theirs, $t->one('SELECT count(*) FROM scanner_offline_queue WHERE org_id = ?', $other),
		"with the other organization's setting it sees only that organization's rows");
	is($app->selectrow_array('SELECT count(*) FROM scanner_offline_queue WHERE org_id = ?', undef, $org), 0,
		"and none of this organization's");
	is($app->selectrow_array('SELECT count(*) FROM quality_test_results WHERE org_id = ?', undef, $org), 0,
		"nor its test results");
	ok(!eval { $app->do(q{INSERT INTO scanner_offline_queue (org_id, user_id, action_type, action_payload, sync_status)
		VALUES (?, ?, 'quick_inspection', '{}', 'failed')}, undef, $org, $inspector->{id}); 1 },
		"it cannot write a queue row for this organization");
	$app->rollback;
	$app->begin_work;
	$app->do(q{SELECT set_config('scanqa.org_id', ?, true)}, undef, $org);
	is($app->selectrow_array('SELECT count(*) FROM scanner_offline_queue'), $total,
		"with this organization's setting it sees exactly this organization's rows");
	ok(!eval { $app->do('UPDATE scanner_offline_queue SET sync_status = ?', undef, 'synced'); 1 },
		'the daemon role cannot rewrite queue rows');
	$app->rollback;
	$app->begin_work;
	$app->do(q{SELECT set_config('scanqa.org_id', ?, true)}, undef, $org);
	ok(!eval { $app->do('DELETE FROM scanner_offline_queue'); 1 }, 'nor delete them');
	$app->rollback;
}

is_deeply([ map { $_->{column_name} } @{ $t->rows(q{
	SELECT column_name FROM information_schema.columns
	WHERE table_name = 'scanner_offline_queue' ORDER BY ordinal_position}) } ],
	[ qw(id org_id user_id action_type action_payload device_id created_at_local synced_at sync_status error_message) ],
	'scanner_offline_queue has exactly the columns of the spec');

is($t->stop_daemon, 0, 'the daemon exits cleanly on SIGTERM');
is($t->daemon_errors, '', 'the daemon reported no memory errors');
is($t->nginx_alerts, '', 'nginx logged no alerts');
unlike($t->daemon_log, qr/\b(FATAL|CRIT|sent no response)\b/, 'the daemon logged nothing fatal');

done_testing;
