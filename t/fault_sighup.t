#!/usr/bin/perl
# fault_sighup.t: SIGHUP under load. The master re-reads its config and
# replaces the workers one by one while the load goes on: no request fails,
# every worker ends up running the new config (here log_level info instead of
# debug: only the old workers log each request), an old worker stops after the
# request it is serving, and a config that does not load is refused with a log
# line while the running one stays in force.

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
my $t = ScanQA::Test->new(conf => { workers => $WORKERS, log_level => 'debug' });
my $w = ScanQA::Workload->new($t, inspections => 10000);

my @old = $t->worker_pids;
my $load = ScanQA::Load->start($t, clients => 8 * $WORKERS, requests => 10000, seconds => 40,
	make => sub { $w->completion($_[0]) });
ok($load->wait_answered(100), 'the load is under way (100 answers)');

# ---- a config that does not load is refused ---------------------------------------

$t->rewrite_conf(workers => 'many');
$t->signal_daemon('HUP');
my $refused;
for (1 .. 500) {
	last if ($refused) = $t->daemon_log =~ /^(ERROR .*reload refused, keeping the running config: .*workers.*)$/m;
	sleep 0.01;
}
ok($refused, 'a config with an invalid value is refused, and the log says which setting') or diag($t->daemon_log);
is($t->status->{master}{config_generation}, 1, 'the running config stays in force (generation 1)');
is_deeply([$t->worker_pids], \@old, 'and no worker is replaced');

# ---- a good config is applied ------------------------------------------------------

$t->rewrite_conf(workers => $WORKERS, log_level => 'info');
my $hup_at_answers = $load->answered;
$t->signal_daemon('HUP');
my ($rolled, $roll_s);
my $t0 = time;
while (time < $t0 + 20) {
	my $s = $t->status;
	if ($s->{master}{config_generation} == 2 && @{ $s->{workers} } == $WORKERS
		&& !grep { $_->{config_generation} != 2 } @{ $s->{workers} }) {
		($rolled, $roll_s) = (1, time - $t0);
		last;
	}
	sleep 0.02;
}
my $answers_at_roll = $load->answered;
ok($rolled, "every worker runs the new config while the load goes on ($WORKERS workers of generation 2)");
note(sprintf 'the roll took %.0f ms; %d answers came in meanwhile', 1000 * ($roll_s // 0), $answers_at_roll - $hup_at_answers);
ok($load->running, 'the load was still running when the roll completed');
my @new = $t->worker_pids;
is(scalar(grep { my $p = $_; grep { $_ == $p } @old } @new), 0, 'none of the old workers is left');
ok($load->wait_answered($answers_at_roll + 200), 'the new workers serve the load (200 more answers)');
$load->stop;
my $res = $load->finish;
note('requests: ' . ScanQA::Load->summary($res) . " of $res->{started} started, in " . sprintf('%.1f s', $res->{seconds}));

is_deeply($res->{by_status}, { 200 => $res->{started} }, 'not one request failed across both reloads');
$w->check($res, 'the database after the reloads');

# The new log level: only the old workers wrote the per-request debug line.
my $log = $t->daemon_log;
my %debug_pids = map { $_ => 1 } $log =~ /^DEBUG \[(\d+)\] req=\S+ POST quick_inspection -> 200/mg;
is(scalar(grep { $debug_pids{$_} } @old), scalar @old, 'the old workers logged each request (log_level debug)');
is(scalar(grep { $debug_pids{$_} } @new), 0, 'the new workers do not (log_level info)');

# An old worker answers the request it is serving when it is told to stop, and
# no more: connections waiting meanwhile go to the other workers.
for my $pid (@old) {
	my ($after) = $log =~ /^INFO \[\d+\] stopping worker $pid of config generation 1: a new one is ready\n(.*)\z/ms;
	ok(defined $after, "the master logs that it stops old worker $pid");
	my $more = () = ($after // '') =~ /^DEBUG \[$pid\] req=\S+ POST /mg;
	ok($more <= 1, "old worker $pid served at most the request in progress after being told to stop ($more)");
}
like($t->daemon_log, qr/configuration reloaded; replacing workers one by one/, 'the master logs the reload');
is($t->status->{master}{workers_crashed}, 0, 'no worker crashed');
is($t->stop_daemon, 0, 'the daemon exits cleanly on SIGTERM');
is($t->daemon_errors, '', 'the daemon reported no memory errors');
is($t->nginx_alerts, '', 'nginx logged no alerts');
done_testing;
