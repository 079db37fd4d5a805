# helper.bash - shared set-up for bhrr's bats suites.  Loaded with
# "load helper"; run through 'make check', which exports BHRR_BUILDDIR and
# BHRR_SRCDIR.

: "${BHRR_BUILDDIR:?run the tests through make check}"
: "${BHRR_SRCDIR:=$BHRR_BUILDDIR}"

BHRR="$BHRR_BUILDDIR/tools/bhrr"
# The shim the suites preload by hand: $BHRR_SHIM, which the bhrr command
# honours too (a list in LD_PRELOAD's syntax: make check-shim-asan gives
# ASan's runtime, then libbhrr-asan.so), else the build's libbhrr.so.
SHIM="${BHRR_SHIM:-$BHRR_BUILDDIR/.libs/libbhrr.so}"
GUEST_DIR="$BHRR_BUILDDIR/tests/guest"

# BHRR_SAN_LOGS (make check-shim-asan): each test's ASan and UBSan reports go
# to BHRR_SAN_LOGS/SUITE-N/{asan,ubsan}.PID (GCC's UBSan runtime is its own,
# linked into libbhrr-asan.so, and reads only UBSAN_OPTIONS; two names, as
# each truncates its file), and the test fails in teardown if one was written
# (san-reports.sh: QEMU's coroutine warnings are not reports).
# Leak detection is off: QEMU is not instrumented and does not free at exit.
# An error ends the process at once with status 86 (not an abort: no core,
# and a status no guest nor bhrr gives).  A suite that defines its own
# teardown must call san_reports_none from it.
san_reports_none() {
	sh "$BHRR_SRCDIR/tests/shell/san-reports.sh" "$SAN_LOG_DIR"
}
if [ -n "${BHRR_SAN_LOGS:-}" ] && [ -n "${BATS_TEST_NUMBER:-}" ]; then
	SAN_LOG_DIR="$BHRR_SAN_LOGS/$(basename "$BATS_TEST_FILENAME" .bats)-$BATS_TEST_NUMBER"
	mkdir -p "$SAN_LOG_DIR"
	export ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:halt_on_error=1:exitcode=86${ASAN_OPTIONS:+:$ASAN_OPTIONS}:log_path=$SAN_LOG_DIR/asan"
	export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=86${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}:log_path=$SAN_LOG_DIR/ubsan"
	teardown() {
		san_reports_none
	}
fi

# use_qemu VERSION: set QEMU_BIN and QEMU_FW for "7.2" (the system QEMU)
# or "10.0" (unpacked by scripts/fetch-qemu.sh into the build tree).
use_qemu() {
	case "$1" in
	7.2)
		QEMU_BIN=/usr/bin/qemu-system-x86_64
		QEMU_FW=
		unset QEMU_MODULE_DIR
		;;
	10.0)
		# shellcheck disable=SC1091
		. "$BHRR_BUILDDIR/qemu/10.0/env"
		QEMU_FW=$QEMU_FIRMWARE
		;;
	*)
		echo "use_qemu: unknown version $1" >&2
		return 1
		;;
	esac
	[ -x "$QEMU_BIN" ] || { echo "no QEMU $1 at $QEMU_BIN" >&2; return 1; }
	"$QEMU_BIN" -version | head -n 1 | grep -q "version $1\." \
		|| { echo "$QEMU_BIN is not QEMU $1" >&2; return 1; }
}

