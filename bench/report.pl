#!/usr/bin/perl
# bench/report.pl: turns the records script/bench collected into the results file
# and the table it prints at the end.
#
#   bench/report.pl META.json RUNS.jsonl OUT.json
#
# META.json holds the machine, the settings and the memory figures; RUNS.jsonl one
# JSON object per measured run (an HTTP scenario through nginx, a pgbench ceiling,
# or the naive reference). Writes OUT.json ({meta, runs, comparisons, targets}) and
# prints the table, the ratios and the targets to stdout.
use strict;
use warnings;
use JSON::PP;

my ($meta_file, $runs_file, $out_file) = @ARGV;
die "usage: $0 META.json RUNS.jsonl OUT.json\n" unless $out_file;

my $json = JSON::PP->new->canonical->pretty;
sub slurp { my ($f) = @_; open my $fh, '<', $f or die "$f: $!\n"; local $/; my $s = <$fh>; close $fh; $s }

my $meta = decode_json(slurp($meta_file));
my @runs = map { decode_json($_) } grep { /\S/ } split /\n/, slurp($runs_file);

my %by;   # kind -> scenario -> concurrency -> run
for my $r (@runs) {
	$by{ $r->{kind} }{ $r->{scenario} }{ $r->{concurrency} } = $r;
}

# ---- ratios ---------------------------------------------------------------------

