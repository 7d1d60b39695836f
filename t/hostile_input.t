#!/usr/bin/perl
# hostile_input.t: what a hostile or broken client can send, against every
# endpoint: malformed JSON and the corpus in t/corpus/json, nesting 10,000 deep,
# hostile numbers and strings and wrong types in every field, duplicate keys,
# SQL metacharacters, a 10 MiB body, Content-Length that does not match the
# body, wrong Content-Types, odd Authorization headers, and path parameters
# with %00, ../ and overlong values. Each goes through nginx as a client would
# send it, and the cases nginx would stop go straight to the daemon's FastCGI
# socket as well, to show the daemon's own defences.
#
# Every case must be answered with a 4xx JSON error ({"error": "..."}), leave
# every table exactly as it was (row counts and checksums, db_fingerprint) and
# leave the same worker processes running (none crashed). The base body of each
# endpoint is one that would succeed, so a case that slips through validation
# shows up as a change in the database.
#
# One exception, by the spec: in an offline sync batch, a payload is validated
# per action ("a bad payload fails that action only"). A well-formed batch whose
# one action has a hostile payload value is answered 200 with that action failed,
# and the only write is the action's 'failed' queue row (checked exactly).

use strict;
use warnings;

use File::Glob qw(bsd_glob);
use FindBin;
use lib "$FindBin::Bin/lib";
use Digest::SHA qw(sha256_hex);
use Encode qw(decode);
use JSON::PP;
use MIME::Base64 qw(encode_base64);
use Test::More;

use ScanQA::Test;

# Some case names hold non-ASCII characters.
binmode Test::More->builder->$_, ':encoding(UTF-8)' for qw(output failure_output todo_output);

# statement_timeout 1000: an injected pg_sleep(3) that ran would be cancelled and
# answered 503 "busy" instead of the 404 the SQL section expects, so injection is
# caught by the answer itself, with no timed assertion.
my $t = ScanQA::Test->new(conf => { workers => 2, max_requests => 0, statement_timeout => 1000 });

my $org = $t->make_org('Hostile Input Warehouse');
my $inspector = $t->make_user($org, 'qa_inspector');
my $TOKEN = $inspector->{token};

# An inspection any valid quick-inspection body below would complete.
my $open = $t->make_inspection($org, $t->make_lp($org));
# An inspection id that exists nowhere.
my $nowhere = '9b2f6c1e-4a7d-4e2b-8c3f-0d1e2f3a4b5c';

my $QI = '/api/v1/quality/scanner/quick-inspection';
my $SYNC = '/api/v1/quality/scanner/sync-offline';
my $JSON = JSON::PP->new->utf8->canonical;

sub uuid {
	my @b = map { int rand 256 } 1 .. 16;
	$b[6] = ($b[6] & 0x0f) | 0x40;
	$b[8] = ($b[8] & 0x3f) | 0x80;
	my $h = join '', map { sprintf '%02x', $_ } @b;
	return join '-', substr($h, 0, 8), substr($h, 8, 4), substr($h, 12, 4), substr($h, 16, 4), substr($h, 20);
}

# A sync batch of one action (a fresh action id each time).
sub sync_batch {
	my ($type, $payload) = @_;
	return { actions => [{ id => uuid(), type => $type, timestamp => '2025-01-23T14:30:00.000Z', payload => $payload }] };
}
my %QI_PAYLOAD = (result => 'pass', result_notes => 'checked', defects_found => 0, inspection_method => 'scanner',
	scanner_device_id => 'ZEBRA-TC52-001', scanner_location => 'Dock 4');
my %TR_PAYLOAD = (test_name => 'Seal strength', result => 'pass', measured_value => 12.5, unit => 'N',
	notes => 'within range', scanner_device_id => 'ZEBRA-TC52-001');

my $SESSIONS = '/api/v1/scan-sessions';
my $NO_SESSION = 2147483647;
my $session = do {
	my $r = $t->request(POST => $SESSIONS, token => $TOKEN, json => { location => 'Dock 4' });
	die "creating a scan session: $r->{status} $r->{body}" unless $r->{status} == 201;
	$r->{json}{id};
};
my $lp = $t->make_lp($org);
my $barcode = $t->one('SELECT barcode FROM license_plates WHERE id = ?', $lp);
# A PATCH body that would change the session every time (notes differ).
my $patch_no = 0;
sub patch_body {
	return { status => 'ACTIVE', location => 'Dock 5', notes => 'note ' . ++$patch_no, items_scanned => 1000,
		auto_commit => JSON::PP::true };
}

# ---- endpoints ---------------------------------------------------------------------
#
# name, method, path (with {param}s), params (valid values), auth (a token is
# needed), and for endpoints with a body: valid (a body that would succeed),
# unknown (a valid body whose target does not exist: the request reaches SQL and
# is refused there) and fields: every field by its dotted path, its kind (uuid,
# enum, literal, string, datetime, integer, number, boolean, object, array) and,
# for fields an offline action's payload validates, 'action'.

