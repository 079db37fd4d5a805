# guest.sh - named configurations of the test guest, sourced by the tests,
# the benchmarks and scripts/demo.sh.
#
#   guest_argv CONFIG DIR
#
# copies fresh disk images into DIR and sets the array GUEST_ARGV to the QEMU
# options (everything after the binary and its firmware options) that boot
# tests/guest/guest.elf in configuration CONFIG under -icount
# shift=0,sleep=off, with the debugcon on stdout.  The command lines are
# clean by 'bhrr doctor': nothing but I/O timing varies between runs (and,
# for smp=N, given -smp N, the vCPUs' interleaving, which bhrr records too;
# doctor flags it on QEMU 7.2 only).  Needs GUEST_DIR (where guest.elf and
# disk.img were built).

GUEST_CONFIGS="ide-pio ide-dma-irq ide-pio-pit ahci-ncq ahci-ncq-irq virtio virtio-irq flaky"

# The -append string of each configuration.
guest_append() {
	case "$1" in
	ide-pio)      echo "dev=ide mode=pio n=64" ;;
	ide-dma-irq)  echo "dev=ide mode=dma wait=irq n=64" ;;
	ide-pio-pit)  echo "dev=ide mode=pio wait=irq hz=1000 n=64" ;;
	ahci-ncq)     echo "dev=ahci depth=8 n=64" ;;
	ahci-ncq-irq) echo "dev=ahci depth=8 wait=irq hz=100 n=64" ;;
	virtio)       echo "dev=virtio depth=8 n=64" ;;
	virtio-irq)   echo "dev=virtio depth=8 wait=irq hz=100 n=64" ;;
	# fails about every other free run, whatever the host's load: the XOR of
	# 32 commands' latency bits (main.c, coin=); measured 21/40 idle, and
	# inside [0.3, 0.7] under load (tests/shell/40-guest.bats)
	flaky)        echo "dev=virtio depth=4 n=32 coin=32" ;;
	# every command in flight at once: what the guest asks for does not depend on
	# when completions arrive, only the order it sees them in does (ordering mode)
	virtio-burst) echo "dev=virtio depth=32 n=32" ;;
	# the race fails rarely (0 of 40 side-by-side free runs, 5 of 20 with chaos)
	rare)         echo "dev=virtio depth=8 n=64 flaky=30" ;;
	# one race decides: command 7 overtaking command 6; reads only, so two
	# requests in flight are alike and the race stays open until it is run
	race)         echo "dev=virtio depth=4 n=32 writes=0 race=7" ;;
	# soft-resets an IDE channel while command 3's DMA runs: QEMU drains the
	# disk in the vCPU thread, waiting in a nested aio_poll (90-faults.bats)
	reset)        echo "dev=ide mode=dma n=16 writes=0 reset=3" ;;
	# reads 24 bytes from COM1 first (console.in in DIR: guest_argv gives it
	# a pipe chardev reading that), each printed with how long it waited
	console)      echo "dev=ide mode=pio n=8 con=24" ;;
	# the console guest, which also says at boot how far the boot before got
	# if a reset (a monitor's system_reset) cut it short (75-console.bats)
	monitor)      echo "dev=ide mode=pio n=8 con=24 warm=1" ;;
	# reads 4 scancode bytes from the i8042 first: a monitor's sendkey
	# (77-monitor.bats)
	keyboard)     echo "dev=ide mode=pio n=8 kbd=4" ;;
	# waits for the ACPI power button first: a monitor's system_powerdown
	# (77-monitor.bats)
	powerdown)    echo "dev=ide mode=pio n=8 pwrbtn=1" ;;
	# reads 4 frames from an e1000 first (78-network.bats gives it a
	# backend); with arp=1, after asking user networking's gateway
	network)      echo "dev=ide mode=pio n=8 hz=100 net=4" ;;
	network-arp)  echo "dev=virtio depth=8 n=16 hz=100 net=1 arp=1" ;;
	# the same as network, from an RTL8139 (79-network.bats gives it the device)
	network-rtl)  echo "dev=ide mode=pio n=8 hz=100 net=4 rtl8139=1" ;;
	# prints the CMOS RTC at boot: the host's clock at the start when -rtc
	# has no fixed base= (78-clock.bats gives it one that follows the host)
	clock)        echo "dev=ide mode=pio n=8 rtc=1" ;;
	# the same, then watches 2 ticks of the RTC's seconds by polling it:
	# with -rtc clock=host, host timing (78-clock.bats)
	clock-watch)  echo "dev=ide mode=pio n=8 rtc=2" ;;
	# reads 8 chunks from a virtio-rng fed by the host's /dev/urandom first
	entropy)      echo "dev=ide mode=pio n=8 rng=8" ;;
	# the same from QEMU's default backend, rng-builtin (a BH, seeded by -seed)
	entropy-builtin) echo "dev=ide mode=pio n=8 rng=8 seed=2" ;;
	# the same from an EGD daemon: rng-egd on a socket chardev (DIR/egd.sock,
	# QEMU the server; it waits for the daemon unless EGD_WAIT=off)
	entropy-egd)  echo "dev=ide mode=pio n=8 rng=8 seed=3" ;;
	# sleeps through 8 PIT ticks with nothing in flight first: at least 8
	# warps in every run, whatever the host does (the warp tests need them)
	idle)         echo "dev=ide mode=pio wait=irq hz=1000 idle=8 n=16" ;;
	# an AP races the BSP on a shared counter while the BSP does its I/O
	# (smp.c): where QEMU switches vCPUs follows the completions, so the
	# "race:" line differs between free runs.  wait=irq: the BSP halts and
	# the AP runs while a command is out; hz=1000: a timer deadline ends a
	# vCPU's turn every millisecond, which QEMU 7.2 needs to stay quick
	smp-race)     echo "dev=ide mode=pio wait=irq hz=1000 n=16 smp=2" ;;
	smp-race-virtio) echo "dev=virtio depth=4 wait=irq hz=1000 n=32 smp=2" ;;
	*) return 1 ;;
	esac
}

