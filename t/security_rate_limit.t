#!/usr/bin/perl
# security_rate_limit.t: nginx limits each client address (conf/nginx/scanqa-http.conf
# and the snippet, used as shipped). A client that floods gets its burst, then
# 429 {"error":"Too many requests"} with Retry-After, answered by nginx without
# reaching the daemon, so a refused write changes nothing; other clients are
# served meanwhile; the flooding client is served again once it slows down.
# Clients on the host itself (127.0.0.1) are not counted, which is what keeps
# the load tests of the other test files unthrottled.
#
# nginx sees a request from 127.0.0.2 as another client than 127.0.0.1 (the
# whole of 127/8 is loopback on Linux).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep time);

use ScanQA::Test;

# The numbers as shipped (or as installed, when the harness tests a package).
my ($rate, $burst);
{
	my $root = ScanQA::Test::root();
	my $http = $ENV{SCANQA_NGINX_HTTP_CONF} // "$root/conf/nginx/scanqa-http.conf";
	my $snippet = $ENV{SCANQA_NGINX_SNIPPET} // "$root/conf/nginx/scanqa.conf";
	open my $fh, '<', $http or die "$http: $!";
	($rate) = join('', <$fh>) =~ /^\s*limit_req_zone\s+\S+\s+zone=scanqa_per_client:\S+\s+rate=(\d+)r\/s;/m;
	open $fh, '<', $snippet or die "$snippet: $!";
	($burst) = join('', <$fh>) =~ /^\s*limit_req\s+zone=scanqa_per_client\s+burst=(\d+)\s+nodelay;/m;
}
ok($rate && $burst, "the shipped limit: $rate requests a second per client, bursts of $burst");

my $t = ScanQA::Test->new(conf => { workers => 2, log_level => 'debug' });
my $org = $t->make_org('Rate Org');
my $user = $t->make_user($org, 'qa_inspector');

# Requests the daemon answered, from its debug log ("GET health -> 200 in N us").
sub daemon_answers { scalar grep { /\] req=\S+ \S+ \S+ -> \d+ in / } split /^/, $t->daemon_log }

# ---- a flood from one client ----------------------------------------------------------

# The flood is made of writes, each completing its own inspection, so what got
# through and what did not can be told apart in the database afterwards.
my $n = 2 * ($burst + 1) + 50;
my @ins = map { $t->make_inspection($org, $t->make_lp($org)) } 1 .. $n;
my (%seen, $first_429, @refused, @served);
my $answered_before = daemon_answers();
my $t0 = time;
for my $id (@ins) {
	my $r = $t->request(POST => '/api/v1/quality/scanner/quick-inspection', from => '127.0.0.2',
		token => $user->{token}, json => { inspection_id => $id, result => 'pass', inspection_method => 'scanner' });
	$seen{ $r->{status} }++;
	$first_429 //= $r if $r->{status} == 429;
	push @{ $r->{status} == 429 ? \@refused : \@served }, $id;
}
my $elapsed = time - $t0;
my $ok = $seen{200} // 0;
note(sprintf '%d requests in %.2f s: %s', $n, $elapsed, join ', ', map { "$_ x$seen{$_}" } sort keys %seen);
is(join(',', sort keys %seen), '200,429', 'a flooding client gets 200s, then 429s, and nothing else');
cmp_ok($ok, '>=', $burst + 1, "it is served at least its burst ($burst) plus one");
cmp_ok($ok, '<=', $burst + 1 + int($rate * $elapsed) + 1, "it is served no more than its burst plus $rate a second");
is($first_429->{json}{error}, 'Too many requests', '429 says {"error":"Too many requests"}');
like($first_429->{headers}{'content-type'} // '', qr{^application/json}, '429 is application/json');
is($first_429->{headers}{'retry-after'}, 1, '429 carries Retry-After: 1');
like($first_429->{headers}{'x-request-id'} // '', qr/^[0-9a-f]{32}$/, '429 carries nginx\'s X-Request-Id');

my $in = sub { join ',', ('?') x @_ };
is($t->one('SELECT count(*) FROM quality_inspections WHERE status = ? AND id IN (' . $in->(@served) . ')', 'completed', @served),
	scalar @served, 'every write that was answered 200 is stored');
is($t->one('SELECT count(*) FROM quality_inspections WHERE status = ? AND id IN (' . $in->(@refused) . ')', 'in_progress', @refused),
	scalar @refused, 'no write that was answered 429 changed its inspection');
is($t->one('SELECT count(*) FROM quality_audit_log'), scalar @served, 'one audit row per served write, none for the refused');
# Give the last answered requests' log lines a moment to be written.
sleep 0.2;
is(daemon_answers() - $answered_before, $ok, 'the refused requests never reached the daemon');

# While 127.0.0.2 is limited, other clients are not.
is($t->request(GET => '/api/v1/health', from => '127.0.0.3')->{status}, 200, 'another client is served meanwhile');

# Slowing down is enough to be served again.
sleep 2 * (1 / $rate) + 0.1;
is($t->request(GET => '/api/v1/health', from => '127.0.0.2')->{status}, 200, 'after a pause the client is served again');

# ---- the host itself -------------------------------------------------------------------

{
	my %s;
	my $m = 3 * ($burst + 1);
	$s{ $t->request(GET => '/api/v1/health')->{status} }++ for 1 .. $m;
	is(join(',', map { "$_ x$s{$_}" } sort keys %s), "200 x$m", "127.0.0.1 is not limited ($m requests at full speed)");
}

is($t->stop_daemon, 0, 'the daemon exits cleanly on SIGTERM');
is($t->daemon_errors, '', 'the daemon reported no memory errors');
is($t->nginx_alerts, '', 'nginx logged no alerts');

done_testing;
