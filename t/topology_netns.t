#!/usr/bin/perl
# topology_netns.t: scanqa past one host, on this one machine in network
# namespaces (issue 13, sections 2 and 4). An HAProxy edge with active health
# checks in front of two app hosts (nginx and scanqa each), a PostgreSQL
# primary with a synchronous streaming standby, and a client that drives a
# bounded load of quick-inspection completions and sync-offline batches
# through the edge. Under that load, one after the other:
#
#   1. an app host is killed: the edge routes around it, only the requests
#      in flight on it fail;
#   2. an app host's link is taken down: the same;
#   3. a rolling restart and reload of the app hosts: no request fails;
#   4. the database is partitioned away: quick 503s with Retry-After, then
#      recovery without a restart;
#   5. failover: the primary is killed, the edge fences it, the synchronous
#      standby is promoted with pg_ctl promote: every inspection and sync
#      action answered 200 is on the new primary, requests during the switch
#      get 503 with Retry-After, and the daemons recover by themselves.
#
# Each scenario ends with the invariants of the fault tests (every 200 is
# stored, nothing is half-applied) and no 504. Timings are printed as notes
# (the README's figures), never asserted. See ScanQA::Netns for the network
# safety rules: all addresses are inside namespaces this test creates, and
# the route is checked before any traffic.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use POSIX qw(floor strftime);
use Test::More;
use Time::HiRes qw(sleep time);

use ScanQA::Netns;

BEGIN {
	if (my $why = ScanQA::Netns->unavailable) {
		plan skip_all => $why;
	}
	for my $bin ('/usr/sbin/haproxy', '/usr/sbin/nginx', '/usr/lib/postgresql/15/bin/pg_basebackup') {
		plan skip_all => "$bin is missing (script/test installs haproxy, nginx and postgresql)" unless -x $bin;
	}
}

use ScanQA::Load;
use ScanQA::Test;
use ScanQA::Topology;
use ScanQA::Workload;

my $QUICK = '/api/v1/quality/scanner/quick-inspection';
my $SYNC  = '/api/v1/quality/scanner/sync-offline';
my $CLIENTS = 4;

# Removed by $net's cleanup, once every process in the namespaces is gone.
my $dir = tempdir('scanqa-topo-XXXXXX', TMPDIR => 1, CLEANUP => 0);
chmod 0711, $dir;
my $net = ScanQA::Netns->new(dir => $dir);
my %host = (edge => 10, app1 => 11, app2 => 12, db1 => 21, db2 => 22, client => 30);
$net->add_host($_ => $host{$_}) for sort keys %host;
my $EDGE = $net->addr('edge');

# ---- network safety, before any traffic ---------------------------------------
my @bad = $net->route_problems(client => $EDGE);
is_deeply(\@bad, [], "from the client namespace the edge ($EDGE) is reached over the test's own link, and 1.1.1.1 is unreachable")
	or BAIL_OUT('the test network is not isolated: no traffic is sent');
@bad = map { $net->route_problems($_ => $net->addr('edge')) } qw(app1 app2);
push @bad, $net->route_problems(edge => map { $net->addr($_) } qw(app1 app2 db1 db2));
push @bad, $net->route_problems(db2 => $net->addr('db1'));
is_deeply(\@bad, [], 'every host reaches its peers over its own link only, and nothing outside')
	or BAIL_OUT('the test network is not isolated: no traffic is sent');

# ---- the tiers -------------------------------------------------------------------
my %fig;    # the README's figures
my $t0 = time;
my $top = ScanQA::Topology->new(net => $net, dir => $dir);
$top->pg_primary('db1');
$top->pg_standby(db2 => 'db1');
$top->edge('edge', apps => [qw(app1 app2)], dbs => [qw(db1 db2)]);
$top->app($_, db_host => $EDGE) for qw(app1 app2);
for my $s ([scanqa_app => 'app1'], [scanqa_app => 'app2'], [postgresql => 'db1']) {
	ok($top->wait_haproxy_server(@$s, qr/^UP$/), "the edge sees $s->[1] UP");
}
is($top->haproxy_server(postgresql => 'db2')->{status}, 'MAINT', 'the standby db2 is not routed to (disabled until promoted)');
is($top->psql(db1 => q{SELECT sync_state FROM pg_stat_replication WHERE application_name = 'db2'}), "sync\n",
	'db2 is the synchronous standby of db1');
