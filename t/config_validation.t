#!/usr/bin/perl
# config_validation.t: one source of truth for every setting. check-config,
# serve and a reload (SIGHUP) accept and refuse exactly the same files, with
# the same reason; a refused reload keeps the running config and says why in
# the log and on the status page; a TCP listen address beyond loopback is
# refused; and a reload to the largest worker count completes its roll.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep time);

use ScanQA::Test;

my $t = ScanQA::Test->new(conf => { workers => 2 });
my $BIN = ScanQA::Test::_bin();
my %ORIG = %{ $t->{conf_overrides} };

# Puts settings back as the test started with them.
sub restore {
	for my $k (@_) {
		if (exists $ORIG{$k}) {
			$t->{conf_overrides}{$k} = $ORIG{$k};
		} else {
			delete $t->{conf_overrides}{$k};
		}
	}
	$t->rewrite_conf;
}

# Runs the daemon binary on a copy of the test's config with %set applied
# (undef removes a key); returns (exit status, stdout + stderr).
sub run_with {
	my ($cmd, %set) = @_;
	my $file = $t->dir . '/variant.conf';
	open my $in, '<', $t->conf_path or die $!;
	my @lines = grep { !(/^\s*(\w+)\s*=/ && exists $set{$1}) } <$in>;
	close $in;
	push @lines, map { defined $set{$_} ? qq{$_ = "$set{$_}"\n} : () } sort keys %set;
	open my $out, '>', $file or die $!;
	print {$out} @lines;
	close $out;
	my $output = `"$BIN" -c "$file" $cmd 2>&1`;
	return ($? >> 8, $output);
}

sub reload_refused {
	my (%set) = @_;
	my $s0 = $t->status;
	my $from = length $t->daemon_log;
	$t->rewrite_conf(%set);
	$t->signal_daemon('HUP');
	my $deadline = time + 20;
	my $line;
	while (time < $deadline) {
		last if ($line) = substr($t->daemon_log, $from) =~ /^ERROR \[\d+\] (reload refused, keeping the running config: .*)$/m;
		sleep 0.02;
	}
	my $s = $t->status;
	is($s->{master}{config_generation}, $s0->{master}{config_generation}, 'the running config stays in force');
	return ($line, $s);
}

# ---- workers: the same limit everywhere ------------------------------------------------

