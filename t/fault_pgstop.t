#!/usr/bin/perl
# fault_pgstop.t: PostgreSQL stopped and started again under load. While it is
# down every request gets a quick 503 JSON from the daemon itself (no worker
# hangs or crashes: the same processes serve throughout), success returns
# once it is back, and no completion whose COMMIT outcome was unknown is
# reported as a success: every 200 is a stored completion, and the database
# holds nothing half-applied.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use List::Util qw(max);
use Test::More;
use Time::HiRes qw(sleep time);

use ScanQA::Load;
use ScanQA::Test;
use ScanQA::Workload;

my $WORKERS = 3;
my $t = ScanQA::Test->new(conf => { workers => $WORKERS }, private_pg => 1);
my $w = ScanQA::Workload->new($t, inspections => 20000);

my @pids = $t->worker_pids;
my $load = ScanQA::Load->start($t, clients => 2 * $WORKERS, requests => 20000, seconds => 60,
	make => sub { $w->completion($_[0]) });
ok($load->wait_answered(100), 'the load is under way (100 answers)');

my $stop_at = time;
$t->stop_pg;
my $down_at = time;
note(sprintf 'PostgreSQL took %.0f ms to stop (fast shutdown)', 1000 * ($down_at - $stop_at));
my $answered = $load->answered;
ok($load->wait_answered($answered + 200, 30), 'requests are answered while PostgreSQL is down (200 answers)');
my $start_at = time;
$t->start_pg;
my $up_at = time;

# Success returns: a 200 for a request sent after PostgreSQL accepted connections again.
my $back;
while (time < $up_at + 30) {
	($back) = sort { $a->{t1} <=> $b->{t1} } grep { $_->{status} == 200 && $_->{t0} >= $up_at } @{ $load->results_so_far };
	last if $back;
	sleep 0.05;
}
ok($back, 'once PostgreSQL is back, completions succeed again');
note(sprintf 'first success %.0f ms after PostgreSQL was up again', 1000 * (($back->{t1} // $up_at) - $up_at));
$answered = $load->answered;
ok($load->wait_answered($answered + 100), 'and keep succeeding (100 more answers)');
$load->stop;
my $res = $load->finish;
note('requests: ' . ScanQA::Load->summary($res) . " of $res->{started} started, in " . sprintf('%.1f s', $res->{seconds}));

my %other = %{ $res->{by_status} };
delete @other{200, 503};
is_deeply(\%other, {}, 'every answer is 200 or 503: no 502 (crashed worker), no 504 (hung worker), none lost');
my @r503 = grep { $_->{status} == 503 } @{ $res->{results} };
ok(@r503 >= 100, 'requests during the outage got 503 (' . scalar(@r503) . ')');
is(scalar(grep { ($_->{error} // '') ne 'Service unavailable' || ($_->{content_type} // '') !~ m{^application/json} } @r503), 0,
	'each 503 is JSON {"error":"Service unavailable"}');
is(scalar(grep { ($_->{retry_after} // '') ne '1' } @r503), 0, 'each 503 comes from the daemon itself, with Retry-After: 1');
my @lat = sort { $a <=> $b } map { $_->{t1} - $_->{t0} } grep { $_->{t0} >= $down_at && $_->{t1} <= $start_at } @r503;
note(sprintf '503 answers while PostgreSQL was down: %d, latency median %.1f ms, max %.1f ms',
	scalar @lat, 1000 * ($lat[$#lat / 2] // 0), 1000 * ($lat[-1] // 0));
my @late = grep { $_->{status} == 200 && $_->{t0} >= $down_at && $_->{t1} <= $start_at } @{ $res->{results} };
is(scalar @late, 0, 'no request sent while PostgreSQL was down was reported as a success');

is_deeply([$t->worker_pids], \@pids, 'the same worker processes served before, during and after the outage');
my $s = $t->status;
is($s->{master}{workers_crashed}, 0, 'no worker crashed');
is(scalar(grep { $_->{state} eq 'idle' } @{ $s->{workers} }), $WORKERS, 'no worker is stuck: all idle (the master serves the page)');

my $fig = $w->check($res, 'the database after the outage');
note("completed inspections: $fig->{completed}; 200 answers: $fig->{ok}; completed but answered 503 (outcome unknown to the client): $fig->{unknown}");
like($t->daemon_log, qr/database connection lost|database connection failed/, 'the workers log the lost connection');
is($t->stop_daemon, 0, 'the daemon exits cleanly on SIGTERM');
is($t->daemon_errors, '', 'the daemon reported no memory errors');
is($t->nginx_alerts, '', 'nginx logged no alerts');
done_testing;
