#!/usr/bin/perl
# quick_inspection.t: POST /api/v1/quality/scanner/quick-inspection, as the API
# reference's "Quick Inspection" section and its error table describe it: the
# response, what is written (inspection, LP qa_status, one audit entry), every
# error row, two scanners racing for one inspection, and a database outage.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP;
use POSIX qw(floor);
use Test::More;
use Time::HiRes qw(sleep time);

use ScanQA::Test;

my $PATH = '/api/v1/quality/scanner/quick-inspection';
my $ISO_MS = qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

my $t = ScanQA::Test->new(conf => { workers => 2 });

my $org   = $t->make_org('Acme Warehouse');
my $other = $t->make_org('Rival Warehouse');
my $inspector = $t->make_user($org, 'qa_inspector');

sub post {
	my ($token, $body, %o) = @_;
	return $t->request(POST => $PATH, token => $token,
		(ref $body ? (json => $body) : (body => $body, headers => { 'Content-Type' => 'application/json' })),
		%o);
}

# A fresh LP (qa_status pending) and an in-progress inspection of it.
sub fresh {
	my ($o, %cols) = @_;
	my $lp = $t->make_lp($o // $org);
	return ($t->make_inspection($o // $org, $lp, %cols), $lp);
}

sub json_is_error {
	my ($r, $status, $error, $what) = @_;
	subtest $what => sub {
		is($r->{status}, $status, "status $status");
		like($r->{headers}{'content-type'} // '', qr{^application/json}, 'JSON content type');
		ok($r->{headers}{'x-request-id'}, 'carries X-Request-Id');
		is_deeply($r->{json}, { error => $error }, qq{body is {"error":"$error"}})
			or diag("body: $r->{body}");
	};
}

sub inspection { $t->row('SELECT * FROM quality_inspections WHERE id = ?', $_[0]) }
sub lp_status  { $t->one('SELECT qa_status FROM license_plates WHERE id = ?', $_[0]) }

sub audit_rows {
	my ($id) = @_;
	my $rows = $t->rows(q{SELECT org_id, entity_type, entity_id, action, user_id,
		old_value::text AS old_value, new_value::text AS new_value, change_reason,
		metadata::text AS metadata
		FROM quality_audit_log WHERE entity_id = ? ORDER BY id}, $id);
	for my $r (@$rows) {
		$r->{$_} = decode_json($r->{$_}) for grep { defined $r->{$_} } qw(old_value new_value metadata);
	}
	return $rows;
}

# The inspection, its LP and the audit log are exactly as before the request.
sub untouched {
	my ($id, $lp, $what) = @_;
	subtest $what => sub {
		my $row = inspection($id);
		is($row->{status}, 'in_progress', 'inspection stays in progress');
		is($row->{result}, undef, 'no result recorded');
		is($row->{completed_at}, undef, 'no completion time');
		is(lp_status($lp), 'pending', 'LP stays pending');
		is(scalar @{ audit_rows($id) }, 0, 'no audit entry');
	};
}

sub validation_fails {
	my ($body, $field, $message, $what) = @_;
	my ($id, $lp) = fresh();
	$body = $body->($id) if ref $body eq 'CODE';
	my $r = post($inspector->{token}, $body);
	subtest $what => sub {
		is($r->{status}, 400, 'rejected with 400');
		like($r->{headers}{'content-type'} // '', qr{^application/json}, 'JSON content type');
		is($r->{json}{error}, 'Validation failed', 'error is "Validation failed"');
		my $d = $r->{json}{details};
		is(ref $d, 'ARRAY', 'details is a list');
		my @hits = grep { ref $_ eq 'HASH' && ($_->{field} // "\0") eq $field } @{ $d // [] };
		ok(@hits, qq{details name the field "$field"}) or diag("body: $r->{body}");
		if (defined $message && @hits) {
			if (ref $message) { like($hits[0]{message}, $message, 'message says what is wrong') }
			else              { is($hits[0]{message}, $message, 'message says what is wrong') }
		}
		for my $e (@{ $d // [] }) {
			is_deeply([sort keys %$e], [qw(field message)], 'each detail is {field, message}');
		}
	};
	untouched($id, $lp, "$what: nothing is written");
}

# ---- the API reference's examples ------------------------------------------------------

{
	my ($id, $lp) = fresh();
	my $r = post($inspector->{token}, {
		inspection_id     => $id,
		result            => 'pass',
		inspection_method => 'scanner',
		scanner_device_id => 'ZEBRA-TC52-001',
	});
	is($r->{status}, 200, 'pass example: inspector completes the inspection') or diag($r->{body});
	like($r->{headers}{'content-type'}, qr{^application/json}, 'pass example: answer is JSON');
	ok($r->{headers}{'x-request-id'}, 'pass example: answer carries X-Request-Id');
	my $j = $r->{json} // {};
	is_deeply([sort keys %$j], [qw(inspection lp_new_status lp_status_updated)],
		'pass example: response has inspection, lp_status_updated, lp_new_status');
	is_deeply([sort keys %{ $j->{inspection} // {} }],
		[qw(completed_at id inspection_method lp_id result scanner_device_id status)],
		'pass example: inspection has exactly the fields of the success response');
	my $i = $j->{inspection};
	is($i->{id}, $id, 'pass example: inspection id echoed');
	is($i->{lp_id}, $lp, "pass example: the inspection's LP");
	is($i->{status}, 'completed', 'pass example: status completed');
	is($i->{result}, 'pass', 'pass example: result pass');
	is($i->{inspection_method}, 'scanner', 'pass example: method scanner');
	is($i->{scanner_device_id}, 'ZEBRA-TC52-001', 'pass example: device id echoed');
	like($i->{completed_at}, $ISO_MS, 'pass example: completed_at is ISO 8601 with milliseconds, UTC');
	ok(JSON::PP::is_bool($j->{lp_status_updated}) && $j->{lp_status_updated},
		'pass example: lp_status_updated is true');
	is($j->{lp_new_status}, 'passed', 'pass example: LP is now passed');

	my $row = inspection($id);
	is($row->{status}, 'completed', 'pass example: stored as completed');
	is($row->{result}, 'pass', 'pass example: stored result pass');
	is($row->{inspection_method}, 'scanner', 'pass example: stored method scanner');
	is($row->{scanner_device_id}, 'ZEBRA-TC52-001', 'pass example: stored device id');
	is($row->{completed_by}, $inspector->{id}, 'pass example: completed by the inspector');
	is($row->{result_notes}, undef, 'pass example: no notes stored');
	is($row->{defects_found}, undef, 'pass example: no defect count stored');
	is($t->one(q{SELECT to_char(completed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
		FROM quality_inspections WHERE id = ?}, $id), $i->{completed_at},
		'pass example: completed_at in the response is the stored one');
	is(lp_status($lp), 'passed', "pass example: LP's qa_status is passed");

	my $audit = audit_rows($id);
	is(scalar @$audit, 1, 'pass example: exactly one audit entry');
	my $a = $audit->[0] // {};
	is($a->{org_id}, $org, 'pass example: audit entry belongs to the organization');
	is($a->{entity_type}, 'inspection', 'pass example: audit entity_type inspection');
	is($a->{action}, 'scanner_complete', 'pass example: audit action scanner_complete');
	is($a->{user_id}, $inspector->{id}, 'pass example: audit names the inspector');
	is_deeply($a->{old_value}, { status => 'in_progress', result => undef },
		'pass example: audit old_value {status: in_progress, result: null}');
	is_deeply($a->{new_value}, { status => 'completed', result => 'pass' },
		'pass example: audit new_value {status: completed, result: pass}');
	is($a->{change_reason}, 'Scanner quick pass', 'pass example: change_reason "Scanner quick pass"');
	is_deeply($a->{metadata}, {
		inspection_method  => 'scanner',
		device_id          => 'ZEBRA-TC52-001',
		offline_queued     => JSON::PP::false,
		sync_delay_seconds => 0,
	}, 'pass example: audit metadata as in the Audit Trail section');
}

{
	my ($id, $lp) = fresh();
	my $r = post($inspector->{token}, {
		inspection_id     => $id,
		result            => 'fail',
		result_notes      => 'Damaged packaging, product exposed',
		defects_found     => 3,
		inspection_method => 'scanner',
		scanner_device_id => 'ZEBRA-TC52-001',
	});
	is($r->{status}, 200, 'fail example: inspector fails the inspection') or diag($r->{body});
	my $j = $r->{json} // {};
	is_deeply([sort keys %{ $j->{inspection} // {} }],
		[qw(completed_at defects_found id inspection_method lp_id result result_notes scanner_device_id status)],
		'fail example: inspection carries notes and defect count');
	my $i = $j->{inspection} // {};
	is($i->{result}, 'fail', 'fail example: result fail');
	is($i->{result_notes}, 'Damaged packaging, product exposed', 'fail example: notes echoed');
	ok(!ref $i->{defects_found} && $i->{defects_found} == 3 && $r->{body} =~ /"defects_found":3[,}]/,
		'fail example: defects_found is the number 3');
	like($i->{completed_at}, $ISO_MS, 'fail example: completed_at is ISO 8601 UTC');
	ok($j->{lp_status_updated}, 'fail example: lp_status_updated is true');
	is($j->{lp_new_status}, 'failed', 'fail example: LP is now failed');

	my $row = inspection($id);
	is($row->{result}, 'fail', 'fail example: stored result fail');
	is($row->{result_notes}, 'Damaged packaging, product exposed', 'fail example: stored notes');
	is($row->{defects_found}, 3, 'fail example: stored defect count');
	is(lp_status($lp), 'failed', "fail example: LP's qa_status is failed");

	my $audit = audit_rows($id);
	is(scalar @$audit, 1, 'fail example: exactly one audit entry');
	is_deeply($audit->[0]{new_value}, { status => 'completed', result => 'fail' },
		'fail example: audit new_value {status: completed, result: fail}');
	is($audit->[0]{change_reason}, 'Scanner quick fail', 'fail example: change_reason "Scanner quick fail"');
}

{
	my ($id, $lp) = fresh();
	my $r = post($inspector->{token}, {
		inspection_id => $id, result => 'pass', inspection_method => 'scanner',
		scanner_location => '52.2297,21.0122',
	});
	is($r->{status}, 200, 'inspection without a device id completes');
	ok(!defined $r->{json}{inspection}{scanner_device_id}, 'no device id in the response');
	is(inspection($id)->{scanner_location}, '52.2297,21.0122', 'scanner location is stored');
	my $m = audit_rows($id)->[0]{metadata} // {};
	ok(exists $m->{device_id} && !defined $m->{device_id}, 'audit metadata device_id is null');
}

for my $role (qw(qa_manager admin owner)) {
	my $u = $t->make_user($org, $role);
	my ($id) = fresh();
	my $r = post($u->{token}, { inspection_id => $id, result => 'pass', inspection_method => 'scanner' });
	is($r->{status}, 200, "a user with role $role may complete an inspection");
	is(audit_rows($id)->[0]{user_id}, $u->{id}, "the audit entry names the $role");
}

{
	my ($id) = fresh();
	my $r = post($inspector->{token}, { inspection_id => uc $id, result => 'pass', inspection_method => 'scanner' });
	is($r->{status}, 200, 'an inspection id in upper case finds the inspection');
	is($r->{json}{inspection}{id}, lc $id, 'the response names the inspection in lower case');
}

# ---- validation (400 "Validation failed") ---------------------------------------------

{
	my ($id, $lp) = fresh();
	my $r = post($inspector->{token}, { inspection_id => 'not-a-uuid', result => 'maybe', inspection_method => 'scanner' });
	is($r->{status}, 400, "the reference's validation example is rejected");
	is_deeply($r->{json}, {
		error   => 'Validation failed',
		details => [
			{ field => 'inspection_id', message => 'Invalid inspection ID' },
			{ field => 'result', message => "Expected 'pass' | 'fail', received 'maybe'" },
		],
	}, "the reference's validation example gets exactly the documented details") or diag($r->{body});
}

validation_fails(sub { { result => 'pass', inspection_method => 'scanner' } },
	'inspection_id', undef, 'missing inspection_id is rejected');
validation_fails(sub { { inspection_id => $_[0], inspection_method => 'scanner' } },
	'result', undef, 'missing result is rejected');
validation_fails(sub { { inspection_id => $_[0], result => 'pass' } },
	'inspection_method', undef, 'missing inspection_method is rejected');
validation_fails(sub { { inspection_id => $_[0], result => 'pass', inspection_method => 'manual' } },
	'inspection_method', 'Invalid literal value, expected "scanner"', 'inspection_method other than "scanner" is rejected');
validation_fails(sub { { inspection_id => $_[0], result => 'PASS', inspection_method => 'scanner' } },
	'result', "Expected 'pass' | 'fail', received 'PASS'", 'result is case sensitive');
validation_fails(sub { { inspection_id => '550e8400-e29b-41d4-a716-44665544000', result => 'pass', inspection_method => 'scanner' } },
	'inspection_id', 'Invalid inspection ID', 'an inspection id one digit short is rejected');
validation_fails(sub { { inspection_id => 42, result => 'pass', inspection_method => 'scanner' } },
	'inspection_id', 'Expected string, received number', 'a numeric inspection id is rejected');

# Zod's .optional() admits an absent key, not null.
validation_fails(sub { { inspection_id => $_[0], result => 'pass', inspection_method => 'scanner', result_notes => undef } },
	'result_notes', 'Expected string, received null', 'null result_notes is rejected (optional means absent)');
validation_fails(sub { { inspection_id => $_[0], result => 'pass', inspection_method => 'scanner', scanner_device_id => undef } },
	'scanner_device_id', 'Expected string, received null', 'null scanner_device_id is rejected');

validation_fails(sub { qq({"inspection_id":"$_[0]","result":"fail","inspection_method":"scanner","defects_found":"3"}) },
	'defects_found', 'Expected number, received string', 'defects_found "3" (a string) is rejected');
validation_fails(sub { qq({"inspection_id":"$_[0]","result":"fail","inspection_method":"scanner","defects_found":3.5}) },
	'defects_found', 'Expected integer, received float', 'defects_found 3.5 is rejected');
validation_fails(sub { qq({"inspection_id":"$_[0]","result":"fail","inspection_method":"scanner","defects_found":-1}) },
	'defects_found', undef, 'negative defects_found is rejected');
validation_fails(sub { qq({"inspection_id":"$_[0]","result":"fail","inspection_method":"scanner","defects_found":1001}) },
	'defects_found', undef, 'defects_found over 1000 is rejected');

validation_fails(sub { { inspection_id => $_[0], result => 'fail', inspection_method => 'scanner', result_notes => 'x' x 2001 } },
	'result_notes', undef, '2001-character notes are rejected');
# JavaScript measures strings in UTF-16 units: an emoji counts twice.
validation_fails(sub { { inspection_id => $_[0], result => 'fail', inspection_method => 'scanner', result_notes => "\x{1F4E6}" x 1001 } },
	'result_notes', undef, 'notes of 1001 emoji (2002 UTF-16 units) are rejected');
validation_fails(sub { { inspection_id => $_[0], result => 'pass', inspection_method => 'scanner', scanner_device_id => 'D' x 101 } },
	'scanner_device_id', undef, 'a 101-character device id is rejected');
validation_fails(sub { { inspection_id => $_[0], result => 'pass', inspection_method => 'scanner', scanner_location => 'L' x 101 } },
	'scanner_location', undef, 'a 101-character location is rejected');

validation_fails(sub { qq({"inspection_id":"$_[0]","result":"pass",) },
	'', qr/^Invalid JSON/, 'malformed JSON is rejected with field ""');
validation_fails(sub { qq(["$_[0]","pass"]) },
	'', 'Expected object, received array', 'a JSON array instead of an object is rejected');
validation_fails(sub { '' },
	'', qr/^Invalid JSON/, 'an empty body is rejected');

{
	my ($id) = fresh();
	my $r = post($inspector->{token}, { result => 'maybe', inspection_method => 'x', defects_found => 'many' });
	my @fields = map { $_->{field} } @{ $r->{json}{details} // [] };
	is_deeply(\@fields, [qw(inspection_id result defects_found inspection_method)],
		'every failing field is reported, in schema order');
}

# Values at the limits, and things Zod lets through.
{
	my @ok = (
		['defects_found 3.0 counts as the integer 3', sub { qq({"inspection_id":"$_[0]","result":"fail","inspection_method":"scanner","defects_found":3.0}) }, 3],
		['defects_found 0 is accepted', sub { qq({"inspection_id":"$_[0]","result":"pass","inspection_method":"scanner","defects_found":0}) }, 0],
		['defects_found 1000 is accepted', sub { qq({"inspection_id":"$_[0]","result":"fail","inspection_method":"scanner","defects_found":1000}) }, 1000],
	);
	for my $case (@ok) {
		my ($what, $body, $want) = @$case;
		my ($id) = fresh();
		my $r = post($inspector->{token}, $body->($id));
		is($r->{status}, 200, $what) or diag($r->{body});
		is(inspection($id)->{defects_found}, $want, "$what: stored as $want");
	}

	my ($id) = fresh();
	my $notes = "\x{e9}" x 2000;
	my $r = post($inspector->{token}, { inspection_id => $id, result => 'fail', inspection_method => 'scanner', result_notes => $notes });
	is($r->{status}, 200, '2000-character notes (non-ASCII) are accepted');
	is(inspection($id)->{result_notes}, $notes, '2000-character notes are stored intact');

	($id) = fresh();
	$r = post($inspector->{token}, { inspection_id => $id, result => 'pass', inspection_method => 'scanner',
		scanner_device_id => 'D' x 100, scanner_location => 'L' x 100 });
	is($r->{status}, 200, '100-character device id and location are accepted');

	($id) = fresh();
	$r = post($inspector->{token}, { inspection_id => $id, result => 'pass', inspection_method => 'scanner',
		priority => 'high', status => 'pending', org_id => $other, nested => { a => [1, 2] } });
	is($r->{status}, 200, 'unknown keys are ignored');
	is(inspection($id)->{org_id}, $org, 'an org_id in the body changes nothing');
}

# ---- 400 "Inspection already completed" ------------------------------------------------

{
	my ($id, $lp) = fresh();
	my $first = post($inspector->{token}, { inspection_id => $id, result => 'pass', inspection_method => 'scanner' });
	is($first->{status}, 200, 'first completion succeeds');
	my $again = post($inspector->{token}, { inspection_id => $id, result => 'fail', inspection_method => 'scanner', result_notes => 'changed my mind' });
	json_is_error($again, 400, 'Inspection already completed', 'second completion of the same inspection is rejected');
	my $row = inspection($id);
	is($row->{result}, 'pass', 'the first result stands');
	is($row->{result_notes}, undef, "the second request's notes are not stored");
	is(lp_status($lp), 'passed', 'LP keeps the first outcome');
	is(scalar @{ audit_rows($id) }, 1, 'still exactly one audit entry');

	my ($done) = fresh(undef, status => 'completed', result => 'pass', completed_at => '2025-01-22T11:20:00Z');
	json_is_error(post($inspector->{token}, { inspection_id => $done, result => 'pass', inspection_method => 'scanner' }),
		400, 'Inspection already completed', 'an inspection completed earlier cannot be completed again');
}

# ---- 401 -------------------------------------------------------------------------------

{
	my ($id, $lp) = fresh();
	my %body = (inspection_id => $id, result => 'pass', inspection_method => 'scanner');
	my $body = encode_json(\%body);
	my $ct = 'application/json';

	json_is_error($t->request(POST => $PATH, json => \%body), 401, 'Unauthorized',
		'no Authorization header: 401');
	json_is_error($t->request(POST => $PATH, body => $body, headers => { 'Content-Type' => $ct, Authorization => 'Basic ZGVtbzpkZW1v' }),
		401, 'Unauthorized', 'Basic instead of Bearer: 401');
	json_is_error($t->request(POST => $PATH, body => $body, headers => { 'Content-Type' => $ct, Authorization => 'Bearer' }),
		401, 'Unauthorized', 'Bearer without a token: 401');
	json_is_error($t->request(POST => $PATH, body => $body, headers => { 'Content-Type' => $ct, Authorization => $inspector->{token} }),
		401, 'Unauthorized', 'a token without "Bearer ": 401');
	json_is_error(post('tok-' . ('0' x 48), \%body), 401, 'Unauthorized', 'an unknown token: 401');

	my $expired = $t->make_token($inspector->{id}, expires_at => '2000-01-01T00:00:00Z');
	json_is_error(post($expired, \%body), 401, 'Unauthorized', 'an expired token: 401');
	my $revoked = $t->make_token($inspector->{id}, revoked_at => '2025-01-01T00:00:00Z');
	json_is_error(post($revoked, \%body), 401, 'Unauthorized', 'a revoked token: 401');
	my $later = $t->make_token($inspector->{id}, expires_at => '2999-01-01T00:00:00Z');
	is(post($later, { %body, inspection_id => (fresh())[0] })->{status}, 200, 'a token that expires in the future works');

	my $inactive = $t->make_user($org, 'qa_inspector', active => 0);
	json_is_error(post($inactive->{token}, \%body), 401, 'User not found', 'a deactivated user: 401 User not found');

	my $gone = $t->make_user($org, 'qa_inspector');
	$t->dbh->do('DELETE FROM users WHERE id = ?', undef, $gone->{id});
	json_is_error(post($gone->{token}, \%body), 401, 'User not found', "a token whose user was deleted: 401 User not found");

	untouched($id, $lp, 'rejected callers change nothing');
}

# ---- 403 -------------------------------------------------------------------------------

{
	my ($id, $lp) = fresh();
	for my $role (qw(viewer operator)) {
		my $u = $t->make_user($org, $role);
		json_is_error(post($u->{token}, { inspection_id => $id, result => 'pass', inspection_method => 'scanner' }),
			403, 'Scanner access requires QA Inspector role', "a user with role $role may not use the scanner");
	}
	untouched($id, $lp, 'a refused role changes nothing');
}

# ---- 404 -------------------------------------------------------------------------------

{
	json_is_error(post($inspector->{token}, { inspection_id => '00000000-0000-4000-8000-0000000000ff', result => 'pass', inspection_method => 'scanner' }),
		404, 'Inspection not found', 'an inspection id that does not exist: 404');

	my ($theirs, $their_lp) = fresh($other);
	json_is_error(post($inspector->{token}, { inspection_id => $theirs, result => 'pass', inspection_method => 'scanner' }),
		404, 'Inspection not found', "another organization's inspection: 404");
	untouched($theirs, $their_lp, "another organization's inspection is left alone");
}

# ---- 500 "Failed to update inspection" -------------------------------------------------

{
	my ($id, $lp) = fresh();
	my $dbh = $t->dbh;
	$dbh->do(q{CREATE FUNCTION test_refuse_audit() RETURNS trigger LANGUAGE plpgsql AS
		$$ BEGIN RAISE EXCEPTION 'audit log refused by test'; END $$});
	$dbh->do('CREATE TRIGGER test_refuse_audit BEFORE INSERT ON quality_audit_log FOR EACH ROW EXECUTE FUNCTION test_refuse_audit()');
	my $r = post($inspector->{token}, { inspection_id => $id, result => 'pass', inspection_method => 'scanner' });
	json_is_error($r, 500, 'Failed to update inspection', 'the database refusing the update: 500');
	untouched($id, $lp, 'a refused update leaves nothing half-written');
	$dbh->do('DROP TRIGGER test_refuse_audit ON quality_audit_log');
	$dbh->do('DROP FUNCTION test_refuse_audit()');

	my @ok = map { post($inspector->{token}, { inspection_id => (fresh())[0], result => 'pass', inspection_method => 'scanner' })->{status} } 1 .. 3;
	is_deeply(\@ok, [200, 200, 200], 'after the failure the workers serve requests again');
}

# ---- two scanners complete the same inspection at once -----------------------------------

{
	my ($id, $lp) = fresh();
	my $a = $t->make_user($org, 'qa_inspector');
	my $b = $t->make_user($org, 'qa_inspector');

	# Hold the inspection's row lock so both requests reach the database and wait
	# there, then let them go together.
	my $lock = $t->connect_as('postgres');
	$lock->begin_work;
	$lock->do('SELECT 1 FROM quality_inspections WHERE id = ? FOR UPDATE', undef, $id);
	my $sa = $t->request_start(POST => $PATH, token => $a->{token},
		json => { inspection_id => $id, result => 'pass', inspection_method => 'scanner', scanner_device_id => 'A' });
	my $sb = $t->request_start(POST => $PATH, token => $b->{token},
		json => { inspection_id => $id, result => 'fail', inspection_method => 'scanner', scanner_device_id => 'B' });
	my $deadline = time + 1.5;    # stays below lock_timeout (2 s)
	my $waiting = 0;
	while (time < $deadline) {
		$waiting = $t->one(q{SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'});
		last if $waiting >= 2;
		sleep 0.02;
	}
	note("requests waiting on the inspection's row lock when it was released: $waiting");
	$lock->commit;
	$lock->disconnect;
	my @r = ($t->request_finish($sa), $t->request_finish($sb));

	my @status = sort map { $_->{status} } @r;
	is_deeply(\@status, [200, 400], 'of two simultaneous completions exactly one succeeds');
	my ($loser) = grep { $_->{status} == 400 } @r;
	is($loser && $loser->{json}{error}, 'Inspection already completed', 'the other is told the inspection is already completed');
	my ($winner) = grep { $_->{status} == 200 } @r;
	my $audit = audit_rows($id);
	is(scalar @$audit, 1, 'exactly one audit entry for the race');
	my $row = inspection($id);
	is($row->{result}, $winner && $winner->{json}{inspection}{result}, "the stored result is the winner's");
	is(lp_status($lp), $winner && $winner->{json}{lp_new_status}, "the LP status is the winner's");
	is($audit->[0]{metadata}{device_id}, $row->{scanner_device_id}, "the audit entry is the winner's");
}

# ---- database outage ------------------------------------------------------------------------

{
	my $p = ScanQA::Test->new(conf => { workers => 2 }, private_pg => 1);
	my $o = $p->make_org('Outage Org');
	my $u = $p->make_user($o, 'qa_inspector');
	my @ids = map { $p->make_inspection($o, $p->make_lp($o)) } 1 .. 2;
	my $body = sub { { inspection_id => $_[0], result => 'pass', inspection_method => 'scanner' } };

	is($p->request(POST => $PATH, token => $u->{token}, json => $body->($ids[0]))->{status}, 200,
		'before the outage an inspection completes');

	$p->stop_pg;
	my $r = $p->request(POST => $PATH, token => $u->{token}, json => $body->($ids[1]), timeout => 30);
	json_is_error($r, 503, 'Service unavailable', 'with the database down a completion gets 503');
	my $h = $p->request(GET => '/api/v1/health', timeout => 30);
	is($h->{status}, 503, 'with the database down health answers 503');
	like($h->{headers}{'content-type'} // '', qr{^application/json}, 'the 503 health answer is JSON');

	$p->start_pg;
	ok($p->wait_health(200, 60), 'once the database is back health answers 200 again');
	$r = $p->request(POST => $PATH, token => $u->{token}, json => $body->($ids[1]));
	is($r->{status}, 200, 'once the database is back the completion succeeds') or diag($r->{body});
	is($p->one('SELECT status FROM quality_inspections WHERE id = ?', $ids[1]), 'completed',
		'the completion after the outage is stored');
	is($p->stop_daemon, 0, 'after the outage the daemon exits cleanly on SIGTERM');
	is($p->daemon_errors, '', 'the daemon reported no memory errors around the outage');
	is($p->nginx_alerts, '', 'nginx logged no alerts during the outage');
}

is($t->stop_daemon, 0, 'the daemon exits cleanly on SIGTERM');
is($t->daemon_errors, '', 'the daemon reported no memory errors');
is($t->nginx_alerts, '', 'nginx logged no alerts');

done_testing;
