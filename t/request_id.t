#!/usr/bin/perl
# request_id.t: every answer carries X-Request-Id, taken from nginx's
# $request_id, and every daemon log line written while serving a request names
# the same id (req=ID), so nginx's logs, the client's answer and the daemon's
# log can be matched. An id that a client sends is not trusted.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;

use ScanQA::Test;

my $QI = '/api/v1/quality/scanner/quick-inspection';
my $NGINX_ID = qr/^[0-9a-f]{32}$/;    # nginx's $request_id: 16 random bytes in hex

# Debug level: the daemon logs one line per request.
my $t = ScanQA::Test->new(conf => { workers => 2, log_level => 'debug' });
my $org = $t->make_org;
my $user = $t->make_user($org, 'qa_inspector');

sub log_lines_with {
	my ($needle) = @_;
	return grep { index($_, $needle) >= 0 } split /\n/, $t->daemon_log;
}

{
	my $r = $t->request(GET => '/api/v1/health');
	my $rid = $r->{headers}{'x-request-id'} // '';
	like($rid, $NGINX_ID, "a daemon answer carries nginx's request id (32 hex digits)");
	my @l = log_lines_with("req=$rid ");
	ok(scalar @l, 'the daemon logged the request under that id') or diag($t->daemon_log);
	ok(grep({ /health -> 200/ } @l), 'the line names the route and the status');

	my $r2 = $t->request(GET => '/api/v1/health');
	isnt($r2->{headers}{'x-request-id'}, $rid, 'each request gets its own id');
}

{
	# A database error logged while serving: every line about it names the request.
	my $dbh = $t->dbh;
	$dbh->do(q{CREATE FUNCTION test_refuse_audit() RETURNS trigger LANGUAGE plpgsql AS
		$$ BEGIN RAISE EXCEPTION 'audit log refused by request_id.t'; END $$});
	$dbh->do('CREATE TRIGGER test_refuse_audit BEFORE INSERT ON quality_audit_log FOR EACH ROW EXECUTE FUNCTION test_refuse_audit()');
	my $id = $t->make_inspection($org, $t->make_lp($org));
	my $r = $t->request(POST => $QI, token => $user->{token},
		json => { inspection_id => $id, result => 'pass', inspection_method => 'scanner' });
	is($r->{status}, 500, 'a refused write answers 500');
	my $rid = $r->{headers}{'x-request-id'} // '';
	like($rid, $NGINX_ID, 'the 500 answer carries the request id');
	my @err = log_lines_with('audit log refused by request_id.t');
	ok(@err >= 1, 'the daemon logged the database error');
	is(scalar(grep { /^ERROR \[\d+\] req=\Q$rid\E / } @err), scalar @err,
		'every line about the error carries req= with the id of the answer');
	$dbh->do('DROP TRIGGER test_refuse_audit ON quality_audit_log');
	$dbh->do('DROP FUNCTION test_refuse_audit()');
}

{
	my $r = $t->request(GET => '/api/v1/health', headers => { 'X-Request-Id' => 'client-chosen-id' });
	like($r->{headers}{'x-request-id'}, $NGINX_ID, "a client's own X-Request-Id is replaced by nginx's");
	is(scalar(log_lines_with('client-chosen-id')), 0, "the client's id never reaches the daemon's log");
}

{
	my $r = $t->request(GET => '/not-the-api');
	like($r->{headers}{'x-request-id'} // '', $NGINX_ID, 'an error nginx answers itself carries a request id too');
	my $f = $t->request(GET => '/scanqa/status', from => '127.0.0.2');
	like($f->{headers}{'x-request-id'} // '', $NGINX_ID, 'so does the 403 of the status page');
}

# Straight to the daemon, bypassing nginx: the id it is given is checked.
{
	my $good = $t->fastcgi_request('/api/v1/health', REQUEST_ID => 'abc-123_DEF');
	like($good, qr/\r\nX-Request-Id: abc-123_DEF\r\n/, 'a well-formed id is used as it is');

	my $evil = "abc\nINFO [1] forged line";
	my $bad = $t->fastcgi_request('/api/v1/health', REQUEST_ID => $evil);
	my ($got) = $bad =~ /\r\nX-Request-Id: ([^\r\n]*)\r\n/;
	like($got // '', qr/^[0-9a-f]{22}$/, 'an id with a line break is replaced by one the daemon makes');
	is(scalar(log_lines_with('forged line')), 0, 'the rejected id never reaches the log');
	ok(scalar(log_lines_with("req=$got ")), "the daemon's own id is logged instead") if $got;

	my $none = $t->fastcgi_request('/api/v1/health');
	like($none, qr/\r\nX-Request-Id: [0-9a-f]{22}\r\n/, 'without an id the daemon makes one');
	my $long = $t->fastcgi_request('/api/v1/health', REQUEST_ID => 'a' x 64);
	like($long, qr/\r\nX-Request-Id: [0-9a-f]{22}\r\n/, 'an id of 64 characters or more is replaced');
}

is($t->stop_daemon, 0, 'the daemon exits cleanly on SIGTERM');
is($t->daemon_errors, '', 'the daemon reported no memory errors');
is($t->nginx_alerts, '', 'nginx logged no alerts');
done_testing;
