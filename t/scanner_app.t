#!/usr/bin/perl
# scanner_app.t: the scanner app (web/, served at /scanner/) in real Chromium
# against the real nginx, daemon and PostgreSQL, read like an inspector's day:
# each step is what a person does, then what they see, then what the database
# holds. Sign-in, a wedge scan and Pass, Fail with notes and defects, an unknown
# barcode and an already completed inspection, offline work that survives a
# reload and a killed tab and syncs when the network is back, a sync answer that
# is lost, a refused action in "needs attention", a scan session changed by
# another client meanwhile (the 412 path), sign-out with unsynced work, a
# revoked token, and the 360x640 layout. No step asserts timing.
#
# SCANQA_SCREENSHOTS=DIR saves the main screens as PNG files into DIR (the
# README's doc/screenshots/ come from here).

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP;
use Test::More;

use ScanQA::Test;
use ScanQA::Browser;

my $DEMO_ORG  = '00000000-0000-4000-8000-000000000001';
my $INSPECTOR = '00000000-0000-4000-8000-000000000101';
my $INS1      = '550e8400-e29b-41d4-a716-446655440001';   # LP00000001
my $INS2      = '550e8400-e29b-41d4-a716-446655440002';   # LP00000002
my $QI        = '/api/v1/quality/scanner/quick-inspection';
my $UUID      = qr/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
my $SHOTS     = $ENV{SCANQA_SCREENSHOTS};

my $t = ScanQA::Test->new(conf => { workers => 2 });
$t->load_demo;
my $other = $t->make_user($DEMO_ORG, 'qa_manager');   # "another device" using the API

# More LPs of the demo organization, each with an open inspection.
my %lp;
for my $code (qw(LPFAIL01 LPRACE01 LPLOST01 LPGONE01 LPKEPT01 LPLOCK01)) {
	my $id = $t->make_lp($DEMO_ORG, barcode => $code, product_id => 'prod-test', batch_number => 'BATCH-T', quantity => 5);
	$lp{$code} = { id => $id, ins => $t->make_inspection($DEMO_ORG, $id, inspection_number => "INS-$code") };
}

my $b = ScanQA::Browser->new($t);

sub see { my ($sel, $text) = @_; return $b->call(waitText => sel => $sel, text => $text) }
sub outcome { return $b->call(text => sel => '#outcome') }
sub shot {
	my ($name) = @_;
	$b->call(screenshot => path => "$SHOTS/$name.png") if $SHOTS;
}
sub audit_rows {
	my ($ins) = @_;
	return $t->rows(q{SELECT action, metadata FROM quality_audit_log
		WHERE entity_id = ? AND action = 'scanner_complete' ORDER BY id}, $ins);
}
sub inspection { return $t->row('SELECT * FROM quality_inspections WHERE id = ?', $_[0]) }
sub lp_status { return $t->one('SELECT qa_status FROM license_plates WHERE id = ?', $_[0]) }
sub queued_actions {
	return $b->call(evalAsync => js => q{
		const db = await new Promise((ok, ko) => { const r = indexedDB.open('scanqa'); r.onsuccess = () => ok(r.result); r.onerror = ko; });
		const all = await new Promise((ok, ko) => { const r = db.transaction('queue').objectStore('queue').getAll(); r.onsuccess = () => ok(r.result); r.onerror = ko; });
		db.close();
		return all.map((e) => e.action);
	});
}
sub copy_has {
	my ($barcode) = @_;
	return $b->call(waitFor => js => qq{(async () => {
		const db = await new Promise((ok, ko) => { const r = indexedDB.open('scanqa'); r.onsuccess = () => ok(r.result); r.onerror = ko; });
		const n = await new Promise((ok, ko) => { const r = db.transaction('inspections').objectStore('inspections').index('barcode').count('$barcode'); r.onsuccess = () => ok(r.result); r.onerror = ko; });
		db.close();
		return n > 0;
	})()});
}
# The screen that shows (its section is not hidden; it may still be empty).
sub on_screen { my ($name) = @_; return $b->call(eval => js => qq{!document.getElementById('screen-$name').hidden}) }
sub wait_screen { my ($name) = @_; return $b->call(waitFor => js => qq{!document.getElementById('screen-$name').hidden}) }
# Offline, the inspector scans barcode (resolved from the offline copy) and
# presses Pass, which is queued.
sub pass_offline {
	my ($barcode) = @_;
	$b->call(scan => text => $barcode);
	see('#outcome', 'offline');
	$b->call(click => sel => '#pass');
	return see('#outcome', 'Queued');
}
sub go_offline {
	$b->call(offline => value => 1);
	return see('#net', 'Offline');
}
sub badge_is { my ($n) = @_; return $b->call(waitFor => js => qq{document.getElementById('queue-badge').textContent === '$n'}) }

