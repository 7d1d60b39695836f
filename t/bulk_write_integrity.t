#!/usr/bin/perl
# bulk_write_integrity.t: what migration 009 (sql/009_bulk_import.sql) changed so that
# "scanqa import" writes without a trigger call per row keeps every guarantee the
# per-row checks gave: an LP names an existing organization (a check per statement
# now), never moves to another one, an organization with LPs or inspections cannot
# be deleted, an inspection's organization is its LP's (the composite foreign key,
# which made the inspection's own key to organizations redundant), and every
# insert or update of an inspection still leaves changed_at = now().

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;

use ScanQA::Test;

my $t = ScanQA::Test->new(start => 0);
my $su = $t->dbh;
my $owner = $t->connect_as('scanqa_owner');

my $org = $t->make_org('Integrity Warehouse');
my $other = $t->make_org('Integrity Other');
my $lp = $t->make_lp($org, barcode => 'LP-INT-1');
my $NOWHERE = '00000000-0000-4000-8000-00000000dead';

# SQLSTATE of what $code raises, or 'ok'; the message goes to $LAST_ERROR.
my $LAST_ERROR = '';
sub state_of {
	my ($dbh, $code) = @_;
	my $ok = eval { $code->(); 1 };
	my $state = $ok ? 'ok' : $dbh->state;
	$LAST_ERROR = $ok ? '' : $dbh->errstr;
	$dbh->rollback unless $dbh->{AutoCommit};
	return $state;
}

# As the owner, under row level security, as "scanqa import" writes.
sub as_owner {
	my ($org_id, $sql, @bind) = @_;
	return state_of($owner, sub {
		$owner->begin_work;
		$owner->do(q{SELECT set_config('scanqa.org_id', ?, true)}, undef, $org_id);
		$owner->do($sql, undef, @bind);
		$owner->commit;
	});
}

# ---- license_plates.org_id ---------------------------------------------------------------

is(as_owner($NOWHERE, q{INSERT INTO license_plates (org_id, barcode) VALUES (?, 'LP-NOWHERE')}, $NOWHERE),
	'23503', 'the owner cannot add an LP to an organization that does not exist (foreign_key_violation)');
is(state_of($su, sub { $su->do(q{INSERT INTO license_plates (org_id, barcode)
	SELECT ?::uuid, 'LP-MANY-' || i FROM generate_series(1, 3) i UNION ALL SELECT ?::uuid, 'LP-BAD'}, undef, $org, $NOWHERE) }),
	'23503', 'nor can a superuser, even with one bad row among good ones');
is($t->one(q{SELECT count(*) FROM license_plates WHERE barcode LIKE 'LP-MANY-%' OR barcode IN ('LP-NOWHERE', 'LP-BAD')}), 0,
	'and none of those rows was written');
like($LAST_ERROR, qr/violates foreign key constraint "license_plates_org_id_fkey".*\Q$NOWHERE\E/s,
	'the error reads like the foreign key it replaces, naming the missing organization');
is(as_owner($org, q{INSERT INTO license_plates (org_id, barcode) SELECT ?::uuid, 'LP-OK-' || i FROM generate_series(1, 3) i}, $org),
	'ok', 'LPs of an existing organization are added');

is(state_of($su, sub { $su->do(q{UPDATE license_plates SET org_id = ? WHERE id = ?}, undef, $other, $lp) }),
	'23503', 'an LP never moves to another organization, not even by a superuser');
is(as_owner($org, q{UPDATE license_plates SET org_id = ? WHERE id = ?}, $other, $lp), '42501',
	'and row level security refuses it to the owner');
is($t->one(q{SELECT org_id FROM license_plates WHERE id = ?}, $lp), $org, 'the LP stays where it was');
is(state_of($su, sub { $su->do(q{UPDATE license_plates SET quantity = 3, org_id = org_id WHERE id = ?}, undef, $lp) }),
	'ok', 'an update that leaves org_id as it is goes through');

my $bare = $t->make_org('Integrity Bare');
$t->make_lp($bare, barcode => 'LP-BARE');
is(state_of($su, sub { $su->do(q{DELETE FROM organizations WHERE id = ?}, undef, $bare) }), '23503',
	'an organization that still has an LP cannot be deleted');
$su->do(q{DELETE FROM license_plates WHERE org_id = ?}, undef, $bare);
is(state_of($su, sub { $su->do(q{DELETE FROM organizations WHERE id = ?}, undef, $bare) }), 'ok',
	'once its LPs are gone, it can');

# ---- quality_inspections.org_id: implied by (lp_id, org_id) -----------------------------------

is(state_of($su, sub { $su->do(q{INSERT INTO quality_inspections (org_id, lp_id, inspection_number)
	VALUES (?, ?, 'QI-CROSS')}, undef, $other, $lp) }), '23503',
	"an inspection cannot sit in another organization than its LP's");
is(state_of($su, sub { $su->do(q{INSERT INTO quality_inspections (org_id, lp_id, inspection_number)
	VALUES (?, ?, 'QI-NOWHERE')}, undef, $NOWHERE, $lp) }), '23503',
	'nor in an organization that does not exist');

# ---- changed_at ------------------------------------------------------------------------------

my $ins = $t->make_inspection($org, $lp, inspection_number => 'QI-TOUCH', status => 'pending');
my $changed = sub { $t->one(q{SELECT changed_at = now() FROM quality_inspections WHERE id = ?}, $ins) ? 1 : 0 };
$su->do(q{SET session_replication_role = replica});
$su->do(q{UPDATE quality_inspections SET changed_at = now() - interval '1 day' WHERE id = ?}, undef, $ins);
$su->do(q{RESET session_replication_role});
$su->begin_work;
$su->do(q{UPDATE quality_inspections SET status = 'in_progress' WHERE id = ?}, undef, $ins);
is($changed->(), 1, 'an update that does not name changed_at sets it to now()');
$su->rollback;
$su->begin_work;
$su->do(q{UPDATE quality_inspections SET status = 'in_progress', changed_at = '2000-01-01' WHERE id = ?}, undef, $ins);
is($changed->(), 1, 'an update that sets it to another time still leaves now()');
$su->rollback;
$su->begin_work;
my $new = $t->one(q{INSERT INTO quality_inspections (org_id, lp_id, inspection_number, changed_at)
	VALUES (?, ?, 'QI-TOUCH-2', '2000-01-01') RETURNING changed_at = now()}, $org, $lp);
ok($new, 'an insert naming another changed_at gets now()');
$su->rollback;

done_testing;
