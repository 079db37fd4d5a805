#!/usr/bin/env bats
# The Linux test guest (a Debian kernel and busybox, tests/guest/linux/init):
# concurrent O_DIRECT readers and writers on an IDE and a virtio-blk disk
# (and, with bhrr.9p=, a reader of a 9p share beside them).
# The aarch64 tier (issue 16): Debian's arm64 kernel and busybox on
# qemu-system-aarch64 -M virt, the same readers and writers on two
# virtio-blk disks.  Slow tier: run by 'make check-linux'.

load helper
# shellcheck source=tests/guest/guest.sh
. "$BHRR_SRCDIR/tests/guest/guest.sh"

LINUX_DIR="$BHRR_BUILDDIR/guest-linux"
LINUX_ARM64_DIR="$BHRR_BUILDDIR/guest-linux-arm64"
# the guest's disks, as its log lines name them (assert_linux_run)
LINUX_DISKS='sda|vda'

# linux_argv VERSION OPS [GUEST]: QEMU_ARGV for one run with fresh disks.
# GUEST: x86_64 (the default), or aarch64 / aarch64-pci (linux_aarch64_argv).
linux_argv() {
	case "${3:-x86_64}" in
	aarch64*) linux_aarch64_argv "$@"; return ;;
	esac
	LINUX_DISKS='sda|vda'
	use_qemu "$1"
	cp "$BHRR_BUILDDIR/tests/guest/disk.img" "$BATS_TEST_TMPDIR/sda.img"
	cp "$BHRR_BUILDDIR/tests/guest/disk.img" "$BATS_TEST_TMPDIR/vda.img"
	# shellcheck disable=SC2206
	QEMU_ARGV=("$QEMU_BIN" $QEMU_FW -nodefaults -display none -accel tcg
		-icount shift=0,sleep=off -m 256 -no-reboot
		-kernel "$LINUX_DIR/vmlinuz" -initrd "$LINUX_DIR/initrd.gz"
		-append "console=ttyS0 quiet panic=-1 bhrr.ops=$2" -serial stdio
		-drive "file=$BATS_TEST_TMPDIR/sda.img,format=raw,if=ide,index=0"
		-drive "id=v,file=$BATS_TEST_TMPDIR/vda.img,format=raw,if=none"
		-device virtio-blk-pci,drive=v)
}

# linux_aarch64_argv VERSION OPS GUEST: QEMU_ARGV for the aarch64 tier on
# VERSION's qemu-system-aarch64, -M virt (no IDE: two virtio-blk disks,
# bhrr.disks=vda,vdb) on virtio-mmio (GUEST aarch64: virtio-blk-device) or
# virtio-pci (aarch64-pci); the console is the PL011.
linux_aarch64_argv() {
	[ -f "$LINUX_ARM64_DIR/.stamp" ] || { echo "no aarch64 Linux guest in $LINUX_ARM64_DIR: 'make guest-linux-arm64/.stamp' (dpkg needs arm64: scripts/setup-debian.sh)" >&2; return 1; }
	qemu_for "$1" "$3"
	LINUX_DISKS='vda|vdb'
	local dev=virtio-blk-device
	[ "$3" = aarch64-pci ] && dev=virtio-blk-pci
	cp "$BHRR_BUILDDIR/tests/guest/disk.img" "$BATS_TEST_TMPDIR/vda.img"
	cp "$BHRR_BUILDDIR/tests/guest/disk.img" "$BATS_TEST_TMPDIR/vdb.img"
	QEMU_ARGV=("$QEMU_ARCH" -M virt -cpu cortex-a57 -nodefaults -display none -accel tcg
		-icount shift=0,sleep=off -m 256 -no-reboot
		-kernel "$LINUX_ARM64_DIR/vmlinuz" -initrd "$LINUX_ARM64_DIR/initrd.gz"
		-append "console=ttyAMA0 quiet panic=-1 bhrr.ops=$2 bhrr.disks=vda,vdb" -serial stdio
		-drive "id=v0,file=$BATS_TEST_TMPDIR/vda.img,format=raw,if=none" -device "$dev,drive=v0"
		-drive "id=v1,file=$BATS_TEST_TMPDIR/vdb.img,format=raw,if=none" -device "$dev,drive=v1")
}

