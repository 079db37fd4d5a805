#!/usr/bin/env bats
# The shim leaks into every child of a preloaded process; outside QEMU, or
# without BHRR_MODE, it must change nothing at all.

load helper

@test "the shim preloaded into /bin/true with BHRR_MODE set changes nothing" {
	run env LD_PRELOAD="$SHIM" BHRR_MODE=check BHRR_VERBOSE=1 /bin/true
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "the shim preloaded into timeout 1 sleep 0 changes nothing" {
	run env LD_PRELOAD="$SHIM" BHRR_MODE=check BHRR_VERBOSE=1 timeout 1 sleep 0
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "the shim preloaded into bash -c exit keeps the exit status and prints nothing" {
	run env LD_PRELOAD="$SHIM" BHRR_MODE=check BHRR_VERBOSE=1 bash -c 'echo out; exit 7'
	[ "$status" -eq 7 ]
	[ "$output" = "out" ]
}

# Its exports are libc's openat64 and fcntl64 (shim/gate_fs.c: the 9p
# backend's opens and the flags it sets on them), which no QEMU defines:
# checked against both QEMUs' own exports.
@test "the shim exports no symbols that could shadow QEMU's: only libc's openat64 and fcntl64" {
	run sh -c "nm -D --defined-only '$SHIM' | awk '{print \$NF}' | grep -vE '^(_init|_fini)$' | sort"
	[ "$output" = "$(printf 'fcntl64\nopenat64')" ]
	for v in 7.2 10.0; do
		use_qemu "$v"
		! nm -D --defined-only "$QEMU_BIN" | awk '{print $NF}' | grep -qxE 'openat64|fcntl64' || false
	done
}

@test "inside QEMU without BHRR_MODE the shim is silent and the guest unchanged" {
	use_qemu 7.2
	mini_guest_argv
	"${QEMU_ARGV[@]}" >"$BATS_TEST_TMPDIR/plain" 2>&1 || true
	run env LD_PRELOAD="$SHIM" BHRR_VERBOSE=1 "${QEMU_ARGV[@]}"
	[ "$status" -eq "$MINI_PASS" ]
	[ "$output" = "$(cat "$BATS_TEST_TMPDIR/plain")" ]
}

@test "an unknown BHRR_MODE is reported once and QEMU runs on" {
	use_qemu 7.2
	mini_guest_argv
	run env LD_PRELOAD="$SHIM" BHRR_MODE=bogus "${QEMU_ARGV[@]}"
	[ "$status" -eq "$MINI_PASS" ]
	[ "$(grep -c "BHRR_MODE='bogus' is not a mode" <<<"$output")" -eq 1 ]
	grep -q '^mini: read 256 sectors ok' <<<"$output"
}

@test "bhrr rejects a check without a QEMU command line" {
	run "$BHRR" check
	[ "$status" -eq 2 ]
	[[ "$output" == *"no QEMU command line given"* ]]
}
