#!/usr/bin/perl
# bench/record.pl: prints one run's record for script/bench's RUNS.jsonl.
#
#   bench/record.pl [--wrk WRK_OUTPUT] [--latency-us JSON] key=value...
#
# --wrk reads the "BENCH_RESULT {json}" line that bench/wrk/scanqa.lua prints and
# takes requests, duration, latency, errors and non-2xx counts from it (req/s is
# requests over the measured duration). --latency-us takes percentiles in
# microseconds (bench/pgbench_log.pl). Latencies are recorded in milliseconds.
# Each key=value is added as is ("a.b=v" nests); values that look like numbers
# become numbers.
use strict;
use warnings;
use JSON::PP;

my %rec;
my $lat;
while (@ARGV) {
	my $a = shift @ARGV;
	if ($a eq '--wrk') {
		my $file = shift @ARGV;
		open my $fh, '<', $file or die "$file: $!\n";
		my ($line) = grep { /^BENCH_RESULT / } <$fh>;
		close $fh;
		die "$file: no BENCH_RESULT line (did wrk fail?)\n" unless $line;
		$line =~ s/^BENCH_RESULT //;
		my $w = decode_json($line);
		$rec{requests} = $w->{requests};
		$rec{duration_s} = $w->{duration_us} / 1e6;
		$rec{rps} = $w->{duration_us} ? $w->{requests} / ($w->{duration_us} / 1e6) : 0;
		$rec{non2xx} = $w->{non2xx};
		$rec{socket_errors} = $w->{errors};
		$rec{exhausted_threads} = $w->{exhausted_threads};
		$rec{first_non2xx} = $w->{first_non2xx} if $w->{first_non2xx} ne '';
		$lat = $w->{latency_us};
	} elsif ($a eq '--latency-us') {
		$lat = decode_json(shift @ARGV);
	} elsif ($a =~ /^([\w.]+)=(.*)$/s) {
		my ($k, $v) = ($1, $2);
		$v = $v + 0 if $v =~ /^-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;
		# "a.b=v" is {"a": {"b": v}}
		my @path = split /\./, $k;
		my $h = \%rec;
		$h = $h->{ shift @path } //= {} while @path > 1;
		$h->{ $path[0] } = $v;
	} else {
		die "usage: $0 [--wrk FILE] [--latency-us JSON] key=value...\n";
	}
}
if ($lat) {
	$rec{latency_ms} = { map { $_ => sprintf('%.3f', $lat->{$_} / 1000) + 0 }
		grep { $_ ne 'count' } keys %$lat };
}
print JSON::PP->new->canonical->encode(\%rec), "\n";
