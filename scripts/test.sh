#!/bin/sh
# test.sh - the one command that passes the tests on a fresh Debian 12:
# installs every package (scripts/setup-debian.sh), builds, and runs
# 'make check' (C unit tests and bats suites against the real QEMU 7.2 and
# 10.0), 'make check-linux' (the Linux guest tier) and 'make check-compat'
# (Debian 13's and unstable's QEMU, in chroots it bootstraps from the
# machine's mirror).  Fails on any failing, erroring or skipped test, and
# ends with "N passed, N failed".  A compat suite the machine cannot
# bootstrap (no network, no mount namespaces) is said, not failed.
set -eu
cd "$(dirname "$0")/.."

scripts/setup-debian.sh
scripts/build.sh

status=0
rm -f test-suite.log test-suite-linux.log test-suite-compat-*.log
make -j"$(nproc)" check || status=$?
make check-linux || status=$?
make check-compat || status=$?

for log in test-suite.log test-suite-linux.log; do
	[ -f "$log" ] || { echo "test.sh: no $log was written" >&2; status=1; }
done
# Sum a counter over both suites' logs.
count() {
	total=0
	for log in test-suite.log test-suite-linux.log test-suite-compat-*.log; do
		[ -f "$log" ] || continue
		n=$(sed -n "s/^# $1: *\([0-9]*\)$/\1/p" "$log" | head -n 1)
		total=$((total + ${n:-0}))
	done
	echo "$total"
}
pass=$(count PASS); fail=$(count FAIL); err=$(count ERROR); skip=$(count SKIP)
xpass=$(count XPASS)
failed=$((fail + err + xpass))
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ]; then
	echo "---- failing test logs ----"
	grep -lE '^(FAIL|ERROR|XPASS):' $(find tests -name '*.log') 2>/dev/null | while read -r f; do
		echo "== $f"; cat "$f"
	done
fi
if [ "$skip" -ne 0 ]; then
	echo "test.sh: $skip test(s) skipped; a skip counts as a failure here" >&2
	grep -h '^SKIP:' test-suite.log test-suite-linux.log test-suite-compat-*.log >&2 || true
	failed=$((failed + skip))
fi
echo "$pass passed, $failed failed"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