# ---- the app is served ------------------------------------------------------------------

{
	my $r = $t->request(GET => '/scanner/');
	is($r->{status}, 200, 'GET /scanner/ serves the app');
	like($r->{headers}{'content-type'} // '', qr{^text/html}, 'as HTML');
	my $csp = $r->{headers}{'content-security-policy'} // '';
	like($csp, qr/script-src 'self'/, 'with a Content-Security-Policy that allows only its own scripts');
	unlike($csp, qr/unsafe-inline|unsafe-eval/, 'and no inline script or eval');
	like($csp, qr/connect-src 'self'/, 'and API calls only to its own origin');
	like($r->{headers}{'cache-control'} // '', qr/no-cache/, 'the shell is revalidated on every start (no-cache)');
	unlike($r->{body}, qr/<script(?![^>]*\bsrc=)[^>]*>/, 'the page has no inline script');
	my $js = $t->request(GET => '/scanner/js/app.js');
	like($js->{headers}{'content-type'} // '', qr{^text/javascript}, 'modules are served as JavaScript');
	my $v = $t->request(GET => '/scanner/vendor/idb-8.0.4/index.js');
	is($v->{status}, 200, 'the vendored idb is served');
	like($v->{headers}{'cache-control'} // '', qr/immutable/, 'a versioned vendor file is cached for good');
	is($t->request(GET => '/scanner')->{status}, 301, '/scanner redirects to /scanner/');
	is($t->request(GET => '/scanner/nothing-here.js')->{status}, 404, 'an unknown file is 404');
	like($t->request(GET => '/api/quality/inspections/open', token => $other->{token})->{headers}{'cache-control'} // '',
		qr/no-store/, 'the API is no-store');
}

# ---- sign-in ------------------------------------------------------------------------

$b->call(goto => path => '/scanner/');
$b->call('ready');
ok(on_screen('signin'), 'a new device opens on the sign-in screen');
is($b->call('focused'), 'token', 'with the focus in the token field');
shot('signin');

$b->call(scan => sel => '#token', text => 'not-a-token');
like(see('#signin-message', 'not accepted'), qr/not accepted/, 'an unknown token is refused in plain words');
ok(on_screen('signin'), 'and the inspector stays on sign-in');

$b->call(scan => sel => '#token', text => 'demo-viewer');
like(see('#signin-message', 'no scanner access'), qr/QA Inspector role/, 'a user without a scanner role is told so');

{
	my $before = $t->one(q{SELECT last_used_at FROM api_tokens WHERE id = '00000000-0000-4000-8000-000000001101'});
	# A scan engine reading the token's QR code types it and ends with Tab.
	$b->call(scan => sel => '#token', text => " demo-inspector ", key => 'Tab');
	wait_screen('inspect');
	pass('demo-inspector signs in with a scanned token (Tab suffix and spaces trimmed)');
	is($b->call('focused'), 'scan', 'the scan input has the focus');
	unlike($b->call(eval => js => 'location.href'), qr/demo-inspector/, 'the token is not in the URL');
	is($b->call(eval => js => q{document.getElementById('token').value}), '', 'nor left in the page');
	ok(defined $t->one(q{SELECT last_used_at FROM api_tokens WHERE id = '00000000-0000-4000-8000-000000001101'}),
		'the database saw the token used (last_used_at)') or diag("before: " . ($before // 'null'));
}

# ---- a wedge scan, Pass -----------------------------------------------------------------------

$b->call(scan => text => 'LP00000001');
see('#outcome', 'Pass or fail');
is($b->call(text => sel => '#lp-barcode'), 'LP00000001', 'scanning LP00000001 shows the LP');
is($b->call(text => sel => '#lp-product'), 'prod-uuid', 'its product');
is($b->call(text => sel => '#lp-batch'), 'BATCH-2025-001', 'its batch');
is($b->call(text => sel => '#lp-quantity'), '100', 'its quantity');
is($b->call(text => sel => '#lp-status'), 'Pending', 'its QA status');
is($b->call(text => sel => '#inspection-number'), 'INS-INC-2025-00001', 'its pending inspection');
is($b->call(text => sel => '#inspection-status'), 'In progress', 'and that inspection\'s status');
is(inspection($INS1)->{status}, 'in_progress', 'looking changes nothing (database)');
shot('inspect');

$b->call(click => sel => '#pass');
like(see('#outcome', 'Passed'), qr/^Passed: LP00000001 is now passed\.$/, 'Pass shows "Passed" and the LP\'s new status');
is($b->call(text => sel => '#lp-status'), 'Passed', 'the LP card says Passed');
shot('passed');
{
	my $i = inspection($INS1);
	is($i->{status}, 'completed', 'the inspection is completed (database)');
	is($i->{result}, 'pass', 'with result pass');
	is($i->{inspection_method}, 'scanner', 'by the scanner method');
	like($i->{scanner_device_id} // '', qr/^WEB-[0-9A-F]{8}$/, 'with this device\'s id');
	is($i->{completed_by}, $INSPECTOR, 'by the demo inspector');
	is(lp_status('550e8400-e29b-41d4-a716-446655440010'), 'passed', 'LP00000001 is passed (database)');
	my $a = audit_rows($INS1);
	is(scalar @$a, 1, 'one scanner_complete audit row');
	my $m = decode_json($a->[0]{metadata} // '{}');
	ok(JSON::PP::is_bool($m->{offline_queued}) && !$m->{offline_queued}, 'its metadata says offline_queued: false');
	is($m->{sync_delay_seconds}, 0, 'and sync_delay_seconds: 0');
}

$b->call(scan => text => 'LP00000001');
like(see('#outcome', 'no pending inspection'), qr/no pending inspection\. QA status: Passed/,
	'scanning it again says there is no pending inspection');
ok(!$b->call(visible => sel => '#pass'), 'and offers no Pass button');

# ---- Fail with notes and defects ---------------------------------------------------------

$b->call(scan => text => '  LPFAIL01  ', key => 'Tab');
see('#outcome', 'Pass or fail');
is($b->call(text => sel => '#lp-barcode'), 'LPFAIL01', 'a scan ended by Tab with spaces around it finds LPFAIL01');
$b->call(click => sel => '#fail');
$b->call(waitVisible => sel => '#fail-form');
shot('fail-form');
$b->call(fill => sel => '#fail-notes', value => 'Wrap torn; 2 cartons crushed');
$b->call(fill => sel => '#fail-defects', value => '1001');
$b->call(click => sel => '#fail-submit');
like(see('#fail-error', '0 to 1000'), qr/whole number from 0 to 1000/, 'defects over 1000 are refused in the form');
is(inspection($lp{LPFAIL01}{ins})->{status}, 'in_progress', 'and nothing is sent (database)');
is($b->call(eval => js => q{document.getElementById('fail-notes').maxLength}), 2000, 'notes are limited to 2000 characters');
$b->call(fill => sel => '#fail-defects', value => '2');
$b->call(click => sel => '#fail-submit');
like(see('#outcome', 'Failed'), qr/^Failed: LPFAIL01 is now failed\.$/, 'Fail shows "Failed" and the LP\'s new status');
{
	my $i = inspection($lp{LPFAIL01}{ins});
	is($i->{result}, 'fail', 'the inspection failed (database)');
	is($i->{result_notes}, 'Wrap torn; 2 cartons crushed', 'with the notes');
	is($i->{defects_found}, 2, 'and the defects count');
	is(lp_status($lp{LPFAIL01}{id}), 'failed', 'the LP is failed (database)');
	is(scalar @{ audit_rows($lp{LPFAIL01}{ins}) }, 1, 'one audit row');
}

# ---- an unknown barcode, an already completed inspection ---------------------------------------

{
	my $before = $t->db_fingerprint(org => $DEMO_ORG);
	$b->call(scan => text => 'NOPE-404');
	like(see('#outcome', 'no license plate'), qr/NOPE-404: no license plate with this barcode/,
		'an unknown barcode says so in plain words');
	is($b->call(eval => js => q{document.getElementById('outcome').dataset.kind}), 'error', 'as an error');
	ok(!$b->call(visible => sel => '#lp-card'), 'with no LP card');
	is_deeply($t->db_fingerprint(org => $DEMO_ORG), $before, 'nothing changed in the database');
	shot('unknown');
}

$b->call(scan => text => 'LPRACE01');
see('#outcome', 'Pass or fail');
{
	my $r = $t->request(POST => $QI, token => $other->{token},
		json => { inspection_id => $lp{LPRACE01}{ins}, result => 'fail', inspection_method => 'scanner' });
	is($r->{status}, 200, 'meanwhile another device completes LPRACE01 as fail');
}
$b->call(click => sel => '#pass');
like(see('#outcome', 'already completed'), qr/This inspection was already completed/,
	'Pass on an already completed inspection says so');
is(inspection($lp{LPRACE01}{ins})->{result}, 'fail', 'the other device\'s result stands (database)');
is(scalar @{ audit_rows($lp{LPRACE01}{ins}) }, 1, 'and there is one audit row, the other device\'s');

# ---- offline: scan, Pass, reload, kill the tab, back online -----------------------------------

copy_has('LP00000002');
pass('the offline copy holds LP00000002\'s open inspection');
$b->call(offline => value => 1);
see('#net', 'Offline');
pass('the network drops: the header says Offline');
$b->call(scan => text => 'LP00000002');
like(see('#outcome', 'offline'), qr/LP00000002: offline/, 'LP00000002 still resolves, from the offline copy');
is($b->call(text => sel => '#inspection-number'), 'INS-INC-2025-00002', 'with its inspection');
ok($b->call(visible => sel => '#lp-source'), 'marked "From the offline copy"');
$b->call(click => sel => '#pass');
like(see('#outcome', 'Queued'), qr/^Queued: Pass LP00000002\. It will sync/, 'Pass is queued at once');
badge_is(1);
pass('the badge shows 1 waiting');
shot('queued');
my ($action) = @{ queued_actions() };
like($action->{id} // '', $UUID, 'the queued action has a random UUID');
is($action->{type}, 'quick_inspection', 'type quick_inspection');
like($action->{timestamp} // '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'an ISO 8601 UTC timestamp');
is_deeply([sort keys %{ $action->{payload} }], [qw(inspection_id inspection_method result scanner_device_id)],
	'and the quick inspection as its payload');
is($action->{payload}{inspection_id}, $INS2, 'for LP00000002\'s inspection');
is(inspection($INS2)->{status}, 'in_progress', 'nothing reached the server (database)');

$b->call('reload');
$b->call('ready');
ok(on_screen('inspect'), 'a reload while offline starts the app from its cache, signed in');
badge_is(1);
pass('and the queued action is still there');
$b->call('killTab');
$b->call(goto => path => '/scanner/');
$b->call('ready');
badge_is(1);
pass('so it is after the tab was killed and opened again');
is(queued_actions()->[0]{id}, $action->{id}, 'the same action');
is(inspection($INS2)->{status}, 'in_progress', 'still nothing on the server (database)');

$b->call(offline => value => 0);
see('#net', 'Online');
badge_is(0);
pass('back online, the queue syncs and the badge shows 0');
$b->call(click => sel => '#tabs button[data-screen="queue"]');
like(see('#queue-summary', 'Nothing waiting'), qr/everything is synced/, 'the queue screen says everything is synced');
shot('queue-synced');
{
	my $i = inspection($INS2);
	is($i->{status}, 'completed', 'LP00000002\'s inspection is completed (database)');
	is($i->{result}, 'pass', 'as a pass');
	my $q = $t->row(q{SELECT sync_status, to_char(created_at_local AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS local,
		floor(extract(epoch FROM synced_at - created_at_local))::int AS delay
		FROM scanner_offline_queue WHERE action_payload->>'id' = ?}, $action->{id});
	is($q->{sync_status}, 'synced', 'the queue row of the action says synced');
	is($q->{local}, $action->{timestamp}, 'with the device\'s timestamp');
	is($t->one(q{SELECT to_char(completed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') FROM quality_inspections WHERE id = ?}, $INS2),
		$action->{timestamp}, 'completed_at is when the inspector pressed Pass');
	is(lp_status('550e8400-e29b-41d4-a716-446655440011'), 'passed', 'LP00000002 is passed');
	my $a = audit_rows($INS2);
	is(scalar @$a, 1, 'one audit row');
	my $m = decode_json($a->[0]{metadata} // '{}');
	ok(JSON::PP::is_bool($m->{offline_queued}) && $m->{offline_queued}, 'saying offline_queued: true');
	is($m->{sync_delay_seconds}, $q->{delay}, "and sync_delay_seconds: the whole seconds from Pass to the sync ($q->{delay})");
}
$b->call(click => sel => '#tabs button[data-screen="inspect"]');

# ---- the sync answer is lost -----------------------------------------------------------------------

copy_has('LPLOST01');
go_offline();
pass_offline('LPLOST01');
my ($lost) = @{ queued_actions() };
$b->call(countRequests => url => '/sync-offline');
$b->call(loseAnswers => url => '/sync-offline', n => 1);
$b->call(offline => value => 0);
badge_is(0);
pass('back online, the queue empties although the first answer was lost');
ok($b->call(requests => url => '/sync-offline') >= 2, 'the batch was sent again');
{
	my $rows = $t->rows(q{SELECT sync_status FROM scanner_offline_queue WHERE action_payload->>'id' = ? ORDER BY synced_at, id}, $lost->{id});
	is_deeply([map { $_->{sync_status} } @$rows], [qw(synced duplicate)],
		'the server applied it once and saw the resend as a duplicate (database)');
	is(scalar @{ audit_rows($lp{LPLOST01}{ins}) }, 1, 'one audit row: applied exactly once');
	is(inspection($lp{LPLOST01}{ins})->{status}, 'completed', 'the inspection is completed');
}

# ---- back online while the sync lock is held --------------------------------------------------

# A pass releases the lock only after it has scheduled its next pass, so the
# "online" event can find the lock held. Here the test holds it for 1 s (as such a
# pass, or another tab, would): the queue must still be sent within seconds, not
# on the 30 s timer (the badge wait is 20 s).
copy_has('LPLOCK01');
go_offline();
pass_offline('LPLOCK01');
badge_is(1);
$b->call(evalAsync => js => q{
	await new Promise((held) => navigator.locks.request('scanqa-sync',
		() => { held(); return new Promise((release) => setTimeout(release, 1000)); }));
	return true;
});
$b->call(offline => value => 0);
badge_is(0);
pass('back online while the sync lock was held, the queue empties without waiting for the 30 s timer');
is(inspection($lp{LPLOCK01}{ins})->{status}, 'completed', 'the inspection is completed (database)');
is(scalar @{ audit_rows($lp{LPLOCK01}{ins}) }, 1, 'one audit row');

# ---- two tabs never send the queue at the same time -------------------------------------------

{
	my @two = map { $t->make_inspection($DEMO_ORG, $t->make_lp($DEMO_ORG, barcode => "LPTAB0$_")) } 1 .. 2;
	my $second = $b->call('openTab');
	$b->call(goto => path => '/scanner/');
	$b->call('ready');
	wait_screen('inspect');
	pass('a second tab opens signed in');
	copy_has('LPTAB02');
	$b->call(tab => index => 0);
	copy_has('LPTAB02');
	$b->call(offline => value => 1);
	for my $i (1, 2) {
		$b->call(tab => index => $i == 1 ? 0 : $second);
		pass_offline("LPTAB0$i");
	}
	badge_is(2);
	pass('each tab queues one Pass; both tabs count 2 waiting');
	# Both tabs see the network come back at the same moment and both try to sync.
	# The first answer to a sync reaches its tab 3 s late: without the lock the second
	# tab would send the same two actions meanwhile (and the server would record
	# them twice, the second time as duplicates).
	$b->call(delayAnswers => url => '/sync-offline', n => 1, ms => 3000);
	$b->call(offline => value => 0);
	badge_is(0);
	$b->call(tab => index => 0);
	badge_is(0);
	pass('the queue empties in both tabs');
	$b->call(loseAnswers => url => '/sync-offline', n => 0);
	is($t->one(q{SELECT count(*) FROM scanner_offline_queue q JOIN quality_inspections i
		ON i.id::text = q.action_payload->'payload'->>'inspection_id' WHERE i.id = ANY(?::uuid[])}, '{' . join(',', @two) . '}'),
		2, 'each action reached the server exactly once: no tab sent a batch the other was sending (Web Locks)');
	is($t->one(q{SELECT count(*) FROM quality_inspections WHERE status = 'completed' AND id = ANY(?::uuid[])}, '{' . join(',', @two) . '}'),
		2, 'both inspections are completed (database)');
}

# ---- a refused action needs attention ---------------------------------------------------------------

copy_has('LPGONE01');
go_offline();
pass_offline('LPGONE01');
my ($gone) = @{ queued_actions() };
is($t->request(POST => $QI, token => $other->{token},
	json => { inspection_id => $lp{LPGONE01}{ins}, result => 'fail', inspection_method => 'scanner' })->{status},
	200, 'meanwhile another device fails LPGONE01');
$b->call(offline => value => 0);
badge_is(0);
$b->call(click => sel => '#tabs button[data-screen="queue"]');
like(see('#attention-list', 'already completed'), qr/Pass LPGONE01.*Inspection already completed/,
	'the refused Pass is listed under "needs attention" with the server\'s error');
ok($b->call(visible => sel => '#attention-badge'), 'the Queue tab shows "!"');
shot('needs-attention');
{
	my $q = $t->row(q{SELECT sync_status, error_message FROM scanner_offline_queue WHERE action_payload->>'id' = ?}, $gone->{id});
	is($q->{sync_status}, 'failed', 'the server recorded it as failed (database)');
	is($q->{error_message}, 'Inspection already completed', 'with that error');
	is(inspection($lp{LPGONE01}{ins})->{result}, 'fail', 'the other device\'s result stands');
}
$b->call(click => sel => "#attention-list button[data-dismiss=\"$gone->{id}\"]");
like(see('#attention-list', 'Nothing needs attention'), qr/Nothing needs attention/, 'Dismiss removes it from the list');
ok(!$b->call(visible => sel => '#attention-badge'), 'and the "!"');

# ---- a scan session, changed by another client meanwhile (412) ----------------------------------------

sub session_row { return $t->row('SELECT * FROM scan_sessions WHERE id = ?', $_[0]) }
sub other_patch {
	my ($id, $json) = @_;
	my $v = $t->one('SELECT version FROM scan_sessions WHERE id = ?', $id);
	my $r = $t->request(PATCH => "/api/v1/scan-sessions/$id", token => $other->{token},
		json => $json, headers => { 'If-Match' => qq{"v$v"} });
	return $r->{status};
}
sub patch_412s { return scalar(() = $t->nginx_access_log =~ m{"PATCH /api/v1/scan-sessions/\d+ HTTP/1\.1" 412}g) }

$b->call(click => sel => '#tabs button[data-screen="session"]');
$b->call(fill => sel => '#session-location', value => 'Dock 4');
$b->call(fill => sel => '#session-expected', value => '3');
$b->call(click => sel => '#session-start-button');
see('#session-state', 'Active');
is($b->call(text => sel => '#session-items'), '0 of 3', 'a new session shows 0 of 3 items');
my $sid = $t->one(q{SELECT id FROM scan_sessions WHERE user_id = ? ORDER BY id DESC LIMIT 1}, $INSPECTOR);
{
	my $s = session_row($sid);
	is($s->{status}, 'ACTIVE', 'the session is ACTIVE (database)');
	is($s->{location}, 'Dock 4', 'at Dock 4');
	is($s->{expected_items}, 3, 'expecting 3 items');
}
$b->call(scan => text => 'LP00000003');
see('#session-last', 'LP00000003: recorded');
is($b->call(text => sel => '#session-items'), '1 of 3', 'a scan counts: 1 of 3');
is($b->call(text => sel => '#session-ok'), '1', 'one successful');
is($b->call(text => sel => '#session-percent'), '33.33%', 'and 33.33%');
$b->call(scan => text => 'NOPE-405');
see('#session-last', 'not found');
is($b->call(text => sel => '#session-failed'), '1', 'an unknown barcode counts as failed');
is($t->one('SELECT count(*) FROM scan_session_scans WHERE session_id = ?', $sid), 2, 'both scans are recorded (database)');
shot('session');

is(other_patch($sid, { notes => 'checked by the manager' }), 200, 'another client changes the session');
my $before412 = patch_412s();
$b->call(click => sel => '#session-pause');
see('#session-state', 'Paused');
pass('Pause still pauses it');
is(session_row($sid)->{status}, 'PAUSED', 'the session is PAUSED (database)');
is(session_row($sid)->{notes}, 'checked by the manager', 'and the other client\'s change is kept');
ok(patch_412s() > $before412, 'the app met a 412 and re-applied its change');
ok($b->call(visible => sel => '#session-resume'), 'a paused session offers Resume');

is(other_patch($sid, { location => 'Dock 5' }), 200, 'another client moves it to Dock 5');
$before412 = patch_412s();
$b->call(click => sel => '#session-resume');
see('#session-state', 'Active');
pass('Resume makes it active again');
is(session_row($sid)->{status}, 'ACTIVE', 'ACTIVE (database)');
is(session_row($sid)->{location}, 'Dock 5', 'at the other client\'s Dock 5');
ok(patch_412s() > $before412, 'again through a 412');

is(other_patch($sid, { notes => 'second check' }), 200, 'another client changes it once more');
$b->call(click => sel => '#session-complete');
see('#session-state', 'Completed');
pass('Complete completes it');
{
	my $s = session_row($sid);
	is($s->{status}, 'COMPLETED', 'COMPLETED (database)');
	ok(defined $s->{ended_at}, 'with an end time');
	is($s->{notes}, 'second check', 'and every change of the other client kept');
	is($t->one(q{SELECT count(*) FROM quality_audit_log WHERE entity_type = 'scan_session' AND entity_id = ?
		AND action = 'session_update' AND user_id = ?}, "$sid", $INSPECTOR), 3,
		'three session_update audit rows by the inspector: pause, resume, complete');
}
ok($b->call(visible => sel => '#session-start'), 'a completed session offers a new one');

# ---- the 360x640 layout ---------------------------------------------------------------------------

for my $screen (qw(inspect session queue)) {
	$b->call(click => sel => "#tabs button[data-screen=\"$screen\"]");
	wait_screen($screen);
	is($b->call(eval => js => 'document.documentElement.scrollWidth - document.documentElement.clientWidth'), 0,
		"$screen screen: no horizontal scrolling at 360x640");
	my $small = $b->call(eval => js => q{[...document.querySelectorAll('button, input, textarea')]
		.filter((e) => e.offsetParent !== null && getComputedStyle(e).visibility !== 'hidden')
		.map((e) => ({ id: e.id || e.textContent.trim(), h: e.getBoundingClientRect().height, w: e.getBoundingClientRect().width }))
		.filter((r) => r.h < 48 || r.w < 48)});
	is_deeply($small, [], "$screen screen: every visible control is at least 48x48 px");
}
is($b->call(eval => js => 'document.documentElement.lang'), 'en', 'the page declares its language');
is_deeply($b->call(eval => js => q{[...document.querySelectorAll('input, textarea')].filter((e) => !e.labels.length).map((e) => e.id)}),
	[], 'every field has a label');

# ---- sign-out with unsynced work, then a revoked token ------------------------------------------

$b->call(click => sel => '#tabs button[data-screen="inspect"]');
copy_has('LPKEPT01');
go_offline();
pass_offline('LPKEPT01');
$b->call(click => sel => '#signout');
like(see('#confirm-text', 'not been synced'), qr/1 action has not been synced yet/, 'Sign out asks first when work is not synced');
shot('signout-confirm');
$b->call(click => sel => '#confirm-no');
ok(on_screen('inspect'), '"No" keeps the inspector signed in');
badge_is(1);

$t->dbh->do(q{UPDATE api_tokens SET revoked_at = now() WHERE id = '00000000-0000-4000-8000-000000001101'});
$b->call(offline => value => 0);
# Whichever tab meets the 401 first, every tab goes back to sign-in.
like(see('#signin-message', 'refused'), qr/refused.*1 queued action is kept/,
	'a revoked token sends the inspector back to sign-in, saying the queue is kept');
$b->call(tab => index => 1);
wait_screen('signin');
pass('the second tab is back on sign-in too');
$b->call(tab => index => 0);
is(scalar @{ queued_actions() }, 1, 'the queued action is still on the device');
is(inspection($lp{LPKEPT01}{ins})->{status}, 'in_progress', 'and was not applied (database)');
is($b->call(eval => js => q{localStorage.getItem('scanqa.token')}), undef, 'the refused token is forgotten');

# A new token for the same inspector: the kept action syncs.
my $new_token = $t->make_token($INSPECTOR);
$b->call(scan => sel => '#token', text => $new_token);
wait_screen('inspect');
badge_is(0);
pass('after signing in again the kept action syncs');
is(inspection($lp{LPKEPT01}{ins})->{status}, 'completed', 'LPKEPT01 is completed (database)');

undef $b;
unlike($t->daemon_log, qr/^ERROR /m, 'the daemon logged no errors');
is($t->stop_daemon, 0, 'the daemon exits cleanly on SIGTERM');
is($t->daemon_errors, '', 'the daemon reported no memory errors');
is($t->nginx_alerts, '', 'nginx logged no alerts');

done_testing();
