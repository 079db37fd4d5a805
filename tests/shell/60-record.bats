#!/usr/bin/env bats
# bhrr record on the real QEMU 7.2 and 10.0 with the bundled guests: the
# guest still passes, the log verifies, every I/O request has its own
# completion event at an exact icount, and every quit path leaves a
# complete log.

load helper

setup() {
	# shellcheck source=tests/guest/guest.sh
	. "$BHRR_SRCDIR/tests/guest/guest.sh"
	LOG="$BATS_TEST_TMPDIR/run.bhlog"
}

# record VERSION CONFIG [extra -append words]: one recorded run.
record() {
	use_qemu "$1"
	guest_argv "$2" "$BATS_TEST_TMPDIR"
	local append
	append=$(guest_append "$2")
	GUEST_ARGV=("${GUEST_ARGV[@]/$append/$append ${3:-}}")
	# shellcheck disable=SC2086
	rm -f "$LOG" # a log is never overwritten without --force
	run env BHRR_VERBOSE=1 "$BHRR" record -o "$LOG" -- "$QEMU_BIN" $QEMU_FW "${GUEST_ARGV[@]}"
}

json() {
	"$BHRR" dump --json "$LOG"
}

# The checks every recorded run must pass; $1 = requests expected, or "ge:N".
assert_recorded() {
	[ "$status" -eq "$GUEST_PASS" ] || [ "$status" -eq "$GUEST_FLAKY" ]
	run "$BHRR" verify "$LOG"
	[ "$status" -eq 0 ]
	[[ "$output" == *"complete" ]]
	json >"$BATS_TEST_TMPDIR/events"
	exact=$(jq -s '[.[] | select(.kind == "io_complete" and .icount_exact)] | length' "$BATS_TEST_TMPDIR/events")
	echo "exact io_complete events: $exact (want $1)"
	case "$1" in
	ge:*) [ "$exact" -ge "${1#ge:}" ] ;;
	*) [ "$exact" -eq "$1" ] ;;
	esac
	# every completion has its own request id, submitted before it
	[ "$(jq -s '[.[] | select(.kind == "io_complete") | .req] | (length == (unique | length))' "$BATS_TEST_TMPDIR/events")" = true ]
	# exact icounts never go backwards in the executor's stream
	[ "$(jq -s '[.[] | select(.icount_exact == true) | .icount] | . == sort' "$BATS_TEST_TMPDIR/events")" = true ]
	# the header says exact mode
	"$BHRR" dump "$LOG" | grep -q '^# icount mode exact, shift 0'
}

assert_schedules_logged() {
	calls=$(sed -n 's/.* \([0-9]*\) schedule calls;.*/\1/p' <<<"$output")
	logged=$(jq -s '[.[] | select(.kind == "bh_schedule")] | length' "$BATS_TEST_TMPDIR/events")
	echo "schedule calls $calls, bh_schedule events $logged"
	[ -n "$calls" ] && [ "$calls" -gt 0 ] && [ "$calls" -eq "$logged" ]
}

@test "record on QEMU 7.2: IDE by PIO, one completion event per sector" {
	record 7.2 ide-pio
	out=$output
	assert_recorded 512
	output=$out
	assert_schedules_logged
}

@test "record on QEMU 7.2: IDE by DMA with IRQs, one completion per command" {
	record 7.2 ide-dma-irq
	assert_recorded 64
}

@test "record on QEMU 7.2: AHCI with 8 NCQ commands in flight, one completion per command" {
	record 7.2 ahci-ncq
	assert_recorded 64
}

@test "record on QEMU 7.2: virtio-blk with 8 requests in flight, a completion per request" {
	record 7.2 virtio
	assert_recorded ge:64
}

@test "record on QEMU 10.0: IDE, AHCI and virtio-blk" {
	record 10.0 ide-pio-pit
	assert_recorded 512
	record 10.0 ahci-ncq-irq
	assert_recorded 64
	record 10.0 virtio-irq
	assert_recorded ge:64
}

