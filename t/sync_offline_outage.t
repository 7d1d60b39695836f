#!/usr/bin/perl
# sync_offline_outage.t: POST /api/v1/quality/scanner/sync-offline when the database
# goes away in the middle of a batch. What committed stays committed, the response
# says truthfully what became of every action (never a success for an action that
# did not commit), and resending the same batch afterwards completes it without
# applying anything twice.
#
# A test trigger makes one chosen action sleep inside its transaction (notes
# "sleep N"); while it sleeps the test kills its database session, stops
# PostgreSQL, or lets statement_timeout cancel it.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP;
use POSIX qw(floor strftime);
use Test::More;
use Time::HiRes qw(sleep time);

use ScanQA::Test;

my $PATH = '/api/v1/quality/scanner/sync-offline';

my $MSG_LOST     = 'Service unavailable: connection lost, not applied, resend the batch';
my $MSG_UNKNOWN  = 'Service unavailable: outcome unknown, resend the batch';
my $MSG_NOT_SENT = 'Service unavailable: not processed, resend the batch';
my $MSG_BUSY     = 'Resource is busy, resend the batch';

my $t = ScanQA::Test->new(conf => { workers => 2, statement_timeout => 4000 }, private_pg => 1);

my $org  = $t->make_org('Outage Org');
my $user = $t->make_user($org, 'qa_inspector');

sub uuid {
	my $h = join '', map { sprintf '%02x', int rand 256 } 1 .. 16;
	return join '-', substr($h, 0, 8), substr($h, 8, 4), '4' . substr($h, 13, 3), '9' . substr($h, 17, 3), substr($h, 20);
}

my $T0 = floor(time) - 600;
sub iso { strftime('%Y-%m-%dT%H:%M:%S.000Z', gmtime $_[0]) }

sub qi_action {
	my ($ins, $ts, %o) = @_;
	return { id => uuid(), type => 'quick_inspection', timestamp => iso($ts),
		payload => { inspection_id => $ins, result => 'pass', inspection_method => 'scanner', %o } };
}

sub fresh { my $lp = $t->make_lp($org); return ($t->make_inspection($org, $lp), $lp) }

sub install_sleeper {
	$t->dbh->do(q{CREATE OR REPLACE FUNCTION t_sleeper() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN PERFORM pg_sleep(split_part(NEW.result_notes, ' ', 2)::float8); RETURN NEW; END $$});
	$t->dbh->do(q{CREATE TRIGGER t_sleeper BEFORE UPDATE ON quality_inspections FOR EACH ROW
		WHEN (NEW.result_notes LIKE 'sleep %') EXECUTE FUNCTION t_sleeper()});
}
sub remove_sleeper { $t->dbh->do('DROP TRIGGER IF EXISTS t_sleeper ON quality_inspections') }

# The pid of the daemon's session that sleeps in the trigger, once it does.
sub sleeping_backend {
	my $deadline = time + 20;
	while (time < $deadline) {
		my $pid = $t->one(q{SELECT pid FROM pg_stat_activity
			WHERE usename = 'scanqa_app' AND wait_event = 'PgSleep'});
		return $pid if $pid;
		sleep 0.02;
	}
	return undef;
}

# What the database holds for one action: inspection status, audit rows, queue rows.
sub state_of {
	my ($action) = @_;
	my $ins = $action->{payload}{inspection_id};
	return {
		inspection => $t->one('SELECT status FROM quality_inspections WHERE id = ?', $ins),
		lp         => $t->one(q{SELECT l.qa_status FROM license_plates l JOIN quality_inspections i ON i.lp_id = l.id
			WHERE i.id = ?}, $ins),
		audit      => $t->one('SELECT count(*) FROM quality_audit_log WHERE entity_id = ?', $ins) + 0,
		queue      => [ map { $_->[0] } @{ $t->dbh->selectall_arrayref(q{SELECT sync_status FROM scanner_offline_queue
			WHERE action_payload->>'id' = ? ORDER BY synced_at}, undef, $action->{id}) } ],
	};
}
my %APPLIED = (inspection => 'completed', lp => 'passed', audit => 1);
my %UNTOUCHED = (inspection => 'in_progress', lp => 'pending', audit => 0);

