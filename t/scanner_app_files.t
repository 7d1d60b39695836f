#!/usr/bin/perl
# scanner_app_files.t: the scanner app's file lists agree. Every file under web/
# is installed (Makefile.am's nobase_dist_scanqaweb_DATA) and is part of the
# service worker's app shell (web/sw.js SHELL), so that the Debian package serves
# it and the app starts offline with all of it; every listed file exists; and no
# page or module loads anything from another origin.

use strict;
use warnings;

use FindBin;
use File::Find;
use Test::More;

my $root = "$FindBin::Bin/..";
sub slurp { open(my $f, '<', $_[0]) or die "$_[0]: $!"; local $/; return <$f> }

my @files;
find({ no_chdir => 1, wanted => sub { push @files, $File::Find::name =~ s{^\Q$root\E/}{}r if -f } }, "$root/web");
@files = sort @files;
# The vendored licence is in debian/copyright; VERSION says where the copy came from.
my @served = grep { !m{^web/vendor/[^/]+/(LICENSE|VERSION)$} } @files;
ok(@served >= 10, scalar(@served) . ' files under web/');

my ($am) = slurp("$root/Makefile.am") =~ /^nobase_dist_scanqaweb_DATA\s*=\s*((?:.*\\\n)*.*)$/m;
my %installed = map { $_ => 1 } grep { length } split /[\s\\]+/, $am // '';
is_deeply([grep { !$installed{$_} } @served], [], 'every file of web/ is installed by Makefile.am');
is_deeply([grep { !-f "$root/$_" } sort keys %installed], [], 'every file Makefile.am installs exists');

my $sw = slurp("$root/web/sw.js");
my ($list) = $sw =~ /const SHELL = \[(.*?)\];/s;
my %shell = map { $_ => 1 } $list =~ /'([^']+)'/g;
my @want = map { s{^web/}{}r } grep { $_ ne 'web/sw.js' } @served;
is_deeply([grep { !$shell{$_} } @want], [], 'every file the app loads is in the service worker\'s shell');
is_deeply([grep { $_ ne './' && !-f "$root/web/$_" } sort keys %shell], [], 'every shell entry exists');
like($sw, qr/const VERSION = 'scanqa-shell-v\d+';/, 'the shell cache is named after its version');

for my $f (grep { /\.(html|js|css|webmanifest)$/ } @served) {
	my $text = slurp("$root/$f");
	unlike($text, qr{(?:src|href)\s*=\s*["']?(?:https?:)?//|import[^;]*from\s*['"](?:https?:)?//|url\((?:["'])?(?:https?:)?//},
		"$f loads nothing from another origin");
}

done_testing();
