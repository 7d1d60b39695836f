#!/usr/bin/perl
# bench/per_request.pl: what one worker does per request, in system calls and heap
# allocations, for a quick inspection and an LP look-up (README, "Performance").
#
#   perl -It/lib bench/per_request.pl [N [PART...]]  N requests of each (default
#                                                200); PARTs: syscalls, wal, allocs
#   SCANQA_BIN=OTHER/scanqa SCANQA_SQL_DIR=OTHER/sql perl -It/lib bench/per_request.pl
#                                                the same for another build, e.g. the
#                                                previous release (script/bench --before
#                                                builds one in .run/bench/before-*)
#
# It runs the test harness's stack (private PostgreSQL, nginx, the daemon with one
# worker). System calls: strace -c -f attached to the worker after a warm-up, over N
# requests. Allocations: the daemon under valgrind, once with the warm-up alone and
# once with the warm-up and N more requests; valgrind's "total heap usage" of the
# worker, the difference divided by N (malloc, calloc, realloc, strdup all count).
# Prints one line per measurement; the figures are per request.
use strict;
use warnings;

use File::Temp qw(tempdir);
use ScanQA::Test;
use Time::HiRes qw(sleep);

my $N = shift // 200;
# Further arguments choose parts: syscalls, wal, allocs (default: all).
my %only = map { $_ => 1 } @ARGV;
sub part { !%only || $only{ $_[0] } }
my $WARM = 20;
my $dir = tempdir(CLEANUP => 1);

my $t = ScanQA::Test->new(conf => { workers => 1 });
my $org = $t->make_org('Per Request Org');
my $user = $t->make_user($org, 'qa_inspector');
my @barcodes = map { $t->one('SELECT barcode FROM license_plates WHERE id = ?', $t->make_lp($org)) } 1 .. 10;
my @inspections = map { $t->make_inspection($org, $t->make_lp($org)) } 1 .. (3 * $WARM + 2 * $N + 10);

my %send = (
	quick_inspection => sub {
		my $id = shift @inspections or die "out of inspections\n";
		$t->request(POST => '/api/v1/quality/scanner/quick-inspection', token => $user->{token},
			json => { inspection_id => $id, result => 'pass', inspection_method => 'scanner', scanner_device_id => 'PER-REQ-1' });
	},
	lp_lookup => sub {
		$t->request(GET => "/api/warehouse/license-plates/barcode/$barcodes[rand @barcodes]", token => $user->{token});
	},
);

sub run_n {
	my ($what, $n) = @_;
	for (1 .. $n) {
		my $r = $send{$what}->();
		die "$what answered $r->{status}: $r->{body}\n" unless $r->{status} == 200;
	}
}

sub restart {
	$t->stop_daemon;
	$t->start_daemon;
	$t->wait_health(200, 120);
}

# ---- system calls ---------------------------------------------------------------------

for my $what (part('syscalls') ? qw(quick_inspection lp_lookup) : ()) {
	restart();
	run_n($what, $WARM);
	my ($worker) = $t->worker_pids;
	my $out = "$dir/strace.$what";
	my $pid = fork // die "fork: $!";
	if (!$pid) {
		open STDERR, '>', '/dev/null';
		exec 'strace', '-c', '-f', '-o', $out, '-p', $worker or exit 127;
	}
	sleep 1;    # attached
	run_n($what, $N);
	kill 'INT', $pid;
	waitpid $pid, 0;
	my %calls = map { /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$/ ? ($2 => $1) : () } split /\n/, do { local (@ARGV, $/) = $out; <> };
	my $total = delete $calls{total};
	printf "%-17s system calls per request: %.1f (%s)\n", $what, ($total // 0) / $N,
		join ', ', map { sprintf '%s %.1f', $_, $calls{$_} / $N } sort { $calls{$b} <=> $calls{$a} } keys %calls;
}

# ---- WAL of one quick inspection -------------------------------------------------------
# Row locks are WAL-logged ("Heap LOCK"): a foreign key check's FOR KEY SHARE on the
# organization's or the user's row shows here.

if (part('wal')) {
	my $bindir = (grep { -x "$_/pg_waldump" } glob('/usr/lib/postgresql/*/bin'))[-1];
	my %rel = map { $t->one("SELECT pg_relation_filenode('$_')") => $_ } qw(organizations users);
	run_n('quick_inspection', 1);
	my $from = $t->one('SELECT pg_current_wal_insert_lsn()');
	run_n('quick_inspection', 1);
	my $to = $t->one('SELECT pg_current_wal_insert_lsn()');
	my @wal = grep { /^rmgr:/ } split /\n/, `$bindir/pg_waldump -p $t->{pgbase}/data/pg_wal -s $from -e $to 2>/dev/null`;
	my @locks = grep { /desc: LOCK/ } @wal;
	my %on;
	for (@locks) { $on{ $rel{$1} // 'other' }++ if m{rel \d+/\d+/(\d+)} }
	print "$_\n" for $ENV{PER_REQUEST_VERBOSE} ? @wal : ();
	printf "%-17s WAL records: %d, of them Heap LOCK: %d (%s)\n", 'quick_inspection', scalar @wal, scalar @locks,
		join(', ', map { "$_ $on{$_}" } sort keys %on) || 'none';
}

# ---- allocations ----------------------------------------------------------------------

sub worker_allocs {
	my ($what, $n) = @_;
	local $ENV{SCANQA_WRAPPER} = "valgrind --trace-children=yes --log-file=$dir/vg.$what.$n.%p";
	restart();
	my ($worker) = $t->worker_pids;
	run_n($what, $WARM + $n);
	$t->stop_daemon;
	local $ENV{SCANQA_WRAPPER};
	my $log = do { local (@ARGV, $/) = "$dir/vg.$what.$n.$worker"; <> } // '';
	return $log =~ /total heap usage: ([\d,]+) allocs/ ? $1 =~ tr/,//dr : undef;
}

for my $what (part('allocs') ? qw(quick_inspection lp_lookup) : ()) {
	my $base = worker_allocs($what, 0);
	my $more = worker_allocs($what, $N);
	if (!defined $base || !defined $more) {
		print "$what: no valgrind heap summary (is valgrind installed?)\n";
		next;
	}
	printf "%-17s heap allocations per request: %.1f\n", $what, ($more - $base) / $N;
}
# The harness expects its daemon running at the end.
if (!$t->{daemon_pid}) {
	$t->start_daemon;
	$t->wait_health(200, 120);
}