# qemu_for VERSION GUEST: QEMU_ARCH, QEMU VERSION's (7.2 or 10.0) system emulator
# for GUEST: aarch64, riscv64 (virt_argv's), aarch64-pci (17-virt-boards, 50-linux)
qemu_for() {
	use_qemu "$1"
	case "$1/${2%-pci}" in
	7.2/*) QEMU_ARCH=/usr/bin/qemu-system-${2%-pci} ;;
	10.0/aarch64) QEMU_ARCH=$QEMU_BIN_AARCH64 ;;
	10.0/riscv64) QEMU_ARCH=$QEMU_BIN_RISCV64 ;;
	esac
	[ -x "$QEMU_ARCH" ] || { echo "no $QEMU_ARCH (qemu-system-arm / qemu-system-misc; scripts/setup-debian.sh, scripts/fetch-qemu.sh)" >&2; return 1; }
	"$QEMU_ARCH" -version | head -n 1 | grep -q "version $1\." || { echo "$QEMU_ARCH is not QEMU $1" >&2; return 1; }
}

# mini_guest_argv [QEMU OPTIONS...]: the command line that boots
# tests/guest/mini.elf reading its disk; extra options are appended.
mini_guest_argv() {
	MINI_DISK="$BATS_TEST_TMPDIR/disk.img"
	cp "$GUEST_DIR/mini-disk.img" "$MINI_DISK"
	# shellcheck disable=SC2206
	QEMU_ARGV=("$QEMU_BIN" $QEMU_FW -nodefaults -display none -accel tcg
		-kernel "$GUEST_DIR/mini.elf" -append "sectors=256"
		-drive "file=$MINI_DISK,format=raw,if=ide,index=0"
		-device isa-debug-exit,iobase=0xf4,iosize=1 -debugcon stdio "$@")
}

# The exit status QEMU gives when the mini guest passes (0x10 << 1 | 1).
MINI_PASS=33

# wait_events LOG N PID: wait until the live log LOG holds N io_complete
# events, so a signal test acts mid-I/O because the run got there, not
# because a sleep was long enough.  Fails if PID ends first, or after 5 min.
wait_events() {
	local log=$1 n=$2 pid=$3 i
	for i in $(seq 1 6000); do
		if [ -s "$log" ] && [ "$("$BHRR" dump --json "$log" 2>/dev/null | grep -c '"kind":"io_complete"')" -ge "$n" ]; then
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || { echo "wait_events: process $pid ended before $n completions"; return 1; }
		sleep 0.05
	done
	echo "wait_events: $log never held $n completions"
	return 1
}

# signal_and_time SIGNAL PID LOG: once LOG holds 20 completions, send SIGNAL
# to PID, wait for it and set EXIT_MS to how long it took to exit after the
# signal.
signal_and_time() {
	local t0
	wait_events "$3" 20 "$2"
	kill "-$1" "$2"
	t0=$(date +%s%N)
	wait "$2" || true
	EXIT_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
	echo "exited $EXIT_MS ms after SIG$1"
}

# qmp_quit_and_time PORT PID LOG: once LOG holds 20 completions, send QMP
# "quit" to the QEMU PID listening on 127.0.0.1:PORT, wait for it and set
# EXIT_MS as above.
qmp_quit_and_time() {
	local t0
	wait_events "$3" 20 "$2"
	exec 5<>"/dev/tcp/127.0.0.1/$1"
	printf '%s\n' '{"execute":"qmp_capabilities"}' '{"execute":"quit"}' >&5
	t0=$(date +%s%N)
	wait "$2" || true
	exec 5>&-
	EXIT_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
	echo "exited $EXIT_MS ms after QMP quit"
}

# note TEXT: a line in the TAP stream ("# TEXT"), kept in the test's .log
# whether it passes or fails: the measured counts a statistical test reports.
note() {
	echo "# $*" >&3
}

# differs_within N FN ARGS...: up to N free runs, each "FN ARGS" (which
# runs the guest, asserts the run is sound and sets DIGEST); succeeds at the
# second distinct digest, fails if all N agree.  The statistical argument
# for N = 10 is in 17-virt-boards.bats.
differs_within() {
	local n=$1 seen='' k
	shift
	for k in $(seq 1 "$n"); do
		"$@"
		echo "run $k: $DIGEST"
		[ -z "$seen" ] || [ "$DIGEST" = "$seen" ] || return 0
		seen=$DIGEST
	done
	echo "$n free runs gave one digest: $seen"
	return 1
}
