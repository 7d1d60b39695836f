#!/usr/bin/perl
# admin_import.t: "scanqa import lps|inspections FILE --org NAME" loads the warehouse
# system's CSV: the example files of the repository, upserts by (organization,
# barcode) and (organization, inspection_number), a completed inspection never
# changed (and reported), a file with bad rows changing nothing while every bad row
# is reported with line, column and reason, another organization untouched, exit
# status 0/1/2, and a 100,000-row file.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP;
use POSIX ();
use Test::More;

use ScanQA::Test;

my $t = ScanQA::Test->new(conf => { workers => 1 });
my $EXAMPLES = ($ENV{SCANQA_EXAMPLES} // ScanQA::Test::root() . '/examples');
my @ERR;

sub run { my $r = $t->scanqa(@_); push @ERR, $r->{err}; return $r }

sub write_file {
	my ($name, $content) = @_;
	my $path = $t->dir . "/$name";
	open my $fh, '>:raw', $path or die "$path: $!";
	print $fh $content;
	close $fh;
	return $path;
}

my $org = $t->make_org('Import Warehouse');
my $other = $t->make_org('Other Warehouse');
my $other_lp = $t->make_lp($other, barcode => 'LP00000101', product_id => 'THEIRS', quantity => 7);
my $inspector = $t->make_user($org, 'qa_inspector');

sub lps {
	return $t->rows(q{SELECT barcode, product_id, batch_number, quantity::text AS quantity, qa_status
		FROM license_plates WHERE org_id = ? ORDER BY barcode}, $org);
}

sub inspections {
	return $t->rows(q{SELECT i.inspection_number, l.barcode AS lp_barcode, i.status, i.result
		FROM quality_inspections i JOIN license_plates l ON l.id = i.lp_id
		WHERE i.org_id = ? ORDER BY i.inspection_number}, $org);
}

# ---- the example files ----------------------------------------------------------------------

my $r = run('import', 'lps', "$EXAMPLES/lps.csv", '--org', 'Import Warehouse');
is($r->{exit}, 0, 'import lps of examples/lps.csv: exit 0') or diag $r->{err};
like($r->{err}, qr/4 row\(s\).*4 inserted, 0 updated/, 'it says 4 rows were inserted');
is_deeply(lps(), [
	{ barcode => 'LP00000101', product_id => 'PROD-1001', batch_number => 'BATCH-2026-11-30-A', quantity => '48.000', qa_status => 'pending' },
	{ barcode => 'LP00000102', product_id => 'PROD-1001', batch_number => 'BATCH-2026-11-30-A', quantity => '48.000', qa_status => 'pending' },
	{ barcode => 'LP00000103', product_id => 'PROD-2040', batch_number => 'BATCH-2026-11-30-B', quantity => '12.500', qa_status => 'pending' },
	{ barcode => 'LP00000104', product_id => 'PROD-3300, pallet', batch_number => 'BATCH-2026-11-30-C', quantity => '1.000', qa_status => 'pending' },
], 'the database holds exactly the four LPs of the file, a quoted comma included');
is($t->one(q{SELECT product_id || ' ' || quantity FROM license_plates WHERE id = ?}, $other_lp), 'THEIRS 7.000',
	"another organization's LP with the same barcode is untouched");

$r = run('import', 'inspections', "$EXAMPLES/inspections.csv", '--org', 'Import Warehouse');
is($r->{exit}, 0, 'import inspections of examples/inspections.csv: exit 0') or diag $r->{err};
is_deeply(inspections(), [
	{ inspection_number => 'QI-2026-11-30-0001', lp_barcode => 'LP00000101', status => 'pending', result => undef },
	{ inspection_number => 'QI-2026-11-30-0002', lp_barcode => 'LP00000102', status => 'pending', result => undef },
	{ inspection_number => 'QI-2026-11-30-0003', lp_barcode => 'LP00000103', status => 'in_progress', result => undef },
	{ inspection_number => 'QI-2026-11-30-0004', lp_barcode => 'LP00000104', status => 'pending', result => undef },
], 'the four inspections are on their LPs; an empty status means pending');
my $audit = $t->row(q{SELECT entity_id, new_value, metadata FROM quality_audit_log
	WHERE action = 'import_inspections' AND org_id = ?}, $org);
is(decode_json($audit->{new_value})->{inserted}, 4, 'the import wrote an audit row with its counts');
is(decode_json($audit->{metadata})->{os_user}, scalar getpwuid($<), '... naming the OS user');

# The inspector completes one inspection through nginx.
my $done_id = $t->one(q{SELECT id FROM quality_inspections WHERE inspection_number = 'QI-2026-11-30-0001'});
$r = $t->request(POST => '/api/v1/quality/scanner/quick-inspection', token => $inspector->{token},
	json => { inspection_id => $done_id, result => 'fail', inspection_method => 'scanner' });
is($r->{status}, 200, 'an imported inspection is completed through the API');

# ---- upserts ---------------------------------------------------------------------------------------

$r = run('import', 'lps', write_file('lps2.csv', "Quantity,BARCODE\r\n60,LP00000101\r\n,LP00000102\r\n5,LP00000199\r\n"),
	'--org', 'Import Warehouse');
is($r->{exit}, 0, 're-import with columns in another order, CRLF line ends: exit 0') or diag $r->{err};
like($r->{err}, qr/1 inserted, 1 updated, 1 unchanged/, 'it counts one inserted, one updated, one unchanged');
is_deeply([map { "$_->{barcode} $_->{product_id} $_->{quantity} $_->{qa_status}" } grep { $_->{product_id} } @{ lps() }],
	['LP00000101 PROD-1001 60.000 failed', 'LP00000102 PROD-1001 48.000 pending', 'LP00000103 PROD-2040 12.500 pending',
	 'LP00000104 PROD-3300, pallet 1.000 pending'],
	'the quantity changed; columns the file leaves out or leaves empty and the QA status are kept');
is($t->one(q{SELECT quantity FROM license_plates WHERE barcode = 'LP00000199' AND org_id = ?}, $org), '5.000',
	'the new barcode is a new LP');

my %changed_at = map { $_->{inspection_number} => $_->{changed_at} } @{ $t->rows(q{SELECT inspection_number,
	changed_at::text AS changed_at FROM quality_inspections WHERE org_id = ?}, $org) };
$r = run('import', 'inspections', write_file('insp2.csv',
	"inspection_number,LP Barcode,status\nQI-2026-11-30-0001,LP00000102,pending\nQI-2026-11-30-0002,LP00000199,in_progress\n"
	. "QI-2026-11-30-0005,LP00000199,\n"), '--org', 'Import Warehouse');
is($r->{exit}, 0, 'an inspections file touching a completed inspection is still applied: exit 0') or diag $r->{err};
like($r->{err}, qr/insp2\.csv:2: skipped: inspection QI-2026-11-30-0001 is completed/, 'the completed one is reported as skipped, with its line');
like($r->{err}, qr/1 inserted, 1 updated, 0 unchanged, 1 skipped/, 'and counted');
my %ins = map { $_->{inspection_number} => $_ } @{ inspections() };
is("$ins{'QI-2026-11-30-0001'}{lp_barcode} $ins{'QI-2026-11-30-0001'}{status} $ins{'QI-2026-11-30-0001'}{result}",
	'LP00000101 completed fail', 'the completed inspection keeps its LP, status and result');
is("$ins{'QI-2026-11-30-0002'}{lp_barcode} $ins{'QI-2026-11-30-0002'}{status}", 'LP00000199 in_progress',
	'an open inspection moves to the named LP and status');
is($ins{'QI-2026-11-30-0005'}{status}, 'pending', 'a new inspection is pending');
my $moved = sub { $t->one(q{SELECT changed_at > ?::timestamptz FROM quality_inspections WHERE inspection_number = ?},
	$changed_at{$_[0]}, $_[0]) ? 'moved on' : 'kept' };
is($moved->('QI-2026-11-30-0002'), 'moved on',
	'the changed inspection has a new change time, so the scanner app\'s next refresh of open inspections gets it');
is($moved->('QI-2026-11-30-0001'), 'kept', 'the skipped completed one keeps its change time');
is($moved->('QI-2026-11-30-0003'), 'kept', 'and so does one the file does not name');

# ---- a scanner completes an inspection while the import waits for it ------------------------------

{
	my $race = $t->make_inspection($org, $t->one(q{SELECT id FROM license_plates WHERE barcode = 'LP00000103' AND org_id = ?}, $org),
		inspection_number => 'QI-RACE-1', status => 'in_progress');
	my $scanner = $t->connect_as('postgres');
	$scanner->begin_work;
	$scanner->do(q{UPDATE quality_inspections SET status = 'completed', result = 'pass', completed_at = now()
		WHERE id = ?}, undef, $race);
	my $file = write_file('race.csv', "inspection_number,lp_barcode,status\nQI-RACE-1,LP00000102,pending\n");
	my $err = $t->dir . '/race.err';
	my $pid = fork // die "fork: $!";
	if (!$pid) {
		open STDIN, '<', '/dev/null';
		open STDERR, '>', $err or POSIX::_exit(126);
		exec(ScanQA::Test::_bin(), '-c', $t->conf_path, 'import', 'inspections', $file,
			'--org', 'Import Warehouse') or POSIX::_exit(127);
	}
	# The import's UPDATE reaches the row the scanner holds, and waits for it.
	my $waiting = 0;
	for (1 .. 600) {
		$waiting = $t->one(q{SELECT count(*) FROM pg_stat_activity
			WHERE application_name = 'scanqa-import' AND wait_event_type = 'Lock'}) and last;
		select undef, undef, undef, 0.1;
	}
	is($waiting, 1, 'the import waits for the inspection a scanner is completing');
	$scanner->commit;
	waitpid $pid, 0;
	is($? >> 8, 0, 'once the completion commits, the import finishes: exit 0');
	my $said = do { local $/; open my $fh, '<', $err or die "$err: $!"; <$fh> };
	like($said, qr/race\.csv:2: skipped: inspection QI-RACE-1 is completed/, 'and reports the row as skipped');
	like($said, qr/0 inserted, 0 updated, 0 unchanged, 1 skipped/, '... and counts it so');
	is_deeply($t->row(q{SELECT i.status, i.result, l.barcode FROM quality_inspections i JOIN license_plates l ON l.id = i.lp_id
		WHERE i.id = ?}, $race), { status => 'completed', result => 'pass', barcode => 'LP00000103' },
		"the scanner's completion stands: the import changed neither its status nor its LP");
	$scanner->disconnect;
}

# ---- bad files change nothing ------------------------------------------------------------------------

my $before = $t->db_fingerprint;
my $bad = write_file('bad.csv', join '',
	"barcode,product_id,quantity\n",
	"LP-OK-1,P1,3\n",                  # line 2: fine
	",P2,3\n",                         # line 3: empty barcode
	"LP-OK-2,P3,-1\n",                 # line 4: negative quantity
	"LP-OK-1,P4,1\n",                  # line 5: repeats line 2
	"LP-OK-3,P5\n",                    # line 6: too few fields
	"LP-OK-4,\xff\xfe,1\n",            # line 7: not UTF-8
	"\"LP-OK-5\nsecond line\",P6,1.2345\n",   # lines 8-9: a quoted newline, too many decimals
	"LP-OK-6,P7,12\n");                # line 10: fine
$r = run('import', 'lps', $bad, '--org', 'Import Warehouse');
is($r->{exit}, 1, 'a file with bad rows: exit 1');
my @lines = grep { /^\Q$bad\E:\d+: / } split /\n/, $r->{err};
is_deeply([map { s/^\Q$bad\E://r } @lines], [
	'3: barcode: is empty',
	'4: quantity: must be a number from 0 to 99999999999.999 with at most 3 decimals, not "-1"',
	'5: barcode: repeats the barcode of line 2',
	'6: has 2 field(s), the header has 3',
	'7: is not valid UTF-8 text',
	'8: barcode: contains a control character',
	'8: quantity: must be a number from 0 to 99999999999.999 with at most 3 decimals, not "1.2345"',
], 'every bad row is reported once, in line order, with its line, column and reason') or diag $r->{err};
like($r->{err}, qr/7 problem\(s\).*nothing was imported/, 'it says nothing was imported');
is_deeply($t->db_fingerprint, $before, 'the database is exactly as before (no row, no audit entry)');

for my $c (
	['a header with an unknown column', "barcode,colour\nLP1,red\n", qr/:1: header: unknown column "colour"/],
	['a header without the required column', "product_id\nP1\n", qr/:1: barcode: the header lacks this required column/],
	['a column named twice', "barcode,Barcode\nA,B\n", qr/:1: barcode: appears twice/],
	['an empty file', '', qr/the file is empty/],
	['an unclosed quote', "barcode\n\"LP1\nLP2\n", qr/:2: opens a quoted field that the file never closes/],
) {
	$r = run('import', 'lps', write_file('c.csv', $c->[1]), '--org', 'Import Warehouse');
	is($r->{exit}, 1, "$c->[0]: exit 1");
	like($r->{err}, $c->[2], "... reported");
}
$r = run('import', 'inspections', write_file('i.csv', join '',
	"inspection_number,lp_barcode,status\n",
	"QI-X-1,LP00000102,completed\n",
	"QI-X-2,NOPE,pending\n",
	"QI-X-3,,pending\n",
	"QI-X-4,LP00000102,done\n"), '--org', 'Other Warehouse');
is($r->{exit}, 1, 'bad inspection rows: exit 1');
is_deeply([map { s/^.*?i\.csv://r } grep { /i\.csv:\d/ } split /\n/, $r->{err}], [
	'2: lp_barcode: no license plate of this organization has barcode "LP00000102"',
	'2: status: completed cannot be imported: an inspection is completed on a scanner',
	'3: lp_barcode: no license plate of this organization has barcode "NOPE"',
	'4: lp_barcode: is empty: a new inspection needs the barcode of its license plate',
	'5: lp_barcode: no license plate of this organization has barcode "LP00000102"',
	'5: status: must be pending or in_progress, not "done"',
], "another organization cannot name this one's LPs (row level security), and each bad value is reported")
	or diag $r->{err};
is_deeply($t->db_fingerprint, $before, 'still nothing changed');

# ---- arguments ---------------------------------------------------------------------------------------

is(run('import', 'lps', "$EXAMPLES/lps.csv")->{exit}, 2, 'no --org: exit 2');
is(run('import', 'lps', '--org', 'Import Warehouse')->{exit}, 2, 'no file: exit 2');
is(run('import', 'lps', $t->dir . '/missing.csv', '--org', 'Import Warehouse')->{exit}, 2, 'a file that does not exist: exit 2');
is(run('import', 'pallets', "$EXAMPLES/lps.csv", '--org', 'Import Warehouse')->{exit}, 2, 'an unknown kind: exit 2');
is(run('import', 'lps', "$EXAMPLES/lps.csv", '--org', 'No Such Warehouse')->{exit}, 1, 'an unknown organization: exit 1');
is(run('import', 'lps', "$EXAMPLES/lps.csv", '--org', 'Import Warehouse', '--dry-run')->{exit}, 0, '--dry-run: exit 0');
is_deeply($t->db_fingerprint, $before, '--dry-run changes nothing');

# ---- 100,000 rows, from standard input --------------------------------------------------------------

{
	my $n = 100_000;
	my $big = $t->dir . '/big.csv';
	open my $fh, '>', $big or die "$big: $!";
	print $fh "\xEF\xBB\xBFbarcode,product_id,batch_number,quantity\n";    # a spreadsheet's BOM
	printf $fh "%016d,prod-%d,\"BATCH \"\"%d\"\"\",%d.%03d\n", 5_000_000_000_000_000 + $_, $_ % 500, $_ / 1000, $_ % 997, $_ % 1000
		for 0 .. $n - 1;
	close $fh;
	$r = run({ stdin => $big }, 'import', 'lps', '-', '--org', 'Other Warehouse');
	is($r->{exit}, 0, "a $n-row file through standard input: exit 0") or diag $r->{err};
	diag($r->{err} =~ /(in [\d.]+ s \(\d+ rows\/s\))/ ? "import of $n rows $1" : $r->{err});
	is($t->one(q{SELECT count(*) FROM license_plates WHERE org_id = ? AND barcode LIKE '5%'}, $other), $n,
		"all $n LPs are in the organization");
	my $mismatch = $t->one(q{SELECT count(*) FROM license_plates l, generate_series(0, ? - 1) i
		WHERE l.org_id = ? AND l.barcode = lpad((5000000000000000 + i)::text, 16, '0')
		  AND (l.product_id, l.batch_number, l.quantity)
		      IS DISTINCT FROM ('prod-' || i % 500, 'BATCH "' || i / 1000 || '"', (i % 997) + (i % 1000) / 1000.0)},
		$n, $other);
	is($mismatch, 0, 'every row holds the values of its line');
	is_deeply($t->row(q{SELECT count(*) FILTER (WHERE substr(id::text, 15, 1) <> '7'
			OR substr(id::text, 20, 1) NOT IN ('8', '9', 'a', 'b')) AS not_v7,
		count(*) FILTER (WHERE id <= prev) AS out_of_order
		FROM (SELECT id, lag(id) OVER (ORDER BY barcode) AS prev FROM license_plates
		       WHERE org_id = ? AND barcode LIKE '5%') x}, $other), { not_v7 => 0, out_of_order => 0 },
		'the new LPs have RFC 9562 version 7 ids, ascending in the order of the file');
}

is(join('', grep { /AddressSanitizer|LeakSanitizer|runtime error/ } @ERR), '', 'no command reported a memory error');
$t->stop_nginx;
is($t->stop_daemon, 0, 'the daemon exits cleanly');
is($t->daemon_errors, '', 'the daemon reported no memory errors');
done_testing;
