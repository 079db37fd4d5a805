#!/bin/sh
# san-reports.sh DIR: print every ASan/UBSan log (san.PID, from ASAN_OPTIONS'
# log_path) under DIR that holds more than the runtime's warnings about
# QEMU's coroutines, and exit 1 if there is one.  Those warnings are written
# once by every QEMU (its coroutines switch stacks with swapcontext, which
# ASan only partly follows) and are no report of a fault; anything else is.
benign='^==[0-9]+==WARNING: ASan (doesn.t fully support makecontext/swapcontext functions|is ignoring requested __asan_handle_no_return: stack type: )'
benign="$benign|^False positive error reports may follow\$|^For details see https://github.com/google/sanitizers/issues/189\$"
found=0
for f in $(find "$1" -type f -name 'san.*' | sort); do
	if grep -qvE "$benign" "$f"; then
		echo "== sanitizer report $f"
		cat "$f"
		found=1
	fi
done
exit "$found"
