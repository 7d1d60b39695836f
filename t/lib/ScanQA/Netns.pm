package ScanQA::Netns;

# ScanQA::Netns: several "hosts" on this one machine, each a network namespace
# on a private switch, for tests of scanqa past one host (an HAProxy edge, app
# hosts with nginx and scanqa, PostgreSQL hosts, a client).

use strict;
use warnings;

use Carp qw(croak);
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(remove_tree);
use IO::Socket::UNIX;
use POSIX qw(WNOHANG);
use Scalar::Util qw(weaken);
use Test::More ();
use Time::HiRes qw(sleep time);

=head1 NAME

ScanQA::Netns - network namespaces as hosts, and scanqa's tiers on them

=head1 SYNOPSIS

    my $why = ScanQA::Netns->unavailable;     # undef, or why the test must skip
    my $net = ScanQA::Netns->new(dir => $tmpdir);
    $net->add_host(edge => 10);               # namespace PREFIX-edge, 198.18.0.10
    $net->add_host(app1 => 11);
    my @bad = $net->route_problems(client => $net->addr('edge'));
    $net->link_down('app1'); $net->link_up('app1');
    $net->kill_host('app1');

=head1 NETWORK SAFETY

Every address is in 198.18.0.0/24 (RFC 2544's benchmarking range) and exists
only inside the namespaces created here. They hang off one bridge that lives in
a "switch" namespace of its own: each host's veth pair is created in the switch
namespace with its peer placed straight into the host's namespace, so the root
namespace never holds a link into the test network, and no host namespace
has a route out of it (C<ip route get 1.1.1.1> is "Network is unreachable"
there). The root namespace has a default route out of this machine: nothing
here ever sends to a namespace address from it. Programs are started inside a
namespace with C<ip netns exec>; the test process itself talks to the servers
only through unix sockets in the temp directory (PostgreSQL's, HAProxy's
runtime API), which are files and not network traffic.

route_problems() checks, before any traffic, that every target is reached
through the namespace's own link and that an outside address is unreachable,
and that the root namespace has no address in the test range.

All namespaces are named C<scanqa-topo-PID-NAME> (PID: the test process).
cleanup() (also run from END, and on SIGINT/SIGTERM through ScanQA::Test's
handlers, which exit) kills every process in each namespace (C<ip netns
pids>), deletes the namespaces (which removes their veth pairs and the
bridge), and waits for the children it started. Namespaces left by a run
whose process no longer exists (killed with SIGKILL) are removed by the next
new().

=head1 METHODS

=over

=item unavailable

Class method: undef when namespaces can be used here, else a reason to skip
(not root, no C<ip>, or creating a namespace failed).

=item new(dir => $dir)

Creates the switch namespace with its bridge. C<dir> holds the hosts' files;
cleanup() removes it once every process is gone (SCANQA_KEEP keeps it).

=item add_host($name, $n)

A namespace with loopback up and C<eth0> = 198.18.0.$n/24 on the switch.
addr($name) is that address, ns($name) the namespace's full name.

=item run($name, @cmd)

Runs @cmd inside the namespace and returns C<{exit, out}> (stdout and stderr
together); run_ok croaks unless it exits 0.

=item spawn($name, $log, @cmd)

Starts @cmd inside the namespace in the background (its own process group,
stdout and stderr appended to $log) and returns its pid.

=item link_down($name), link_up($name)

Takes the host's switch port down (the cable pulled) or up again.

=item kill_host($name)

SIGKILL to every process in the namespace: the host crashed. Its links stay.
Returns once none of them is left (or after 10 s): the count killed.

=item route_problems($from, @targets)

The list of what is wrong (empty when all is well): a target not reached
through C<eth0> of C<$from> without a gateway, an outside address (1.1.1.1)
that is reachable, or an address of the test range in the root namespace.

=back

=cut

my $ROOT = abs_path(dirname(__FILE__) . '/../../..');
my $RANGE = '198.18.0';
my $OUTSIDE = '1.1.1.1';
my $IP = -x '/usr/sbin/ip' ? '/usr/sbin/ip' : (-x '/sbin/ip' ? '/sbin/ip' : 'ip');
my @LIVE;

sub root { $ROOT }

sub unavailable {
	return 'needs root to create network namespaces (CI runs it as root)' if $> != 0;
	return "needs iproute2's ip ($IP)" unless _exits_ok($IP, '-V');
	my $probe = "scanqa-probe-$$";
	return 'cannot create a network namespace here (ip netns add failed)'
		unless _exits_ok($IP, 'netns', 'add', $probe);
	_exits_ok($IP, 'netns', 'del', $probe);
	return undef;
}

sub new {
	my ($class, %o) = @_;
	croak 'dir is required' unless $o{dir};
	my $self = bless {
		dir       => $o{dir},
		prefix    => "scanqa-topo-$$",
		hosts     => {},
		order     => [],
		children  => {},
		owner_pid => $$,
	}, $class;
	push @LIVE, $self;
	weaken $LIVE[-1];
	_remove_stale();
	my $sw = $self->ns('switch');
	$self->_ip(netns => add => $sw);
	push @{ $self->{order} }, $sw;
	$self->_ip('-n', $sw, link => set => lo => 'up');
	$self->_ip('-n', $sw, link => add => 'br0', type => 'bridge');
	$self->_ip('-n', $sw, link => set => br0 => 'up');
	return $self;
}

sub dir  { $_[0]{dir} }
sub ns   { "$_[0]{prefix}-$_[1]" }
sub addr { $_[0]{hosts}{ $_[1] } // croak "no host $_[1]" }

sub add_host {
	my ($self, $name, $n) = @_;
	my ($ns, $sw, $port) = ($self->ns($name), $self->ns('switch'), "p-$name");
	croak "switch port name $port is too long" if length $port > 15;
	$self->_ip(netns => add => $ns);
	push @{ $self->{order} }, $ns;
	# Created in the switch namespace, its peer placed straight into the host's:
	# no end of it is ever in the root namespace.
	$self->_ip('-n', $sw, link => add => $port, type => 'veth', peer => name => 'eth0', netns => $ns);
	$self->_ip('-n', $sw, link => set => $port, master => 'br0', 'up');
	$self->_ip('-n', $ns, addr => add => "$RANGE.$n/24", dev => 'eth0');
	$self->_ip('-n', $ns, link => set => eth0 => 'up');
	$self->_ip('-n', $ns, link => set => lo => 'up');
	$self->{hosts}{$name} = "$RANGE.$n";
	return $self->{hosts}{$name};
}

sub link_down { $_[0]->_ip('-n', $_[0]->ns('switch'), link => set => "p-$_[1]" => 'down') }
sub link_up   { $_[0]->_ip('-n', $_[0]->ns('switch'), link => set => "p-$_[1]" => 'up') }

sub run {
	my ($self, $name, @cmd) = @_;
	my $out = '';
	my $pid = open(my $fh, '-|') // croak "fork: $!";
	if (!$pid) {
		open STDERR, '>&', \*STDOUT;
		exec($IP, 'netns', 'exec', $self->ns($name), @cmd) or POSIX::_exit(127);
	}
	{ local $/; $out = <$fh> // '' }
	close $fh;
	return { exit => $? >> 8, out => $out };
}

sub run_ok {
	my ($self, $name, @cmd) = @_;
	my $r = $self->run($name, @cmd);
	croak "in $name, @cmd failed ($r->{exit}):\n$r->{out}" if $r->{exit};
	return $r->{out};
}

sub spawn {
	my ($self, $name, $log, @cmd) = @_;
	my $pid = fork // croak "fork: $!";
	if (!$pid) {
		setpgrp(0, 0);
		open STDIN, '<', '/dev/null';
		open STDOUT, '>>', $log or POSIX::_exit(126);
		open STDERR, '>&', \*STDOUT;
		exec($IP, 'netns', 'exec', $self->ns($name), @cmd) or POSIX::_exit(127);
	}
	$self->{children}{$pid} = $name;
	return $pid;
}

# Waits up to $timeout seconds for a child started by spawn() to exit; returns
# its status ($?), or undef while it runs.
sub wait_child {
	my ($self, $pid, $timeout) = @_;
	my $deadline = time + ($timeout // 0);
	while (1) {
		my $r = waitpid $pid, WNOHANG;
		if ($r == $pid || $r == -1) {
			delete $self->{children}{$pid};
			return $r == $pid ? $? : 0;
		}
		return undef if time >= $deadline;
		sleep 0.05;
	}
}

# The pids of every process in the namespace.
sub pids {
	my ($self, $name) = @_;
	return _ns_pids($self->ns($name));
}

sub kill_host {
	my ($self, $name) = @_;
	my @pids = $self->pids($name);
	kill 'KILL', @pids if @pids;
	my $deadline = time + 10;
	while (time < $deadline && $self->pids($name)) {
		for my $c (grep { $self->{children}{$_} eq $name } keys %{ $self->{children} }) {
			delete $self->{children}{$c} if waitpid($c, WNOHANG) != 0;
		}
		sleep 0.01;
	}
	return scalar @pids;
}

sub route_problems {
	my ($self, $from, @targets) = @_;
	my @bad;
	for my $to (@targets) {
		my $r = $self->run($from, $IP, 'route', 'get', $to);
		push @bad, "$from -> $to: $r->{out}"
			if $r->{exit} || $r->{out} !~ /^\Q$to\E dev eth0 src \Q$RANGE\E\./ || $r->{out} =~ / via /;
	}
	my $out = $self->run($from, $IP, 'route', 'get', $OUTSIDE);
	push @bad, "$from reaches $OUTSIDE: $out->{out}" unless $out->{exit} && $out->{out} =~ /unreachable/i;
	my $root = _capture($IP, '-o', 'addr', 'show');
	push @bad, "the root namespace has an address in $RANGE.0/24" if $root =~ /inet \Q$RANGE\E\./;
	return @bad;
}

# A command to the HAProxy runtime API on its unix socket; returns the answer.
sub haproxy_cmd {
	my ($self, $sock, $cmd) = @_;
	my $s = IO::Socket::UNIX->new(Peer => $sock, Type => SOCK_STREAM)
		or croak "cannot connect to HAProxy's runtime API at $sock: $!";
	print {$s} "$cmd\n";
	local $/;
	my $out = <$s> // '';
	close $s;
	return $out;
}

# HAProxy's view of one server, from "show stat": status ("UP", "DOWN",
# "MAINT", "DRAIN", ..., with " 1/2" while it goes up or down), scur (its
# current sessions) and check (the last check's result: "L7OK", "L4TOUT", ...;
# "INI" before the first, while HAProxy assumes the server UP).
sub haproxy_server {
	my ($self, $sock, $backend, $server) = @_;
	my @lines = split /\n/, $self->haproxy_cmd($sock, 'show stat');
	my $head = shift @lines // '';
	$head =~ s/^# //;
	my @f = split /,/, $head;
	my %i = map { $f[$_] => $_ } 0 .. $#f;
	for (@lines) {
		my @v = split /,/;
		next unless ($v[0] // '') eq $backend && ($v[1] // '') eq $server;
		return { status => $v[ $i{status} ], scur => $v[ $i{scur} ], check => $v[ $i{check_status} ] // '' };
	}
	return { status => 'missing', scur => 0, check => '' };
}

# Polls until the server's status matches $re; true, or false after $timeout s.
# "UP" counts only once a check has passed (not HAProxy's initial assumption).
sub wait_haproxy_server {
	my ($self, $sock, $backend, $server, $re, $timeout) = @_;
	my $deadline = time + ($timeout // 30);
	while (time < $deadline) {
		my $s = $self->haproxy_server($sock, $backend, $server);
		return 1 if $s->{status} =~ $re && ($s->{status} !~ /^UP/ || $s->{check} =~ /OK/);
		sleep 0.05;
	}
	return 0;
}

# ---- cleanup ---------------------------------------------------------------------

sub cleanup {
	my ($self) = @_;
	return if $self->{cleaned}++ || $self->{owner_pid} != $$;
	local ($?, $!, $@);
	my @ns = reverse @{ $self->{order} };
	_kill_ns($self->{children}, @ns);
	for my $pid (keys %{ $self->{children} }) {
		kill 'KILL', -$pid, $pid;
		waitpid $pid, 0;
	}
	_exits_ok($IP, 'netns', 'del', $_) for @ns;
	my @left = grep { my $n = $_; grep { $_ eq $n } _ns_list() } @ns;
	Test::More::diag("could not delete network namespaces: @left") if @left;
	if ($ENV{SCANQA_KEEP}) {
		Test::More::diag("kept $self->{dir}");
	} else {
		remove_tree($self->{dir});
	}
}

sub DESTROY { $_[0]->cleanup }

END { $_->cleanup for grep { defined } @LIVE }

# Namespaces of earlier runs whose test process is gone.
sub _remove_stale {
	my @stale = grep { /^scanqa-topo-(\d+)-/ && !kill(0, $1) } _ns_list();
	return unless @stale;
	Test::More::diag("removing namespaces left by an earlier run: @stale");
	_kill_ns({}, @stale);
	_exits_ok($IP, 'netns', 'del', $_) for @stale;
}

# SIGTERM to every process in the namespaces, then SIGKILL to what is left
# after 5 s. $children: the pids this process started (spawn), reaped here so
# that they do not linger as zombies; no other child is waited for.
sub _kill_ns {
	my ($children, @ns) = @_;
	my @pids = map { _ns_pids($_) } @ns;
	return unless @pids;
	kill 'TERM', @pids;
	my $deadline = time + 5;
	while (time < $deadline) {
		for my $c (keys %$children) {
			delete $children->{$c} if waitpid($c, WNOHANG) != 0;
		}
		last unless map { _ns_pids($_) } @ns;
		sleep 0.1;
	}
	@pids = map { _ns_pids($_) } @ns;
	kill 'KILL', @pids if @pids;
}

sub _ns_list { map { (split ' ')[0] } grep { /\S/ } split /\n/, _capture($IP, 'netns', 'list') }

sub _ns_pids {
	my ($ns) = @_;
	return grep { /^\d+$/ && $_ != $$ } split ' ', _capture($IP, 'netns', 'pids', $ns);
}

sub _ip {
	my ($self, @args) = @_;
	my $out = _capture($IP, @args);
	croak "ip @args failed: $out" if $?;
	return $out;
}

sub _capture {
	my (@cmd) = @_;
	my $pid = open(my $fh, '-|') // croak "fork: $!";
	if (!$pid) {
		open STDERR, '>&', \*STDOUT;
		exec(@cmd) or POSIX::_exit(127);
	}
	local $/;
	my $out = <$fh> // '';
	close $fh;
	return $out;
}

sub _exits_ok {
	my (@cmd) = @_;
	_capture(@cmd);
	return $? == 0;
}

1;
