#!/usr/bin/env bats
# Entropy from the host (issue 14, point 4) on the real QEMU 7.2 and 10.0:
# the bytes an rng-random backend reads from /dev/urandom for a virtio-rng
# are recorded with their icounts, and a replay hands the guest the same
# bytes at the same points without asking the backend.
#
# The guest (entropy configuration, rng=) reads 8 chunks of 16 bytes and
# prints them: two free runs print different bytes, whatever the timing.
# Backends: rng-random (/dev/urandom), rng-builtin (QEMU's default), and
# rng-egd fed by an EGD daemon over a socket.

load helper

setup() {
	# shellcheck source=tests/guest/guest.sh
	. "$BHRR_SRCDIR/tests/guest/guest.sh"
	LOG="$BATS_TEST_TMPDIR/rec.bhlog"
}

# entropy_replays VERSION [CONFIG]: record once, replay 3 times
entropy_replays() {
	local config=${2:-entropy}
	use_qemu "$1"
	guest_argv "$config" "$BATS_TEST_TMPDIR"
	st=0
	# shellcheck disable=SC2086
	timeout 60 "$BHRR" record -o "$LOG" -- "$QEMU_BIN" $QEMU_FW "${GUEST_ARGV[@]}" \
		>"$BATS_TEST_TMPDIR/rec.out" 2>"$BATS_TEST_TMPDIR/rec.err" || st=$?
	cat "$BATS_TEST_TMPDIR/rec.err"
	[ "$st" -eq "$GUEST_PASS" ]
	[ "$(grep -c '^rng: chunk [0-7]: 16 bytes' "$BATS_TEST_TMPDIR/rec.out")" -eq 8 ]
	# rng-random: the 128 bytes the guest took are in the log's rng_read events
	local logged
	logged=$("$BHRR" dump --json "$LOG" | jq -r 'select(.kind == "rng_read") | .data_hex' | tr -d '\n')
	echo "logged: ${#logged} hex digits"
	if [ "$config" = entropy ]; then
		[ "${#logged}" -ge 256 ]
	else
		[ -z "$logged" ] # rng-builtin answers in a gated BH, from QEMU's seeded generator
	fi
	replay_entropy "$config" 3
}

# replay_entropy CONFIG N: replay $LOG N times with the guest's command line
# for CONFIG (fresh disks): each prints the recording's output, follows
# every recorded action, and exits as it did
replay_entropy() {
	for k in $(seq "$2"); do
		guest_argv "$1" "$BATS_TEST_TMPDIR"
		local st=0
		# shellcheck disable=SC2086
		timeout 60 "$BHRR" replay "$LOG" -o "$BATS_TEST_TMPDIR/rep.bhlog" -- "$QEMU_BIN" $QEMU_FW \
			"${GUEST_ARGV[@]}" >"$BATS_TEST_TMPDIR/rep.out" 2>"$BATS_TEST_TMPDIR/rep.err" || st=$?
		cat "$BATS_TEST_TMPDIR/rep.err"
		[ "$st" -eq "$GUEST_PASS" ]
		! grep -q divergence "$BATS_TEST_TMPDIR/rep.err" || false
		cmp "$BATS_TEST_TMPDIR/rec.out" "$BATS_TEST_TMPDIR/rep.out"
		"$BHRR" diff "$LOG" "$BATS_TEST_TMPDIR/rep.bhlog"
		echo "replay $k: identical"
	done
}

@test "QEMU 7.2: a virtio-rng fed from /dev/urandom replays the recorded bytes (3/3)" {
	entropy_replays 7.2
}

@test "QEMU 10.0: a virtio-rng fed from /dev/urandom replays the recorded bytes (3/3)" {
	entropy_replays 10.0
}

@test "QEMU 7.2: a virtio-rng on QEMU's default rng-builtin replays (its BH is gated, -seed makes its bytes) (3/3)" {
	entropy_replays 7.2 entropy-builtin
}

@test "QEMU 10.0: a virtio-rng on QEMU's default rng-builtin replays (its BH is gated, -seed makes its bytes) (3/3)" {
	entropy_replays 10.0 entropy-builtin
}

# entropy_egd VERSION: a virtio-rng on rng-egd, whose bytes an EGD daemon
# (tests/helper/egd-feeder.py) sends through a socket chardev.  They reach
# the backend through the console gate (chr_read events for its reader);
# replayed twice with no daemon (QEMU's socket no longer waits for one).
entropy_egd() {
	use_qemu "$1"
	local d=$BATS_TEST_TMPDIR
	guest_argv entropy-egd "$d"
	python3 "$BHRR_SRCDIR/tests/helper/egd-feeder.py" "$d/egd.sock" &
	local feeder=$! st=0
	# shellcheck disable=SC2086
	timeout 60 "$BHRR" record -o "$LOG" -- "$QEMU_BIN" $QEMU_FW "${GUEST_ARGV[@]}" \
		>"$d/rec.out" 2>"$d/rec.err" || st=$?
	wait "$feeder" || true
	cat "$d/rec.err"
	[ "$st" -eq "$GUEST_PASS" ]
	[ "$(grep -c '^rng: chunk [0-7]: 16 bytes' "$d/rec.out")" -eq 8 ]
	local logged
	logged=$("$BHRR" dump --json "$LOG" | jq -r 'select(.kind == "chr_read") | .data_hex' | tr -d '\n')
	echo "logged: ${#logged} hex digits"
	[ "${#logged}" -ge 256 ]
	EGD_WAIT=off replay_entropy entropy-egd 2
}

@test "QEMU 7.2: a virtio-rng fed by an EGD daemon (rng-egd on a socket) replays with no daemon (2/2)" {
	entropy_egd 7.2
}

@test "QEMU 10.0: a virtio-rng fed by an EGD daemon (rng-egd on a socket) replays with no daemon (2/2)" {
	entropy_egd 10.0
}
