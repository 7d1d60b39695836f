#!/usr/bin/perl
# fault_lock.t: another session holds the row lock of an inspection. A
# completion of it waits at most lock_timeout (or, with lock_timeout off,
# statement_timeout), then gets 503 {"error":"Resource is busy, retry the
# request"} and changes nothing; the worker is not stuck: the next request on
# the same (only) worker succeeds, and so does the retry once the lock is gone.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);

use ScanQA::Test;
use ScanQA::Workload;

my $t = ScanQA::Test->new(conf => { workers => 1, lock_timeout => 300, statement_timeout => 5000 });
my $w = ScanQA::Workload->new($t, inspections => 10);
my ($worker) = $t->worker_pids;

sub complete { $t->request($w->completion($_[0])) }

sub busy {
	my ($n, $cancel, $what) = @_;
	my $id = $w->ids->[$n];
	my $lock = $t->connect_as('postgres');
	$lock->begin_work;
	$lock->do('SELECT 1 FROM quality_inspections WHERE id = ? FOR UPDATE', undef, $id);
	my $t0 = time;
	my $r = complete($n);
	my $ms = 1000 * (time - $t0);
	subtest $what => sub {
		is($r->{status}, 503, 'answered 503');
		like($r->{headers}{'content-type'} // '', qr{^application/json}, 'as JSON');
		is_deeply($r->{json}, { error => 'Resource is busy, retry the request' }, 'saying the resource is busy');
		is($r->{headers}{'retry-after'}, '1', 'with Retry-After: 1');
		my $rid = $r->{headers}{'x-request-id'};
		like($t->daemon_log, qr/^WARN \[\d+\] req=\Q$rid\E Failed to update inspection: ERROR:  canceling statement due to \Q$cancel\E/m,
			"the daemon logs that $cancel ended the wait");
		note(sprintf 'answered after %.0f ms', $ms);
		my $row = $t->row(q{SELECT i.status, l.qa_status,
			(SELECT count(*) FROM quality_audit_log a WHERE a.entity_id = i.id::text) AS audits
			FROM quality_inspections i JOIN license_plates l ON l.id = i.lp_id WHERE i.id = ?}, $id);
		is_deeply($row, { status => 'in_progress', qa_status => 'pending', audits => 0 }, 'nothing was written');

		is($t->request(GET => '/api/v1/health')->{status}, 200, 'the next request (health) succeeds');
		is(complete($n + 1)->{status}, 200, 'so does the completion of another inspection');
		is_deeply([$t->worker_pids], [$worker], 'served by the same worker, which is neither stuck nor replaced');
	};
	$lock->rollback;
	$lock->disconnect;
	is(complete($n)->{status}, 200, "$what: once the lock is released the retry succeeds");
}

busy(0, 'lock timeout', 'a locked inspection with lock_timeout 300 ms');

ok($t->reload(lock_timeout => 0, statement_timeout => 400), 'reload: lock_timeout off, statement_timeout 400 ms');
($worker) = $t->worker_pids;
busy(2, 'statement timeout', 'a locked inspection with only statement_timeout');

is($t->status->{master}{workers_crashed}, 0, 'no worker crashed');
is($t->stop_daemon, 0, 'the daemon exits cleanly on SIGTERM');
is($t->daemon_errors, '', 'the daemon reported no memory errors');
is($t->nginx_alerts, '', 'nginx logged no alerts');
done_testing;
