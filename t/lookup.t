#!/usr/bin/perl
# lookup.t: the look-ups of the API reference's "Integration with Other APIs":
# GET /api/warehouse/license-plates/barcode/{barcode} (LP details, qa_status,
# pending inspection count) and GET /api/quality/inspections/by-lp/{lpId} (the
# LP's pending inspection in the reference's shape). Found, unknown, malformed,
# another organization's, and who may ask.

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP;
use Test::More;

use ScanQA::Test;

my $BY_BARCODE = '/api/warehouse/license-plates/barcode';
my $BY_LP      = '/api/quality/inspections/by-lp';
my $ISO_MS     = qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

my $t = ScanQA::Test->new(conf => { workers => 2 });

my $org       = $t->make_org('Acme Warehouse');
my $other_org = $t->make_org('Rival Warehouse');
my $inspector = $t->make_user($org, 'qa_inspector');
my $rival     = $t->make_user($other_org, 'qa_inspector');

sub get {
	my ($user, $path) = @_;
	return $t->request(GET => $path, token => $user && $user->{token});
}

sub error_is {
	my ($r, $status, $error, $what) = @_;
	subtest $what => sub {
		is($r->{status}, $status, "status $status");
		like($r->{headers}{'content-type'} // '', qr{^application/json}, 'JSON content type');
		is_deeply($r->{json}, { error => $error }, qq{body is {"error":"$error"}}) or diag("body: $r->{body}");
	};
}

sub validation_fails {
	my ($r, $field, $message, $what) = @_;
	subtest $what => sub {
		is($r->{status}, 400, 'status 400');
		is($r->{json} && $r->{json}{error}, 'Validation failed', 'error is "Validation failed"')
			or diag("body: $r->{body}");
		is_deeply($r->{json} && $r->{json}{details}, [{ field => $field, message => $message }],
			qq{one detail: $field: $message});
	};
}

# The reference's example LP: barcode LP00000001, batch BATCH-2025-001, 100 units.
my $lp = $t->make_lp($org, barcode => 'LP00000001', product_id => 'prod-uuid',
	batch_number => 'BATCH-2025-001', quantity => 100);
my $older = $t->make_inspection($org, $lp, status => 'in_progress', inspection_number => 'INS-INC-2025-00001',
	created_at => '2025-01-23T10:00:00Z');
my $newer = $t->make_inspection($org, $lp, status => 'pending', inspection_number => 'INS-INC-2025-00002',
	created_at => '2025-01-24T10:00:00Z');
my $closed = $t->make_inspection($org, $lp, status => 'completed', result => 'pass',
	completed_at => '2025-01-22T10:00:00Z', created_at => '2025-01-20T10:00:00Z');
my $passed = $t->make_lp($org, barcode => 'LP00000002', qa_status => 'passed', quantity => 2.5);
$t->make_inspection($org, $passed, status => 'completed', result => 'pass', completed_at => '2025-01-22T10:00:00Z');
my $bare = $t->make_lp($org, barcode => 'LP 0003 é');
my $rival_lp = $t->make_lp($other_org, barcode => 'RIVAL-1');
$t->make_inspection($other_org, $rival_lp);
# Same barcode in both organizations: each sees its own.
my $shared_ours = $t->make_lp($org, barcode => 'SHARED-1', quantity => 1);
my $shared_theirs = $t->make_lp($other_org, barcode => 'SHARED-1', quantity => 9);

# ---- LP by barcode ----------------------------------------------------------------------

{
	my $r = get($inspector, "$BY_BARCODE/LP00000001");
	is($r->{status}, 200, 'an inspector looks up an LP by barcode') or diag($r->{body});
	my $j = $r->{json} // {};
	is_deeply([sort keys %$j],
		[qw(barcode batch_number created_at id pending_inspection_count product_id qa_status quantity updated_at)],
		'the LP details, qa_status and pending inspection count');
	is($j->{id}, $lp, "the LP's id");
	is($j->{barcode}, 'LP00000001', 'its barcode');
	is($j->{product_id}, 'prod-uuid', 'its product');
	is($j->{batch_number}, 'BATCH-2025-001', 'its batch');
	is($j->{qa_status}, 'pending', 'its current qa_status');
	is($j->{pending_inspection_count}, 2, 'two open inspections (pending and in_progress); the completed one is not counted');
	like($r->{body}, qr/"quantity":100[,}]/, 'quantity is the JSON number 100');
	like($j->{created_at}, $ISO_MS, 'created_at is ISO 8601 with milliseconds');
	like($j->{updated_at}, $ISO_MS, 'updated_at is ISO 8601 with milliseconds');

	my $p = get($inspector, "$BY_BARCODE/LP00000002")->{json};
	is($p->{qa_status}, 'passed', 'a passed LP shows qa_status passed');
	is($p->{pending_inspection_count}, 0, 'and no pending inspection');
	is($p->{quantity}, 2.5, 'a fractional quantity keeps its fraction');

	my $enc = get($inspector, "$BY_BARCODE/LP%200003%20%C3%A9");
	is($enc->{status}, 200, 'a percent-encoded barcode with spaces and non-ASCII is decoded and found');
	is($enc->{json}{id}, $bare, 'the LP of that barcode');

	is(get($inspector, "$BY_BARCODE/SHARED-1")->{json}{id}, $shared_ours, 'a barcode both organizations use gives our LP');
	is(get($rival, "$BY_BARCODE/SHARED-1")->{json}{id}, $shared_theirs, 'and theirs to them');

	error_is(get($inspector, "$BY_BARCODE/NO-SUCH-LP"), 404, 'License plate not found', 'an unknown barcode is not found');
	error_is(get($inspector, "$BY_BARCODE/lp00000001"), 404, 'License plate not found', 'barcodes are case-sensitive');
	error_is(get($inspector, "$BY_BARCODE/RIVAL-1"), 404, 'License plate not found',
		"another organization's barcode is not found");
	error_is(get($rival, "$BY_BARCODE/LP00000001"), 404, 'License plate not found',
		'and ours is not found for them');

	validation_fails(get($inspector, "$BY_BARCODE/LP%091"), 'barcode', 'Barcode must not contain control characters',
		'a barcode with a tab is malformed');
	validation_fails(get($inspector, "$BY_BARCODE/LP%7F1"), 'barcode', 'Barcode must not contain control characters',
		'a barcode with DEL is malformed');
	# nginx itself refuses a NUL in the path, before the daemon sees it.
	error_is(get($inspector, "$BY_BARCODE/LP%001"), 400, 'Bad request', 'a barcode with NUL is refused, in JSON');
	error_is(get($inspector, "$BY_BARCODE/LP%FF"), 400, 'Invalid path parameter', 'a barcode that is not UTF-8 is refused');
	error_is(get($inspector, "$BY_BARCODE/" . ('A' x 257)), 400, 'Invalid path parameter', 'a barcode of 257 bytes is refused');
	is(get($inspector, "$BY_BARCODE/" . ('A' x 256))->{status}, 404, 'a barcode of 256 bytes is looked up');
}

