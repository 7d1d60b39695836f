#!/usr/bin/perl
# fault_fd_limit.t: a worker at its file descriptor limit. accept() then fails
# with EMFILE while connections wait in the backlog; the worker logs it once,
# stops watching the socket for a growing pause instead of spinning on it,
# still honours SIGTERM, and serves the waiting requests as soon as
# descriptors are free again. The status page (served by the master) shows the
# queue and counts the episode.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep time);

use ScanQA::Test;

plan skip_all => 'needs prlimit (util-linux)' unless grep { -x "$_/prlimit" } split /:/, $ENV{PATH};

my $t = ScanQA::Test->new(conf => { workers => 1, log_level => 'debug', shutdown_timeout => 20 });
ok($t->wait_workers_ready(1), 'the worker is ready');
my ($worker) = $t->worker_pids;

sub cpu_ticks {
	my ($pid) = @_;
	open my $f, '<', "/proc/$pid/stat" or return undef;
	my $stat = <$f>;
	my @f = split ' ', substr($stat, rindex($stat, ')') + 2);
	return $f[11] + $f[12];
}

sub nofile {
	my ($pid) = @_;
	open my $f, '<', "/proc/$pid/limits" or die "cannot read /proc/$pid/limits: $!";
	while (<$f>) {
		return ($1, $2) if /^Max open files\s+(\d+)\s+(\d+)/;
	}
	die "no open files limit in /proc/$pid/limits";
}

# Sets the soft limit so that the next descriptor the worker opens would be
# beyond it: the lowest free descriptor number (the kernel always hands out
# that one).
sub exhaust {
	my ($pid) = @_;
	opendir my $d, "/proc/$pid/fd" or die "cannot list /proc/$pid/fd: $!";
	my %open = map { $_ => 1 } grep { /^\d+$/ } readdir $d;
	my $free = 0;
	$free++ while $open{$free};
	my (undef, $hard) = nofile($pid);
	system('prlimit', "--pid=$pid", "--nofile=$free:$hard") == 0 or die "prlimit failed";
	return $free;
}

sub wait_log {
	my ($re, $timeout) = @_;
	my $deadline = time + ($timeout // 20);
	while (time < $deadline) {
		return 1 if $t->daemon_log =~ $re;
		sleep 0.05;
	}
	return 0;
}

my ($soft, $hard) = nofile($worker);
my $limit = exhaust($worker);
note("worker $worker: open files limit lowered from $soft to $limit");

my @socks = map { $t->request_start(GET => '/api/v1/health') } 1 .. 3;
ok(wait_log(qr/^ERROR \[$worker\] accept: Too many open files; pausing accepts/m),
	'the worker logs that accept fails with EMFILE') or diag($t->daemon_log);

my $t0 = cpu_ticks($worker);
sleep 2;
my $used = cpu_ticks($worker) - $t0;
ok($used < 50, "it does not spin meanwhile: $used clock ticks of CPU in 2 s (spinning would take about 200)");

my $s = $t->status;
ok($s->{saturation}{listen_queue}{current} >= 1,
	"the status page answers meanwhile and shows the requests waiting in the accept queue ($s->{saturation}{listen_queue}{current})");
ok($s->{saturation}{listen_queue}{max} >= $s->{saturation}{listen_queue}{current}, 'and a maximum at least as high');
is($s->{saturation}{fd_exhaustion}, 1, 'it counts one episode of descriptor exhaustion');
is(scalar(() = $t->daemon_log =~ /accept: Too many open files/g), 1, 'the failure is logged once, not per attempt');

system('prlimit', "--pid=$worker", "--nofile=$soft:$hard") == 0 or die "prlimit failed";
my @r = map { $t->request_finish($_, timeout => 30) } @socks;
is_deeply([map { $_->{status} } @r], [200, 200, 200], 'once descriptors are free, the waiting requests are served');
ok(wait_log(qr/^INFO \[$worker\] accept works again after \d+ ms without file descriptors$/m, 5),
	'the worker logs that accept works again');
is_deeply([$t->worker_pids], [$worker], 'by the same worker, which was neither stuck nor replaced');
is($t->status->{saturation}{listen_queue}{current}, 0, 'the accept queue is empty again');

# ---- SIGTERM while paused ---------------------------------------------------------------

exhaust($worker);
my $sock = $t->request_start(GET => '/api/v1/health');
ok(wait_log(qr/(?:accept: Too many open files.*){2}/s), 'at the limit again, with a request waiting');
my $status = $t->stop_daemon;
is($status, 0, 'SIGTERM stops the daemon cleanly while the worker pauses');
unlike($t->daemon_log, qr/shutdown deadline passed|killing \d+ busy workers/, 'without killing the worker');
my $r = eval { $t->request_finish($sock, timeout => 30) };
ok($r && ($r->{status} == 200 || $r->{status} == 502),
	'the request waiting then is answered (200 if the worker could still take it, else 502 from nginx)')
	or diag(explain($r));
is($t->daemon_errors, '', 'the daemon reported no memory errors');
done_testing;
