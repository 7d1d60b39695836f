#!/usr/bin/perl
# zod_differential.t: the daemon's validation against the reference's own: Zod 3.25
# (zod@3.25.76 from npm, pinned in t/zod/package-lock.json) running the spec's
# schemas under node (t/zod/differential.js). For every generated body (the quick
# inspection body, the whole sync batch, and the test_result payload) the reference
# and the daemon must agree:
#   - a body Zod accepts never gets 400 "Validation failed";
#   - a body Zod rejects gets exactly 400 "Validation failed";
#   - a test_result payload (validated per action, as the spec's sync does) fails
#     its action with "Validation failed: ..." exactly when Zod rejects it.
# script/test installs t/zod/node_modules with "npm ci" before running it.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP;
use Test::More;

use ScanQA::Test;

my $ZOD = "$FindBin::Bin/zod";
my $NODE = $ENV{NODE} // '/usr/bin/node';
BAIL_OUT("node is missing ($NODE): script/test installs it") unless -x $NODE;
BAIL_OUT("$ZOD/node_modules/zod is missing: script/test runs npm ci in t/zod") unless -d "$ZOD/node_modules/zod";

my $t = ScanQA::Test->new(conf => { workers => 2 });
my $org = $t->make_org('Zod Org');
my $inspector = $t->make_user($org, 'qa_inspector');
my $open = $t->make_inspection($org, $t->make_lp($org), status => 'in_progress');
my $completed_before = $t->one(q{SELECT count(*) FROM quality_inspections WHERE status = 'completed'});

local $ENV{SCANQA_URL} = 'http://127.0.0.1:' . $t->port;
local $ENV{SCANQA_TOKEN} = $inspector->{token};
local $ENV{SCANQA_INSPECTION} = $open;
open(my $fh, '-|', $NODE, "$ZOD/differential.js") or die "node: $!";
binmode(Test::More->builder->$_, ':encoding(UTF-8)') for qw(output failure_output todo_output);
my $lines = JSON::PP->new->utf8;    # node writes UTF-8
my $json = JSON::PP->new;           # the daemon's answer, already characters
my (%n, $version);
while (my $line = <$fh>) {
	my $c = $lines->decode($line);
	if (exists $c->{zod_version}) {
		$version = $c->{zod_version};
		next;
	}
	my $body = eval { $json->decode($c->{body}) } // {};
	my $what = "$c->{suite}, $c->{name}";
	$n{"$c->{suite} " . ($c->{zod} ? 'valid' : 'invalid')}++;
	my $why = sub {
		diag("sent: $c->{sent}\nZod: " . ($c->{zod} ? 'valid' : join('; ', @{ $c->{zod_issues} }))
			. "\ndaemon: $c->{status} $c->{body}");
	};
	if ($c->{suite} eq 'test_result') {
		my @errors = map { $_->{error} } @{ ref $body->{errors} eq 'ARRAY' ? $body->{errors} : [] };
		my $invalid = grep { /^Validation failed: / } @errors;
		if ($c->{zod}) {
			ok($c->{status} == 200 && !$invalid, "$what: Zod accepts the payload, so does the daemon") or $why->();
		} else {
			ok($c->{status} == 200 && $invalid, "$what: Zod rejects the payload, its action fails validation")
				or $why->();
		}
		next;
	}
	my $validation_failed = $c->{status} == 400 && ($body->{error} // '') eq 'Validation failed';
	if ($c->{zod}) {
		ok(!$validation_failed && $c->{status} < 500, "$what: Zod accepts it, the daemon does not answer Validation failed")
			or $why->();
	} else {
		ok($validation_failed, "$what: Zod rejects it, the daemon answers 400 Validation failed") or $why->();
	}
}
close $fh;
is($?, 0, 'node ran every case');
like($version // '', qr/^3\.25\./, 'the reference is Zod 3.25 (' . ($version // 'none') . ')');
diag(join ', ', map { "$_: $n{$_}" } sort keys %n);
# Both answers must occur, or the comparison proves nothing.
ok(($n{"$_ valid"} // 0) >= 20 && ($n{"$_ invalid"} // 0) >= 20, "$_: at least 20 Zod-valid and 20 Zod-invalid bodies")
	for qw(quick_inspection sync_batch test_result);
is($t->one(q{SELECT count(*) FROM quality_inspections WHERE status = 'completed'}), $completed_before,
	'no generated body completed an inspection (their ids exist nowhere)');
is($t->one(q{SELECT status FROM quality_inspections WHERE id = ?}, $open), 'in_progress',
	'the inspection the test results went to is still open');
is($t->stop_daemon, 0, 'the daemon exits cleanly');
is($t->daemon_errors, '', 'the daemon reported no memory errors');

done_testing;