sub json_ok {
	my ($r, $want, $what) = @_;
	is($r->{status}, 200, "$what: status 200") or diag($r->{body});
	is_deeply($r->{json}, $want, "$what: body") or diag($r->{body});
}

install_sleeper();

# ---- the session dies during an action, the database stays up -------------------------

{
	my @a = map { qi_action((fresh())[0], $T0 + $_) } 0 .. 2;
	$a[1]{payload}{result_notes} = 'sleep 3';
	my $s = $t->request_start(POST => $PATH, token => $user->{token}, json => { actions => \@a });
	my $pid = sleeping_backend();
	ok($pid, 'the second action sleeps inside its transaction');
	ok($t->one('SELECT pg_terminate_backend(?)', $pid), 'its database session is terminated');
	my $r = $t->request_finish($s);
	json_ok($r, { success => 2, failed => 1, errors => [ { action_id => $a[1]{id}, error => $MSG_LOST } ] },
		'after reconnecting the daemon reports the lost action as not applied, and goes on');
	is_deeply(state_of($a[0]), { %APPLIED, queue => [ 'synced' ] }, 'the action before it is committed');
	is_deeply(state_of($a[1]), { %UNTOUCHED, queue => [ 'failed' ] }, 'the lost action is not applied, and is queued as failed');
	is($t->one(q{SELECT error_message FROM scanner_offline_queue WHERE action_payload->>'id' = ?}, $a[1]{id}), $MSG_LOST,
		'with the message the client got');
	is_deeply(state_of($a[2]), { %APPLIED, queue => [ 'synced' ] }, 'the action after it is committed too');

	delete $a[1]{payload}{result_notes};
	$r = $t->request(POST => $PATH, token => $user->{token}, json => { actions => \@a });
	json_ok($r, { success => 3, failed => 0, errors => [] }, 'resending the batch completes it');
	is_deeply(state_of($a[0]), { %APPLIED, queue => [ 'synced', 'duplicate' ] }, 'the first action is not applied twice');
	is_deeply(state_of($a[1]), { %APPLIED, queue => [ 'failed', 'synced' ] }, 'the lost action is applied now');
	is_deeply(state_of($a[2]), { %APPLIED, queue => [ 'synced', 'duplicate' ] }, 'the last action is not applied twice');
}

# ---- statement_timeout cancels an action ------------------------------------------------

{
	my @a = map { qi_action((fresh())[0], $T0 + 10 + $_) } 0 .. 1;
	$a[0]{payload}{result_notes} = 'sleep 30';
	my $r = $t->request(POST => $PATH, token => $user->{token}, json => { actions => \@a });
	json_ok($r, { success => 1, failed => 1, errors => [ { action_id => $a[0]{id}, error => $MSG_BUSY } ] },
		'an action cancelled by statement_timeout fails as busy; the next one runs');
	is_deeply(state_of($a[0]), { %UNTOUCHED, queue => [ 'failed' ] }, 'the cancelled action is rolled back and queued as failed');
	like($t->one(q{SELECT error_message FROM scanner_offline_queue WHERE action_payload->>'id' = ?}, $a[0]{id}),
		qr/^\Q$MSG_BUSY\E \(57014: canceling statement due to statement timeout\)$/, 'its queue row gives the reason');
	is_deeply(state_of($a[1]), { %APPLIED, queue => [ 'synced' ] }, 'the next action is committed');
}

# ---- PostgreSQL stops during an action -------------------------------------------------------

