#!/usr/bin/perl
# admin_users_tokens.t: an operator manages users and tokens with the installed
# command alone: "scanqa user add|deactivate|activate|set-role|list", "scanqa token
# list|revoke" and "scanqa issue-token --qr/--qr-png". Each change shows through
# nginx on the very next request, writes one audit row naming the OS user, and the
# listings never show a token or its hash.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Digest::SHA qw(sha256_hex);
use JSON::PP;
use Test::More;

use ScanQA::Test;

my $t = ScanQA::Test->new(conf => { workers => 2 });
my $QI = '/api/v1/quality/scanner/quick-inspection';
my $OS_USER = getpwuid($<);
my @ERR;    # every command's stderr, checked for sanitizer reports at the end

sub run { my $r = $t->scanqa(@_); push @ERR, $r->{err}; return $r }

# What the scanner sees: 404 means authenticated (no such inspection), 401 refused.
sub answer {
	my ($token) = @_;
	my $r = $t->request(POST => $QI, token => $token, json => {
		inspection_id => '00000000-0000-4000-8000-000000000000', result => 'pass',
		inspection_method => 'scanner' });
	return "$r->{status} " . ($r->{json} && $r->{json}{error} // '');
}

sub audit_rows {
	my ($action, $entity) = @_;
	return $t->rows(q{SELECT entity_type, entity_id, old_value, new_value, metadata
		FROM quality_audit_log WHERE action = ? AND entity_id = ? ORDER BY id}, $action, $entity);
}

my $org = $t->make_org('North Warehouse');
my $other = $t->make_org('South Warehouse');

# ---- user add --------------------------------------------------------------------------

my $r = run(qw(user add --email Ann@North.example --org), 'North Warehouse',
	qw(--role qa_inspector --name), 'Ann Inspector');
is($r->{exit}, 0, 'user add: exit 0') or diag $r->{err};
my $ann = $t->row(q{SELECT id, org_id, role, active, display_name FROM users WHERE email = 'Ann@North.example'});
is_deeply([@$ann{qw(org_id role active display_name)}], [$org, 'qa_inspector', 1, 'Ann Inspector'],
	'user add: the user is in the named organization with the role, active');
my $audit = audit_rows('user_add', $ann->{id});
is(scalar @$audit, 1, 'user add: one audit row');
is(decode_json($audit->[0]{metadata})->{os_user}, $OS_USER, 'the audit row names the OS user who ran it');
is(decode_json($audit->[0]{new_value})->{role}, 'qa_inspector', 'the audit row says what was added');

$r = run(qw(user add --email ann@north.example --org), 'North Warehouse', qw(--role qa_manager));
is($r->{exit}, 1, 'user add of an email taken (in another case): exit 1');
like($r->{err}, qr/exists already/, '... saying the email exists');
$r = run(qw(user add --email bob@x.example --org Nowhere --role qa_inspector));
is($r->{exit}, 1, 'user add to an unknown organization: exit 1');
like($r->{err}, qr/no organization is named "Nowhere"/, '... naming the organization');
is($t->one(q{SELECT count(*) FROM organizations WHERE name = 'Nowhere'}), 0, '... and creates none');
$r = run(qw(user add --email bob@x.example --org Nowhere --role superhero));
is($r->{exit}, 2, 'user add with an unknown role: exit 2');
$r = run(qw(user add --org Nowhere --role qa_inspector));
is($r->{exit}, 2, 'user add without --email: exit 2');
$r = run(qw(user frobnicate));
is($r->{exit}, 2, 'an unknown user verb: exit 2');
$r = run(qw(token revoke --help));
is($r->{exit}, 0, '--help: exit 0');
like($r->{out}, qr/^usage: .*token revoke.*\n.*user add.*import lps\|inspections.*export inspections\|audit/s,
	'--help shows the usage of every operator command');
$r = run(qw(user add --email cy@new.example --org), 'New Site', qw(--role qa_manager --create-org));
is($r->{exit}, 0, 'user add --create-org makes the organization');
is($t->one(q{SELECT count(*) FROM organizations WHERE name = 'New Site'}), 1, '... once');

# ---- issue-token, then the token through nginx ----------------------------------------------

$r = run(qw(issue-token --email ann@north.example --label), 'scanner 7');
is($r->{exit}, 0, 'issue-token for the added user') or diag $r->{err};
my ($tok1) = $r->{out} =~ /^(sqa_\S+)$/m;
ok($tok1, 'issue-token printed the token');
is(answer($tok1), '404 Inspection not found', 'the new token authenticates through nginx');
my $tok1_id = $t->one(q{SELECT id FROM api_tokens WHERE token_sha256 = decode(?, 'hex')}, sha256_hex($tok1));
is(scalar @{ audit_rows('token_issue', $tok1_id) }, 1, 'issuing the token wrote an audit row');

my $tok2 = $t->scanqa(qw(issue-token --email ann@north.example --label), 'scanner 8')->{out} =~ s/\s+//r;
my $tok3 = $t->scanqa(qw(issue-token --email ann@north.example --label), 'scanner 9')->{out} =~ s/\s+//r;
my $bob = $t->make_user($other, 'qa_inspector');
my $other_hash = sha256_hex($bob->{token});

# ---- token list --------------------------------------------------------------------------

$r = run(qw(token list));
is($r->{exit}, 0, 'token list: exit 0');
like($r->{out}, qr/^id\s+user\s+organization\s+label\s+created\s+last_used\s+expires\s+revoked\s+status$/m,
	'token list shows a table with a header');
like($r->{out}, qr/^\Q$tok1_id\E\s+ann\@north\.example\s+North Warehouse\s+scanner 7\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+-\s+-\s+active$/mi,
	'... with id, user, organization, label, created, last used (it was), no expiry, no revocation');
for my $secret ($tok1, $tok2, $bob->{token}) {
	unlike($r->{out} . $r->{err}, qr/\Q$secret\E|\Q@{[sha256_hex($secret)]}\E/i, 'token list never shows a token or its hash');
}
$r = run(qw(token list --org), 'South Warehouse', '--json');
my $list = decode_json($r->{out});
is(scalar @$list, 1, 'token list --org: only that organization\'s tokens');
is_deeply([sort keys %{ $list->[0] }],
	[qw(created_at expires_at id label last_used_at organization revoked_at status user)],
	'token list --json: these fields and no hash');
unlike($r->{out}, qr/\Q$other_hash\E/i, '... and the hash nowhere');
$r = run(qw(token list --json --email ANN@north.example));
is(scalar @{ decode_json($r->{out}) }, 3, 'token list --email: the user\'s three tokens');

# ---- token revoke: the next request is refused -----------------------------------------------

is(answer($tok1), '404 Inspection not found', 'before revocation the token works');
$r = run('token', 'revoke', $tok1_id);
is($r->{exit}, 0, 'token revoke ID: exit 0') or diag $r->{err};
is(answer($tok1), '401 Unauthorized', 'the very next request with the revoked token is refused with 401');
is(answer($tok2), '404 Inspection not found', "the user's other tokens keep working");
$audit = audit_rows('token_revoke', $tok1_id);
is(scalar @$audit, 1, 'the revocation wrote an audit row');
is(decode_json($audit->[0]{metadata})->{os_user}, $OS_USER, '... naming the OS user');
ok(defined $t->one(q{SELECT revoked_at FROM api_tokens WHERE id = ?}, $tok1_id), 'revoked_at is set');
$r = run('token', 'revoke', $tok1_id);
is($r->{exit}, 1, 'revoking it again: exit 1, nothing matches');
$r = run(qw(token list --email ann@north.example));
unlike($r->{out}, qr/\Q$tok1_id\E/, 'token list leaves revoked tokens out');
$r = run(qw(token list --all --email ann@north.example));
like($r->{out}, qr/^\Q$tok1_id\E.*\srevoked$/m, 'token list --all shows it as revoked');

$r = run(qw(token revoke --label), 'scanner 8');
is($r->{exit}, 0, 'token revoke --label: exit 0');
is(answer($tok2), '401 Unauthorized', 'the token with that label is refused on the next request');
is(answer($tok3), '404 Inspection not found', 'a token with another label still works');
is(answer($bob->{token}), '404 Inspection not found', "another organization's token still works");

$r = run(qw(token revoke not-a-uuid));
is($r->{exit}, 2, 'token revoke with a malformed id: exit 2');
$r = run(qw(token revoke));
is($r->{exit}, 2, 'token revoke naming no token: exit 2');
$r = run(qw(token revoke --org), 'North Warehouse');
is($r->{exit}, 2, 'token revoke --org alone (every token of an organization) is refused: exit 2');

# ---- user deactivate / activate / set-role ------------------------------------------------------

$r = run(qw(user deactivate --email ann@north.example));
is($r->{exit}, 0, 'user deactivate: exit 0') or diag $r->{err};
is(answer($tok3), '401 User not found', 'the very next request of a deactivated user: 401 User not found');
$audit = audit_rows('user_deactivate', $ann->{id});
is(scalar @$audit, 1, 'deactivation wrote an audit row');
is_deeply([decode_json($audit->[0]{old_value})->{active}, decode_json($audit->[0]{new_value})->{active}],
	[JSON::PP::true, JSON::PP::false], '... with the old and new state');
$r = run(qw(token list --email ann@north.example));
like($r->{out}, qr/user deactivated$/m, 'token list shows the token as belonging to a deactivated user');

$r = run(qw(user activate ann@north.example));
is($r->{exit}, 0, 'user activate (email as the argument): exit 0');
is(answer($tok3), '404 Inspection not found', 'a reactivated user\'s unrevoked token works again');
is(answer($tok1), '401 Unauthorized', '... but a revoked one stays revoked');

$r = run(qw(user set-role --email ann@north.example --role viewer));
is($r->{exit}, 0, 'user set-role: exit 0');
is(answer($tok3), '403 Scanner access requires QA Inspector role', 'the next request has the new role: 403');
is(decode_json(audit_rows('user_set_role', $ann->{id})->[0]{new_value})->{role}, 'viewer',
	'set-role wrote an audit row with the new role');
$r = run(qw(user set-role --email ann@north.example --role wizard));
is($r->{exit}, 2, 'set-role to an unknown role: exit 2');
$r = run(qw(user deactivate --email nobody@north.example));
is($r->{exit}, 1, 'deactivating an unknown user: exit 1');

$r = run(qw(user list --org), 'North Warehouse');
like($r->{out}, qr/^ann\@north\.example\s+Ann Inspector\s+North Warehouse\s+viewer\s+active\s/mi,
	'user list shows the user, organization, role and state');

# ---- issue-token --qr and --qr-png ---------------------------------------------------------------

SKIP: {
	skip 'zbarimg (zbar-tools) is not installed', 6 unless -x '/usr/bin/zbarimg';
	my $png = $t->dir . '/token.png';
	$r = run(qw(issue-token --email cy@new.example --qr --qr-png), $png);
	is($r->{exit}, 0, 'issue-token --qr --qr-png: exit 0') or diag $r->{err};
	my ($first, @qr) = split /\n/, $r->{out};
	like($first, qr/^sqa_[A-Za-z0-9_-]{43}$/, 'the token stays alone on the first line');
	is(sprintf('%o', (stat $png)[2] & 07777), '600', 'the PNG is readable by its owner only');
	chomp(my $decoded = `zbarimg --quiet --raw '$png' 2>/dev/null`);
	is($decoded, $first, 'the PNG decodes back to the token');

	# The terminal drawing, turned back into an image: each character cell holds
	# two modules (upper and lower half block), light drawn in the foreground.
	my @bits;
	for my $line (@qr) {
		$line =~ s/\e\[[0-9;]*m//g;
		utf8::decode($line);
		my (@top, @bottom);
		for my $ch (split //, $line) {
			push @top, ($ch eq "\x{2588}" || $ch eq "\x{2580}") ? 0 : 1;
			push @bottom, ($ch eq "\x{2588}" || $ch eq "\x{2584}") ? 0 : 1;
		}
		push @bits, \@top, \@bottom;
	}
	my $scale = 6;
	my $w = @{ $bits[0] } * $scale;
	my $pbm = $t->dir . '/terminal.pbm';
	open my $fh, '>', $pbm or die "$pbm: $!";
	print $fh "P1\n$w " . (@bits * $scale) . "\n";
	for my $row (@bits) {
		my $line = join(' ', map { ($_) x $scale } @$row) . "\n";
		print $fh $line x $scale;
	}
	close $fh;
	chomp($decoded = `zbarimg --quiet --raw '$pbm' 2>/dev/null`);
	is($decoded, $first, 'the QR code drawn in the terminal decodes back to the token');
	is(answer($first), '404 Inspection not found', 'the token of the QR code authenticates');
}

$r = run(qw(issue-token --email cy@new.example --qr-png /nonexistent/dir/x.png));
is($r->{exit}, 1, 'issue-token with an unwritable --qr-png: exit 1');
is($t->one(q{SELECT count(*) FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE u.email = 'cy@new.example'}),
	-x '/usr/bin/zbarimg' ? 1 : 0, '... and no token was issued');

# ---- the end ---------------------------------------------------------------------------------------

is(join('', grep { /AddressSanitizer|LeakSanitizer|runtime error/ } @ERR), '',
	'no command reported a memory error');
$t->stop_nginx;
is($t->stop_daemon, 0, 'the daemon exits cleanly');
is($t->daemon_errors, '', 'the daemon reported no memory errors');
is(join('', $t->nginx_alerts), '', 'nginx logged no alerts');
done_testing;
