#!/usr/bin/perl
# pgbouncer_transaction.t: the daemon behind Debian 12's pgbouncer (1.18) in
# transaction mode, on loopback TCP, with a pool (2) smaller than the workers (4):
# every server connection serves any worker, one statement at a time.
#   - With pool_mode = session (the wrong setting), named prepared statements
#     break (SQLSTATE 26000/42P05) and the log says what to change.
#   - With pool_mode = transaction: before "scanqa migrate" made the timeouts role
#     settings, the daemon warns at connect that statement_timeout is 0; after it
#     (and RECONNECT on pgbouncer's console), not.
#   - Under concurrent load of two organizations, every completion answers 200 and
#     is stored whole, with no prepared-statement error; each organization's token
#     sees only its own data, and no server connection keeps an organization.
#   - On fresh server connections (RECONNECT) the role's statement_timeout and
#     lock_timeout still hold: a sleep is cancelled, a completion waiting for a
#     row lock answers 503 with Retry-After: 1.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use DBI;
use Sys::Hostname;
use Test::More;
use Time::HiRes qw(sleep time);

use ScanQA::Load;
use ScanQA::Test;
use ScanQA::Workload;

my $PGBOUNCER = '/usr/sbin/pgbouncer';
plan skip_all => "pgbouncer is not installed ($PGBOUNCER; script/test installs it)" unless -x $PGBOUNCER;

my $WORKERS = 4;
my $t = ScanQA::Test->new(start => 0,
	conf => { workers => $WORKERS, pool_mode => 'session', statement_timeout => 1000, lock_timeout => 500 });
my $db = $t->db_name;

# ---- pgbouncer on loopback ---------------------------------------------------------
my $dir = $t->dir . '/pgbouncer';
mkdir $dir or die "mkdir $dir: $!";
my $as_root = $> == 0;
my $port = ScanQA::Test::_free_port();
my ($pghost, $pgport) = ($t->{pghost}, $t->{pgport});
open my $ul, '>', "$dir/userlist.txt" or die;
print $ul qq{"$_" ""\n} for qw(scanqa_app scanqa_owner postgres);
close $ul;
open my $ini, '>', "$dir/pgbouncer.ini" or die;
print $ini <<"INI";
[databases]
scanqa_pool = host=$pghost port=$pgport dbname=$db

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
admin_users = postgres
pool_mode = transaction
default_pool_size = 2
max_client_conn = 100
server_login_retry = 1
query_wait_timeout = 5
logfile = $dir/pgbouncer.log
INI
close $ini;
if ($as_root) {
	system('chown', '-R', 'postgres:postgres', $dir) == 0 or die "chown $dir";
}
my $bouncer = fork // die "fork: $!";
if (!$bouncer) {
	open STDIN, '<', '/dev/null';
	open STDOUT, '>>', "$dir/stdout.log";
	open STDERR, '>&', \*STDOUT;
	# pgbouncer refuses to run as root; -u is its own way to drop to a user.
	exec($PGBOUNCER, ($as_root ? ('-u', 'postgres') : ()), "$dir/pgbouncer.ini") or POSIX::_exit(127);
}
END { if ($bouncer) { local $?; kill 'TERM', $bouncer; waitpid $bouncer, 0 } }

