#!/usr/bin/env bats
# The flake workflow on the real QEMU 7.2 with the bundled guest: hunt a
# flake, replay it, diff two runs, bisect the deciding event, provoke a rare
# race with chaos, export a trace.

load helper

setup() {
	# shellcheck source=tests/guest/guest.sh
	. "$BHRR_SRCDIR/tests/guest/guest.sh"
	use_qemu 7.2
	cd "$BATS_TEST_TMPDIR"
	BEFORE="cp $GUEST_DIR/disk.img disk0.img"
}

# config_argv CONFIG: QEMU_ARGV for a virtio configuration, its disk in {rundir}
config_argv() {
	guest_argv "$1" "$BATS_TEST_TMPDIR"
	QEMU_ARGV=("$QEMU_BIN")
	local a
	for a in "${GUEST_ARGV[@]}"; do
		QEMU_ARGV+=("${a//$BATS_TEST_TMPDIR/\{rundir\}}")
	done
}

# hunt [CONFIG [RUNS]]: a failing log in fail.bhlog (and the last passing one)
hunt() {
	config_argv "${1:-flaky}"
	run "$BHRR" flake -n "${2:-20}" --expect-status "$GUEST_PASS" --before "$BEFORE" \
		--json sum.json --junit junit.xml -o fail.bhlog -- "${QEMU_ARGV[@]}"
	echo "$output"
	[ "$status" -eq 0 ]
	[ -s fail.bhlog ]
	FAIL_RUN=$(sed -n 's/^failing run \([0-9]*\):.*/\1/p' <<<"$output")
	[ -n "$FAIL_RUN" ]
}

@test "bhrr flake catches the flaky guest failing within 20 runs; the log replays failing 5/5" {
	hunt
	[[ "$output" == *"failure rate"*"95% CI"* ]]
	jq -e '.bhrr_flake and .failures >= 1 and .failing_log == "fail.bhlog"' sum.json
	grep -q '<testsuite name="bhrr flake"' junit.xml
	grep -q '<failure message="exit status 37">' junit.xml
	for _ in 1 2 3 4 5; do
		(cd "fail.bhlog.runs/run-$FAIL_RUN" && eval "$BEFORE")
		st=0
		"$BHRR" replay fail.bhlog -o rep.bhlog >rep.out 2>rep.err || st=$?
		echo "replay: status $st"
		[ "$st" -eq "$GUEST_FLAKY" ]
		cmp rep.out "fail.bhlog.runs/run-$FAIL_RUN/stdout"
	done
}

@test "bhrr diff names the first divergent event of a passing and a failing run; two replays are identical" {
	config_argv flaky
	run "$BHRR" flake -n 40 --keep-going --expect-status "$GUEST_PASS" --before "$BEFORE" \
		-o fail.bhlog -- "${QEMU_ARGV[@]}"
	[ -s fail.bhlog ] && [ -s fail.pass.bhlog ]
	run "$BHRR" diff fail.bhlog fail.pass.bhlog
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"first divergence at action #"* ]]
	[[ "$output" == *"A fail.bhlog: event #"* ]]
	[[ "$output" == *"B fail.pass.bhlog: event #"* ]]
	"$BHRR" diff --json fail.bhlog fail.pass.bhlog | jq -e '.identical == false and .first.index >= 0'
	# two replays of one log
	fr=$(ls -d fail.bhlog.runs/run-* | head -1)
	for k in 1 2; do
		(cd "$fr" && eval "$BEFORE")
		"$BHRR" replay "$fr/run.bhlog" -o "r$k.bhlog" >/dev/null 2>&1 || true
	done
	run "$BHRR" diff r1.bhlog r2.bhlog
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == "identical: "* ]]
	# and each replay is identical to the recording it replays
	run "$BHRR" diff "$fr/run.bhlog" r1.bhlog
	[ "$status" -eq 0 ]
}

