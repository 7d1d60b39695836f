#!/usr/bin/perl
# bench/report.pl: turns the records script/bench collected into the results file
# and the table it prints at the end.
#
#   bench/report.pl META.json RUNS.jsonl OUT.json
#
# META.json holds the machine, the settings and the memory figures; RUNS.jsonl one
# JSON object per measured run (an HTTP scenario through nginx, a pgbench ceiling,
# or the naive reference). When a measurement was repeated, the run with the median
# throughput stands for it. Writes OUT.json ({meta, runs, results, comparisons,
# targets}) and prints the tables, the ratios and the targets to stdout.
use strict;
use warnings;
use JSON::PP;

my ($meta_file, $runs_file, $out_file) = @ARGV;
die "usage: $0 META.json RUNS.jsonl OUT.json\n" unless $out_file;

sub slurp { my ($f) = @_; open my $fh, '<', $f or die "$f: $!\n"; local $/; my $s = <$fh>; close $fh; $s }

my $meta = decode_json(slurp($meta_file));
my @runs = map { decode_json($_) } grep { /\S/ } split /\n/, slurp($runs_file);

# ---- one result per (kind, scenario, concurrency): the median run ---------------------

my %group;
push @{ $group{"$_->{kind}\t$_->{scenario}\t" . ($_->{concurrency} // '')} }, $_ for @runs;
my (@results, %by);
for my $key (sort keys %group) {
	my @g = sort { ($a->{rps} // 0) <=> ($b->{rps} // 0) } @{ $group{$key} };
	my $r = { %{ $g[$#g / 2] } };
	$r->{repeats} = scalar @g;
	$r->{rps_all} = [ map { $_->{rps} } @g ] if @g > 1;
	if (my $cpu = $r->{cpu_s}) {
		# CPU time per request in microseconds, and the share of the machine's busy
		# time that neither the stack nor the load generator used (other work).
		my $n = $r->{requests} || 1;
		$r->{cpu_us_per_request} = { map { $_ => sprintf('%.0f', $cpu->{$_} * 1e6 / $n) + 0 }
			qw(postgres daemon nginx loadgen) };
		my $ours = 0;
		$ours += $cpu->{$_} for qw(postgres daemon nginx loadgen);
		my $capacity = $cpu->{wall} * $cpu->{cores};
		$r->{machine_busy_pct} = $capacity ? sprintf('%.0f', 100 * $cpu->{machine} / $capacity) + 0 : undef;
		$r->{other_cpu_pct} = $capacity ? sprintf('%.0f', 100 * ($cpu->{machine} - $ours) / $capacity) + 0 : undef;
		$r->{other_cpu_pct} = 0 if defined $r->{other_cpu_pct} && $r->{other_cpu_pct} < 0;
	}
	push @results, $r;
	$by{ $r->{kind} }{ $r->{scenario} }{ $r->{concurrency} // '' } = $r;
}

# ---- ratios ---------------------------------------------------------------------

my @comparisons;
for my $s (sort keys %{ $by{http} // {} }) {
	for my $c (sort { $a <=> $b } grep { length } keys %{ $by{http}{$s} }) {
		my $h = $by{http}{$s}{$c};
		next if $h->{skipped};
		my %cmp = (scenario => $s, concurrency => $c + 0, http_rps => $h->{rps});
		if (my $p = $by{pgbench_ceiling}{$s}{$c}) {
			$cmp{ceiling_tps} = $p->{rps};
			$cmp{http_over_ceiling} = $p->{rps} ? $h->{rps} / $p->{rps} : undef;
		}
		if (my $b = $by{http_before}{$s}{$c}) {
			$cmp{before_rps} = $b->{rps};
			$cmp{http_over_before} = $b->{rps} ? $h->{rps} / $b->{rps} : undef;
			for my $proc (qw(postgres daemon)) {
				my ($x, $y) = map { $_->{cpu_us_per_request} && $_->{cpu_us_per_request}{$proc} } $h, $b;
				$cmp{"cpu_${proc}_over_before"} = $x && $y ? $x / $y : undef;
			}
		}
		# The pooled run (pool_mode = transaction behind pgbouncer: unnamed statements
		# and one more hop), and the same statements unnamed in pgbench.
		if (my $p = $by{http_pooled}{$s}{$c}) {
			$cmp{pooled_rps} = $p->{rps};
			$cmp{pooled_over_http} = $h->{rps} ? $p->{rps} / $h->{rps} : undef;
		}
		if (my $u = $by{pgbench_ceiling_extended}{$s}{$c}) {
			$cmp{unnamed_tps} = $u->{rps};
			$cmp{unnamed_over_named} = $cmp{ceiling_tps} ? $u->{rps} / $cmp{ceiling_tps} : undef;
		}
		push @comparisons, \%cmp if exists $cmp{ceiling_tps} || exists $cmp{before_rps};
	}
}

# ---- targets (issue 7, then issue 12) ---------------------------------------------------

sub lat {
	my ($r, $p) = @_;
	return undef if !$r || $r->{skipped};
	return $r->{latency_ms}{$p};
}

my @targets;
sub target {
	my ($name, $value, $unit, $op, $limit) = @_;
	my $met = !defined $value ? undef
		: ($op eq '>=' ? $value >= $limit : $op eq '<=' ? $value <= $limit : $value < $limit)
		? JSON::PP::true : JSON::PP::false;
	push @targets, { target => $name, value => $value, unit => $unit, op => $op, limit => $limit, met => $met };
}
my ($q8) = grep { $_->{scenario} eq '1_quick_inspection' && $_->{concurrency} == 8 } @comparisons;
my $h = $by{http};
my $mem = $meta->{memory} // {};
my $mib = sub { defined $_[0] ? $_[0] / 1024 : undef };
my ($l8) = grep { $_->{scenario} eq '3_lp_lookup' && $_->{concurrency} == 8 } @comparisons;
target('quick inspection c=8: HTTP / pgbench ceiling', $q8 ? $q8->{http_over_ceiling} : undef, 'x', '>=', 0.9);
target('quick inspection c=8: HTTP / HTTP before', $q8 ? $q8->{http_over_before} : undef, 'x', '>=', 1.25);
target('quick inspection c=8: PostgreSQL CPU / before', $q8 ? $q8->{cpu_postgres_over_before} : undef, 'x', '<=', 0.8);
target('quick inspection c=8: daemon CPU / before', $q8 ? $q8->{cpu_daemon_over_before} : undef, 'x', '<=', 0.6);
target('LP lookup c=8: HTTP / pgbench ceiling', $l8 ? $l8->{http_over_ceiling} : undef, 'x', '>=', 0.65);
my $l8h = $by{http}{'3_lp_lookup'}{8};
target('LP lookup c=8: p99 / p50', lat($l8h, 'p50') ? lat($l8h, 'p99') / lat($l8h, 'p50') : undef, 'x', '<=', 2.5);
target('quick inspection c=8: p99', lat($h->{'1_quick_inspection'}{8}, 'p99'), 'ms', '<=', 5);
# The issue gives the sync target without a concurrency: one device syncing its batch.
target('50-action sync c=1: p50', lat($h->{'2_offline_sync_50'}{1}, 'p50'), 'ms', '<=', 50);
target('LP lookup c=8: p99', lat($h->{'3_lp_lookup'}{8}, 'p99'), 'ms', '<=', 2);
target('worker RSS, largest at any time', $mem->{workers} ? $mib->((sort { $b <=> $a }
	map { $_ // 0 } @$mem{qw(startup_max_kib warm_max_kib after_max_kib)})[0]) : undef, 'MiB', '<=', 10);
target("worker RSS growth over $mem->{requests} requests after warm-up", $mem->{requests}
	? $mib->($mem->{growth_max_kib}) : undef, 'MiB', '<', 1);

open my $out, '>', $out_file or die "$out_file: $!\n";
print $out JSON::PP->new->canonical->pretty->encode({ meta => $meta, results => \@results,
	comparisons => \@comparisons, targets => \@targets, runs => \@runs });
close $out;

# ---- the tables --------------------------------------------------------------------

sub f { my ($v, $fmt) = @_; defined $v ? sprintf($fmt, $v) : '-' }

my %label = (
	'1_quick_inspection' => '1 quick inspection',
	'2_offline_sync_50'  => '2 offline sync, 50 actions',
	'3_lp_lookup'        => '3 LP lookup by barcode',
	'4_inspection_by_lp' => '4 inspection by LP',
	'5_session_patch'    => '5 scan-session PATCH',
);
my %kind = (http => 'HTTP', http_before => 'HTTP before', http_pooled => 'HTTP pooled',
	pgbench_ceiling => 'pgbench ceiling', pgbench_ceiling_extended => 'pgbench unnamed', pgbench_naive => 'pgbench naive');
my @sorted = sort { $a->{scenario} cmp $b->{scenario} || ($a->{concurrency} // 0) <=> ($b->{concurrency} // 0)
		    || $a->{kind} cmp $b->{kind} } @results;

printf "\nResults: %s run, %s s per measurement%s; HTTP is wrk through nginx, latency in ms\n",
	$meta->{mode}, $meta->{duration_s}, ($meta->{repeat} // 1) > 1 ? ", median of $meta->{repeat}" : '';
my $fmt = "%-27s %-16s %3s %8s %7s %7s %7s %7s %6s\n";
printf $fmt, 'scenario', 'driver', 'c', 'req/s', 'p50', 'p99', 'p99.9', 'non-2xx', 'other';
printf "%s\n", '-' x 98;
for my $r (@sorted) {
	if ($r->{skipped}) {
		printf "%-27s %-16s %3s  skipped: %s\n", $label{ $r->{scenario} } // $r->{scenario},
			$kind{ $r->{kind} }, $r->{concurrency} // '', $r->{skipped};
		next;
	}
	printf $fmt, $label{ $r->{scenario} } // $r->{scenario}, $kind{ $r->{kind} }, $r->{concurrency},
		f($r->{rps}, '%.0f'), f($r->{latency_ms}{p50}, '%.2f'), f($r->{latency_ms}{p99}, '%.2f'),
		f($r->{latency_ms}{p99_9}, '%.2f'), $r->{kind} =~ /^http/ ? $r->{non2xx} : '-',
		f($r->{other_cpu_pct}, '%d%%');
}
print "(other: share of the machine's CPU used by processes outside the benchmark during the run)\n";

if (@comparisons) {
	printf "\n%-27s %3s %9s %12s %10s %10s %10s %9s %9s\n", 'ratios', 'c', 'HTTP req/s', 'ceiling tps',
		'HTTP/ceil', 'before/s', 'HTTP/bef', 'PG CPU/b', 'dmn CPU/b';
	for my $c (@comparisons) {
		printf "%-27s %3s %9s %12s %10s %10s %10s %9s %9s\n", $label{ $c->{scenario} } // $c->{scenario},
			$c->{concurrency}, f($c->{http_rps}, '%.0f'), f($c->{ceiling_tps}, '%.0f'),
			f($c->{http_over_ceiling}, '%.2f'), f($c->{before_rps}, '%.0f'), f($c->{http_over_before}, '%.2f'),
			f($c->{cpu_postgres_over_before}, '%.2f'), f($c->{cpu_daemon_over_before}, '%.2f');
	}
	my @pooled = grep { exists $_->{pooled_rps} || exists $_->{unnamed_tps} } @comparisons;
	printf "\n%-27s %3s %9s %10s %10s %12s %12s %10s\n", 'unnamed statements', 'c', 'HTTP req/s',
		'pooled/s', 'pool/HTTP', 'ceiling tps', 'unnamed tps', 'unn/named' if @pooled;
	for my $c (@pooled) {
		printf "%-27s %3s %9s %10s %10s %12s %12s %10s\n", $label{ $c->{scenario} } // $c->{scenario},
			$c->{concurrency}, f($c->{http_rps}, '%.0f'), f($c->{pooled_rps}, '%.0f'), f($c->{pooled_over_http}, '%.2f'),
			f($c->{ceiling_tps}, '%.0f'), f($c->{unnamed_tps}, '%.0f'), f($c->{unnamed_over_named}, '%.2f');
	}
	print "(pooled: a second daemon, pool_mode = transaction, behind pgbouncer in transaction mode on loopback TCP;\n"
	    . " unnamed: pgbench -M extended, the statements as that daemon sends them)\n" if @pooled;
}

printf "\n%-27s %-16s %3s %10s %8s %8s %9s %8s\n", 'CPU per request (us)', 'driver', 'c', 'PostgreSQL',
	'daemon', 'nginx', 'load gen', 'total';
for my $r (grep { !$_->{skipped} && $_->{cpu_us_per_request} && ($_->{concurrency} // 0) == 8 } @sorted) {
	my $u = $r->{cpu_us_per_request};
	my $total = 0;
	$total += $u->{$_} for keys %$u;
	printf "%-27s %-16s %3s %10d %8s %8s %9d %8d\n", $label{ $r->{scenario} } // $r->{scenario},
		$kind{ $r->{kind} }, $r->{concurrency}, $u->{postgres}, $r->{kind} =~ /^http/ ? $u->{daemon} : '-',
		$r->{kind} =~ /^http/ ? $u->{nginx} : '-', $u->{loadgen}, $total;
}

printf "\nworker memory (%d workers, VmRSS of the largest): %s MiB after start-up, %s MiB after a "
	. "%d-request warm-up,\n  %s MiB after %d more requests: growth %s MiB (private heap: %s MiB)\n",
	$mem->{workers} // 0, f($mib->($mem->{startup_max_kib}), '%.1f'), f($mib->($mem->{warm_max_kib}), '%.1f'),
	$mem->{warmup_requests} // 0, f($mib->($mem->{after_max_kib}), '%.1f'), $mem->{requests} // 0,
	f($mib->($mem->{growth_max_kib}), '%.2f'), f($mib->($mem->{growth_anon_max_kib}), '%.2f');

print "\ntargets\n";
for my $t (@targets) {
	my $v = !defined $t->{value} ? 'not measured' : sprintf('%.2f %s', $t->{value}, $t->{unit});
	my $verdict = !defined $t->{met} ? 'n/a' : $t->{met} ? 'met' : 'MISSED';
	printf "  %-52s %-14s %-2s %-5s %s\n", $t->{target}, $v, $t->{op}, $t->{limit}, $verdict;
}
printf "\nmachine: %s, %d cores, %.1f GiB; load average %s before, %s after\n",
	$meta->{machine}{cpu_model}, $meta->{machine}{nproc}, $meta->{machine}{mem_gib},
	$meta->{load_before} // '?', $meta->{load_after} // '?';
print "results: $out_file\n";
