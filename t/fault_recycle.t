#!/usr/bin/perl
# fault_recycle.t: worker recycling under load. With a small max_requests each
# worker leaves after that many requests and the master starts a new one;
# not one request fails meanwhile, and a worker leaving this way is not
# counted as a crash (no backoff).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;

use ScanQA::Load;
use ScanQA::Test;
use ScanQA::Workload;

my $WORKERS = 3;
my $MAX = 25;
my $N = 1200;
my $t = ScanQA::Test->new(conf => { workers => $WORKERS, max_requests => $MAX });
my $w = ScanQA::Workload->new($t, inspections => $N);

my $spawned_before = $t->status->{master}{workers_spawned};
my $load = ScanQA::Load->start($t, clients => 4 * $WORKERS, requests => $N, seconds => 60,
	make => sub { $w->completion($_[0]) });
my $res = $load->finish;
note('requests: ' . ScanQA::Load->summary($res) . " of $res->{started} started, in " . sprintf('%.1f s', $res->{seconds}));

is($res->{started}, $N, "all $N requests were made");
is_deeply($res->{by_status}, { 200 => $N }, 'not one request failed while workers were recycled');
$w->check($res, 'the database after the recycling');

my $s = $t->status;
my $recycled = () = $t->daemon_log =~ /served $MAX requests \(max_requests\); worker exits to be replaced/g;
note("workers recycled: $recycled; workers spawned during the load: " . ($s->{master}{workers_spawned} - $spawned_before));
# Each answer is served by some worker, and each worker leaves after $MAX
# (the status page's own reads count too).
ok($recycled >= int($N / $MAX) - $WORKERS, "workers left after $MAX requests, again and again ($recycled times)");
ok($s->{master}{workers_spawned} - $spawned_before >= $recycled - $WORKERS, 'and the master replaced them');
is($s->{master}{workers_crashed}, 0, 'a recycled worker is not counted as a crash');
unlike($t->daemon_log, qr/keep dying at start-up/, 'no crash-loop backoff was applied');
is(scalar(@{ $s->{workers} }), $WORKERS, "$WORKERS workers remain");
ok(!grep({ $_->{requests} > $MAX } @{ $s->{workers} }), "no worker served more than $MAX requests");
is($t->stop_daemon, 0, 'the daemon exits cleanly on SIGTERM');
is($t->daemon_errors, '', 'the daemon reported no memory errors');
is($t->nginx_alerts, '', 'nginx logged no alerts');
done_testing;
