#!/usr/bin/perl
# db_no_answer.t: a database that stops answering in the middle of a request (on
# another host: the network gone; here: the worker's PostgreSQL backend stopped
# with SIGSTOP, so the kernel still acknowledges every packet and neither TCP
# settings nor the server's statement_timeout can help). The worker gives up
# after statement_timeout + 2 s of its own clock, answers 503 with Retry-After: 1,
# drops that connection, connects again by itself between requests, and serves
# the next request on the new connection: it is never stuck. The TCP settings the
# daemon derives from statement_timeout (tcp_user_timeout, keepalives) are used
# unless conninfo sets them.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep time);

use ScanQA::Test;

my $t = ScanQA::Test->new(conf => { workers => 1, statement_timeout => 1000 });
my $org = $t->make_org('No Answer Org');
my $user = $t->make_user($org, 'qa_inspector');
my $barcode = $t->one('SELECT barcode FROM license_plates WHERE id = ?', $t->make_lp($org));
my $LOOKUP = "/api/warehouse/license-plates/barcode/$barcode";

like($t->daemon_log, qr/connected to the database \(.*tcp_user_timeout=3000 ms keepalives_idle=1 s\)/,
	'without settings in conninfo, tcp_user_timeout is statement_timeout + 2 s and keepalives start after statement_timeout');

is($t->request(GET => $LOOKUP, token => $user->{token})->{status}, 200, 'a look-up answers 200');
my ($worker) = $t->worker_pids;
my $backend = $t->one(q{SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND usename = 'scanqa_app'});
ok($backend, "the worker's PostgreSQL backend is $backend");

my $stopped = kill 'STOP', $backend;
END { kill 'CONT', $backend if $stopped && $backend }
ok($stopped, 'the backend is stopped (SIGSTOP): it takes the query and never answers');
my $r = $t->request(GET => $LOOKUP, token => $user->{token});
is($r->{status}, 503, 'a look-up to the silent database answers 503');
is($r->{json}{error}, 'Service unavailable', '...{"error":"Service unavailable"}');
is($r->{headers}{'retry-after'}, '1', '...with Retry-After: 1');
like($t->daemon_log, qr/database did not answer within 3000 ms \(statement \w+\)/,
	'the worker logs that it gave up after statement_timeout + 2 s');

my $connects = sub { scalar(() = $t->daemon_log =~ /connected to the database/g) };
my $until = time + 20;
sleep 0.1 while $connects->() < 2 && time < $until;
is($connects->(), 2, 'the idle worker connects again by itself, before any request asks it to');
$r = $t->request(GET => $LOOKUP, token => $user->{token});
is($r->{status}, 200, 'the next look-up, with the backend still stopped, answers 200 on the new connection') or diag($r->{body});
is_deeply([$t->worker_pids], [$worker], 'by the same worker process: nothing was stuck or killed');
kill 'CONT', $backend;
$stopped = 0;

# conninfo's own settings win over the derived ones.
$t->stop_daemon;
$t->rewrite_conf(conninfo => $t->conninfo . ' tcp_user_timeout=1234 keepalives_idle=7');
$t->start_daemon;
ok($t->wait_health(200), 'restarted with tcp_user_timeout and keepalives_idle in conninfo');
like($t->daemon_log, qr/tcp_user_timeout=1234 ms keepalives_idle=7 s\)/, 'the values from conninfo are used');

is($t->stop_daemon, 0, 'the daemon exits cleanly on SIGTERM');
is($t->daemon_errors, '', 'the daemon reported no memory errors');
is($t->nginx_alerts, '', 'nginx logged no alerts');
done_testing;
