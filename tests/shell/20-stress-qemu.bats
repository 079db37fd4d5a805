#!/usr/bin/env bats
# Stress: null hooks on every function QEMU exports at once.  Each accepted
# hook runs its relocated instructions on real code; QEMU must still boot the
# guest to a clean exit, and every refusal must be one the engine's rules
# allow for compiler-generated code (too short, or a branch into the window),
# never a decoder, relocation or memory failure.

load helper

stress_run() {
	use_qemu "$1"
	shift
	mini_guest_argv "$@"
	run "$BHRR" check --all -- "${QEMU_ARGV[@]}"
	grep -v '^bhrr: check-all: refused' <<<"$output"
	grep '^bhrr: check-all: refused' <<<"$output" | awk '{print $6}' | sort | uniq -c
}

assert_stress_ok() {
	[ "$status" -eq "$MINI_PASS" ]
	grep -q '^mini: read 256 sectors ok' <<<"$output"
	summary=$(grep '^bhrr: check-all: [0-9]* exported functions' <<<"$output")
	[ -n "$summary" ]
	funcs=$(awk '{print $3}' <<<"$summary")
	hooked=$(awk '{print $6}' <<<"$summary")
	[ "$funcs" -gt 5000 ]
	# at least 98% of the exports are hookable
	[ $((hooked * 100 / funcs)) -ge 98 ]
	# refusals are only of the kinds the rules expect on compiled code
	! grep '^bhrr: check-all: refused' <<<"$output" | grep -vE ' (too-short|back-jump|already):' || false
	# each refusal line names a function, its offset and a reason
	! grep '^bhrr: check-all: refused' <<<"$output" | grep -vE 'refused [A-Za-z_][A-Za-z0-9_.]* @0x[0-9a-f]+ [a-z-]+: .+' || false
}

@test "null hooks on every QEMU 7.2 export: the guest still exits cleanly" {
	stress_run 7.2
	assert_stress_ok
}

@test "null hooks on every QEMU 7.2 export under -icount: the guest still exits cleanly" {
	stress_run 7.2 -icount shift=0,sleep=off
	assert_stress_ok
}

@test "null hooks on every QEMU 10.0 export: the guest still exits cleanly" {
	stress_run 10.0
	assert_stress_ok
}

@test "null hooks on every QEMU 10.0 export under -icount: the guest still exits cleanly" {
	stress_run 10.0 -icount shift=0,sleep=off
	assert_stress_ok
}

@test "QEMU 7.2 refusals match the documented survey: bdrv_get_info is a back-jump" {
	stress_run 7.2
	grep -q '^bhrr: check-all: refused bdrv_get_info @0x[0-9a-f]* back-jump' <<<"$output"
}
