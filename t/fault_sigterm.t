#!/usr/bin/perl
# fault_sigterm.t: SIGTERM under load. The master removes the socket, so nginx
# can no longer hand over new requests (502 JSON: no connection was made);
# every request the daemon had already accepted, in progress or waiting in the
# backlog, is answered; then the workers and the master exit with status 0.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use POSIX qw(WIFEXITED WEXITSTATUS);
use Test::More;
use Time::HiRes qw(sleep time);

use ScanQA::Load;
use ScanQA::Test;
use ScanQA::Workload;

my $WORKERS = 3;
my $t = ScanQA::Test->new(conf => { workers => $WORKERS, log_level => 'debug' });
my $w = ScanQA::Workload->new($t, inspections => 3000);
# Some time in the database per completion, so requests are in progress and
# others wait in the backlog when the signal comes.
$t->dbh->do(q{CREATE FUNCTION test_slow_audit() RETURNS trigger LANGUAGE plpgsql AS
	$$ BEGIN PERFORM pg_sleep(0.01); RETURN NEW; END $$});
$t->dbh->do('CREATE TRIGGER test_slow_audit BEFORE INSERT ON quality_audit_log FOR EACH ROW EXECUTE FUNCTION test_slow_audit()');

my @workers = $t->worker_pids;
my $load = ScanQA::Load->start($t, clients => 8 * $WORKERS, requests => 3000, seconds => 30,
	make => sub { $w->completion($_[0]) });
ok($load->wait_answered(150), 'the load is under way (150 answers)');

my $term_at = time;
my $status = $t->stop_daemon(timeout => 60);
my $stopped_s = time - $term_at;
ok(defined $status && WIFEXITED($status) && WEXITSTATUS($status) == 0, 'the master exits with status 0 after SIGTERM')
	or diag('status: ' . ($status // 'undef'));
note(sprintf 'the daemon stopped %.0f ms after SIGTERM', 1000 * $stopped_s);
is(scalar(grep { kill 0, $_ } @workers), 0, 'no worker outlives the master');
ok(!-e $t->socket_path, 'the socket is removed');

my $answered_at_exit = $load->answered;
ok($load->wait_answered($answered_at_exit + 30), 'the load goes on against nginx alone (30 more answers)');
$load->stop;
my $res = $load->finish;
note('requests: ' . ScanQA::Load->summary($res) . " of $res->{started} started");

my %other = %{ $res->{by_status} };
delete @other{200, 502};
is_deeply(\%other, {}, 'every request got 200, or 502 once the daemon was gone');
my @bad502 = grep { $_->{status} == 502 && ($_->{error} // '') ne 'Service unavailable' } @{ $res->{results} };
is(scalar @bad502, 0, 'each 502 is JSON {"error":"Service unavailable"}');
my $last200 = 0;
$_->{status} == 200 && $_->{t1} > $last200 and $last200 = $_->{t1} for @{ $res->{results} };
ok($last200 > $term_at, 'requests were still being answered after SIGTERM');

# nginx's view: each 502 is a connection that was never made. A request the
# daemon accepted and then dropped would show up as a reset or a prematurely
# closed connection instead.
my $elog = $t->nginx_error_log;
my $refused = () = $elog =~ /connect\(\) to unix:\S+ failed \((?:2: No such file or directory|111: Connection refused)\)/g;
is($refused, $res->{by_status}{502} // 0, 'every 502 is a connection nginx could not make (socket gone)');
unlike($elog, qr/prematurely closed|reset by peer|upstream timed out|Broken pipe/,
	'no accepted request was dropped, reset or left to time out');

my $fig = $w->check($res, 'the database after the shutdown');
is($fig->{unknown}, 0, 'every completion that happened was reported to its client');

my $log = $t->daemon_log;
like($log, qr/shutting down: finishing requests in flight/, 'the master logs the shutdown');
like($log, qr/^INFO \[\d+\] stopped$/m, 'and that it stopped');
my ($tail) = $log =~ /shutting down: finishing requests in flight[^\n]*\n(.*)\z/s;
my $after = () = ($tail // '') =~ /^DEBUG \[\d+\] req=\S+ POST quick_inspection -> 200/mg;
note("requests answered after the master began its shutdown: $after (in progress or waiting in the backlog)");
unlike($log, qr/killing \d+ busy workers/, 'no worker had to be killed at the deadline');
is($t->daemon_errors, '', 'the daemon reported no memory errors');
my @alerts = grep { !/connect\(\) to unix:\S+ failed \(2: No such file or directory\)/ } split /^/, $t->nginx_alerts;
is(scalar @alerts, 0, 'nginx logged no alerts but the [crit] lines of connections to the removed socket')
	or diag(@alerts[0 .. ($#alerts < 4 ? $#alerts : 4)]);
done_testing;