$fig{setup} = time - $t0;
note(sprintf 'topology up in %.1f s', $fig{setup});

# The test's view of the database: the primary's unix socket (no network).
my $t = ScanQA::Test->new(start => 0, db => { host => $top->pg_sock('db1'), port => 5432, name => 'scanqa' });
my $w = ScanQA::Workload->new($t, inspections => 9000);
my $ids = $w->ids;

# ---- the load ----------------------------------------------------------------------
# Request n completes inspection n (of the whole run: scenarios do not reuse
# any): every fifth as a one-action sync-offline batch with its own action id,
# the others as quick inspections.
# The action id of request n: unique in the run (the load runs in forked
# processes, which would all start from the same random state).
my $RUN = sprintf '%08x', (time ^ $$) & 0xffffffff;
sub action_id { sprintf '%s-0000-4000-8000-%012x', $RUN, $_[0] }

my $next = 0;    # the first inspection of the next scenario
sub request_for {
	my ($n) = @_;
	my $id = $ids->[$n] // die "out of inspections at $n";
	my $result = $n % 2 ? 'fail' : 'pass';
	return $w->completion($n, $n, $result) if $n % 5;
	my $action = action_id($n);
	return (POST => $SYNC, token => $w->token,
		json => { actions => [ { id => $action, type => 'quick_inspection',
			timestamp => strftime('%Y-%m-%dT%H:%M:%S.000Z', gmtime(floor(time) - 60)),
			payload => { inspection_id => $id, result => $result, inspection_method => 'scanner' } } ] },
		tag => { id => $id, result => $result, action => $action });
}

# One scenario's load from the client namespace through the edge; finish_load
# waits for it and moves $next past the inspections it used.
sub start_load {
	my (%o) = @_;
	my $base = $next;
	die "only " . (@$ids - $base) . " inspections left" if $base + $o{requests} > @$ids;
	return ScanQA::Load->start($t, netns => $net->ns('client'), host => $EDGE, port => 80,
		clients => $CLIENTS, requests => $o{requests}, seconds => $o{seconds} // 60, timeout => 45, retry_after => 1,
		make => sub { request_for($base + $_[0]) });
}

sub finish_load {
	my ($load) = @_;
	$load->stop;
	my $res = $load->finish;
	$next += $res->{started};
	return $res;
}

my @all;    # every answer of the run, for the final check on the new primary

