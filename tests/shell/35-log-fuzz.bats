#!/usr/bin/env bats
# The log reader under libFuzzer (with ASan and UBSan) for a bounded time,
# seeded with the checked-in corpus (tests/fuzz/corpus/, from gen_corpus.c)
# and a fresh generated log.  BHRR_FUZZ_SECONDS sets the time (default 60).

load helper

@test "the log reader survives libFuzzer for BHRR_FUZZ_SECONDS" {
	# libFuzzer adds to its first corpus directory: work on a copy
	corpus="$BATS_TEST_TMPDIR/corpus"
	mkdir -p "$corpus"
	cp "$BHRR_SRCDIR"/tests/fuzz/corpus/*.bhlog "$corpus"/
	[ "$(ls "$corpus" | wc -l)" -ge 5 ]
	"$BHRR_BUILDDIR/tests/helper/bhrr-test-tool" gen "$corpus/gen.bhlog" 40 5 >/dev/null
	run "$BHRR_BUILDDIR/tests/fuzz/fuzz_log_reader" -max_total_time="${BHRR_FUZZ_SECONDS:-60}" \
		-max_len=100000 -rss_limit_mb=2048 -print_final_stats=1 "$corpus"
	echo "$output" | tail -n 15
	[ "$status" -eq 0 ]
	grep -q '^stat::number_of_executed_units: [1-9]' <<<"$output"
}
