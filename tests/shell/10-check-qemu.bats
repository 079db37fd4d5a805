#!/usr/bin/env bats
# BHRR_MODE=check on the real QEMU 7.2 (system) and 10.0 (backports):
# every target function is hooked, the hooks fire, and the guest still
# boots, reads and verifies its disk, and exits cleanly.

load helper

# check_run VERSION [QEMU OPTIONS...]: run bhrr check on the mini guest.
check_run() {
	use_qemu "$1"
	shift
	mini_guest_argv "$@"
	run "$BHRR" check -- "${QEMU_ARGV[@]}"
	echo "$output"
}

# calls_of NAME: the exit-time call count of one hook.
calls_of() {
	grep '^bhrr: check: calls' <<<"$output" | tr ' ' '\n' | sed -n "s/^$1=//p"
}

assert_check_ok() {
	[ "$status" -eq "$MINI_PASS" ]
	grep -q '^mini: read 256 sectors ok' <<<"$output"
	grep -q "^bhrr: check: QEMU $1\." <<<"$output"
	grep -q '^bhrr: check: 14 targets, 14 hooked, 0 refused' <<<"$output"
	[ "$(grep -c '^bhrr: check: .* ok$' <<<"$output")" -eq 14 ]
	# the hooks do not just install: they fire, once per guest disk read
	[ "$(calls_of aio_bh_call)" -ge 256 ]
	[ "$(calls_of thread_pool_submit_aio)" -ge 256 ]
	[ "$(calls_of qemu_bh_schedule)" -ge 256 ]
	[ "$(calls_of aio_poll)" -gt 0 ]
	[ "$(calls_of timer_mod_ns)" -gt 0 ]
}

@test "check mode hooks every target on QEMU 7.2 and the guest exits cleanly" {
	check_run 7.2
	assert_check_ok 7.2
	grep -q '^bhrr: check: qemu_mutex_lock_iothread_impl .* ok$' <<<"$output"
}

@test "check mode hooks every target on QEMU 10.0 and the guest exits cleanly" {
	check_run 10.0
	assert_check_ok 10.0
	grep -q '^bhrr: check: bql_lock_impl .* ok$' <<<"$output"
}

# icount_get_raw is hooked but QEMU's own callers inline it: bhrr calls it,
# so only the warp hook is expected to fire here.
@test "check mode on QEMU 7.2 with -icount: the warp hook fires" {
	check_run 7.2 -icount shift=0,sleep=off
	assert_check_ok 7.2
	[ "$(calls_of icount_start_warp_timer)" -gt 0 ]
}

@test "check mode on QEMU 10.0 with -icount: the warp hook fires" {
	check_run 10.0 -icount shift=0,sleep=off
	assert_check_ok 10.0
	[ "$(calls_of icount_start_warp_timer)" -gt 0 ]
}

@test "check mode names the build by build-id" {
	check_run 7.2
	grep -q '^bhrr: check: QEMU 7.2.*, build-id [0-9a-f]\{40\}, /usr/bin/qemu-system-x86_64$' <<<"$output"
}
