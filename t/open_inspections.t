#!/usr/bin/perl
# open_inspections.t: GET /api/quality/inspections/open, the listing from which the
# scanner app keeps its offline copy of the organization's open inspections: the
# first copy (open only), keyset pages, the incremental refresh with since (changes,
# completions included), validation, who may ask, and that it only ever reads.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;

use ScanQA::Test;

my $OPEN   = '/api/quality/inspections/open';
my $ISO_MS = qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

my $t = ScanQA::Test->new(conf => { workers => 2 });

my $org       = $t->make_org('Acme Warehouse');
my $other_org = $t->make_org('Rival Warehouse');
my $inspector = $t->make_user($org, 'qa_inspector');
my $manager   = $t->make_user($org, 'qa_manager');
my $viewer    = $t->make_user($org, 'viewer');
my $rival     = $t->make_user($other_org, 'qa_inspector');

sub get {
	my ($user, $query) = @_;
	return $t->request(GET => $OPEN . (defined $query ? "?$query" : ''), token => $user && $user->{token});
}

# Moves every inspection's change time a day back, as if nothing changed since
# (the trigger would overwrite an UPDATE of changed_at, so it is bypassed).
sub age_all_changes {
	my $dbh = $t->dbh;
	$dbh->do('SET session_replication_role = replica');
	$dbh->do(q{UPDATE quality_inspections SET changed_at = now() - interval '1 day'});
	$dbh->do('RESET session_replication_role');
}

my $lp1 = $t->make_lp($org, barcode => 'LP00000001', product_id => 'prod-uuid',
	batch_number => 'BATCH-2025-001', quantity => 100);
my $lp2 = $t->make_lp($org, barcode => 'LP00000002', quantity => 2.5);
my $lp3 = $t->make_lp($org, barcode => 'LP00000003');
my $ins1 = $t->make_inspection($org, $lp1, status => 'in_progress', inspection_number => 'INS-1');
my $ins2 = $t->make_inspection($org, $lp2, status => 'pending', inspection_number => 'INS-2');
my $ins3 = $t->make_inspection($org, $lp3, status => 'pending', inspection_number => 'INS-3');
my $done = $t->make_inspection($org, $lp3, status => 'completed', result => 'pass',
	completed_at => '2025-01-22T10:00:00Z', inspection_number => 'INS-DONE');
my $rival_lp = $t->make_lp($other_org, barcode => 'LP00000001');
my $rival_ins = $t->make_inspection($other_org, $rival_lp, inspection_number => 'RIVAL-1');

# ---- the first copy ------------------------------------------------------------------

