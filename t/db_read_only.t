#!/usr/bin/perl
# db_read_only.t: the daemon connected to the wrong server, one that cannot take a
# write. Such a connection is dropped and the worker reconnects; meanwhile writes
# and health answer 503 with Retry-After: 1, and reads never need a write.
#   - a session that turns read-only (default_transaction_read_only, as an old
#     primary's sessions would): a completion fails with SQLSTATE 25006 and is
#     answered 503, the connection is dropped, and a look-up still answers 200;
#   - a real hot standby (pg_basebackup -R from this test's cluster): with
#     conninfo leading only to it, health, reads and writes answer 503 with
#     Retry-After: 1; multi-host conninfo with target_session_attrs=read-write
#     skips it for the primary; once it is promoted (pg_ctl promote) the daemon
#     recovers by itself and its writes land on it.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep time);

use ScanQA::Test;

my $t = ScanQA::Test->new(conf => { workers => 1 }, private_pg => 1);
my $db = $t->db_name;
my $org = $t->make_org('Read Only Org');
my $user = $t->make_user($org, 'qa_inspector');
my $lp = $t->make_lp($org);
my $barcode = $t->one('SELECT barcode FROM license_plates WHERE id = ?', $lp);
my $LOOKUP = "/api/warehouse/license-plates/barcode/$barcode";
my $QI = '/api/v1/quality/scanner/quick-inspection';
my @inspections = map { $t->make_inspection($org, $t->make_lp($org)) } 1 .. 4;

sub complete {
	my ($id) = @_;
	return $t->request(POST => $QI, token => $user->{token},
		json => { inspection_id => $id, result => 'pass', inspection_method => 'scanner' });
}
sub status_of { my ($dbh, $id) = @_; $dbh->selectrow_array('SELECT status FROM quality_inspections WHERE id = ?', undef, $id) }
sub lib { my ($cmd) = @_; $t->_lib('eval', $cmd) }
sub wait_for { my ($cond, $s) = @_; my $end = time + $s; until ($cond->()) { return 0 if time > $end; sleep 0.1 } 1 }

# ---- a session that turns read-only ------------------------------------------------
{
	$t->dbh->do(qq{ALTER ROLE scanqa_app IN DATABASE "$db" SET default_transaction_read_only = on});
	$t->dbh->selectall_arrayref(q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND usename = 'scanqa_app'});
	ok($t->wait_health(200), 'the worker reconnected (health is a read: it retries on a new session)');
	my $r = complete($inspections[0]);
	is($r->{status}, 503, 'on a read-only session a completion answers 503');
	is($r->{json}{error}, 'Service unavailable', '...{"error":"Service unavailable"}');
	is($r->{headers}{'retry-after'}, '1', '...with Retry-After: 1');
	is(status_of($t->dbh, $inspections[0]), 'in_progress', '...and the inspection is unchanged');
	like($t->daemon_log, qr/read-only server \(SQLSTATE 25006/, 'the worker logs that it reached a read-only server and drops the connection');
	$r = $t->request(GET => $LOOKUP, token => $user->{token});
	is($r->{status}, 200, 'a look-up on the read-only session answers 200: a read never needs a write') or diag($r->{body});
	$t->dbh->do(qq{ALTER ROLE scanqa_app IN DATABASE "$db" RESET default_transaction_read_only});
	ok(wait_for(sub { complete($inspections[0])->{status} == 200 }, 20),
		'once sessions are writable again, the completion answers 200 (the dropped connection was replaced)');
	is(status_of($t->dbh, $inspections[0]), 'completed', '...and is stored');
}

# ---- a real hot standby ------------------------------------------------------------
my $primary = $t->{pgbase};
my $standby = $t->dir . '/standby';
lib(qq{pg_prepare_base '$standby'
	pg_run mkdir -p '$standby/sock'
	pg_run chmod 0755 '$standby/sock'
	pg_run "\$PG_BINDIR/pg_basebackup" -h '$primary/sock' -p 5432 -U postgres -D '$standby/data' -R -X stream -c fast
	pg_start '$standby' 5432 fast});
END { local $?; eval { lib("pg_stop '$standby'") } if $standby && -d "$standby/data" }
my $sb = DBI->connect("dbi:Pg:dbname=$db;host=$standby/sock;port=5432", 'postgres', '', { RaiseError => 1, AutoCommit => 1 });
is(($sb->selectrow_array('SELECT pg_is_in_recovery()'))[0], 1, 'a hot standby of the test cluster runs');

{
	$t->stop_daemon;
	$t->rewrite_conf(conninfo => "host=$standby/sock,$primary/sock port=5432,5432 dbname=$db user=scanqa_app target_session_attrs=read-write");
	$t->start_daemon;
	ok($t->wait_health(200), 'multi-host conninfo, standby first, with target_session_attrs=read-write: health 200');
	my $r = complete($inspections[1]);
	is($r->{status}, 200, '...and a completion answers 200') or diag($r->{body});
	is(status_of($t->dbh, $inspections[1]), 'completed', '...stored on the primary');
}

{
	$t->stop_daemon;
	$t->rewrite_conf(conninfo => "host=$standby/sock port=5432 dbname=$db user=scanqa_app");
	$t->start_daemon;
	my $h = $t->request(GET => '/api/v1/health');
	is($h->{status}, 503, 'conninfo leading only to the standby: health answers 503');
	is($h->{headers}{'retry-after'}, '1', '...with Retry-After: 1');
	my $r = $t->request(GET => $LOOKUP, token => $user->{token});
	is($r->{status}, 503, '...a look-up answers 503') or diag($r->{body});
	is($r->{headers}{'retry-after'}, '1', '...with Retry-After: 1');
	$r = complete($inspections[2]);
	is($r->{status}, 503, '...a completion answers 503');
	is(status_of($t->dbh, $inspections[2]), 'in_progress', '...and changes nothing');
	like($t->daemon_log, qr/read-only server: it is in recovery/, 'the workers log that the server is in recovery');

	lib(qq{pg_run "\$PG_BINDIR/pg_ctl" -D '$standby/data' -w -t 60 promote >/dev/null});
	ok($t->wait_health(200), 'after pg_ctl promote, health answers 200 without a restart');
	$r = complete($inspections[2]);
	is($r->{status}, 200, '...a completion answers 200') or diag($r->{body});
	is(status_of($sb, $inspections[2]), 'completed', '...stored on the promoted server');
	is(status_of($t->dbh, $inspections[2]), 'in_progress', '...and not on the old primary');
}

$sb->disconnect;
is($t->stop_daemon, 0, 'the daemon exits cleanly on SIGTERM');
is($t->daemon_errors, '', 'the daemon reported no memory errors');
is($t->nginx_alerts, '', 'nginx logged no alerts');
done_testing;
