#!/usr/bin/env bats
# No surprises for the host: a log is never written through a planted
# symbolic link nor over an existing file unless asked, is created 0644 or
# tighter whatever the umask, and the shim leaves no page writable and
# executable once its hooks are in (QEMU's own JIT buffer aside).

load helper

setup() {
	# shellcheck source=tests/guest/guest.sh
	. "$BHRR_SRCDIR/tests/guest/guest.sh"
	LOG="$BATS_TEST_TMPDIR/run.bhlog"
	use_qemu 7.2
}

record_ide() {
	guest_argv ide-pio "$BATS_TEST_TMPDIR"
	GUEST_ARGV=("${GUEST_ARGV[@]/n=64/n=4}")
	run "$BHRR" record "$@" -o "$LOG" -- "$QEMU_BIN" "${GUEST_ARGV[@]}"
}

@test "bhrr record refuses a symbolic link planted at the log path, before QEMU starts" {
	echo precious >"$BATS_TEST_TMPDIR/target"
	ln -s "$BATS_TEST_TMPDIR/target" "$LOG"
	record_ide --force
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"'$LOG' is a symbolic link; refusing to write a log through it"* ]]
	[ "$(cat "$BATS_TEST_TMPDIR/target")" = precious ]
	# nothing ran: no guest output
	! grep -q '^digest=' <<<"$output" || false
}

@test "the shim preloaded by hand refuses a planted symbolic link, and QEMU runs on" {
	echo precious >"$BATS_TEST_TMPDIR/target"
	ln -s "$BATS_TEST_TMPDIR/target" "$LOG"
	guest_argv ide-pio "$BATS_TEST_TMPDIR"
	GUEST_ARGV=("${GUEST_ARGV[@]/n=64/n=4}")
	run env BHRR_MODE=record BHRR_LOG="$LOG" BHRR_LOG_OVERWRITE=1 LD_PRELOAD="$SHIM" \
		"$QEMU_BIN" "${GUEST_ARGV[@]}"
	echo "$output"
	[ "$status" -eq "$GUEST_PASS" ]
	[[ "$output" == *"cannot create log '$LOG': it is a symbolic link; refusing to follow it; not recording"* ]]
	[ "$(cat "$BATS_TEST_TMPDIR/target")" = precious ]
}

@test "bhrr record keeps an existing log unless --force, and --force replaces it" {
	echo precious >"$LOG"
	record_ide
	[ "$status" -ne 0 ]
	[[ "$output" == *"log '$LOG' exists; refusing to overwrite it (--force overwrites)"* ]]
	[ "$(cat "$LOG")" = precious ]
	record_ide --force
	[ "$status" -eq "$GUEST_PASS" ]
	run "$BHRR" verify "$LOG"
	[ "$status" -eq 0 ]
}

@test "a log is created 0644 or tighter even under umask 000" {
	(umask 000 && record_ide && [ "$status" -eq "$GUEST_PASS" ])
	mode=$(stat -c %a "$LOG")
	echo "mode $mode"
	[ $((8#$mode & 8#133)) -eq 0 ]
}

# rwx_maps PID: the sizes of the process's writable and executable mappings,
# and any such mapping backed by a file.
rwx_maps() {
	local range perms off dev inode path
	while read -r range perms off dev inode path; do
		case "$perms" in *w*x*) ;; *) continue ;; esac
		echo "$((16#${range#*-} - 16#${range%-*})) ${path:-anon}"
	done <"/proc/$1/maps" | sort
}

# paused_qemu [ENV...]: QEMU stopped before its guest's first instruction (-S),
# its QMP socket up: every hook is in by then (the constructor installs them).
paused_qemu() {
	local sock="$BATS_TEST_TMPDIR/qmp.sock" i
	rm -f "$sock"
	env "$@" "$QEMU_BIN" -nodefaults -display none -accel tcg -S \
		-qmp "unix:$sock,server=on,wait=off" >/dev/null 2>&1 &
	QPID=$!
	for i in $(seq 1 600); do
		[ -S "$sock" ] && return 0
		kill -0 "$QPID" || return 1
		sleep 0.05
	done
	return 1
}

@test "no page is left writable and executable once the hooks are installed" {
	paused_qemu BHRR_MODE=record BHRR_LOG="$LOG" LD_PRELOAD="$SHIM"
	grep -q libbhrr "/proc/$QPID/maps"
	rwx_maps "$QPID" >"$BATS_TEST_TMPDIR/bhrr"
	grep " $QEMU_BIN\$" "/proc/$QPID/maps" | awk '{ print $2 }' >"$BATS_TEST_TMPDIR/exe"
	kill "$QPID"; wait "$QPID" || true
	echo "writable and executable with bhrr:"; cat "$BATS_TEST_TMPDIR/bhrr"
	echo "QEMU's own mappings:"; cat "$BATS_TEST_TMPDIR/exe"
	# the patched text is executable and not writable again
	grep -q '^r-x' "$BATS_TEST_TMPDIR/exe"
	! grep -q '^.wx' "$BATS_TEST_TMPDIR/exe" || false
	# what stays writable and executable is QEMU's own TCG buffer (anonymous,
	# 1 GiB here): never a file, and never a page the size the hook engine
	# allocates its trampolines in (4 KiB, near QEMU's text)
	! grep -v ' anon$' "$BATS_TEST_TMPDIR/bhrr" || false
	while read -r size _; do
		[ "$size" -ge $((1024 * 1024)) ]
	done <"$BATS_TEST_TMPDIR/bhrr"
}
