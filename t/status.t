#!/usr/bin/perl
# status.t: the operator's status page, GET /scanqa/status: the master, every
# worker (pid, state, requests served, age and route of the request in
# progress), answers by endpoint and status code, latency histograms; the same
# in the Prometheus text format; and access from loopback only.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Select;
use IO::Socket::UNIX;
use Socket qw(SOCK_STREAM);
use Time::HiRes qw(sleep time);

use ScanQA::Test;

my $STATUS = '/scanqa/status';
my $QI = '/api/v1/quality/scanner/quick-inspection';

my $t = ScanQA::Test->new(conf => { workers => 3 });
my $org = $t->make_org;
my $user = $t->make_user($org, 'qa_inspector');

sub fresh_inspection { $t->make_inspection($org, $t->make_lp($org)) }
sub complete {
	my ($id, %o) = @_;
	return $t->request(POST => $QI, token => $user->{token},
		json => { inspection_id => $id, result => 'pass', inspection_method => 'scanner' }, %o);
}
sub code_count {
	my ($s, $endpoint, $code) = @_;
	return $s->{endpoints}{$endpoint}{status}{$code} // 0;
}

# ---- the JSON page ---------------------------------------------------------------

{
	ok($t->wait_workers_ready(3), 'the three workers are ready');
	my $r = $t->request(GET => $STATUS);
	is($r->{status}, 200, 'the status page answers 200 on loopback');
	like($r->{headers}{'content-type'} // '', qr{^application/json}, 'the status page is JSON by default');
	like($r->{headers}{'x-request-id'} // '', qr/^[0-9a-f]{32}$/, "the status page carries nginx's request id");
	my $s = $r->{json};

	is($s->{master}{pid}, $t->master_pid, "the page names the master's pid");
	like($s->{master}{started_at}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'master start time is ISO 8601 UTC');
	ok($s->{master}{uptime_seconds} >= 0, 'master uptime is given');
	is($s->{master}{config_generation}, 1, 'no reload yet: config generation 1');
	is($s->{master}{workers_spawned}, 3, 'three workers were spawned');
	is($s->{master}{workers_crashed}, 0, 'no worker crashed');

	my @w = @{ $s->{workers} };
	is_deeply([sort { $a <=> $b } map { $_->{pid} } @w], [$t->worker_pids],
		'the worker list is exactly the processes the master forked');
	my @idle = grep { $_->{state} eq 'idle' } @w;
	is(scalar @idle, 3, 'every worker is idle: the master serves the page on its own socket');
	ok(!grep({ defined $_->{current_request_ms} || defined $_->{current_route} || defined $_->{current_sql} } @idle),
		'an idle worker has no current request or SQL statement');
	ok(!grep({ $_->{config_generation} != 1 } @w), 'every worker runs config generation 1');
	is_deeply($s->{worker_states}, { starting => 0, idle => 3, busy => 0, stopping => 0 }, 'worker states are summed up');
	is($s->{saturation}{workers_configured}, 3, 'the page shows the configured worker count');
	is($s->{saturation}{listen_queue}{current}, 0, 'nothing waits in the accept queue');
	ok($s->{saturation}{listen_queue}{backlog} > 0, 'the accept queue size is shown');
	is($s->{master}{last_reload}{at}, undef, 'no reload yet');
	ok(exists $s->{endpoints}{$_}, "endpoint $_ is listed")
		for qw(health quick_inspection status not_found method_not_allowed);
}

# ---- counters move as requests are made --------------------------------------------

{
	my $before = $t->status;
	$t->request(GET => '/api/v1/health') for 1 .. 3;
	is(complete(fresh_inspection())->{status}, 200, 'a completion succeeds');
	is(complete('00000000-0000-4000-8000-0000000000ff')->{status}, 404, 'an unknown inspection: 404');
	is($t->request(POST => $QI, json => {})->{status}, 401, 'no token: 401');
	is($t->request(GET => '/api/v1/nope')->{status}, 404, 'an unknown path: 404');
	is($t->request(PUT => '/api/v1/health')->{status}, 405, 'a wrong method: 405');
	my $after = $t->status;

	my %want = (
		'health 200' => 3, 'quick_inspection 200' => 1, 'quick_inspection 404' => 1,
		'quick_inspection 401' => 1, 'not_found 404' => 1, 'method_not_allowed 405' => 1,
		'status 200' => 1,
	);
	for my $k (sort keys %want) {
		my ($ep, $code) = split ' ', $k;
		is(code_count($after, $ep, $code) - code_count($before, $ep, $code), $want{$k},
			"answers of $ep with status $code went up by $want{$k}");
	}
	is($after->{total_requests} - $before->{total_requests}, 9, 'total requests went up by the 9 made');
	my $served = sub { my $n = 0; $n += $_->{requests} for @{ $_[0]{workers} }; $n };
	is($served->($after) - $served->($before), 8, "the workers' request counts went up by the 8 API requests together (the master served the page)");

	for my $ep (qw(health quick_inspection status)) {
		my $h = $after->{endpoints}{$ep}{latency_ms};
		my @le = sort { $a <=> $b } grep { $_ ne '+Inf' } keys %{ $h->{le} };
		my @counts = map { $h->{le}{$_} } @le, '+Inf';
		ok(!grep({ $counts[$_] < $counts[$_ - 1] } 1 .. $#counts), "$ep: histogram buckets are cumulative");
		is($h->{le}{'+Inf'}, $h->{count}, "$ep: the +Inf bucket holds every answer");
		is($h->{count}, $after->{endpoints}{$ep}{requests}, "$ep: the histogram counts every request of the endpoint");
		ok($h->{sum} > 0, "$ep: the latency sum is positive");
	}
	is($after->{endpoints}{health}{latency_ms}{count} - $before->{endpoints}{health}{latency_ms}{count}, 3,
		'the health histogram counted the 3 health requests');
}

# ---- a request in progress ---------------------------------------------------------

{
	# Hold the inspection's row lock so the completion waits in the database
	# (lock_timeout is 2 s) while the page is read.
	my $id = fresh_inspection();
	my $lock = $t->connect_as('postgres');
	$lock->begin_work;
	$lock->do('SELECT 1 FROM quality_inspections WHERE id = ? FOR UPDATE', undef, $id);
	my $sock = $t->request_start(POST => $QI, token => $user->{token},
		json => { inspection_id => $id, result => 'pass', inspection_method => 'scanner' });
	my ($w, $s);
	my $deadline = time + 1.5;
	while (time < $deadline) {
		$s = $t->status;
		($w) = grep { ($_->{current_route} // '') eq 'quick_inspection' } @{ $s->{workers} };
		last if $w && ($w->{current_sql} // '') eq 'quick_inspection';
		sleep 0.02;
	}
	ok($w, 'a worker waiting in the database shows up as busy with route quick_inspection');
	is($w && $w->{state}, 'busy', 'its state is busy');
	ok($w && defined $w->{current_request_ms}, 'its current request has an age');
	is($w && $w->{current_sql}, 'quick_inspection', 'it shows the SQL statement it waits on');
	ok($w && defined $w->{current_sql_ms} && $w->{current_sql_ms} <= $w->{current_request_ms},
		'with the time spent in it so far');
	$lock->commit;
	$lock->disconnect;
	is($t->request_finish($sock)->{status}, 200, 'the waiting completion succeeds once the lock is released');
}

# ---- the Prometheus text format ----------------------------------------------------

# Parses the text exposition format 0.0.4; returns ({family => type}, [[name, {labels}, value], ...], [errors]).
sub parse_prometheus {
	my ($text) = @_;
	my (%type, @samples, @err);
	for my $line (split /\n/, $text) {
		if ($line =~ /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$/) {
			next;
		} elsif ($line =~ /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/) {
			push @err, "TYPE of $1 given twice" if $type{$1};
			$type{$1} = $2;
		} elsif ($line =~ /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/) {
			my ($name, $lbl, $v) = ($1, $2 // '', $3);
			my %l;
			while ($lbl =~ /\G([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"(?:,|$)/gc) {
				$l{$1} = $2;
			}
			push @err, "bad labels: $line" if length $lbl && (pos($lbl) // 0) != length $lbl;
			push @err, "bad value: $line" unless $v =~ /^(?:[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+)|[+-]Inf|NaN)$/;
			(my $fam = $name) =~ s/_(bucket|sum|count)$// if !$type{$name};
			$fam //= $name;
			push @err, "sample before its TYPE: $line" unless $type{$name} || $type{$fam};
			push @samples, [$name, \%l, $v];
		} else {
			push @err, "unparsable line: $line";
		}
	}
	return (\%type, \@samples, \@err);
}

{
	my $json = $t->status;
	my $r = $t->request(GET => "$STATUS?format=prometheus");
	is($r->{status}, 200, '?format=prometheus answers 200');
	is($r->{headers}{'content-type'}, 'text/plain; version=0.0.4; charset=utf-8',
		'Prometheus answer has the exposition format content type');
	like($r->{body}, qr/\n\z/, 'the exposition ends with a newline');
	my ($type, $samples, $err) = parse_prometheus($r->{body});
	is_deeply($err, [], 'every line of the exposition parses') or diag(join "\n", @$err);
	is($type->{scanqa_requests_total}, 'counter', 'scanqa_requests_total is a counter');
	is($type->{scanqa_request_duration_seconds}, 'histogram', 'scanqa_request_duration_seconds is a histogram');

	my %v;
	for my $s (@$samples) {
		my ($n, $l, $val) = @$s;
		my $key = $n . '{' . join(',', map { "$_=$l->{$_}" } sort keys %$l) . '}';
		$v{$key} = $val;
	}
	is($v{'scanqa_requests_total{code=200,endpoint=health}'}, code_count($json, 'health', 200),
		'health answers with 200 are the same as on the JSON page');
	is($v{'scanqa_requests_total{code=404,endpoint=not_found}'}, code_count($json, 'not_found', 404),
		'not_found answers are the same as on the JSON page');
	is_deeply([sort { $a <=> $b } map { $_->[1]{pid} } grep { $_->[0] eq 'scanqa_worker_requests_total' } @$samples],
		[$t->worker_pids], 'scanqa_worker_requests_total has one series per worker process');
	is($v{'scanqa_workers{state=busy}'}, 0, 'no worker is busy (the master serves the scrape)');
	is($type->{$_}, 'gauge', "$_ is a gauge") for qw(scanqa_listen_queue scanqa_listen_queue_max scanqa_listen_backlog);
	is($type->{scanqa_all_workers_busy_total}, 'counter', 'scanqa_all_workers_busy_total is a counter');
	is($type->{scanqa_queue_wait_seconds}, 'histogram', 'scanqa_queue_wait_seconds is a histogram');
	ok($v{'scanqa_queue_wait_seconds_count{}'} > 0, 'requests passed by nginx have their queue wait counted');
	is($v{'scanqa_start_time_seconds{}'} + 0 > 1e9, 1, 'master start time is in seconds since the epoch');

	for my $ep (qw(health quick_inspection status)) {
		my @b = sort { ($a->[1]{le} eq '+Inf') <=> ($b->[1]{le} eq '+Inf') || $a->[1]{le} <=> $b->[1]{le} }
			grep { $_->[0] eq 'scanqa_request_duration_seconds_bucket' && $_->[1]{endpoint} eq $ep } @$samples;
		ok(@b >= 2 && $b[-1][1]{le} eq '+Inf', "$ep: histogram has buckets ending in le=\"+Inf\"");
		ok(!grep({ $b[$_][2] < $b[$_ - 1][2] } 1 .. $#b), "$ep: bucket counts are cumulative");
		is($b[-1][2], $v{"scanqa_request_duration_seconds_count{endpoint=$ep}"}, "$ep: +Inf bucket equals _count");
		ok(defined $v{"scanqa_request_duration_seconds_sum{endpoint=$ep}"}, "$ep: histogram has a _sum");
	}

	my $bad = $t->request(GET => "$STATUS?format=xml");
	is($bad->{status}, 400, 'an unknown format is refused with 400');
	like($bad->{headers}{'content-type'} // '', qr{^application/json}, 'the refusal is JSON');
}

# ---- loopback only -----------------------------------------------------------------

sub forbidden {
	my ($r, $what) = @_;
	subtest $what => sub {
		is($r->{status}, 403, 'status 403');
		like($r->{headers}{'content-type'} // '', qr{^application/json}, 'JSON content type');
		is_deeply($r->{json}, { error => 'Forbidden' }, 'body is {"error":"Forbidden"}') or diag($r->{body});
		ok($r->{headers}{'x-request-id'}, 'carries X-Request-Id');
	};
}

{
	# 127.0.0.2 is a loopback address too, but not one the location allows: to
	# nginx it is just another client address, so this exercises the allow/deny
	# rules exactly as a remote client would.
	my $before = code_count($t->status, 'status', 200);
	forbidden($t->request(GET => $STATUS, from => '127.0.0.2'), 'a client at 127.0.0.2 is denied the status page');
	forbidden($t->request(GET => "$STATUS?format=prometheus", from => '127.0.0.2'),
		'a client at 127.0.0.2 is denied the Prometheus format');
	forbidden($t->request(GET => $STATUS, from => '127.0.0.2', headers => { 'X-Forwarded-For' => '127.0.0.1', 'X-Real-IP' => '127.0.0.1' }),
		'an X-Forwarded-For of 127.0.0.1 does not open the page');
	is(code_count($t->status, 'status', 200) - $before, 1, 'denied requests never reach the daemon (only our own page read counted)');
	is($t->request(GET => '/api/v1/health', from => '127.0.0.2')->{status}, 200, 'the API itself still answers 127.0.0.2');
	is($t->request(GET => "$STATUS/")->{status}, 404, 'a trailing slash is not the status page: 404');
	is($t->request(GET => '/api/../scanqa/status', from => '127.0.0.2')->{status}, 403,
		'a dot-segment path that normalises to the page is denied too');

	# The snippet: the one location that passes the page on allows loopback only.
	open my $fh, '<', ScanQA::Test::_snippet() or die $!;
	my $conf = do { local $/; <$fh> };
	my ($block) = $conf =~ /location = \/scanqa\/status \{(.*?)\n\}/s;
	ok($block, 'the nginx snippet has an exact-match location for /scanqa/status');
	is_deeply([($block // '') =~ /^\s*((?:allow|deny) [^;]+);/mg], ['allow 127.0.0.1', 'allow ::1', 'deny all'],
		'it allows 127.0.0.1 and ::1 and denies everyone else');
	is(scalar(() = $conf =~ /SCANQA_STATUS_PAGE/g), 1, 'only that location marks requests as status page requests');
}

# The daemon's own check: a FastCGI request for the page without nginx's mark
# (as a location passing everything to the daemon would send it) gets 404.
like($t->fastcgi_request($STATUS), qr/^Status: 404 /, 'without the mark of the nginx location the daemon answers 404');
like($t->fastcgi_request($STATUS, SCANQA_STATUS_PAGE => 1), qr/^Status: 200 /, 'with the mark it serves the page');

# ---- a client that drips its request ----------------------------------------------

# The master serves the page itself, between reaping and respawning workers. A peer
# of the status socket that sends its request a byte every 0.4 s never trips the
# 1-second read timeout; the master's deadline for status requests (2 s in all)
# must shut the connection down, so that a worker killed meanwhile is replaced
# while the drip would still be going on (it would take 16 s).
{
	ok($t->wait_workers_ready(3), 'three workers are ready before the drip');
	my $sock = IO::Socket::UNIX->new(Type => SOCK_STREAM, Peer => $t->status_socket_path)
		or die "connecting to the status socket: $!";
	# FCGI_BEGIN_REQUEST (version 1, type 1, id 1, length 8, responder role), then
	# the start of a PARAMS record: 40 bytes, never complete.
	my $bytes = pack('CCnnCC', 1, 1, 1, 8, 0, 0) . pack('nCC5', 1, 0, (0) x 5)
		. pack('CCnnCC', 1, 4, 1, 200, 0, 0) . ('x' x 16);
	my @before = $t->worker_pids;
	kill 'KILL', $before[0];
	my $sel = IO::Select->new($sock);
	my $drip_ends = time + 0.4 * length $bytes;
	my ($closed_at, $replaced_after, $sent);
	my $replaced = sub {
		my @now = $t->worker_pids;
		return @now == 3 && !grep { $_ == $before[0] } @now;
	};
	my $t0 = time;
	local $SIG{PIPE} = 'IGNORE';
	for my $i (0 .. length($bytes) - 1) {
		if ($sel->can_read(0)) {
			my $n = sysread($sock, my $buf, 4096);
			if (!$n) { $closed_at = $i; last; }
		}
		if (!defined syswrite($sock, substr($bytes, $i, 1))) { $closed_at = $i; last; }
		$sent++;
		$replaced_after //= time - $t0 if $replaced->();
		sleep 0.4;
	}
	# Once the connection is shut down, the master reaps and respawns at once;
	# without the deadline it would be held until the drip ends.
	while (!defined $replaced_after && time < $drip_ends) {
		$replaced_after = time - $t0 if $replaced->();
		sleep 0.05;
	}
	ok(defined $closed_at, 'the master shut the dripping connection down before the request was complete')
		or diag("all $sent bytes were sent, the connection stayed open");
	ok(defined $replaced_after, 'the killed worker was replaced while the drip was still going on')
		or diag(sprintf 'not replaced within the %.0f s the drip takes', $drip_ends - $t0);
	close $sock;
	like($t->daemon_log, qr/status socket: a request was not complete after 2000 ms in all: connection shut down/,
		'the master logged why it shut the connection down');
	ok($t->wait_workers_ready(3), 'three workers are ready again');
	is($t->request(GET => $STATUS)->{status}, 200, 'the status page answers again');
}

is($t->stop_daemon, 0, 'the daemon exits cleanly on SIGTERM');
is($t->daemon_errors, '', 'the daemon reported no memory errors');
is($t->nginx_alerts, '', 'nginx logged no alerts');
done_testing;
