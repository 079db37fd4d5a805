#!/usr/bin/env bats
# Network receive (issue 14, point 1) on the real QEMU 7.2 and 10.0: every
# frame a backend hands to a guest NIC is recorded with its bytes and
# landed at an exact icount; a replay cuts the backend off both ways and
# hands the NIC the recorded frames at their icounts, with nothing on the
# network.
#
# The guest (network configurations, main.c net= and tests/guest/e1000.c)
# polls an e1000 for frames and prints each with how many polls it waited:
# that depends on when the host's backend delivered it, so only a replay
# that delivers every frame at its recorded icount prints the same.

load helper

setup() {
	# shellcheck source=tests/guest/guest.sh
	. "$BHRR_SRCDIR/tests/guest/guest.sh"
	LOG="$BATS_TEST_TMPDIR/rec.bhlog"
}

# replay_n CONFIG N [QEMU ARGS...]: replay $LOG N times with fresh disks and
# nothing on the network; each replay's output and status are the record's
replay_n() {
	local config=$1 n=$2 d=$BATS_TEST_TMPDIR
	shift 2
	for i in $(seq "$n"); do
		guest_argv "$config" "$d"
		local st=0
		timeout 60 "$BHRR" replay "$LOG" -o "$d/rep.bhlog" >"$d/rep.out" 2>"$d/rep.err" || st=$?
		cat "$d/rep.err"
		[ "$st" -eq "$GUEST_PASS" ]
		cmp "$d/rec.out" "$d/rep.out"
		! grep -q divergence "$d/rep.err" || false
		"$BHRR" diff "$LOG" "$d/rep.bhlog"
		echo "replay $i, nothing on the network: identical"
	done
}

# four_frames_recorded STATUS: the record (its status STATUS) passed, the
# guest printed its frames, and the log has the harness's 4 frames, bytes
# and all, for NIC 0
four_frames_recorded() {
	[ "$1" -eq "$GUEST_PASS" ]
	grep '^net: frame' "$BATS_TEST_TMPDIR/rec.out"
	[ "$("$BHRR" dump --json "$LOG" | jq -s '[.[] | select(.kind == "net_recv" and .nic == 0)] | length')" -eq 4 ]
	"$BHRR" dump --json "$LOG" | jq -r 'select(.kind == "net_recv") | .data_hex' | head -n 1 |
		grep -q "$(printf 'bhrr test frame 0' | od -An -tx1 | tr -d ' \n')"
}

# a socket backend: the test is the host that sends, 4 frames once the guest
# waits; to an e1000, or with rtl8139, an RTL8139
network_socket() {
	use_qemu "$1"
	local config=network model=e1000
	if [ "${2:-}" = rtl8139 ]; then
		config=network-rtl
		model=rtl8139
	fi
	local d=$BATS_TEST_TMPDIR port
	port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	guest_argv "$config" "$d"
	local st=0
	# shellcheck disable=SC2086
	timeout 120 python3 "$BHRR_SRCDIR/tests/helper/net-harness.py" "$port" 4 "$d/rec.out" \
		"$BHRR" record -o "$LOG" -- "$QEMU_BIN" $QEMU_FW "${GUEST_ARGV[@]}" \
		-netdev "socket,id=n0,udp=127.0.0.1:9,localaddr=127.0.0.1:$port" \
		-device "$model,netdev=n0,romfile=" 2>"$d/rec.err" || st=$?
	cat "$d/rec.err"
	four_frames_recorded "$st"
	replay_n "$config" 3
}

@test "QEMU 7.2: frames from a socket backend reach the e1000 at their recorded icounts; replays need no network (3/3)" {
	network_socket 7.2
}

@test "QEMU 7.2: frames from a socket backend reach an RTL8139 at their recorded icounts; replays need no network (3/3)" {
	network_socket 7.2 rtl8139
}

@test "QEMU 10.0: frames from a socket backend reach the e1000 at their recorded icounts; replays need no network (3/3)" {
	network_socket 10.0
}