sub pool_dbh {
	my ($user, $database) = @_;
	# pg_server_prepare => 0: simple-protocol queries, which pgbouncer's console needs.
	return DBI->connect("dbi:Pg:dbname=" . ($database // 'scanqa_pool') . ";host=127.0.0.1;port=$port",
		$user // 'scanqa_app', '', { RaiseError => 1, PrintError => 0, AutoCommit => 1, pg_server_prepare => 0 });
}
my $admin;
for (1 .. 100) {
	$admin = eval { pool_dbh('postgres', 'pgbouncer') } and last;
	sleep 0.1;
}
ok($admin, "pgbouncer 1.18 listens on 127.0.0.1:$port (transaction mode, default_pool_size 2, $WORKERS workers)")
	or BAIL_OUT('pgbouncer did not start: ' . `cat '$dir/stdout.log' '$dir/pgbouncer.log' 2>/dev/null`);
sub reconnect_pool { $admin->do('RECONNECT') }

my $CI = "host=127.0.0.1 port=$port dbname=scanqa_pool user=scanqa_app";
my $org_a = ScanQA::Workload->new($t, inspections => 600);
my $org_b = ScanQA::Workload->new($t, inspections => 600);

sub load {
	my (%o) = @_;
	my $l = ScanQA::Load->start($t, clients => 2 * $WORKERS, requests => $o{requests}, seconds => 60,
		make => sub {
			my ($n) = @_;
			my $w = $n % 2 ? $org_b : $org_a;
			my @req = $w->completion(int($n / 2) + ($o{offset} // 0));
			$req[-1]{org} = $n % 2 ? 'b' : 'a';
			return @req;
		});
	return $l->finish;
}
sub by_org { my ($res, $org) = @_; return { results => [grep { $_->{tag}{org} eq $org } @{ $res->{results} }] } }
sub log_since { my ($from) = @_; return substr($t->daemon_log, $from) }

# ---- the wrong setting: prepared statements behind a transaction pooler -----------
{
	$t->rewrite_conf(conninfo => $CI, pool_mode => 'session');
	$t->start;
	my $res = load(requests => 200);
	like($t->daemon_log, qr/prepared statement \w+: .*set pool_mode = transaction in \S+ \(or prepared_statements = off\)/,
		'pool_mode = session behind a transaction pool: named statements fail, and the log says to set pool_mode = transaction');
	my %by = %{ $res->{by_status} };
	ok(($by{503} // 0) > 0, 'those requests answer 503 (' . ($by{503} // 0) . ' of ' . scalar(@{ $res->{results} }) . ')');
	$org_a->check(by_org($res, 'a'), 'organization A after the failed run: every 200 stored, nothing half-applied');
	$org_b->check(by_org($res, 'b'), 'organization B likewise');
	$t->stop_daemon;
	reconnect_pool();    # the session SETs of that run stay on the server connections otherwise
}

# ---- pool_mode = transaction, before the role settings -------------------------------
# A database copied from a migrated template has no role settings; a private
# cluster's was migrated with this config. Start from none either way.
$t->dbh->do(qq{ALTER ROLE scanqa_app IN DATABASE "$db" RESET ALL});
my $mark = length $t->daemon_log;
$t->rewrite_conf(pool_mode => 'transaction');
$t->start;
like(log_since($mark), qr/pool_mode=transaction, unnamed statements/, 'pool_mode = transaction: unnamed statements');
like(log_since($mark), qr/database statement_timeout is 0 ms, the config says 1000 ms: behind a transaction pooler .*scanqa migrate/,
	'without role settings the daemon warns at connect that statement_timeout is 0, and says to run scanqa migrate');

is($t->migrate >> 8, 0, 'scanqa migrate succeeds');
my %role = map { /^(\w+)=(.*)$/ } @{ $t->one(q{SELECT setconfig FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
	WHERE d.datname = current_database() AND s.setrole = 'scanqa_app'::regrole}) // [] };
is_deeply([@role{qw(statement_timeout lock_timeout idle_in_transaction_session_timeout)}], ['1000', '500', '2000'],
	'...and makes the timeouts role settings of scanqa_app in this database');
reconnect_pool();
$t->stop_daemon;
$mark = length $t->daemon_log;
$t->start;
unlike(log_since($mark), qr/database (statement|lock)_timeout is/, 'after it, the daemon reads back the configured timeouts: no warning');

# ---- load through the pool -----------------------------------------------------------
{
	$mark = length $t->daemon_log;
	my $bouncer_mark = length `cat '$dir/pgbouncer.log'`;
	my $res = load(requests => 600, offset => 200);
	is_deeply($res->{by_status}, { 200 => scalar @{ $res->{results} } }, 'every completion through the pool answers 200 ('
		. scalar(@{ $res->{results} }) . " with $WORKERS workers on 2 server connections)");
	$org_a->check(by_org($res, 'a'), 'organization A: every 200 is stored, nothing half-applied');
	$org_b->check(by_org($res, 'b'), 'organization B likewise');
	unlike(log_since($mark), qr/prepared statement|ERROR/, 'the daemon logged no prepared-statement error, and no error');
	unlike(substr(`cat '$dir/pgbouncer.log'`, $bouncer_mark), qr/prepared statement/, 'nor did pgbouncer');
}

# ---- organizations stay apart --------------------------------------------------------
{
	my $lp_a = $t->one('SELECT barcode FROM license_plates WHERE org_id = ? LIMIT 1', $org_a->org);
	my $lp_b = $t->one('SELECT barcode FROM license_plates WHERE org_id = ? LIMIT 1', $org_b->org);
	my @pending;
	for my $i (1 .. 12) {
		for my $case ([$org_a, $lp_a, 200], [$org_b, $lp_a, 404], [$org_b, $lp_b, 200], [$org_a, $lp_b, 404]) {
			push @pending, [$case, $t->request_start(GET => "/api/warehouse/license-plates/barcode/$case->[1]", token => $case->[0]->token)];
		}
	}
	my @wrong;
	for my $p (@pending) {
		my ($case, $s) = @$p;
		my $r = $t->request_finish($s);
		push @wrong, "$case->[1] with " . ($case->[0] == $org_a ? 'A' : 'B') . "'s token: $r->{status}, not $case->[2]"
			if $r->{status} != $case->[2] || ($r->{status} == 200 && $r->{json}{barcode} ne $case->[1]);
	}
	is_deeply(\@wrong, [], '48 concurrent look-ups through the pool: each token sees its own LP (200) and not the other organization\'s (404)');

	my @seen;
	my @h = map { pool_dbh() } 1 .. 4;
	for my $h (@h) {
		push @seen, $h->selectrow_array(q{SELECT coalesce(current_setting('scanqa.org_id', true), '')}) for 1 .. 3;
	}
	is_deeply([grep { $_ ne '' } @seen], [], 'no server connection of the pool keeps an organization (scanqa.org_id) for the next client');
	my @names = @{ $t->dbh->selectcol_arrayref(q{SELECT DISTINCT application_name FROM pg_stat_activity
		WHERE datname = current_database() AND usename = 'scanqa_app' AND application_name LIKE 'scanqa%'}) };
	is_deeply(\@names, ['scanqa@' . hostname()], 'the server connections carry one application_name for the host, not one per worker');
	$_->disconnect for @h;
}

# ---- timeouts on fresh server connections --------------------------------------------
{
	reconnect_pool();
	my $h = pool_dbh();
	is(($h->selectrow_array('SHOW statement_timeout'))[0], '1s', 'a fresh server connection of the pool has statement_timeout 1s (the role setting)');
	my $ok = eval { $h->do('SELECT pg_sleep(3)'); 1 };
	like($ok ? '' : $h->state, qr/^57014$/, '...which cancels a 3 s statement (SQLSTATE 57014)');
	$h->disconnect;

	reconnect_pool();
	my $id = $org_a->ids->[-1];
	my $holder = $t->connect_as('postgres');
	$holder->begin_work;
	$holder->do('SELECT 1 FROM quality_inspections WHERE id = ? FOR UPDATE', undef, $id);
	my ($method, $path, %o) = $org_a->completion(0, $#{ $org_a->ids });
	delete $o{tag};
	my $r = $t->request($method, $path, %o);
	$holder->rollback;
	$holder->disconnect;
	is($r->{status}, 503, 'a completion waiting for a locked row on a fresh server connection answers 503: lock_timeout holds');
	is($r->{headers}{'retry-after'}, '1', '...with Retry-After: 1');
	is($t->one('SELECT status FROM quality_inspections WHERE id = ?', $id), 'in_progress', '...and changes nothing');
}

is($t->stop_daemon, 0, 'the daemon exits cleanly on SIGTERM');
is($t->daemon_errors, '', 'the daemon reported no memory errors');
is($t->nginx_alerts, '', 'nginx logged no alerts');
done_testing;
