#!/usr/bin/perl
# scan_sessions.t: POST /api/v1/scan-sessions, GET and PATCH
# /api/v1/scan-sessions/{session_id} (the spec's TASK-112 "Scan Session Update"),
# and POST /api/v1/scan-sessions/{session_id}/scans. Every transition allowed
# and refused, with the database read back afterwards; partial updates and their
# audit entries; If-Match fresh, stale and absent; who may change a session;
# counters and completion percentage; scans; a pause racing a completion; and
# organization isolation on every endpoint.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP;
use POSIX ();
use Test::More;
use Time::HiRes qw(sleep time);

use ScanQA::Test;

my $BASE   = '/api/v1/scan-sessions';
my $ISO_MS = qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

my $t = ScanQA::Test->new(conf => { workers => 4 });

my $org       = $t->make_org('Acme Warehouse');
my $other_org = $t->make_org('Rival Warehouse');
my $inspector = $t->make_user($org, 'qa_inspector');
my $colleague = $t->make_user($org, 'qa_inspector');
my $manager   = $t->make_user($org, 'qa_manager');
my $admin     = $t->make_user($org, 'admin');
my $owner     = $t->make_user($org, 'owner');
my $viewer    = $t->make_user($org, 'viewer');
my $operator  = $t->make_user($org, 'operator');
my $rival_mgr = $t->make_user($other_org, 'qa_manager');

# ---- helpers ------------------------------------------------------------------------------

sub patch {
	my ($user, $id, $body, %headers) = @_;
	return $t->request(PATCH => "$BASE/$id", token => $user->{token},
		(ref $body ? (json => $body) : (body => $body, headers => { 'Content-Type' => 'application/json', %headers })),
		(ref $body && %headers ? (headers => \%headers) : ()));
}

sub get_session {
	my ($user, $id) = @_;
	return $t->request(GET => "$BASE/$id", token => $user->{token});
}

sub scan {
	my ($user, $id, $barcode) = @_;
	return $t->request(POST => "$BASE/$id/scans", token => $user->{token}, json => { barcode => $barcode });
}

sub random_token {
	my @c = ('A' .. 'Z', 'a' .. 'z', 0 .. 9, '-', '_');
	return join '', map { $c[rand @c] } 1 .. 43;
}

# A session written straight into the database, in any state.
sub make_session {
	my ($user, %cols) = @_;
	my $status = $cols{status} // 'ACTIVE';
	my %row = (
		org_id => $user->{org_id}, user_id => $user->{id}, session_token => random_token(),
		status => $status, %cols,
	);
	my @k = sort keys %row;
	my $ended = ($status eq 'COMPLETED' || $status eq 'CANCELLED') && !exists $row{ended_at}
		? ', ended_at' : '';
	my $sql = 'INSERT INTO scan_sessions (' . join(', ', @k) . "$ended) VALUES ("
		. join(', ', ('?') x @k) . ($ended ? ', now()' : '') . ') RETURNING id';
	return $t->one($sql, @row{@k});
}

sub session_row { $t->row('SELECT *, ended_at IS NOT NULL AS ended FROM scan_sessions WHERE id = ?', $_[0]) }