{
	my @a = map { qi_action((fresh())[0], $T0 + 20 + $_) } 0 .. 3;
	$a[1]{payload}{result_notes} = 'sleep 5';
	my $s = $t->request_start(POST => $PATH, token => $user->{token}, json => { actions => \@a });
	ok(sleeping_backend(), 'the second action sleeps inside its transaction');
	$t->stop_pg;
	my $r = $t->request_finish($s);
	json_ok($r, { success => 1, failed => 3, errors => [
		{ action_id => $a[1]{id}, error => $MSG_UNKNOWN },
		{ action_id => $a[2]{id}, error => $MSG_NOT_SENT },
		{ action_id => $a[3]{id}, error => $MSG_NOT_SENT },
	] }, 'with the database gone: one success, the interrupted action unknown, the rest not processed');

	$t->start_pg;
	ok($t->wait_health(200, 60), 'the database is back');
	is_deeply(state_of($a[0]), { %APPLIED, queue => [ 'synced' ] }, 'the action that committed before the stop stays committed');
	is_deeply(state_of($a[1]), { %UNTOUCHED, queue => [] }, 'the interrupted action rolled back (no queue row could be written)');
	is_deeply(state_of($a[$_]), { %UNTOUCHED, queue => [] }, "action $_ was never sent") for 2, 3;

	delete $a[1]{payload}{result_notes};
	$r = $t->request(POST => $PATH, token => $user->{token}, json => { actions => \@a });
	json_ok($r, { success => 4, failed => 0, errors => [] }, 'resending the batch completes it');
	is_deeply(state_of($a[0]), { %APPLIED, queue => [ 'synced', 'duplicate' ] }, 'the committed action is not applied twice');
	is_deeply(state_of($a[$_]), { %APPLIED, queue => [ 'synced' ] }, "action $_ is applied once") for 1 .. 3;
}

# ---- settling an action whose call lost its connection ------------------------------------

{
	my ($ins) = fresh();
	my $a = qi_action($ins, $T0 + 30);
	my $r = $t->request(POST => $PATH, token => $user->{token}, json => { actions => [ $a ] });
	json_ok($r, { success => 1, failed => 0, errors => [] }, 'an action syncs');
	my $app = $t->app_dbh;
	# As the daemon calls it: the action as sent and its timestamp in microseconds.
	my $settle = $app->prepare('SELECT qa_sync_record_failure(?, ?, ?, NULL, ?, ?, true)');
	$settle->execute($org, $user->{id}, encode_json($a), ($T0 + 30) * 1_000_000, $MSG_LOST);
	is($settle->fetchrow_array, 'synced',
		'asked after a lost connection, the database answers that a committed action is synced');
	is_deeply(state_of($a), { %APPLIED, queue => [ 'synced' ] }, 'and writes no failed row for it');
	my $b = qi_action((fresh())[0], $T0 + 31);
	$settle->execute($org, $user->{id}, encode_json($b), ($T0 + 31) * 1_000_000, $MSG_LOST);
	is($settle->fetchrow_array, 'failed', 'an action that never committed is settled as failed');
	is_deeply(state_of($b), { %UNTOUCHED, queue => [ 'failed' ] }, 'with a failed queue row');
	# Another action under the committed one's id was not applied: never "synced".
	my $c = { %$a, payload => { %{ $a->{payload} }, result => 'fail' } };
	$settle->execute($org, $user->{id}, encode_json($c), ($T0 + 30) * 1_000_000, $MSG_LOST);
	is($settle->fetchrow_array, 'failed', 'a different action under a committed id is settled as failed, not synced');
	is($t->one(q{SELECT error_message FROM scanner_offline_queue WHERE action_payload = ?::jsonb}, encode_json($c)),
		'Action id already used for a different action', 'its failed queue row says why');
}

remove_sleeper();
is($t->stop_daemon, 0, 'the daemon exits cleanly on SIGTERM');
is($t->daemon_errors, '', 'the daemon reported no memory errors');
is($t->nginx_alerts, '', 'nginx logged no alerts');

done_testing;
