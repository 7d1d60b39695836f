package ScanQA::Topology;

# ScanQA::Topology: scanqa's production tiers on ScanQA::Netns hosts: PostgreSQL
# primary and synchronous streaming standby, an HAProxy edge (HTTP to the app
# hosts, TCP to the primary), and app hosts each running nginx and scanqa.

use strict;
use warnings;

use Carp qw(croak);
use IO::Socket::UNIX;
use POSIX qw(WNOHANG);
use Test::More ();
use Time::HiRes qw(sleep time);

use ScanQA::Netns;
use ScanQA::Test ();

=head1 NAME

ScanQA::Topology - PostgreSQL, HAProxy, nginx and scanqa on namespace hosts

=head1 SYNOPSIS

    my $top = ScanQA::Topology->new(net => $net, dir => $dir);
    $top->pg_primary('db1');                       # initdb, start, roles, database, migrate
    $top->pg_standby('db2', 'db1');                # pg_basebackup, streaming, then synchronous
    $top->edge('edge', apps => ['app1', 'app2'], dbs => ['db1', 'db2']);
    $top->app('app1', db_host => $net->addr('edge'));
    $top->wait_edge_up;

=head1 DESCRIPTION

Each host's files live in C<DIR/NAME>: its own sockets, pid files, temp and log
files, because unix sockets on the filesystem are shared across network
namespaces.

=over

=item pg_primary($name), pg_standby($name, $primary), pg_promote($name), pg_sock($name)

A PostgreSQL 15 cluster listening on the host's address, port 5432, and on a
unix socket in its directory (pg_sock), for the test's own checks and for
C<scanqa migrate>. Within the test network C<pg_hba.conf> trusts
198.18.0.0/24, for the daemon and for replication (production uses
passwords or client certificates: see the README). fsync is off: the test
kills processes, never the machine, so the page cache survives.

pg_primary also creates scanqa's roles and a database C<scanqa>, and runs
C<scanqa migrate> through the unix socket. pg_standby takes a base backup over
the test network (from inside the standby's namespace), starts it streaming with
C<application_name> = its name, waits until it streams, and then makes it the
primary's synchronous standby (C<synchronous_standby_names>, with
C<synchronous_commit = on>): a commit is acknowledged only once the standby
has the WAL. pg_promote runs C<pg_ctl promote> and waits for it.

=item edge($name, apps => [...], dbs => [...]), haproxy($cmd), haproxy_server($backend, $server)