# replay_linux K: replay linux.bhlog with QEMU_ARGV (fresh disks): it
# follows every recorded event to the log's end and prints the recording's
# transcript, byte for byte
replay_linux() {
	local st=0
	BHRR_WATCHDOG_MS=5000 timeout 300 "$BHRR" replay "$BATS_TEST_TMPDIR/linux.bhlog" \
		-o "$BATS_TEST_TMPDIR/rep.bhlog" -- "${QEMU_ARGV[@]}" \
		>"$BATS_TEST_TMPDIR/rep.out" 2>"$BATS_TEST_TMPDIR/rep.err" || st=$?
	echo "replay $1: status $st"
	cat "$BATS_TEST_TMPDIR/rep.err"
	[ "$st" -eq 0 ]
	grep -qE 'after ([0-9]+) of \1 recorded events \(end of the log' "$BATS_TEST_TMPDIR/rep.err"
	cmp "$BATS_TEST_TMPDIR/rec.out" "$BATS_TEST_TMPDIR/rep.out"
}

# end_icount LOG: the icount of LOG's end event.
end_icount() {
	"$BHRR" dump --json "$1" | jq -r 'select(.kind == "end") | .icount'
}

assert_linux_run() {
	[ "$status" -eq 0 ]
	grep -q "^linux-guest: done $((2 * $1)) ops" <<<"$output"
	grep -qE '^linux-guest: digest [0-9a-f]{32}' <<<"$output"
	[ "$(grep -cE "^($LINUX_DISKS) [0-9]+ [RW] [0-9]+ [0-9a-f]{32} [0-9]+" <<<"$output")" -eq $((2 * $1)) ]
	! grep -q 'failed\|FAIL' <<<"$output" || false
}

@test "the Linux guest runs its readers and writers to a clean poweroff on QEMU 7.2" {
	linux_argv 7.2 30
	run timeout 300 "${QEMU_ARGV[@]}"
	assert_linux_run 30
}

@test "the Linux guest runs its readers and writers to a clean poweroff on QEMU 10.0" {
	linux_argv 10.0 30
	run timeout 300 "${QEMU_ARGV[@]}"
	assert_linux_run 30
}

@test "free runs of the Linux guest differ (3 runs on QEMU 7.2)" {
	for _ in 1 2 3; do
		linux_argv 7.2 30
		run timeout 300 "${QEMU_ARGV[@]}"
		assert_linux_run 30
		grep '^linux-guest: digest' <<<"$output" >>"$BATS_TEST_TMPDIR/digests"
	done
	cat "$BATS_TEST_TMPDIR/digests"
	[ "$(sort -u "$BATS_TEST_TMPDIR/digests" | wc -l)" -ge 2 ]
}

@test "bhrr record of the Linux guest: poweroff ends it cleanly with a complete log" {
	linux_argv 7.2 30
	run timeout 300 "$BHRR" record -o "$BATS_TEST_TMPDIR/linux.bhlog" -- "${QEMU_ARGV[@]}"
	assert_linux_run 30
	run "$BHRR" verify "$BATS_TEST_TMPDIR/linux.bhlog"
	[ "$status" -eq 0 ]
	[[ "$output" == *"complete" ]]
	assert_exact_completions
}

# assert_exact_completions: the guest's 60 O_DIRECT requests show up in
# linux.bhlog as completions at exact icounts
assert_exact_completions() {
	local n
	n=$("$BHRR" dump --json "$BATS_TEST_TMPDIR/linux.bhlog" | jq -s '[.[] | select(.kind == "io_complete" and .icount_exact)] | length')
	echo "exact completions: $n"
	[ "$n" -ge 60 ]
}

# linux_replays VERSION [GUEST]: record once, replay 3 times; each replay's console
# output is byte-identical to the recording's and follows the whole log, and
# it ends at the recording's icount (the guest's poweroff stops the vCPU on
# its instruction: the vCPU ran on for as long as the main loop took, and a
# replay that stopped sooner missed the record's last events).  GUEST: linux_argv's.
linux_replays() {
	linux_argv "$1" 30 "${2:-}"
	QEMU_ARGV=("${QEMU_ARGV[@]}" -rtc clock=vm,base=2020-01-01T00:00:00 -seed 1)
	rm -f "$BATS_TEST_TMPDIR/linux.bhlog"
	status=0
	timeout 300 "$BHRR" record -o "$BATS_TEST_TMPDIR/linux.bhlog" -- "${QEMU_ARGV[@]}" \
		>"$BATS_TEST_TMPDIR/rec.out" 2>"$BATS_TEST_TMPDIR/rec.err" || status=$?
	output=$(cat "$BATS_TEST_TMPDIR/rec.out")
	assert_linux_run 30
	end=$(end_icount "$BATS_TEST_TMPDIR/linux.bhlog")
	for k in 1 2 3; do
		linux_argv "$1" 30 "${2:-}"
		QEMU_ARGV=("${QEMU_ARGV[@]}" -rtc clock=vm,base=2020-01-01T00:00:00 -seed 1)
		replay_linux "$k"
		echo "ends: record $end, replay $(end_icount "$BATS_TEST_TMPDIR/rep.bhlog")"
		[ "$(end_icount "$BATS_TEST_TMPDIR/rep.bhlog")" = "$end" ]
	done
}

