package ScanQA::Browser;

# ScanQA::Browser: one headless Chromium (Debian's chromium, driven by
# playwright-core through t/browser/driver.mjs) pointed at a ScanQA::Test's
# nginx, so that a test file can act like an inspector and then read the
# database back.

use strict;
use warnings;

use Carp qw(croak);
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use IPC::Open2 qw(open2);
use JSON::PP;

=head1 NAME

ScanQA::Browser - drive the scanner app in Chromium from a prove test

=head1 SYNOPSIS

    my $t = ScanQA::Test->new;
    my $b = ScanQA::Browser->new($t);          # 360x640, headless
    $b->call(goto => path => '/scanner/');
    $b->call(scan => text => 'LP00000001');    # types it, then Enter
    is($b->call(waitText => sel => '#outcome', text => 'Passed'), ...);

=head1 METHODS

=over

=item new($t, width => 360, height => 640)

Starts node on t/browser/driver.mjs (npm ci must have run in t/browser: script/test
does it) and launches the browser with base URL http://127.0.0.1:PORT.
Skips the whole test file (skip_all) when node or the npm packages are missing and
SCANQA_BROWSER_REQUIRED is not set; script/test sets it, so there a missing browser
fails.

=item call($cmd, %args)

Sends one command (see driver.mjs for the list) and returns its result; croaks
with the driver's error message when the command failed (a wait that timed out,
a selector that matched nothing).

=item try($cmd, %args)

Like call, but returns (1, result) or (0, error) instead of croaking.

=back

=cut

my $ROOT = abs_path(dirname(__FILE__) . '/../../..');
my $JSON = JSON::PP->new->canonical->allow_nonref;

sub available {
	my $node = grep { -x "$_/node" } split /:/, $ENV{PATH} // '';
	return $node && -d "$ROOT/t/browser/node_modules/playwright-core"
		&& -x ($ENV{CHROMIUM} // '/usr/bin/chromium');
}

sub new {
	my ($class, $t, %o) = @_;
	if (!available()) {
		croak "the browser tests need node, t/browser/node_modules (npm ci) and chromium"
			if $ENV{SCANQA_BROWSER_REQUIRED};
		Test::More::plan(skip_all => 'node, playwright-core or chromium missing (script/test installs them)');
	}
	my ($out, $in);
	my $pid = open2($out, $in, 'node', "$ROOT/t/browser/driver.mjs");
	my $self = bless { pid => $pid, out => $out, in => $in, t => $t }, $class;
	$self->call(launch => base => 'http://127.0.0.1:' . $t->port,
		width => $o{width} // 360, height => $o{height} // 640);
	return $self;
}

sub try {
	my ($self, $cmd, %args) = @_;
	my $line = $JSON->encode({ cmd => $cmd, %args });
	print { $self->{in} } "$line\n";
	$self->{in}->flush;
	my $reply = readline $self->{out};
	croak "the browser driver exited (command $cmd)" unless defined $reply;
	my $r = $JSON->decode($reply);
	return $r->{ok} ? (1, $r->{result}) : (0, $r->{error});
}

sub call {
	my ($self, $cmd, %args) = @_;
	my ($ok, $res) = $self->try($cmd, %args);
	croak "browser: $cmd failed: $res" unless $ok;
	return $res;
}

sub DESTROY {
	my ($self) = @_;
	return unless $self->{pid};
	eval { $self->try('close') };
	close $self->{in};
	close $self->{out};
	waitpid $self->{pid}, 0;
	$self->{pid} = undef;
}

1;
