#!/usr/bin/perl
# admin_export.t: "scanqa export inspections|audit" gives a QA manager the results:
# completed inspections of one organization in a time range, as RFC 4180 CSV (CRLF,
# quoting, UTF-8, ISO 8601 UTC times) or JSON lines, compared row by row with the
# database; the audit trail likewise; exit status 0/1/2.

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/lib";
use Encode qw(decode_utf8);
use JSON::PP;
use Test::More;

use ScanQA::Test;

my $t = ScanQA::Test->new(conf => { workers => 1 });
my @ERR;
sub run { my $r = $t->scanqa(@_); push @ERR, $r->{err}; return $r }

my $org = $t->make_org('Export Warehouse');
my $other = $t->make_org('Elsewhere');
my $inspector = $t->make_user($org, 'qa_inspector', display_name => 'Zoë "Z" Inspector, QA');
my $stranger = $t->make_user($other, 'qa_inspector');

# Inspections completed through the API, with notes a spreadsheet must keep intact.
my @notes = ('plain', 'comma, inside', 'a "quoted" word', "two\nlines", "crlf\r\nline", 'émigré ✓ 検査',
	'back\\slash', '=SUM(A1)', '', undef);
my $n = 0;
for my $note (@notes) {
	my $lp = $t->make_lp($org, barcode => sprintf('LPX%05d', ++$n), product_id => "P$n", batch_number => "B,$n");
	my $ins = $t->make_inspection($org, $lp, inspection_number => "QI-EXP-$n");
	my $r = $t->request(POST => '/api/v1/quality/scanner/quick-inspection', token => $inspector->{token}, json => {
		inspection_id => $ins, result => $n % 3 ? 'pass' : 'fail', inspection_method => 'scanner',
		scanner_device_id => "ZEBRA-$n", defects_found => $n % 3 ? 0 : $n,
		($n % 4 ? (scanner_location => "Dock $n") : ()),
		(defined $note ? (result_notes => $note) : ()) });
	is($r->{status}, 200, "inspection $n completed through the API") or diag $r->{body};
}
# Not exported: pending, completed before the range, another organization's.
$t->make_inspection($org, $t->make_lp($org), inspection_number => 'QI-OPEN');
my $old = $t->make_inspection($org, $t->make_lp($org), inspection_number => 'QI-OLD');
$t->dbh->do(q{UPDATE quality_inspections SET status = 'completed', result = 'pass',
	completed_at = '2020-01-01T00:00:00Z' WHERE id = ?}, undef, $old);
my $foreign = $t->make_inspection($other, $t->make_lp($other), inspection_number => 'QI-FOREIGN');
is($t->request(POST => '/api/v1/quality/scanner/quick-inspection', token => $stranger->{token}, json => {
	inspection_id => $foreign, result => 'pass', inspection_method => 'scanner' })->{status}, 200,
	"another organization's inspection is completed too");

my $since = $t->one(q{SELECT to_char((now() - interval '1 day') AT TIME ZONE 'UTC', 'YYYY-MM-DD')});

# The database's view of what the export must hold, in completion order.
my $expected = $t->rows(q{
	SELECT i.inspection_number, i.id::text AS inspection_id, l.barcode AS lp_barcode, l.product_id,
	       l.batch_number, i.result, i.result_notes, i.defects_found::text AS defects_found,
	       i.inspection_method, i.scanner_device_id AS device_id, i.scanner_location AS location,
	       u.email AS inspector_email, u.display_name AS inspector_name,
	       to_char(i.completed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS completed_at
	  FROM quality_inspections i JOIN license_plates l ON l.id = i.lp_id
	  LEFT JOIN users u ON u.id = i.completed_by
	 WHERE i.org_id = ? AND i.status = 'completed' AND i.completed_at >= ?::date
	 ORDER BY i.completed_at, i.id}, $org, $since);
is(scalar @$expected, scalar @notes, 'the database holds the ten completed inspections of the range');
is(scalar(grep { defined $_->{result_notes} && length $_->{result_notes} } @$expected), 8, '... eight of them with notes');
my @COLS = qw(inspection_number inspection_id lp_barcode product_id batch_number result result_notes
	defects_found inspection_method device_id location inspector_email inspector_name completed_at);

# RFC 4180: records end with CRLF; a quoted field may hold commas, CRLF, LF and "".
# Returns the records as arrays; an unquoted empty field is undef (NULL).
sub parse_csv {
	my ($text) = @_;
	my (@records, @fields);
	pos($text) = 0;
	while (pos($text) < length $text) {
		if ($text =~ /\G"((?:[^"]|"")*)"/gc) {
			push @fields, $1 =~ s/""/"/gr;
		} elsif ($text =~ /\G([^",\r\n]*)/gc) {
			push @fields, length $1 ? $1 : undef;
		}
		if ($text =~ /\G,/gc) {
			next;
		} elsif ($text =~ /\G\r\n/gc) {
			push @records, [@fields];
			@fields = ();
		} else {
			die 'not RFC 4180 CSV at byte ' . pos($text) . ': ' . substr($text, pos($text), 20);
		}
	}
	return \@records;
}

