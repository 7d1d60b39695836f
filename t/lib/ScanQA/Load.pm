package ScanQA::Load;

# ScanQA::Load: a bounded, closed-loop HTTP load generator for the fault tests.
# It keeps a fixed number of requests in flight against the test's nginx on
# loopback and records every answer, so a test can count them all and compare
# them with the database afterwards.

use strict;
use warnings;

use Carp qw(croak);
use Errno qw(EINTR EAGAIN);
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);

use ScanQA::Test;

=head1 NAME

ScanQA::Load - bounded load against a ScanQA::Test daemon, every answer counted

=head1 SYNOPSIS

    my $load = ScanQA::Load->start($t,
        clients  => 8,       # requests in flight at once
        requests => 2000,    # at most this many requests ...
        seconds  => 20,      # ... and none started after this many seconds
        host     => '127.0.0.1', port => $t->port,   # the defaults: the test's nginx
        netns    => undef,   # or a network namespace's name: the load runs inside it
        make     => sub {    # the n-th request (n counts from 0)
            my ($n) = @_;
            return (POST => $PATH, token => $tok, json => {...}, tag => $id);
        });
    $load->wait_answered(50);   # let it get going
    ...                         # the fault
    $load->stop;                # optional: start no more requests
    my $res = $load->finish;    # waits for every request in flight

=head1 DESCRIPTION

start() forks one process that runs the load and returns at once, so the test
can inject a fault meanwhile. That process opens one connection per request
(as the harness's request() does: HTTP/1.1, Connection: close), keeps
C<clients> of them in flight, and stops starting new ones when C<requests>
have been started, C<seconds> have passed, or stop() was called (it leaves a
file that the load process looks for between requests). With C<netns>, the
load process first joins that network namespace (setns(2) on
/run/netns/NAME, what C<ip netns exec> does), so its requests leave from there
and reach C<host>:C<port> over the namespace's own links. With
C<retry_after>, a client that got an answer with C<Retry-After: N> waits N
seconds before its next request, as the scanner app does: a quick 503 then
does not turn into a flood of them. A request in
flight is always read to its end; C<timeout> (default 60 s) is only a guard
against a hung server, and a request that hits it is recorded with status 0
and error "timeout". Nothing is ever retried.

Each finished request is appended at once to a results file as one JSON line,
so answered() can tell the progress while the load runs. finish() returns a
hashref:

    results => [ { n, tag, status, error, ... }, ... ]   # in the order they finished
    started => N          # requests started; finish() croaks unless each has a result
    by_status => { 200 => N, 503 => N, ... }
    seconds => elapsed wall time

C<status> is the HTTP status, or 0 when no complete HTTP answer came back
(C<error> then says why); C<error> is otherwise the JSON body's "error" field;
C<rid>, C<content_type>, C<retry_after> those headers; C<json> the decoded
body (up to 4 KiB); C<t0>, C<t1> the epoch times the request was sent and its
answer complete. results_so_far() returns the same list while the load runs.

=cut

my $JSON = JSON::PP->new->canonical->allow_nonref;

sub start {
	my ($class, $t, %o) = @_;
	croak "make => sub is required" unless ref $o{make} eq 'CODE';
	my $self = bless {
		t        => $t,
		clients  => $o{clients} // 4,
		requests => $o{requests} // 1000,
		seconds  => $o{seconds} // 30,
		timeout  => $o{timeout} // 60,
		host     => $o{host} // '127.0.0.1',
		port     => $o{port} // $t->port,
		netns    => $o{netns},
		retry_after => $o{retry_after} // 0,
		make     => $o{make},
		file     => $t->dir . '/load-' . ++$t->{load_seq} . '.jsonl',
	}, $class;
	unlink $self->{file}, "$self->{file}.stop", "$self->{file}.started";
	my $pid = fork // croak "fork: $!";
	if (!$pid) {
		my $ok = eval { $self->_run; 1 };
		print STDERR "load generator: $@" unless $ok;
		POSIX::_exit($ok ? 0 : 1);
	}
	$self->{pid} = $pid;
	$self->{t_start} = time;
	return $self;
}

# ---- the load process ------------------------------------------------------------

sub _run {
	my ($self) = @_;
	local $SIG{PIPE} = 'IGNORE';
	local $SIG{INT} = local $SIG{TERM} = 'DEFAULT';
	open my $out, '>>', $self->{file} or die "cannot write $self->{file}: $!";
	$out->autoflush(1);
	_enter_netns($self->{netns}) if defined $self->{netns};

	my $t = $self->{t};
	my $deadline = time + $self->{seconds};
	my $sel = IO::Select->new;
	my %fly;    # fileno => { sock, n, tag, t0, buf }
	my @waiting;    # when each client that honours a Retry-After may send again
	my $n = 0;

	my $record = sub {
		my ($f, %r) = @_;
		my $rec = { n => $f->{n}, tag => $f->{tag}, t0 => $f->{t0}, t1 => time, %r };
		print {$out} $JSON->encode($rec), "\n";
	};
	my $done = sub {
		my ($fd) = @_;
		my $f = delete $fly{$fd};
		$sel->remove($f->{sock});
		close $f->{sock};
		if ($f->{buf} !~ /\r\n\r\n/) {
			$record->($f, status => 0, error => length $f->{buf} ? 'truncated answer' : 'connection closed without an answer');
			return;
		}
		my $r = ScanQA::Test::_parse_response($f->{buf});
		my $j = $r->{json};
		my $ra = $r->{headers}{'retry-after'} // '';
		push @waiting, time + $ra if $self->{retry_after} && $ra =~ /^\d{1,2}$/;
		$record->($f, status => $r->{status} + 0, rid => $r->{headers}{'x-request-id'},
			error => (ref $j eq 'HASH' ? $j->{error} : undef),
			json => (length $r->{body} <= 4096 ? $j : undef),
			content_type => $r->{headers}{'content-type'}, retry_after => $r->{headers}{'retry-after'});
	};

	my $stop = 0;
	while (1) {
		$stop ||= -e "$self->{file}.stop";
		@waiting = grep { $_ > time } @waiting;
		while (!$stop && $n < $self->{requests} && time < $deadline && keys(%fly) + @waiting < $self->{clients}) {
			my ($method, $path, %ro) = $self->{make}->($n);
			my $f = { n => $n, tag => delete $ro{tag}, t0 => time, buf => '' };
			$n++;
			my $bytes = $t->_build_request($method, $path, %ro);
			my $s = IO::Socket::INET->new(PeerAddr => $self->{host}, PeerPort => $self->{port}, Proto => 'tcp');
			if (!$s) {
				$record->($f, status => 0, error => "connect: $!");
				next;
			}
			my $off = 0;
			while ($off < length $bytes) {
				my $w = syswrite $s, $bytes, 65536, $off;
				if (!defined $w) {
					next if $! == EINTR;
					last;
				}
				$off += $w;
			}
			$s->blocking(0);
			$f->{sock} = $s;
			$fly{ fileno $s } = $f;
			$sel->add($s);
		}
		if (!keys %fly) {
			last if !@waiting || $stop || $n >= $self->{requests} || time >= $deadline;
			sleep 0.05;
			next;
		}
		for my $s ($sel->can_read(0.1)) {
			my $fd = fileno $s;
			my $f = $fly{$fd} or next;
			my $got = sysread $s, $f->{buf}, 65536, length $f->{buf};
			if (!defined $got) {
				next if $! == EINTR || $! == EAGAIN;
				$done->($fd);    # reset after (part of) an answer
			} elsif ($got == 0) {
				$done->($fd);
			}
		}
		my $now = time;
		for my $fd (grep { $now - $fly{$_}{t0} > $self->{timeout} } keys %fly) {
			my $f = delete $fly{$fd};
			$sel->remove($f->{sock});
			close $f->{sock};
			$record->($f, status => 0, error => 'timeout');
		}
	}
	close $out;
	open my $st, '>', "$self->{file}.started" or die "cannot write: $!";
	print {$st} "$n\n";
	close $st;
}

# Moves this process into the network namespace NAME (as "ip netns exec" does:
# setns(2) on /run/netns/NAME with CLONE_NEWNET); dies when it cannot, so that
# no request is ever sent from the namespace the test started in.
sub _enter_netns {
	my ($name) = @_;
	require 'syscall.ph';
	open my $fh, '<', "/run/netns/$name" or die "cannot open network namespace $name: $!";
	syscall(SYS_setns(), fileno($fh), 0x40000000) == 0 or die "setns $name: $!";
	close $fh;
}

# ---- the test's side ---------------------------------------------------------------

sub _lines {
	my ($self) = @_;
	open my $in, '<', $self->{file} or return ();
	my @l = grep { /\}\s*$/ } <$in>;
	return @l;
}

