#!/usr/bin/perl
# db_idle_loss.t: the server closes idle workers' connections (here
# pg_terminate_backend; in production a PostgreSQL restart, a failover, a pooler's
# idle timeout). Each worker watches its idle connection, notices the close at
# once and connects again by itself. The writes that follow, which could not be
# retried had they met a dead connection, all answer 200: no inspector's completion
# is refused because a worker had not yet noticed the restart.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep time);

use ScanQA::Test;

my $WORKERS = 3;
my $QI = '/api/v1/quality/scanner/quick-inspection';
my $t = ScanQA::Test->new(conf => { workers => $WORKERS });
my $org = $t->make_org('Idle Loss Org');
my $user = $t->make_user($org, 'qa_inspector');
my @ins = map { $t->make_inspection($org, $t->make_lp($org)) } 1 .. 4 * $WORKERS;

my $backends = sub {
	$t->dbh->selectcol_arrayref(q{SELECT pid FROM pg_stat_activity
		WHERE datname = current_database() AND usename = 'scanqa_app' ORDER BY pid});
};
# Waits (not a timing assertion: up to 30 s on a loaded machine) until $want holds.
sub wait_for {
	my ($want) = @_;
	my $until = time + 30;
	sleep 0.05 until $want->() || time > $until;
	return $want->();
}

ok(wait_for(sub { @{ $backends->() } == $WORKERS }), "each of the $WORKERS workers holds a connection");
my @old = @{ $backends->() };
my @workers = $t->worker_pids;
is($t->one('SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
	WHERE datname = current_database() AND usename = ?) t', 'scanqa_app'), $WORKERS, 'the server closes all of them');

my %old = map { $_ => 1 } @old;
ok(wait_for(sub { my $b = $backends->(); @$b == $WORKERS && !grep { $old{$_} } @$b }),
	'every idle worker connects again by itself, before any request needs it')
	or diag('backends now: ' . join(' ', @{ $backends->() }) . '; before: @old');
like($t->daemon_log, qr/database connection closed while idle: .*reconnecting/, 'and logs why');

# As many writes at once as there are workers, twice over: every worker serves some.
my @inflight = map { $t->request_start(POST => $QI, token => $user->{token},
	json => { inspection_id => $_, result => 'pass', inspection_method => 'scanner' }) } @ins;
my @status = map { $t->request_finish($_)->{status} } @inflight;
is_deeply(\@status, [ (200) x @ins ], scalar(@ins) . ' completions right after the close: every one 200, none 503');
is($t->one(q{SELECT count(*) FROM quality_inspections WHERE id = ANY (?) AND status = 'completed'}, \@ins),
	scalar @ins, 'and every one is stored');
is($t->one(q{SELECT count(*) FROM quality_audit_log WHERE entity_id = ANY (?)}, \@ins),
	scalar @ins, 'with one audit row each');
is_deeply([$t->worker_pids], \@workers, 'by the same worker processes');

is($t->stop_daemon, 0, 'the daemon exits cleanly on SIGTERM');
is($t->daemon_errors, '', 'the daemon reported no memory errors');
is($t->nginx_alerts, '', 'nginx logged no alerts');
done_testing;