{
	my ($st, $out) = run_with('check-config', workers => 257);
	is($st, 1, 'check-config refuses workers = 257');
	like($out, qr/workers: value out of range \(1\.\.256\)/, 'saying the allowed range');
	my $reason = ($out =~ /(workers: value out of range \(1\.\.256\))/)[0];

	($st, $out) = run_with('check-config', workers => 256);
	is($st, 0, 'check-config accepts workers = 256');

	($st, $out) = run_with('serve', workers => 257, listen => 'unix:' . $t->dir . '/other.sock',
		status_listen => undef);
	is($st, 1, 'serve refuses workers = 257');
	like($out, qr/\Q$reason\E/, 'with the same reason');

	my ($line, $s) = reload_refused(workers => 257);
	like($line // '', qr/\Q$reason\E/, 'a reload to workers = 257 is refused with the same reason') or diag($t->daemon_log);
	is($s->{master}{last_reload}{ok}, JSON::PP::false, 'the status page shows the last reload failed');
	like($s->{master}{last_reload}{error} // '', qr/\Q$reason\E/, 'and why');
	is($s->{master}{last_reload}{refused_total}, 1, 'and counts it');
	is(scalar @{ $s->{workers} }, 2, 'the two workers go on');
	unlike($t->daemon_log, qr/no free worker slot/, 'the master never runs out of worker slots');
	restore('workers');
}

# ---- everything start-up checks, reload checks ------------------------------------------

for my $case (
	[conninfo => 'dbname=x no_such_option=1', qr/conninfo: invalid connection option "no_such_option"/, 'a conninfo libpq cannot parse'],
	[socket_group => 'no-such-group-scanqa', qr/socket_group: no such group/, 'an unknown socket_group'],
	[listen => 'unix:relative.sock', qr/listen: expected unix:\/absolute\/path/, 'a relative socket path'],
	[status_listen => '0.0.0.0:9000', qr/status_listen: a TCP address must be loopback/, 'a status socket on every interface'],
	[pool_mode => 'statement', qr/pool_mode: expected session or transaction/, 'a pool_mode other than session or transaction'],
	[prepared_statements => 'yes', qr/prepared_statements: expected auto, on or off/, 'prepared_statements = yes'],
) {
	my ($key, $val, $re, $what) = @$case;
	my ($st, $out) = run_with('check-config', $key => $val);
	is($st, 1, "check-config refuses $what");
	like($out, $re, "check-config says why ($what)");
	my ($line) = reload_refused($key => $val);
	like($line // '', $re, "a reload refuses $what, for the same reason");
	restore($key);
}
{
	my ($st, $out) = run_with('check-config', pool_mode => 'transaction', prepared_statements => 'on');
	is($st, 1, 'check-config refuses prepared_statements = on with pool_mode = transaction');
	like($out, qr/prepared_statements: on cannot work with pool_mode = transaction/, '...saying that pgbouncer keeps no named statements there');
	($st, $out) = run_with('check-config', pool_mode => 'transaction');
	is($st, 0, 'pool_mode = transaction alone is accepted');
	like($out, qr/^prepared_statements = auto \(unnamed statements\)$/m, '...and check-config shows that statements are sent unnamed');
}
{
	my ($line) = reload_refused(listen => 'unix:' . $t->dir . '/moved.sock');
	like($line // '', qr/listen cannot change without a restart/, 'a reload cannot move the socket');
	restore('listen');
}

# ---- scanqa reload (systemd's ExecReload) reports the verdict ----------------------------

{
	my $reload = sub {
		my $out = `"$BIN" -c "@{[$t->conf_path]}" reload 2>&1`;
		return ($? >> 8, $out);
	};
	$t->rewrite_conf(workers => 257);
	my ($st, $out) = $reload->();
	is($st, 1, 'scanqa reload fails on a file check-config refuses');
	like($out, qr/workers: value out of range \(1\.\.256\)/, 'saying why');

	$t->rewrite_conf(workers => $ORIG{workers}, listen => 'unix:' . $t->dir . '/moved.sock');
	($st, $out) = $reload->();
	is($st, 1, 'scanqa reload fails when the daemon refuses the file (a socket change needs a restart)');
	like($out, qr/refused, the running config stays: listen cannot change without a restart/, 'with the daemon\'s reason');
	restore('listen');

	my $gen = $t->status->{master}{config_generation};
	$t->rewrite_conf(slow_request_ms => 700);
	($st, $out) = $reload->();
	is($st, 0, 'scanqa reload succeeds on a good file') or diag($out);
	like($out, qr/config generation @{[$gen + 1]} in force/, 'and names the new config generation');
	is($t->status->{master}{config_generation}, $gen + 1, 'which the status page shows');
	ok($t->wait_workers_ready(2), 'the workers are replaced');
}

# ---- TCP beyond loopback is refused --------------------------------------------------------

for my $addr ('0.0.0.0:9000', '10.1.2.3:9000', '[::]:9000', '[2001:db8::1]:9000', '[::ffff:127.0.0.1]:9000') {
	my ($st, $out) = run_with('check-config', listen => $addr);
	is($st, 1, "check-config refuses listen = $addr");
	like($out, qr/listen: a TCP address must be loopback \(127\.0\.0\.0\/8 or \[::1\]\): FastCGI has no authentication/,
		"saying a TCP address must be loopback ($addr)");
	($st, $out) = run_with('serve', listen => $addr, status_listen => undef);
	is($st, 1, "serve refuses listen = $addr");
}
for my $addr ('localhost:9000', '127.0.0.1', '127.0.0.1:0', '::1:9000') {
	my ($st, $out) = run_with('check-config', listen => $addr);
	is($st, 1, "check-config refuses listen = $addr (not a numeric HOST:PORT)");
}
for my $addr ('127.0.0.1:9000', '127.1.2.3:9000', '[::1]:9000') {
	my ($st) = run_with('check-config', listen => $addr);
	is($st, 0, "check-config accepts the loopback address $addr");
}

# ---- a reload to the largest worker count completes its roll ------------------------------

SKIP: {
	# 256 sanitized or valgrind processes would take gigabytes of a shared machine.
	skip 'the 256-worker roll runs without sanitizers or valgrind only', 6 if $ENV{SCANQA_SANITIZE} || $ENV{SCANQA_WRAPPER};
	# The workers need no database to start (they answer 503 until it is
	# reachable), and 256 sessions would exceed max_connections: point them at
	# a socket directory that does not exist.
	my $gen = $t->reload(workers => 256, conninfo => 'host=/nonexistent-scanqa-test dbname=x connect_timeout=1',
		timeout => 120);
	ok($gen, 'a reload to workers = 256 completes: every worker runs the new config');
	my $s = $t->status;
	is(scalar @{ $s->{workers} }, 256, '256 workers run');
	is(scalar(grep { $_->{config_generation} == $gen } @{ $s->{workers} }), 256, 'all of the new generation');
	unlike($t->daemon_log, qr/no free worker slot/, 'no spawn ever lacked a slot');
	$t->{conf_overrides}{workers} = 2;
	delete $t->{conf_overrides}{conninfo};
	ok($t->reload(timeout => 120), 'and back to 2 workers on the real database');
	is($t->request(GET => '/api/v1/health')->{status}, 200, 'which answer');
	is(scalar @{ $t->status->{workers} }, 2, '2 workers run');
}

is($t->status->{master}{workers_crashed}, 0, 'no worker crashed');
is($t->stop_daemon, 0, 'the daemon exits cleanly on SIGTERM');
is($t->daemon_errors, '', 'the daemon reported no memory errors');
is($t->nginx_alerts, '', 'nginx logged no alerts');
done_testing;
