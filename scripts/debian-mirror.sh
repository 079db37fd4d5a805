#!/bin/sh
# debian-mirror.sh - print the Debian mirror this machine's apt sources
# already use for bookworm (scripts/setup-debian.sh enables backports from it,
# tests/compat/chroot.sh bootstraps other releases from it).  Never a host of
# our own choosing.  Exits 1, printing nothing, if no source names bookworm.
set -eu

# the first URI of a source (one-line or deb822 format) whose suites include
# plain 'bookworm'
debian_mirror() {
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		awk '$1 == "deb" { u = ""; for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) { u = $i; s = $(i + 1); break }
		     if (s == "bookworm") { print u; exit } }' "$f"
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk 'function flush() { if (deb && bw && uri != "") { print uri; found = 1; exit } deb = bw = 0; uri = "" }
		     /^[ \t]*$/ { flush(); next }
		     /^Types:/ { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
		     /^URIs:/ { uri = $2 }
		     /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == "bookworm") bw = 1 }
		     END { if (!found) flush() }' "$f"
	done
}

mirror=$(debian_mirror | head -n 1)
[ -n "$mirror" ] || exit 1
echo "$mirror"