# pick_race: RACE_K, the command that overtakes the one before it closest to
# 25% of 40 free runs here and now (which pairs race, and how often, moves
# with host load; any pair that races at all will do if none is near 25%)
pick_race() {
	config_argv race
	QEMU_ARGV=("${QEMU_ARGV[@]/ race=7/}")
	"$BHRR" flake -n 40 -j 2 --keep-going --expect-status "$GUEST_PASS" --before "$BEFORE" \
		-o free.bhlog -- "${QEMU_ARGV[@]}" >/dev/null 2>&1 || true
	RACE_K=$(for f in free.bhlog.runs/*/stdout; do grep -o 'cmd=[0-9]*' "$f" | cut -d= -f2 | tr '\n' ' '; echo; done |
		awk 'NF >= 32 { runs++; for (i = 1; i <= NF; i++) pos[$i] = i
			for (k = 1; k < NF; k++) if (pos[k] < pos[k - 1]) n[k]++ }
		END { best = 0; any = 0
			for (k = 1; k < 32; k++) { r = n[k] / runs; d = (r - 0.25) ^ 2
				if (r > 0 && r < 1 && (any == 0 || d < (n[any] / runs - 0.25) ^ 2)) any = k
				if (r >= 0.05 && r <= 0.7 && (best == 0 || d < (n[best] / runs - 0.25) ^ 2)) best = k }
			printf "rates:"; for (k = 1; k < 32; k++) if (n[k]) printf " %d:%d/%d", k, n[k], runs
			print ""; print (best ? best : any) }')
	echo "$RACE_K"
	RACE_K=$(tail -n 1 <<<"$RACE_K")
	echo "race on command $RACE_K"
	[ "$RACE_K" -gt 0 ]
}

@test "bhrr bisect finds the deciding event; its replay command fails >= 9 of 10 runs" {
	pick_race
	config_argv race
	QEMU_ARGV=("${QEMU_ARGV[@]/race=7/race=$RACE_K}")
	run "$BHRR" flake -n 200 --expect-status "$GUEST_PASS" --before "$BEFORE" -o fail.bhlog \
		-- "${QEMU_ARGV[@]}"
	[ "$status" -eq 0 ]
	run "$BHRR" bisect fail.bhlog --runs 10 --threshold 1.0 --expect-status "$GUEST_PASS" \
		--before "$BEFORE" -- "${QEMU_ARGV[@]}"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"the deciding event is action "*" event #"* ]]
	with=$(sed -n 's/^  with it replayed: *\([0-9]*\)\/10.*/\1/p' <<<"$output")
	without=$(sed -n 's/^  without it: *\([0-9]*\)\/10.*/\1/p' <<<"$output")
	[ "$with" -eq 10 ]
	# less often without the deciding event (how much less depends on the
	# race and the load: 0-4/10 in most runs, 9/10 once; doc/flake.md)
	[ "$without" -lt "$with" ]
	repro=$(sed -n 's/^reproduce: //p' <<<"$output")
	fails=0
	for _ in $(seq 1 10); do
		st=0
		eval "$repro" >/dev/null 2>&1 || st=$?
		[ "$st" -ne "$GUEST_PASS" ] && fails=$((fails + 1))
	done
	echo "the printed command failed $fails/10 (bisect: $with/10 with the event, $without/10 without)"
	[ "$fails" -ge 9 ]
}

@test "chaos raises the rare race's failure rate (the 5x goal reported, 2x asserted), and a chaos run replays exactly" {
	config_argv rare
	run "$BHRR" flake -n 60 -j 2 --keep-going --expect-status "$GUEST_PASS" --before "$BEFORE" \
		--json free.json -o free.bhlog -- "${QEMU_ARGV[@]}"
	run "$BHRR" flake -n 60 -j 2 --keep-going --chaos=1 --expect-status "$GUEST_PASS" \
		--before "$BEFORE" --json chaos.json -o chaos.bhlog -- "${QEMU_ARGV[@]}"
	free=$(jq .failures free.json)
	chaos=$(jq .failures chaos.json)
	echo "rare race over 60 runs each: $free failures free, $chaos with --chaos (goal: 5x)"
	# a statistical goal is measured (doc/flake.md: 0/100 vs 21/100), not made a
	# gate: under CI's load the free rate rises (3/60 once); chaos must still
	# clearly raise it
	[ "$chaos" -ge 5 ]
	[ "$chaos" -ge $((2 * (free > 0 ? free : 1))) ]
	# the decisions are in the log: plain replay repeats a chaos run
	d=chaos.bhlog.runs/run-1
	"$BHRR" dump --json "$d/run.bhlog" | jq -s -e 'map(select(.kind == "chaos")) | length > 0'
	for _ in 1 2 3; do
		(cd "$d" && eval "$BEFORE")
		"$BHRR" replay "$d/run.bhlog" -o rep.bhlog >rep.out 2>rep.err || true
		cmp rep.out "$d/stdout"
		! grep -q divergence rep.err || false
	done
}

@test "bhrr flake --shard splits a hunt and --merge adds the summaries up" {
	config_argv flaky
	for s in 1 2; do
		"$BHRR" flake -n 6 --keep-going --shard "$s/2" --expect-status "$GUEST_PASS" \
			--before "$BEFORE" --json "s$s.json" -o "s$s.bhlog" -- "${QEMU_ARGV[@]}" || true
		[ "$(jq .runs "s$s.json")" -eq 3 ]
	done
	run "$BHRR" flake --merge s1.json s2.json --json all.json
	echo "$output"
	[[ "$output" == *"merged: 6 runs"* ]]
	[ "$(jq .runs all.json)" -eq 6 ]
	[ "$(jq .failures all.json)" -eq $(( $(jq .failures s1.json) + $(jq .failures s2.json) )) ]
	run "$BHRR" flake --merge /etc/hostname
	[ "$status" -ne 0 ]
	[[ "$output" == *"is not a summary written by 'bhrr flake --json'"* ]]
}

@test "bhrr export writes Chrome trace JSON whose event counts match bhrr stat" {
	config_argv virtio
	guest_argv virtio "$BATS_TEST_TMPDIR"
	"$BHRR" record -o a.bhlog -- "$QEMU_BIN" "${GUEST_ARGV[@]}" >/dev/null 2>&1 || true
	guest_argv virtio "$BATS_TEST_TMPDIR"
	"$BHRR" record -o b.bhlog -- "$QEMU_BIN" "${GUEST_ARGV[@]}" >/dev/null 2>&1 || true
	"$BHRR" export --format=chrome a.bhlog -o a.json
	jq -e '.traceEvents | length > 0' a.json
	for kind in bh_schedule bh_run io_submit io_complete; do
		want=$("$BHRR" stat --json a.bhlog | jq ".kinds.$kind.count // 0")
		got=$(jq "[.traceEvents[] | select(.cat == \"$kind\" and (.ph == \"X\" or .ph == \"i\"))] | length" a.json)
		echo "$kind: stat $want, trace $got"
		[ "$got" -eq "$want" ]
	done
	# two runs side by side, the first divergence marked in each
	"$BHRR" export --format=chrome a.bhlog b.bhlog -o ab.json
	[ "$(jq '[.traceEvents[] | select(.ph == "M" and .name == "process_name")] | length' ab.json)" -eq 2 ]
	[ "$(jq '[.traceEvents[] | select(.name == "first divergence between the runs")] | length' ab.json)" -eq 2 ]
	run "$BHRR" export --format=svg a.bhlog -o x.json
	[ "$status" -eq 2 ]
}
