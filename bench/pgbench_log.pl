#!/usr/bin/perl
# bench/pgbench_log.pl: latency percentiles of one pgbench run, from its
# per-transaction logs (pgbench -l; the third field is the latency in microseconds).
#
#   bench/pgbench_log.pl LOGFILE...
#
# Prints {"mean":..,"p50":..,"p90":..,"p99":..,"p99_9":..,"max":..} in microseconds
# (nearest rank, like wrk's percentiles).
use strict;
use warnings;

my @us;
for my $f (@ARGV) {
	open my $fh, '<', $f or die "$f: $!\n";
	while (<$fh>) {
		my @f = split;
		push @us, $f[2] if @f >= 3 && $f[2] =~ /^\d+$/;
	}
	close $fh;
}
@us = sort { $a <=> $b } @us;
my $n = @us;
sub pct {
	my ($p) = @_;
	return 0 unless $n;
	my $rank = int($p / 100 * $n + 0.999999);
	$rank = 1 if $rank < 1;
	return $us[$rank - 1];
}
my $sum = 0;
$sum += $_ for @us;
printf '{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"p99_9":%d,"max":%d,"count":%d}' . "\n",
	$n ? $sum / $n : 0, pct(50), pct(90), pct(99), pct(99.9), $n ? $us[-1] : 0, $n;