# ---- what a scan engine types (issue 11) -------------------------------------------------

# A scanner in keyboard-wedge mode ends a scan with Enter or Tab, may add spaces, and
# may send an AIM symbology identifier first; GS1-128 carries FNC1 (0x1D) as data;
# Code 128 encodes "/". Each request below means the barcode it carries.
my $slashed = $t->make_lp($org, barcode => 'PAL/2025/0001');
my $gs1 = $t->make_lp($org, barcode => "0109501101020917\x{1d}10ABC123");
{
	my %means = (
		"LP00000001%0D" => [$lp, 'a trailing CR (Enter)'],
		"LP00000001%0D%0A" => [$lp, 'a trailing CR LF'],
		"LP00000001%0A" => [$lp, 'a trailing LF'],
		"LP00000001%09" => [$lp, 'a trailing Tab'],
		"%20%20LP00000001%20%0D" => [$lp, 'surrounding spaces and a CR'],
		"%5DC1LP00000001" => [$lp, 'an AIM symbology identifier ]C1'],
		"%5DQ3LP00000001%0D%0A" => [$lp, 'an AIM identifier ]Q3 and CR LF'],
		"PAL%2F2025%2F0001" => [$slashed, 'a barcode with encoded slashes'],
		"PAL%2F2025%2F0001%0D" => [$slashed, 'a barcode with encoded slashes and a CR'],
		"PAL%2f2025%2f0001" => [$slashed, 'lower-case %2f'],
		"0109501101020917%1D10ABC123" => [$gs1, 'a GS1-128 barcode with its group separator'],
		"%5DC10109501101020917%1D10ABC123%0D" => [$gs1, 'a GS1-128 barcode with ]C1 and a CR'],
	);
	for my $path (sort keys %means) {
		my ($want, $what) = @{ $means{$path} };
		my $r = get($inspector, "$BY_BARCODE/$path");
		is($r->{status}, 200, "$what ($path) is looked up") or diag($r->{body});
		is($r->{json} && $r->{json}{id}, $want, "$what: the LP of the bare barcode");
	}
	is(get($inspector, "$BY_BARCODE/PAL%2F2025%2F0001")->{json}{barcode}, 'PAL/2025/0001',
		'the answer carries the barcode with its slashes');
	error_is(get($inspector, "$BY_BARCODE/0109501101020917%1D10ZZZ"), 404, 'License plate not found',
		'an unknown GS1 barcode is not found, like any other');
	error_is(get($inspector, "$BY_BARCODE/PAL%2F2025%2F9999"), 404, 'License plate not found',
		'an unknown barcode with slashes is not found');
	error_is(get($inspector, "$BY_BARCODE/PAL/2025/0001"), 404, 'Not found',
		'unencoded slashes are path segments: that path does not exist');
	validation_fails(get($inspector, "$BY_BARCODE/%0D%0A"), 'barcode', 'String must contain at least 1 character(s)',
		'a scan of Enter alone is an empty barcode');
	validation_fails(get($inspector, "$BY_BARCODE/%5DC1"), 'barcode', 'String must contain at least 1 character(s)',
		'an AIM identifier alone is an empty barcode');
	validation_fails(get($inspector, "$BY_BARCODE/LP%0D1"), 'barcode', 'Barcode must not contain control characters',
		'a CR inside a barcode is still a control character');
	validation_fails(get($inspector, "$BY_BARCODE/LP%1B1"), 'barcode', 'Barcode must not contain control characters',
		'ESC is still a control character');
}

