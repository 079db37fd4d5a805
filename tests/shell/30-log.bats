#!/usr/bin/env bats
# bhrr dump / verify / stat on good, damaged and foreign logs: the right exit
# status (0 intact, 1 damaged, 2 not a log), a message naming the file and
# the problem, and never a crash.

load helper

TOOL="$BHRR_BUILDDIR/tests/helper/bhrr-test-tool"

setup() {
	LOG="$BATS_TEST_TMPDIR/run.bhlog"
}

# gen N [SEED]: a synthetic disk-I/O log of N commands in $LOG.
gen() {
	"$TOOL" gen "$LOG" "$1" "${2:-7}" >/dev/null
}

@test "verify accepts a complete log and says so" {
	gen 2000
	run "$BHRR" verify "$LOG"
	[ "$status" -eq 0 ]
	[[ "$output" == "$LOG: intact: "*" events, complete" ]]
}

@test "dump prints one line per event and --json one object per event" {
	gen 500
	"$BHRR" dump "$LOG" | grep -v '^#' >"$BATS_TEST_TMPDIR/text"
	"$BHRR" dump --json "$LOG" >"$BATS_TEST_TMPDIR/json"
	events=$("$BHRR" stat --json "$LOG" | jq .events)
	[ "$(wc -l <"$BATS_TEST_TMPDIR/text")" -eq "$events" ]
	[ "$(jq -c . "$BATS_TEST_TMPDIR/json" | wc -l)" -eq "$events" ]
	# every object has seq, kind, icount and name
	[ "$(jq 'select(has("seq") and has("kind") and has("icount") and has("name"))' -c "$BATS_TEST_TMPDIR/json" | wc -l)" -eq "$events" ]
	# seq counts 0.. without gaps
	[ "$(jq -s 'map(.seq) == [range(0; length)]' "$BATS_TEST_TMPDIR/json")" = true ]
	# kinds come from the documented vocabulary
	! jq -r .kind "$BATS_TEST_TMPDIR/json" | grep -vxE 'string|ident|bh_schedule|bh_run|io_submit|io_complete|warp|nested_poll|vm_stop|vm_resume|diverge|chaos|end' || false
	# bh_run events carry their callback name
	[ "$(jq -r 'select(.kind == "bh_run") | .name' "$BATS_TEST_TMPDIR/json" | sort -u)" = thread_pool_completion_bh ]
	# a lower-bound icount is marked as such
	[ "$(jq -r 'select(.kind == "bh_schedule") | .icount_exact' "$BATS_TEST_TMPDIR/json" | sort -u)" = false ]
}

@test "stat counts match dump, kind by kind" {
	gen 300
	"$BHRR" dump --json "$LOG" | jq -r .kind | sort | uniq -c | awk '{print $2, $1}' >"$BATS_TEST_TMPDIR/expect"
	"$BHRR" stat --json "$LOG" | jq -r '.kinds | to_entries[] | "\(.key) \(.value.count)"' | sort >"$BATS_TEST_TMPDIR/actual"
	diff -u "$BATS_TEST_TMPDIR/expect" "$BATS_TEST_TMPDIR/actual"
	[ "$("$BHRR" stat --json "$LOG" | jq '.callbacks[0].runs')" -eq 300 ]
}

@test "an I/O completion costs at most 24 bytes on average" {
	gen 5000
	run "$BHRR" stat --json "$LOG"
	[ "$status" -eq 0 ]
	per=$(jq '.kinds.io_complete.bytes_per_event' <<<"$output")
	awk -v p="$per" 'BEGIN { exit !(p <= 24) }'
	# and a whole command (submit, schedule, run, complete, warps) stays small too
	per_cmd=$(jq '.file_bytes / 5000' <<<"$output")
	awk -v p="$per_cmd" 'BEGIN { exit !(p <= 48) }'
}

@test "a truncated log is a valid, incomplete prefix" {
	gen 3000
	size=$("$TOOL" size "$LOG")
	"$TOOL" truncate "$LOG" $((size / 2 + 3))
	run "$BHRR" verify "$LOG"
	[ "$status" -eq 0 ]
	[[ "$output" == *"incomplete (no end event"*"torn tail of"* ]]
	run "$BHRR" dump "$LOG"
	[ "$status" -eq 0 ]
}

@test "a flipped byte mid-file is reported with its offset, and reading goes on" {
	gen 3000
	"$TOOL" flip "$LOG" 40000
	run "$BHRR" verify "$LOG"
	[ "$status" -eq 1 ]
	[[ "$output" == *"$LOG: damaged at offset "*": checksum mismatch ("*" bytes dropped)"* ]]
	grep -Eq "^$LOG: damaged: [0-9]+ damaged span\(s\), [0-9]+ bytes dropped; [0-9]+ events readable$" <<<"$output"
	# events after the damaged block are still there, up to the end event
	run "$BHRR" dump --json "$LOG"
	[ "$status" -eq 1 ]
	[ "$(grep -c '"kind":"end"' <<<"$output")" -eq 1 ]
}

@test "a bad record length is damage, not a crash" {
	gen 3000
	"$TOOL" setbyte "$LOG" $((32768 + 4)) 255
	"$TOOL" setbyte "$LOG" $((32768 + 5)) 255
	run "$BHRR" verify "$LOG"
	[ "$status" -eq 1 ]
	[[ "$output" == *"damaged at offset 32768: record length runs past its block"* ]]
}