# The results recorded so far, as finish() returns them.
sub results_so_far { my ($self) = @_; return [map { $JSON->decode($_) } $self->_lines] }

# How many requests have finished so far.
sub answered { my @l = $_[0]->_lines; return scalar @l }

# Waits until $k requests have finished or the load process ended; false on
# the guard timeout (default 60 s).
sub wait_answered {
	my ($self, $k, $timeout) = @_;
	my $deadline = time + ($timeout // 60);
	while (time < $deadline) {
		return 1 if $self->answered >= $k;
		return $self->answered >= $k if !$self->running;
		sleep 0.02;
	}
	return 0;
}

# True while the load process still starts or waits for requests.
sub running {
	my ($self) = @_;
	return 0 if $self->{exited};
	return 1 if waitpid($self->{pid}, WNOHANG) == 0;
	$self->{exited} = 1;
	return 0;
}

# Starts no more requests; those in flight are still read to their end.
sub stop {
	my ($self) = @_;
	open my $fh, '>', "$self->{file}.stop" or croak "cannot write $self->{file}.stop: $!";
	close $fh;
}

# Waits for the load process (guard: seconds + timeout + 30 s) and returns the tally.
sub finish {
	my ($self) = @_;
	if (!$self->{exited}) {
		my $guard = time + $self->{seconds} + $self->{timeout} + 30;
		while (waitpid($self->{pid}, WNOHANG) == 0) {
			if (time > $guard) {
				kill 'KILL', $self->{pid};
				waitpid $self->{pid}, 0;
				croak "load generator did not finish";
			}
			sleep 0.05;
		}
		croak "load generator failed (status $?)" if $?;
		$self->{exited} = 1;
	}
	my @res = map { $JSON->decode($_) } $self->_lines;
	my %by;
	$by{ $_->{status} }++ for @res;
	open my $st, '<', "$self->{file}.started" or croak "load generator left no count: $!";
	my $started = <$st> + 0;
	croak "load generator started $started requests but recorded " . scalar(@res) if $started != @res;
	return {
		results   => \@res,
		started   => $started,
		by_status => \%by,
		seconds   => time - $self->{t_start},
	};
}

# "200 x 812, 502 x 1" for test notes.
sub summary {
	my ($class, $res) = @_;
	my $by = $res->{by_status};
	return join(', ', map { "$_ x $by->{$_}" } sort { $a <=> $b } keys %$by) || 'none';
}

1;
