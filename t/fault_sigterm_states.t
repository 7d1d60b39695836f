#!/usr/bin/perl
# fault_sigterm_states.t: SIGTERM is honoured within shutdown_timeout whatever
# the workers are doing: idle, busy in a request, waiting on a row lock, and
# after a SIGUSR1; and the workers leave by themselves when the master is
# killed. A busy worker answers its request first; the master never
# has to kill a worker at the deadline, and exits 0. (fault_sigterm.t covers a
# stream of requests, fault_fd_limit.t a worker out of file descriptors.)

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use POSIX qw(WIFEXITED WEXITSTATUS);
use Test::More;
use Time::HiRes qw(sleep time);

use ScanQA::Test;
use ScanQA::Workload;

my $WORKERS = 2;
my $t = ScanQA::Test->new(conf => { workers => $WORKERS, shutdown_timeout => 20, lock_timeout => 1500,
	log_level => 'debug' });
my $w = ScanQA::Workload->new($t, inspections => 20);
my $n = 0;

# Waits until the status page shows a worker in the statement; returns it.
sub wait_in_sql {
	my $deadline = time + 20;
	while (time < $deadline) {
		my ($x) = grep { ($_->{current_sql} // '') eq 'quick_inspection' } @{ $t->status->{workers} };
		return $x if $x;
		sleep 0.02;
	}
	return undef;
}

# Where the log and the worker list stood before the SIGTERM.
sub before_term { return { from => length $t->daemon_log, workers => [$t->worker_pids] } }

# Stops the daemon (a second SIGTERM when the test sent one), checks how.
sub stop_ok {
	my ($state, $before) = @_;
	$before //= before_term();
	my ($from, @workers) = ($before->{from}, @{ $before->{workers} });
	my $status = $t->stop_daemon;
	ok(defined $status && WIFEXITED($status) && WEXITSTATUS($status) == 0, "$state: the master exits 0 after SIGTERM");
	my $log = substr $t->daemon_log, $from;
	unlike($log, qr/shutdown deadline passed|killing \d+ busy workers/, "$state: no worker had to be killed at the deadline");
	is(scalar @workers, $WORKERS, "$state: $WORKERS workers ran");
	is(scalar(() = $log =~ /^DEBUG \[\d+\] worker \d+ exited with status 0$/mg), $WORKERS,
		"$state: each of the $WORKERS workers exits with status 0");
	is(scalar(grep { kill 0, $_ } @workers), 0, "$state: no worker outlives the master");
}

sub restart {
	$t->start_daemon;
	$t->wait_health(200) or BAIL_OUT('the daemon did not start again');
	$t->wait_workers_ready($WORKERS);
}

# ---- idle ---------------------------------------------------------------------------

ok($t->wait_workers_ready($WORKERS), 'the workers are ready and idle');
stop_ok('idle');

# ---- busy in a request ----------------------------------------------------------------

restart();
$t->dbh->do(q{CREATE FUNCTION test_slow_audit() RETURNS trigger LANGUAGE plpgsql AS
	$$ BEGIN PERFORM pg_sleep(1); RETURN NEW; END $$});
$t->dbh->do('CREATE TRIGGER test_slow_audit BEFORE INSERT ON quality_audit_log FOR EACH ROW EXECUTE FUNCTION test_slow_audit()');
{
	my $sock = $t->request_start($w->completion($n++));
	ok(wait_in_sql(), 'busy: a worker is in the middle of a completion');
	my $before = before_term();
	$t->signal_daemon('TERM');
	my $r = $t->request_finish($sock, timeout => 30);
	is($r->{status}, 200, 'busy: the request in progress is answered 200 after the SIGTERM');
	stop_ok('busy', $before);
}
$t->dbh->do('DROP TRIGGER test_slow_audit ON quality_audit_log');

# ---- waiting on a row lock --------------------------------------------------------------

restart();
{
	my $id = $w->ids->[$n];
	my $lock = $t->connect_as('postgres');
	$lock->begin_work;
	$lock->do('SELECT 1 FROM quality_inspections WHERE id = ? FOR UPDATE', undef, $id);
	my $sock = $t->request_start($w->completion($n++));
	ok(wait_in_sql(), 'lock: a worker waits on the row lock in its statement');
	my $before = before_term();
	$t->signal_daemon('TERM');
	my $r = $t->request_finish($sock, timeout => 30);
	is($r->{status}, 503, 'lock: the waiting request ends with lock_timeout and is answered 503');
	$lock->rollback;
	$lock->disconnect;
	stop_ok('lock', $before);
}

# ---- after SIGUSR1 ------------------------------------------------------------------------

restart();
kill 'USR1', $t->worker_pids;
is($t->request(GET => '/api/v1/health')->{status}, 200, 'SIGUSR1: a request after it is answered');
stop_ok('after SIGUSR1');

# ---- the master killed -------------------------------------------------------------------

# A worker whose master is gone gets SIGTERM from the kernel (PR_SET_PDEATHSIG)
# and exits by itself: no orphan keeps the socket.
sub running { my ($pid) = @_; open my $f, '<', "/proc/$pid/stat" or return 0; return <$f> !~ /^\d+ \(.*\) [ZX] /s }
restart();
{
	my @w = $t->worker_pids;
	kill 'KILL', $t->master_pid;
	my $deadline = time + 20;
	sleep 0.05 while time < $deadline && grep { running($_) } @w;
	is(scalar(grep { running($_) } @w), 0, 'when the master is killed, every worker exits by itself');
	$t->stop_daemon;    # reaps the master
}

is($t->daemon_errors, '', 'the daemon reported no memory errors');
is($t->nginx_alerts, '', 'nginx logged no alerts');
done_testing;
