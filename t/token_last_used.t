#!/usr/bin/perl
# token_last_used.t: api_tokens.last_used_at, the coarse "still in use" marker the
# credential check keeps. It is written at most once a minute per token, and never
# makes a request fail or wait: not on a read-only server (here: a read-only
# default for the daemon's role), and not while another transaction holds the
# token's row.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;

use ScanQA::Test;

my $t = ScanQA::Test->new(conf => { workers => 1 });

my $org = $t->make_org('Last Used Org');
my $user = $t->make_user($org, 'qa_inspector');
my $barcode = $t->one('SELECT barcode FROM license_plates WHERE id = ?', $t->make_lp($org));
my $LOOKUP = "/api/warehouse/license-plates/barcode/$barcode";
my $last_used = sub { $t->one(q{SELECT last_used_at::text FROM api_tokens WHERE user_id = ?}, $user->{id}) };
my $age_it = sub { $t->dbh->do(q{UPDATE api_tokens SET last_used_at = now() - interval '2 minutes' WHERE user_id = ?}, undef, $user->{id}) };

is($last_used->(), undef, 'a new token was never used');
is($t->request(GET => $LOOKUP, token => $user->{token})->{status}, 200, 'a look-up with it');
my $first = $last_used->();
ok(defined $first, 'sets last_used_at');
is($t->request(GET => $LOOKUP, token => $user->{token})->{status}, 200, 'a second look-up within the minute');
is($last_used->(), $first, 'leaves it as it was (no write)');
$age_it->();
my $old = $last_used->();
is($t->request(GET => $LOOKUP, token => $user->{token})->{status}, 200, 'a look-up a minute later');
isnt($last_used->(), $old, 'moves it on');

{
	$age_it->();
	$old = $last_used->();
	my $holder = $t->connect_as('postgres');
	$holder->begin_work;
	$holder->do(q{SELECT 1 FROM api_tokens WHERE user_id = ? FOR UPDATE}, undef, $user->{id});
	is($t->request(GET => $LOOKUP, token => $user->{token})->{status}, 200,
		'while another transaction holds the token\'s row, a look-up still answers 200 (it does not wait for the lock)');
	$holder->rollback;
	$holder->disconnect;
	is($last_used->(), $old, '...and leaves last_used_at to a later request');
}

{
	my $db = $t->one('SELECT current_database()');
	$t->dbh->do(qq{ALTER ROLE scanqa_app IN DATABASE "$db" SET default_transaction_read_only = on});
	$t->stop_daemon;
	$t->start_daemon;
	$t->wait_health(200);
	$age_it->();
	$old = $last_used->();
	my $r = $t->request(GET => $LOOKUP, token => $user->{token});
	is($r->{status}, 200, 'on a read-only connection a look-up answers 200') or diag($r->{body});
	is($r->{json}{barcode}, $barcode, '...with the LP');
	is($last_used->(), $old, '...and does not try to write last_used_at');
	$t->dbh->do(qq{ALTER ROLE scanqa_app IN DATABASE "$db" RESET default_transaction_read_only});
}

is($t->stop_daemon, 0, 'the daemon exits cleanly on SIGTERM');
is($t->daemon_errors, '', 'the daemon reported no memory errors');
is($t->nginx_alerts, '', 'nginx logged no alerts');

done_testing;