guest_argv() {
	local config=$1 dir=$2 append smp
	append=$(guest_append "$config") || { echo "guest_argv: unknown configuration '$config'" >&2; return 1; }
	cp "$GUEST_DIR/disk.img" "$dir/disk0.img"
	GUEST_ARGV=(-nodefaults -display none -accel tcg -icount shift=0,sleep=off
		-rtc clock=vm,base=2020-01-01T00:00:00 -seed 1
		-kernel "$GUEST_DIR/guest.elf" -append "$append"
		-device isa-debug-exit,iobase=0xf4,iosize=1 -debugcon stdio)
	case "$append" in
	*smp=*) # the guest starts N-1 APs: QEMU must have them
		smp=${append##*smp=}
		GUEST_ARGV+=(-smp "${smp%% *}") ;;
	esac
	case "$append" in
	*con=*)
		# a pipe chardev reads PATH.in and writes PATH.out; plain files work
		# too (file's input-path= is newer than QEMU 7.2)
		[ -e "$dir/console.in" ] || : >"$dir/console.in"
		: >"$dir/console.out"
		GUEST_ARGV+=(-chardev "pipe,id=con0,path=$dir/console" -serial chardev:con0) ;;
	esac
	case "$append" in
	*rng=*seed=2*) # entropy-builtin: the device's default backend
		GUEST_ARGV+=(-device virtio-rng-pci,disable-modern=on) ;;
	*rng=*seed=3*) # entropy-egd
		GUEST_ARGV+=(-chardev "socket,id=egd0,path=$dir/egd.sock,server=on,wait=${EGD_WAIT:-on}"
			-object rng-egd,id=rng0,chardev=egd0
			-device virtio-rng-pci,rng=rng0,disable-modern=on) ;;
	*rng=*)
		GUEST_ARGV+=(-object rng-random,id=rng0,filename=/dev/urandom
			-device virtio-rng-pci,rng=rng0,disable-modern=on) ;;
	esac
	case "$append" in
	*dev=ide*)
		cp "$GUEST_DIR/disk.img" "$dir/disk1.img"
		GUEST_ARGV+=(-drive "file=$dir/disk0.img,format=raw,if=ide,index=0"
			-drive "file=$dir/disk1.img,format=raw,if=ide,index=2") ;;
	*dev=ahci*)
		GUEST_ARGV+=(-device ahci,id=ahci0
			-drive "id=d0,file=$dir/disk0.img,format=raw,if=none"
			-device ide-hd,drive=d0,bus=ahci0.0) ;;
	*dev=virtio*)
		GUEST_ARGV+=(-drive "id=d0,file=$dir/disk0.img,format=raw,if=none"
			-device virtio-blk-pci,drive=d0,disable-modern=on) ;;
	esac
}

# Exit statuses of QEMU for the guest's verdicts.
GUEST_PASS=33
GUEST_FAIL=35
GUEST_FLAKY=37

# virt_argv GUEST DIR: GUEST_ARGV for QEMU's virt board booting the virt-board
# guest (tests/guest/mmio/: 32 commands with 4 in flight) on a fresh copy of
# disk.img in DIR, under -icount shift=0,sleep=off, with its serial port on
# stdout.  GUEST: aarch64 or riscv64 (virtio-blk over legacy virtio-mmio),
# or aarch64-pci (legacy virtio-pci); qemu-system-${GUEST%-pci} runs it.
virt_argv() {
	cp "$GUEST_DIR/disk.img" "$2/$1-disk.img"
	GUEST_ARGV=(-M virt -m 128 -nodefaults -display none -accel tcg
		-icount shift=0,sleep=off -rtc clock=vm,base=2020-01-01T00:00:00 -seed 1)
	case "$1" in
	aarch64) GUEST_ARGV+=(-cpu cortex-a57) ;;
	aarch64-pci) GUEST_ARGV=(-M virt,highmem=off "${GUEST_ARGV[@]:2}" -cpu cortex-a57) ;;
	riscv64) GUEST_ARGV+=(-bios none) ;;
	esac
	GUEST_ARGV+=(-kernel "$GUEST_DIR/mmio/$1.elf" -serial stdio
		-drive "id=d0,file=$2/$1-disk.img,format=raw,if=none")
	case "$1" in
	*-pci) GUEST_ARGV+=(-device virtio-blk-pci,drive=d0,disable-modern=on) ;;
	*) GUEST_ARGV+=(-device virtio-blk-device,drive=d0 -global virtio-mmio.force-legacy=true) ;;
	esac
}

# share_9p DIR: DIR/share, the read-only 9p share the Linux tier's reader
# (bhrr.9p=) reads: 12 files, freshly written, so that relatime would move
# their access times at the first read - which bhrr's record must not do
# (doc/record.md, "9p shares").  An existing DIR/share is kept.
share_9p() {
	if [ -d "$1/share" ]; then
		return 0
	fi
	mkdir "$1/share"
	for i in $(seq 1 12); do
		yes "file $i of the share" | head -c $((i * 3000)) >"$1/share/f$(printf %02d "$i")"
	done
}