@test "the Linux guest replays identically, 3 times, on QEMU 7.2" {
	linux_replays 7.2
}

@test "the Linux guest replays identically, 3 times, on QEMU 10.0" {
	linux_replays 10.0
}

# -smp 2 (issue 13): the Linux tier with two vCPUs on QEMU 10.0, recorded
# once and replayed 5 times, byte for byte, ending where the record did; the
# log has both vCPUs' turns (shim/vcpu_sched.h).  (QEMU 7.2 does not boot a
# second vCPU under -icount at all; bhrr refuses it there: 53-smp.bats.)
@test "the Linux guest with -smp 2 replays identically, 5 times, on QEMU 10.0" {
	linux_argv 10.0 30
	QEMU_ARGV=("${QEMU_ARGV[@]}" -rtc clock=vm,base=2020-01-01T00:00:00 -seed 1 -smp 2)
	status=0
	timeout 300 "$BHRR" record -o "$BATS_TEST_TMPDIR/linux.bhlog" -- "${QEMU_ARGV[@]}" \
		>"$BATS_TEST_TMPDIR/rec.out" 2>"$BATS_TEST_TMPDIR/rec.err" || status=$?
	output=$(cat "$BATS_TEST_TMPDIR/rec.out")
	assert_linux_run 30
	# both vCPUs ran (the kernel is quiet): their turns are in the log
	[ "$("$BHRR" dump --json "$BATS_TEST_TMPDIR/linux.bhlog" | jq -s '[.[] | select(.kind == "slice")] | group_by(.vcpu) | length')" -eq 2 ]
	end=$(end_icount "$BATS_TEST_TMPDIR/linux.bhlog")
	for k in 1 2 3 4 5; do
		linux_argv 10.0 30
		QEMU_ARGV=("${QEMU_ARGV[@]}" -rtc clock=vm,base=2020-01-01T00:00:00 -seed 1 -smp 2)
		replay_linux "$k"
		[ "$(end_icount "$BATS_TEST_TMPDIR/rep.bhlog")" = "$end" ]
	done
}

# The aarch64 tier: the same guest, and the same record and replays, on
# qemu-system-aarch64 -M virt (of Debian 12, 7.2, a build bhrr was not
# tested on: recorded through its self-check; and of backports, 10.0).

@test "the aarch64 Linux guest (virtio-mmio) runs its readers and writers to a clean poweroff on QEMU 7.2" {
	linux_argv 7.2 30 aarch64
	run timeout 300 "${QEMU_ARGV[@]}"
	assert_linux_run 30
}

@test "the aarch64 Linux guest (virtio-mmio) runs its readers and writers to a clean poweroff on QEMU 10.0" {
	linux_argv 10.0 30 aarch64
	run timeout 300 "${QEMU_ARGV[@]}"
	assert_linux_run 30
}

# Each log line carries the kernel's clock at the operation's end, which
# -icount derives from when its completion arrived: 20 free runs on QEMU 7.2
# gave 20 different digests.  The argument of 17-virt-boards.bats follows:
# the likeliest digest has a mass m < 0.3 (99% confidence), and 10 runs give
# one digest with probability below m^9 = 2e-5.  Most runs stop at the second.
# aarch64_free_run: one free run of the aarch64 Linux guest on QEMU 7.2, sound, its DIGEST set
aarch64_free_run() {
	linux_argv 7.2 30 aarch64
	run timeout 300 "${QEMU_ARGV[@]}"
	assert_linux_run 30
	DIGEST=$(sed -n 's/^linux-guest: digest //p' <<<"$output")
}

@test "free runs of the aarch64 Linux guest differ (two digests within 10 runs on QEMU 7.2)" {
	differs_within 10 aarch64_free_run
}

# linux_aarch64_replays VERSION GUEST: linux_replays (3 replays identical),
# of a record that went through the untested build's self-check and holds
# the guest's requests at exact icounts
linux_aarch64_replays() {
	linux_replays "$1" "$2"
	grep -qF "its self-check passed" "$BATS_TEST_TMPDIR/rec.err"
	assert_exact_completions
}

@test "the aarch64 Linux guest (virtio-mmio) replays identically, 3 times, on QEMU 7.2" {
	linux_aarch64_replays 7.2 aarch64
}

@test "the aarch64 Linux guest (virtio-mmio) replays identically, 3 times, on QEMU 10.0" {
	linux_aarch64_replays 10.0 aarch64
}

