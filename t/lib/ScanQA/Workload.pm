package ScanQA::Workload;

# ScanQA::Workload: the write load of the fault tests, quick-inspection
# completions of many in-progress inspections, and the check that the
# database shows each of them either fully applied or not at all, and every
# success a client was told about.

use strict;
use warnings;

use Carp qw(croak);
use Test::More ();

=head1 NAME

ScanQA::Workload - completions to load a daemon with, and their consistency check

=head1 SYNOPSIS

    my $w = ScanQA::Workload->new($t, inspections => 600);
    my $load = ScanQA::Load->start($t, clients => 6, requests => 600, seconds => 20,
        make => sub { $w->completion($_[0]) });
    ...
    my $res = $load->finish;
    $w->check($res, 'after the worker was killed');

=head1 DESCRIPTION

new() creates an organization, a qa_inspector with a token, and C<inspections>
in-progress inspections, each of its own license plate (qa_status pending).
completion($n) is the request that completes inspection C<$n % inspections>,
"pass" for even C<$n> and "fail" for odd; completion($n, $i, $result) completes
inspection C<$i> with that result. Each is tagged C<{ id, result }>, which
check() reads back from the tally.

check($res, $what) runs one subtest that compares a ScanQA::Load tally with
the database:

=over

=item * every completed inspection has exactly one audit row, whose new_value
holds the stored result, and its license plate's qa_status matches that
result (passed/failed); every other inspection has no audit row, no result and
a pending license plate: nothing is half-applied;

=item * every 200 answer names an inspection that is stored as completed with
the result that request asked for, and reports the matching lp_new_status: no
success is reported that did not happen;

=item * no inspection was reported completed twice.

=back

It returns a hashref of figures: completed (rows), ok (200 answers), and
unknown (completed rows for which no client got a 200).

=cut

sub new {
	my ($class, $t, %o) = @_;
	my $n = $o{inspections} // 500;
	my $self = bless { t => $t, n => $n }, $class;
	$self->{org} = $t->make_org('Workload ' . int(rand 1e9));
	$self->{user} = $t->make_user($self->{org}, 'qa_inspector');
	my $tag = 'W' . int(rand 1e9);
	$t->dbh->do(q{
		WITH lp AS (
			INSERT INTO license_plates (org_id, barcode, quantity)
			SELECT ?, ? || '-' || g, 1 FROM generate_series(1, ?) g
			RETURNING id, barcode)
		INSERT INTO quality_inspections (org_id, lp_id, inspection_number, status)
		SELECT ?, id, 'INS-' || barcode, 'in_progress' FROM lp}, undef,
		$self->{org}, $tag, $n, $self->{org});
	$self->{ids} = $t->dbh->selectcol_arrayref(
		q{SELECT id FROM quality_inspections WHERE org_id = ? ORDER BY length(inspection_number), inspection_number},
		undef, $self->{org});
	croak "created " . scalar(@{ $self->{ids} }) . " inspections, not $n" unless @{ $self->{ids} } == $n;
	return $self;
}

sub org   { $_[0]{org} }
sub user  { $_[0]{user} }
sub ids   { $_[0]{ids} }
sub token { $_[0]{user}{token} }

# The n-th request: (method, path, options) for ScanQA::Load or ScanQA::Test::request.
sub completion {
	my ($self, $n, $i, $result) = @_;
	my $id = $self->{ids}[ $i // $n % $self->{n} ];
	$result //= $n % 2 ? 'fail' : 'pass';
	return (POST => '/api/v1/quality/scanner/quick-inspection', token => $self->token,
		json => { inspection_id => $id, result => $result, inspection_method => 'scanner' },
		tag => { id => $id, result => $result });
}

sub check {
	my ($self, $res, $what) = @_;
	my $t = $self->{t};
	my $rows = $t->rows(q{
		SELECT i.id, i.status, i.result, l.qa_status,
		       (SELECT count(*) FROM quality_audit_log a
		         WHERE a.org_id = i.org_id AND a.entity_id = i.id::text) AS audits,
		       (SELECT string_agg(a.new_value->>'result', ',') FROM quality_audit_log a
		         WHERE a.org_id = i.org_id AND a.entity_id = i.id::text) AS audit_results
		  FROM quality_inspections i JOIN license_plates l ON l.id = i.lp_id
		 WHERE i.org_id = ?}, $self->{org});
	my %row = map { $_->{id} => $_ } @$rows;
	my %want_lp = (pass => 'passed', fail => 'failed');
	my (@half, @phantom, %ok_for);
	for my $r (@$rows) {
		if ($r->{status} eq 'completed') {
			push @half, "$r->{id}: completed with $r->{audits} audit rows" if $r->{audits} != 1;
			push @half, "$r->{id}: result $r->{result} but LP $r->{qa_status}"
				if $r->{qa_status} ne ($want_lp{ $r->{result} } // '');
			push @half, "$r->{id}: audit says $r->{audit_results}, row says $r->{result}"
				if $r->{audits} == 1 && $r->{audit_results} ne $r->{result};
		} else {
			push @half, "$r->{id}: $r->{status} yet $r->{audits} audit rows" if $r->{audits};
			push @half, "$r->{id}: $r->{status} yet LP $r->{qa_status}" if $r->{qa_status} ne 'pending';
			push @half, "$r->{id}: $r->{status} yet result " . ($r->{result} // 'NULL') if defined $r->{result};
		}
	}
	for my $a (grep { $_->{status} == 200 } @{ $res->{results} }) {
		my $id = $a->{tag}{id} // '';
		my $asked = $a->{tag}{result} // '';
		my $r = $row{$id};
		$ok_for{$id}++;
		if (!$r || $r->{status} ne 'completed') {
			push @phantom, "request $a->{n}: 200 for $id, which is not completed";
		} elsif ($r->{result} ne $asked) {
			push @phantom, "request $a->{n}: 200 for '$asked' on $id, stored '$r->{result}'";
		} elsif (($a->{json}{lp_new_status} // '') ne $want_lp{$asked}) {
			push @phantom, "request $a->{n}: 200 reported LP " . ($a->{json}{lp_new_status} // 'nothing');
		}
	}
	my @twice = grep { $ok_for{$_} > 1 } keys %ok_for;
	my $completed = grep { $_->{status} eq 'completed' } @$rows;
	my $ok = grep { $_->{status} == 200 } @{ $res->{results} };
	Test::More::subtest($what => sub {
		Test::More::is_deeply(\@half, [], 'every inspection is either fully completed (one audit row, matching LP status) or untouched');
		Test::More::is_deeply(\@phantom, [], 'every 200 answer is a completion stored with the result asked for');
		Test::More::is_deeply(\@twice, [], 'no inspection was reported completed twice');
	});
	return { completed => $completed, ok => $ok, unknown => $completed - scalar(keys %ok_for) };
}

1;