# QEMU's implicit default NIC (no -nic, no -nodefaults: an e1000 on a hub
# with user networking): the guest asks the gateway by ARP, slirp answers
network_default_nic() {
	use_qemu "$1"
	local d=$BATS_TEST_TMPDIR
	guest_argv network-arp "$d"
	local -a argv=()
	for a in "${GUEST_ARGV[@]}"; do
		[ "$a" = -nodefaults ] || argv+=("$a")
	done
	local st=0
	# shellcheck disable=SC2086
	timeout 60 "$BHRR" record -o "$LOG" -- "$QEMU_BIN" $QEMU_FW "${argv[@]}" -vga none \
		>"$d/rec.out" 2>"$d/rec.err" || st=$?
	cat "$d/rec.err"
	[ "$st" -eq "$GUEST_PASS" ]
	# the doctor has nothing to say of it any more
	! grep -q "default NIC" "$d/rec.err" || false
	grep '^net: frame 0: ' "$d/rec.out"
	# the gateway's ARP reply (type 0806, opcode 2), recorded for NIC 0
	"$BHRR" dump --json "$LOG" | jq -r 'select(.kind == "net_recv" and .nic == 0) | .data_hex' |
		grep -q '^.\{24\}08060001080006040002'
	replay_n network-arp 2
}

@test "QEMU 7.2: QEMU's implicit default NIC is recorded like an explicit one: the gateway's ARP reply replays (2/2)" {
	network_default_nic 7.2
}

@test "QEMU 10.0: QEMU's implicit default NIC is recorded like an explicit one: the gateway's ARP reply replays (2/2)" {
	network_default_nic 10.0
}

# one byte of one recorded frame changed: the content cannot diverge by
# itself (the replay delivers what the log says, where it says), so the
# guest's behaviour does: it prints another hash for that frame, which takes
# it another number of instructions, and bhrr names its next device access,
# at another icount, as the divergence; bhrr diff of the record and the
# replay names the tampered frame as their first difference
network_tampered() {
	use_qemu "$1"
	local d=$BATS_TEST_TMPDIR port
	port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	guest_argv network "$d"
	local st=0
	# shellcheck disable=SC2086
	timeout 120 python3 "$BHRR_SRCDIR/tests/helper/net-harness.py" "$port" 4 "$d/rec.out" \
		"$BHRR" record -o "$LOG" -- "$QEMU_BIN" $QEMU_FW "${GUEST_ARGV[@]}" \
		-netdev "socket,id=n0,udp=127.0.0.1:9,localaddr=127.0.0.1:$port" \
		-device e1000,netdev=n0,romfile= 2>"$d/rec.err" || st=$?
	[ "$st" -eq "$GUEST_PASS" ]
	local seq
	seq=$("$BHRR" dump --json "$LOG" | jq -s '[.[] | select(.kind == "net_recv")][2].seq')
	"$BHRR_BUILDDIR/tests/helper/bhrr-test-tool" tamper "$LOG" "$d/t.bhlog" "$seq" byte 20
	guest_argv network "$d"
	st=0
	timeout 60 "$BHRR" replay "$d/t.bhlog" -o "$d/rep.bhlog" >"$d/rep.out" 2>"$d/rep.err" || st=$?
	cat "$d/rep.err"
	# the guest saw frame 2 changed: its line, and only its hash, differs
	grep '^net: frame 2: ' "$d/rec.out" "$d/rep.out"
	[ "$(grep '^net: frame 2: ' "$d/rec.out" | sed 's/hash [0-9a-f]*//')" = \
		"$(grep '^net: frame 2: ' "$d/rep.out" | sed 's/hash [0-9a-f]*//')" ]
	[ "$(grep '^net: frame 2: ' "$d/rec.out")" != "$(grep '^net: frame 2: ' "$d/rep.out")" ]
	head -n 5 "$d/rec.out" | cmp - <(head -n 5 "$d/rep.out")
	# and went on differently: named at a recorded event after the frame
	[ "$st" -eq 4 ]
	local at
	at=$(sed -n 's/.*divergence at recorded event #\([0-9]*\):.*/\1/p' "$d/rep.err")
	[ "$at" -gt "$seq" ]
	run "$BHRR" diff "$LOG" "$d/rep.bhlog"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "${lines[1]}" == *"event #$seq net_recv of 86 bytes"* ]]
}

