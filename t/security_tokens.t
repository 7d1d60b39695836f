#!/usr/bin/perl
# security_tokens.t: API tokens. Only their SHA-256 is stored (the database holds
# no plaintext token anywhere, also after "scanqa issue-token"); no C code
# compares a secret with a non-constant-time comparison; expiry, revocation and a
# deactivated user take effect on the very next request, in every worker; and no
# log (the daemon's at debug level, nginx's access and error logs, PostgreSQL's)
# ever holds a token or its hash, with one documented exception: nginx at
# error_log level info quotes a header line it refuses.
#
# It runs its own PostgreSQL cluster (private_pg), so that the server log it
# reads holds only this test's statements.

use strict;
use warnings;

use File::Glob qw(bsd_glob);
use FindBin;
use lib "$FindBin::Bin/lib";
use Digest::SHA qw(sha256_hex);
use Test::More;
use Time::HiRes qw(sleep time);

use ScanQA::Test;

my $WORKERS = 3;
my $t = ScanQA::Test->new(private_pg => 1, conf => { workers => $WORKERS, log_level => 'debug' });
my $QI = '/api/v1/quality/scanner/quick-inspection';

my $org = $t->make_org('Token Org');
my @USED;    # every token string this test sends, for the log check at the end
my @ISSUED;  # the real tokens among them, whose plaintext the database must not hold
sub used { push @USED, @_; return $_[0] }
sub issued { push @ISSUED, @_; return used(@_) }

# Enough requests that every worker serves some: no worker may answer from memory.
my $ROUNDS = 4 * $WORKERS;

sub statuses {
	my ($token) = @_;
	my %s;
	$s{ $t->request(POST => $QI, token => $token, json => {
		inspection_id => '00000000-0000-4000-8000-000000000000', result => 'pass',
		inspection_method => 'scanner' })->{status} }++ for 1 .. $ROUNDS;
	return join ' ', map { "$_ x$s{$_}" } sort keys %s;
}
# An authenticated caller gets 404 for an unknown inspection; a refused one 401.
my $OK = "404 x$ROUNDS";
my $REFUSED = "401 x$ROUNDS";

# ---- storage -------------------------------------------------------------------------

my $cols = $t->rows(q{SELECT column_name, data_type FROM information_schema.columns
	WHERE table_schema = 'public' AND table_name = 'api_tokens' ORDER BY ordinal_position});
my %type = map { $_->{column_name} => $_->{data_type} } @$cols;
is($type{token_sha256}, 'bytea', 'api_tokens.token_sha256 is bytea');
like($t->one(q{SELECT pg_get_constraintdef(oid) FROM pg_constraint
	WHERE conrelid = 'api_tokens'::regclass AND contype = 'c' AND pg_get_constraintdef(oid) LIKE '%token_sha256%'}),
	qr/octet_length\(token_sha256\) = 32/, 'token_sha256 must be exactly 32 bytes: a SHA-256, not a token');
my @text = grep { $type{$_} =~ /char|text/ } sort keys %type;
is("@text", 'label', 'the only text column of api_tokens is the label');

my $user = $t->make_user($org, 'qa_inspector');
issued($user->{token});
is(statuses($user->{token}), $OK, 'a fresh token authenticates in every worker');
is($t->one(q{SELECT encode(token_sha256, 'hex') FROM api_tokens WHERE user_id = ?}, $user->{id}),
	sha256_hex($user->{token}), 'what is stored is the SHA-256 of the token');

