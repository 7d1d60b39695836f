#!/usr/bin/perl
# sync_offline_outage.t: POST /api/v1/quality/scanner/sync-offline when the database
# goes away in the middle of a batch. The batch is one statement and one
# transaction, so it is applied entirely or not at all: the response is 503 with
# Retry-After (never a success for an action that did not commit), and resending
# the same batch afterwards completes it without applying anything twice.
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

sub unavailable_ok {
	my ($r, $error, $what) = @_;
	is($r->{status}, 503, "$what: 503") or diag($r->{body});
	is($r->{json}{error}, $error, "$what: $error");
	is($r->{headers}{'retry-after'}, '1', "$what: Retry-After: 1");
}

{
	my @a = map { qi_action((fresh())[0], $T0 + $_) } 0 .. 2;
	$a[1]{payload}{result_notes} = 'sleep 3';
	my $s = $t->request_start(POST => $PATH, token => $user->{token}, json => { actions => \@a });
	my $pid = sleeping_backend();
	ok($pid, 'the second action sleeps inside the batch\'s transaction');
	ok($t->one('SELECT pg_terminate_backend(?)', $pid), 'its database session is terminated');
	my $r = $t->request_finish($s);
	unavailable_ok($r, 'Service unavailable', 'the batch\'s one statement lost its connection: nothing is claimed');
	is_deeply(state_of($a[$_]), { %UNTOUCHED, queue => [] }, "action $_ is not applied: the batch is one transaction") for 0 .. 2;

	delete $a[1]{payload}{result_notes};
	$r = $t->request(POST => $PATH, token => $user->{token}, json => { actions => \@a });
	json_ok($r, { success => 3, failed => 0, errors => [] }, 'resending the batch completes it');
	is_deeply(state_of($a[$_]), { %APPLIED, queue => [ 'synced' ] }, "action $_ is applied once") for 0 .. 2;
}

# ---- statement_timeout cancels the batch ------------------------------------------------

{
	my @a = map { qi_action((fresh())[0], $T0 + 10 + $_) } 0 .. 1;
	$a[0]{payload}{result_notes} = 'sleep 30';
	my $r = $t->request(POST => $PATH, token => $user->{token}, json => { actions => \@a });
	unavailable_ok($r, 'Resource is busy, retry the request', 'a batch cancelled by statement_timeout');
	is_deeply(state_of($a[$_]), { %UNTOUCHED, queue => [] }, "action $_ is rolled back with it") for 0, 1;
	like($t->daemon_log, qr/Failed to sync offline actions: .*statement timeout/, 'the daemon logs the reason');

	delete $a[0]{payload}{result_notes};
	$r = $t->request(POST => $PATH, token => $user->{token}, json => { actions => \@a });
	json_ok($r, { success => 2, failed => 0, errors => [] }, 'resent, the batch syncs');
}

# ---- PostgreSQL stops during an action -------------------------------------------------------

{
	my @a = map { qi_action((fresh())[0], $T0 + 20 + $_) } 0 .. 3;
	$a[1]{payload}{result_notes} = 'sleep 5';
	my $s = $t->request_start(POST => $PATH, token => $user->{token}, json => { actions => \@a });
	ok(sleeping_backend(), 'the second action sleeps inside the batch\'s transaction');
	$t->stop_pg;
	my $r = $t->request_finish($s);
	unavailable_ok($r, 'Service unavailable', 'with the database gone');

	$t->start_pg;
	ok($t->wait_health(200, 60), 'the database is back');
	is_deeply(state_of($a[$_]), { %UNTOUCHED, queue => [] }, "action $_ rolled back with the batch") for 0 .. 3;

	delete $a[1]{payload}{result_notes};
	$r = $t->request(POST => $PATH, token => $user->{token}, json => { actions => \@a });
	json_ok($r, { success => 4, failed => 0, errors => [] }, 'resending the batch completes it');
	is_deeply(state_of($a[$_]), { %APPLIED, queue => [ 'synced' ] }, "action $_ is applied once") for 0 .. 3;
}

# ---- a batch that committed, but whose answer the device lost ------------------------------

{
	my @a = map { qi_action((fresh())[0], $T0 + 30 + $_) } 0 .. 1;
	my $r = $t->request(POST => $PATH, token => $user->{token}, json => { actions => \@a });
	json_ok($r, { success => 2, failed => 0, errors => [] }, 'a batch syncs');
	$r = $t->request(POST => $PATH, token => $user->{token}, json => { actions => \@a });
	json_ok($r, { success => 2, failed => 0, errors => [] }, 'the same batch resent counts as success');
	is_deeply(state_of($a[$_]), { %APPLIED, queue => [ 'synced', 'duplicate' ] }, "action $_ is not applied twice") for 0, 1;
}

remove_sleeper();
is($t->stop_daemon, 0, 'the daemon exits cleanly on SIGTERM');
is($t->daemon_errors, '', 'the daemon reported no memory errors');
is($t->nginx_alerts, '', 'nginx logged no alerts');

done_testing;
