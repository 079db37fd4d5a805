#!/usr/bin/env bats
# The self-check instead of an allow-list (issue 16): a QEMU build bhrr was
# not tested on records when its self-check passes, and is refused, naming
# the check, when one fails.  The untested build is a copy of a tested one
# with one byte of its GNU build-id changed: the same code under another
# identity, which no allow-list knows.

load helper

setup() {
	# shellcheck source=tests/guest/guest.sh
	. "$BHRR_SRCDIR/tests/guest/guest.sh"
	LOG="$BATS_TEST_TMPDIR/run.bhlog"
}

# untested VERSION: QEMU_BIN becomes a copy of QEMU VERSION whose build-id
# differs in its first byte; it finds its modules and firmware where the
# original does.
untested() {
	use_qemu "$1"
	local d="$BATS_TEST_TMPDIR/untested-$1"
	mkdir -p "$d"
	cp "$QEMU_BIN" "$d/qemu-system-x86_64"
	python3 - "$d/qemu-system-x86_64" <<'PY'
import subprocess, sys
path = sys.argv[1]
for line in subprocess.check_output(["readelf", "-S", "-W", path], text=True).splitlines():
    if ".note.gnu.build-id" in line:
        off = int(line.split("]", 1)[1].split()[3], 16)
with open(path, "r+b") as f:
    f.seek(off + 16)  # the note's header: namesz, descsz, type, "GNU\0"
    b = f.read(1)
    f.seek(off + 16)
    f.write(bytes([b[0] ^ 0xff]))
PY
	if [ "$1" = 7.2 ]; then
		export QEMU_MODULE_DIR=/usr/lib/x86_64-linux-gnu/qemu
		QEMU_FW="-L /usr/share/seabios -L /usr/share/qemu"
	fi
	ORIG_ID=$(readelf -n "$QEMU_BIN" | sed -n 's/.*Build ID: //p')
	QEMU_BIN="$d/qemu-system-x86_64"
	ID=$(readelf -n "$QEMU_BIN" | sed -n 's/.*Build ID: //p')
	[ -n "$ID" ] && [ "$ID" != "$ORIG_ID" ]
}

# record_guest [OPTIONS]: bhrr record [OPTIONS] of the ide-pio guest on $QEMU_BIN; its status
record_guest() {
	guest_argv ide-pio "$BATS_TEST_TMPDIR"
	# shellcheck disable=SC2086
	"$BHRR" record "$@" -o "$LOG" -- "$QEMU_BIN" $QEMU_FW "${GUEST_ARGV[@]}" \
		>"$BATS_TEST_TMPDIR/rec.out" 2>"$BATS_TEST_TMPDIR/rec.err"
}

@test "an untested build whose self-check passes records without --force, and replays identically (QEMU 7.2 and 10.0)" {
	for v in 7.2 10.0; do
		rm -f "$LOG"
		untested "$v"
		st=0
		record_guest || st=$?
		cat "$BATS_TEST_TMPDIR/rec.err"
		[ "$st" -eq "$GUEST_PASS" ]
		grep -qF "bhrr: record: $QEMU_BIN (build-id $ID) is not a QEMU build bhrr was tested on; its self-check passed" "$BATS_TEST_TMPDIR/rec.err"
		grep -qF "bhrr: QEMU build $ID (" "$BATS_TEST_TMPDIR/rec.err"
		grep -qF "is not one bhrr was tested on; its self-check passed (6 checks" "$BATS_TEST_TMPDIR/rec.err"
		grep -q '^done: dev=ide cmds=64' "$BATS_TEST_TMPDIR/rec.out"
		run "$BHRR" verify "$LOG"
		[ "$status" -eq 0 ]
		[[ "$output" == *"complete" ]]
		"$BHRR" dump "$LOG" | grep -qF "build-id $ID"
		[ "$("$BHRR" stat --json "$LOG" | jq '.kinds.io_complete.count')" -ge 64 ]
		guest_argv ide-pio "$BATS_TEST_TMPDIR"
		st=0
		"$BHRR" replay "$LOG" -o "$BATS_TEST_TMPDIR/rep.bhlog" >"$BATS_TEST_TMPDIR/rep.out" \
			2>"$BATS_TEST_TMPDIR/rep.err" || st=$?
		cat "$BATS_TEST_TMPDIR/rep.err"
		[ "$st" -eq "$GUEST_PASS" ]
		# every recorded event was followed, whatever their number
		grep -q "after \([0-9]*\) of \1 recorded events (end of the log" "$BATS_TEST_TMPDIR/rep.err"
		cmp "$BATS_TEST_TMPDIR/rec.out" "$BATS_TEST_TMPDIR/rep.out"
	done
}

@test "bhrr check prints the tested builds and the whole self-check of an untested build" {
	untested 10.0
	run "$BHRR" check -- "$QEMU_BIN" -version
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(grep -c '^bhrr: check: tested build [0-9a-f]\{40\}  ' <<<"$output")" -eq 2 ]
	grep -qF "bhrr: check: this build ($ID) is not one bhrr was tested on" <<<"$output"
	for c in version symbols bh-layout icount cpu-fields hook-sites; do
		grep -q "^bhrr: check: self-check $c *ok: " <<<"$output" || { echo "not ok: $c"; false; }
	done
	grep -q '^bhrr: check: self-check passed (6 checks)$' <<<"$output"
}

