#!/usr/bin/perl
# slow_request.t: a request that takes at least slow_request_ms is logged at
# warn level, with its request id, method, route, status, duration and the SQL
# statement it spent longest in (php-fpm's slowlog names the function); with
# slow_request_ms = 0 nothing is logged as slow.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;

use ScanQA::Test;

my $QI = '/api/v1/quality/scanner/quick-inspection';
my $SLEEP_MS = 400;

# log_level warn: the slow-request line must get through when info lines do not.
my $t = ScanQA::Test->new(conf => { workers => 2, slow_request_ms => 200, log_level => 'warn' });
my $org = $t->make_org;
my $user = $t->make_user($org, 'qa_inspector');

# Every completion writes one audit row; this trigger makes that take $SLEEP_MS.
$t->dbh->do(qq{CREATE FUNCTION test_slow_audit() RETURNS trigger LANGUAGE plpgsql AS
	\$\$ BEGIN PERFORM pg_sleep($SLEEP_MS / 1000.0); RETURN NEW; END \$\$});
$t->dbh->do('CREATE TRIGGER test_slow_audit BEFORE INSERT ON quality_audit_log FOR EACH ROW EXECUTE FUNCTION test_slow_audit()');

sub complete {
	my $id = $t->make_inspection($org, $t->make_lp($org));
	return $t->request(POST => $QI, token => $user->{token},
		json => { inspection_id => $id, result => 'pass', inspection_method => 'scanner' });
}
sub slow_lines { grep { /slow request/ } split /\n/, $t->daemon_log }

{
	my $r = complete();
	is($r->{status}, 200, 'a completion slowed down by the database succeeds');
	my $rid = $r->{headers}{'x-request-id'};
	my @l = grep { /req=\Q$rid\E / } slow_lines();
	is(scalar @l, 1, 'it is logged once as a slow request, under its request id') or diag($t->daemon_log);
	like($l[0] // '', qr/^WARN \[\d+\] req=\Q$rid\E slow request: POST quick_inspection -> 200 in (\d+) ms; longest SQL: quick_inspection, (\d+) ms$/,
		'the line names method, route, status, duration, and the SQL statement the worker waited on');
	my ($ms, $sql_ms) = ($l[0] // '') =~ / in (\d+) ms; longest SQL: \w+, (\d+) ms$/;
	ok(defined $ms && $ms >= $SLEEP_MS, "the logged duration ($ms ms) covers the ${SLEEP_MS} ms spent in the database");
	ok(defined $sql_ms && $sql_ms >= $SLEEP_MS && $sql_ms <= $ms,
		"the statement's time ($sql_ms ms) covers the ${SLEEP_MS} ms and is part of the request's");
}

{
	ok($t->reload(slow_request_ms => 0), 'reload with slow_request_ms = 0');
	my $before = scalar slow_lines();
	is(complete()->{status}, 200, 'the slow completion succeeds again');
	is(scalar slow_lines(), $before, 'with slow_request_ms = 0 it is not logged as slow');
}

is($t->stop_daemon, 0, 'the daemon exits cleanly on SIGTERM');
is($t->daemon_errors, '', 'the daemon reported no memory errors');
is($t->nginx_alerts, '', 'nginx logged no alerts');
done_testing;