@test "record names each gated callback and tags completions with the running BH's icount" {
	record 7.2 ahci-ncq
	json >"$BATS_TEST_TMPDIR/events"
	# the thread-pool completion BH is gated and named
	jq -r 'select(.kind == "bh_run") | .name' "$BATS_TEST_TMPDIR/events" | grep -qx thread_pool_completion_bh
	# every exact completion shares its icount with the bh_run before it
	[ "$(jq -s 'reduce .[] as $e ({ok: true, last: null};
		if $e.kind == "bh_run" then .last = $e.icount
		elif ($e.kind == "io_complete" and $e.icount_exact) then .ok = (.ok and $e.icount == .last)
		else . end) | .ok' "$BATS_TEST_TMPDIR/events")" = true ]
}

# creation_names: "name instance" of every bh_new in $LOG, in log order.
creation_names() {
	json | jq -r 'select(.kind == "bh_new") | "\(.name) \(.instance)"'
}

assert_creation_ordinals() {
	json >"$BATS_TEST_TMPDIR/events"
	# instances count from 1 per identity, without gaps or repeats
	[ "$(jq -s '[.[] | select(.kind == "bh_new")] | group_by(.ident)
		| all(. as $g | [$g[].instance] == [range(1; ($g | length) + 1)])' "$BATS_TEST_TMPDIR/events")" = true ]
	# every bh_run and bh_delete naming an instance names one created before it
	[ "$(jq -s 'reduce .[] as $e ({ok: true, made: {}};
		if $e.kind == "bh_new" then .made["\($e.ident)/\($e.instance)"] = true
		elif (($e.kind == "bh_run" or $e.kind == "bh_delete") and ($e.instance // 0) > 0)
		then .ok = (.ok and (.made["\($e.ident)/\($e.instance)"] // false))
		else . end) | .ok' "$BATS_TEST_TMPDIR/events")" = true ]
	# the thread pool's completion BH is a created one: its runs name it
	[ "$(jq -s '[.[] | select(.kind == "bh_run" and .name == "thread_pool_completion_bh")
		| .instance // 0] | length > 0 and all(. > 0)' "$BATS_TEST_TMPDIR/events")" = true ]
}

@test "record numbers BH creations, stable across runs, on QEMU 7.2 and 10.0" {
	for v in 7.2 10.0; do
		record "$v" virtio-irq
		assert_recorded ge:64
		assert_creation_ordinals
		creation_names >"$BATS_TEST_TMPDIR/names.1"
		record "$v" virtio-irq
		creation_names >"$BATS_TEST_TMPDIR/names.2"
		echo "QEMU $v: $(wc -l <"$BATS_TEST_TMPDIR/names.1") BHs created"
		[ -s "$BATS_TEST_TMPDIR/names.1" ]
		cmp "$BATS_TEST_TMPDIR/names.1" "$BATS_TEST_TMPDIR/names.2"
	done
	# the restart BHs a VM start makes are deleted by their own callbacks, after running
	json | jq -r 'select(.kind == "bh_delete") | .name' | grep -q restart_bh
}

@test "scheduling calls and submissions in the vCPU thread carry exact icounts, in order, on 7.2 and 10.0" {
	for v in 7.2 10.0; do
		record "$v" virtio-irq
		grep -q 'can_do_io@' <<<"$output"
		assert_recorded ge:64 # includes: exact icounts never go backwards
		n=$(jq -s '[.[] | select(.kind == "bh_schedule" and .role == "vcpu" and .icount_exact)] | length' "$BATS_TEST_TMPDIR/events")
		m=$(jq -s '[.[] | select(.kind == "io_submit" and .icount_exact)] | length' "$BATS_TEST_TMPDIR/events")
		echo "QEMU $v: $n exact vCPU-thread schedule calls, $m exact submissions"
		[ "$n" -gt 0 ] && [ "$m" -ge 64 ]
		# the other threads' stay lower bounds
		[ "$(jq -s '[.[] | select(.kind == "bh_schedule" and .role != "vcpu" and .icount_exact)] | length' "$BATS_TEST_TMPDIR/events")" -eq 0 ]
	done
}

@test "BHRR_STACKS=4 gives every scheduling event its call site" {
	use_qemu 7.2
	guest_argv virtio "$BATS_TEST_TMPDIR"
	BHRR_STACKS=4 run "$BHRR" record -o "$LOG" -- "$QEMU_BIN" "${GUEST_ARGV[@]}"
	[ "$status" -eq "$GUEST_PASS" ]
	json >"$BATS_TEST_TMPDIR/events"
	[ "$(jq -s '[.[] | select(.kind == "bh_schedule" and .site == null)] | length' "$BATS_TEST_TMPDIR/events")" -eq 0 ]
	# a site is up to 4 frames, each an offset in the QEMU executable
	jq -r 'select(.kind == "bh_schedule") | .site' "$BATS_TEST_TMPDIR/events" | sort -u >"$BATS_TEST_TMPDIR/sites"
	! grep -vE '^\+0x[0-9a-f]+( \+0x[0-9a-f]+){0,3}$' "$BATS_TEST_TMPDIR/sites" || false
	[ "$(wc -l <"$BATS_TEST_TMPDIR/sites")" -ge 2 ]
}

@test "record --as-is without -icount keeps the order and says which mode it used" {
	use_qemu 7.2
	guest_argv virtio "$BATS_TEST_TMPDIR"
	args=()
	for a in "${GUEST_ARGV[@]}"; do
		case "$a" in -icount|shift=0,sleep=off) ;; *) args+=("$a") ;; esac
	done
	run "$BHRR" record --as-is -o "$LOG" -- "$QEMU_BIN" "${args[@]}"
	! grep -q 'record: added' <<<"$output" || false
	[ "$status" -eq "$GUEST_PASS" ]
	[ "$(grep -c 'warning: no -icount' <<<"$output")" -eq 1 ]
	"$BHRR" dump "$LOG" | grep -q '^# icount mode none'
	[ "$(json | jq -s '[.[] | select(.kind == "bh_run")] | length')" -gt 0 ]
}

# no_determinism: GUEST_ARGV without -icount, -seed and -rtc, with accel=kvm:tcg for -accel tcg
no_determinism() {
	local a skip=0
	ARGS=()
	for a in "${GUEST_ARGV[@]}"; do
		if [ "$skip" = 1 ]; then skip=0; continue; fi
		case "$a" in
		-icount|-seed|-rtc|-accel) skip=1 ;;
		*) ARGS+=("$a") ;;
		esac
	done
	ARGS+=(-machine pc,accel=kvm:tcg)
}

@test "record adds what exact mode needs, says each change in one line, and the replay runs the same command line" {
	local st=0 d=$BATS_TEST_TMPDIR
	use_qemu 7.2
	guest_argv virtio "$d"
	no_determinism
	"$BHRR" record -o "$LOG" -- "$QEMU_BIN" "${ARGS[@]}" >"$d/rec.out" 2>"$d/rec.err" || st=$?
	cat "$d/rec.err"
	[ "$st" -eq "$GUEST_PASS" ]
	grep -q '^bhrr: record: added -icount shift=0,sleep=off ' "$d/rec.err"
	grep -q '^bhrr: record: added -seed 1 ' "$d/rec.err"
	grep -qE '^bhrr: record: added -rtc clock=vm,base=20[0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9:]{8} ' "$d/rec.err"
	grep -q '^bhrr: record: replaced -machine pc,accel=kvm:tcg by -machine pc,accel=tcg ' "$d/rec.err"
	# nothing left for the doctor to warn about
	! grep -q 'warning' "$d/rec.err" || false
	# the log holds the command line QEMU ran, and is an exact-mode log
	"$BHRR" dump "$LOG" >"$d/dump"
	grep -q '^# icount mode exact' "$d/dump"
	grep '^# argv ' "$d/dump" | grep -qE -- '-machine pc,accel=tcg .*-icount shift=0,sleep=off -seed 1 -rtc clock=vm,base='
	guest_argv virtio "$d" # fresh disks
	st=0
	"$BHRR" replay "$LOG" -o "$d/rep.bhlog" >"$d/rep.out" 2>"$d/rep.err" || st=$?
	cat "$d/rep.err"
	[ "$st" -eq "$GUEST_PASS" ]
	diff "$d/rec.out" "$d/rep.out"
	# a KVM line: -enable-kvm goes, -cpu host becomes max, -machine accel= becomes tcg (and no
	# -accel beside it, which QEMU refuses); a date the user gave the RTC stays, other keys too
	guest_argv virtio "$d"
	st=0
	"$BHRR" record --force -o "$LOG" -- "$QEMU_BIN" "${ARGS[@]}" -enable-kvm -cpu host \
		-rtc base=2021-06-01T12:00:00,driftfix=slew >/dev/null 2>"$d/rec.err" || st=$?
	cat "$d/rec.err"
	[ "$st" -eq "$GUEST_PASS" ]
	grep -q '^bhrr: record: removed -enable-kvm ' "$d/rec.err"
	grep -q '^bhrr: record: replaced -cpu host by -cpu max ' "$d/rec.err"
	grep -q '^bhrr: record: replaced -rtc base=2021-06-01T12:00:00,driftfix=slew by -rtc clock=vm,base=2021-06-01T12:00:00,driftfix=slew ' "$d/rec.err"
	! grep -q 'added -accel' "$d/rec.err" || false
	# --as-is records the command line untouched, and the doctor's warnings say what that costs
	guest_argv virtio "$d"
	"$BHRR" record --as-is --force -o "$LOG" -- "$QEMU_BIN" "${ARGS[@]}" >/dev/null 2>"$d/rec.err" || true
	! grep -q 'record: added\|record: replaced' "$d/rec.err" || false
	grep -q 'warning: no -icount' "$d/rec.err"
	"$BHRR" dump "$LOG" | grep '^# argv ' | grep -qv -- '-icount'
}

@test "SIGTERM to bhrr record mid-I/O ends QEMU within 3 s with a complete log" {
	use_qemu 7.2
	guest_argv virtio "$BATS_TEST_TMPDIR"
	GUEST_ARGV=("${GUEST_ARGV[@]/n=64/n=4000 count=64}")
	"$BHRR" record -o "$LOG" -- "$QEMU_BIN" "${GUEST_ARGV[@]}" >/dev/null 2>&1 &
	signal_and_time TERM $! "$LOG"
	[ "$EXIT_MS" -lt 3000 ]
	run "$BHRR" verify "$LOG"
	[ "$status" -eq 0 ]
	[[ "$output" == *"complete" ]]
	[ "$(json | jq -s '[.[] | select(.kind == "io_complete")] | length')" -gt 10 ]
}

# qmp_quit VERSION: record a long guest, quit through QMP after 1.5 s.
qmp_quit() {
	use_qemu "$1"
	guest_argv virtio "$BATS_TEST_TMPDIR"
	port=$((20000 + RANDOM % 20000))
	GUEST_ARGV=("${GUEST_ARGV[@]/n=64/n=4000 count=64}")
	# shellcheck disable=SC2086
	"$BHRR" record -o "$LOG" -- "$QEMU_BIN" $QEMU_FW "${GUEST_ARGV[@]}" \
		-qmp "tcp:127.0.0.1:$port,server=on,wait=off" >/dev/null 2>&1 &
	qmp_quit_and_time "$port" $! "$LOG"
	echo "QEMU $1"
	[ "$EXIT_MS" -lt 3000 ]
	run "$BHRR" verify "$LOG"
	[ "$status" -eq 0 ]
	[[ "$output" == *"complete" ]]
	[ "$(json | jq -s '[.[] | select(.kind == "io_complete")] | length')" -gt 10 ]
}

@test "QMP quit mid-I/O ends QEMU 7.2 within 3 s with a complete log" {
	qmp_quit 7.2
}

@test "QMP quit mid-I/O ends QEMU 10.0 within 3 s with a complete log" {
	qmp_quit 10.0
}

@test "SIGKILL mid-run leaves a verifiable prefix" {
	use_qemu 7.2
	guest_argv virtio "$BATS_TEST_TMPDIR"
	GUEST_ARGV=("${GUEST_ARGV[@]/n=64/n=4000 count=64}")
	BHRR_MODE=record BHRR_LOG="$LOG" LD_PRELOAD="$SHIM" "$QEMU_BIN" "${GUEST_ARGV[@]}" >/dev/null 2>&1 &
	pid=$!
	wait_events "$LOG" 20 "$pid"
	kill -KILL "$pid"
	wait "$pid" || true
	run "$BHRR" verify "$LOG"
	[ "$status" -eq 0 ]
	[[ "$output" == *"incomplete (no end event"* ]]
	[ "$(json | jq -s '[.[] | select(.kind == "io_complete")] | length')" -gt 10 ]
}

@test "bhrr record refuses an untested executable that gives no self-check verdict, naming the build-id and what the shim said" {
	mkdir -p "$BATS_TEST_TMPDIR/bin"
	cp /bin/true "$BATS_TEST_TMPDIR/bin/qemu-system-x86_64"
	id=$(readelf -n /bin/true | sed -n 's/.*Build ID: //p')
	run "$BHRR" record -o "$LOG" -- "$BATS_TEST_TMPDIR/bin/qemu-system-x86_64" -version
	[ "$status" -eq 2 ]
	[[ "$output" == *"(build-id $id) is not a QEMU build bhrr was tested on, and its self-check ("*") exited 0 without a verdict: "*"exports no QEMU functions"*"; refusing"* ]]
	[ ! -e "$LOG" ]
}

# An iothread's requests complete outside the gate (doc/record.md,
# "Iothreads"): a record of the virtio guest with one logged its completions
# but gave the replay nothing to hold them to.  bhrr record moves such a
# device to the main loop, saying so, and the replay (given the command line
# with the iothread again) does the same and is identical; --as-is refuses
# it, naming the device.
@test "record moves a device out of its iothread and replays it identically; --as-is refuses it, naming it" {
	use_qemu 7.2
	guest_argv virtio "$BATS_TEST_TMPDIR"
	local argv=("${GUEST_ARGV[@]/virtio-blk-pci,/virtio-blk-pci,id=vd0,iothread=io0,}" -object iothread,id=io0)
	[[ "${argv[*]}" == *"virtio-blk-pci,id=vd0,iothread=io0,"* ]]
	run "$BHRR" record -o "$LOG" -- "$QEMU_BIN" "${argv[@]}"
	echo "$output"
	[ "$status" -eq "$GUEST_PASS" ]
	[[ "$output" == *"bhrr: record: replaced -device virtio-blk-pci,id=vd0,iothread=io0,"*" by -device virtio-blk-pci,id=vd0,"*"outside bhrr's gate"* ]]
	[[ "$output" != *"warning: an iothread"* ]]
	"$BHRR" dump "$LOG" | grep -q "io_complete"
	grep '^done:' <<<"$output" >"$BATS_TEST_TMPDIR/rec.done"
	guest_argv virtio "$BATS_TEST_TMPDIR"
	argv=("${GUEST_ARGV[@]/virtio-blk-pci,/virtio-blk-pci,id=vd0,iothread=io0,}" -object iothread,id=io0)
	run "$BHRR" replay "$LOG" -- "$QEMU_BIN" "${argv[@]}"
	echo "$output"
	[ "$status" -eq "$GUEST_PASS" ]
	[[ "$output" == *"bhrr: replay: replaced -device virtio-blk-pci,id=vd0,iothread=io0,"* ]]
	[[ "$output" != *"differs from the recorded one"* ]]
	grep -qE 'after ([0-9]+) of \1 recorded events \(end of the log' <<<"$output"
	[ "$(grep '^done:' <<<"$output")" = "$(cat "$BATS_TEST_TMPDIR/rec.done")" ]
	# -global and -set: the option goes
	guest_argv virtio "$BATS_TEST_TMPDIR"
	rm -f "$LOG"
	run "$BHRR" record -o "$LOG" -- "$QEMU_BIN" "${GUEST_ARGV[@]}" -global virtio-blk-pci.iothread=io0 -object iothread,id=io0
	[ "$status" -eq "$GUEST_PASS" ]
	[[ "$output" == *"bhrr: record: removed -global virtio-blk-pci.iothread=io0"* ]]
	[[ "$output" != *"warning: an iothread"* ]]
	# a -readconfig file may hold a device in the iothread, which record does not move: the warning stays
	guest_argv virtio "$BATS_TEST_TMPDIR"
	rm -f "$LOG"
	: >"$BATS_TEST_TMPDIR/empty.cfg"
	run "$BHRR" record -o "$LOG" -- "$QEMU_BIN" "${GUEST_ARGV[@]}" -object iothread,id=io0 \
		-readconfig "$BATS_TEST_TMPDIR/empty.cfg"
	[ "$status" -eq "$GUEST_PASS" ]
	[[ "$output" == *"warning: an iothread"* ]]
	# --as-is: refused, naming the device; with --force recorded, with the doctor's warning
	guest_argv virtio "$BATS_TEST_TMPDIR"
	rm -f "$LOG"
	run "$BHRR" record --as-is -o "$LOG" -- "$QEMU_BIN" "${argv[@]}"
	[ "$status" -eq 2 ]
	[[ "$output" == *"device virtio-blk-pci (id vd0) in iothread io0: its requests complete in that iothread, outside bhrr's gate"*"refusing"* ]]
	[ ! -e "$LOG" ]
	run "$BHRR" record --as-is -o "$LOG" -- "$QEMU_BIN" "${GUEST_ARGV[@]}" -global virtio-blk-pci.iothread=io0 -object iothread,id=io0
	[ "$status" -eq 2 ]
	[[ "$output" == *"every virtio-blk-pci (-global) in iothread io0"* ]]
	run "$BHRR" record --as-is --force -o "$LOG" -- "$QEMU_BIN" "${argv[@]}"
	[ "$status" -eq "$GUEST_PASS" ]
	[[ "$output" == *"warning: an iothread"* ]]
	[ -s "$LOG" ]
}

@test "bhrr doctor flags -smp on QEMU 7.2 (no per-vCPU budget; it does not boot a Linux guest's second vCPU), not on 10.0" {
	use_qemu 7.2
	run "$BHRR" doctor -- "$QEMU_BIN" -nodefaults -display none -icount shift=0,sleep=off -seed 1 \
		-rtc clock=vm,base=2020-01-01T00:00:00 -smp 2
	[ "$status" -eq 1 ]
	[[ "$output" == *"-smp with several vCPUs: QEMU 7.2 has no per-vCPU icount budget"*"refuses it in exact mode"*"Booting SMP configuration"* ]]
	use_qemu 10.0
	run "$BHRR" doctor -- "$QEMU_BIN" -nodefaults -display none -icount shift=0,sleep=off -seed 1 \
		-rtc clock=vm,base=2020-01-01T00:00:00 -smp cpus=4
	[[ "$output" != *"-smp"* ]]
	# outside exact mode the turns are not recorded
	run "$BHRR" doctor -- "$QEMU_BIN" -nodefaults -display none -icount shift=0 -seed 1 \
		-rtc clock=vm,base=2020-01-01T00:00:00 -smp cpus=4
	[ "$status" -eq 1 ]
	[[ "$output" == *"-smp with several vCPUs: their interleaving is host timing, and bhrr records it only in exact mode"* ]]
}

@test "bhrr doctor flags each source of nondeterminism on a crafted command line" {
	run "$BHRR" doctor -- qemu-system-x86_64 -smp 2 -icount shift=auto -rtc base=localtime \
		-device virtio-blk-pci,drive=d -netdev user,id=n -drive file=x.qcow2,if=none,id=d \
		-object iothread,id=io -drive file=y.img,aio=native -monitor stdio
	[ "$status" -eq 1 ]
	for what in '-icount shift=auto' 'without sleep=off' '-smp with several vCPUs' \
		'no -seed' 'iothread' 'a display'; do
		grep -qF -- "$what" <<<"$output" || { echo "not flagged: $what"; false; }
	done
	[ "$(grep -c '^    fix: ' <<<"$output")" -eq 6 ]
	# qcow2, aio=native and io_uring are recorded at the block backend (50-linux.bats)
	! grep -q 'aio=\|qcow2' <<<"$output" || false
	# an RTC on the host's clock is recorded in exact mode (78-clock.bats): no finding there
	! grep -q 'RTC' <<<"$output" || false
	# networks are recorded (78-network.bats): no finding of their own
	! grep -qi 'network' <<<"$output" || false
	# monitor commands are recorded (77-monitor.bats): no finding of their own
	! grep -qi 'monitor' <<<"$output" || false
	# virtio with its default ioeventfd is covered: no finding of its own
	! grep -qi 'ioeventfd' <<<"$output" || false
	run "$BHRR" doctor -- qemu-system-x86_64 -enable-kvm -nographic
	[ "$status" -eq 1 ]
	[[ "$output" == *"no -icount"* ]] && [[ "$output" == *"hardware accelerator"* ]]
	# without -icount, QEMU's default RTC (clock=host) is not recorded
	[[ "$output" == *"the guest RTC follows the host clock, which only exact mode (-icount) records"* ]]
}

# doctor_one WHAT ARGS...: on an otherwise clean command line, ARGS draw exactly one finding, containing WHAT
doctor_one() {
	local what=$1
	shift
	run "$BHRR" doctor -- qemu-system-x86_64 -nodefaults -display none -icount shift=0,sleep=off \
		-seed 1 -rtc clock=vm,base=2020-01-01T00:00:00 "$@"
	echo "$*: $output"
	[ "$status" -eq 1 ]
	[ "$(grep -c '^    fix: ' <<<"$output")" -eq 1 ]
	grep -qF -- "$what" <<<"$output"
}

# doctor_none ARGS...: ARGS on a clean command line draw no finding
doctor_none() {
	run "$BHRR" doctor -- qemu-system-x86_64 -nodefaults -display none -icount shift=0,sleep=off \
		-seed 1 -rtc clock=vm,base=2020-01-01T00:00:00 "$@"
	echo "$*: $output"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "bhrr doctor names the inputs CI command lines add: vhost, kvm:tcg, -readconfig; networks, consoles, channels, entropy and monitors pass" {
	# frames to a NIC are recorded (78-network.bats), QEMU's implicit default NIC's too
	run "$BHRR" doctor -- qemu-system-x86_64 -display none -icount shift=0,sleep=off -seed 1 \
		-rtc clock=vm,base=2020-01-01T00:00:00
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	doctor_none -nic user,hostfwd=tcp:127.0.0.1:2222-:22
	doctor_none -netdev socket,id=n0,udp=127.0.0.1:1,localaddr=127.0.0.1:2 -device e1000,netdev=n0
	doctor_one "vhost networking" -netdev tap,id=n0,vhost=on -device virtio-net-pci,netdev=n0
	doctor_none
	# console input is recorded (75-console.bats), however the port is spelled
	doctor_none -serial stdio
	doctor_none -serial pty
	doctor_none -serial "tcp:127.0.0.1:4444,server=on,wait=off"
	doctor_none -chardev file,id=f0,path=out.txt,input-path=in.txt -serial chardev:f0
	doctor_none -serial file:out.txt
	doctor_none -debugcon stdio
	# and so is a virtio-serial port's, its client coming and going too (50-linux.bats)
	doctor_none -chardev socket,id=c0,path=/tmp/s,server=on,wait=off \
		-device virtio-serial-pci -device virtconsole,chardev=c0
	doctor_none -chardev socket,id=a0,path=/tmp/a,server=on,wait=off -device virtio-serial-pci \
		-device virtserialport,chardev=a0,name=org.qemu.guest_agent.0
	doctor_none -chardev file,id=f0,path=out.txt -device virtio-serial-pci -device virtconsole,chardev=f0
	# and the human monitor behind the console (-nographic, -serial mon:): its
	# commands are recorded too (77-monitor.bats)
	doctor_none -serial mon:stdio
	doctor_none -nographic
	# a tap backend is recorded (79-network.bats), offloaded segments over
	# one log event's 4096 bytes too (in pieces)
	doctor_none -netdev tap,id=n0,ifname=t0,script=no -device virtio-net-pci,netdev=n0
	doctor_none -nic tap,ifname=t0,script=no
	doctor_none -netdev socket,id=n0,udp=127.0.0.1:9 -device e1000,netdev=n0
	# entropy from the host is recorded, from any backend (76-entropy.bats)
	doctor_none -device virtio-rng-pci
	doctor_none -object rng-random,id=r0,filename=/dev/urandom -device virtio-rng-pci,rng=r0
	doctor_none -chardev socket,id=e0,path=/tmp/egd -object rng-egd,id=r0,chardev=e0 \
		-device virtio-rng-pci,rng=r0
	# monitor sockets, QMP or HMP: their commands are recorded (77-monitor.bats)
	doctor_none -qmp unix:/tmp/q,server=on,wait=off
	doctor_none -chardev socket,id=m0,path=/tmp/m,server=on,wait=off -mon chardev=m0,mode=control
	doctor_none -chardev socket,id=h0,path=/tmp/h,server=on,wait=off -monitor chardev:h0
	# a hardware accelerator first in a list is used whenever it is there
	doctor_one "hardware accelerator" -machine accel=kvm:tcg
	doctor_one "hardware accelerator" -accel kvm -accel tcg
	# -readconfig files count as the command line they stand for
	printf '[object "io0"]\n  qom-type = "iothread"\n' >"$BATS_TEST_TMPDIR/io.cfg"
	doctor_one "iothread" -readconfig "$BATS_TEST_TMPDIR/io.cfg"
	printf '# a CI harness config\n[drive "d0"]\n  file = "base.qcow2"\n  if = "virtio"\n\n[netdev "n0"]\n  type = "user"\n' \
		>"$BATS_TEST_TMPDIR/ci.cfg"
	run "$BHRR" doctor -- qemu-system-x86_64 -nodefaults -display none -icount shift=0,sleep=off \
		-seed 1 -rtc clock=vm,base=2020-01-01T00:00:00 -readconfig "$BATS_TEST_TMPDIR/ci.cfg"
	echo "$output"
	[ "$status" -eq 0 ]                          # a qcow2 drive, user networking: both recorded
	doctor_one "-readconfig file bhrr doctor cannot read" -readconfig "$BATS_TEST_TMPDIR/absent.cfg"
	# -set and -global reach the options they change
	doctor_one "iothread" -global virtio-blk-pci.iothread=io0
	doctor_one "iothread" -drive id=d0,file=x.img,if=none -set drive.d0.iothread=io0
}

@test "bhrr doctor is silent on every bundled guest command line" {
	use_qemu 7.2
	for config in $GUEST_CONFIGS; do
		guest_argv "$config" "$BATS_TEST_TMPDIR"
		run "$BHRR" doctor -- "$QEMU_BIN" "${GUEST_ARGV[@]}"
		echo "$config: $output"
		[ "$status" -eq 0 ]
		[ -z "$output" ]
	done
}
