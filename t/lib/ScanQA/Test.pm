package ScanQA::Test;

# ScanQA::Test: runs one scanqa daemon behind one nginx against one fresh
# database, for a single prove test file.

use strict;
use warnings;

use Carp qw(croak);
use Cwd qw(abs_path);
use DBI;
use Digest::SHA qw(sha256_hex);
use Errno qw(EINTR EAGAIN);
use File::Basename qw(dirname);
use File::Copy qw(copy);
use File::Path qw(remove_tree);
use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::INET;
use IO::Socket::UNIX;
use JSON::PP;
use POSIX qw(WNOHANG);
use Scalar::Util qw(weaken);
use Test::More ();
use Test2::API ();
use Time::HiRes qw(sleep time);

=head1 NAME

ScanQA::Test - harness for scanqa's integration tests

=head1 SYNOPSIS

    use FindBin;
    use lib "$FindBin::Bin/lib";
    use ScanQA::Test;

    my $t = ScanQA::Test->new(conf => { workers => 2 });
    my $org  = $t->make_org('Acme');
    my $user = $t->make_user($org, 'qa_inspector');
    my $lp   = $t->make_lp($org);
    my $ins  = $t->make_inspection($org, $lp);

    my $r = $t->request(POST => '/api/v1/quality/scanner/quick-inspection',
        token => $user->{token},
        json  => { inspection_id => $ins, result => 'pass', inspection_method => 'scanner' });
    is($r->{status}, 200, 'inspector completes the inspection');

=head1 WHAT new() SETS UP

Following nginx-tests, every test file gets a private temporary directory
(kept when C<SCANQA_KEEP> is set, removed otherwise) holding everything it
starts:

=over

=item * a database created for this test only. When C<script/test> runs the
suite it starts one shared PostgreSQL cluster and migrates a template
database there, and passes them in C<SCANQA_TEST_PGHOST> (socket directory),
C<SCANQA_TEST_PGPORT> and C<SCANQA_TEST_TEMPLATE>; each test copies the
template (C<CREATE DATABASE ... TEMPLATE>). Run alone (C<prove -v t/x.t>),
or with C<< private_pg => 1 >>, the test initdb's its own cluster in its
directory, creates the roles and runs C<scanqa migrate>; only then may it
C<stop_pg> and C<start_pg>.

=item * C<scanqa.conf>: the production config (C<conf/scanqa.conf>) with only
conninfo, admin_conninfo, listen and status_listen (unix sockets in the
directory: socket_path, status_socket_path), migrations_dir and socket_group
replaced, then the C<conf> overrides applied
(a value of undef removes the key, so the daemon's default applies).

=item * C<scanqa serve>, its stderr in C<daemon.log>.

=item * C<nginx.conf>: pid, error log, temp paths and access log in the
directory, C<listen 127.0.0.1:PORT> on a free port, in the http block an
include of C<conf/nginx/scanqa-http.conf> (the rate limit zone) as it is, and
inside the server block an include of the production snippet
(C<conf/nginx/scanqa.conf>) with only the socket paths replaced (the
daemon's and the master's status socket).

=back

new() returns once C<GET /api/v1/health> answers 200 through nginx.

When the tests run as root, the production socket arrangement is used: the
daemon gives its socket group www-data and mode 0660 (from the production
config), and nginx's workers run as www-data. Otherwise everything runs as the
invoking user and socket_group is left empty.

=head1 ENVIRONMENT

C<SCANQA_BIN> (daemon binary, default ./scanqa), C<SCANQA_CONF> (config
template), C<SCANQA_NGINX_SNIPPET>, C<SCANQA_WEB_DIR> (the scanner app, default
web/; nginx serves a copy of it at /scanner/), C<SCANQA_NGINX_HTTP_CONF> (the http-context
part, conf/nginx/scanqa-http.conf), C<SCANQA_SQL_DIR> (migrations; demo data in
its demo/ subdirectory): test an installed package instead of the build tree.
C<SCANQA_WRAPPER>: a command prefix for the daemon, e.g.
C<valgrind -q --trace-children=yes>. C<SCANQA_KEEP>: keep the temp directory.
C<NGINX>: the nginx binary (default /usr/sbin/nginx). C<SCANQA_TEST_TIMEOUT>:
seconds a test file may run before it fails (default 600).
C<SCANQA_SANITIZE> (set by C<script/test --sanitizers>) or C<SCANQA_WRAPPER>:
see L</MEMORY ERRORS>.

=head1 METHODS

=over

=item new(conf => {...}, private_pg => 0|1, start => 1, db => { host => $sockdir, port => $port, name => $db })

With C<< start => 0 >> nothing is started (call C<start> later), which lets
a test prepare the database first. With C<db>, the test uses a database it set
up itself (e.g. on a cluster in a network namespace, see ScanQA::Netns) for
dbh, the fixtures and db_fingerprint: nothing is created or dropped.
use_db(host => ..., port => ...) points those at another server later (a
promoted standby) and drops the cached connections.

=item request($method, $path, json => $data | body => $raw, token => $t, headers => {...}, from => $addr, timeout => $s)

Sends one HTTP/1.1 request (Connection: close) to nginx and returns
C<{status, headers, body, json}>: headers are lowercased names (repeated ones
joined with ", "), json is the decoded body or undef. C<json> sets
Content-Type: application/json unless C<headers> sets it; a header given as
undef is not sent at all. C<from> connects from that local address (e.g.
127.0.0.2, to be a client other than 127.0.0.1); C<timeout> (default 60 s)
bounds the wait for the answer. request_start() sends and returns the socket,
request_finish($sock) reads the response: two requests can be in flight at
once. raw_request($bytes) sends bytes as they are; raw_request($bytes,
from => $addr) connects from that address too.

=item fcgi_request(method => $m, uri => $raw_uri, headers => [Name => value, ...], body => $bytes, content_length => $n, params => [NAME => value, ...])

Talks FastCGI straight to the daemon's socket, bypassing nginx, to test the
daemon's own defences with what nginx would never pass on (a duplicate
Authorization header, a NUL in the URI, a Content-Length that does not match
the body). The params are those nginx's fastcgi_params would send; headers
become HTTP_* params in order (repeats allowed); content_length undef leaves
CONTENT_LENGTH out; params are appended as they are. Returns the same hash as
request().

=item db_fingerprint(org => $org_id)