my $first;
{
	my $r = get($inspector);
	is($r->{status}, 200, 'an inspector lists the open inspections') or diag($r->{body});
	like($r->{headers}{'cache-control'} // '', qr/no-store/, 'the answer is not cached');
	my $j = $first = $r->{json} // {};
	is_deeply([sort keys %$j], [qw(inspections next_cursor refresh_since)], 'keys: inspections, next_cursor, refresh_since');
	is_deeply([sort map { $_->{id} } @{ $j->{inspections} }], [sort $ins1, $ins2, $ins3],
		'the three open inspections of the organization, not the completed one, not the other organization\'s');
	is($j->{next_cursor}, undef, 'one page: next_cursor is null');
	like($j->{refresh_since} // '', $ISO_MS, 'refresh_since is ISO 8601 UTC with milliseconds');
	my ($one) = grep { $_->{id} eq $ins1 } @{ $j->{inspections} };
	is_deeply($one && [sort keys %$one],
		[qw(changed_at created_at id inspection_number lp lp_id result status)], 'an inspection\'s keys');
	is_deeply($one->{lp}, { id => $lp1, barcode => 'LP00000001', product_id => 'prod-uuid',
		batch_number => 'BATCH-2025-001', quantity => 100, qa_status => 'pending' },
		'each inspection carries its LP (barcode, product, batch, quantity, qa_status)');
	is($one->{status}, 'in_progress', 'with its status');
	is($one->{inspection_number}, 'INS-1', 'and its number');
	like($one->{changed_at} // '', $ISO_MS, 'changed_at is ISO 8601');
	my @changed = map { $_->{changed_at} } @{ $j->{inspections} };
	is_deeply(\@changed, [sort @changed], 'oldest change first');
}

{
	my $r = get($rival);
	is($r->{status}, 200, 'the other organization lists its own');
	is_deeply([map { $_->{id} } @{ $r->{json}{inspections} }], [$rival_ins], 'and sees only its own inspection');
	is(get($manager)->{status}, 200, 'a qa_manager may list them too');
}

# ---- keyset pages ----------------------------------------------------------------------

{
	my $p1 = get($inspector, 'limit=2');
	is($p1->{status}, 200, 'limit=2 answers 200');
	is(scalar @{ $p1->{json}{inspections} }, 2, 'the first page has two inspections');
	like($p1->{json}{next_cursor} // '', qr/^\d+_[0-9a-f-]{36}$/, 'and a next_cursor');
	my $p2 = get($inspector, "limit=2&after=$p1->{json}{next_cursor}");
	is($p2->{status}, 200, 'the next page answers 200') or diag($p2->{body});
	is(scalar @{ $p2->{json}{inspections} }, 1, 'the last page has the third');
	is($p2->{json}{next_cursor}, undef, 'and no next_cursor');
	is_deeply([sort map { $_->{id} } @{ $p1->{json}{inspections} }, @{ $p2->{json}{inspections} }],
		[sort $ins1, $ins2, $ins3], 'the pages together hold each open inspection once');
}

# ---- incremental refresh ---------------------------------------------------------------

{
	age_all_changes();
	my $since = $t->one(q{SELECT to_char(now() AT TIME ZONE 'UTC' - interval '1 minute', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')});
	my $r = get($inspector, "since=$since");
	is($r->{status}, 200, 'a refresh with since answers 200') or diag($r->{body});
	is_deeply($r->{json}{inspections}, [], 'nothing changed since: an empty list');

	my $q = $t->request(POST => '/api/v1/quality/scanner/quick-inspection', token => $inspector->{token},
		json => { inspection_id => $ins2, result => 'pass', inspection_method => 'scanner' });
	is($q->{status}, 200, 'an inspection is completed meanwhile');
	my $new = $t->make_inspection($org, $lp1, status => 'pending', inspection_number => 'INS-NEW');

	(my $encoded = $since) =~ s/:/%3A/g;
	$r = get($inspector, "since=$encoded");
	is($r->{status}, 200, 'a percent-encoded since is decoded');
	my %got = map { $_->{id} => $_ } @{ $r->{json}{inspections} };
	is_deeply([sort keys %got], [sort $ins2, $new], 'the refresh holds exactly the completed and the new inspection');
	is($got{$ins2}{status}, 'completed', 'the completed one says completed, so the device drops it');
	is($got{$ins2}{result}, 'pass', 'with its result');
	is($got{$ins2}{lp}{qa_status}, 'passed', 'and its LP\'s new status');
	is($got{$new}{status}, 'pending', 'the new one is pending');

	my $full = get($inspector);
	is_deeply([sort map { $_->{id} } @{ $full->{json}{inspections} }], [sort $ins1, $ins3, $new],
		'a full listing no longer holds the completed inspection');
	is($t->one('SELECT count(*) FROM quality_inspections WHERE id = ? AND changed_at > now() - interval \'1 hour\'', $ins2), 1,
		'completing an inspection moved its changed_at (database)');
}

# ---- validation ------------------------------------------------------------------------

for my $case (
	[ 'since=yesterday',             'since', 'Invalid datetime' ],
	[ 'since=2025-01-23T10:00:00+01:00', 'since', 'Invalid datetime' ],
	[ 'since=%ZZ',                   'since', 'Invalid datetime' ],
	[ 'limit=0',                     'limit', 'Expected an integer from 1 to 1000' ],
	[ 'limit=1001',                  'limit', 'Expected an integer from 1 to 1000' ],
	[ 'limit=-1',                    'limit', 'Expected an integer from 1 to 1000' ],
	[ 'limit=ten',                   'limit', 'Expected an integer from 1 to 1000' ],
	[ 'after=123',                   'after', 'Invalid cursor' ],
	[ "after=x_$ins1",               'after', 'Invalid cursor' ],
) {
	my ($query, $field, $message) = @$case;
	my $r = get($inspector, $query);
	is($r->{status}, 400, "?$query is refused with 400");
	is_deeply($r->{json}, { error => 'Validation failed', details => [{ field => $field, message => $message }] },
		"?$query: $field: $message") or diag($r->{body});
}
is(get($inspector, 'limit=1000&unknown=1')->{status}, 200, 'limit=1000 and an unknown parameter are fine');

# ---- who may ask ----------------------------------------------------------------------

is(get(undef)->{status}, 401, 'without a token: 401');
{
	my $r = get($viewer);
	is($r->{status}, 403, 'a user without a scanner role: 403');
	is_deeply($r->{json}, { error => 'Scanner access requires QA Inspector role' }, 'with the scanner-role error');
}
is($t->request(POST => $OPEN, token => $inspector->{token}, json => {})->{status}, 405, 'POST: 405');

# ---- it only reads ---------------------------------------------------------------------

{
	my $before = $t->db_fingerprint;
	get($inspector) for 1 .. 3;
	get($inspector, 'limit=1');
	is_deeply($t->db_fingerprint, $before, 'listing changes nothing in the database');
}

unlike($t->daemon_log, qr/^ERROR /m, 'the daemon logged no errors');
is($t->stop_daemon, 0, 'the daemon exits cleanly on SIGTERM');
is($t->daemon_errors, '', 'the daemon reported no memory errors');
is($t->nginx_alerts, '', 'nginx logged no alerts');

done_testing();