@test "the aarch64 Linux guest on virtio-pci replays identically, 3 times, on QEMU 7.2 and 10.0" {
	linux_aarch64_replays 7.2 aarch64-pci
	linux_aarch64_replays 10.0 aarch64-pci
}

# linux_host_rtc VERSION: QEMU's default RTC, on the host's clock (no -rtc),
# recorded --as-is: the kernel reads it at boot and prints the date it set
# (the host's, when the record ran); every read of the host's clock and every
# firing of the RTC's timers is recorded (gate_clock.h), so both replays,
# run later, print the recorded date and the whole transcript, byte for byte.
linux_host_rtc() {
	linux_argv "$1" 30
	QEMU_ARGV=("${QEMU_ARGV[@]/ quiet/}" -seed 1)
	status=0
	timeout 300 "$BHRR" record --as-is -o "$BATS_TEST_TMPDIR/linux.bhlog" -- "${QEMU_ARGV[@]}" \
		>"$BATS_TEST_TMPDIR/rec.out" 2>"$BATS_TEST_TMPDIR/rec.err" || status=$?
	cat "$BATS_TEST_TMPDIR/rec.err"
	# the kernel's own log is on (not quiet): its lines may say "failed", so not assert_linux_run
	[ "$status" -eq 0 ]
	grep -q "^linux-guest: done 60 ops" "$BATS_TEST_TMPDIR/rec.out"
	grep 'setting system clock to' "$BATS_TEST_TMPDIR/rec.out"
	local reads
	reads=$("$BHRR" dump --json "$BATS_TEST_TMPDIR/linux.bhlog" |
		jq -s '[.[] | select(.kind == "host_clock" and .what == "host")] | length')
	echo "host clock reads: $reads"
	[ "$reads" -gt 10 ]
	for k in 1 2; do
		linux_argv "$1" 30
		QEMU_ARGV=("${QEMU_ARGV[@]/ quiet/}" -seed 1)
		replay_linux "$k"
	done
}

@test "the Linux guest on QEMU's default RTC (the host's clock), recorded --as-is, replays identically on QEMU 7.2" {
	linux_host_rtc 7.2
}

@test "the Linux guest on QEMU's default RTC (the host's clock), recorded --as-is, replays identically on QEMU 10.0" {
	linux_host_rtc 10.0
}

# record_linux_as_is: record QEMU_ARGV as it is into linux.bhlog (rec.out,
# rec.err); the run did its readers and writers
record_linux_as_is() {
	status=0
	timeout 300 "$BHRR" record --as-is -o "$BATS_TEST_TMPDIR/linux.bhlog" -- "${QEMU_ARGV[@]}" \
		>"$BATS_TEST_TMPDIR/rec.out" 2>"$BATS_TEST_TMPDIR/rec.err" || status=$?
	cat "$BATS_TEST_TMPDIR/rec.err"
	output=$(cat "$BATS_TEST_TMPDIR/rec.out")
	assert_linux_run 30
}

# linux_qcow2 VERSION: the Linux guest's two disks are qcow2 overlays over
# raw bases, run with -snapshot (QEMU puts a temporary qcow2 overlay on top
# of each), virtio-blk with its default ioeventfd: the guest's concurrent
# O_DIRECT writes allocate clusters in those overlays.  Recorded once
# (--as-is: bhrr record leaves the drives alone anyway), replayed 5 times
# identically, each replay on fresh overlays.
linux_qcow2_argv() {
	linux_argv "$1" 30
	local d=$BATS_TEST_TMPDIR
	rm -f "$d/sda.qcow2" "$d/vda.qcow2"
	qemu-img create -q -f qcow2 -F raw -b "$d/sda.img" "$d/sda.qcow2"
	qemu-img create -q -f qcow2 -F raw -b "$d/vda.img" "$d/vda.qcow2"
	# the cache-clean timer fires each second of host time, wherever the guest is:
	# a guest request after it takes more host requests (the tables read again)
	# and the cache modes and zero handling CI command lines use
	QEMU_ARGV=("${QEMU_ARGV[@]/file=$d\/sda.img,format=raw/file=$d/sda.qcow2,format=qcow2,cache-clean-interval=1,cache=unsafe,discard=unmap,detect-zeroes=unmap}")
	QEMU_ARGV=("${QEMU_ARGV[@]/file=$d\/vda.img,format=raw/file=$d/vda.qcow2,format=qcow2,cache-clean-interval=1,cache=writethrough}")
	QEMU_ARGV+=(-snapshot -rtc clock=vm,base=2020-01-01T00:00:00 -seed 1)
}