A hashref of every table in schema public to "N rows, md5 ...", computed as
the superuser over every row as jsonb, in a stable order. Two equal
fingerprints mean no row was added, removed or changed. api_tokens'
last_used_at is left out: authentication updates it at most once a minute
(see qa_authenticate), so any authenticated request may write it. With
C<org>, tables that have an org_id column count only that organization's
rows (what another organization must not be able to change).

=item dbh, app_dbh, api_dbh, connect_as($role), rows($sql, @bind), row($sql, @bind), one($sql, @bind)

dbh is a superuser connection to the test database (row level security does
not apply), app_dbh connects as scanqa_app (which may only execute the api_*
functions), api_dbh is a session as scanqa_api (the owner of those functions,
which touches the tables under row level security); all are cached and reconnect
when broken. connect_as returns a new handle of the caller's own (e.g. to hold a
lock in a transaction). rows returns an arrayref of
hashrefs, row the first row as a hashref, one the first column of the first
row.

=item make_org($name), make_user($org, $role, active => 1, ...), make_token($user_id, ...), make_lp($org, %cols), make_inspection($org, $lp, %cols), load_demo

Fixtures, written as the superuser. make_user returns C<{id, org_id, role, token}>,
where token is a fresh random bearer token whose SHA-256 is in api_tokens;
make_token adds another token (columns such as expires_at, revoked_at may be
given). make_inspection defaults to status in_progress. load_demo runs
sql/demo/demo_data.sql as the schema owner.

=item status

The daemon's status page, GET /scanqa/status, decoded; croaks unless it answers 200.

=item wait_workers_ready($n), reload(%conf), fastcgi_request($path, %params)

wait_workers_ready waits until the status page shows $n workers (default: the
configured number) idle or busy, and returns the page (undef after the guard
timeout): new() returns as soon as one worker answers.

reload rewrites the config like rewrite_conf, sends SIGHUP, and waits until the
status page shows a new config generation that every worker runs; it returns
that generation, or undef after the guard timeout. fastcgi_request sends one
FastCGI request straight to the daemon's socket (no nginx) with exactly the
given params, and returns the raw CGI answer ("Status: ..." headers, body);
fcgi_request (above) is the one for bodies and repeated headers.

=item scanqa(@args), scanqa(\%opts, @args)

Runs the scanqa binary with this test's config (C<scanqa -c CONF @args>), as an
operator would run an admin command, and returns C<{exit, out, err}>: the exit
status (0..255) and what it wrote to stdout and stderr. C<%opts>: C<stdin>, a
file to read standard input from; C<env>, extra environment variables.

=item master_pid, worker_pids, signal_daemon($sig), rewrite_conf(%overrides), stop_daemon, start_daemon, daemon_log, daemon_errors, nginx_error_log, nginx_access_log, pg_log, nginx_alerts, stop_pg, start_pg, wait_health($status)

Process helpers. stop_daemon sends SIGTERM, waits and returns the exit status
($?). nginx_alerts returns the [alert], [crit] and [emerg] lines of nginx's
error log, daemon_errors the memory errors valgrind or the sanitizers reported
(pg_log is the server log of a private cluster, '' with the shared one)
in the daemon's log; test files end by checking that both are empty, after
stopping the daemon (leaks are reported at exit).

=back

=head1 MEMORY ERRORS

Test files end by stopping the daemon and checking daemon_errors (see above).
When the daemon is an ASan/UBSan build (C<SCANQA_SANITIZE>, which
C<script/test --sanitizers> sets) or runs under a wrapper such as valgrind
(C<SCANQA_WRAPPER>), the harness makes sure of it: when a test file calls
done_testing (or completes its plan), every daemon still running is stopped (so
that leaks are reported at its exit) and an assertion that daemon_errors is
empty is added. A test file therefore fails on any report, whichever request
caused it, even if it forgot the check.

=cut

my $ROOT = abs_path(dirname(__FILE__) . '/../../..');
my @LIVE;      # objects to clean up at END
my $JSON = JSON::PP->new->canonical->allow_nonref;

sub root { $ROOT }

