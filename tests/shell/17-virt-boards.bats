#!/usr/bin/env bats
# Other guest architectures (issue 16): qemu-system-aarch64 and
# qemu-system-riscv64 of Debian 12 (7.2) and of its backports (10.0.2,
# unpacked by scripts/fetch-qemu.sh) - builds bhrr was not tested on: their
# self-check decides - with the virt-board guest (tests/guest/mmio/), whose
# free runs differ and whose record replays identically.  The hooks are
# host-side; nothing in bhrr knows the guest's architecture.

load helper

setup() {
	# shellcheck source=tests/guest/guest.sh
	. "$BHRR_SRCDIR/tests/guest/guest.sh"
	LOG="$BATS_TEST_TMPDIR/run.bhlog"
}

# Each completion line carries its latency by the board's virtual counter,
# which -icount derives from when the completion arrived: 20 free runs gave
# 20 different digests on each board and transport here (twice for the
# virtio-mmio ones).  Had the likeliest digest
# a mass m >= 0.3, at most one of 20 runs would hit it with probability
# 0.7^20 + 20 * 0.3 * 0.7^19 < 1%; so (at 99% confidence) m < 0.3, and 10
# runs give one digest with probability below m^9 = 2e-5.
# virt_free_run GUEST: one free run of GUEST on QEMU_ARCH, sound, its DIGEST set
virt_free_run() {
	virt_argv "$1" "$BATS_TEST_TMPDIR"
	run "$QEMU_ARCH" "${GUEST_ARGV[@]}"
	[ "$status" -eq 0 ]
	grep -q "^guest-${1%-pci}: virtio-blk " <<<"$output"
	grep -q '^done: cmds=32 ' <<<"$output"
	[ "$(grep -c '^cmd=.* st=0 ' <<<"$output")" -eq 32 ]
	DIGEST=$(sed -n 's/^done:.*digest=//p' <<<"$output")
}

free_runs_differ() {
	qemu_for 7.2 "$1"
	differs_within 10 virt_free_run "$1"
}

# record_replays VERSION ARCH: record once (through the self-check), replay 5 times, each identical
record_replays() {
	qemu_for "$1" "$2"
	shift
	virt_argv "$1" "$BATS_TEST_TMPDIR"
	rm -f "$LOG"
	"$BHRR" record -o "$LOG" -- "$QEMU_ARCH" "${GUEST_ARGV[@]}" </dev/null \
		>"$BATS_TEST_TMPDIR/rec.out" 2>"$BATS_TEST_TMPDIR/rec.err" || { cat "$BATS_TEST_TMPDIR/rec.err"; return 1; }
	cat "$BATS_TEST_TMPDIR/rec.err"
	grep -qF "its self-check passed" "$BATS_TEST_TMPDIR/rec.err"
	grep -q '^done: cmds=32 ' "$BATS_TEST_TMPDIR/rec.out"
	"$BHRR" verify "$LOG" | grep -q 'complete$'
	# every request has its completion, at an exact icount
	[ "$("$BHRR" dump --json "$LOG" | jq -s '[.[] | select(.kind == "io_complete" and .icount_exact)] | length')" -ge 32 ]
	for k in 1 2 3 4 5; do
		virt_argv "$1" "$BATS_TEST_TMPDIR"
		"$BHRR" replay "$LOG" -o "$BATS_TEST_TMPDIR/rep.bhlog" </dev/null >"$BATS_TEST_TMPDIR/rep.out" \
			2>"$BATS_TEST_TMPDIR/rep.err" || { cat "$BATS_TEST_TMPDIR/rep.err"; return 1; }
		cmp "$BATS_TEST_TMPDIR/rec.out" "$BATS_TEST_TMPDIR/rep.out" || { echo "$1: replay $k differs"; return 1; }
		grep -q "after \([0-9]*\) of \1 recorded events (end of the log" "$BATS_TEST_TMPDIR/rep.err" ||
			{ echo "$1: replay $k did not follow every event"; cat "$BATS_TEST_TMPDIR/rep.err"; return 1; }
	done
}

@test "aarch64: the guest passes, and free runs differ (two digests within 10 runs)" {
	free_runs_differ aarch64
}

@test "aarch64 on QEMU 7.2: recorded once (an untested build, through its self-check), replays identically 5 times" {
	record_replays 7.2 aarch64
}

@test "aarch64 on QEMU 10.0: recorded once, replays identically 5 times" {
	record_replays 10.0 aarch64
}

@test "aarch64 on virtio-pci: the guest passes, and free runs differ (two digests within 10 runs)" {
	free_runs_differ aarch64-pci
}

@test "aarch64 on virtio-pci, QEMU 7.2 and 10.0: recorded once, replays identically 5 times" {
	record_replays 7.2 aarch64-pci
	record_replays 10.0 aarch64-pci
}

@test "riscv64: the guest passes, and free runs differ (two digests within 10 runs)" {
	free_runs_differ riscv64
}

@test "riscv64 on QEMU 7.2: recorded once (an untested build, through its self-check), replays identically 5 times" {
	record_replays 7.2 riscv64
}

@test "riscv64 on QEMU 10.0: recorded once, replays identically 5 times" {
	record_replays 10.0 riscv64
}
