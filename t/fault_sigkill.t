#!/usr/bin/perl
# fault_sigkill.t: a worker killed with SIGKILL in the middle of a request,
# under load. The master logs which route it was serving and starts a new
# worker; only the request that worker had in flight may fail (502 JSON from
# nginx); and the database shows nothing half-applied, nor any success a
# client was told about that did not happen.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep time);

use ScanQA::Load;
use ScanQA::Test;
use ScanQA::Workload;

my $WORKERS = 3;
my $t = ScanQA::Test->new(conf => { workers => $WORKERS });
my $w = ScanQA::Workload->new($t, inspections => 1500);
# A few milliseconds in the database per completion, so a worker is most
# likely caught in the middle of one.
$t->dbh->do(q{CREATE FUNCTION test_slow_audit() RETURNS trigger LANGUAGE plpgsql AS
	$$ BEGIN PERFORM pg_sleep(0.005); RETURN NEW; END $$});
$t->dbh->do('CREATE TRIGGER test_slow_audit BEFORE INSERT ON quality_audit_log FOR EACH ROW EXECUTE FUNCTION test_slow_audit()');

my @before = $t->worker_pids;
my $load = ScanQA::Load->start($t, clients => 2 * $WORKERS, requests => 1500, seconds => 30,
	make => sub { $w->completion($_[0]) });
ok($load->wait_answered(100), 'the load is under way (100 answers)');

# The victim: a worker the status page shows serving a completion.
my ($victim, $age);
for (1 .. 200) {
	my ($b) = grep { ($_->{current_route} // '') eq 'quick_inspection' } @{ $t->status->{workers} };
	if ($b) {
		($victim, $age) = ($b->{pid}, $b->{current_request_ms});
		last;
	}
	sleep 0.01;
}
ok($victim, 'a worker is caught serving a completion');
my $killed_at = time;
my $answered_at_kill = $load->answered;
kill 'KILL', $victim;
note("killed worker $victim, whose request was $age ms old, after $answered_at_kill answers");

# The respawn, as the master's children and the status page show it.
my ($new, $respawn_s);
while (time < $killed_at + 10) {
	my @now = $t->worker_pids;
	my ($fresh) = grep { my $p = $_; !grep { $_ == $p } @before } @now;
	if ($fresh && @now == $WORKERS) {
		my ($slot) = grep { $_->{pid} == $fresh } @{ $t->status->{workers} };
		if ($slot && $slot->{state} =~ /^(idle|busy)$/) {
			($new, $respawn_s) = ($fresh, time - $killed_at);
			last;
		}
	}
	sleep 0.01;
}
ok($new, "the master started a new worker in its place ($WORKERS workers again)");
note(sprintf 'new worker %d ready %.0f ms after the kill', $new // 0, 1000 * ($respawn_s // 0));
ok($load->wait_answered($answered_at_kill + 200), 'the load goes on after the kill (200 more answers)');
$load->stop;
my $res = $load->finish;
note('requests: ' . ScanQA::Load->summary($res) . " of $res->{started} started, in " . sprintf('%.1f s', $res->{seconds}));

my @failed = grep { $_->{status} != 200 } @{ $res->{results} };
ok(@failed <= 1, 'at most one request failed: the one the killed worker had in flight')
	or diag(explain [map { "$_->{n}: $_->{status} " . ($_->{error} // '') } @failed]);
for my $f (@failed) {
	is($f->{status}, 502, 'the failed request got 502 from nginx');
	is($f->{error}, 'Service unavailable', 'as JSON {"error":"Service unavailable"}');
	ok($f->{t0} <= $killed_at && $f->{t1} >= $killed_at, 'and it was in flight when the worker was killed');
}
is($res->{started}, scalar @{ $res->{results} }, 'every request started got an answer');

my $fig = $w->check($res, 'the database after the kill');
note("completed inspections: $fig->{completed}; 200 answers: $fig->{ok}; completed but not reported: $fig->{unknown}");
ok($fig->{unknown} <= 1, 'at most the killed request was completed without its client being told');

like($t->daemon_log, qr/worker $victim killed by signal 9 \(Killed\) while serving quick_inspection/,
	'the master logs that the worker was killed and which route it was serving');
my $s = $t->status;
is($s->{master}{workers_crashed}, 1, 'the status page counts one crashed worker');
is($s->{master}{workers_spawned}, $WORKERS + 1, 'and one extra worker spawned');
is($s->{master}{pid}, $t->master_pid, 'the master itself did not change');
is($t->stop_daemon, 0, 'the daemon exits cleanly on SIGTERM');
is($t->daemon_errors, '', 'the daemon reported no memory errors');
is($t->nginx_alerts, '', 'nginx logged no alerts');
done_testing;
