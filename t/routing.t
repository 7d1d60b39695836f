#!/usr/bin/perl
# routing.t: what any client sees before a handler runs, through the production
# nginx config: unknown paths, non-canonical paths (308), HEAD and OPTIONS, wrong
# methods, bodies over the limits (nginx's and the daemon's), the body's
# Content-Type, Content-Encoding and byte-order mark, what nginx refuses itself
# (two Authorization headers, a malformed % escape), and that every answer is
# JSON carrying an X-Request-Id.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP;
use Test::More;

use ScanQA::Test;

my $QI = '/api/v1/quality/scanner/quick-inspection';
my $LIMIT = 2048;    # the daemon's body_limit here (its minimum is 1024), far below nginx's 1m

my $t = ScanQA::Test->new(conf => { workers => 2, body_limit => $LIMIT });
my $org = $t->make_org;
my $user = $t->make_user($org, 'qa_inspector');

my @seen;    # every response, for the checks at the end
sub req {
	my $r = $t->request(@_);
	push @seen, [$r, "$_[0] $_[1]"];
	return $r;
}

sub error_is {
	my ($r, $status, $error, $what) = @_;
	subtest $what => sub {
		is($r->{status}, $status, "status $status");
		is_deeply($r->{json}, { error => $error }, qq{body is {"error":"$error"}})
			or diag("body: $r->{body}");
	};
}

