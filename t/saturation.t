#!/usr/bin/perl
# saturation.t: every worker busy, requests waiting in the socket's backlog.
# A held row lock makes the workers wait in the database while the bounded
# load keeps more requests coming; meanwhile the status page (served by the
# master on its own socket) still answers and shows the accept queue (what
# `ss -xl` shows as Recv-Q), its maximum and size, the count of moments when
# every worker was busy, and each worker's route and SQL statement; so does
# `scanqa status`. Once the lock is gone every request is answered and the
# time they waited shows in the queue-wait histogram.

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
my $WAITING = 6;
my $t = ScanQA::Test->new(conf => { workers => $WORKERS, lock_timeout => 30000, statement_timeout => 40000,
	listen_backlog => 64 });
my $w = ScanQA::Workload->new($t, inspections => 10);
ok($t->wait_workers_ready($WORKERS), 'the workers are ready');
my $before = $t->status;
is($before->{saturation}{listen_queue}{current}, 0, 'nothing waits in the accept queue at first');
my $somaxconn = do { open my $f, '<', '/proc/sys/net/core/somaxconn' or die $!; <$f> + 0 };
is($before->{saturation}{listen_queue}{backlog}, $somaxconn < 64 ? $somaxconn : 64,
	'the backlog shown is listen_backlog as the kernel applies it');

# Every request completes the same, locked, inspection.
my $id = $w->ids->[0];
my $lock = $t->connect_as('postgres');
$lock->begin_work;
$lock->do('SELECT 1 FROM quality_inspections WHERE id = ? FOR UPDATE', undef, $id);
my $load = ScanQA::Load->start($t, clients => $WORKERS + $WAITING, requests => $WORKERS + $WAITING, seconds => 60,
	make => sub { $w->completion($_[0], 0, 'pass') });

my ($s, $deadline) = (undef, time + 30);
while (time < $deadline) {
	$s = $t->status;
	last if $s->{saturation}{listen_queue}{current} >= $WAITING
		&& $WORKERS == grep { ($_->{current_sql} // '') eq 'quick_inspection' } @{ $s->{workers} };
	sleep 0.05;
}
subtest 'while every worker waits on the lock' => sub {
	is($s->{worker_states}{busy}, $WORKERS, 'the status page answers, and shows every worker busy');
	is($s->{saturation}{listen_queue}{current}, $WAITING, "the accept queue holds the $WAITING other requests");
	ok($s->{saturation}{listen_queue}{max} >= $WAITING, 'its maximum is at least that');
	ok($s->{saturation}{all_workers_busy} >= 1, 'the moment every worker became busy is counted');
	for my $wk (@{ $s->{workers} }) {
		is($wk->{current_route}, 'quick_inspection', "worker $wk->{pid} shows its route");
		is($wk->{current_sql}, 'quick_inspection', "worker $wk->{pid} shows the SQL statement it waits on");
	}

	my $ss = `ss -xlH 2>/dev/null`;
	my ($recvq) = $ss =~ /^u_str\s+LISTEN\s+(\d+)\s+\d+\s+\Q@{[$t->socket_path]}\E\s/m;
	if (defined $recvq) {
		is($recvq, $WAITING, "ss -xl shows the same Recv-Q ($recvq)");
	} else {
		note("ss -xl did not list the socket:\n$ss");
	}

	my $prom = $t->request(GET => '/scanqa/status?format=prometheus')->{body};
	like($prom, qr/^scanqa_listen_queue $WAITING$/m, 'Prometheus: scanqa_listen_queue');
	like($prom, qr/^scanqa_workers\{state="busy"\} $WORKERS$/m, 'Prometheus: every worker busy');
	like($prom, qr/^scanqa_all_workers_busy_total [1-9]\d*$/m, 'Prometheus: scanqa_all_workers_busy_total');

	my $out = `"@{[ScanQA::Test::_bin()]}" -c "@{[$t->conf_path]}" status --interval 0.2 2>&1`;
	is($?, 0, 'scanqa status answers too') or diag($out);
	like($out, qr/^queue\s+$WAITING waiting for a worker \(max \d+, backlog \d+\)\s+every worker busy: [1-9]\d* times/m,
		'scanqa status prints the queue and the busy count');
	is(scalar(() = $out =~ /^\d+\s+busy\s+1\s+\d+\s+\d+\s+quick_inspection\s+quick_inspection \(\d+\)$/mg), $WORKERS,
		'and each worker busy in quick_inspection, waiting on its SQL statement');
	note($out);
};

sleep 0.3;    # every waiting request has now waited at least this long
$lock->rollback;
$lock->disconnect;
my $res = $load->finish;
note('requests: ' . ScanQA::Load->summary($res));
is_deeply($res->{by_status}, { 200 => 1, 400 => $WORKERS + $WAITING - 1 },
	'once the lock is gone every request is answered: one completion, the others "already completed"');
my $after = $t->status;
is($after->{saturation}{listen_queue}{current}, 0, 'the accept queue is empty again');
ok($after->{saturation}{listen_queue}{max} >= $WAITING, 'its maximum is kept');
my $h = $after->{saturation}{queue_wait_ms};
is($h->{count} - $before->{saturation}{queue_wait_ms}{count}, $WORKERS + $WAITING,
	'each request passed on by nginx has its wait for a worker counted');
ok($h->{count} - $h->{le}{250} >= $WAITING, "the $WAITING that waited in the queue are in buckets above 250 ms");

is($t->stop_daemon, 0, 'the daemon exits cleanly on SIGTERM');
is($t->daemon_errors, '', 'the daemon reported no memory errors');
is($t->nginx_alerts, '', 'nginx logged no alerts');
done_testing;
