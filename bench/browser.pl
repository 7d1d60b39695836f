#!/usr/bin/perl
# bench/browser.pl: the scanner app's own figures, measured in Chromium (Debian's
# chromium through playwright-core, t/browser/driver.mjs) against a private
# stack (ScanQA::Test: PostgreSQL, the daemon, nginx):
#
#   enqueue   the latency of queue.js's enqueue(), the app's durable IndexedDB
#             write of one OfflineAction, over --actions calls (spec target:
#             "Offline queue < 100 ms, local IndexedDB write"): p50, p99, max;
#   sync100   the time from syncNow() with 100 queued quick inspections to an
#             empty queue (one POST /api/v1/quality/scanner/sync-offline batch,
#             then the offline copy's refresh), over --rounds rounds, each on 100
#             fresh inspections (spec target for 50 actions: "Bulk sync < 10 s").
#
# Prints one JSON object on stdout. Figures, never assertions: called by
# script/bench, which reports them.
#
#   perl -I t/lib bench/browser.pl [--actions 1000] [--rounds 5]

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../t/lib";
use Getopt::Long;
use JSON::PP;

use ScanQA::Test;
use ScanQA::Browser;

my ($actions, $rounds) = (1000, 5);
GetOptions('actions=i' => \$actions, 'rounds=i' => \$rounds) or die "usage: $0 [--actions N] [--rounds N]\n";

$ENV{SCANQA_BROWSER_REQUIRED} = 1;
my $t = ScanQA::Test->new(private_pg => 1, conf => { workers => 2 });
my $org = $t->make_org('Bench Warehouse');
my $user = $t->make_user($org, 'qa_inspector');
my @round_ins;
for my $r (1 .. $rounds) {
	push @round_ins, [map { $t->make_inspection($org, $t->make_lp($org)) } 1 .. 100];
}

my $br = ScanQA::Browser->new($t);
$br->call(goto => path => '/scanner/');
$br->call('ready');
my $version = $br->call(eval => js => 'navigator.userAgent.match(/Chrome\/([\d.]+)/)[1]');

# Signed out, the app runs no sync loop: only the measured calls touch the queue.
my $enqueue = $br->call(evalAsync => js => qq{
	const q = await import('/scanner/js/queue.js');
	const times = [];
	for (let i = 0; i < $actions; i++) {
		const payload = { inspection_id: crypto.randomUUID(), result: 'pass', inspection_method: 'scanner' };
		const t0 = performance.now();
		await q.enqueue('quick_inspection', payload, 'bench');
		times.push(performance.now() - t0);
	}
	const all = await q.all();
	await q.remove(all.map((e) => e.seq));
	times.sort((a, b) => a - b);
	const at = (p) => times[Math.min(times.length - 1, Math.ceil(p / 100 * times.length) - 1)];
	return { n: times.length, p50_ms: at(50), p99_ms: at(99), max_ms: times[times.length - 1],
		mean_ms: times.reduce((a, b) => a + b, 0) / times.length };
});

my @sync;
for my $ins (@round_ins) {
	my $ids = encode_json($ins);
	my $ms = $br->call(evalAsync => js => qq{
		const q = await import('/scanner/js/queue.js');
		const s = await import('/scanner/js/sync.js');
		localStorage.setItem('scanqa.token', '$user->{token}');
		for (const id of $ids) await q.enqueue('quick_inspection', { inspection_id: id, result: 'pass', inspection_method: 'scanner' }, 'bench');
		const t0 = performance.now();
		let r;
		do { r = await s.syncNow(); } while (r.busy);
		const ms = performance.now() - t0;
		localStorage.removeItem('scanqa.token');
		if (await q.count() !== 0) throw new Error('the queue did not empty: ' + JSON.stringify(r));
		return ms;
	});
	my $done = $t->one(q{SELECT count(*) FROM quality_inspections WHERE status = 'completed' AND id = ANY(?::uuid[])},
		'{' . join(',', @$ins) . '}');
	die "sync round: $done of 100 inspections completed\n" unless $done == 100;
	push @sync, $ms;
}
my @s = sort { $a <=> $b } @sync;
undef $br;

print JSON::PP->new->canonical->encode({
	chromium => $version,
	enqueue => $enqueue,
	sync100 => { rounds => scalar @s, median_ms => $s[$#s / 2], min_ms => $s[0], max_ms => $s[-1] },
}), "\n";
