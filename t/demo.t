#!/usr/bin/perl
# demo.t: with the demo data that script/server loads, the API reference's
# Quick Inspection examples work verbatim with the demo tokens.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP;
use Test::More;

use ScanQA::Test;

my $QI = '/api/v1/quality/scanner/quick-inspection';

my $t = ScanQA::Test->new(conf => { workers => 2 });
$t->load_demo;

# The request bodies exactly as printed in the reference.
my $PASS = <<'JSON';
{
  "inspection_id": "550e8400-e29b-41d4-a716-446655440001",
  "result": "pass",
  "inspection_method": "scanner",
  "scanner_device_id": "ZEBRA-TC52-001"
}
JSON
my $FAIL = <<'JSON';
{
  "inspection_id": "550e8400-e29b-41d4-a716-446655440002",
  "result": "fail",
  "result_notes": "Damaged packaging, product exposed",
  "defects_found": 3,
  "inspection_method": "scanner",
  "scanner_device_id": "ZEBRA-TC52-001"
}
JSON

sub post {
	my ($token, $body) = @_;
	return $t->request(POST => $QI, token => $token, body => $body,
		headers => { 'Content-Type' => 'application/json' });
}

# The success response with completed_at, which is the time of the request,
# checked for its form and then set aside.
sub without_time {
	my ($j) = @_;
	my %copy = %{ $j // {} };
	my %i = %{ $copy{inspection} // {} };
	my $at = delete $i{completed_at};
	$copy{inspection} = \%i;
	return (\%copy, $at);
}

{
	my $r = post('demo-inspector', $PASS);
	is($r->{status}, 200, 'the pass example succeeds for demo-inspector') or diag($r->{body});
	my ($got, $at) = without_time($r->{json});
	is_deeply($got, {
		inspection => {
			id                => '550e8400-e29b-41d4-a716-446655440001',
			lp_id             => '550e8400-e29b-41d4-a716-446655440010',
			status            => 'completed',
			result            => 'pass',
			inspection_method => 'scanner',
			scanner_device_id => 'ZEBRA-TC52-001',
		},
		lp_status_updated => JSON::PP::true,
		lp_new_status     => 'passed',
	}, "the pass example's response is the reference's success response") or diag($r->{body});
	like($at // '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'completed_at looks like 2025-01-23T14:30:00.000Z');
	is($t->one(q{SELECT qa_status FROM license_plates WHERE barcode = 'LP00000001'}), 'passed',
		'LP00000001 is now passed');

	my $again = post('demo-inspector', $PASS);
	is($again->{status}, 400, 'sending the pass example again is rejected');
	is_deeply($again->{json}, { error => 'Inspection already completed' },
		'the repeated pass example is told the inspection is already completed');
}

{
	my $r = post('demo-inspector', $FAIL);
	is($r->{status}, 200, 'the fail example succeeds for demo-inspector') or diag($r->{body});
	my ($got) = without_time($r->{json});
	is_deeply($got, {
		inspection => {
			id                => '550e8400-e29b-41d4-a716-446655440002',
			lp_id             => '550e8400-e29b-41d4-a716-446655440011',
			status            => 'completed',
			result            => 'fail',
			inspection_method => 'scanner',
			result_notes      => 'Damaged packaging, product exposed',
			defects_found     => 3,
			scanner_device_id => 'ZEBRA-TC52-001',
		},
		lp_status_updated => JSON::PP::true,
		lp_new_status     => 'failed',
	}, "the fail example's response carries notes and defects, LP failed") or diag($r->{body});
}

{
	my $body = $PASS =~ s/446655440001/446655440003/r;
	is(post('demo-manager', $body)->{status}, 200, 'demo-manager may complete an inspection');
	$body = $PASS =~ s/446655440001/446655440004/r;
	my $r = post('demo-viewer', $body);
	is($r->{status}, 403, 'demo-viewer is refused');
	is_deeply($r->{json}, { error => 'Scanner access requires QA Inspector role' },
		'demo-viewer is told scanner access requires the QA Inspector role');
	$r = post('demo-other-org', $body);
	is($r->{status}, 404, "demo-other-org cannot see Demo Warehouse's inspection");
	is_deeply($r->{json}, { error => 'Inspection not found' },
		"demo-other-org is told Demo Warehouse's inspection is not found");
	$r = post('demo-other-org', $PASS =~ s/446655440001/446655440007/r);
	is($r->{status}, 200, 'demo-other-org completes its own inspection');
}

{
	$t->load_demo;
	my $r = post('demo-inspector', $PASS);
	is($r->{status}, 200, 'loading the demo data again makes the pass example work again');
}

is($t->stop_daemon, 0, 'the daemon exits cleanly on SIGTERM');
is($t->daemon_errors, '', 'the daemon reported no memory errors');
is($t->nginx_alerts, '', 'nginx logged no alerts');

done_testing;
