#!/usr/bin/perl
# fault_sigkill.t: a worker killed with SIGKILL in the middle of a request,
# under load. The master logs which route it was serving and starts a new
# worker; only the request that worker had in flight fails (502 JSON from
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
# A long lock_timeout: the victim's request waits on a row lock while the test
# finds and kills its worker.
my $t = ScanQA::Test->new(conf => { workers => $WORKERS, lock_timeout => 10000 });
my $w = ScanQA::Workload->new($t, inspections => 1500);

my @before = $t->worker_pids;
my $load = ScanQA::Load->start($t, clients => 2 * $WORKERS, requests => 1499, seconds => 30,
	make => sub { $w->completion($_[0]) });
ok($load->wait_answered(100), 'the load is under way (100 answers)');

# The victim's request: a completion of the last inspection, which another
# session holds locked, so the worker serving it is caught in the middle of
# the request for as long as the test needs.
my $x = $w->ids->[-1];
my $lock = $t->connect_as('postgres');
$lock->begin_work;
$lock->do('SELECT 1 FROM quality_inspections WHERE id = ? FOR UPDATE', undef, $x);
my $lock_pid = $lock->{pg_pid};
my $sock = $t->request_start($w->completion(1499, 1499, 'fail'));
# Its worker: the one whose database session waits for the test's lock. Each
# worker names its session "scanqa worker PID" (application_name).
my $t0 = time;
my $victim;
while (time < $t0 + 10 && !$victim) {
	my $app = $t->one(q{SELECT application_name FROM pg_stat_activity
		WHERE datname = current_database() AND ? = ANY (pg_blocking_pids(pid))}, $lock_pid);
	($victim) = ($app // '') =~ /^scanqa worker (\d+)$/;
	sleep 0.01 if !$victim;
}
ok($victim, "the victim's request waits for the row lock in the database, in worker " . ($victim // '?'))
	or die "no worker to kill\n";
my ($slot) = grep { $_->{pid} == ($victim // 0) } @{ $t->status->{workers} };
is($slot && $slot->{current_route}, 'quick_inspection', 'the status page shows that worker serving a completion');
my $age = $slot && $slot->{current_request_ms};

my $killed_at = time;
my $answered_at_kill = $load->answered;
kill 'KILL', $victim;
note("killed worker $victim, whose request was $age ms old, after $answered_at_kill answers of the load");

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

my $r = $t->request_finish($sock);
is($r->{status}, 502, 'the request the killed worker had in flight gets 502 from nginx');
is_deeply($r->{json}, { error => 'Service unavailable' }, 'as JSON {"error":"Service unavailable"}');

# Let the victim's database session go on: it never learnt that its client died.
$lock->rollback;
$lock->disconnect;

ok($load->wait_answered($answered_at_kill + 200), 'the load goes on after the kill (200 more answers)');
$load->stop;
my $res = $load->finish;
note('load: ' . ScanQA::Load->summary($res) . " of $res->{started} started, in " . sprintf('%.1f s', $res->{seconds}));
is_deeply($res->{by_status}, { 200 => $res->{started} }, 'no request of the load failed: only the one in flight on the killed worker did');

# The database: the load's completions and the victim's, which the client was
# told failed; its session may have committed it after the lock was released.
push @{ $res->{results} }, { n => 1499, status => 502, tag => { id => $x, result => 'fail' } };
my $fig = $w->check($res, 'the database after the kill');
my $xrow = $t->row(q{SELECT status, (SELECT count(*) FROM quality_audit_log a WHERE a.entity_id = i.id::text) AS audits
	FROM quality_inspections i WHERE id = ?}, $x);
note("the victim's inspection is $xrow->{status} with $xrow->{audits} audit row(s): its outcome was unknown to the client (502), never reported as a success");
note("completed inspections: $fig->{completed}; 200 answers: $fig->{ok}; completed but not reported: $fig->{unknown}");
is($fig->{unknown}, $xrow->{status} eq 'completed' ? 1 : 0, "no completion but the victim's went unreported");

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