# scanqa issue-token, as an operator would run it.
my $issued;
{
	my ($out, $err) = ("$t->{dir}/issue-token.out", "$t->{dir}/issue-token.err");
	my $bin = $ENV{SCANQA_BIN} // ScanQA::Test::root() . '/scanqa';
	system('sh', '-c', 'exec "$0" -c "$1" issue-token --create-user --email issued@token.example '
		. '--org "Token Org 2" --role qa_inspector --label probe >"$2" 2>"$3"', $bin, $t->conf_path, $out, $err);
	is($?, 0, 'scanqa issue-token succeeds');
	open my $fh, '<', $out or die "$out: $!";
	chomp($issued = <$fh> // '');
	like($issued, qr/^sqa_[A-Za-z0-9_-]{43}$/, 'issue-token prints one token of 32 random bytes');
	issued($issued);
	open $fh, '<', $err or die "$err: $!";
	my $said = do { local $/; <$fh> };
	unlike($said, qr/\Q$issued\E/, 'issue-token does not repeat the token on stderr');
	is($t->one(q{SELECT count(*) FROM api_tokens WHERE token_sha256 = decode(?, 'hex')}, sha256_hex($issued)), 1,
		'issue-token stored the SHA-256');
	is(statuses($issued), $OK, 'the issued token authenticates');
}

# ---- expiry, revocation, deactivation: the next request ------------------------------

{
	my $u = $t->make_user($org, 'qa_inspector');
	my $tok = issued($u->{token});
	is(statuses($tok), $OK, 'before it expires the token works in every worker');
	$t->dbh->do(q{UPDATE api_tokens SET expires_at = now() - interval '1 millisecond' WHERE user_id = ?}, undef, $u->{id});
	is(statuses($tok), $REFUSED, 'the very next requests after expiry are refused, in every worker');
}

{
	# Expiry by the clock alone, nothing written.
	my $u = $t->make_user($org, 'qa_inspector');
	my $tok = issued($t->make_token($u->{id}));
	my $expires = $t->one(q{UPDATE api_tokens SET expires_at = now() + interval '1.5 seconds'
		WHERE token_sha256 = decode(?, 'hex') RETURNING extract(epoch FROM expires_at)}, sha256_hex($tok));
	is(statuses($tok), $OK, 'a token expiring in 1.5 s works now');
	sleep 0.05 while time < $expires + 0.05;
	is(statuses($tok), $REFUSED, 'once its expires_at has passed, the next requests are refused');
}

{
	my $u = $t->make_user($org, 'qa_inspector');
	my $tok = issued($u->{token});
	is(statuses($tok), $OK, 'before revocation the token works in every worker');
	$t->dbh->do(q{UPDATE api_tokens SET revoked_at = now() WHERE user_id = ?}, undef, $u->{id});
	is(statuses($tok), $REFUSED, 'the very next requests after revocation are refused, in every worker');
	my $other = issued($t->make_token($u->{id}));
	is(statuses($other), $OK, "revoking one token leaves the user's other tokens working");
}

{
	my $u = $t->make_user($org, 'qa_inspector');
	my $tok = issued($u->{token});
	is(statuses($tok), $OK, 'before deactivation the token works');
	$t->dbh->do(q{UPDATE users SET active = false WHERE id = ?}, undef, $u->{id});
	is(statuses($tok), $REFUSED, 'the very next requests after the user is deactivated are refused');
	my $r = $t->request(POST => $QI, token => $tok, json => {});
	is_deeply($r->{json}, { error => 'User not found' }, 'a deactivated user gets "User not found"');
}

# Tokens that never were, or that only look like the stored value.
for my $c (
	['an unknown token', 'sqa_' . ('A' x 43)],
	['the stored SHA-256 in hex, sent as the token', sha256_hex($user->{token})],
	['the token with its last character changed', substr($user->{token}, 0, -1) . (substr($user->{token}, -1) eq 'a' ? 'b' : 'a')],
	['the token with one character more', $user->{token} . 'a'],
	['the token with one character less', substr($user->{token}, 0, -1)],
	['the token in upper case', uc $user->{token}],
) {
	is(statuses(used($c->[1])), $REFUSED, "$c->[0] is refused");
}

# ---- the plaintext is nowhere in the database --------------------------------------------

{
	my $tables = $t->dbh->selectcol_arrayref(q{SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')});
	my $dump = join "\n", map { @{ $t->dbh->selectcol_arrayref(qq{SELECT to_jsonb(t)::text FROM public."$_" t}) } } @$tables;
	my @found = grep { index($dump, $_) >= 0 } @ISSUED;
	is(scalar @found, 0, 'none of the ' . scalar(@ISSUED) . ' tokens issued appears in any row of any table ('
		. scalar(@$tables) . ' tables)');
}

# ---- constant time where compared in C --------------------------------------------------

# The daemon compares no token in C: it hashes the presented token and PostgreSQL
# finds the hash by its unique index. A C comparison of a secret would have to
# use CRYPTO_memcmp; this keeps anyone from adding a plain one.
{
	my @hits;
	for my $file (bsd_glob(ScanQA::Test::root() . '/src/*.c')) {    # the clone path may hold spaces
		open my $fh, '<', $file or die "$file: $!";
		while (my $line = <$fh>) {
			(my $code = $line) =~ s/"(?:[^"\\]|\\.)*"/""/g;    # string literals do not count
			next unless $code =~ /\b(?:mem|str|strn|strcase|strncase)cmp\s*\(/;
			next unless $code =~ /tok|hash|sha|secret|digest|password/i;
			next if $code =~ /CRYPTO_memcmp/;
			push @hits, "$file:$.: $line";
		}
	}
	is(join('', @hits), '', 'no C code compares a token, hash or secret with memcmp/strcmp (CRYPTO_memcmp only)');
}

# ---- logs -----------------------------------------------------------------------------

# One token is sent twice in one request: nginx refuses that (400) and, at
# error_log level info, quotes the refused header line. It is the only token
# allowed to appear, and only there.
my $dup = issued($t->make_token($user->{id}));
{
	my $r = $t->raw_request("GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
		. "Authorization: Bearer $dup\r\nAuthorization: Bearer $dup\r\n\r\n");
	is($r->{status}, 400, 'two Authorization headers: nginx answers 400');
}

# The status page (loopback only) shows what the workers are doing: no token either.
{
	my $json = $t->request(GET => '/scanqa/status')->{body};
	my $prom = $t->request(GET => '/scanqa/status?format=prometheus')->{body};
	ok(length $json && length $prom, 'the status page answers, as JSON and as Prometheus text');
	my @leaks = grep { index("$json$prom", $_) >= 0 || index("$json$prom", sha256_hex($_)) >= 0 } @USED;
	is(scalar @leaks, 0, 'the status page shows none of the tokens used, nor their hashes');
}

$t->stop_nginx;
is($t->stop_daemon, 0, 'the daemon exits cleanly on SIGTERM');
is($t->daemon_errors, '', 'the daemon reported no memory errors');

my %logs = (
	'daemon.log (log_level debug)' => $t->daemon_log,
	'nginx access log' => $t->nginx_access_log,
	'PostgreSQL server log' => $t->pg_log,
);
my @nginx = split /^/, $t->nginx_error_log;
$logs{'nginx error log, levels notice and above'} = join '', grep { !/\[(?:info|debug)\]/ } @nginx;
my $nginx_info = join '', grep { /\[(?:info|debug)\]/ } @nginx;

ok(length $logs{'daemon.log (log_level debug)'} > 0 && length $logs{'nginx access log'} > 0
	&& length $logs{'PostgreSQL server log'} > 0, 'the logs to search are there');
for my $name (sort keys %logs) {
	my @leaks = grep { index($logs{$name}, $_) >= 0 || index($logs{$name}, sha256_hex($_)) >= 0 } @USED;
	is(scalar @leaks, 0, "the $name holds none of the " . scalar(@USED) . ' tokens used, nor their hashes');
}
my @info_leaks = grep { index($nginx_info, $_) >= 0 || index($nginx_info, sha256_hex($_)) >= 0 } @USED;
is_deeply(\@info_leaks, [$dup], 'at level info nginx quoted only the token it refused in a duplicate header '
	. '(the snippet says to keep error_log at notice or above)');
is($t->nginx_alerts, '', 'nginx logged no alerts');

done_testing;