@test "an untested build with a check made to fail is refused before QEMU starts, naming the check" {
	untested 7.2
	export BHRR_TEST_BREAK_CHECK=bh-layout
	run record_guest
	cat "$BATS_TEST_TMPDIR/rec.err"
	[ "$status" -eq 2 ]
	grep -qF "is not a QEMU build bhrr was tested on, and its self-check failed: bh-layout: found a second QEMUBH holds" "$BATS_TEST_TMPDIR/rec.err"
	grep -qF "expected every offset the first probe found to hold" "$BATS_TEST_TMPDIR/rec.err"
	# before QEMU starts: the guest never ran, and nothing was written
	[ ! -s "$BATS_TEST_TMPDIR/rec.out" ]
	[ ! -e "$LOG" ]
	# bhrr check names it too
	run "$BHRR" check -- "$QEMU_BIN" $QEMU_FW -version
	grep -q '^bhrr: check: self-check bh-layout  FAILED: found a second QEMUBH' <<<"$output"
	grep -q '^bhrr: check: self-check failed: bh-layout: ' <<<"$output"
	# the shim refuses such a build too, however it is started, and QEMU runs on without it
	guest_argv ide-pio "$BATS_TEST_TMPDIR"
	# shellcheck disable=SC2086
	BHRR_MODE=record BHRR_LOG="$LOG" LD_PRELOAD="$SHIM" "$QEMU_BIN" $QEMU_FW "${GUEST_ARGV[@]}" \
		>"$BATS_TEST_TMPDIR/pre.out" 2>"$BATS_TEST_TMPDIR/pre.err" || true
	grep -qF "is not one bhrr was tested on, and its self-check failed: bh-layout: " "$BATS_TEST_TMPDIR/pre.err"
	grep -q '^done: dev=ide cmds=64' "$BATS_TEST_TMPDIR/pre.out"
	[ ! -e "$LOG" ]
	# --force cannot make a run of a check bhrr cannot work without: the
	# shim still refuses, names it, and QEMU runs on unrecorded
	run record_guest --force
	cat "$BATS_TEST_TMPDIR/rec.err"
	[ "$status" -eq "$GUEST_PASS" ]
	grep -qF "): self-check bh-layout failed: found a second QEMUBH holds" "$BATS_TEST_TMPDIR/rec.err"
	grep -q '^done: dev=ide cmds=64' "$BATS_TEST_TMPDIR/rec.out"
	[ ! -e "$LOG" ]
}

@test "a tested build with a check made to fail is refused by the shim, naming the check" {
	use_qemu 7.2
	guest_argv ide-pio "$BATS_TEST_TMPDIR"
	BHRR_TEST_BREAK_CHECK=bh-layout BHRR_MODE=record BHRR_LOG="$LOG" LD_PRELOAD="$SHIM" \
		"$QEMU_BIN" "${GUEST_ARGV[@]}" >"$BATS_TEST_TMPDIR/pre.out" 2>"$BATS_TEST_TMPDIR/pre.err" || true
	cat "$BATS_TEST_TMPDIR/pre.err"
	grep -qF "): self-check bh-layout failed: found a second QEMUBH holds" "$BATS_TEST_TMPDIR/pre.err"
	grep -q '^done: dev=ide cmds=64' "$BATS_TEST_TMPDIR/pre.out"
	[ ! -e "$LOG" ]
	# an unknown name is refused as a setting, not ignored
	BHRR_TEST_BREAK_CHECK=nosuch BHRR_MODE=record BHRR_LOG="$LOG" LD_PRELOAD="$SHIM" \
		"$QEMU_BIN" -version 2>"$BATS_TEST_TMPDIR/bad.err" >/dev/null || true
	grep -qF "BHRR_TEST_BREAK_CHECK=nosuch: the only check it can break is 'bh-layout'" "$BATS_TEST_TMPDIR/bad.err"
}

@test "a wrapper script around a QEMU: bhrr learns the build-id from the shim inside it, and replays without --force" {
	use_qemu 7.2
	printf '#!/bin/sh\nexec %s "$@"\n' "$QEMU_BIN" >"$BATS_TEST_TMPDIR/qemu-wrapper"
	chmod +x "$BATS_TEST_TMPDIR/qemu-wrapper"
	QEMU_BIN="$BATS_TEST_TMPDIR/qemu-wrapper"
	id=$(readelf -n /usr/bin/qemu-system-x86_64 | sed -n 's/.*Build ID: //p')
	st=0
	record_guest || st=$?
	cat "$BATS_TEST_TMPDIR/rec.err"
	[ "$st" -eq "$GUEST_PASS" ]
	# a tested build behind the wrapper: no self-check verdict needed, none said
	! grep -q "is not a QEMU build bhrr was tested on" "$BATS_TEST_TMPDIR/rec.err" || false
	"$BHRR" dump "$LOG" | grep -qF "build-id $id"
	guest_argv ide-pio "$BATS_TEST_TMPDIR"
	st=0
	"$BHRR" replay "$LOG" -o "$BATS_TEST_TMPDIR/rep.bhlog" -- "$QEMU_BIN" "${GUEST_ARGV[@]}" \
		>"$BATS_TEST_TMPDIR/rep.out" 2>"$BATS_TEST_TMPDIR/rep.err" || st=$?
	cat "$BATS_TEST_TMPDIR/rep.err"
	[ "$st" -eq "$GUEST_PASS" ]
	cmp "$BATS_TEST_TMPDIR/rec.out" "$BATS_TEST_TMPDIR/rep.out"
	# a log of another build is still refused through the wrapper
	printf '#!/bin/sh\nexec %s "$@"\n' "$BHRR_BUILDDIR/qemu/10.0/root/usr/bin/qemu-system-x86_64" \
		>"$BATS_TEST_TMPDIR/qemu-wrapper"
	run "$BHRR" replay "$LOG" -o "$BATS_TEST_TMPDIR/rep2.bhlog" -- "$QEMU_BIN" "${GUEST_ARGV[@]}"
	[ "$status" -eq 2 ]
	[[ "$output" == *"was recorded with QEMU build $id"*"; $QEMU_BIN is build "*"; refusing"* ]]
}