# ---- inspection by LP --------------------------------------------------------------------

{
	my $r = get($inspector, "$BY_LP/$lp");
	is($r->{status}, 200, "an inspector gets an LP's pending inspection") or diag($r->{body});
	my $j = $r->{json} // {};
	is_deeply([sort keys %$j], [qw(has_pending_inspection inspection lp)], 'inspection, lp, has_pending_inspection');
	is_deeply($j->{inspection}, {
		id => $older, lp_id => $lp, inspection_number => 'INS-INC-2025-00001', status => 'in_progress',
		result => undef, created_at => '2025-01-23T10:00:00.000Z',
	}, 'the oldest open inspection, in the reference\'s shape');
	is_deeply($j->{lp}, {
		id => $lp, barcode => 'LP00000001', product_id => 'prod-uuid', batch_number => 'BATCH-2025-001',
		quantity => 100, qa_status => 'pending',
	}, "the LP, in the reference's shape");
	ok(JSON::PP::is_bool($j->{has_pending_inspection}) && $j->{has_pending_inspection}, 'has_pending_inspection is true');

	$t->dbh->do(q{UPDATE quality_inspections SET status = 'completed', result = 'fail', completed_at = now() WHERE id = ?},
		undef, $older);
	is(get($inspector, "$BY_LP/$lp")->{json}{inspection}{id}, $newer, 'once it is completed the next open one is returned');

	my $none = get($inspector, "$BY_LP/$passed");
	is($none->{status}, 200, 'an LP whose inspections are all completed is found');
	is($none->{json}{inspection}, undef, 'its inspection is null');
	ok(JSON::PP::is_bool($none->{json}{has_pending_inspection}) && !$none->{json}{has_pending_inspection},
		'has_pending_inspection is false');
	is($none->{json}{lp}{id}, $passed, 'and the LP is still shown');
	is(get($inspector, "$BY_LP/$bare")->{json}{inspection}, undef, 'an LP never inspected has inspection null');

	is(get($inspector, "$BY_LP/" . uc $lp)->{json}{lp}{id}, $lp, 'an upper-case uuid finds the same LP');

	error_is(get($inspector, "$BY_LP/00000000-0000-0000-0000-000000000000"), 404, 'License plate not found',
		'an unknown LP is not found');
	error_is(get($inspector, "$BY_LP/$rival_lp"), 404, 'License plate not found', "another organization's LP is not found");
	error_is(get($rival, "$BY_LP/$lp"), 404, 'License plate not found', 'and ours is not found for them');

	validation_fails(get($inspector, "$BY_LP/not-a-uuid"), 'lpId', 'Invalid LP ID', 'a malformed id is refused');
	validation_fails(get($inspector, "$BY_LP/LP00000001"), 'lpId', 'Invalid LP ID', 'a barcode is not an LP id');
	validation_fails(get($inspector, "$BY_LP/" . substr($lp, 0, 35)), 'lpId', 'Invalid LP ID', 'a truncated uuid is refused');
	validation_fails(get($inspector, "$BY_LP/%20$lp"), 'lpId', 'Invalid LP ID', 'a uuid with a leading space is refused');
}