sub _bin     { $ENV{SCANQA_BIN} // "$ROOT/scanqa" }
sub _conf    { $ENV{SCANQA_CONF} // "$ROOT/conf/scanqa.conf" }
sub _snippet { $ENV{SCANQA_NGINX_SNIPPET} // "$ROOT/conf/nginx/scanqa.conf" }
sub _http_conf { $ENV{SCANQA_NGINX_HTTP_CONF} // "$ROOT/conf/nginx/scanqa-http.conf" }
sub _sqldir  { $ENV{SCANQA_SQL_DIR} // "$ROOT/sql" }
sub _webdir  { $ENV{SCANQA_WEB_DIR} // "$ROOT/web" }
sub _nginx   { $ENV{NGINX} // '/usr/sbin/nginx' }

sub _is_root { $> == 0 }

# An interrupted test still stops what it started (END runs on exit).
$SIG{INT} = $SIG{TERM} = sub { exit 130 };
# So does one whose prove went away (TAP output to a closed pipe).
$SIG{PIPE} = sub { $SIG{PIPE} = 'IGNORE'; exit 141 };
# A hung daemon must not hang the suite: a test file gets SCANQA_TEST_TIMEOUT
# seconds (default 600) from loading the harness, then fails.
$SIG{ALRM} = sub {
	Test::More::diag('test file ran out of time (SCANQA_TEST_TIMEOUT); stopping');
	exit 124;
};
alarm($ENV{SCANQA_TEST_TIMEOUT} // 600);

sub new {
	my ($class, %o) = @_;
	my $self = bless {
		conf_overrides => $o{conf} // {},
		private_pg     => $o{private_pg} // 0,
		external_db    => $o{db},
		owner_pid      => $$,
		seq            => 0,
	}, $class;

	croak "scanqa binary not found at " . _bin() . " (build first: script/test does)"
		unless -x _bin();

	my $dir = tempdir('scanqa-t-' . 'X' x 6, TMPDIR => 1, CLEANUP => 0);
	$self->{dir} = $dir;
	push @LIVE, $self;
	weaken $LIVE[-1];
	# Other users (postgres, www-data) must reach their sockets in here.
	chmod 0711, $dir if _is_root();

	$self->_setup_db;
	$self->_write_conf;
	$self->start if $o{start} // 1;
	return $self;
}

sub dir  { $_[0]{dir} }
sub port { $_[0]{port} }
sub db_name { $_[0]{db} }
sub conf_path { "$_[0]{dir}/scanqa.conf" }
sub socket_path { "$_[0]{dir}/scanqa.sock" }
sub status_socket_path { "$_[0]{dir}/scanqa-status.sock" }

# Starts the daemon and nginx and waits for health 200.
sub start {
	my ($self) = @_;
	$self->start_daemon;
	$self->_start_nginx unless $self->{nginx_pid};
	$self->wait_health(200)
		or croak "scanqa did not become healthy; daemon log:\n" . _tail($self->daemon_log, 30)
		. "\nnginx error log (last lines):\n" . _tail($self->nginx_error_log, 5);
	return $self;
}

# ---- shell helpers from script/lib.sh ------------------------------------------

sub _lib {
	my ($self, @cmd) = @_;
	my $log = "$self->{dir}/lib.log";
	my $pid = fork // croak "fork: $!";
	if (!$pid) {
		open STDOUT, '>>', $log;
		open STDERR, '>&', \*STDOUT;
		exec('bash', '-c', 'set -euo pipefail; source "$0"; "$@"', "$ROOT/script/lib.sh", @cmd) or POSIX::_exit(127);
	}
	waitpid $pid, 0;
	croak "script/lib.sh @cmd failed:\n" . _slurp($log) if $?;
}

# ---- database -------------------------------------------------------------------

sub _setup_db {
	my ($self) = @_;
	if (my $db = $self->{external_db}) {
		$self->use_db(%$db);
		return;
	}
	if (!$self->{private_pg} && $ENV{SCANQA_TEST_PGHOST}) {
		$self->{pghost}   = $ENV{SCANQA_TEST_PGHOST};
		$self->{pgport}   = $ENV{SCANQA_TEST_PGPORT} // 5432;
		$self->{template} = $ENV{SCANQA_TEST_TEMPLATE} // 'scanqa_template';
		$self->{db}       = "scanqa_t_${$}_" . int(rand(1e9));
		$self->_create_db_from_template;
		return;
	}
	# An own cluster: initdb, roles, database, migrations.
	my $base = "$self->{dir}/pg";
	$self->{pgbase} = $base;
	$self->{pghost} = "$base/sock";
	$self->{pgport} = 5432;    # no TCP: the port only names the socket file
	$self->{db}     = 'scanqa_test';
	$self->_lib(pg_init => $base);
	$self->start_pg;
	$self->_lib(pg_create_roles => $self->{pghost}, $self->{pgport});
	$self->_lib(pg_create_db => $self->{pghost}, $self->{pgport}, $self->{db});
	$self->_write_conf;
	$self->migrate == 0 or croak "scanqa migrate failed:\n" . _slurp("$self->{dir}/migrate.log");
}

# Points dbh, the fixtures and db_fingerprint at a database the test manages
# itself: host (socket directory or address), port, name (kept when not given).
sub use_db {
	my ($self, %db) = @_;
	$self->_disconnect_all;
	$self->{pghost} = $db{host} // $self->{pghost};
	$self->{pgport} = $db{port} // $self->{pgport} // 5432;
	$self->{db}     = $db{name} // $self->{db};
	return $self;
}

sub _create_db_from_template {
	my ($self) = @_;
	my $admin = $self->_connect('postgres', 'postgres');
	# Two tests copying the template at the same moment can see each other as
	# "other users" of it; that passes in a moment.
	for my $try (1 .. 50) {
		my $ok = eval {
			$admin->do(qq{CREATE DATABASE "$self->{db}" TEMPLATE "$self->{template}" OWNER scanqa_owner});
			1;
		};
		last if $ok;
		my $err = $@;
		croak "creating the test database failed: $err"
			if $err !~ /being accessed by other users/ || $try == 50;
		sleep 0.1;
	}
	$admin->disconnect;
}

# Runs "scanqa migrate" with the test's config; returns its exit status.
sub migrate {
	my ($self) = @_;
	return $self->_run_logged("$self->{dir}/migrate.log", _bin(), '-c', $self->conf_path, 'migrate');
}

sub scanqa {
	my ($self, @args) = @_;
	my $o = ref $args[0] eq 'HASH' ? shift @args : {};
	my $n = ++$self->{seq};
	my ($out, $err) = ("$self->{dir}/scanqa-$n.out", "$self->{dir}/scanqa-$n.err");
	my $pid = fork // croak "fork: $!";
	if (!$pid) {
		open STDIN, '<', $o->{stdin} // '/dev/null' or POSIX::_exit(126);
		open STDOUT, '>', $out or POSIX::_exit(126);
		open STDERR, '>', $err or POSIX::_exit(126);
		$ENV{$_} = $o->{env}{$_} for keys %{ $o->{env} // {} };
		exec(_bin(), '-c', $self->conf_path, @args) or POSIX::_exit(127);
	}
	waitpid $pid, 0;
	return { exit => $? >> 8, signal => $? & 127, out => _slurp($out), err => _slurp($err) };
}

sub _run_logged {
	my ($self, $log, @cmd) = @_;
	my $pid = fork // croak "fork: $!";
	if (!$pid) {
		open STDOUT, '>>', $log;
		open STDERR, '>&', \*STDOUT;
		exec(@cmd) or POSIX::_exit(127);
	}
	waitpid $pid, 0;
	return $?;
}

sub _connect {
	my ($self, $user, $db) = @_;
	my $dsn = "dbi:Pg:dbname=" . ($db // $self->{db}) . ";host=$self->{pghost};port=$self->{pgport}";
	return DBI->connect($dsn, $user, '', {
		AutoCommit => 1, RaiseError => 1, PrintError => 0, pg_enable_utf8 => 1,
	}) // croak "cannot connect to PostgreSQL as $user: $DBI::errstr";
}

# A new connection to the test database as $user (a role name); the caller owns it.
sub connect_as {
	my ($self, $user) = @_;
	return $self->_connect($user);
}

sub dbh {
	my ($self) = @_;
	my $h = $self->{dbh};
	return $h if $h && $h->ping;
	return $self->{dbh} = $self->_connect('postgres');
}

sub app_dbh {
	my ($self) = @_;
	my $h = $self->{app_dbh};
	return $h if $h && $h->ping;
	return $self->{app_dbh} = $self->_connect('scanqa_app');
}

# api_dbh: a session as scanqa_api, the NOLOGIN role whose SECURITY DEFINER
# functions touch the tables (a superuser connection after SET ROLE), to check
# row level security as those functions meet it.
sub api_dbh {
	my ($self) = @_;
	my $h = $self->{api_dbh};
	return $h if $h && $h->ping;
	$h = $self->_connect('postgres');
	$h->do('SET ROLE scanqa_api');
	return $self->{api_dbh} = $h;
}

sub rows {
	my ($self, $sql, @bind) = @_;
	return $self->dbh->selectall_arrayref($sql, { Slice => {} }, @bind);
}

sub row {
	my ($self, $sql, @bind) = @_;
	return $self->rows($sql, @bind)->[0];
}

sub one {
	my ($self, $sql, @bind) = @_;
	my $r = $self->dbh->selectrow_arrayref($sql, undef, @bind);
	return $r ? $r->[0] : undef;
}

sub _disconnect_all {
	my ($self) = @_;
	for my $k (qw(dbh app_dbh api_dbh)) {
		my $h = delete $self->{$k} or next;
		eval { $h->disconnect };
	}
}

sub stop_pg {
	my ($self) = @_;
	croak "stop_pg needs private_pg => 1" unless $self->{pgbase};
	$self->_disconnect_all;
	$self->_lib(pg_stop => $self->{pgbase});
}

sub start_pg {
	my ($self) = @_;
	croak "start_pg needs private_pg => 1" unless $self->{pgbase};
	$self->_lib(pg_start => $self->{pgbase}, $self->{pgport}, 'fast');
}

# ---- fixtures -------------------------------------------------------------------

sub _seq { ++$_[0]{seq} }

sub _insert {
	my ($self, $table, %cols) = @_;
	my @k = sort keys %cols;
	my $sql = "INSERT INTO $table (" . join(', ', @k) . ") VALUES ("
		. join(', ', map { $_ eq 'token_sha256' ? "decode(?, 'hex')" : '?' } @k)
		. ") RETURNING id";
	return $self->one($sql, @cols{@k});
}

sub make_org {
	my ($self, $name) = @_;
	return $self->_insert('organizations', name => $name // 'Org ' . $self->_seq);
}

sub make_user {
	my ($self, $org, $role, %o) = @_;
	my $n = $self->_seq;
	my %cols = (
		org_id       => $org,
		role         => $role // 'qa_inspector',
		email        => $o{email} // "user$n.$$.@{[int rand 1e9]}\@test.example",
		display_name => $o{display_name} // "Test User $n",
		active       => exists $o{active} ? ($o{active} ? 1 : 0) : 1,
	);
	my $id = $self->_insert('users', %cols);
	return { id => $id, org_id => $org, role => $cols{role}, token => $self->make_token($id) };
}

sub make_token {
	my ($self, $user_id, %cols) = @_;
	my $token = 'tok-' . join '', map { sprintf '%02x', int rand 256 } 1 .. 24;
	$self->_insert('api_tokens', %cols, user_id => $user_id, token_sha256 => sha256_hex($token));
	return $token;
}

sub make_lp {
	my ($self, $org, %cols) = @_;
	return $self->_insert('license_plates',
		org_id => $org, barcode => 'LPT' . $self->_seq, quantity => 10, %cols);
}

sub make_inspection {
	my ($self, $org, $lp, %cols) = @_;
	return $self->_insert('quality_inspections',
		org_id => $org, lp_id => $lp, inspection_number => 'INS-T-' . $self->_seq,
		status => 'in_progress', %cols);
}

sub load_demo {
	my ($self) = @_;
	my $file = _sqldir() . '/demo/demo_data.sql';
	my $st = $self->_run_logged("$self->{dir}/demo.log", 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1',
		'-h', $self->{pghost}, '-p', $self->{pgport}, '-U', 'scanqa_owner', '-d', $self->{db},
		'-f', $file);
	croak "loading $file failed:\n" . _slurp("$self->{dir}/demo.log") if $st;
	return 1;
}

# ---- daemon config ----------------------------------------------------------------

sub _conf_value {
	my ($v) = @_;
	return '' if $v eq '';
	return $v if $v =~ /^[^\s"#][^"#]*$/ && $v !~ /\s$/;
	return '"' . $v . '"';
}

# The libpq conninfo of the test database as $user (default scanqa_app), as the
# daemon's config gets it.
sub conninfo {
	my ($self, $user) = @_;
	return "host=$self->{pghost} port=$self->{pgport} dbname=$self->{db} user=" . ($user // 'scanqa_app');
}

sub _write_conf {
	my ($self) = @_;
	my $ci = "host=$self->{pghost} port=$self->{pgport} dbname=$self->{db}";
	my %set = (
		conninfo       => "$ci user=scanqa_app",
		admin_conninfo => "$ci user=scanqa_owner",
		listen         => 'unix:' . $self->socket_path,
		status_listen  => 'unix:' . $self->status_socket_path,
		migrations_dir => _sqldir(),
		socket_group   => ($self->_www_data ? 'www-data' : ''),
		%{ $self->{conf_overrides} },
	);
	my @out;
	my %done;
	open my $in, '<', _conf() or croak "cannot read " . _conf() . ": $!";
	while (my $line = <$in>) {
		if ($line =~ /^\s*([A-Za-z_]+)\s*=/ && exists $set{$1}) {
			my $k = $1;
			next if $done{$k}++;
			next unless defined $set{$k};
			$line = "$k = " . _conf_value($set{$k}) . "\n";
		}
		push @out, $line;
	}
	close $in;
	for my $k (sort keys %set) {
		next if $done{$k} || !defined $set{$k};
		push @out, "$k = " . _conf_value($set{$k}) . "\n";
	}
	_spew($self->conf_path, join '', @out);
}

# Changes settings in the daemon's config file (undef removes one); the daemon
# sees them after signal_daemon('HUP').
sub rewrite_conf {
	my ($self, %o) = @_;
	$self->{conf_overrides} = { %{ $self->{conf_overrides} }, %o };
	$self->_write_conf;
}

# True when the production socket arrangement (group www-data) is used.
sub _www_data {
	return _is_root() && defined getpwnam('www-data') && defined getgrnam('www-data');
}

# ---- daemon ---------------------------------------------------------------------

sub start_daemon {
	my ($self) = @_;
	croak "daemon already running" if $self->{daemon_pid};
	unlink $self->socket_path;
	my @cmd = (_bin(), '-c', $self->conf_path, 'serve');
	unshift @cmd, split ' ', $ENV{SCANQA_WRAPPER} if $ENV{SCANQA_WRAPPER};
	my $pid = fork // croak "fork: $!";
	if (!$pid) {
		setpgrp(0, 0);
		_die_with_parent();
		open STDIN, '<', '/dev/null';
		open STDOUT, '>>', "$self->{dir}/daemon.log";
		open STDERR, '>&', \*STDOUT;
		exec(@cmd) or POSIX::_exit(127);
	}
	$self->{daemon_pid} = $pid;
	# The socket appears once the master listens.
	my $deadline = time + 30;
	while (!-S $self->socket_path) {
		if (waitpid($pid, WNOHANG) == $pid) {
			delete $self->{daemon_pid};
			croak "scanqa serve exited with status $? before listening:\n" . $self->daemon_log;
		}
		croak "scanqa serve did not create its socket:\n" . $self->daemon_log if time > $deadline;
		sleep 0.02;
	}
	return $pid;
}

# In a child about to exec: have the kernel send SIGTERM when the test process
# dies, even by SIGKILL, when END cannot run (Linux prctl PR_SET_PDEATHSIG).
sub _die_with_parent {
	eval {
		require 'syscall.ph';
		syscall(SYS_prctl(), 1, 15);
	};
}

sub master_pid { $_[0]{daemon_pid} }

# Children of the master, from /proc.
sub worker_pids {
	my ($self) = @_;
	my $master = $self->{daemon_pid} or return ();
	return _children($master);
}

sub _children {
	my ($ppid) = @_;
	my @kids;
	opendir my $d, '/proc' or return ();
	for my $p (grep { /^\d+$/ } readdir $d) {
		open my $f, '<', "/proc/$p/stat" or next;
		my $stat = <$f> // next;
		# pid (comm) state ppid ...; comm may contain spaces and parentheses
		next unless $stat =~ /\)\s+\S+\s+(\d+)/;
		push @kids, $p + 0 if $1 == $ppid;
	}
	return sort { $a <=> $b } @kids;
}

sub signal_daemon {
	my ($self, $sig) = @_;
	my $pid = $self->{daemon_pid} or croak "daemon not running";
	kill $sig, $pid or croak "kill $sig $pid: $!";
}

# SIGTERM, then waits (up to shutdown_timeout + 15 s, then SIGKILL). Returns $?.
sub stop_daemon {
	my ($self, %o) = @_;
	my $pid = delete $self->{daemon_pid} or return undef;
	my @workers = _children($pid);
	kill 'TERM', $pid;
	my $limit = ($o{timeout} // 45);
	my $status = _wait_pid($pid, $limit);
	if (!defined $status) {
		Test::More::diag("scanqa master $pid ignored SIGTERM for ${limit}s; killing it");
		kill 'KILL', $pid;
		$status = _wait_pid($pid, 10);
	}
	# Workers must not outlive their master.
	kill 'KILL', grep { kill 0, $_ } @workers;
	return $status;
}

sub _wait_pid {
	my ($pid, $timeout) = @_;
	my $deadline = time + $timeout;
	while (time < $deadline) {
		my $r = waitpid $pid, WNOHANG;
		return $? if $r == $pid;
		return 0 if $r == -1;
		sleep 0.05;
	}
	return undef;
}

sub daemon_log { _slurp("$_[0]{dir}/daemon.log") }

# Memory errors the daemon reported: valgrind's "==PID==" lines (SCANQA_WRAPPER)
# and AddressSanitizer/UBSan reports (./configure --enable-sanitizers). Leaks
# show at process exit, so check after stop_daemon.
sub daemon_errors {
	my ($self) = @_;
	return join '', grep { /^==\d+== |AddressSanitizer|LeakSanitizer|runtime error:/ }
		split /^/, $self->daemon_log;
}

# ---- nginx ----------------------------------------------------------------------

sub _free_port {
	my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp', Listen => 1)
		or croak "cannot find a free port: $!";
	my $port = $s->sockport;
	close $s;
	return $port;
}

sub _write_nginx_conf {
	my ($self) = @_;
	my $d = $self->{dir};
	my $snippet = _slurp(_snippet());
	my $n = ($snippet =~ s{unix:/run/scanqa/scanqa\.sock}{'unix:' . $self->socket_path}ge);
	croak _snippet() . " does not pass to unix:/run/scanqa/scanqa.sock" unless $n;
	$snippet =~ s{unix:/run/scanqa/scanqa-status\.sock}{'unix:' . $self->status_socket_path}ge;
	# The scanner app is served from a copy in the test's directory, which nginx's
	# workers (www-data as root) can read wherever the clone lives.
	_copy_tree(_webdir(), "$d/web");
	$snippet =~ s{alias /usr/share/scanqa/web/([^;\s]*);}{alias "$d/web/$1";}g;
	_spew("$d/scanqa-nginx.conf", $snippet);
	# The http-context part (rate limit zone) is used verbatim.
	copy(_http_conf(), "$d/scanqa-http.conf") or croak "copy " . _http_conf() . ": $!";
	# The snippet's "include fastcgi_params" is relative to this config's directory.
	copy('/etc/nginx/fastcgi_params', "$d/fastcgi_params") or croak "copy fastcgi_params: $!";

	my $user = '';
	$user = 'user www-data;' if $self->_www_data;
	$user = 'user root;' if _is_root() && !$self->_www_data;
	mkdir "$d/nginx-tmp";
	_spew("$d/nginx.conf", <<"EOF");
# written by t/lib/ScanQA/Test.pm
daemon off;
master_process on;
worker_processes 1;
$user
pid $d/nginx.pid;
error_log $d/nginx-error.log info;

events {
    # Room for the load tests: each request in flight holds two connections.
    worker_connections 1024;
}

http {
    access_log $d/nginx-access.log;
    client_body_temp_path $d/nginx-tmp/body;
    fastcgi_temp_path $d/nginx-tmp/fastcgi;
    proxy_temp_path $d/nginx-tmp/proxy;
    uwsgi_temp_path $d/nginx-tmp/uwsgi;
    scgi_temp_path $d/nginx-tmp/scgi;
    default_type application/octet-stream;

    include $d/scanqa-http.conf;

    server {
        listen 127.0.0.1:$self->{port};
        server_name localhost;
        server_tokens off;

        include $d/scanqa-nginx.conf;
    }
}
EOF
}

# Copies the directory tree $from to $to, files mode 0644 and directories 0755.
sub _copy_tree {
	my ($from, $to) = @_;
	mkdir $to;
	chmod 0755, $to;
	opendir(my $dh, $from) or croak "opendir $from: $!";
	for my $e (grep { !/^\.\.?$/ } readdir $dh) {
		if (-d "$from/$e") {
			_copy_tree("$from/$e", "$to/$e");
		} else {
			copy("$from/$e", "$to/$e") or croak "copy $from/$e: $!";
			chmod 0644, "$to/$e";
		}
	}
	closedir $dh;
}

sub _start_nginx {
	my ($self) = @_;
	my $d = $self->{dir};
	for my $try (1 .. 5) {
		$self->{port} = _free_port();
		$self->_write_nginx_conf;
		my $pid = fork // croak "fork: $!";
		if (!$pid) {
			setpgrp(0, 0);
			_die_with_parent();
			open STDIN, '<', '/dev/null';
			open STDOUT, '>>', "$d/nginx-stderr.log";
			open STDERR, '>&', \*STDOUT;
			exec(_nginx(), '-p', "$d/", '-c', "$d/nginx.conf", '-e', "$d/nginx-error.log") or POSIX::_exit(127);
		}
		my $deadline = time + 20;
		while (time < $deadline) {
			if (waitpid($pid, WNOHANG) == $pid) {
				last;
			}
			if (IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $self->{port}, Proto => 'tcp')) {
				$self->{nginx_pid} = $pid;
				return $pid;
			}
			sleep 0.02;
		}
		kill 'KILL', $pid;
		waitpid $pid, 0;
		# Another process took the port between our probe and nginx's bind: try another.
		next if $self->nginx_error_log =~ /Address already in use/;
		last;
	}
	croak "nginx did not start:\n" . $self->nginx_error_log . _slurp("$d/nginx-stderr.log");
}

sub stop_nginx {
	my ($self) = @_;
	my $pid = delete $self->{nginx_pid} or return;
	kill 'TERM', $pid;
	if (!defined _wait_pid($pid, 15)) {
		kill 'KILL', $pid;
		_wait_pid($pid, 5);
	}
}

sub nginx_error_log { _slurp("$_[0]{dir}/nginx-error.log") }
sub nginx_access_log { _slurp("$_[0]{dir}/nginx-access.log") }

# The PostgreSQL server log of a private cluster (private_pg); '' otherwise.
sub pg_log { $_[0]{pgbase} ? _slurp("$_[0]{pgbase}/postgresql.log") : '' }

sub nginx_alerts {
	my ($self) = @_;
	return join '', grep { /\[(alert|crit|emerg)\]/ } split /^/, $self->nginx_error_log;
}

# ---- HTTP -----------------------------------------------------------------------

sub _build_request {
	my ($self, $method, $path, %o) = @_;
	my %h = (Host => 'localhost', Connection => 'close');
	my $body = $o{body};
	if (exists $o{json}) {
		$body = JSON::PP->new->utf8->canonical->allow_nonref->encode($o{json});
		$h{'Content-Type'} = 'application/json';
	}
	$h{Authorization} = "Bearer $o{token}" if defined $o{token};
	if (defined $body) {
		utf8::encode($body) if utf8::is_utf8($body);
		$h{'Content-Length'} = length $body;
	}
	# Caller's headers win, case-insensitively; undef removes one.
	my %extra = %{ $o{headers} // {} };
	for my $k (keys %extra) {
		delete $h{$_} for grep { lc $_ eq lc $k } keys %h;
	}
	%h = (%h, %extra);
	my $req = "$method $path HTTP/1.1\r\n";
	$req .= "$_: $h{$_}\r\n" for grep { defined $h{$_} } sort keys %h;
	return $req . "\r\n" . ($body // '');
}

sub request_start {
	my ($self, $method, $path, %o) = @_;
	my $from = delete $o{from};
	return $self->raw_request_start($self->_build_request($method, $path, %o), from => $from);
}

sub raw_request_start {
	my ($self, $bytes, %o) = @_;
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $self->{port}, Proto => 'tcp',
		($o{from} ? (LocalAddr => $o{from}) : ()))
		or croak "cannot connect to nginx on port $self->{port}: $!";
	local $SIG{PIPE} = 'IGNORE';
	my $off = 0;
	while ($off < length $bytes) {
		my $n = syswrite $s, $bytes, 65536, $off;
		if (!defined $n) {
			next if $! == EINTR;
			last;    # the server stopped reading (e.g. an early 413): read its answer
		}
		$off += $n;
	}
	return $s;
}

sub request_finish {
	my ($self, $s, %o) = @_;
	my $timeout = $o{timeout} // 60;
	my $sel = IO::Select->new($s);
	my $buf = '';
	my $deadline = time + $timeout;
	while (1) {
		my $left = $deadline - time;
		croak "no complete response within ${timeout}s; got:\n$buf" if $left <= 0;
		next unless $sel->can_read($left);
		my $n = sysread $s, $buf, 65536, length $buf;
		if (!defined $n) {
			next if $! == EINTR || $! == EAGAIN;
			last;    # reset after the response, e.g. lingering close gave up
		}
		last if $n == 0;
	}
	close $s;
	return _parse_response($buf);
}

sub request {
	my ($self, $method, $path, %o) = @_;
	my $timeout = delete $o{timeout};
	return $self->request_finish($self->request_start($method, $path, %o), timeout => $timeout);
}

# The daemon's status page (GET /scanqa/status) as decoded JSON; croaks unless 200.
sub status {
	my ($self) = @_;
	my $r = $self->request(GET => '/scanqa/status');
	croak "GET /scanqa/status answered $r->{status}: $r->{body}" unless $r->{status} == 200 && $r->{json};
	return $r->{json};
}

sub raw_request {
	my ($self, $bytes, %o) = @_;
	return $self->request_finish($self->raw_request_start($bytes, %o), %o);
}

# ---- FastCGI, straight to the daemon ----------------------------------------------

use constant {
	FCGI_BEGIN_REQUEST => 1, FCGI_END_REQUEST => 3, FCGI_PARAMS => 4,
	FCGI_STDIN => 5, FCGI_STDOUT => 6, FCGI_STDERR => 7, FCGI_RESPONDER => 1,
};

sub _fcgi_record {
	my ($type, $content) = @_;
	my $out = '';
	# An empty record ends a stream; longer content is split at 65535 bytes.
	do {
		my $part = substr $content, 0, 65535, '';
		my $pad = (8 - length($part) % 8) % 8;
		$out .= pack('CCnnCC', 1, $type, 1, length $part, $pad, 0) . $part . ("\0" x $pad);
	} while (length $content);
	return $out;
}

sub _fcgi_len {
	my ($n) = @_;
	return $n < 128 ? pack('C', $n) : pack('N', $n | 0x80000000);
}

sub fcgi_request {
	my ($self, %o) = @_;
	my $body = $o{body} // '';
	my @p = (
		REQUEST_METHOD => $o{method} // 'GET', REQUEST_URI => $o{uri} // '/',
		SERVER_PROTOCOL => 'HTTP/1.1', GATEWAY_INTERFACE => 'CGI/1.1',
		REMOTE_ADDR => '127.0.0.1', REQUEST_ID => sprintf('%032x', int rand 2**31),
	);
	my $cl = exists $o{content_length} ? $o{content_length} : length $body;
	push @p, CONTENT_LENGTH => $cl if defined $cl;
	my @h = @{ $o{headers} // [] };
	while (my ($k, $v) = splice @h, 0, 2) {
		(my $name = uc $k) =~ tr/-/_/;
		$name = $name eq 'CONTENT_TYPE' ? $name : "HTTP_$name";
		push @p, $name => $v;
	}
	push @p, @{ $o{params} // [] };
	my $params = '';
	while (my ($k, $v) = splice @p, 0, 2) {
		$params .= _fcgi_len(length $k) . _fcgi_len(length $v) . $k . $v;
	}
	my $req = pack('CCnnCC', 1, FCGI_BEGIN_REQUEST, 1, 8, 0, 0) . pack('nCx5', FCGI_RESPONDER, 0)
		. _fcgi_record(FCGI_PARAMS, $params) . _fcgi_record(FCGI_PARAMS, '')
		. (length $body ? _fcgi_record(FCGI_STDIN, $body) : '') . _fcgi_record(FCGI_STDIN, '');

	my $s = IO::Socket::UNIX->new(Peer => $self->socket_path, Type => SOCK_STREAM)
		or croak "cannot connect to " . $self->socket_path . ": $!";
	{
		local $SIG{PIPE} = 'IGNORE';
		my $off = 0;
		while ($off < length $req) {
			my $n = syswrite $s, $req, 65536, $off;
			if (!defined $n) {
				next if $! == EINTR;
				last;
			}
			$off += $n;
		}
	}
	my ($buf, $stdout, $ended) = ('', '', 0);
	my $sel = IO::Select->new($s);
	my $deadline = time + ($o{timeout} // 60);
	while (!$ended) {
		my $left = $deadline - time;
		croak "no FastCGI END_REQUEST within the timeout" if $left <= 0;
		next unless $sel->can_read($left);
		my $n = sysread $s, $buf, 65536, length $buf;
		if (!defined $n) {
			next if $! == EINTR || $! == EAGAIN;
			last;
		}
		last if $n == 0;
		while (length $buf >= 8) {
			my ($ver, $type, $id, $len, $pad) = unpack 'CCnnC', $buf;
			last if length $buf < 8 + $len + $pad;
			my $content = substr $buf, 8, $len;
			substr($buf, 0, 8 + $len + $pad) = '';
			$stdout .= $content if $type == FCGI_STDOUT;
			$ended = 1 if $type == FCGI_END_REQUEST;
		}
	}
	close $s;
	my ($head, $resp_body) = split /\r?\n\r?\n/, $stdout, 2;
	my %h;
	for (split /\r?\n/, $head // '') {
		my ($k, $v) = /^([^:]+):\s*(.*)$/ or next;
		$k = lc $k;
		$h{$k} = exists $h{$k} ? "$h{$k}, $v" : $v;
	}
	my ($status) = ($h{status} // '') =~ /^(\d{3})/;
	my $json = eval { JSON::PP->new->utf8->allow_nonref->decode($resp_body // '') };
	return { status => $status // ($ended ? 200 : 0), headers => \%h, body => $resp_body // '',
		json => $json, raw => $stdout, ended => $ended };
}

# ---- database fingerprint ---------------------------------------------------------

sub db_fingerprint {
	my ($self, %o) = @_;
	my $tables = $self->dbh->selectall_arrayref(q{
		SELECT c.relname,
		       EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'org_id'
		                  AND NOT a.attisdropped)
		  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1});
	my $org = defined $o{org} ? $self->dbh->quote($o{org}) : undef;
	my $sql = join ' UNION ALL ', map {
		my ($table, $scoped) = @$_;
		my $row = $table eq 'api_tokens' ? "(to_jsonb(t) - 'last_used_at')::text" : 'to_jsonb(t)::text';
		my $where = defined $org && $scoped ? " WHERE t.org_id = ${org}::uuid" : '';
		"SELECT '$table', count(*), md5(coalesce(string_agg($row, E'\\n' ORDER BY $row), '')) FROM public.\"$table\" t$where"
	} @$tables;
	return { map { $_->[0] => "$_->[1] rows, md5 $_->[2]" } @{ $self->dbh->selectall_arrayref($sql) } };
}

sub _parse_response {
	my ($buf) = @_;
	my ($head, $body) = split /\r\n\r\n/, $buf, 2;
	my @lines = split /\r\n/, $head // '';
	my $statusline = shift @lines // '';
	my ($status) = $statusline =~ m{^HTTP/\d\.\d (\d{3})};
	my %h;
	for (@lines) {
		my ($k, $v) = /^([^:]+):\s*(.*)$/ or next;
		$k = lc $k;
		$h{$k} = exists $h{$k} ? "$h{$k}, $v" : $v;
	}
	$body //= '';
	if (($h{'transfer-encoding'} // '') =~ /chunked/i) {
		my $plain = '';
		while ($body =~ s/^([0-9a-fA-F]+)[^\r\n]*\r\n//) {
			my $len = hex $1;
			last if $len == 0;
			$plain .= substr $body, 0, $len, '';
			$body =~ s/^\r\n//;
		}
		$body = $plain;
	}
	my $json = eval { JSON::PP->new->utf8->allow_nonref->decode($body) };
	return { status => $status // 0, status_line => $statusline, headers => \%h,
		body => $body, json => $json, raw => $buf };
}

# Polls GET /api/v1/health until it answers $want (default 200); false on timeout.
sub wait_health {
	my ($self, $want, $timeout) = @_;
	$want //= 200;
	my $deadline = time + ($timeout // 30);
	while (time < $deadline) {
		my $r = eval { $self->request(GET => '/api/v1/health', timeout => 10) };
		return 1 if $r && $r->{status} == $want;
		sleep 0.1;
	}
	return 0;
}

# Waits until the status page shows $n workers (default: the config's
# "workers") ready, idle or busy; returns the page, or undef after the guard
# timeout (default 30 s). new() returns once one worker answers.
sub wait_workers_ready {
	my ($self, $n, $timeout) = @_;
	$n //= $self->{conf_overrides}{workers} // 4;
	my $deadline = time + ($timeout // 30);
	while (time < $deadline) {
		my $s = eval { $self->status };
		return $s if $s && $s->{worker_states}{idle} + $s->{worker_states}{busy} == $n;
		sleep 0.02;
	}
	return undef;
}

# Rewrites the config (as rewrite_conf), sends SIGHUP and waits until the
# status page shows the next config generation and every worker runs it.
# Returns that generation, or undef when the guard timeout (default 30 s) passes.
sub reload {
	my ($self, %o) = @_;
	my $timeout = delete $o{timeout} // 30;
	my $gen = $self->status->{master}{config_generation};
	$self->rewrite_conf(%o);
	$self->signal_daemon('HUP');
	my $deadline = time + $timeout;
	while (time < $deadline) {
		my $s = eval { $self->status };
		if ($s && $s->{master}{config_generation} > $gen) {
			my @w = @{ $s->{workers} };
			return $s->{master}{config_generation}
				if @w && !grep { $_->{config_generation} != $s->{master}{config_generation} } @w;
		}
		sleep 0.05;
	}
	return undef;
}

# Sends one FastCGI request straight to the daemon's socket, bypassing nginx,
# with exactly the params given (plus REQUEST_METHOD GET and REQUEST_URI $path
# unless given). Returns the raw CGI answer: "Status: ...\r\n...\r\n\r\nbody".
sub fastcgi_request {
	my ($self, $path, %params) = @_;
	my $s = IO::Socket::UNIX->new(Peer => $self->socket_path) or croak "connect to the daemon: $!";
	my $rec = sub {
		my ($type, $content) = @_;
		return pack('CCnnCC', 1, $type, 1, length $content, 0, 0) . $content;
	};
	my $len = sub { my $n = length $_[0]; $n < 128 ? pack('C', $n) : pack('N', $n | 0x80000000) };
	my %p = (REQUEST_METHOD => 'GET', REQUEST_URI => $path, %params);
	my $body = join '', map { $len->($_) . $len->($p{$_}) . $_ . $p{$_} } sort keys %p;
	croak "FastCGI params too long for this client" if length $body > 65535;
	# BEGIN_REQUEST (role responder, no keep-alive), PARAMS, end of PARAMS, empty STDIN.
	print {$s} $rec->(1, pack('nCx5', 1, 0)), $rec->(4, $body), $rec->(4, ''), $rec->(5, '');
	my ($in, $buf, $out) = ('', '', '');
	my $sel = IO::Select->new($s);
	my $deadline = time + 30;
	while (time < $deadline && $sel->can_read(1)) {
		my $n = sysread $s, $buf, 65536;
		last if !$n;
		$in .= $buf;
	}
	close $s;
	while (length $in >= 8) {
		my (undef, $type, undef, $clen, $pad) = unpack 'CCnnC', $in;
		$out .= substr($in, 8, $clen) if $type == 6;    # FCGI_STDOUT
		substr($in, 0, 8 + $clen + $pad, '');
	}
	return $out;
}

# ---- cleanup --------------------------------------------------------------------

sub cleanup {
	my ($self) = @_;
	return if $self->{cleaned}++ || $self->{owner_pid} != $$;
	local $?;    # keep the test's exit status
	$self->_disconnect_all;
	eval { $self->stop_nginx };
	eval { $self->stop_daemon };
	if ($self->{pgbase}) {
		eval { $self->_lib(pg_stop => $self->{pgbase}) };
	} elsif ($self->{template} && $self->{db}) {
		eval {
			my $admin = $self->_connect('postgres', 'postgres');
			$admin->do(qq{DROP DATABASE IF EXISTS "$self->{db}" WITH (FORCE)});
			$admin->disconnect;
		};
	}
	if ($ENV{SCANQA_KEEP}) {
		Test::More::diag("kept $self->{dir}");
	} else {
		remove_tree($self->{dir});
	}
}

sub DESTROY { $_[0]->cleanup }

END { $_->cleanup for grep { defined } @LIVE }

# ---- memory errors ---------------------------------------------------------------

# Stops the daemon (leaks are reported at exit) and asserts that it reported no
# memory error. Once per object; objects whose test already stopped the daemon
# and checked are checked again, which costs nothing.
sub _check_memory_errors {
	my ($self) = @_;
	return if $self->{memory_checked}++ || $self->{owner_pid} != $$;
	$self->stop_nginx;
	$self->stop_daemon;
	my $errors = $self->daemon_errors;
	Test::More::is($errors, '', 'the daemon reported no memory errors (sanitizers or valgrind)')
		or Test::More::diag(_tail($self->daemon_log, 80));
}

if ($ENV{SCANQA_SANITIZE} || $ENV{SCANQA_WRAPPER}) {
	Test2::API::test2_add_callback_testing_done(sub {
		$_->_check_memory_errors for grep { defined } @LIVE;
	});
}

# ---- files ----------------------------------------------------------------------

sub _slurp {
	my ($f) = @_;
	open my $fh, '<', $f or return '';
	local $/;
	return scalar <$fh>;
}

sub _tail {
	my ($text, $n) = @_;
	my @l = split /^/, $text // '';
	return join '', @l > $n ? @l[-$n .. -1] : @l;
}

sub _spew {
	my ($f, $text) = @_;
	open my $fh, '>', $f or croak "cannot write $f: $!";
	print {$fh} $text;
	close $fh or croak "cannot write $f: $!";
}

1;
