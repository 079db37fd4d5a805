#!/bin/sh
# san-reports.sh DIR: print every ASan/UBSan log under DIR (asan.PID and
# ubsan.PID, from the log_path of ASAN_OPTIONS and UBSAN_OPTIONS) that holds
# more than ASan's warnings about QEMU's coroutines, and exit 1 if there is
# one.  Every QEMU writes those warnings once (its coroutines switch stacks
# with swapcontext, which ASan only partly follows); they report no fault.
# Anything else is a report.
benign='^==[0-9]+==WARNING: ASan (doesn.t fully support makecontext/swapcontext functions|is ignoring requested __asan_handle_no_return: stack type: )'
benign="$benign|^False positive error reports may follow\$|^For details see https://github.com/google/sanitizers/issues/189\$"
found=0
for f in $(find "$1" -type f -name '*san.*' | sort); do
	if grep -qvE "$benign" "$f"; then
		echo "== sanitizer report $f"
		cat "$f"
		found=1
	fi
done
exit "$found"
