#!/bin/sh
# mkdisk.sh FILE SECTORS - a raw disk image whose 32-bit little-endian word i
# of sector s is s * 65536 + i, the pattern the test guests verify.
set -eu
perl -e 'my $n = shift; for my $s (0 .. $n - 1) { print pack("V128", map { $s * 65536 + $_ } 0 .. 127) }' "$2" > "$1.tmp"
mv "$1.tmp" "$1"