# ---- who may look up ---------------------------------------------------------------------

{
	for my $role (qw(qa_manager admin owner)) {
		my $u = $t->make_user($org, $role);
		is(get($u, "$BY_BARCODE/LP00000001")->{status}, 200, "a $role may look up by barcode");
		is(get($u, "$BY_LP/$lp")->{status}, 200, "a $role may look up by LP");
	}
	for my $role (qw(viewer operator)) {
		my $u = $t->make_user($org, $role);
		error_is(get($u, "$BY_BARCODE/LP00000001"), 403, 'Scanner access requires QA Inspector role',
			"a $role may not look up by barcode");
		error_is(get($u, "$BY_LP/$lp"), 403, 'Scanner access requires QA Inspector role', "a $role may not look up by LP");
	}
	error_is(get(undef, "$BY_BARCODE/LP00000001"), 401, 'Unauthorized', 'a barcode look-up needs a token');
	error_is(get(undef, "$BY_LP/$lp"), 401, 'Unauthorized', 'an LP look-up needs a token');
	my $gone = $t->make_user($org, 'qa_inspector', active => 0);
	error_is(get($gone, "$BY_BARCODE/LP00000001"), 401, 'User not found', 'an inactive user is turned away');
	error_is($t->request(POST => "$BY_BARCODE/LP00000001", token => $inspector->{token}), 405, 'Method not allowed',
		'a look-up is GET only');
}

# ---- the look-ups write nothing ------------------------------------------------------------

{
	my $before = $t->one(q{SELECT md5(string_agg(l::text, ',' ORDER BY l.id)) FROM license_plates l});
	get($inspector, "$BY_BARCODE/LP00000001") for 1 .. 3;
	get($inspector, "$BY_LP/$lp") for 1 .. 3;
	is($t->one(q{SELECT md5(string_agg(l::text, ',' ORDER BY l.id)) FROM license_plates l}), $before,
		'looking up changes no license plate');
	is($t->one('SELECT count(*) FROM quality_audit_log'), 0, 'and writes no audit entry');
}

# ---- the API reference's example, verbatim, against the demo data ----------------------------

{
	$t->load_demo;
	my $example = decode_json(<<'JSON');
{
  "inspection": {
    "id": "550e8400-e29b-41d4-a716-446655440001",
    "lp_id": "550e8400-e29b-41d4-a716-446655440010",
    "inspection_number": "INS-INC-2025-00001",
    "status": "in_progress",
    "result": null,
    "created_at": "2025-01-23T10:00:00.000Z"
  },
  "lp": {
    "id": "550e8400-e29b-41d4-a716-446655440010",
    "barcode": "LP00000001",
    "product_id": "prod-uuid",
    "batch_number": "BATCH-2025-001",
    "quantity": 100,
    "qa_status": "pending"
  },
  "has_pending_inspection": true
}
JSON
	my $r = $t->request(GET => "$BY_LP/550e8400-e29b-41d4-a716-446655440010", token => 'demo-inspector');
	is($r->{status}, 200, "the reference's inspection-by-LP example answers 200 for demo-inspector") or diag($r->{body});
	is_deeply($r->{json}, $example, "and exactly the reference's example response");

	my $b = $t->request(GET => "$BY_BARCODE/LP00000001", token => 'demo-inspector');
	is($b->{json}{id}, '550e8400-e29b-41d4-a716-446655440010', "the reference's barcode LP00000001 is that LP");
	is($b->{json}{pending_inspection_count}, 1, 'with its one pending inspection');
	error_is($t->request(GET => "$BY_LP/550e8400-e29b-41d4-a716-446655440010", token => 'demo-other-org'), 404,
		'License plate not found', "demo-other-org does not see Demo Warehouse's LP");
	error_is($t->request(GET => "$BY_BARCODE/LP00000001", token => 'demo-viewer'), 403,
		'Scanner access requires QA Inspector role', 'demo-viewer has no scanner access');
}

unlike($t->daemon_log, qr/^ERROR /m, 'the daemon logged no errors');
is($t->stop_daemon, 0, 'the daemon exits cleanly on SIGTERM');
is($t->daemon_errors, '', 'the daemon reported no memory errors');
is($t->nginx_alerts, '', 'nginx logged no alerts');

done_testing();