sub audit_rows {
	my ($id, $action) = @_;
	my $rows = $t->rows(q{SELECT org_id, entity_type, entity_id, action, user_id,
		old_value::text AS old_value, new_value::text AS new_value, metadata::text AS metadata
		FROM quality_audit_log WHERE entity_type = 'scan_session' AND entity_id = ?
		AND action = ? ORDER BY id}, "$id", $action // 'session_update');
	for my $r (@$rows) {
		$r->{$_} = decode_json($r->{$_}) for grep { defined $r->{$_} } qw(old_value new_value metadata);
	}
	return $rows;
}

sub error_is {
	my ($r, $status, $error, $what) = @_;
	subtest $what => sub {
		is($r->{status}, $status, "status $status");
		like($r->{headers}{'content-type'} // '', qr{^application/json}, 'JSON content type');
		is($r->{json} && $r->{json}{error}, $error, qq{error is "$error"}) or diag("body: $r->{body}");
	};
}

# The session's row is exactly as before: same version, status, fields, no new audit entry.
sub unchanged {
	my ($id, $before, $what) = @_;
	subtest $what => sub {
		my $now = session_row($id);
		for my $k (qw(status location notes items_scanned auto_commit successful_scans failed_scans
			version ended_at updated_at last_activity)) {
			is($now->{$k}, $before->{$k}, "$k unchanged");
		}
		is(scalar @{ audit_rows($id) }, $before->{audit} // 0, 'no new audit entry');
	};
}

sub snapshot {
	my ($id) = @_;
	my $row = session_row($id);
	$row->{audit} = scalar @{ audit_rows($id) };
	return $row;
}

sub validation_fails {
	my ($r, $field, $message, $what) = @_;
	subtest $what => sub {
		is($r->{status}, 400, 'status 400');
		is($r->{json} && $r->{json}{error}, 'Validation failed', 'error is "Validation failed"')
			or diag("body: $r->{body}");
		my @hits = grep { ($_->{field} // "\0") eq $field } @{ ($r->{json} // {})->{details} // [] };
		ok(@hits, qq{details name the field "$field"}) or diag("body: $r->{body}");
		if (defined $message && @hits) {
			if (ref $message) { like($hits[0]{message}, $message, 'message says what is wrong') }
			else              { is($hits[0]{message}, $message, 'message says what is wrong') }
		}
	};
}

# The response has the spec's shape plus location, notes, auto_commit, expected_items.
sub shape_ok {
	my ($j, $what) = @_;
	subtest $what => sub {
		is_deeply([sort keys %{ $j // {} }],
			[qw(auto_commit expected_items id location notes progress_summary session_duration
				session_token status updated_at)],
			'top-level fields are the spec\'s plus location, notes, auto_commit, expected_items');
		is_deeply([sort keys %{ $j->{progress_summary} // {} }],
			[qw(completion_percentage failed_scans items_scanned successful_scans)], 'progress_summary fields');
		is_deeply([sort keys %{ $j->{session_duration} // {} }],
			[qw(duration_minutes last_activity started_at)], 'session_duration fields');
		like($j->{id} // '', qr/^\d+$/, 'id is an integer');
		like($j->{session_token} // '', qr/^[A-Za-z0-9_-]{43}$/, 'session_token is 43 base64url characters');
		like($j->{session_duration}{started_at} // '', $ISO_MS, 'started_at is ISO 8601 UTC with milliseconds');
		like($j->{session_duration}{last_activity} // '', $ISO_MS, 'last_activity is ISO 8601 UTC with milliseconds');
		like($j->{updated_at} // '', $ISO_MS, 'updated_at is ISO 8601 UTC with milliseconds');
		like($j->{session_duration}{duration_minutes} // '', qr/^\d+$/, 'duration_minutes is a whole number');
		ok(JSON::PP::is_bool($j->{auto_commit}), 'auto_commit is a boolean');
	};
}

# ---- create ------------------------------------------------------------------------------

my $created;
{
	my $r = $t->request(POST => $BASE, token => $inspector->{token},
		json => { location => 'Dock 4', notes => 'inbound ASN 7', expected_items => 3, auto_commit => JSON::PP::true });
	is($r->{status}, 201, 'an inspector creates a session') or diag($r->{body});
	my $j = $r->{json} // {};
	shape_ok($j, 'a new session has the PATCH response shape');
	$created = $j->{id};
	is($j->{status}, 'ACTIVE', 'a new session is ACTIVE');
	is($j->{location}, 'Dock 4', 'location as given');
	is($j->{notes}, 'inbound ASN 7', 'notes as given');
	is($j->{expected_items}, 3, 'expected_items as given');
	ok($j->{auto_commit}, 'auto_commit as given');
	is_deeply($j->{progress_summary},
		{ items_scanned => 0, successful_scans => 0, failed_scans => 0, completion_percentage => 0 },
		'nothing scanned yet: 0 of 3 is 0 percent');
	is($j->{session_duration}{duration_minutes}, 0, 'a new session has lasted 0 minutes');
	is($r->{headers}{location}, "$BASE/$created", 'Location names the new session');
	is($r->{headers}{etag}, '"v1"', 'ETag is "v1"');

	my $row = session_row($created);
	is($row->{org_id}, $org, "stored in the caller's organization");
	is($row->{user_id}, $inspector->{id}, 'owned by the caller');
	is($row->{session_token}, $j->{session_token}, 'the token shown is the token stored');
	is($row->{status}, 'ACTIVE', 'stored as ACTIVE');
	is($row->{version}, 1, 'stored at version 1');
	ok(!$row->{ended}, 'no end time');
	my $audit = audit_rows($created, 'session_create');
	is(scalar @$audit, 1, 'creating writes one audit entry');
	is($audit->[0]{user_id}, $inspector->{id}, 'the audit entry names the creator');
	is($audit->[0]{new_value}{status}, 'ACTIVE', 'the audit entry holds the new session');

	my $r2 = $t->request(POST => $BASE, token => $viewer->{token});
	is($r2->{status}, 201, 'any user may create a session, with no body at all') or diag($r2->{body});
	is($r2->{json}{expected_items}, undef, 'expected_items is null when not given');
	is($r2->{json}{progress_summary}{completion_percentage}, undef, 'the percentage is null when nothing is expected');
	ok(!$r2->{json}{auto_commit}, 'auto_commit defaults to false');
	isnt($r2->{json}{session_token}, $j->{session_token}, 'each session has its own token');

	my $r3 = $t->request(POST => $BASE, token => $operator->{token}, json => {});
	is($r3->{status}, 201, 'an empty object creates a session too');

	my $count = $t->one('SELECT count(*) FROM scan_sessions');
	validation_fails($t->request(POST => $BASE, token => $inspector->{token}, json => { expected_items => 0 }),
		'expected_items', 'Number must be greater than or equal to 1', 'expected_items 0 is refused');
	validation_fails($t->request(POST => $BASE, token => $inspector->{token}, json => { status => 'PAUSED' }),
		'', "Unrecognized key(s) in object: 'status'", 'a new session cannot choose its status');
	validation_fails($t->request(POST => $BASE, token => $inspector->{token}, json => { location => 'x' x 256 }),
		'location', 'String must contain at most 255 character(s)', 'a location of 256 characters is refused');
	validation_fails($t->request(POST => $BASE, token => $inspector->{token}, body => '{"notes":',
		headers => { 'Content-Type' => 'application/json' }), '', qr/^Invalid JSON/, 'broken JSON is refused');
	is($t->one('SELECT count(*) FROM scan_sessions'), $count, 'refused creations store nothing');

	error_is($t->request(POST => $BASE), 401, 'Unauthorized', 'creating needs a token');
}

# ---- read ----------------------------------------------------------------------------------

{
	my $r = get_session($inspector, $created);
	is($r->{status}, 200, 'the owner reads the session') or diag($r->{body});
	shape_ok($r->{json}, 'GET answers the PATCH response shape');
	is($r->{json}{id}, $created, 'the session asked for');
	is($r->{headers}{etag}, '"v1"', 'GET sends the ETag');
	is(get_session($viewer, $created)->{status}, 200, 'any user of the organization may read it');
	my $enc = join '', map { sprintf '%%%02X', ord } split //, $created;
	is(get_session($inspector, $enc)->{json}{id}, $created, 'a percent-encoded id is decoded');

	validation_fails(get_session($inspector, 'abc'), 'session_id', undef, 'a non-integer id is refused');
	validation_fails(get_session($inspector, '1.5'), 'session_id', undef, 'a fractional id is refused');
	validation_fails(get_session($inspector, '1e2'), 'session_id', undef, 'an exponent id is refused');
	error_is(get_session($inspector, 0), 404, 'Scan session not found', 'session 0 does not exist');
	error_is(get_session($inspector, 99999999), 404, 'Scan session not found', 'an unknown session is not found');
	error_is(get_session($inspector, '99999999999999999999'), 404, 'Scan session not found',
		'an id beyond any integer column is not found');
	error_is(get_session($rival_mgr, $created), 404, 'Scan session not found',
		"another organization's session is not found");
	error_is($t->request(GET => "$BASE/$created"), 401, 'Unauthorized', 'reading needs a token');
}

# ---- every transition ---------------------------------------------------------------------

my @STATES = qw(ACTIVE PAUSED COMPLETED CANCELLED);
my %FINAL = (COMPLETED => 1, CANCELLED => 1);

for my $from (@STATES) {
	for my $to (@STATES) {
		my $id = make_session($inspector, status => $from, items_scanned => 2, expected_items => 4);
		my $before = snapshot($id);
		my $r = patch($inspector, $id, { status => $to });
		my $row = session_row($id);
		my $audit = audit_rows($id);
		if ($from eq $to) {
			subtest "$from -> $to is a no-op" => sub {
				is($r->{status}, 200, 'status 200') or diag($r->{body});
				is($r->{json}{status}, $from, 'the session keeps its status');
				is($r->{headers}{etag}, "\"v$before->{version}\"", 'the ETag does not move');
			};
			unchanged($id, $before, "$from -> $to changes nothing in the database");
		} elsif ($FINAL{$from}) {
			error_is($r, 409, 'Session is ' . lc $from, "$from -> $to is refused: $from is final");
			is($r->{json}{status}, $from, "$from -> $to: the 409 names the current status");
			unchanged($id, $before, "$from -> $to leaves the database as it was");
		} else {
			subtest "$from -> $to is allowed" => sub {
				is($r->{status}, 200, 'status 200') or diag($r->{body});
				shape_ok($r->{json}, 'the spec\'s response shape');
				is($r->{json}{status}, $to, 'the response shows the new status');
				is($row->{status}, $to, 'the database holds the new status');
				is($row->{version}, $before->{version} + 1, 'the version moves on by one');
				is($r->{headers}{etag}, "\"v$row->{version}\"", 'the ETag is the new version');
				is(!!$row->{ended}, !!$FINAL{$to}, $FINAL{$to} ? 'the session has ended' : 'the session has not ended');
				is(scalar @$audit, 1, 'one audit entry');
				is_deeply($audit->[0] && $audit->[0]{old_value}, { status => $from }, 'the audit entry holds the old status only');
				is_deeply($audit->[0] && $audit->[0]{new_value}, { status => $to }, 'and the new status only');
				is($audit->[0] && $audit->[0]{entity_type}, 'scan_session', 'entity_type scan_session');
				is($audit->[0] && $audit->[0]{user_id}, $inspector->{id}, 'the audit entry names who changed it');
				is($audit->[0] && $audit->[0]{org_id}, $org, "the audit entry is in the session's organization");
				my $pct = $to eq 'COMPLETED' ? 100 : 50;
				is($r->{json}{progress_summary}{completion_percentage}, $pct,
					$to eq 'COMPLETED' ? 'a completed session is 100 percent' : '2 of 4 is 50 percent');
			};
		}
	}
}

# A final session refuses any change of its other fields too, but not a repetition.
for my $final (qw(COMPLETED CANCELLED)) {
	my $id = make_session($inspector, status => $final, items_scanned => 5, notes => 'done');
	my $before = snapshot($id);
	error_is(patch($inspector, $id, { notes => 'later' }), 409, 'Session is ' . lc $final,
		"notes of a $final session cannot change");
	error_is(patch($inspector, $id, { items_scanned => 6 }), 409, 'Session is ' . lc $final,
		"items_scanned of a $final session cannot change");
	error_is(patch($manager, $id, { auto_commit => JSON::PP::true }), 409, 'Session is ' . lc $final,
		"not even a manager changes a $final session");
	my $same = patch($inspector, $id, { status => $final, notes => 'done', items_scanned => 5 });
	is($same->{status}, 200, "repeating a $final session's own values is a no-op (a safe retry)");
	unchanged($id, $before, "the refused and repeated updates left the $final session alone");
}

# ---- partial updates --------------------------------------------------------------------

{
	my $id = make_session($inspector, location => 'Dock 1', notes => 'start', expected_items => 10);
	my $r = patch($inspector, $id, { location => 'Dock 2', notes => 'moved', items_scanned => 4,
		auto_commit => JSON::PP::true });
	is($r->{status}, 200, 'location, notes, items_scanned and auto_commit change together') or diag($r->{body});
	my $j = $r->{json};
	is($j->{location}, 'Dock 2', 'new location in the response');
	is($j->{notes}, 'moved', 'new notes in the response');
	is($j->{progress_summary}{items_scanned}, 4, 'new items_scanned in the response');
	ok($j->{auto_commit}, 'new auto_commit in the response');
	is($j->{status}, 'ACTIVE', 'the status is untouched');
	my $row = session_row($id);
	is_deeply([@$row{qw(location notes items_scanned auto_commit status version)}],
		['Dock 2', 'moved', 4, 1, 'ACTIVE', 2], 'the database holds every new value, one version on');
	my $audit = audit_rows($id);
	is_deeply($audit->[0]{old_value}, { location => 'Dock 1', notes => 'start', items_scanned => 0, auto_commit => JSON::PP::false },
		'the audit entry holds the old value of each changed field');
	is_deeply($audit->[0]{new_value}, { location => 'Dock 2', notes => 'moved', items_scanned => 4, auto_commit => JSON::PP::true },
		'and each new value');
	is($audit->[0]{metadata}{version}, 2, "the audit entry records the session's new version");

	my $r2 = patch($inspector, $id, { location => 'Dock 2', notes => 'final answer' });
	is($r2->{status}, 200, 'an update that repeats one field and changes another') or diag($r2->{body});
	$audit = audit_rows($id);
	is_deeply([$audit->[1]{old_value}, $audit->[1]{new_value}], [{ notes => 'moved' }, { notes => 'final answer' }],
		'only the field that changed is audited');

	my $before = snapshot($id);
	my $r3 = patch($inspector, $id, { items_scanned => 3 });
	error_is($r3, 409, 'items_scanned cannot go below the current count', 'items_scanned may not drop');
	is($r3->{json}{current_items_scanned}, 4, 'the 409 tells the current count');
	unchanged($id, $before, 'a dropping count changes nothing');
	my $r4 = patch($inspector, $id, { items_scanned => 4 });
	is($r4->{status}, 200, 'the same count again is accepted');
	unchanged($id, $before, 'and is a no-op');
	error_is(patch($inspector, $id, { status => 'PAUSED', items_scanned => 1 }), 409,
		'items_scanned cannot go below the current count', 'a drop refuses the whole update, status included');
	unchanged($id, $before, 'no part of a refused update is applied');
}

# ---- invalid updates ---------------------------------------------------------------------

{
	my $id = make_session($inspector, notes => 'n');
	my $before = snapshot($id);
	validation_fails(patch($inspector, $id, {}), '', qr/^At least one of status, location, notes, items_scanned or auto_commit/,
		'an empty update is refused');
	validation_fails(patch($inspector, $id, { status => 'DONE' }), 'status',
		"Expected 'ACTIVE' | 'PAUSED' | 'COMPLETED' | 'CANCELLED', received 'DONE'", 'an unknown status is refused');
	validation_fails(patch($inspector, $id, { status => 'paused' }), 'status', undef, 'a lower-case status is refused');
	validation_fails(patch($inspector, $id, { items_scanned => -1 }), 'items_scanned',
		'Number must be greater than or equal to 0', 'a negative count is refused');
	validation_fails(patch($inspector, $id, { items_scanned => 1.5 }), 'items_scanned',
		'Expected integer, received float', 'a fractional count is refused');
	validation_fails(patch($inspector, $id, { items_scanned => '7' }), 'items_scanned',
		'Expected number, received string', 'a count as a string is refused');
	validation_fails(patch($inspector, $id, { items_scanned => 2147483648 }), 'items_scanned',
		'Number must be less than or equal to 2147483647', 'a count beyond 32 bits is refused');
	validation_fails(patch($inspector, $id, { auto_commit => 'true' }), 'auto_commit',
		'Expected boolean, received string', 'auto_commit as a string is refused');
	validation_fails(patch($inspector, $id, { notes => undef }), 'notes',
		'Expected string, received null', 'null notes are refused');
	validation_fails(patch($inspector, $id, { notes => 'x' x 2001 }), 'notes',
		'String must contain at most 2000 character(s)', 'notes of 2001 characters are refused');
	validation_fails(patch($inspector, $id, { expected_items => 9, notes => 'y' }), '',
		"Unrecognized key(s) in object: 'expected_items'", 'a field PATCH cannot change is refused, not ignored');
	validation_fails(patch($inspector, $id, [ { status => 'PAUSED' } ]), '', 'Expected object, received array',
		'an array body is refused');
	validation_fails(patch($inspector, $id, '{"status": "PAUSED",}'), '', qr/^Invalid JSON/, 'broken JSON is refused');
	validation_fails(patch($inspector, $id, ''), '', qr/^Invalid JSON/, 'a missing body is refused');
	validation_fails(patch($inspector, 'abc', { status => 'PAUSED' }), 'session_id', undef, 'a non-integer id is refused');
	error_is($t->request(PATCH => "$BASE/$id", token => $inspector->{token}, body => '{"status":"PAUSED"}',
		headers => { 'Content-Type' => 'application/x-www-form-urlencoded' }), 415, 'Content-Type must be application/json',
		'a body declared as a form is refused');
	unchanged($id, $before, 'no invalid update touched the session');
}

# ---- who may change a session ---------------------------------------------------------

{
	my $id = make_session($inspector);
	my $before = snapshot($id);
	for my $u ([$colleague, 'another inspector'], [$viewer, 'a viewer'], [$operator, 'an operator']) {
		error_is(patch($u->[0], $id, { notes => 'mine now' }), 403,
			"Only the session's owner or a QA manager may change it", "$u->[1] may not change someone else's session");
	}
	error_is(scan($colleague, $id, 'LP-NONE'), 403, "Only the session's owner or a QA manager may change it",
		"another inspector may not scan into someone else's session");
	unchanged($id, $before, 'refused callers changed nothing');
	error_is(patch($rival_mgr, $id, { notes => 'x' }), 404, 'Scan session not found',
		"another organization's manager does not even see it");
	unchanged($id, $before, "another organization's manager changed nothing");

	my $n = 0;
	for my $u ([$inspector, 'its owner'], [$manager, 'a qa_manager'], [$admin, 'an admin'], [$owner, 'an owner']) {
		my $r = patch($u->[0], $id, { notes => "by $u->[1]" });
		is($r->{status}, 200, "$u->[1] may change the session") or diag($r->{body});
		is(session_row($id)->{notes}, "by $u->[1]", "$u->[1]'s change is stored");
		is(audit_rows($id)->[$n++]{user_id}, $u->[0]{id}, "the audit entry names $u->[1]");
	}
	my $own = make_session($viewer);
	is(patch($viewer, $own, { status => 'PAUSED' })->{status}, 200, 'a viewer may change a session of its own');
}

# ---- If-Match ---------------------------------------------------------------------------

{
	my $id = make_session($inspector);
	my $g = get_session($inspector, $id);
	my $etag = $g->{headers}{etag};
	is($etag, '"v1"', 'GET gives the ETag of version 1');

	my $r = patch($inspector, $id, { status => 'PAUSED' }, 'If-Match' => $etag);
	is($r->{status}, 200, 'a PATCH with a fresh If-Match succeeds') or diag($r->{body});
	is($r->{headers}{etag}, '"v2"', 'and returns the next ETag');
	is(session_row($id)->{status}, 'PAUSED', 'the fresh update is stored');

	my $before = snapshot($id);
	my $stale = patch($inspector, $id, { status => 'ACTIVE' }, 'If-Match' => $etag);
	error_is($stale, 412, 'Session was modified by another request', 'a PATCH with a stale If-Match gets 412');
	is($stale->{headers}{etag}, '"v2"', 'the 412 carries the current ETag');
	unchanged($id, $before, 'a stale If-Match changes nothing');
	error_is(patch($inspector, $id, { status => 'PAUSED' }, 'If-Match' => $etag), 412,
		'Session was modified by another request', 'a stale If-Match fails even for a no-op');

	is(patch($inspector, $id, { notes => 'a' }, 'If-Match' => '"v1", "v2"')->{status}, 200,
		'a list of ETags that includes the current one matches');
	is(patch($inspector, $id, { notes => 'b' }, 'If-Match' => 'W/"v3"')->{status}, 200,
		'a weakened ETag (as a compressing proxy sends it) matches its version');
	is(patch($inspector, $id, { notes => 'c' }, 'If-Match' => '*')->{status}, 200, 'If-Match: * matches any version');
	is(patch($inspector, $id, { notes => 'd' })->{status}, 200, 'without If-Match the update is unconditional');
	is(session_row($id)->{version}, 6, 'each of them was one version');

	$before = snapshot($id);
	error_is(patch($inspector, $id, { notes => 'e' }, 'If-Match' => 'v6'), 400, 'Invalid If-Match header',
		'an unquoted If-Match is refused as malformed');
	error_is(patch($inspector, $id, { notes => 'e' }, 'If-Match' => '"xyz"'), 412,
		'Session was modified by another request', 'an ETag that was never ours does not match');
	unchanged($id, $before, 'malformed and foreign If-Match headers change nothing');
	error_is(patch($inspector, 99999999, { notes => 'e' }, 'If-Match' => '"v1"'), 404, 'Scan session not found',
		'an unknown session is 404 before If-Match is judged');
}

# ---- counters and percentage ----------------------------------------------------------

{
	my $id = make_session($inspector, expected_items => 3);
	my @steps = ([1, 33.33], [2, 66.67], [3, 100], [4, 100]);
	for my $s (@steps) {
		my $r = patch($inspector, $id, { items_scanned => $s->[0] });
		is($r->{json}{progress_summary}{completion_percentage}, $s->[1],
			"$s->[0] of 3 items is $s->[1] percent");
	}
	like(patch($inspector, $id, { items_scanned => 5 })->{body}, qr/"completion_percentage":100[,}]/,
		'the percentage is a JSON number, without trailing zeros');
	my $r = patch($inspector, $id, { status => 'CANCELLED' });
	is($r->{json}{progress_summary}{completion_percentage}, 100, 'a cancelled session keeps its computed percentage');

	my $eighth = make_session($inspector, expected_items => 8, items_scanned => 1);
	like(get_session($inspector, $eighth)->{body}, qr/"completion_percentage":12\.5[,}]/, '1 of 8 is 12.5');
	my $cancel = make_session($inspector, expected_items => 8, items_scanned => 2);
	is(patch($inspector, $cancel, { status => 'CANCELLED' })->{json}{progress_summary}{completion_percentage}, 25,
		'a cancelled session reports what it reached');
	my $unknown = make_session($inspector, items_scanned => 7);
	is(get_session($inspector, $unknown)->{json}{progress_summary}{completion_percentage}, undef,
		'without expected_items the percentage is null');
	is(patch($inspector, $unknown, { status => 'COMPLETED' })->{json}{progress_summary}{completion_percentage}, 100,
		'once COMPLETED it is 100 even without expected_items');

	my $long = make_session($inspector);
	$t->dbh->do(q{UPDATE scan_sessions SET started_at = now() - interval '90 minutes 30 seconds' WHERE id = ?}, undef, $long);
	is(get_session($inspector, $long)->{json}{session_duration}{duration_minutes}, 90,
		'an open session started 90.5 minutes ago has lasted 90 whole minutes');
	my $done = make_session($inspector, status => 'COMPLETED');
	$t->dbh->do(q{UPDATE scan_sessions SET started_at = ended_at - interval '45 minutes 59 seconds' WHERE id = ?}, undef, $done);
	sleep 0.01;
	is(get_session($inspector, $done)->{json}{session_duration}{duration_minutes}, 45,
		'an ended session counts to its end, not to now');
}

# ---- scans ------------------------------------------------------------------------------

{
	my $lp = $t->make_lp($org, barcode => 'LP-SCAN-1', product_id => 'prod-7', batch_number => 'B-1', quantity => 12.5);
	my $done_ins = $t->make_inspection($org, $lp, status => 'completed', result => 'pass', completed_at => '2025-01-01T00:00:00Z');
	my $ins = $t->make_inspection($org, $lp, status => 'pending');
	my $bare = $t->make_lp($org, barcode => 'LP-SCAN-2');
	my $foreign = $t->make_lp($other_org, barcode => 'LP-RIVAL');
	my $id = make_session($inspector, expected_items => 4);

	my $r = scan($inspector, $id, 'LP-SCAN-1');
	is($r->{status}, 201, 'scanning a known barcode records a successful scan') or diag($r->{body});
	my $j = $r->{json} // {};
	is($j->{scan}{barcode}, 'LP-SCAN-1', 'the scan echoes its barcode');
	ok($j->{scan}{success}, 'the scan is successful');
	like($j->{scan}{scanned_at} // '', $ISO_MS, 'scanned_at is ISO 8601 with milliseconds');
	is_deeply($j->{lp}, { id => $lp, barcode => 'LP-SCAN-1', product_id => 'prod-7', batch_number => 'B-1',
		quantity => 12.5, qa_status => 'pending' }, 'the scan returns the LP');
	is($j->{inspection}{id}, $ins, 'and its pending inspection, not the completed one');
	is($j->{inspection}{lp_id}, $lp, "the inspection names the LP");
	ok($j->{has_pending_inspection}, 'has_pending_inspection is true');
	is_deeply($j->{session}{progress_summary},
		{ items_scanned => 1, successful_scans => 1, failed_scans => 0, completion_percentage => 25 },
		'the session counts one successful scan: 1 of 4 is 25 percent');
	is($r->{headers}{etag}, '"v2"', 'the scan answer carries the session\'s new ETag (a scan is a change)');

	my $r2 = scan($inspector, $id, 'LP-SCAN-2');
	is($r2->{status}, 201, 'an LP without pending inspection scans fine');
	is($r2->{json}{inspection}, undef, 'its inspection is null');
	ok(!$r2->{json}{has_pending_inspection}, 'has_pending_inspection is false');

	my $r3 = scan($inspector, $id, 'NO-SUCH-LP');
	error_is($r3, 404, 'License plate not found', 'an unknown barcode is not found');
	ok($r3->{json}{scan}{id} && !$r3->{json}{scan}{success}, 'but the failed scan is recorded');
	is($r3->{json}{session}{progress_summary}{failed_scans}, 1, 'and counted as failed');
	my $r4 = scan($inspector, $id, 'LP-RIVAL');
	error_is($r4, 404, 'License plate not found', "another organization's barcode is not found");

	my $row = session_row($id);
	is_deeply([@$row{qw(successful_scans failed_scans items_scanned version)}], [2, 2, 4, 5],
		'the database counts 2 successful and 2 failed scans, 4 items, 4 versions on');
	is($r4->{headers}{etag}, "\"v$row->{version}\"", 'a failed scan carries the ETag too: the version it counted');
	my $scans = $t->rows('SELECT barcode, lp_id, success, user_id, org_id FROM scan_session_scans WHERE session_id = ? ORDER BY id', $id);
	is_deeply([map { [$_->{barcode}, $_->{lp_id}, $_->{success} ? 1 : 0] } @$scans],
		[['LP-SCAN-1', $lp, 1], ['LP-SCAN-2', $bare, 1], ['NO-SUCH-LP', undef, 0], ['LP-RIVAL', undef, 0]],
		"every scan is stored, failed ones without an LP, the rival's LP never linked");
	ok(!(grep { $_->{org_id} ne $org || $_->{user_id} ne $inspector->{id} } @$scans), "scans belong to the session's organization and scanner");

	is(patch($inspector, $id, { items_scanned => 10 })->{status}, 200, 'the device may report more items than scans');
	scan($inspector, $id, 'LP-SCAN-1');
	is(session_row($id)->{items_scanned}, 10, 'a scan never lowers items_scanned');
	error_is(patch($inspector, $id, { items_scanned => 4 }), 409, 'items_scanned cannot go below the current count',
		'nor may a PATCH go below it');

	is(scan($manager, $id, 'LP-SCAN-2')->{status}, 201, 'a manager may scan into the session');

	validation_fails(scan($inspector, $id, ''), 'barcode', 'String must contain at least 1 character(s)', 'an empty barcode is refused');
	validation_fails(scan($inspector, $id, "LP\x{1}1"), 'barcode', 'Barcode must not contain control characters',
		'a barcode with a control character is refused');
	validation_fails($t->request(POST => "$BASE/$id/scans", token => $inspector->{token}, json => { code => 'x' }),
		'barcode', 'Required', 'a scan without a barcode is refused');

	for my $state (qw(PAUSED COMPLETED CANCELLED)) {
		my $s = make_session($inspector, status => $state);
		my $before = snapshot($s);
		error_is(scan($inspector, $s, 'LP-SCAN-1'), 409, 'Session is ' . lc $state, "a $state session takes no scans");
		unchanged($s, $before, "the $state session's counters are untouched");
		is($t->one('SELECT count(*) FROM scan_session_scans WHERE session_id = ?', $s), 0,
			"no scan is recorded in the $state session");
	}
	error_is(scan($inspector, 99999999, 'LP-SCAN-1'), 404, 'Scan session not found', 'scanning into an unknown session');
}

# ---- what a scan engine types (issue 11) ------------------------------------------------

{
	# Wedge suffixes, surrounding spaces and an AIM symbology identifier are not part
	# of the barcode; a GS1-128 group separator (FNC1, 0x1D) is.
	my $lp = $t->make_lp($org, barcode => 'LP-WEDGE-1');
	my $gs1 = $t->make_lp($org, barcode => "0109501101020917\x{1d}10LOT7");
	my $id = make_session($inspector);
	my @sent = ("LP-WEDGE-1\r", "LP-WEDGE-1\r\n", "LP-WEDGE-1\t", "  LP-WEDGE-1 \n", ']C1LP-WEDGE-1',
		"]e00109501101020917\x{1d}10LOT7\r", "0109501101020917\x{1d}10LOT9");
	my @want = ([$lp, 201], [$lp, 201], [$lp, 201], [$lp, 201], [$lp, 201], [$gs1, 201], [undef, 404]);
	for my $i (0 .. $#sent) {
		(my $shown = $sent[$i]) =~ s/([\x00-\x1f])/sprintf '\\x%02x', ord $1/ge;
		my $r = scan($inspector, $id, $sent[$i]);
		is($r->{status}, $want[$i][1], "a scan of \"$shown\" answers $want[$i][1]") or diag($r->{body});
		is($r->{json} && $r->{json}{lp} && $r->{json}{lp}{id}, $want[$i][0], "\"$shown\": " .
			($want[$i][0] ? 'the LP of the bare barcode' : 'no LP'));
	}
	my $scans = $t->rows('SELECT barcode, lp_id, success FROM scan_session_scans WHERE session_id = ? ORDER BY id', $id);
	is_deeply([map { [$_->{barcode}, $_->{lp_id}, $_->{success} ? 1 : 0] } @$scans],
		[ ([ 'LP-WEDGE-1', $lp, 1 ]) x 5, [ "0109501101020917\x{1d}10LOT7", $gs1, 1 ],
		  [ "0109501101020917\x{1d}10LOT9", undef, 0 ] ],
		'each scan is stored as the bare barcode; the unknown GS1 barcode is recorded as a failed scan');
	my $before = snapshot($id);
	for my $bad ("LP\x{1b}1", "LP\r1", "\r\n", ']C1') {
		(my $shown = $bad) =~ s/([\x00-\x1f])/sprintf '\\x%02x', ord $1/ge;
		is(scan($inspector, $id, $bad)->{status}, 400, "a scan of \"$shown\" is refused");
	}
	unchanged($id, $before, 'refused scans are not recorded');
	validation_fails(scan($inspector, 'x1', 'LP-SCAN-1'), 'session_id', undef, 'scanning with a non-integer session id');
}

# ---- organization isolation -----------------------------------------------------------

{
	my $rival_user = $t->make_user($other_org, 'qa_inspector');
	my $rival_lp = $t->make_lp($other_org, barcode => 'LP-ISO-1');
	my $theirs = make_session($rival_user, notes => 'theirs');
	my $before = snapshot($theirs);
	for my $u ([$inspector, 'an inspector'], [$owner, 'an owner']) {
		error_is(get_session($u->[0], $theirs), 404, 'Scan session not found', "$u->[1] cannot read another organization's session");
		error_is(patch($u->[0], $theirs, { status => 'CANCELLED' }), 404, 'Scan session not found',
			"$u->[1] cannot change another organization's session");
		error_is(scan($u->[0], $theirs, 'LP-ISO-1'), 404, 'Scan session not found',
			"$u->[1] cannot scan into another organization's session");
	}
	unchanged($theirs, $before, "the other organization's session is untouched");
	is($t->one('SELECT count(*) FROM scan_session_scans WHERE session_id = ?', $theirs), 0, 'and has no scans');

	# Row level security holds even for a direct query as the role of the
	# daemon's functions.
	my $app = $t->api_dbh;
	$app->begin_work;
	$app->do(q{SELECT set_config('scanqa.org_id', ?, true)}, undef, $org);
	my $seen = $app->selectcol_arrayref('SELECT id FROM scan_sessions WHERE id = ?', undef, $theirs);
	my $scans = $app->selectcol_arrayref('SELECT count(*) FROM scan_session_scans WHERE org_id = ?', undef, $other_org);
	$app->rollback;
	is(scalar @$seen, 0, "as scanqa_api with one organization set, another organization's session is invisible");
	is($scans->[0], 0, "and so are its scans");
	$app->begin_work;
	my $none = $app->selectcol_arrayref('SELECT count(*) FROM scan_sessions');
	$app->rollback;
	is($none->[0], 0, 'with no organization set, no session is visible');
}

# ---- pause races complete ---------------------------------------------------------------
#
# Two clients (forked processes) send "pause" and "complete" for the same ACTIVE
# session at once. Whatever the order, the session must end COMPLETED, and the
# responses, the version and the audit trail must tell the same story: either
# pause then complete (both 200, two audit entries) or complete then a refused
# pause (200 and 409, one audit entry). Half of the rounds hold the row lock until
# both requests wait on it, so they really meet inside PostgreSQL.

sub racer {
	my ($id, $body, $file, $go, $go_w) = @_;
	my $pid = fork // die "fork: $!";
	return $pid if $pid;
	# The child: wait for the start signal (EOF once every copy of the write end
	# is closed), send, write the outcome, leave without running the parent's
	# destructors (they would close its connections).
	close $go_w;
	my $buf;
	sysread $go, $buf, 1;
	my $r = eval { patch($inspector, $id, $body) } // { status => 0, body => "$@" };
	open my $fh, '>', $file or POSIX::_exit(2);
	print {$fh} encode_json({ status => $r->{status}, json => $r->{json}, body => $r->{body} });
	close $fh;
	POSIX::_exit(0);
}

{
	my %seen;
	my $met = 0;    # held rounds in which both requests waited on the row lock
	my $rounds = 16;
	for my $round (1 .. $rounds) {
		my $id = make_session($inspector, items_scanned => 1);
		my $hold = $round % 2;
		my $dbh = $t->dbh;
		if ($hold) {
			$dbh->begin_work;
			$dbh->do('SELECT 1 FROM scan_sessions WHERE id = ? FOR UPDATE', undef, $id);
		}
		pipe my $go_r, my $go_w or die "pipe: $!";
		my ($fa, $fb) = map { $t->dir . "/race-$round-$_.json" } qw(pause complete);
		my @pids = (racer($id, { status => 'PAUSED' }, $fa, $go_r, $go_w),
			racer($id, { status => 'COMPLETED' }, $fb, $go_r, $go_w));
		close $go_r;
		close $go_w;    # both children read EOF at once: go
		if ($hold) {
			my $deadline = time + 1.5;    # below lock_timeout (2 s)
			while (time < $deadline) {
				if ($t->one(q{SELECT count(*) FROM pg_stat_activity
					WHERE datname = current_database() AND wait_event_type = 'Lock'}) >= 2) {
					$met++;
					last;
				}
				sleep 0.01;
			}
			$dbh->commit;
		}
		waitpid $_, 0 for @pids;
		my ($pause, $complete) = map {
			open my $fh, '<', $_ or die "no outcome in $_";
			local $/;
			decode_json(<$fh>);
		} $fa, $fb;

		my $row = session_row($id);
		my $audit = audit_rows($id);
		my $story = join ' ', map { "$_->{old_value}{status}->$_->{new_value}{status}" } @$audit;
		my $ok = 1;
		$ok &&= $row->{status} eq 'COMPLETED' && $row->{ended};
		$ok &&= $complete->{status} == 200 && ($complete->{json}{status} // '') eq 'COMPLETED';
		if ($pause->{status} == 200) {
			$seen{'pause first'}++;
			$ok &&= ($pause->{json}{status} // '') eq 'PAUSED';
			$ok &&= $story eq 'ACTIVE->PAUSED PAUSED->COMPLETED' && $row->{version} == 3;
		} else {
			$seen{'complete first'}++;
			$ok &&= $pause->{status} == 409 && ($pause->{json}{error} // '') eq 'Session is completed';
			$ok &&= $story eq 'ACTIVE->COMPLETED' && $row->{version} == 2;
		}
		ok($ok, "race round $round: pause $pause->{status}, complete $complete->{status}; audit: $story; "
			. "ends $row->{status} at version $row->{version}")
			or diag(explain({ pause => $pause, complete => $complete, row => $row }));
	}
	note(join ', ', map { "$_: $seen{$_}" } sort keys %seen);
	ok($met > 0, "the two requests met at the session's row lock ($met of " . $rounds / 2 . ' held rounds)');
}

unlike($t->daemon_log, qr/^ERROR /m, 'the daemon logged no errors');
is($t->stop_daemon, 0, 'the daemon exits cleanly on SIGTERM');
is($t->daemon_errors, '', 'the daemon reported no memory errors');
is($t->nginx_alerts, '', 'nginx logged no alerts');

done_testing();