my @ENDPOINTS = (
	{
		name => 'health', method => 'GET', path => '/api/v1/health', auth => 0,
	},
	{
		name => 'status page', method => 'GET', path => '/scanqa/status', auth => 0,
	},
	{
		name => 'quick-inspection', method => 'POST', path => $QI, auth => 1,
		valid => sub {
			return { inspection_id => $open, result => 'pass', result_notes => 'checked',
				defects_found => 0, inspection_method => 'scanner',
				scanner_device_id => 'ZEBRA-TC52-001', scanner_location => 'Dock 4' };
		},
		unknown => sub { return { %{ $_[0]{valid}->() }, inspection_id => $nowhere } },
		fields => [
			[inspection_id => 'uuid'], [result => 'enum'], [result_notes => 'string'],
			[defects_found => 'integer'], [inspection_method => 'literal'],
			[scanner_device_id => 'string'], [scanner_location => 'string'],
		],
	},
	{
		name => 'sync-offline (quick_inspection)', method => 'POST', path => $SYNC, auth => 1,
		valid => sub { sync_batch(quick_inspection => { %QI_PAYLOAD, inspection_id => $open }) },
		unknown => sub { sync_batch(quick_inspection => { %QI_PAYLOAD, inspection_id => $nowhere }) },
		fields => [
			[actions => 'array'], ['actions.0' => 'object'], ['actions.0.id' => 'uuid'],
			['actions.0.type' => 'enum'], ['actions.0.payload' => 'object'], ['actions.0.timestamp' => 'datetime'],
			['actions.0.payload.inspection_id' => 'uuid', 'action'], ['actions.0.payload.result' => 'enum', 'action'],
			['actions.0.payload.result_notes' => 'string', 'action'],
			['actions.0.payload.defects_found' => 'integer', 'action'],
			['actions.0.payload.inspection_method' => 'literal', 'action'],
			['actions.0.payload.scanner_device_id' => 'string', 'action'],
			['actions.0.payload.scanner_location' => 'string', 'action'],
		],
	},
	{
		name => 'sync-offline (test_result)', method => 'POST', path => $SYNC, auth => 1,
		valid => sub { sync_batch(test_result => { %TR_PAYLOAD, inspection_id => $open }) },
		unknown => sub { sync_batch(test_result => { %TR_PAYLOAD, inspection_id => $nowhere }) },
		fields => [
			['actions.0.payload.inspection_id' => 'uuid', 'action'], ['actions.0.payload.test_name' => 'string', 'action'],
			['actions.0.payload.result' => 'enum', 'action'], ['actions.0.payload.measured_value' => 'number', 'action'],
			['actions.0.payload.unit' => 'string', 'action'], ['actions.0.payload.notes' => 'string', 'action'],
			['actions.0.payload.scanner_device_id' => 'string', 'action'],
		],
	},
	{
		name => 'POST scan-sessions', method => 'POST', path => $SESSIONS, auth => 1,
		valid => sub { { location => 'Dock 6', notes => 'night shift', expected_items => 40, auto_commit => JSON::PP::false } },
		# Every field is optional, so these are a valid request (201); the reference's
		# request.json() drops a leading byte-order mark, and so do we.
		accepts => { empty => 1, 'empty-object' => 1, 'byte-order-mark' => 1 },
		fields => [[location => 'string'], [notes => 'string'], [expected_items => 'integer'], [auto_commit => 'boolean']],
	},
	{
		name => 'GET scan-sessions/{id}', method => 'GET', path => "$SESSIONS/{session_id}", auth => 1,
		params => { session_id => $session },
		param_cases => { session_id => ['0', '-1', '2147483648', '99999999999999999999', '1.0', '1e2', '%2B1', '%201',
			'0x1', '%D9%A1', '1%00'] },
	},
	{
		name => 'PATCH scan-sessions/{id}', method => 'PATCH', path => "$SESSIONS/{session_id}", auth => 1,
		params => { session_id => $session }, valid => \&patch_body,
		unknown => sub { patch_body() }, unknown_path => "$SESSIONS/$NO_SESSION",
		fields => [[status => 'enum'], [location => 'string'], [notes => 'string'], [items_scanned => 'integer'],
			[auto_commit => 'boolean']],
		header_cases => [
			['If-Match that is not a tag', { 'If-Match' => 'garbage' }],
			['an unterminated If-Match tag', { 'If-Match' => '"v1' }],
			['If-Match naming 33 versions', { 'If-Match' => join(', ', map { qq("v$_") } 1 .. 33) }],
			['an If-Match of 7,000 characters', { 'If-Match' => '"' . ('v' x 7000) . '"' }],
			['If-Match "W/" alone', { 'If-Match' => 'W/' }],
			['If-Match naming a version that never was', { 'If-Match' => '"v0"' }],
			['If-Match with SQL', { 'If-Match' => q{"v1'); DROP TABLE scan_sessions; --"} }],
		],
		param_cases => { session_id => ['0', '-1', '2147483648', '1.0', '1e2', '%2B1'] },
	},
	{
		name => 'POST scan-sessions/{id}/scans', method => 'POST', path => "$SESSIONS/{session_id}/scans", auth => 1,
		params => { session_id => $session }, valid => sub { { barcode => $barcode } },
		unknown => sub { { barcode => $barcode } }, unknown_path => "$SESSIONS/$NO_SESSION/scans",
		fields => [[barcode => 'string']],
		param_cases => { session_id => ['0', '-1', '2147483648', '1.0'] },
	},
	{
		name => 'GET license-plates/barcode/{barcode}', method => 'GET', auth => 1,
		path => '/api/warehouse/license-plates/barcode/{barcode}', params => { barcode => $barcode },
		# A barcode is matched exactly: LIKE wildcards, quotes and SQL find nothing.
		param_cases => { barcode => ['%25', '_', 'LPT%25', 'LPT_', '%27', '%01', '%7F', '%C2%85', 'LPT1%00'] },
	},
	{
		name => 'GET inspections/by-lp/{lpId}', method => 'GET', auth => 1,
		path => '/api/quality/inspections/by-lp/{lpId}', params => { lpId => $lp },
		param_cases => { lpId => [$nowhere, "{$lp}", uc($lp) . 'x', substr($lp, 0, 35), "$lp%20", '%27%20OR%201%3D1--'] },
	},
);
my @BODY_ENDPOINTS = grep { $_->{valid} } @ENDPOINTS;
my @AUTH_ENDPOINTS = grep { $_->{auth} } @ENDPOINTS;

# The path of an endpoint with its parameters filled in (valid ones unless given).
sub path_of {
	my ($ep, %p) = @_;
	my $path = $ep->{path};
	$path =~ s/\{(\w+)\}/exists $p{$1} ? $p{$1} : $ep->{params}{$1}/ge;
	return $path;
}