@test "QEMU 7.2: a tampered frame byte reaches the guest, whose later behaviour is named; bhrr diff names that frame" {
	network_tampered 7.2
}

# a tap backend (QEMU makes the device, as root): the test is the host
# that sends, 4 frames into the tap once the guest waits; replays run with
# the tap there but nothing sent into it
network_tap() {
	use_qemu "$1"
	[ "$(id -u)" -eq 0 ] && [ -c /dev/net/tun ] || skip "a tap device needs root and /dev/net/tun"
	local d=$BATS_TEST_TMPDIR ifname
	ifname=bhrr$$$RANDOM
	ifname=${ifname:0:15}
	guest_argv network "$d"
	local st=0
	# shellcheck disable=SC2086
	timeout 120 python3 "$BHRR_SRCDIR/tests/helper/net-harness.py" --tap "$ifname" 0 4 "$d/rec.out" \
		"$BHRR" record -o "$LOG" -- "$QEMU_BIN" $QEMU_FW "${GUEST_ARGV[@]}" \
		-netdev "tap,id=n0,ifname=$ifname,script=no,downscript=no" \
		-device e1000,netdev=n0,romfile= 2>"$d/rec.err" || st=$?
	cat "$d/rec.err"
	four_frames_recorded "$st"
	replay_n network 2
}

@test "QEMU 7.2: frames from a tap backend reach the e1000 at their recorded icounts; replays send nothing into the tap (2/2)" {
	network_tap 7.2
}

@test "QEMU 10.0: frames from a tap backend reach the e1000 at their recorded icounts; replays send nothing into the tap (2/2)" {
	network_tap 10.0
}

# a jumbo frame (9000 bytes, over the 4096 one log event holds) is logged in
# pieces at one icount and replays whole: the guest's e1000 takes it over
# several buffers and prints its length and hash
@test "QEMU 7.2: a 9000-byte frame is logged in pieces and reaches the guest whole in replays (2/2)" {
	use_qemu 7.2
	local d=$BATS_TEST_TMPDIR port st=0
	port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	guest_argv network "$d"
	# shellcheck disable=SC2086
	timeout 120 python3 "$BHRR_SRCDIR/tests/helper/net-harness.py" --big 9000 "$port" 4 "$d/rec.out" \
		"$BHRR" record -o "$LOG" -- "$QEMU_BIN" $QEMU_FW "${GUEST_ARGV[@]}" \
		-netdev "socket,id=n0,udp=127.0.0.1:9,localaddr=127.0.0.1:$port" \
		-device e1000,netdev=n0,romfile= 2>"$d/rec.err" || st=$?
	cat "$d/rec.err"
	[ "$st" -eq "$GUEST_PASS" ]
	grep '^net: frame' "$d/rec.out"
	grep -q '^net: frame 3: 9000 bytes' "$d/rec.out"
	# 3 frames in one event each, the big one in 3 (4096 + 4096 + 808 bytes), all at one icount
	"$BHRR" dump --json "$LOG" | jq -c 'select(.kind == "net_recv") | [.bytes, .more, .icount]'
	[ "$("$BHRR" dump --json "$LOG" | jq -s -c '[.[] | select(.kind == "net_recv") | .bytes]')" = "[86,86,86,4096,4096,808]" ]
	[ "$("$BHRR" dump --json "$LOG" | jq -s '[.[] | select(.kind == "net_recv" and .more)] | length')" -eq 2 ]
	[ "$("$BHRR" dump --json "$LOG" | jq -s '[.[] | select(.kind == "net_recv") | .icount] | .[3:] | unique | length')" -eq 1 ]
	replay_n network 2
}