HAProxy 2.6 in the edge namespace, running the shipped example
C<conf/haproxy/scanqa.cfg> with only its addresses, paths and check interval
replaced (croaks when the file no longer has what it replaces), and its
PostgreSQL listener replaced by the test's. Frontend C<scanqa> on port 80 with
C<option forwardfor> routes to backend C<scanqa_app>: one server per app host,
checked with C<option httpchk GET /api/v1/health> (C<inter 500ms fall 2 rise
2>: production uses 2 s), C<on-marked-down shutdown-sessions>, and
C<retries 2> with C<option redispatch 1>, so a connection refused or timed out
goes to the other host (only a connect failure is retried: a POST that reached
a host is never sent twice). Its own 502/503/504 are the JSON files of
conf/haproxy/errors/. C<listen postgresql> (port 5432, TCP) routes to the
first database host; the others start C<disabled>: the failover procedure (the
part Patroni's C<GET /primary> check automates) fences the old primary with
C<disable server> and enables the promoted one. haproxy() sends a command to the
runtime API.

=item app($name, db_host => $addr, workers => 3), app_stop($name), app_start($name), app_reload($name)

nginx (the production snippet and http part, from script/lib.sh's
nginx_conf_for, listening on the host's address and on loopback for the
status page; realip trusts the edge) and C<scanqa serve> (3 workers, conninfo
to C<db_host>:5432, C<application_name> = the host's name). app_stop stops
both gracefully (SIGTERM, SIGQUIT), app_start starts them again, app_reload
reloads both in place (C<scanqa reload>, nginx SIGHUP).

=back

=cut

my $PG_BINDIR = $ENV{PG_BINDIR} // '/usr/lib/postgresql/15/bin';

sub new {
	my ($class, %o) = @_;
	my $self = bless { net => $o{net}, dir => $o{dir}, apps => {} }, $class;
	$self->{root} = ScanQA::Netns->root;
	return $self;
}

sub net { $_[0]{net} }
# As ScanQA::Test: SCANQA_BIN, SCANQA_CONF and SCANQA_SQL_DIR test an installed package.
sub _sqldir { $ENV{SCANQA_SQL_DIR} // "$_[0]{root}/sql" }
sub host_dir { "$_[0]{dir}/$_[1]" }
sub pg_sock { "$_[0]{dir}/$_[1]/sock" }

# ---- script/lib.sh ----------------------------------------------------------------

# A function of script/lib.sh, as ScanQA::Test runs them (its output in DIR/lib.log);
# croaks when it fails.
sub _lib { ScanQA::Test::_lib(@_) }

# ---- PostgreSQL ------------------------------------------------------------------

# A PostgreSQL program run as postgres inside the host's namespace, from /
# (the clone may sit where postgres cannot enter).
sub _pg_cmd {
	my ($self, $name, $prog, @args) = @_;
	return $self->{net}->run_ok($name, 'env', '-C', '/', 'runuser', '-u', 'postgres', '--', "$PG_BINDIR/$prog", @args);
}

sub _pg_start {
	my ($self, $name) = @_;
	my $base = $self->host_dir($name);
	my $opts = join ' ', "-c listen_addresses=" . $self->{net}->addr($name), '-c port=5432',
		"-c unix_socket_directories='$base/sock'", '-c fsync=off', '-c full_page_writes=off',
		'-c wal_level=replica', '-c max_wal_senders=5', '-c hot_standby=on',
		"-c log_line_prefix='%m [%p] %a %r '", '-c log_connections=on';
	eval { $self->_pg_cmd($name, 'pg_ctl', '-D', "$base/data", '-l', "$base/postgresql.log", '-o', $opts, '-w', '-t', '60', 'start'); 1 }
		or croak "PostgreSQL on $name did not start: $@\n" . _tail(_slurp("$base/postgresql.log"), 20);
}

sub _pg_hba_trust_test_net {
	my ($self, $base) = @_;
	open my $fh, '>>', "$base/data/pg_hba.conf" or croak "pg_hba.conf: $!";
	print {$fh} "# the test network only (ScanQA::Topology)\n",
		"host all all 198.18.0.0/24 trust\n",
		"host replication all 198.18.0.0/24 trust\n";
	close $fh;
}

sub pg_primary {
	my ($self, $name) = @_;
	my $base = $self->host_dir($name);
	$self->_lib(pg_init => $base);
	$self->_pg_hba_trust_test_net($base);
	$self->_pg_start($name);
	$self->_lib(pg_create_roles => "$base/sock", 5432);
	$self->_lib(pg_create_db => "$base/sock", 5432, 'scanqa');
	my $conf = "$base/migrate.conf";
	_spew($conf, _daemon_conf(
		conninfo       => "host='$base/sock' port=5432 dbname=scanqa user=scanqa_app",
		admin_conninfo => "host='$base/sock' port=5432 dbname=scanqa user=scanqa_owner",
		listen         => "unix:$base/unused.sock",
		status_listen  => '',
		socket_group   => '',
		migrations_dir => $self->_sqldir,
	));
	my $bin = $ENV{SCANQA_BIN} // "$self->{root}/scanqa";
	system("'$bin' -c '$conf' migrate >'$base/migrate.log' 2>&1") == 0
		or croak "scanqa migrate failed:\n" . _slurp("$base/migrate.log");
	$self->{primary} = $name;
	return $base;
}

sub pg_standby {
	my ($self, $name, $primary) = @_;
	my $base = $self->host_dir($name);
	$self->_lib(pg_prepare_base => $base);
	mkdir "$base/sock";
	chown scalar(getpwnam 'postgres'), scalar(getgrnam 'postgres'), "$base/sock";
	my $from = $self->{net}->addr($primary);
	$self->_pg_cmd($name, 'pg_basebackup', '-h', $from, '-p', '5432', '-U', 'postgres',
		'-D', "$base/data", '-X', 'stream', '-c', 'fast', '-R');
	# -R wrote primary_conninfo; this one, appended, wins, and names the standby
	# as synchronous_standby_names will.
	open my $fh, '>>', "$base/data/postgresql.auto.conf" or croak "postgresql.auto.conf: $!";
	print {$fh} "primary_conninfo = 'host=$from port=5432 user=postgres application_name=$name'\n";
	close $fh;
	$self->_pg_start($name);
	$self->wait_sync($primary, $name, 'async|sync|potential')
		or croak "standby $name does not stream from $primary";
	$self->psql($primary, "ALTER SYSTEM SET synchronous_standby_names = '$name'");
	$self->psql($primary, "ALTER SYSTEM SET synchronous_commit = 'on'");
	$self->psql($primary, 'SELECT pg_reload_conf()');
	$self->wait_sync($primary, $name, 'sync') or croak "standby $name did not become synchronous";
	return $base;
}

# Waits until the primary's pg_stat_replication shows $standby streaming with a
# sync_state matching $re; true, or false after $timeout s (default 30).
sub wait_sync {
	my ($self, $primary, $standby, $re, $timeout) = @_;
	my $deadline = time + ($timeout // 30);
	while (time < $deadline) {
		my $st = eval { $self->psql($primary, "SELECT sync_state FROM pg_stat_replication
			WHERE application_name = '$standby' AND state = 'streaming'") } // '';
		return 1 if $st =~ /^(?:$re)$/m;
		sleep 0.1;
	}
	return 0;
}

sub pg_promote {
	my ($self, $name) = @_;
	$self->_pg_cmd($name, 'pg_ctl', '-D', $self->host_dir($name) . '/data', '-w', '-t', '60', 'promote');
	$self->{primary} = $name;
}

# Runs SQL as the superuser through the host's unix socket; returns psql's
# unaligned output.
sub psql {
	my ($self, $name, $sql, $db) = @_;
	my $sock = $self->pg_sock($name);
	my $pid = open(my $fh, '-|') // croak "fork: $!";
	if (!$pid) {
		open STDERR, '>&', \*STDOUT;
		exec('psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', $sock, '-p', 5432,
			'-U', 'postgres', '-d', $db // 'scanqa', '-c', $sql) or POSIX::_exit(127);
	}
	local $/;
	my $out = <$fh> // '';
	close $fh;
	croak "psql on $name: $sql\n$out" if $?;
	return $out;
}

# ---- HAProxy ---------------------------------------------------------------------

sub edge {
	my ($self, $name, %o) = @_;
	my $net = $self->{net};
	my $d = $self->host_dir($name);
	mkdir $d;
	my $addr = $net->addr($name);
	my $apps = join '', map { "    server $_ " . $net->addr($_) . ":80 check\n" } @{ $o{apps} };
	my ($first, @rest) = @{ $o{dbs} };
	my $dbs = "    server $first " . $net->addr($first) . ":5432 check\n"
		. join '', map { "    server $_ " . $net->addr($_) . ":5432 check disabled\n" } @rest;
	# The shipped example with only addresses, paths and the check interval
	# replaced, and its PostgreSQL listener (Patroni's) replaced by the test's:
	# plain TCP checks, the standby disabled until promoted.
	my $cfg = _slurp("$self->{root}/conf/haproxy/scanqa.cfg") or croak "conf/haproxy/scanqa.cfg is missing";
	my $pg = join "\n",
		'# The test has no Patroni: TCP checks, and the failover procedure fences',
		'# the old primary (disable server) before it enables the promoted one.',
		'listen postgresql',
		'    mode tcp',
		"    bind $addr:5432",
		'    option tcplog',
		'    timeout client 1h',
		'    timeout server 1h',
		'    default-server inter 500ms fall 2 rise 2 on-marked-down shutdown-sessions',
		$dbs;
	my @subst = (
		[qr{^    log /dev/log local0$}m, sub { '    log stderr format iso local0 info' }],
		[qr{^    (?:user|group) haproxy\n}m, sub { '' }],
		[qr{^    pidfile \S+$}m, sub { "    pidfile $d/haproxy.pid" }],
		[qr{^    stats socket \S+}m, sub { "    stats socket $d/haproxy.sock" }],
		[qr{/etc/haproxy/errors/scanqa/}, sub { "$d/errors/" }],
		[qr{^    bind :80$}m, sub { "    bind $addr:80" }],
		[qr{ inter 2s }, sub { ' inter 500ms ' }],
		[qr{^    server app\d+ .*\n}m, sub { '' }],
		[qr{^    default-server .*shutdown-sessions\n(?=\n# PostgreSQL)}m, sub { $_[0] . $apps }],
		[qr{^# PostgreSQL through Patroni.*}ms, sub { $pg }],
	);
	for (@subst) {
		my ($re, $to) = @$_;
		my $n = ($cfg =~ s/$re/$to->($&)/ge);
		croak "conf/haproxy/scanqa.cfg no longer matches $re" unless $n;
	}
	_spew("$d/haproxy.cfg", "# conf/haproxy/scanqa.cfg as t/lib/ScanQA/Topology.pm runs it\n" . $cfg);
	# HAProxy's config has no quoting for a path: the error files are copied next
	# to it, away from a clone whose path may hold a space.
	mkdir "$d/errors" or croak "mkdir $d/errors: $!";
	_spew("$d/errors/$_.http", _slurp("$self->{root}/conf/haproxy/errors/$_.http")) for 502, 503, 504;
	my $out = $net->run($name, '/usr/sbin/haproxy', '-c', '-f', "$d/haproxy.cfg");
	croak "haproxy -c refuses $d/haproxy.cfg:\n$out->{out}" if $out->{exit};
	$self->{edge} = $name;
	$self->{edge_pid} = $net->spawn($name, "$d/haproxy.log", '/usr/sbin/haproxy', '-db', '-f', "$d/haproxy.cfg");
	my $deadline = time + 20;
	until (-S "$d/haproxy.sock") {
		croak "HAProxy did not start:\n" . _slurp("$d/haproxy.log") if time > $deadline || defined $net->wait_child($self->{edge_pid});
		sleep 0.05;
	}
	return $d;
}

sub haproxy_sock { $_[0]->host_dir($_[0]{edge}) . '/haproxy.sock' }
sub haproxy { $_[0]{net}->haproxy_cmd($_[0]->haproxy_sock, $_[1]) }
sub haproxy_server { $_[0]{net}->haproxy_server($_[0]->haproxy_sock, $_[1], $_[2]) }
sub wait_haproxy_server { my $self = shift; $self->{net}->wait_haproxy_server($self->haproxy_sock, @_) }
sub haproxy_log { _slurp($_[0]->host_dir($_[0]{edge}) . '/haproxy.log') }

# ---- app hosts -------------------------------------------------------------------

sub app {
	my ($self, $name, %o) = @_;
	my $d = $self->host_dir($name);
	mkdir $d;
	chmod 0711, $d;
	my $a = $self->{apps}{$name} = { dir => $d, %o };
	my $www = defined getpwnam('www-data') && defined getgrnam('www-data');
	_spew("$d/daemon.conf", _daemon_conf(
		workers        => $o{workers} // 3,
		conninfo       => "host=$o{db_host} port=5432 dbname=scanqa user=scanqa_app application_name=$name",
		admin_conninfo => "host=$o{db_host} port=5432 dbname=scanqa user=scanqa_owner",
		listen         => "unix:$d/scanqa.sock",
		status_listen  => "unix:$d/scanqa-status.sock",
		socket_group   => $www ? 'www-data' : '',
		migrations_dir => $self->_sqldir,
		%{ $o{conf} // {} },
	));
	$self->_lib(nginx_conf_for => $d, 80, "$d/scanqa.sock");
	my $addr = $self->{net}->addr($name);
	my $edge = $self->{net}->addr($self->{edge});
	my $ngx = _slurp("$d/nginx.conf");
	$ngx =~ s{listen 127\.0\.0\.1:80;}{listen $addr:80;
        # The status page answers loopback only, on this host.
        listen 127.0.0.1:80;
        # Behind the edge: the client's address from X-Forwarded-For, trusted
        # from the edge only, so the per-client rate limit counts scanners.
        set_real_ip_from $edge;
        real_ip_header X-Forwarded-For;} or croak "nginx_conf_for wrote no listen line";
	_spew("$d/nginx.conf", $ngx);
	# One client (the test's) sends all the load: its per-client limit is
	# raised here, nowhere else.
	my $http = _slurp("$d/scanqa-http.conf");
	$http =~ s/rate=\d+r\/s/rate=5000r\/s/ or croak "scanqa-http.conf has no rate";
	_spew("$d/scanqa-http.conf", $http);
	$self->app_start($name);
	return $d;
}

sub app_start {
	my ($self, $name) = @_;
	my $a = $self->{apps}{$name};
	my $d = $a->{dir};
	my $net = $self->{net};
	unlink "$d/scanqa.sock", "$d/scanqa-status.sock";
	my $bin = $ENV{SCANQA_BIN} // "$self->{root}/scanqa";
	$a->{daemon_pid} = $net->spawn($name, "$d/daemon.log", $bin, '-c', "$d/daemon.conf", 'serve');
	# The master binds its socket 0600 and then gives it its group and mode:
	# nginx (www-data) starts once the socket is open to the group.
	my $deadline = time + 30;
	until (-S "$d/scanqa.sock" && ((stat _)[2] & 0060) == 0060) {
		croak "scanqa on $name did not start:\n" . _slurp("$d/daemon.log")
			if time > $deadline || defined $net->wait_child($a->{daemon_pid});
		sleep 0.05;
	}
	$a->{nginx_pid} = $net->spawn($name, "$d/nginx-stderr.log", '/usr/sbin/nginx', '-p', "$d/", '-c', "$d/nginx.conf", '-e', "$d/error.log");
	$deadline = time + 20;
	until (-s "$d/nginx.pid") {
		croak "nginx on $name did not start:\n" . _slurp("$d/error.log") . _slurp("$d/nginx-stderr.log")
			if time > $deadline || defined $net->wait_child($a->{nginx_pid});
		sleep 0.05;
	}
}

# Graceful stops: nginx finishes its requests (SIGQUIT), the daemon its (SIGTERM).
sub app_stop {
	my ($self, $name) = @_;
	my $a = $self->{apps}{$name};
	my $net = $self->{net};
	for ([nginx_pid => 'QUIT'], [daemon_pid => 'TERM']) {
		my ($k, $sig) = @$_;
		my $pid = delete $a->{$k} or next;
		kill $sig, $pid;
		next if defined $net->wait_child($pid, 45);
		kill 'KILL', $pid;
		$net->wait_child($pid, 5);
	}
	unlink "$a->{dir}/nginx.pid";
}

# In place: "scanqa reload" (SIGHUP; it waits for the master's verdict) and
# nginx's SIGHUP (new workers first, then the old ones finish gracefully).
sub app_reload {
	my ($self, $name) = @_;
	my $a = $self->{apps}{$name};
	my $bin = $ENV{SCANQA_BIN} // "$self->{root}/scanqa";
	my $out = `'$bin' -c '$a->{dir}/daemon.conf' reload 2>&1`;
	croak "scanqa reload on $name failed: $out" if $?;
	kill 'HUP', $a->{nginx_pid} or croak "nginx on $name: $!";
	return $out;
}

sub app_dir { $_[0]{apps}{ $_[1] }{dir} }
sub daemon_pid { $_[0]{apps}{ $_[1] }{daemon_pid} }
sub daemon_log { _slurp($_[0]->app_dir($_[1]) . '/daemon.log') }
sub nginx_error_log { _slurp($_[0]->app_dir($_[1]) . '/error.log') }
sub nginx_access_log { _slurp($_[0]->app_dir($_[1]) . '/access.log') }

# ---- files -----------------------------------------------------------------------

# conf/scanqa.conf with the given keys replaced (or added).
sub _daemon_conf {
	my (%set) = @_;
	my $conf = $ENV{SCANQA_CONF} // ScanQA::Netns->root . '/conf/scanqa.conf';
	open my $in, '<', $conf or croak "$conf: $!";
	my (@out, %done);
	while (my $line = <$in>) {
		if ($line =~ /^\s*([A-Za-z_]+)\s*=/ && exists $set{$1}) {
			next if $done{$1}++;
			$line = "$1 = " . _value($set{$1}) . "\n";
		}
		push @out, $line;
	}
	push @out, map { "$_ = " . _value($set{$_}) . "\n" } grep { !$done{$_} } sort keys %set;
	return join '', @out;
}

# A config value: bare when it can be, else in double quotes (conf/scanqa.conf's format).
sub _value {
	my ($v) = @_;
	return $v if $v eq '' || ($v =~ /^[^\s"#][^"#]*$/ && $v !~ /\s$/);
	croak "a config value cannot hold a double quote: $v" if $v =~ /"/;
	return qq{"$v"};
}

# The harness's file helpers.
BEGIN {
	*_slurp = \&ScanQA::Test::_slurp;
	*_spew  = \&ScanQA::Test::_spew;
	*_tail  = \&ScanQA::Test::_tail;
}

1;