# The invariants after a scenario: the quick completions through
# ScanQA::Workload's check (every 200 stored with its result, nothing
# half-applied, none reported twice), every sync action answered 200 stored as
# synced with its inspection completed, and no 504. Returns the requests that
# failed but whose completion committed all the same (outcome unknown to the
# client, which resends: the next attempt is refused as already completed or
# answered as a duplicate action), and what answered the failures: the daemon
# (through nginx, which adds X-Request-Id) or the edge itself.
sub check_scenario {
	my ($res, $what) = @_;
	push @all, @{ $res->{results} };
	my @quick = grep { !$_->{tag}{action} } @{ $res->{results} };
	$w->check({ results => \@quick }, "$what: the database holds every acknowledged completion, nothing half-applied");
	my @lost = sync_lost(grep { $_->{tag}{action} } @{ $res->{results} });
	is_deeply(\@lost, [], "$what: every sync action answered 200 is stored as synced, its inspection completed");
	is($res->{by_status}{504} // 0, 0, "$what: no 504");
	my %done = map { $_->[0] => 1 } @{ $t->dbh->selectall_arrayref(
		q{SELECT id FROM quality_inspections WHERE org_id = ? AND status = 'completed'}, undef, $w->org) };
	my @failed = grep { $_->{status} != 200 } @{ $res->{results} };
	my %from;
	$from{ $_->{status} == 0 ? 'no answer' : ($_->{rid} ? "$_->{status} from the host" : "$_->{status} from the edge") }++ for @failed;
	my $fig = { unknown => scalar(grep { $done{ $_->{tag}{id} } } @failed),
		from => join(', ', map { "$from{$_} x $_" } sort keys %from) || 'none' };
	note("$what: " . ScanQA::Load->summary($res) . " of $res->{started}; failures: $fig->{from}; "
		. "failed but committed (outcome unknown to the client): $fig->{unknown}");
	return $fig;
}

# The sync actions answered 200 (success 1) that the database does not hold as
# synced, with the inspection completed with the action's result.
sub sync_lost {
	my (@r) = @_;
	my @ok = grep { $_->{status} == 200 } @r;
	return () unless @ok;
	my %have = map { $_->{action} => $_ } @{ $t->rows(q{
		SELECT q.action_payload->>'id' AS action, q.sync_status, i.status, i.result
		  FROM scanner_offline_queue q
		  JOIN quality_inspections i ON i.id = (q.action_payload->'payload'->>'inspection_id')::uuid
		 WHERE q.org_id = ? AND q.sync_status = 'synced'}, $w->org) };
	my @lost;
	for my $r (@ok) {
		my $h = $have{ $r->{tag}{action} };
		push @lost, "request $r->{n}: 200 with success " . ($r->{json}{success} // 'none') if ($r->{json}{success} // 0) != 1;
		push @lost, "request $r->{n}: action $r->{tag}{action} not on the database" unless $h;
		push @lost, "request $r->{n}: inspection $h->{status} / " . ($h->{result} // 'NULL')
			if $h && ($h->{status} ne 'completed' || $h->{result} ne $r->{tag}{result});
	}
	return @lost;
}

# The first answer with $status among requests sent at or after $since, as it
# finished (undef when none by $timeout s).
sub first_answer_after {
	my ($load, $since, $status, $timeout) = @_;
	my $deadline = time + ($timeout // 30);
	while (time < $deadline) {
		my ($r) = sort { $a->{t1} <=> $b->{t1} } grep { $_->{status} == $status && $_->{t0} >= $since } @{ $load->results_so_far };
		return $r if $r;
		sleep 0.05;
	}
	return undef;
}


# The failures of a tally that are not what the edge or the daemon answers
# when a host or the database is away: a 503 from the daemon or the edge, JSON
# {"error":"Service unavailable"} with Retry-After: 1, or a 502 with the same
# JSON for a request in flight on a host that died or that the edge took out
# (from the edge, or from the host's nginx when only the daemon had died).
# Connections closed without an answer (status 0) are left to the caller.
sub not_unavailable {
	my (@r) = @_;
	return map { "request $_->{n}: $_->{status} " . ($_->{error} // '') . ' Retry-After ' . ($_->{retry_after} // 'none') }
		grep { $_->{status} != 0 && ($_->{status} !~ /^50[23]$/ || ($_->{error} // '') ne 'Service unavailable'
			|| ($_->{content_type} // '') !~ m{^application/json} || ($_->{status} == 503 && ($_->{retry_after} // '') ne '1')) }
		grep { $_->{status} != 200 } @r;
}

# ---- 1. an app host killed under load -----------------------------------------------
{
	# Every scenario allows more requests than it needs and stops its load once
	# it has seen enough: on a fast machine a smaller cap could all be answered
	# before the edge marks the host DOWN (seen with 600 in a package-test run).
	my $load = start_load(requests => 1200);
	ok($load->wait_answered(80), 'app host killed: the load runs through the edge (80 answers)');
	my $killed_at = time;
	ok($net->kill_host('app1') >= 2, 'app host killed: every process of app1 (nginx, scanqa) gets SIGKILL');
	ok($top->wait_haproxy_server(scanqa_app => 'app1', qr/^DOWN/), 'the edge marks app1 DOWN');
	my $down_at = time;
	my $k = $load->answered;
	ok($load->wait_answered($k + 120), 'requests keep being answered, by app2 alone (120 more)');
	my $res = finish_load($load);
	my @failed = grep { $_->{status} != 200 } @{ $res->{results} };
	is_deeply([map { "request $_->{n}: $_->{status}" } grep { $_->{t0} >= $down_at } @failed], [],
		'app host killed: every request sent once the edge marked app1 DOWN succeeded');
	is_deeply([not_unavailable(@failed)], [], 'the requests in flight on app1 got 502 JSON, or no answer');
	check_scenario($res, 'app host killed');
	$fig{kill} = { failed => scalar @failed, detect => $down_at - $killed_at };
	note(sprintf 'app host killed: %d failed (in flight on app1, or sent to it before the edge marked it DOWN, %.1f s after the kill)',
		scalar @failed, $down_at - $killed_at);

	$top->app_start('app1');
	ok($top->wait_haproxy_server(scanqa_app => 'app1', qr/^UP$/), 'app1, started again, is UP at the edge');
}

# ---- 2. an app host's link taken down under load -------------------------------------
{
	my $load = start_load(requests => 1200);
	ok($load->wait_answered(80), 'link down: the load runs (80 answers)');
	my $cut_at = time;
	$net->link_down('app2');
	ok($top->wait_haproxy_server(scanqa_app => 'app2', qr/^DOWN/), "the edge marks app2 DOWN when its link is down");
	my $down_at = time;
	my $k = $load->answered;
	ok($load->wait_answered($k + 120), 'requests keep being answered by app1 (120 more)');
	my $res = finish_load($load);
	my @failed = grep { $_->{status} != 200 } @{ $res->{results} };
	is_deeply([map { "request $_->{n}: $_->{status}" } grep { $_->{t0} >= $down_at } @failed], [],
		'link down: every request sent once the edge marked app2 DOWN succeeded');
	is_deeply([not_unavailable(@failed)], [], 'the requests the edge had sent to app2 got 502 JSON, or no answer (none waited for a 504)');
	check_scenario($res, 'app host link down');
	$fig{link} = { failed => scalar @failed, detect => $down_at - $cut_at };
	note(sprintf 'link down: %d failed (sent to app2 before the edge marked it DOWN, %.1f s after the cut)', scalar @failed, $down_at - $cut_at);

	$net->link_up('app2');
	ok($top->wait_haproxy_server(scanqa_app => 'app2', qr/^UP$/), 'app2 is UP again once its link is back');
}

# ---- 3. rolling restart and reload of the app hosts ------------------------------------
{
	my $load = start_load(requests => 2500, seconds => 120);
	ok($load->wait_answered(40), 'rolling: the load runs (40 answers)');
	# app1: drained at the edge, stopped, started (a package upgrade), put back.
	$top->haproxy('set server scanqa_app/app1 state drain');
	my $deadline = time + 30;
	sleep 0.05 while time < $deadline && $top->haproxy_server(scanqa_app => 'app1')->{scur} > 0;
	$top->app_stop('app1');
	$top->app_start('app1');
	$top->haproxy('set server scanqa_app/app1 state ready');
	ok($top->wait_haproxy_server(scanqa_app => 'app1', qr/^UP$/), 'app1, restarted behind a drain, is UP again');
	my $k = $load->answered;
	ok($load->wait_answered($k + 60), 'requests keep being answered (60 more)');
	# app2: reloaded in place (scanqa reload, nginx SIGHUP) while it serves.
	$top->app_reload('app2');
	$k = $load->answered;
	ok($load->wait_answered($k + 60), 'requests keep being answered after app2 reloaded (60 more)');
	my $res = finish_load($load);
	is_deeply($res->{by_status}, { 200 => $res->{started} }, 'rolling restart and reload: every request answered 200');
	check_scenario($res, 'rolling restart and reload');
	$fig{rolling} = { n => $res->{started}, failed => $res->{started} - ($res->{by_status}{200} // 0) };
}

# ---- 4. the database partitioned away -------------------------------------------------
{
	my $load = start_load(requests => 1500, seconds => 90);
	ok($load->wait_answered(60), 'database partitioned: the load runs (60 answers)');
	my $cut_at = time;
	$net->link_down('db1');
	my $k = $load->answered;
	ok($load->wait_answered($k + 24, 40), 'requests are answered while the database is unreachable (24 answers)');
	my $up_at = time;
	$net->link_up('db1');
	my $back = first_answer_after($load, $up_at, 200, 40);
	ok($back, 'once the link is back, completions succeed again, without a restart');
	$k = $load->answered;
	ok($load->wait_answered($k + 60), 'and keep succeeding (60 more)');
	my $res = finish_load($load);
	my @failed = grep { $_->{status} != 200 } @{ $res->{results} };
	my @r503 = grep { $_->{status} == 503 } @failed;
	ok(@r503 >= 8, 'requests during the partition got 503 (' . scalar(@r503) . ')');
	is_deeply([not_unavailable(@failed)], [], 'database partitioned: every failure is a 503 JSON with Retry-After: 1 (or a 502 the edge cut)');
	is_deeply([map { "request $_->{n}" } grep { $_->{status} == 0 } @failed], [], 'every request got an answer');
	check_scenario($res, 'database partitioned');
	my @lat = sort { $a <=> $b } map { $_->{t1} - $_->{t0} } grep { $_->{t0} >= $cut_at + 3 && $_->{t1} <= $up_at } @r503;
	$fig{partition} = { failed => scalar @failed, r503 => scalar @r503, median => $lat[$#lat / 2] // 0, max => $lat[-1] // 0,
		recover => ($back->{t1} // $up_at) - $up_at, down => $up_at - $cut_at };
	note(sprintf 'partition of %.1f s: %d failed (%d x 503); 503s sent 3 s after the cut: median %.0f ms, max %.0f ms; first 200 %.1f s after the link came back',
		$fig{partition}{down}, scalar @failed, scalar @r503, 1000 * $fig{partition}{median}, 1000 * $fig{partition}{max}, $fig{partition}{recover});
	ok($top->wait_sync(db1 => 'db2', 'sync'), 'db2 is the synchronous standby again');
	ok($top->wait_haproxy_server(scanqa_app => $_, qr/^UP$/), "$_ is UP at the edge") for qw(app1 app2);
}

# ---- 5. failover to the synchronous standby -------------------------------------------
{
	is($top->psql(db1 => q{SELECT sync_state FROM pg_stat_replication WHERE application_name = 'db2'}), "sync\n",
		'failover: db2 is the synchronous standby before the primary dies');
	my @masters = map { $top->daemon_pid($_) } qw(app1 app2);
	my $load = start_load(requests => 1500, seconds => 120);
	ok($load->wait_answered(100), 'failover: the load runs (100 answers)');
	my $killed_at = time;
	ok($net->kill_host('db1') >= 1, 'the primary db1 is killed (SIGKILL to every process of its host)');
	ok($top->wait_haproxy_server(postgresql => 'db1', qr/^DOWN/), 'the edge marks db1 DOWN');
	# The failover procedure: fence the old primary at the router first, so
	# that it can never be chosen again, then promote, then route.
	$top->haproxy('disable server postgresql/db1');
	my $promote_at = time;
	$top->pg_promote('db2');
	is($top->psql(db2 => 'SELECT pg_is_in_recovery()'), "f\n", 'db2 is promoted: a primary');
	$top->haproxy('enable server postgresql/db2');
	ok($top->wait_haproxy_server(postgresql => 'db2', qr/^UP$/), 'the edge routes PostgreSQL to db2');
	my $routed_at = time;
	my $back = first_answer_after($load, $routed_at, 200, 40);
	ok($back, 'the daemons answer 200 again through the new primary, without a restart');
	my $k = $load->answered;
	ok($load->wait_answered($k + 100), 'and keep succeeding (100 more)');
	my $res = finish_load($load);
	is_deeply([map { $top->daemon_pid($_) } qw(app1 app2)], \@masters, 'the same daemons served throughout');

	# The checks read the new primary from here on.
	$t->use_db(host => $top->pg_sock('db2'));
	my @failed = grep { $_->{status} != 200 } @{ $res->{results} };
	is_deeply([not_unavailable(@failed)], [],
		'failover: every request that failed got a 503 JSON with Retry-After: 1 (or a 502 the edge cut)');
	is_deeply([map { "request $_->{n}" } grep { $_->{status} == 0 } @failed], [], 'every request got an answer');
	my $fig = check_scenario($res, 'failover');
	$fig{failover} = {
		failed  => scalar @failed,
		by      => $fig->{from},
		recover => ($back->{t1} // time) - $killed_at,
		promote => $routed_at - $promote_at,
		unknown => $fig->{unknown},
	};
	note(sprintf 'failover: %d failed (%s); first 200 %.1f s after the kill; promote to routed %.1f s; %d failed but committed',
		@{ $fig{failover} }{qw(failed by recover promote unknown)});
}

# ---- the whole run, on the new primary -------------------------------------------------
{
	my @ok = grep { $_->{status} == 200 } @all;
	my @quick = grep { !$_->{tag}{action} } @all;
	my $fig = $w->check({ results => \@quick }, 'the whole run: every completion answered 200 in any scenario is on the new primary');
	my @lost = sync_lost(grep { $_->{tag}{action} } @all);
	my %stored = map { $_->{id} => $_->{status} } @{ $t->rows('SELECT id, status FROM quality_inspections WHERE org_id = ?', $w->org) };
	my $lost = grep { ($stored{ $_->{tag}{id} } // '') ne 'completed' } @ok;
	is($lost + @lost, 0, 'acknowledged writes lost: 0 (of ' . scalar(@ok) . ' answered 200)');
	$fig{total} = { requests => scalar @all, ok => scalar @ok, lost => $lost + @lost };
}

# ---- logs ----------------------------------------------------------------------------
for my $h (qw(app1 app2)) {
	is(join('', grep { /\[(alert|crit|emerg)\]/ } split /^/, $top->nginx_error_log($h)), '', "nginx on $h logged no alerts");
	like($top->nginx_access_log($h), qr/^\Q${\ $net->addr('client')}\E /m,
		"nginx on $h logs the client's own address (realip from the edge's X-Forwarded-For)");
}
my $hap = $top->haproxy_log;
unlike($hap, qr{ -?\d+/-?\d+/-?\d+/-?\d+/-?\d+ 504 }, 'the edge answered no 504 (its log)');

diag(sprintf "figures (load average %s; setup %.0f s, whole test %.0f s): app host killed: %d failed, DOWN after %.1f s; link down: %d failed, DOWN after %.1f s; "
	. "partition: %d failed (%d x 503), median %.0f ms, recovered %.1f s after the link; rolling: %d requests, %d failed; failover: %d failed (%s), "
	. "recovered %.1f s after the kill (promote to routed %.1f s), %d failed but committed; whole run: %d requests, %d x 200, %d acknowledged lost",
	_loadavg(), $fig{setup}, time - $t0, $fig{kill}{failed}, $fig{kill}{detect}, $fig{link}{failed}, $fig{link}{detect},
	$fig{partition}{failed}, $fig{partition}{r503}, 1000 * $fig{partition}{median}, $fig{partition}{recover}, $fig{rolling}{n}, $fig{rolling}{failed},
	$fig{failover}{failed}, $fig{failover}{by}, $fig{failover}{recover}, $fig{failover}{promote}, $fig{failover}{unknown},
	$fig{total}{requests}, $fig{total}{ok}, $fig{total}{lost}) if $fig{total};

sub _loadavg { open my $f, '<', '/proc/loadavg' or return '?'; my $l = <$f>; return join ' ', (split ' ', $l)[0 .. 2] }

done_testing;