linux_qcow2() {
	linux_qcow2_argv "$1"
	echo "${QEMU_ARGV[*]}"
	[[ "${QEMU_ARGV[*]}" == *"sda.qcow2,format=qcow2"*"vda.qcow2,format=qcow2"* ]]
	record_linux_as_is
	for k in 1 2 3 4 5; do
		linux_qcow2_argv "$1"
		replay_linux "$k"
	done
}

@test "the Linux guest on qcow2 overlays with -snapshot (virtio-blk, default ioeventfd) replays identically, 5 times, on QEMU 7.2" {
	linux_qcow2 7.2
}

@test "the Linux guest on qcow2 overlays with -snapshot (virtio-blk, default ioeventfd) replays identically, 5 times, on QEMU 10.0" {
	linux_qcow2 10.0
}

# linux_iothread VERSION: linux_qcow2's command line with the virtio disk in
# an iothread (-object iothread, iothread= on its virtio-blk-pci).  bhrr
# record moves the device to the main loop and says so (doc/record.md,
# "Iothreads"); each replay, given the same command line, does the same.
linux_iothread_argv() {
	linux_qcow2_argv "$1"
	QEMU_ARGV=("${QEMU_ARGV[@]/virtio-blk-pci,drive=v/virtio-blk-pci,drive=v,iothread=io0}" -object iothread,id=io0)
}

linux_iothread() {
	linux_iothread_argv "$1"
	[[ "${QEMU_ARGV[*]}" == *"virtio-blk-pci,drive=v,iothread=io0 "* ]]
	status=0
	timeout 300 "$BHRR" record -o "$BATS_TEST_TMPDIR/linux.bhlog" -- "${QEMU_ARGV[@]}" \
		>"$BATS_TEST_TMPDIR/rec.out" 2>"$BATS_TEST_TMPDIR/rec.err" || status=$?
	cat "$BATS_TEST_TMPDIR/rec.err"
	output=$(cat "$BATS_TEST_TMPDIR/rec.out")
	assert_linux_run 30
	grep -qF "bhrr: record: replaced -device virtio-blk-pci,drive=v,iothread=io0 by -device virtio-blk-pci,drive=v " \
		"$BATS_TEST_TMPDIR/rec.err"
	assert_exact_completions
	for k in 1 2 3 4 5; do
		linux_iothread_argv "$1"
		replay_linux "$k"
	done
}

@test "the Linux guest with its virtio disk in an iothread (qcow2, -snapshot) replays identically, 5 times, on QEMU 7.2" {
	linux_iothread 7.2
}

@test "the Linux guest with its virtio disk in an iothread (qcow2, -snapshot) replays identically, 5 times, on QEMU 10.0" {
	linux_iothread 10.0
}

# linux_aio_argv VERSION: the Linux guest with its IDE disk on Linux AIO
# (aio=native, which needs O_DIRECT) and its virtio disk on io_uring: their
# completions never pass the thread pool, so bhrr gates them at the block
# backend (doc/record.md, "Block requests at the backend").
linux_aio_argv() {
	linux_argv "$1" 30
	local d=$BATS_TEST_TMPDIR
	QEMU_ARGV=("${QEMU_ARGV[@]/file=$d\/sda.img,format=raw/file=$d/sda.img,format=raw,aio=native,cache.direct=on}")
	QEMU_ARGV=("${QEMU_ARGV[@]/file=$d\/vda.img,format=raw/file=$d/vda.img,format=raw,aio=io_uring}")
	QEMU_ARGV+=(-rtc clock=vm,base=2020-01-01T00:00:00 -seed 1)
}

linux_aio() {
	linux_aio_argv "$1"
	[[ "${QEMU_ARGV[*]}" == *"aio=native,cache.direct=on"*"aio=io_uring"* ]]
	# a kernel or sandbox without io_uring, or a file system without O_DIRECT: QEMU says so
	run timeout 300 "${QEMU_ARGV[@]}"
	if grep -qiE 'io_uring|O_DIRECT|Invalid argument' <<<"$output" && [ "$status" -ne 0 ]; then
		skip "QEMU cannot use io_uring or O_DIRECT here: $(grep -iE 'io_uring|O_DIRECT|Invalid' <<<"$output" | head -n 1)"
	fi
	assert_linux_run 30
	run "$BHRR" doctor -- "${QEMU_ARGV[@]}"
	! grep -q 'aio=' <<<"$output" || false
	linux_aio_argv "$1"
	record_linux_as_is
	# every guest request is one io_submit and one io_complete, at an exact icount
	local n
	n=$("$BHRR" dump --json "$BATS_TEST_TMPDIR/linux.bhlog" | jq -s '[.[] | select(.kind == "io_complete")] | length')
	[ "$n" -ge 60 ]
	[ "$("$BHRR" dump --json "$BATS_TEST_TMPDIR/linux.bhlog" |
		jq -s '[.[] | select(.kind == "io_complete" and (.icount_exact | not))] | length')" -eq 0 ]
	for k in 1 2 3 4 5; do
		linux_aio_argv "$1"
		replay_linux "$k"
	done
}

