#!/usr/bin/perl
# fault_race.t: 200 concurrent completions over 20 inspections, ten requests
# per inspection with mixed results, all in flight at once. Exactly one
# completion per inspection succeeds (20 successes); the other 180 are told
# the inspection is already completed; there are exactly 20 audit rows, and
# each license plate's status matches the result that won.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep time);

use ScanQA::Load;
use ScanQA::Test;
use ScanQA::Workload;

my $WORKERS = 4;
my ($N, $PER) = (20, 10);
my $t = ScanQA::Test->new(conf => { workers => $WORKERS });
my $w = ScanQA::Workload->new($t, inspections => $N);
my $ids = $w->ids;

# Request n completes inspection int(n / 10): the ten requests of an
# inspection follow each other, so the workers mostly race for the same row.
# Results alternate, so a wrong winner would show in the LP status.
my $make = sub { my ($n) = @_; $w->completion($n, int($n / $PER), $n % 2 ? 'fail' : 'pass') };

# Hold the first inspection's row lock until every worker waits on it, then
# let them all go at once.
my $lock = $t->connect_as('postgres');
$lock->begin_work;
$lock->do('SELECT 1 FROM quality_inspections WHERE id = ? FOR UPDATE', undef, $ids->[0]);
my $load = ScanQA::Load->start($t, clients => $N * $PER, requests => $N * $PER, seconds => 30, make => $make);
my $waiting = 0;
my $deadline = time + 1.5;    # below lock_timeout (2 s)
while (time < $deadline) {
	$waiting = $t->one(q{SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND wait_event_type = 'Lock'});
	last if $waiting >= $WORKERS;
	sleep 0.01;
}
note("requests waiting on the first inspection's row lock when it was released: $waiting");
$lock->rollback;
$lock->disconnect;
my $res = $load->finish;
note('requests: ' . ScanQA::Load->summary($res) . " of $res->{started} started, in " . sprintf('%.1f s', $res->{seconds}));

is($res->{started}, $N * $PER, 'all 200 requests were sent, at most 200 in flight at once');
is($res->{by_status}{200}, $N, 'exactly 20 succeed');
is($res->{by_status}{400}, $N * $PER - $N, 'the other 180 get 400');
is(scalar(grep { $_->{status} == 400 && ($_->{error} // '') ne 'Inspection already completed' } @{ $res->{results} }), 0,
	'each 400 says "Inspection already completed"');
my %ok;
$ok{ $_->{tag}{id} }++ for grep { $_->{status} == 200 } @{ $res->{results} };
is_deeply([sort values %ok], [(1) x $N], 'one success for each of the 20 inspections');

is($t->one('SELECT count(*) FROM quality_audit_log WHERE org_id = ?', $w->org), $N, 'exactly 20 audit rows');
$w->check($res, 'each stored result, audit row and LP status is the winner\'s');
is($t->status->{master}{workers_crashed}, 0, 'no worker crashed');
is($t->stop_daemon, 0, 'the daemon exits cleanly on SIGTERM');
is($t->daemon_errors, '', 'the daemon reported no memory errors');
is($t->nginx_alerts, '', 'nginx logged no alerts');
done_testing;
