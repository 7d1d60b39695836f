#!/usr/bin/perl
# bench/stmt_sql.pl: prints the SQL of one of the daemon's prepared statements, read
# from the C source, so that pgbench runs exactly what the endpoint runs.
#
#   bench/stmt_sql.pl NAME FILE.c...
#
# A statement is a "struct db_stmt" initialiser: { "NAME", "SQL" "SQL"..., nparams, 0 }
# (adjacent C string literals are joined). Exits 1 when NAME is not found.
use strict;
use warnings;

my $name = shift @ARGV // die "usage: $0 NAME FILE.c...\n";
for my $file (@ARGV) {
	open my $fh, '<', $file or die "$file: $!\n";
	my $src = do { local $/; <$fh> };
	close $fh;
	while ($src =~ /struct\s+db_stmt\s+\w+\s*=\s*\{\s*"((?:[^"\\]|\\.)*)"\s*,((?:\s*"(?:[^"\\]|\\.)*")+)/g) {
		next unless $1 eq $name;
		my $literals = $2;
		my $sql = '';
		$sql .= $1 while $literals =~ /"((?:[^"\\]|\\.)*)"/g;
		$sql =~ s/\\(.)/$1/g;
		print "$sql\n";
		exit 0;
	}
}
print STDERR "$0: no db_stmt named \"$name\" in @ARGV\n";
exit 1;
