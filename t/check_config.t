#!/usr/bin/perl
# check_config.t: "scanqa check-config" prints the settings the daemon would use
# with every password masked, whatever form the conninfo gives it in (libpq's own
# parser reads it), so its output can be pasted into a ticket. It needs no daemon,
# nginx or database.

use strict;
use warnings;

use File::Temp qw(tempdir);
use FindBin;
use Test::More;

my $ROOT = "$FindBin::Bin/..";
my $BIN = $ENV{SCANQA_BIN} // "$ROOT/scanqa";
my $DIR = tempdir('scanqa-check-config-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{SCANQA_KEEP});

# check_config($conninfo): the line check-config prints for conninfo, and its exit status.
sub check_config {
	my ($conninfo) = @_;
	my $conf = "$DIR/scanqa.conf";
	open(my $fh, '>', $conf) or die "$conf: $!";
	print $fh "conninfo = $conninfo\n";
	close $fh;
	my $out = qx{"$BIN" -c "$conf" check-config 2>&1};
	my ($line) = $out =~ /^(conninfo = .*)$/m;
	return ($line // $out, $? >> 8);
}

# Each form a password can take, the secret it hides, and what must stay visible.
my @forms = (
	[ 'keyword', 'host=db1 dbname=scanqa user=u password=secret1',
	  'secret1', qr/^(?=.*host=db1\b)(?=.*dbname=scanqa\b)/ ],
	[ 'keyword, quoted with a space', "host=db1 password='two words' user=u",
	  'words', qr/^(?=.*user=u\b)(?=.*host=db1\b)/ ],
	[ 'keyword, quoted with an escaped quote', q{password='it\'s' host=db1},
	  "it", qr/host=db1/ ],
	[ 'keyword, with spaces around =', 'password = secret2 host=db1',
	  'secret2', qr/host=db1/ ],
	[ 'URI user:password@host', 'postgresql://u:secret3@db1:5433/scanqa',
	  'secret3', qr/^(?=.*user=u\b)(?=.*dbname=scanqa\b)(?=.*host=db1\b)(?=.*port=5433\b)/ ],
	[ 'URI, percent-encoded password', 'postgres://u:se%63ret4@db1/scanqa',
	  'ret4', qr/host=db1/ ],
	[ 'URI, password in the query', 'postgresql://db1/scanqa?user=u&password=secret5',
	  'secret5', qr/host=db1/ ],
	[ 'sslpassword (the client key\'s passphrase)', 'host=db1 sslpassword=secret6',
	  'secret6', qr/host=db1/ ],
);
for my $f (@forms) {
	my ($name, $conninfo, $secret, $visible) = @$f;
	my ($line, $status) = check_config($conninfo);
	is($status, 0, "$name: check-config accepts the config");
	unlike($line, qr/\Q$secret\E/, "$name: the password is not printed");
	like($line, qr/password=\*\*\*/, "$name: the password is shown as ***");
	like($line, $visible, "$name: the other settings are printed");
}

my ($line) = check_config('host=db1 dbname=scanqa user=u');
is($line, 'conninfo = user=u dbname=scanqa host=db1', 'a conninfo without password is printed as libpq reads it');
($line) = check_config("host=db1 application_name='a b\\\\c'");
like($line, qr/application_name='a b\\\\c'/, 'a value with a space or backslash is printed quoted, as conninfo quotes it');
for my $bad ("host=db1 password='sekrit9", 'host=db1 password sekrit9') {
	my ($out, $status) = check_config($bad);
	isnt($status, 0, "an invalid conninfo ($bad) is refused");
	unlike($out, qr/sekrit9/, "the refusal of an invalid conninfo ($bad) does not quote its password");
}
done_testing();
