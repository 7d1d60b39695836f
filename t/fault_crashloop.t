#!/usr/bin/perl
# fault_crashloop.t: workers that die at start-up. With a conninfo naming a
# role that does not exist, every worker exits (status 3) as soon as it tries
# to connect; the master starts the next one after a growing delay (100 ms,
# doubling), not in a tight loop, and the log says why. A reload to such a
# config keeps the old workers serving meanwhile; a reload to a good config
# ends the loop.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep time);

use ScanQA::Load;
use ScanQA::Test;
use ScanQA::Workload;

my $WORKERS = 2;
my $t = ScanQA::Test->new(conf => { workers => $WORKERS });
my $ci = "host=$t->{pghost} port=$t->{pgport} dbname=" . $t->db_name;
my ($good, $bad) = ("$ci user=scanqa_app", "$ci user=scanqa_nobody");
my $w = ScanQA::Workload->new($t, inspections => 2000);

sub log_since { substr($t->daemon_log, $_[0]) }
sub deaths { my $n = () = $_[0] =~ /^ERROR \[\d+\] worker \d+ exited with status 3 after \d+ ms$/mg; $n }

# ---- a reload to a conninfo the database refuses -----------------------------------

{
	my @old = $t->worker_pids;
	my $mark = length $t->daemon_log;
	my $load = ScanQA::Load->start($t, clients => 4, requests => 2000, seconds => 30,
		make => sub { $w->completion($_[0]) });
	ok($load->wait_answered(50), 'the load is under way');
	$t->rewrite_conf(conninfo => $bad);
	$t->signal_daemon('HUP');
	my $deadline = time + 20;
	sleep 0.05 while deaths(log_since($mark)) < 3 && time < $deadline;
	ok(deaths(log_since($mark)) >= 3, 'the new workers die at start-up, again and again');
	my $answered = $load->answered;
	ok($load->wait_answered($answered + 100), 'meanwhile the old workers go on serving (100 more answers)');
	is_deeply([grep { my $p = $_; grep { $_ == $p } @old } $t->worker_pids], \@old, 'the old workers are all still there');
	my $s = $t->status;
	is(scalar(grep { $_->{config_generation} == 1 && $_->{state} =~ /idle|busy/ } @{ $s->{workers} }), $WORKERS,
		'the status page shows the old generation serving');
	ok($s->{master}{workers_crashed} >= 3, "the status page counts the crashes ($s->{master}{workers_crashed})");
	$load->stop;
	my $res = $load->finish;
	note('requests: ' . ScanQA::Load->summary($res) . " of $res->{started} started");
	is_deeply($res->{by_status}, { 200 => $res->{started} }, 'not one request failed');
	$w->check($res, 'the database after the refused reload');

	my $log = log_since($mark);
	like($log, qr/database connection failed: .*role "scanqa_nobody" does not exist/, 'the log says the role does not exist');
	like($log, qr/worker cannot start: database refuses this conninfo; check conninfo in \S+/, 'and which setting to check');
}

# ---- a fresh start with that config: nothing but the backoff ------------------------

{
	$t->stop_daemon;
	my $mark = length $t->daemon_log;
	$t->start_daemon;    # the socket appears; no worker will ever be ready
	my $start = time;
	my (@seen, $n);
	# Watch for 3 seconds, noting when each death shows up in the log.
	while (time < $start + 3) {
		$n = deaths(log_since($mark));
		push @seen, time - $start while @seen < $n;
		sleep 0.01;
	}
	my $log = log_since($mark);
	note(sprintf 'workers died at start-up %d times in 3 s, at %s s', $n, join(' ', map { sprintf '%.2f', $_ } @seen));
	ok($n >= 3, 'the master keeps trying');
	ok($n <= 16, "it does not try in a tight loop ($n starts in 3 s)");
	my @delays = $log =~ /workers keep dying at start-up \(\d+ in a row\); next start in (\d+) ms/g;
	note("announced delays: @delays ms");
	ok(@delays >= 2, 'the log announces the delay before the next start');
	is_deeply([@delays[0 .. ($#delays < 4 ? $#delays : 4)]], [grep { defined } (200, 400, 800, 1600, 3200)[0 .. ($#delays < 4 ? $#delays : 4)]],
		'each delay doubles the one before');
	like($log, qr/role "scanqa_nobody" does not exist/, 'the log says why the workers die');
	ok(kill(0, $t->master_pid), 'the master itself stays up');
}

# ---- a reload with a good config ends the loop ----------------------------------

{
	my $mark = length $t->daemon_log;
	$t->rewrite_conf(conninfo => $good);
	$t->signal_daemon('HUP');
	ok($t->wait_health(200, 30), 'after a reload with a good conninfo the daemon answers again');
	my $ready = 0;
	for (1 .. 300) {
		my $st = $t->status->{worker_states};
		last if ($ready = $st->{idle} + $st->{busy}) == $WORKERS;
		sleep 0.02;
	}
	is($ready, $WORKERS, "$WORKERS workers are running");
	is($t->request($w->completion(1999))->{status}, 200, 'a completion succeeds');
	like(log_since($mark), qr/configuration reloaded/, 'the log shows the reload');
}

is($t->stop_daemon, 0, 'the daemon exits cleanly on SIGTERM');
is($t->daemon_errors, '', 'the daemon reported no memory errors');
is($t->nginx_alerts, '', 'nginx logged no alerts');
done_testing;
