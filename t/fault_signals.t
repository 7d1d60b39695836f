#!/usr/bin/perl
# fault_signals.t: signals an operator's tools send by habit. SIGUSR1 (what
# logrotate scripts written for nginx send to reopen logs) and SIGUSR2 change
# nothing: sent to every worker and to the master, no process dies or spins,
# every request is still answered, and a SIGTERM afterwards is honoured at
# once. A SIGTERM sent to one worker alone stops it cleanly; the master starts
# another. (libfcgi's own SIGUSR1 handler, installed by FCGX_Init, used to
# make every later accept fail: the worker answered nothing, spun at 100 %
# CPU and ignored SIGTERM until the SIGKILL deadline.)

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep time);

use ScanQA::Test;
use ScanQA::Workload;

my $WORKERS = 2;
my $t = ScanQA::Test->new(conf => { workers => $WORKERS, log_level => 'debug', shutdown_timeout => 20 });
my $w = ScanQA::Workload->new($t, inspections => 10);
ok($t->wait_workers_ready($WORKERS), "the $WORKERS workers are ready");
my @workers = $t->worker_pids;

# CPU time (user + system, in clock ticks) a process has used, from /proc/PID/stat.
sub cpu_ticks {
	my ($pid) = @_;
	open my $f, '<', "/proc/$pid/stat" or return undef;
	my $stat = <$f>;
	my @f = split ' ', substr($stat, rindex($stat, ')') + 2);
	return $f[11] + $f[12];    # utime, stime (fields 14 and 15)
}

sub health_checks {
	my ($n) = @_;
	my $ok = 0;
	for (1 .. $n) {
		my $r = eval { $t->request(GET => '/api/v1/health', timeout => 20) };
		$ok++ if $r && $r->{status} == 200;
	}
	return $ok;
}

# ---- SIGUSR1 and SIGUSR2 to every process --------------------------------------------

for my $sig (qw(USR1 USR2)) {
	kill $sig, @workers;
	$t->signal_daemon($sig);
}
my $deadline = time + 10;
sleep 0.05 while time < $deadline && (() = $t->daemon_log =~ /SIGUSR2 ignored/g) < $WORKERS + 1;
my $log = $t->daemon_log;
is(scalar(() = $log =~ /^INFO \[\d+\] SIGUSR1 ignored: scanqa writes no log files to reopen/mg), $WORKERS + 1,
	'each worker and the master log that SIGUSR1 has nothing to reopen');
is(scalar(() = $log =~ /^INFO \[\d+\] SIGUSR2 ignored/mg), $WORKERS + 1, 'and that SIGUSR2 is ignored');

is(health_checks(20), 20, 'all 20 health checks after the signals are answered 200');
is($t->request($w->completion(0))->{status}, 200, 'so is a completion, which reaches the database');
is_deeply([$t->worker_pids], \@workers, 'the same workers serve: none died or was replaced');
ok(kill(0, $t->master_pid), 'the master is alive');

# A worker that had stopped accepting would spin in epoll_wait: it would use
# about all of a CPU over the next 2 s (some 200 ticks), not a few.
my %before = map { $_ => cpu_ticks($_) } @workers;
sleep 2;
for my $pid (@workers) {
	my $used = cpu_ticks($pid) - $before{$pid};
	ok($used < 50, "worker $pid is not spinning: $used clock ticks of CPU in 2 s of idling");
}
my $s = $t->status;
is($s->{worker_states}{idle}, $WORKERS, 'the status page shows every worker idle');
is($s->{master}{workers_crashed}, 0, 'no worker crashed');

# ---- SIGTERM to one worker ------------------------------------------------------------

my $victim = $workers[0];
kill 'TERM', $victim;
$deadline = time + 20;
sleep 0.05 while time < $deadline && kill(0, $victim) && (grep { $_ == $victim } $t->worker_pids);
ok(!grep({ $_ == $victim } $t->worker_pids), "a worker sent SIGTERM after SIGUSR1 stops ($victim)");
like($t->daemon_log, qr/^DEBUG \[\d+\] worker $victim exited with status 0$/m, 'it exits with status 0');
ok($t->wait_workers_ready($WORKERS), 'the master starts another in its place');
is(health_checks(5), 5, 'requests are served');
is($t->status->{master}{workers_crashed}, 0, 'still no worker crashed');

# ---- SIGTERM to the daemon after the signals -----------------------------------------

is($t->stop_daemon, 0, 'the daemon exits cleanly on SIGTERM');
unlike($t->daemon_log, qr/shutdown deadline passed|killing \d+ busy workers/, 'no worker had to be killed');
is($t->daemon_errors, '', 'the daemon reported no memory errors');
is($t->nginx_alerts, '', 'nginx logged no alerts');
done_testing;