my @comparisons;
for my $s (sort keys %{ $by{http} // {} }) {
	for my $c (sort { $a <=> $b } keys %{ $by{http}{$s} }) {
		my $h = $by{http}{$s}{$c};
		next if $h->{skipped};
		my %cmp = (scenario => $s, concurrency => $c, http_rps => $h->{rps});
		if (my $p = $by{pgbench_ceiling}{$s}{$c}) {
			$cmp{ceiling_tps} = $p->{rps};
			$cmp{http_over_ceiling} = $p->{rps} ? $h->{rps} / $p->{rps} : undef;
		}
		if (my $n = $by{pgbench_naive}{$s}{$c}) {
			$cmp{naive_tps} = $n->{rps};
			$cmp{http_over_naive} = $n->{rps} ? $h->{rps} / $n->{rps} : undef;
		}
		push @comparisons, \%cmp if exists $cmp{ceiling_tps} || exists $cmp{naive_tps};
	}
}

# ---- targets (issue 7) ---------------------------------------------------------------

my @targets;
sub target {
	my ($name, $value, $unit, $op, $limit) = @_;
	my $met = !defined $value ? undef
		: $op eq '>=' ? ($value >= $limit ? JSON::PP::true : JSON::PP::false)
		: $op eq '<=' ? ($value <= $limit ? JSON::PP::true : JSON::PP::false)
		: ($value < $limit ? JSON::PP::true : JSON::PP::false);
	push @targets, { target => $name, value => $value, unit => $unit, op => $op, limit => $limit, met => $met };
}
my ($q8) = grep { $_->{scenario} eq '1_quick_inspection' && $_->{concurrency} == 8 } @comparisons;
my $h = $by{http};
target('quick inspection c=8: HTTP / pgbench ceiling', $q8 ? $q8->{http_over_ceiling} : undef, 'ratio', '>=', 0.8);
target('quick inspection c=8: HTTP / naive reference', $q8 ? $q8->{http_over_naive} : undef, 'ratio', '>=', 1.2);
target('quick inspection c=8: p99', lat($h->{'1_quick_inspection'}{8}, 'p99'), 'ms', '<=', 5);
target('50-action sync c=8: p50', lat($h->{'2_offline_sync_50'}{8}, 'p50'), 'ms', '<=', 50);
target('LP lookup c=8: p99', lat($h->{'3_lp_lookup'}{8}, 'p99'), 'ms', '<=', 2);
my $mem = $meta->{memory} // {};
target('worker RSS after start-up (largest worker)', $mem->{startup_max_kib} ? $mem->{startup_max_kib} / 1024 : undef,
	'MiB', '<=', 10);
target("worker RSS after $mem->{requests} requests (largest worker)",
	$mem->{after_max_kib} ? $mem->{after_max_kib} / 1024 : undef, 'MiB', '<=', 10);
target('worker RSS growth (largest of any worker)',
	defined $mem->{growth_max_kib} ? $mem->{growth_max_kib} / 1024 : undef, 'MiB', '<', 1);

sub lat {
	my ($r, $p) = @_;
	return undef if !$r || $r->{skipped};
	return $r->{latency_ms}{$p};
}

open my $out, '>', $out_file or die "$out_file: $!\n";
print $out $json->encode({ meta => $meta, runs => \@runs, comparisons => \@comparisons, targets => \@targets });
close $out;

# ---- the table --------------------------------------------------------------------

sub f { my ($v, $fmt) = @_; defined $v ? sprintf($fmt, $v) : '-' }

my %label = (
	'1_quick_inspection' => '1 quick inspection',
	'2_offline_sync_50'  => '2 offline sync (50 actions)',
	'3_lp_lookup'        => '3 LP lookup by barcode',
	'4_inspection_by_lp' => '4 inspection by LP',
	'5_session_patch'    => '5 scan-session PATCH',
);
my %kind = (http => 'HTTP (wrk, nginx)', pgbench_ceiling => 'pgbench ceiling', pgbench_naive => 'pgbench naive');

printf "\n%s\n", "Results ($meta->{mode}, $meta->{duration_s} s per run; latency in ms)";
my $fmt = "%-28s %-18s %3s %9s %8s %8s %9s %8s\n";
printf $fmt, 'scenario', 'driver', 'c', 'req/s', 'p50', 'p99', 'p99.9', 'non-2xx';
printf "%s\n", '-' x 98;
for my $r (sort { $a->{scenario} cmp $b->{scenario} || $a->{concurrency} <=> $b->{concurrency}
		  || $a->{kind} cmp $b->{kind} } @runs) {
	if ($r->{skipped}) {
		printf "%-28s %-18s %3s  skipped: %s\n", $label{ $r->{scenario} } // $r->{scenario},
			$kind{ $r->{kind} }, $r->{concurrency} // '', $r->{skipped};
		next;
	}
	printf $fmt, $label{ $r->{scenario} } // $r->{scenario}, $kind{ $r->{kind} }, $r->{concurrency},
		f($r->{rps}, '%.0f'), f($r->{latency_ms}{p50}, '%.2f'), f($r->{latency_ms}{p99}, '%.2f'),
		f($r->{latency_ms}{p99_9}, '%.2f'), $r->{kind} eq 'http' ? $r->{non2xx} : '-';
}

if (@comparisons) {
	printf "\n%-28s %3s %9s %12s %8s %10s %8s\n", 'ratios', 'c', 'HTTP req/s', 'ceiling tps', 'HTTP/ceil',
		'naive tps', 'HTTP/naive';
	for my $c (@comparisons) {
		printf "%-28s %3s %9s %12s %8s %10s %8s\n", $label{ $c->{scenario} } // $c->{scenario}, $c->{concurrency},
			f($c->{http_rps}, '%.0f'), f($c->{ceiling_tps}, '%.0f'), f($c->{http_over_ceiling}, '%.2f'),
			f($c->{naive_tps}, '%.0f'), f($c->{http_over_naive}, '%.2f');
	}
}

printf "\nworker memory (%d workers, VmRSS): after start-up %s MiB (largest), after %d requests %s MiB, "
	. "growth %s MiB (largest)\n", $mem->{workers} // 0, f(($mem->{startup_max_kib} // 0) / 1024, '%.1f'),
	$mem->{requests} // 0, f(($mem->{after_max_kib} // 0) / 1024, '%.1f'),
	f(defined $mem->{growth_max_kib} ? $mem->{growth_max_kib} / 1024 : undef, '%.2f');

print "\ntargets\n";
for my $t (@targets) {
	my $v = !defined $t->{value} ? 'not measured' : sprintf('%.2f %s', $t->{value}, $t->{unit});
	my $verdict = !defined $t->{met} ? 'n/a' : $t->{met} ? 'met' : 'MISSED';
	printf "  %-52s %-16s %s %-6s %s\n", $t->{target}, $v, $t->{op}, $t->{limit}, $verdict;
}
printf "\nmachine: %s, %d cores, %.1f GiB; load average before/after: %s / %s\n",
	$meta->{machine}{cpu_model}, $meta->{machine}{nproc}, $meta->{machine}{mem_gib},
	$meta->{load_before} // '?', $meta->{load_after} // '?';
print "results: $out_file\n";
