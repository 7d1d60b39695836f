#!/usr/bin/perl
# fault_bad_connections.t: FastCGI connections that never become a request.
# A peer that closes at once, one that sends garbage, one that stops halfway
# through its params, and one that connects and sends nothing at all: the
# worker (only one here) drops each and goes on serving, never stuck for
# longer than its 10 s I/O limit, never replaced.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use IO::Socket::UNIX;
use Socket qw(SOCK_STREAM);
use Test::More;
use Time::HiRes qw(sleep time);

use ScanQA::Test;

my $t = ScanQA::Test->new(conf => { workers => 1, log_level => 'debug' });
ok($t->wait_workers_ready(1), 'the worker is ready');
my ($worker) = $t->worker_pids;

sub peer {
	my ($bytes) = @_;
	my $s = IO::Socket::UNIX->new(Peer => $t->socket_path, Type => SOCK_STREAM) or die "connect: $!";
	print {$s} $bytes if defined $bytes;
	return $s;
}

close peer() for 1 .. 3;
close peer("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
# BEGIN_REQUEST (responder), then half a PARAMS record.
close peer(pack('CCnnCC', 1, 1, 1, 8, 0, 0) . pack('nCx5', 1, 0) . pack('CCnnCC', 1, 4, 1, 100, 0, 0) . 'REQUEST_');
is($t->request(GET => '/api/v1/health')->{status}, 200, 'after peers that closed early or sent garbage, a request is served');

my $silent = peer();
is($t->request(GET => '/api/v1/health', timeout => 60)->{status}, 200,
	'a peer that connects and sends nothing holds the worker only until its I/O limit');
close $silent;

my $drops = () = $t->daemon_log =~ /^DEBUG \[$worker\] a connection closed before sending a request$/mg;
ok($drops >= 6, "the worker dropped each of them ($drops)");
is_deeply([$t->worker_pids], [$worker], 'the same worker serves throughout');
is($t->status->{master}{workers_crashed}, 0, 'no worker crashed');
is($t->stop_daemon, 0, 'the daemon exits cleanly on SIGTERM');
is($t->daemon_errors, '', 'the daemon reported no memory errors');
is($t->nginx_alerts, '', 'nginx logged no alerts');
done_testing;