# ---- the judge ---------------------------------------------------------------------

my $fingerprint = $t->db_fingerprint;
my @workers = $t->worker_pids;
my $master = $t->master_pid;
ok(@workers == 2, 'two workers are running before the first case');
my $cases = 0;

# Checks one answer: a 4xx (or exactly $o{status}) JSON error, every table as it
# was, the same workers alive. After a failure the new state becomes the
# reference, so each case is judged on its own.
sub refused {
	my ($what, $r, %o) = @_;
	my @problems;
	my $st = $r->{status} // 0;
	if (defined $o{status}) {
		push @problems, "status $st, expected $o{status}" if $st != $o{status};
	} elsif ($st < 400 || $st > 499) {
		push @problems, "status $st is not a 4xx";
	}
	push @problems, 'Content-Type is not application/json'
		unless ($r->{headers}{'content-type'} // '') =~ m{^application/json};
	push @problems, 'the body is not {"error": "..."}'
		unless ref $r->{json} eq 'HASH' && defined $r->{json}{error} && !ref $r->{json}{error};
	push @problems, "the error is not \"$o{error}\""
		if defined $o{error} && ($r->{json}{error} // '') ne $o{error};
	my $now = $t->db_fingerprint;
	my @changed = grep { ($now->{$_} // '') ne ($fingerprint->{$_} // '') } sort keys %{ { %$now, %$fingerprint } };
	push @problems, "tables changed: @changed" if @changed;
	my @w = $t->worker_pids;
	push @problems, "workers were @workers, now @w" if "@w" ne "@workers";
	push @problems, 'the master is gone' unless kill 0, $master;
	$cases++;
	ok(!@problems, "$what: $st JSON error, nothing written, no worker lost")
		or diag(join "\n", @problems, 'body: ' . substr($r->{body} // '', 0, 300));
	if (@changed || "@w" ne "@workers") {
		$fingerprint = $now;
		@workers = @w;
	}
	return $r;
}

# Checks the answer to a sync batch whose one action has a bad payload: 200,
# {"success":0,"failed":1}, the error as given, and nothing written but that
# action's 'failed' queue row.
sub action_failed {
	my ($what, $r, $body, %o) = @_;
	my @problems;
	push @problems, "status $r->{status}, expected 200" if $r->{status} != 200;
	my $j = ref $r->{json} eq 'HASH' ? $r->{json} : {};
	my $err = ref $j->{errors} eq 'ARRAY' ? ($j->{errors}[0]{error} // '') : '';
	push @problems, 'the body is not {"success":0,"failed":1,"errors":[one]}'
		unless ($j->{success} // -1) == 0 && ($j->{failed} // -1) == 1 && ref $j->{errors} eq 'ARRAY' && @{ $j->{errors} } == 1;
	push @problems, "the action's error \"$err\" is not like $o{error}" if $err !~ $o{error};
	my $now = $t->db_fingerprint;
	my @changed = grep { ($now->{$_} // '') ne ($fingerprint->{$_} // '') } sort keys %{ { %$now, %$fingerprint } };
	push @problems, "tables changed: @changed (only scanner_offline_queue may)" if "@changed" ne 'scanner_offline_queue';
	my $id = eval { $JSON->decode($body)->{actions}[0]{id} } // '';
	# The action's own text, so that numbers and strings are compared as sent
	# (PostgreSQL compares the two as jsonb).
	my ($action) = $body =~ /^\{"actions":\[(.*)\]\}$/s;
	my $row = $t->row(q{SELECT sync_status, error_message, action_payload = ?::jsonb AS verbatim
		FROM scanner_offline_queue WHERE action_payload->>'id' = ?}, decode('UTF-8', $action // 'null'), $id);
	push @problems, "no 'failed' queue row saying \"$err\" for action $id"
		unless $row && $row->{sync_status} eq 'failed' && $row->{error_message} eq $err;
	push @problems, 'the queue row does not hold the action as sent' if $row && !$row->{verbatim};
	my @w = $t->worker_pids;
	push @problems, "workers were @workers, now @w" if "@w" ne "@workers";
	$cases++;
	ok(!@problems, "$what: 200, the action failed, only its queue row written, no worker lost")
		or diag(join "\n", @problems, 'body: ' . substr($r->{body} // '', 0, 300));
	$fingerprint = $now;
	@workers = @w;
	return $r;
}

# Judges a case that makes field $f invalid: refused for the batch or body,
# failed for an offline action's payload.
sub judge {
	my ($f, $what, $r, $body, %o) = @_;
	return refused($what, $r, %o) unless ($f->[2] // '') eq 'action';
	return action_failed($what, $r, $body, error => $o{action_error} // qr/^Validation failed: payload\./);
}

# True when the request did what a valid one does (a sync counts its action a success).
sub accepted {
	my ($r) = @_;
	return $r->{status} >= 200 && $r->{status} < 300 && !(ref $r->{json} eq 'HASH' && ($r->{json}{failed} // 0) > 0);
}

# Sends one request to an endpoint through nginx: raw body bytes (Content-Type
# application/json unless headers say otherwise) and the inspector's token.
sub send_to {
	my ($ep, %o) = @_;
	my %h = ('Content-Type' => 'application/json', %{ $o{headers} // {} });
	return $t->request($o{method} // $ep->{method}, $o{path} // path_of($ep),
		(exists $o{token} ? (defined $o{token} ? (token => $o{token}) : ()) : ($ep->{auth} ? (token => $TOKEN) : ())),
		(defined $o{body} ? (body => $o{body}) : ()), headers => \%h);
}

# Encodes a body with one field replaced by raw JSON text (which may be invalid
# JSON, e.g. NaN or invalid UTF-8 bytes).
my $MARK = "\x{1}HOSTILE\x{1}";
sub with_raw {
	my ($body, $path, $raw) = @_;
	my $copy = $JSON->decode($JSON->encode($body));
	set_path($copy, $path, $MARK);
	my $text = $JSON->encode($copy);
	my $quoted = $JSON->encode([$MARK]);
	$quoted = substr $quoted, 1, -1;
	my $n = ($text =~ s/\Q$quoted\E/$raw/);
	die "marker not found for $path" unless $n;
	return $text;
}

sub set_path {
	my ($data, $path, $value) = @_;
	my @k = split /\./, $path;
	my $last = pop @k;
	for my $k (@k) {
		$data = ref $data eq 'ARRAY' ? $data->[$k] : $data->{$k};
	}
	if (ref $data eq 'ARRAY') { $data->[$last] = $value } else { $data->{$last} = $value }
}

# Deletes a key; false when the path ends in an array element.
sub delete_path {
	my ($data, $path) = @_;
	my @k = split /\./, $path;
	my $last = pop @k;
	$data = ref $data eq 'ARRAY' ? $data->[$_] : $data->{$_} for @k;
	return 0 unless ref $data eq 'HASH';
	delete $data->{$last};
	return 1;
}

# ---- 1. the corpus files -----------------------------------------------------------

my @corpus = bsd_glob("$FindBin::Bin/corpus/json/*.json");    # sorted; the clone path may hold spaces
ok(@corpus >= 50, scalar(@corpus) . ' corpus files in t/corpus/json');
for my $file (@corpus) {
	my ($name) = $file =~ m{([^/]+)\.json$};
	open my $fh, '<:raw', $file or die "$file: $!";
	my $bytes = do { local $/; <$fh> };
	for my $ep (@BODY_ENDPOINTS) {
		my $r = send_to($ep, body => $bytes);
		if ($ep->{accepts}{$name}) {
			ok(accepted($r), "$ep->{name}, corpus $name: a valid request for this endpoint") or diag("$r->{status} $r->{body}");
			$fingerprint = $t->db_fingerprint;
			next;
		}
		refused("$ep->{name}, corpus $name", $r, status => 400);
	}
}

# ---- 2. generated structures ---------------------------------------------------------

for my $ep (@BODY_ENDPOINTS) {
	my $n = $ep->{name};
	refused("$n, arrays nested 10,000 deep", send_to($ep, body => ('[' x 10_000) . (']' x 10_000)), status => 400);
	refused("$n, objects nested 10,000 deep",
		send_to($ep, body => ('{"a":' x 10_000) . '1' . ('}' x 10_000)), status => 400);
	refused("$n, 10,000 unclosed brackets", send_to($ep, body => '[' x 10_000), status => 400);
	refused("$n, 100,000 unclosed brackets", send_to($ep, body => '{"a":' . ('[' x 100_000)), status => 400);
	for my $f (@{ $ep->{fields} }) {
		my $deep = ('[' x 10_000) . (']' x 10_000);
		refused("$n, $f->[0] nested 10,000 deep", send_to($ep, body => with_raw($ep->{valid}->(), $f->[0], $deep)),
			status => 400);
	}
	my $wide = '{' . join(',', map { qq("k$_":$_) } 1 .. 50_000) . '}';
	refused("$n, an object of 50,000 keys", send_to($ep, body => $wide), status => 400);
	refused("$n, an array of 100,000 numbers", send_to($ep, body => '[' . join(',', (1) x 100_000) . ']'),
		status => 400);
	my $big = $ep->{valid}->();
	refused("$n, valid fields inside an array", send_to($ep, body => $JSON->encode([$big])), status => 400);
}

# ---- 3. every field ------------------------------------------------------------------

# JSON values of each type, to put where another type belongs.
my %SAMPLE = (
	null => 'null', true => 'true', false => 'false', zero => '0', negative => '-1',
	fraction => '1.5', empty_string => '""', string => '"x"', number_string => '"1"',
	empty_array => '[]', array => '["pass"]', empty_object => '{}', object => '{"a":"pass"}',
);
my %TYPE_OF = (
	null => 'null', true => 'boolean', false => 'boolean', zero => 'number', negative => 'number',
	fraction => 'number', empty_string => 'string', string => 'string', number_string => 'string',
	empty_array => 'array', array => 'array', empty_object => 'object', object => 'object',
);
my %KIND_TYPE = (uuid => 'string', enum => 'string', literal => 'string', string => 'string', datetime => 'string',
	integer => 'number', number => 'number', boolean => 'boolean', object => 'object', array => 'array');
# Strings Zod's datetime() refuses.
my @HOSTILE_DATETIMES = ('2025-13-01T00:00:00Z', '2025-02-29T00:00:00Z', '2025-01-01T24:00:00Z',
	'2025-01-01T00:00:60Z', '2025-01-01T00:00:00+01:00', '2025-01-01 00:00:00Z', '2025-01-01T00:00:00',
	'20250101T000000Z', '+002025-01-01T00:00:00Z', '2025-01-01T00:00:00.Z', '1e400', '');

# Number tokens no JSON.parse + Zod client would send, or out of range.
my @HOSTILE_NUMBERS = (
	['NaN', 'NaN'], ['Infinity', 'Infinity'], ['-Infinity', '-Infinity'], ['1e400', '1e400'],
	['-1e400', '-1e400'], ['+1', '+1'], ['01', '01'], ['.5', '.5'], ['1.', '1.'], ['0x10', '0x10'],
);
# Integers that are well-formed JSON but out of every integer field's range.
my @HOSTILE_INTEGERS = (
	['-1', '-1'], ['-2147483649', '-2147483649'], ['2147483648', '2147483648'],
	['2^53 + 1', '9007199254740993'], ['2^63', '9223372036854775808'], ['2^64', '18446744073709551616'],
	['-2^63 - 1', '-9223372036854775809'], ['a 40-digit integer', '1' . ('0' x 39)],
	['a 40-digit negative integer', '-1' . ('0' x 39)], ['1e308', '1e308'], ['-1e308', '-1e308'],
	['1.0000000001', '1.0000000001'], ['4.9e-324', '4.9e-324'],
);
# String contents (raw bytes between the quotes) that are not valid JSON strings.
my @HOSTILE_STRINGS = (
	['invalid UTF-8 0xFF', "\xFF"], ['a lone continuation byte', "\x80"], ['a truncated sequence', "ab\xC3"],
	['an overlong "/" (C0 AF)', "\xC0\xAF"], ['an overlong "/" (E0 80 AF)', "\xE0\x80\xAF"],
	['an overlong NUL (C0 80)', "\xC0\x80"], ['a UTF-8 encoded surrogate', "\xED\xA0\x80"],
	['a code point above U+10FFFF', "\xF4\x90\x80\x80"], ['a lone high surrogate', '\ud800'],
	['a lone low surrogate', '\udc00'], ['a reversed surrogate pair', '\udc00\ud800'],
	['\u0000', 'a\u0000b'], ['a raw NUL byte', "a\x00b"], ['a raw control character', "a\x1Fb"],
	['a bad escape', '\x41'], ['a short \u escape', '\u12'],
);

for my $ep (@BODY_ENDPOINTS) {
	my $n = $ep->{name};
	for my $f (@{ $ep->{fields} }) {
		my ($path, $kind) = @$f;
		# One case: the valid body with $path's value replaced by raw JSON text.
		my $raw_case = sub {
			my ($what, $raw, %o) = @_;
			my $body = with_raw($ep->{valid}->(), $path, $raw);
			judge($f, "$n, $what", send_to($ep, body => $body), $body, %o);
		};
		for my $s (sort keys %SAMPLE) {
			next if $TYPE_OF{$s} eq $KIND_TYPE{$kind};
			$raw_case->("$path is $s ($SAMPLE{$s})", $SAMPLE{$s}, status => 400);
		}
		# Not JSON at all: the whole body is refused, whatever the field.
		for my $h (@HOSTILE_NUMBERS) {
			my $body = with_raw($ep->{valid}->(), $path, $h->[1]);
			refused("$n, $path is $h->[0]", send_to($ep, body => $body), status => 400);
		}
		if ($kind eq 'integer') {
			$raw_case->("$path is $_->[0]", $_->[1], status => 400) for @HOSTILE_INTEGERS;
		}
		if ($kind eq 'datetime') {
			$raw_case->("$path is \"$_\"", $JSON->encode([$_]) =~ s/^\[|\]$//gr, status => 400) for @HOSTILE_DATETIMES;
		}
		if ($KIND_TYPE{$kind} eq 'string') {
			for my $h (@HOSTILE_STRINGS) {
				my $body = with_raw($ep->{valid}->(), $path, qq("$h->[1]"));
				refused("$n, $path holds $h->[0]", send_to($ep, body => $body), status => 400);
			}
			$raw_case->("$path is 100,000 characters long", '"' . ('x' x 100_000) . '"', status => 400);
			# 1,001 emoji are 2,002 UTF-16 code units, as JavaScript's .length counts.
			$raw_case->("$path is 1,001 emoji", '"' . ("\xF0\x9F\x98\x80" x 1001) . '"', status => 400);
		}
		# Duplicate keys: the last one counts, as with JSON.parse.
		if ($path !~ /\./) {
			my $text = with_raw($ep->{valid}->(), $path, $SAMPLE{ $KIND_TYPE{$kind} eq 'string' ? 'zero' : 'string' });
			my $valid_value = $JSON->encode([$ep->{valid}->()->{$path}]);
			$valid_value = substr $valid_value, 1, -1;
			(my $dup = $text) =~ s/^\{/{"$path":$valid_value,/;
			refused("$n, $path given twice, the last one invalid", send_to($ep, body => $dup), status => 400);
		}
		# A required field missing must not get through either.
		my $body = $ep->{valid}->();
		next unless delete_path($body, $path);
		my $text = $JSON->encode($body);
		my $r = send_to($ep, body => $text);
		if (!accepted($r)) {
			judge($f, "$n, without $path", $r, $text, status => 400);
		} else {
			pass("$n, without $path: optional, accepted");
			# The request completed the inspection: open another.
			$open = $t->make_inspection($org, $t->make_lp($org));
			$fingerprint = $t->db_fingerprint;
		}
	}
}

# ---- 4. SQL metacharacters ---------------------------------------------------------

# Sent as data in every string field. With an unknown target the request reaches
# SQL and is refused there (404); nothing is interpreted, so nothing changes (an
# executed pg_sleep would hit the 1 s statement_timeout and answer 503 instead).
my @SQL = (
	q{'}, q{''}, q{' OR '1'='1}, q{' OR 1=1 --}, q{'; DROP TABLE quality_inspections; --},
	q{"; DROP TABLE "users"; --}, q{'); DELETE FROM quality_audit_log; --}, q{\'; SELECT pg_sleep(3); --},
	q{' || pg_sleep(3) || '}, q{$$; SELECT 1; $$}, q{$1}, q{%s%s%s%n%x}, q{\\}, q{\\'},
	q{E'\\x27'}, q{/* */ OR /* */ 1=1}, q{`id`}, q{;}, q{--}, q{%}, q{_}, q{::text},
	q{' UNION SELECT token_sha256 FROM api_tokens --}, q{\x27\x3B}, qq{\x{2019} OR \x{2019}1\x{2019}=\x{2019}1},
	q{'::uuid}, q{00000000-0000-0000-0000-000000000000' OR 'x'='x},
);
for my $ep (grep { $_->{unknown} } @BODY_ENDPOINTS) {
	my $n = $ep->{name};
	for my $f (grep { $KIND_TYPE{ $_->[1] } eq 'string' } @{ $ep->{fields} }) {
		for my $sql (@SQL) {
			my $body = $ep->{unknown}->($ep);
			set_path($body, $f->[0], $sql);
			my $text = $JSON->encode($body);
			my $r = send_to($ep, body => $text, path => $ep->{unknown_path});
			# In a sync payload a valid string reaches SQL: the action fails there.
			judge($f, "$n, $f->[0] = $sql", $r, $text,
				action_error => qr/^(?:Inspection not found|Validation failed: payload\.)/);
		}
	}
}

# ---- 5. body size and framing ----------------------------------------------------------

{
	my $ep = $BODY_ENDPOINTS[0];
	my $n = $ep->{name};
	my $MiB = 1024 * 1024;
	# A valid body padded to 10 MiB with an unknown key.
	my $valid = $JSON->encode($ep->{valid}->());
	my $ten = substr($valid, 0, -1) . ',"pad":"' . ('x' x (10 * $MiB - length($valid) - 9)) . '"}';
	refused("$n, a 10 MiB body", send_to($ep, body => $ten), status => 413);
	my $chunked = '';
	for (my $off = 0; $off < length $ten; $off += 65536) {
		my $part = substr $ten, $off, 65536;
		$chunked .= sprintf("%x\r\n%s\r\n", length $part, $part);
	}
	$chunked .= "0\r\n\r\n";
	refused("$n, a 10 MiB chunked body", send_to($ep, body => $chunked,
		headers => { 'Transfer-Encoding' => 'chunked', 'Content-Length' => undef }), status => 413);
	refused("$n, a 10 MiB body straight to the daemon",
		$t->fcgi_request(method => 'POST', uri => path_of($ep), body => $ten,
			headers => ['Content-Type' => 'application/json', Authorization => "Bearer $TOKEN"]), status => 413);

	# Content-Length that does not match the body.
	my $head = "POST " . path_of($ep) . " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
		. "Authorization: Bearer $TOKEN\r\nContent-Type: application/json\r\n";
	refused("$n, Content-Length shorter than the body",
		$t->raw_request($head . "Content-Length: " . (length($valid) - 1) . "\r\n\r\n$valid"), status => 400);
	for my $cl ('-1', 'abc', '1e3', '99999999999999999999999', '0x10', ' ', length($valid) . ', ' . length($valid)) {
		refused("$n, Content-Length: $cl", $t->raw_request($head . "Content-Length: $cl\r\n\r\n$valid"),
			status => 400);
	}
	refused("$n, two Content-Length headers", $t->raw_request($head . "Content-Length: " . length($valid)
		. "\r\nContent-Length: " . length($valid) . "\r\n\r\n$valid"), status => 400);
	refused("$n, Content-Length and Transfer-Encoding: chunked", $t->raw_request($head . "Content-Length: "
		. length($valid) . "\r\nTransfer-Encoding: chunked\r\n\r\n" . sprintf("%x\r\n%s\r\n0\r\n\r\n", length $valid, $valid)),
		status => 400);
	refused("$n, a malformed chunked body",
		$t->raw_request($head . "Transfer-Encoding: chunked\r\n\r\nzz\r\n$valid\r\n0\r\n\r\n"), status => 400);
	{
		# More announced than sent, then the client stops sending: nginx buffers the
		# whole body before it passes a request on, so the daemon never sees this one.
		my $s = $t->raw_request_start($head . "Content-Length: " . (length($valid) + 100) . "\r\n\r\n$valid");
		shutdown $s, 1;
		my $r = $t->request_finish($s, timeout => 10);
		is($r->{status}, 0, "$n, Content-Length longer than the body: nginx closes without passing it on");
		my $now = $t->db_fingerprint;
		is_deeply($now, $fingerprint, "$n, Content-Length longer than the body: nothing written");
		is("@{[ $t->worker_pids ]}", "@workers", "$n, Content-Length longer than the body: no worker lost");
	}
	# Straight to the daemon (nginx always sends the length it read): the FastCGI
	# specification has a responder refuse a body that does not match CONTENT_LENGTH.
	my @fh = ('Content-Type' => 'application/json', Authorization => "Bearer $TOKEN");
	for my $c (['shorter', length($valid) - 1], ['longer', length($valid) + 1], ['absent', undef],
		['empty', ''], ['negative', '-1'], ['not a number', 'abc'], ['with a sign', '+' . length($valid)],
		['with a space', ' ' . length($valid)], ['beyond 64 bits', '99999999999999999999999'])
	{
		refused("$n, straight to the daemon, CONTENT_LENGTH $c->[0]",
			$t->fcgi_request(method => 'POST', uri => path_of($ep), headers => \@fh, body => $valid,
				content_length => $c->[1]),
			status => 400, error => 'Content-Length does not match the request body');
	}
}

# ---- 6. Content-Type -------------------------------------------------------------------

for my $ep (@BODY_ENDPOINTS) {
	my $body = $JSON->encode($ep->{valid}->());
	# No Content-Type and text/plain are JSON, as the reference reads them (issue 11).
	for my $ct ('text/json', 'application/x-www-form-urlencoded', 'multipart/form-data',
		'application/jsonp', 'application/json-patch+json', 'application/xml', 'json', '*/*',
		'application/json5', "application/json\x{1}")
	{
		my $label = defined $ct ? ($ct eq '' ? '(empty)' : $ct) : '(none)';
		$label =~ s/\x{1}/\\x01/;
		refused("$ep->{name}, Content-Type $label", send_to($ep, body => $body, headers => { 'Content-Type' => $ct }));
	}
}

# A body in a content coding: 415 naming the one we take (RFC 9110 section 15.5.16).
for my $ep (@BODY_ENDPOINTS) {
	my $body = $JSON->encode($ep->{valid}->());
	for my $ce ('gzip', 'br', 'gzip, identity') {
		my $r = send_to($ep, body => $body, headers => { 'Content-Encoding' => $ce });
		refused("$ep->{name}, Content-Encoding $ce", $r, status => 415);
		is($r->{headers}{'accept-encoding'}, 'identity', "$ep->{name}, Content-Encoding $ce: Accept-Encoding: identity");
	}
}

# Headers an endpoint reads (If-Match), with a body that would succeed otherwise.
for my $ep (grep { $_->{header_cases} } @ENDPOINTS) {
	for my $h (@{ $ep->{header_cases} }) {
		my $body = $ep->{valid} ? $JSON->encode($ep->{valid}->()) : undef;
		refused("$ep->{name}, $h->[0]", send_to($ep, body => $body, headers => $h->[1]));
	}
}

# ---- 7. Authorization ------------------------------------------------------------------

{
	my $basic = encode_base64('inspector:password', '');
	my @AUTH = (
		['no Authorization header', undef],
		['"Bearer" with no token', 'Bearer'],
		['"Bearer " and spaces', 'Bearer    '],
		['another scheme (Basic)', "Basic $basic"],
		['another scheme with the token (Token)', "Token $TOKEN"],
		['the token without a scheme', $TOKEN],
		['"Bearer:" with the token', "Bearer: $TOKEN"],
		['"BearerX" with the token', "BearerX $TOKEN"],
		['the token and more', "Bearer $TOKEN extra"],
		['the token twice in one header', "Bearer $TOKEN, Bearer $TOKEN"],
		['the token with padding added', "Bearer $TOKEN="],
		['the token with a character changed', 'Bearer ' . substr($TOKEN, 0, -1) . (substr($TOKEN, -1) eq 'a' ? 'b' : 'a')],
		['the token\'s own SHA-256 (what is stored)', 'Bearer ' . sha256_hex($TOKEN)],
		['a 513-character token', 'Bearer ' . ('a' x 513)],
		['a 7,000-character token', 'Bearer ' . ('a' x 7000)],
		['a 1 MB token', 'Bearer ' . ('a' x (1024 * 1024))],
		['a token with a non-ASCII character', "Bearer ${TOKEN}\xC3\xA9"],
		['a token with DEL', "Bearer ${TOKEN}\x7F"],
		['a token of "=" only', 'Bearer ===='],
		['SQL in the token', q{Bearer ' OR '1'='1}],
		['SQL in the token without spaces', q{Bearer '||'1'='1'--}],
	);
	for my $ep (@AUTH_ENDPOINTS) {
		my $body = $ep->{valid} ? $JSON->encode($ep->{valid}->()) : undef;
		for my $a (@AUTH) {
			refused("$ep->{name}, $a->[0]",
				send_to($ep, body => $body, token => undef, headers => { Authorization => $a->[1] }));
		}
		# Two Authorization headers: nginx refuses them itself (400)...
		my $raw = "$ep->{method} " . path_of($ep) . " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
			. "Authorization: Bearer $TOKEN\r\nAuthorization: Bearer $TOKEN\r\n"
			. (defined $body ? "Content-Type: application/json\r\nContent-Length: " . length($body) . "\r\n\r\n$body" : "\r\n");
		refused("$ep->{name}, two Authorization headers", $t->raw_request($raw), status => 400);
		# ...and the daemon, given both, trusts neither.
		for my $pair (['valid', $TOKEN, 'valid', $TOKEN], ['valid', $TOKEN, 'garbage', 'garbage'],
			['garbage', 'garbage', 'valid', $TOKEN])
		{
			refused("$ep->{name}, straight to the daemon, two Authorization headers ($pair->[0], then $pair->[2])",
				$t->fcgi_request(method => $ep->{method}, uri => path_of($ep), body => $body,
					headers => [Authorization => "Bearer $pair->[1]", Authorization => "Bearer $pair->[3]",
						'Content-Type' => 'application/json']),
				status => 401);
		}
		refused("$ep->{name}, straight to the daemon, a 1 MB token",
			$t->fcgi_request(method => $ep->{method}, uri => path_of($ep), body => $body,
				headers => [Authorization => 'Bearer ' . ('a' x (1024 * 1024)), 'Content-Type' => 'application/json']),
			status => 401);
	}
}

# ---- 8. paths ------------------------------------------------------------------------

for my $ep (@ENDPOINTS) {
	my $p = path_of($ep);
	my $body = $ep->{valid} ? $JSON->encode($ep->{valid}->()) : undef;
	my %via_nginx = (
		'%00 appended' => "$p%00",
		'%00 as a segment' => "$p/%00",
		'../ back into the API' => "$p/../" . (split m{/}, $p)[-1],
		'an encoded ../' => "$p/..%2F..%2F",
		'../ above the root' => '/api/../../../etc/passwd',
		'an encoded ../ above the root' => '/api/v1/%2e%2e/%2e%2e/%2e%2e/etc/passwd',
		'a 300-byte segment' => "$p/" . ('a' x 300),
		'a 10,000-byte path' => "$p/" . ('a' x 10_000),
		'an overlong "/" (%C0%AF)' => "$p%C0%AF..%C0%AF",
		'invalid UTF-8 (%FF)' => "$p%FF",
		'SQL' => "$p/'%20OR%20'1'='1",
	);
	for my $k (sort keys %via_nginx) {
		refused("$ep->{name}, path with $k", send_to($ep, path => $via_nginx{$k}, body => $body));
	}
	my %direct = (
		'%00 appended' => "$p%00",
		'an encoded NUL in a segment' => "$p/a%00b",
		'../' => "$p/../../../etc/passwd",
		'a 10,000-byte path' => "$p/" . ('a' x 10_000),
	);
	for my $k (sort keys %direct) {
		refused("$ep->{name}, straight to the daemon, path with $k",
			$t->fcgi_request(method => $ep->{method}, uri => $direct{$k}, body => $body,
				headers => [Authorization => "Bearer $TOKEN", 'Content-Type' => 'application/json']));
	}
	# Path parameters: each one in turn gets every hostile value.
	my @params = $ep->{path} =~ /\{(\w+)\}/g;
	for my $param (@params) {
		my %bad = (
			'%00' => '%00', 'a%00b' => 'a%00b', 'an encoded /' => 'a%2Fb', '../' => '..%2F..%2Fetc%2Fpasswd',
			'..' => '%2E%2E', '257 bytes' => 'a' x 257, '10,000 bytes' => 'a' x 10_000,
			'an overlong "/"' => '%C0%AF', 'invalid UTF-8' => '%FF%FE', 'a bad escape' => '%zz',
			'a truncated escape' => 'a%4', 'SQL' => "'%20OR%20'1'%3D'1", 'NUL-like' => '%5Cu0000',
		);
		$bad{"\"$_\""} = $_ for @{ $ep->{param_cases}{$param} // [] };
		for my $k (sort keys %bad) {
			my $path = path_of($ep, $param => $bad{$k});
			refused("$ep->{name}, {$param} is $k", send_to($ep, path => $path, body => $body));
			refused("$ep->{name}, straight to the daemon, {$param} is $k",
				$t->fcgi_request(method => $ep->{method}, uri => $path, body => $body,
					headers => [Authorization => "Bearer $TOKEN", 'Content-Type' => 'application/json']));
		}
	}
}

# ---- 9. SQL metacharacters are stored as data ------------------------------------------

# Valid requests whose strings are full of SQL: each is stored exactly as sent,
# and only the rows the request is about change.
{
	my @strings = grep { length $_ <= 100 } @SQL;
	my $i = 0;
	for my $sql (@strings) {
		my $id = $t->make_inspection($org, $t->make_lp($org));
		my $other = "$sql #" . $i++;
		my $before = $t->db_fingerprint;
		my $r = $t->request(POST => $QI, token => $TOKEN, json => {
			inspection_id => $id, result => 'fail', result_notes => $sql, inspection_method => 'scanner',
			scanner_device_id => $sql, scanner_location => $other });
		my $row = $t->row('SELECT result_notes, scanner_device_id, scanner_location FROM quality_inspections WHERE id = ?', $id);
		my $after = $t->db_fingerprint;
		my @changed = grep { $before->{$_} ne $after->{$_} } sort keys %$after;
		ok($r->{status} == 200 && $row->{result_notes} eq $sql && $row->{scanner_device_id} eq $sql
			&& $row->{scanner_location} eq $other
			&& "@changed" eq 'license_plates quality_audit_log quality_inspections',
			"quick-inspection stores $sql as sent and changes only that inspection, its LP and the audit log")
			or diag("status $r->{status}, body $r->{body}, changed: @changed");
	}
	# Scan sessions: a new session's location and notes, a PATCH of them, and a scanned
	# barcode that matches no LP (answered 404, and recorded as a failed scan).
	for my $sql (@strings) {
		my $before = $t->db_fingerprint;
		my $r = $t->request(POST => $SESSIONS, token => $TOKEN, json => { location => $sql, notes => $sql });
		my $row = $r->{status} == 201 ? $t->row('SELECT location, notes FROM scan_sessions WHERE id = ?', $r->{json}{id}) : {};
		my $after = $t->db_fingerprint;
		my @changed = grep { $before->{$_} ne $after->{$_} } sort keys %$after;
		ok($r->{status} == 201 && ($row->{location} // '') eq $sql && ($row->{notes} // '') eq $sql
			&& "@changed" eq 'quality_audit_log scan_sessions',
			"POST scan-sessions stores $sql as sent and changes only the new session and the audit log")
			or diag("status $r->{status}, body $r->{body}, changed: @changed");
		my $id = $r->{json}{id};

		$before = $after;
		$r = $t->request(PATCH => "$SESSIONS/$id", token => $TOKEN, json => { notes => "$sql!", location => "$sql!" });
		$row = $t->row('SELECT location, notes FROM scan_sessions WHERE id = ?', $id);
		$after = $t->db_fingerprint;
		@changed = grep { $before->{$_} ne $after->{$_} } sort keys %$after;
		ok($r->{status} == 200 && $row->{location} eq "$sql!" && $row->{notes} eq "$sql!"
			&& "@changed" eq 'quality_audit_log scan_sessions',
			"PATCH scan-sessions stores $sql! as sent and changes only that session and the audit log")
			or diag("status $r->{status}, body $r->{body}, changed: @changed");

		$before = $after;
		$r = $t->request(POST => "$SESSIONS/$id/scans", token => $TOKEN, json => { barcode => $sql });
		my $scan = $t->one('SELECT barcode FROM scan_session_scans WHERE session_id = ? ORDER BY id DESC LIMIT 1', $id);
		$after = $t->db_fingerprint;
		@changed = grep { $before->{$_} ne $after->{$_} } sort keys %$after;
		ok($r->{status} == 404 && ($r->{json}{error} // '') eq 'License plate not found' && ($scan // '') eq $sql
			&& "@changed" eq 'scan_session_scans scan_sessions',
			"scanning $sql finds no LP, and records the failed scan as sent")
			or diag("status $r->{status}, body $r->{body}, changed: @changed");
	}
	$fingerprint = $t->db_fingerprint;
	@workers = $t->worker_pids;
}

# ---- the end -------------------------------------------------------------------------

is("@{[ $t->worker_pids ]}", "@workers", "after $cases cases the same workers are running");
my @errors = grep { /^ERROR / } split /^/, $t->daemon_log;
is(scalar @errors, 0, 'the daemon logged no ERROR line for any hostile request')
	or diag(join '', @errors[0 .. ($#errors < 10 ? $#errors : 10)]);
is($t->stop_daemon, 0, 'the daemon exits cleanly on SIGTERM');
is($t->daemon_errors, '', 'the daemon reported no memory errors');
is($t->nginx_alerts, '', 'nginx logged no alerts');

done_testing;
