#!/usr/bin/perl
# security_socket.t: the daemon's FastCGI socket is reachable by nginx's user
# alone. With the production settings (conf/scanqa.conf: socket_mode 0660,
# socket_group www-data) the socket belongs to the daemon's user and to
# nginx's group, with no access for others; a process of nginx's user (www-data)
# connects and gets answers, a process of any other user (nobody) is refused by
# the kernel. Switching users needs root: run as another user, this test skips.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use POSIX qw(getuid);
use Test::More;

use ScanQA::Test;

plan skip_all => 'needs root to run processes as www-data and nobody (the production arrangement)'
	unless getuid() == 0;
plan skip_all => 'needs the users www-data and nobody'
	unless defined getpwnam('www-data') && defined getgrnam('www-data') && defined getpwnam('nobody');
plan skip_all => 'needs runuser (util-linux)' unless -x '/usr/sbin/runuser' || -x '/sbin/runuser';

# The production config, as shipped (or as installed, when the harness tests a package).
{
	my $conf = $ENV{SCANQA_CONF} // ScanQA::Test::root() . '/conf/scanqa.conf';
	open my $fh, '<', $conf or die "$conf: $!";
	my %conf = map { /^\s*(\w+)\s*=\s*(.*?)\s*$/ ? ($1 => $2) : () } grep { !/^\s*#/ } <$fh>;
	is($conf{socket_mode}, '0660', 'the daemon config sets socket_mode 0660');
	is($conf{socket_group}, 'www-data', 'the daemon config gives the socket to group www-data (nginx)');
}

# The harness uses the production config with only the socket's path changed, and
# runs nginx's workers as www-data, as Debian's nginx does.
my $t = ScanQA::Test->new(conf => { workers => 2 });
my $sock = $t->socket_path;

my @st = stat $sock or die "stat $sock: $!";
ok(-S _, 'the listen address is a unix socket');
is(sprintf('%04o', $st[2] & 07777), '0660', 'its mode is 0660: owner and group only');
is($st[5], scalar getgrnam('www-data'), 'its group is www-data, nginx\'s group');
open my $status, '<', '/proc/' . $t->master_pid . '/status' or die $!;
my ($uid) = join('', <$status>) =~ /^Uid:\s+\d+\s+(\d+)/m;    # the effective uid
is($st[4], $uid, 'its owner is the daemon\'s user');

# A FastCGI request for GET /api/v1/health, made as another user with runuser;
# prints "connected" and the reply's Status line, or "refused: <errno text>".
my $client = <<'PERL';
use strict; use IO::Socket::UNIX; use Socket;
my $s = IO::Socket::UNIX->new(Peer => $ARGV[0], Type => SOCK_STREAM) or do { print "refused: $!\n"; exit 0 };
sub rec { my ($type, $c) = @_; pack('CCnnCC', 1, $type, 1, length $c, 0, 0) . $c }
my $p = '';
for my $kv (['REQUEST_METHOD', 'GET'], ['REQUEST_URI', '/api/v1/health'], ['CONTENT_LENGTH', '']) {
	$p .= pack('CC', length $kv->[0], length $kv->[1]) . $kv->[0] . $kv->[1];
}
print $s rec(1, pack('nCx5', 1, 0)) . rec(4, $p) . rec(4, '') . rec(5, '');
local $/; my $out = <$s> // '';
my ($status) = $out =~ /Status: (\d+)/;
print "connected: ", ($status // 'no status'), "\n";
PERL

# The client runs with an empty environment, from /: the clone (and with it this
# test's cwd, PERL5LIB and prove's -I paths) may sit where the other user cannot
# enter (/root, a 0700 home), and a perl whose @INC holds such a directory dies
# before it tests anything. It needs nothing but core modules.
sub as_user {
	my ($user) = @_;
	my $pid = open(my $fh, '-|') // die "fork: $!";
	if (!$pid) {
		chdir '/' or die "chdir /: $!";
		exec('runuser', '-u', $user, '--', 'env', '-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'LANG=C',
			'/usr/bin/perl', '-e', $client, $sock) or POSIX::_exit(127);
	}
	my $out = do { local $/; <$fh> } // '';
	close $fh;
	chomp $out;
	return $out;
}

is(as_user('www-data'), 'connected: 200', 'a process of nginx\'s user (www-data) connects and is answered');
like(as_user('nobody'), qr/^refused: Permission denied/, 'a process of another user (nobody) is refused by the kernel');
my $r = $t->request(GET => '/api/v1/health');
is($r->{status}, 200, 'nginx, whose workers run as www-data, reaches the daemon');

is($t->stop_daemon, 0, 'the daemon exits cleanly on SIGTERM');
is($t->daemon_errors, '', 'the daemon reported no memory errors');
is($t->nginx_alerts, '', 'nginx logged no alerts');

done_testing;