# ---- CSV ---------------------------------------------------------------------------------------------

my $r = run(qw(export inspections --org), 'Export Warehouse', '--since', $since);
is($r->{exit}, 0, 'export inspections: exit 0') or diag $r->{err};
like($r->{err}, qr/export inspections: 10 row\(s\)/, 'it says how many rows it wrote');
my $csv = decode_utf8($r->{out});
like($csv, qr/\r\n\z/, 'the CSV ends with CRLF');
unlike($csv =~ s/"(?:[^"]|"")*"//gr, qr/(?<!\r)\n/, 'outside quoted fields every line ends with CRLF');
my $records = eval { parse_csv($csv) };
ok($records, 'the output is RFC 4180 CSV') or diag $@;
is_deeply($records->[0], \@COLS, 'the header names the columns');
my @got = map { my $rec = $_; +{ map { ($COLS[$_] => $rec->[$_]) } 0 .. $#COLS } } @$records[1 .. $#$records];
# An empty note is stored as '' or NULL; both export as an empty field.
$_->{result_notes} = undef for grep { defined $_->{result_notes} && $_->{result_notes} eq '' } @got, @$expected;
is_deeply(\@got, $expected, 'the CSV holds exactly the database rows of the range, field by field, in completion order');
like($got[0]{completed_at}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'times are ISO 8601 in UTC');
ok((grep { defined $_->{result_notes} && $_->{result_notes} eq 'émigré ✓ 検査' } @got), 'UTF-8 text comes out intact');

$r = run(qw(export inspections --org), 'Export Warehouse', '--since', $since, '--until', $since);
is($r->{out}, join(',', @COLS) . "\r\n", 'an empty range gives the header line alone');

# ---- JSON lines --------------------------------------------------------------------------------------

$r = run(qw(export inspections --format jsonl --org), 'Export Warehouse', '--since', $since);
is($r->{exit}, 0, 'export --format jsonl: exit 0');
my @lines = split /\n/, $r->{out};
my @json = map { JSON::PP->new->utf8->decode($_) } @lines;
$_->{defects_found} = defined $_->{defects_found} ? "$_->{defects_found}" : undef for @json;
$_->{result_notes} = undef for grep { defined $_->{result_notes} && $_->{result_notes} eq '' } @json;
is_deeply(\@json, $expected, 'one JSON object a line, each equal to its database row');

# ---- the audit trail ---------------------------------------------------------------------------------

$r = run(qw(export audit --org), 'Export Warehouse', '--since', $since, '--format', 'jsonl');
is($r->{exit}, 0, 'export audit: exit 0');
my @audit = map { decode_json($_) } split /\n/, $r->{out};
my $db_audit = $t->rows(q{SELECT id, action, entity_id FROM quality_audit_log WHERE org_id = ? ORDER BY id}, $org);
is_deeply([map { [$_->{id}, $_->{action}, $_->{entity_id}] } @audit],
	[map { [$_->{id}, $_->{action}, $_->{entity_id}] } @$db_audit],
	"the audit export holds the organization's audit rows, in order, and no other organization's");
is(ref $audit[0]{new_value}, 'HASH', 'old and new values are JSON objects, not strings');
$r = run(qw(export audit --org), 'Export Warehouse', '--since', $since);
my $audit_csv = parse_csv(decode_utf8($r->{out}));
is(scalar @$audit_csv - 1, scalar @$db_audit, 'export audit as CSV: one record a row');

# ---- --output and exit codes -------------------------------------------------------------------------

my $file = $t->dir . '/week.csv';
$r = run(qw(export inspections --org), 'Export Warehouse', '--since', $since, '--output', $file);
is($r->{exit}, 0, '--output FILE: exit 0');
is(decode_utf8(do { local $/; open my $fh, '<:raw', $file or die; <$fh> }), $csv, 'the file holds the same CSV');

is(run(qw(export inspections --org), 'Export Warehouse')->{exit}, 2, 'no --since: exit 2');
is(run(qw(export inspections --org), 'Export Warehouse', qw(--since yesterday))->{exit}, 2, 'an unreadable date: exit 2');
is(run(qw(export inspections --org), 'Export Warehouse', qw(--since 2026-02-30))->{exit}, 2, 'a date that does not exist: exit 2');
is(run(qw(export inspections --org), 'Export Warehouse', '--since', $since, qw(--format xlsx))->{exit}, 2, 'an unknown format: exit 2');
is(run(qw(export results --org), 'Export Warehouse', '--since', $since)->{exit}, 2, 'an unknown export: exit 2');
is(run(qw(export inspections --org Nowhere --since), $since)->{exit}, 1, 'an unknown organization: exit 1');

is(join('', grep { /AddressSanitizer|LeakSanitizer|runtime error/ } @ERR), '', 'no command reported a memory error');
$t->stop_nginx;
is($t->stop_daemon, 0, 'the daemon exits cleanly');
is($t->daemon_errors, '', 'the daemon reported no memory errors');
done_testing;