@test "two logs spliced mid-block are reported as damaged" {
	gen 3000 1
	cp "$LOG" "$BATS_TEST_TMPDIR/a"
	gen 3000 2
	"$TOOL" splice "$BATS_TEST_TMPDIR/a" "$LOG" 50000 "$BATS_TEST_TMPDIR/spliced"
	run "$BHRR" verify "$BATS_TEST_TMPDIR/spliced"
	[ "$status" -eq 1 ]
	[[ "$output" == *"damaged at offset"* ]]
}

@test "files that are not bhrr logs exit 2 with the reason" {
	run "$BHRR" verify /bin/true
	[ "$status" -eq 2 ]
	[ "$output" = "bhrr: /bin/true: not a bhrr log (no BHRRLOG header at the start)" ]
	: >"$BATS_TEST_TMPDIR/empty"
	run "$BHRR" dump "$BATS_TEST_TMPDIR/empty"
	[ "$status" -eq 2 ]
	[[ "$output" == *"empty file, not a bhrr log"* ]]
	run "$BHRR" stat "$BATS_TEST_TMPDIR/nonexistent"
	[ "$status" -eq 2 ]
	[[ "$output" == *"cannot open log '$BATS_TEST_TMPDIR/nonexistent': No such file or directory"* ]]
}

@test "a log of a newer format version is refused naming both versions" {
	gen 10
	"$TOOL" setbyte "$LOG" 16 9
	run "$BHRR" verify "$LOG"
	[ "$status" -eq 2 ]
	[ "$output" = "bhrr: $LOG: log format version 9, but this bhrr reads version 7 (upgrade bhrr)" ]
}

@test "events of unknown kinds are shown and counted, not fatal" {
	"$TOOL" unknown-kind "$LOG"
	run "$BHRR" verify "$LOG"
	[ "$status" -eq 0 ]
	[[ "$output" == *"1 events of kinds this bhrr does not know"* ]]
	run "$BHRR" dump --json "$LOG"
	[ "$status" -eq 0 ]
	grep -q '"kind":"unknown","code":31' <<<"$output"
}

@test "a write error mid-run gives one message and leaves a readable, incomplete log" {
	run "$TOOL" gen "$LOG" 20000 3 60000
	[ "$status" -eq 0 ]
	[ "$(grep -c 'cannot write log' <<<"$output")" -eq 1 ]
	[[ "$output" == *"File too large"* ]]
	[[ "$output" == *"gen: 20000 commands, incomplete"* ]]
	run "$BHRR" verify "$LOG"
	[ "$status" -eq 0 ]
	[[ "$output" == *"incomplete"* ]]
}

# No host timing in the verdicts: a kill at any moment leaves an intact prefix
# of consecutive events, and a kill after the flusher (never an explicit
# flush) has put events on disk loses none of them.
@test "a writer killed with SIGKILL at any moment leaves an intact prefix of consecutive events" {
	for delay in 0.05 0.2 0.6; do
		"$TOOL" stream "$LOG" &
		pid=$!
		sleep "$delay"
		kill -9 "$pid"
		wait "$pid" || true
		run "$BHRR" verify "$LOG"
		[ "$status" -eq 0 ]
		"$BHRR" dump --json "$LOG" | jq -r 'select(.kind=="warp") | .icount' >"$BATS_TEST_TMPDIR/ic"
		n=$(wc -l <"$BATS_TEST_TMPDIR/ic")
		echo "killed after ${delay} s: $n events"
		if [ "$n" -gt 0 ]; then
			seq 0 $((n - 1)) | diff -u - "$BATS_TEST_TMPDIR/ic"
		fi
		rm -f "$LOG"
	done
}

@test "a writer killed with SIGKILL loses nothing its flusher has written" {
	"$TOOL" stream "$LOG" 3000 >"$BATS_TEST_TMPDIR/out" &
	pid=$!
	until grep -q 'on disk: 3000' "$BATS_TEST_TMPDIR/out"; do
		kill -0 "$pid"
		sleep 0.05
	done
	kill -9 "$pid"
	wait "$pid" || true
	run "$BHRR" verify "$LOG"
	[ "$status" -eq 0 ]
	[[ "$output" == *"incomplete"* ]]
	"$BHRR" dump --json "$LOG" | jq -r 'select(.kind=="warp") | .icount' >"$BATS_TEST_TMPDIR/ic"
	seq 0 2999 | diff -u - "$BATS_TEST_TMPDIR/ic"
}

@test "hundreds of random corruptions never crash a reader" {
	gen 2000
	size=$("$TOOL" size "$LOG")
	for i in $(seq 1 150); do
		cp "$LOG" "$BATS_TEST_TMPDIR/c"
		off=$(( (i * 7919 + i * i * 104729) % size ))
		"$TOOL" flip "$BATS_TEST_TMPDIR/c" "$off"
		[ $((i % 3)) -ne 0 ] || "$TOOL" truncate "$BATS_TEST_TMPDIR/c" $(( (off * 3) % size ))
		for cmd in verify dump stat; do
			"$BHRR" $cmd "$BATS_TEST_TMPDIR/c" >/dev/null 2>&1 && st=0 || st=$?
			[ "$st" -le 2 ] || { echo "$cmd exited $st at offset $off"; false; }
		done
	done
}