# A valid quick-inspection body of exactly $len bytes (padded with an unknown key).
sub body_of_length {
	my ($len, $id) = @_;
	my $base = qq({"inspection_id":"$id","result":"pass","inspection_method":"scanner","pad":""});
	my $pad = $len - length $base;
	die "body too short for $len bytes" if $pad < 0;
	return qq({"inspection_id":"$id","result":"pass","inspection_method":"scanner","pad":") . ('x' x $pad) . '"}';
}

sub fresh_inspection { $t->make_inspection($org, $t->make_lp($org)) }

# ---- health ------------------------------------------------------------------------

{
	my $r = req(GET => '/api/v1/health');
	is($r->{status}, 200, 'health answers 200 while the database is up');
	is_deeply($r->{json}, { status => 'ok' }, 'health says {"status":"ok"}');
	is(req(GET => '/api/v1/health?verbose=1')->{status}, 200, 'a query string does not change the route');
}

# ---- 404 -----------------------------------------------------------------------------

error_is(req(GET => '/api/v1/nope'), 404, 'Not found', 'an unknown API path: 404');
error_is(req(POST => '/api/v1/quality/scanner/quick-inspections', token => $user->{token}, json => {}),
	404, 'Not found', 'a misspelt endpoint: 404');
error_is(req(GET => '/api/'), 404, 'Not found', 'the API root: 404');
error_is(req(GET => '/'), 404, 'Not found', 'a path outside /api/: 404 from nginx, as JSON');
error_is(req(GET => '/index.html'), 404, 'Not found', 'a static file name: 404 as JSON');

# A bad path parameter is reported only on a path that matches a route.
error_is(req(GET => '/api/v1/scan-sessions/%FF/foo/bar', token => $user->{token}), 404, 'Not found',
	'a bad parameter in a path that matches no route: 404');
error_is(req(GET => '/api/v1/scan-sessions/%FF', token => $user->{token}), 400, 'Invalid path parameter',
	'a bad parameter in a path that matches a route: 400');

# ---- 308 to the canonical path -----------------------------------------------------------

# As the reference (Next.js) does: a trailing or doubled slash in a known path is
# redirected, with 308 so that the method and the body are kept.
for my $c (
	[ '/api/v1/health/', '/api/v1/health', 'a trailing slash' ],
	[ '/api//v1/health', '/api/v1/health', 'a doubled slash' ],
	[ '//api/v1//health//', '/api/v1/health', 'several' ],
	[ '/api/v1/health/?verbose=1', '/api/v1/health?verbose=1', 'a trailing slash before a query' ],
	[ '/api/v1/scan-sessions/42/', '/api/v1/scan-sessions/42', 'a trailing slash after a parameter' ],
) {
	my ($path, $canonical, $what) = @$c;
	my $r = req(GET => $path);
	is($r->{status}, 308, "$what ($path): 308");
	is($r->{headers}{location}, $canonical, "$what: Location is $canonical");
	is_deeply($r->{json}, { location => $canonical }, "$what: the body names it too");
}
{
	my $id = fresh_inspection();
	my $r = req(POST => "$QI/", token => $user->{token},
		json => { inspection_id => $id, result => 'pass', inspection_method => 'scanner' });
	is($r->{status}, 308, 'a POST to a known path with a trailing slash: 308');
	is($r->{headers}{location}, $QI, 'to the canonical path');
	is($t->one('SELECT status FROM quality_inspections WHERE id = ?', $id), 'in_progress',
		'the redirected POST did nothing: the client repeats it at the Location');
	error_is(req(GET => '/api/v1/nope/'), 404, 'Not found', 'an unknown path with a trailing slash is still 404');
}

# ---- HEAD and OPTIONS ---------------------------------------------------------------------

{
	my $get = req(GET => '/api/v1/health');
	my $head = req(HEAD => '/api/v1/health');
	is($head->{status}, 200, 'HEAD on health: 200, as load balancers expect (RFC 9110 section 9.3.2)');
	is($head->{body}, '', 'HEAD has no body');
	is($head->{headers}{'content-length'}, $get->{headers}{'content-length'}, 'HEAD gives the Content-Length of GET');
	is($head->{headers}{'content-type'}, 'application/json', 'and its Content-Type');

	my $lp = $t->make_lp($org, barcode => 'HEAD-1');
	$head = req(HEAD => '/api/warehouse/license-plates/barcode/HEAD-1', token => $user->{token});
	is($head->{status}, 200, 'HEAD on an LP look-up: 200');
	is($head->{body}, '', 'without the body');
	is(req(HEAD => '/api/warehouse/license-plates/barcode/NO-SUCH', token => $user->{token})->{status}, 404,
		'HEAD answers the status GET would: 404 for an unknown barcode');
	is(req(HEAD => '/api/warehouse/license-plates/barcode/HEAD-1')->{status}, 401, 'and 401 without a token');
	my $r = req(HEAD => $QI, token => $user->{token});
	is($r->{status}, 405, 'HEAD on a POST-only route: 405');
	is($r->{headers}{allow}, 'POST, OPTIONS', 'Allow says POST, OPTIONS');
}
for my $c (
	[ $QI, 'POST, OPTIONS' ],
	[ '/api/v1/health', 'GET, HEAD, OPTIONS' ],
	[ '/api/v1/scan-sessions', 'POST, OPTIONS' ],
	[ '/api/v1/scan-sessions/42', 'GET, HEAD, PATCH, OPTIONS' ],
	[ '/api/v1/scan-sessions/42/scans', 'POST, OPTIONS' ],
	[ '/api/warehouse/license-plates/barcode/LP1', 'GET, HEAD, OPTIONS' ],
) {
	my ($path, $allow) = @$c;
	my $r = $t->request(OPTIONS => $path);
	is($r->{status}, 204, "OPTIONS $path: 204, no token needed");
	is($r->{headers}{allow}, $allow, "OPTIONS $path: Allow: $allow");
	is($r->{body}, '', "OPTIONS $path: no body");
	ok(!defined $r->{headers}{'content-length'} || $r->{headers}{'content-length'} eq '0',
		"OPTIONS $path: no content");
}
error_is(req(OPTIONS => '/api/v1/nope'), 404, 'Not found', 'OPTIONS on an unknown path: 404');

# ---- 405 -----------------------------------------------------------------------------

for my $m (qw(GET PUT DELETE PATCH)) {
	my $r = req($m => $QI, token => $user->{token});
	error_is($r, 405, 'Method not allowed', "$m on quick-inspection: 405");
	is($r->{headers}{allow}, 'POST, OPTIONS', "$m on quick-inspection: Allow says POST, OPTIONS");
}
{
	my $r = req(POST => '/api/v1/health', json => {});
	error_is($r, 405, 'Method not allowed', 'POST on health: 405');
	is($r->{headers}{allow}, 'GET, HEAD, OPTIONS', 'POST on health: Allow says GET, HEAD, OPTIONS');
}

# ---- 413 -----------------------------------------------------------------------------

{
	my $id = fresh_inspection();
	my $r = req(POST => $QI, token => $user->{token}, body => body_of_length($LIMIT, $id),
		headers => { 'Content-Type' => 'application/json' });
	is($r->{status}, 200, 'a body of exactly body_limit bytes is accepted') or diag($r->{body});

	$id = fresh_inspection();
	$r = req(POST => $QI, token => $user->{token}, body => body_of_length($LIMIT + 1, $id),
		headers => { 'Content-Type' => 'application/json' });
	error_is($r, 413, 'Request body too large', "one byte over the daemon's body_limit: 413 from the daemon");
	is($t->one('SELECT status FROM quality_inspections WHERE id = ?', $id), 'in_progress',
		'the oversized request changes nothing');

	$r = req(POST => $QI, body => 'x' x 5000, headers => { 'Content-Type' => 'application/json' });
	error_is($r, 413, 'Request body too large', 'an oversized body without a token: 413 comes first');

	$r = req(POST => $QI, token => $user->{token}, body => 'x' x (1024 * 1024 + 1),
		headers => { 'Content-Type' => 'application/json' });
	error_is($r, 413, 'Request body too large', "over nginx's client_max_body_size (1m): 413 from nginx, as JSON");
	like($t->nginx_error_log, qr/client intended to send too large body/, 'nginx itself refused the 1m+ body');

	$id = fresh_inspection();
	my $body = body_of_length(500, $id);
	my $chunked = sprintf("%x\r\n%s\r\n0\r\n\r\n", length $body, $body);
	$r = req(POST => $QI, token => $user->{token}, body => $chunked,
		headers => { 'Content-Type' => 'application/json', 'Transfer-Encoding' => 'chunked', 'Content-Length' => undef });
	is($r->{status}, 200, 'a chunked request body is accepted') or diag($r->{body});

	$body = 'x' x ($LIMIT * 2);
	$chunked = sprintf("%x\r\n%s\r\n0\r\n\r\n", length $body, $body);
	$r = req(POST => $QI, token => $user->{token}, body => $chunked,
		headers => { 'Content-Type' => 'application/json', 'Transfer-Encoding' => 'chunked', 'Content-Length' => undef });
	error_is($r, 413, 'Request body too large', 'a chunked body over body_limit: 413');
}

# ---- the body: Content-Type, byte-order mark, Content-Encoding ------------------------------

# The reference reads any body with request.json(): JSON sent as text/plain or with
# no Content-Type (what XMLHttpRequest.send(string) and fetch() with a string body
# send) is JSON. Forms, multipart and other types are refused.
sub quick_body { encode_json({ inspection_id => $_[0], result => 'pass', inspection_method => 'scanner' }) }
{
	for my $ct ('application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonp',
		'application/xml', 'text/html')
	{
		my $id = fresh_inspection();
		my $r = req(POST => $QI, token => $user->{token}, body => quick_body($id), headers => { 'Content-Type' => $ct });
		error_is($r, 415, 'Content-Type must be application/json', "Content-Type $ct: 415");
		is($t->one('SELECT status FROM quality_inspections WHERE id = ?', $id), 'in_progress',
			"Content-Type $ct: nothing changes");
	}
	for my $ct ('application/json; charset=utf-8', 'Application/JSON', 'text/plain;charset=UTF-8', 'text/plain',
		'', undef)
	{
		my $label = defined $ct ? ($ct eq '' ? '(empty)' : $ct) : '(none)';
		my $id = fresh_inspection();
		my $r = req(POST => $QI, token => $user->{token}, body => quick_body($id), headers => { 'Content-Type' => $ct });
		is($r->{status}, 200, "Content-Type $label: the JSON body is accepted") or diag($r->{body});
		is($t->one('SELECT status FROM quality_inspections WHERE id = ?', $id), 'completed',
			"Content-Type $label: the inspection is completed");
	}

	# A UTF-8 byte-order mark before the JSON: request.json() drops it.
	my $id = fresh_inspection();
	my $r = req(POST => $QI, token => $user->{token}, body => "\xEF\xBB\xBF" . quick_body($id),
		headers => { 'Content-Type' => 'application/json' });
	is($r->{status}, 200, 'a body starting with a UTF-8 byte-order mark is accepted') or diag($r->{body});
	is($t->one('SELECT status FROM quality_inspections WHERE id = ?', $id), 'completed', 'and applied');
	$id = fresh_inspection();
	$r = req(POST => $QI, token => $user->{token}, body => "\xEF\xBB\xBF\xEF\xBB\xBF" . quick_body($id),
		headers => { 'Content-Type' => 'application/json' });
	is($r->{status}, 400, 'two byte-order marks are not JSON (request.json() drops one)');
	is($r->{json} && $r->{json}{error}, 'Validation failed', 'a validation failure');

	# A compressed body: 415 with Accept-Encoding naming what we take.
	$id = fresh_inspection();
	my $gz = do {
		require IO::Compress::Gzip;
		my $out;
		IO::Compress::Gzip::gzip(\quick_body($id) => \$out) or die 'gzip failed';
		$out;
	};
	$r = req(POST => $QI, token => $user->{token}, body => $gz,
		headers => { 'Content-Type' => 'application/json', 'Content-Encoding' => 'gzip' });
	error_is($r, 415, 'Content-Encoding is not supported: send the body uncompressed',
		'a gzip body: 415 (RFC 9110 section 15.5.16)');
	is($r->{headers}{'accept-encoding'}, 'identity', 'with Accept-Encoding: identity');
	is($t->one('SELECT status FROM quality_inspections WHERE id = ?', $id), 'in_progress', 'nothing changes');
	for my $ce ('br', 'deflate', 'gzip, identity') {
		$r = req(POST => $QI, token => $user->{token}, body => quick_body($id),
			headers => { 'Content-Type' => 'application/json', 'Content-Encoding' => $ce });
		is($r->{status}, 415, "Content-Encoding $ce: 415");
	}
	$r = req(POST => $QI, token => $user->{token}, body => quick_body($id),
		headers => { 'Content-Type' => 'application/json', 'Content-Encoding' => 'identity' });
	is($r->{status}, 200, 'Content-Encoding identity is no coding: accepted') or diag($r->{body});
}

# ---- what nginx refuses itself -------------------------------------------------------------

# Through the shipped nginx config these never reach the daemon: nginx answers its
# own 400, which the snippet turns into the daemon's JSON shape.
{
	my $raw = "GET /api/warehouse/license-plates/barcode/LP1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
		. "Authorization: Bearer $user->{token}\r\nAuthorization: Bearer $user->{token}\r\n\r\n";
	error_is($t->raw_request($raw), 400, 'Bad request', 'two Authorization headers: 400 from nginx, as JSON');
	$raw = "GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
		. "Authorization: Bearer a\r\nAuthorization: Bearer b\r\n\r\n";
	error_is($t->raw_request($raw), 400, 'Bad request', 'two Authorization headers, even on health: 400 from nginx');
	for my $path ('/api/warehouse/license-plates/barcode/%zz', '/api/warehouse/license-plates/barcode/LP%4',
		'/api/v1/scan-sessions/%G1')
	{
		error_is(req(GET => $path, token => $user->{token}), 400, 'Bad request',
			"a malformed % escape ($path): 400 from nginx, as JSON");
	}
	unlike($t->daemon_log, qr{%zz|%G1}, 'none of them reached the daemon');
}

# ---- every answer ----------------------------------------------------------------------

{
	my (%ids, @bad_type, @bad_id);
	for (@seen) {
		my ($r, $what) = @$_;
		my $rid = $r->{headers}{'x-request-id'};
		push @bad_type, "$what ($r->{status})" unless ($r->{headers}{'content-type'} // '') =~ m{^application/json}
			|| $r->{status} == 204;
		push @bad_id, "$what ($r->{status})" unless defined $rid && $rid =~ /^[0-9A-Za-z._-]{8,64}$/;
		$ids{$rid}++ if defined $rid;
	}
	is_deeply(\@bad_type, [], 'every response is application/json');
	is_deeply(\@bad_id, [], 'every response carries exactly one X-Request-Id');
	is(scalar(keys %ids), scalar(@seen), 'every response has its own request id');
}

is($t->nginx_alerts, '', 'nginx logged no alerts');
is($t->stop_daemon, 0, 'the daemon exits cleanly on SIGTERM');
is($t->daemon_errors, '', 'the daemon reported no memory errors');

# With the daemon gone nginx answers for it, in the same JSON shape.
{
	my $r = $t->request(POST => $QI, token => $user->{token}, json => {});
	error_is($r, 502, 'Service unavailable', 'with the daemon stopped nginx answers 502 as JSON');
	like($r->{headers}{'content-type'} // '', qr{^application/json}, 'the 502 is application/json');
	ok($r->{headers}{'x-request-id'}, 'the 502 carries X-Request-Id');
}

done_testing;
