#!/usr/bin/perl
# routing.t: what any client sees before a handler runs: unknown paths, wrong
# methods, bodies over the limits (nginx's and the daemon's), a wrong
# Content-Type, and that every answer is JSON carrying an X-Request-Id.

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
error_is(req(GET => '/api/v1/health/'), 404, 'Not found', 'a trailing slash is another path: 404');
error_is(req(GET => '/api/'), 404, 'Not found', 'the API root: 404');
error_is(req(GET => '/'), 404, 'Not found', 'a path outside /api/: 404 from nginx, as JSON');
error_is(req(GET => '/index.html'), 404, 'Not found', 'a static file name: 404 as JSON');

# ---- 405 -----------------------------------------------------------------------------

for my $m (qw(GET PUT DELETE PATCH)) {
	my $r = req($m => $QI, token => $user->{token});
	error_is($r, 405, 'Method not allowed', "$m on quick-inspection: 405");
	is($r->{headers}{allow}, 'POST', "$m on quick-inspection: Allow says POST");
}
{
	my $r = req(POST => '/api/v1/health', json => {});
	error_is($r, 405, 'Method not allowed', 'POST on health: 405');
	is($r->{headers}{allow}, 'GET', 'POST on health: Allow says GET');
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

# ---- 415 -----------------------------------------------------------------------------

{
	my $id = fresh_inspection();
	my $json = encode_json({ inspection_id => $id, result => 'pass', inspection_method => 'scanner' });
	for my $ct ('text/plain', 'application/x-www-form-urlencoded', 'application/jsonp', undef) {
		my $r = req(POST => $QI, token => $user->{token}, body => $json, headers => { 'Content-Type' => $ct });
		error_is($r, 415, 'Content-Type must be application/json',
			'Content-Type ' . ($ct // '(none)') . ': 415');
	}
	is($t->one('SELECT status FROM quality_inspections WHERE id = ?', $id), 'in_progress',
		'a refused Content-Type changes nothing');
	my $r = req(POST => $QI, token => $user->{token}, body => $json,
		headers => { 'Content-Type' => 'application/json; charset=utf-8' });
	is($r->{status}, 200, 'application/json with a charset parameter is accepted') or diag($r->{body});
	$id = fresh_inspection();
	$json = encode_json({ inspection_id => $id, result => 'pass', inspection_method => 'scanner' });
	$r = req(POST => $QI, token => $user->{token}, body => $json,
		headers => { 'Content-Type' => 'Application/JSON' });
	is($r->{status}, 200, 'the media type is case-insensitive') or diag($r->{body});
}

# ---- every answer ----------------------------------------------------------------------

{
	my (%ids, @bad_type, @bad_id);
	for (@seen) {
		my ($r, $what) = @$_;
		my $rid = $r->{headers}{'x-request-id'};
		push @bad_type, "$what ($r->{status})" unless ($r->{headers}{'content-type'} // '') =~ m{^application/json};
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