@test "the Linux guest with aio=native and aio=io_uring drives replays identically, 5 times, on QEMU 7.2" {
	linux_aio 7.2
}

@test "the Linux guest with aio=native and aio=io_uring drives replays identically, 5 times, on QEMU 10.0" {
	linux_aio 10.0
}

# linux_9p_argv VERSION: QEMU_ARGV for the Linux guest with a third worker
# reading every file of a read-only 9p share (-fsdev local, virtio-9p-pci,
# DIR/share) beside its disk workers (tests/guest/linux/init, bhrr.9p=).
linux_9p_argv() {
	linux_argv "$1" 30
	QEMU_ARGV=("${QEMU_ARGV[@]/bhrr.ops=30/bhrr.ops=30 bhrr.9p=host0}"
		-fsdev "local,id=fs0,path=$BATS_TEST_TMPDIR/share,security_model=none,readonly=on"
		-device virtio-9p-pci,fsdev=fs0,mount_tag=host0
		-rtc clock=vm,base=2020-01-01T00:00:00 -seed 1)
}

# linux_9p VERSION: 9p replies come back from the host's file system
# through thread-pool workers, at host-timed moments: record once, replay 5
# times, each identical.  The record fingerprints each file of the share
# the guest read (file_read events, shim/gate_fs.c); once one file of the
# share changed, a replay is refused before QEMU starts, naming that file.
linux_9p() {
	# freshly written: the record's reads must leave their access times alone
	share_9p "$BATS_TEST_TMPDIR"
	local before
	before=$(stat -c '%n %x' "$BATS_TEST_TMPDIR/share" "$BATS_TEST_TMPDIR/share"/*)
	linux_9p_argv "$1"
	rm -f "$BATS_TEST_TMPDIR/linux.bhlog"
	status=0
	timeout 300 "$BHRR" record -o "$BATS_TEST_TMPDIR/linux.bhlog" -- "${QEMU_ARGV[@]}" \
		>"$BATS_TEST_TMPDIR/rec.out" 2>"$BATS_TEST_TMPDIR/rec.err" || status=$?
	cat "$BATS_TEST_TMPDIR/rec.err"
	[ "$status" -eq 0 ]
	# the disks' 60 operations and the share's 12 files, all read whole
	grep -q '^linux-guest: done 72 ops' "$BATS_TEST_TMPDIR/rec.out"
	[ "$(grep -cE '^9p [0-9]+ f[0-9]{2} [0-9]+ [0-9a-f]{32} ' "$BATS_TEST_TMPDIR/rec.out")" -eq 12 ]
	grep -q '^9p 11 f12 36000 ' "$BATS_TEST_TMPDIR/rec.out"
	! grep -q 'FAIL' "$BATS_TEST_TMPDIR/rec.out" || false
	[ "$("$BHRR" dump "$BATS_TEST_TMPDIR/linux.bhlog" | grep -c ' file_read .* share=fs0 path=f[0-9][0-9] ')" -eq 12 ]
	[ "$(stat -c '%n %x' "$BATS_TEST_TMPDIR/share" "$BATS_TEST_TMPDIR/share"/*)" = "$before" ]
	for k in 1 2 3 4 5; do
		linux_9p_argv "$1"
		replay_linux "$k"
	done
	[ "$(stat -c '%n %x' "$BATS_TEST_TMPDIR/share" "$BATS_TEST_TMPDIR/share"/*)" = "$before" ]
	echo "changed on the host" >>"$BATS_TEST_TMPDIR/share/f05"
	linux_9p_argv "$1"
	run "$BHRR" replay "$BATS_TEST_TMPDIR/linux.bhlog" -o "$BATS_TEST_TMPDIR/refused.bhlog" -- "${QEMU_ARGV[@]}"
	echo "$output"
	[ "$status" -eq 2 ]
	[[ "$output" == *"9p share fs0 ($BATS_TEST_TMPDIR/share): f05 is not the file the recording's guest read (15020 bytes, "*"; recorded 15000 bytes, "*"refusing (the first file that differs; --force tries anyway)"* ]]
	[ ! -e "$BATS_TEST_TMPDIR/refused.bhlog" ] # QEMU never started
}

@test "the Linux guest reading a 9p share replays identically, 5 times, and a changed file is refused by name, on QEMU 7.2" {
	linux_9p 7.2
}

@test "the Linux guest reading a 9p share replays identically, 5 times, and a changed file is refused by name, on QEMU 10.0" {
	linux_9p 10.0
}

# linux_console VERSION: the guest's shell on its serial console, driven by an
# expect-style harness (tests/helper/console-harness.py) during the record;
# replayed twice with nothing on stdin: each replay's console transcript
# (the echoed keystrokes, the kernel's clock when they came) is the
# recording's, byte for byte.  A replay without the harness hung before
# console input was recorded.
linux_console() {
	linux_argv "$1" 4
	QEMU_ARGV=("${QEMU_ARGV[@]/bhrr.ops=4/bhrr.ops=4 bhrr.shell=1}" -rtc clock=vm,base=2020-01-01T00:00:00 -seed 1)
	st=0
	timeout 300 python3 "$BHRR_SRCDIR/tests/helper/console-harness.py" "$BATS_TEST_TMPDIR/rec.out" \
		"$BHRR" record -o "$BATS_TEST_TMPDIR/linux.bhlog" -- "${QEMU_ARGV[@]}" \
		2>"$BATS_TEST_TMPDIR/rec.err" || st=$?
	cat "$BATS_TEST_TMPDIR/rec.err"
	echo "record: status $st"
	[ "$st" -eq 0 ]
	grep -q "typed 42" "$BATS_TEST_TMPDIR/rec.out"
	grep -q "now at [0-9][0-9]* nsecs" "$BATS_TEST_TMPDIR/rec.out"
	n=$("$BHRR" dump --json "$BATS_TEST_TMPDIR/linux.bhlog" | jq -s '[.[] | select(.kind == "chr_read") | .bytes] | add')
	echo "console bytes recorded: $n"
	[ "$n" -ge 70 ]
	for k in 1 2; do
		linux_argv "$1" 4
		QEMU_ARGV=("${QEMU_ARGV[@]/bhrr.ops=4/bhrr.ops=4 bhrr.shell=1}" -rtc clock=vm,base=2020-01-01T00:00:00 -seed 1)
		st=0
		BHRR_WATCHDOG_MS=5000 timeout 300 "$BHRR" replay "$BATS_TEST_TMPDIR/linux.bhlog" \
			-o "$BATS_TEST_TMPDIR/rep.bhlog" -- "${QEMU_ARGV[@]}" </dev/null \
			>"$BATS_TEST_TMPDIR/rep.out" 2>"$BATS_TEST_TMPDIR/rep.err" || st=$?
		echo "replay $k: status $st"
		cat "$BATS_TEST_TMPDIR/rep.err"
		[ "$st" -eq 0 ]
		! grep -q divergence "$BATS_TEST_TMPDIR/rep.err" || false
		grep -qE 'after ([0-9]+) of \1 recorded events \(end of the log' "$BATS_TEST_TMPDIR/rep.err"
		cmp "$BATS_TEST_TMPDIR/rec.out" "$BATS_TEST_TMPDIR/rep.out"
	done
}

@test "a shell on the serial console driven by a harness replays identically without it, 2 times, on QEMU 7.2" {
	linux_console 7.2
}

@test "a shell on the serial console driven by a harness replays identically without it, 2 times, on QEMU 10.0" {
	linux_console 10.0
}

# A free TCP port on 127.0.0.1.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ci_argv VERSION: the CI-shaped command line (issue 14): the shell on the
# serial console, a virtio NIC on user networking with a hostfwd to the
# guest's port 22, a virtio-rng fed from /dev/urandom, QMP on a socket, a
# virtio-serial port named as a guest agent's channel on a socket chardev,
# and the guest's two disks; its ports and sockets in CI_FWD, CI_HTTP,
# CI_SOCK, CI_AGENT.
ci_argv() {
	linux_argv "$1" 2
	QEMU_ARGV=("${QEMU_ARGV[@]/bhrr.ops=2/bhrr.ops=2 bhrr.shell=1 bhrr.net=1}"
		-rtc clock=vm,base=2020-01-01T00:00:00 -seed 1
		-nic "user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:$CI_FWD-:22"
		-object rng-random,id=rng0,filename=/dev/urandom -device virtio-rng-pci,rng=rng0
		-qmp "unix:$CI_SOCK,server=on,wait=off"
		-device virtio-serial-pci -chardev "socket,id=agent,path=$CI_AGENT,server=on,wait=off"
		-device virtserialport,chardev=agent,name=org.qemu.guest_agent.0)
}

# linux_ci VERSION REPLAYS: record the CI-shaped run driven by
# tests/helper/ci-harness.py (HTTP download, hostfwd exchange, QMP stop and
# cont, a line on the agent channel, /dev/hwrng, poweroff); replay it
# REPLAYS times with no harness, no HTTP server, no QMP client and nothing
# on the channel, then once with the harness attached again: each
# transcript is the recording's, byte for byte, and so is the status.
linux_ci() {
	local d=$BATS_TEST_TMPDIR
	CI_FWD=$(free_port)
	CI_HTTP=$(free_port)
	CI_SOCK=$d/qmp.sock
	CI_AGENT=$d/agent.sock
	ci_argv "$1"
	local st=0
	timeout 600 python3 "$BHRR_SRCDIR/tests/helper/ci-harness.py" "$CI_HTTP" "$CI_FWD" "$CI_SOCK" \
		"$CI_AGENT" "$d/rec.out" "$BHRR" record -o "$d/ci.bhlog" -- "${QEMU_ARGV[@]}" 2>"$d/rec.err" || st=$?
	cat "$d/rec.err"
	echo "record: status $st"
	[ "$st" -eq 0 ]
	# the payload came through (its md5), and so did the host's line
	grep -q "$(python3 -c 'import hashlib; print(hashlib.md5(b"".join(b"bhrr payload line %04d\n" % i for i in range(2000))).hexdigest())')" "$d/rec.out"
	grep -q "from-host" "$d/rec.out"
	grep -q "^agent-ping 42" "$d/rec.out"
	local j
	j=$("$BHRR" dump --json "$d/ci.bhlog" | jq -s -c '{net: [.[] | select(.kind == "net_recv")] | length,
		con: [.[] | select(.kind == "chr_read") | .bytes] | add,
		rng: [.[] | select(.kind == "rng_read")] | length,
		mon: [.[] | select(.kind == "monitor") | .request | fromjson | .execute],
		agent: [.[] | select(.kind == "chr_read" and .frontend == 1) | .bytes] | add}')
	echo "recorded: $j"
	[ "$(jq .net <<<"$j")" -ge 20 ] && [ "$(jq .con <<<"$j")" -ge 100 ] && [ "$(jq .rng <<<"$j")" -ge 1 ]
	[ "$(jq -c .mon <<<"$j")" = '["stop","cont"]' ]
	[ "$(jq .agent <<<"$j")" -eq 14 ] # "agent-ping 42\n", on the channel's frontend
	for k in $(seq "$2"); do
		ci_argv "$1"
		st=0
		BHRR_WATCHDOG_MS=5000 timeout 300 "$BHRR" replay "$d/ci.bhlog" -o "$d/rep.bhlog" \
			</dev/null >"$d/rep.out" 2>"$d/rep.err" || st=$?
		echo "replay $k (nothing attached): status $st"
		cat "$d/rep.err"
		[ "$st" -eq 0 ]
		! grep -q divergence "$d/rep.err" || false
		cmp "$d/rec.out" "$d/rep.out"
	done
	ci_argv "$1"
	st=0
	timeout 600 python3 "$BHRR_SRCDIR/tests/helper/ci-harness.py" --live-replay "$CI_HTTP" "$CI_FWD" \
		"$CI_SOCK" "$CI_AGENT" "$d/live.out" "$BHRR" replay "$d/ci.bhlog" -o "$d/rep.bhlog" 2>"$d/live.err" || st=$?
	echo "replay with the harness attached: status $st"
	cat "$d/live.err"
	[ "$st" -eq 0 ]
	cmp "$d/rec.out" "$d/live.out"
	# The harness's input was ignored - or the replay, which does not wait
	# for it, was over before the harness got to it (the harness says so),
	# never run: live input is ignored up to the recording's end.  A QMP
	# answer after each input proves QEMU read it: the stop's for the first
	# typed line, a query's for the channel's line.
	grep -q "live monitor command 'stop' ignored\|CMD gone before its QMP commands" "$d/live.err"
	grep -q "live input to console frontend 0 ignored\|CMD gone before its QMP commands" "$d/live.err"
	grep -q "live input to console frontend 1 ignored\|CMD gone before its \(channel line\|QMP commands\)" \
		"$d/live.err"
}

@test "a CI-shaped Linux run (console harness, HTTP, hostfwd, virtio-rng, QMP stop/cont) replays with nothing attached, on QEMU 7.2" {
	linux_ci 7.2 ${BHRR_CI_REPLAYS:-10}
}

@test "a CI-shaped Linux run (console harness, HTTP, hostfwd, virtio-rng, QMP stop/cont) replays with nothing attached, on QEMU 10.0" {
	linux_ci 10.0 ${BHRR_CI_REPLAYS:-10}
}
