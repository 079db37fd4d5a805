/*
 * selfcheck.h - what bhrr needs from a QEMU build, found and verified on
 * the running binary: the self-check that decides whether a build bhrr
 * was not tested on may be recorded (issue 16).
 *
 * Each check either finds what it needs and proves it (a probe whose
 * answer must come back through QEMU's own code, or a cross-check), or
 * fails naming what it found and what it expected.  The tested builds
 * (symbols.h, qemu_known_builds) are listed, not required: a tested build
 * whose check fails falls back as before (ordering mode, lower-bound
 * icounts); an untested one is refused unless BHRR_FORCE.
 *
 * Constructor only (before QEMU's main and before any hook), like
 * discover.h, whose functions it calls.  The results are written once
 * there and read-only afterwards.
 */
#ifndef BHRR_SELFCHECK_H
#define BHRR_SELFCHECK_H

#include <stddef.h>

#include "shim.h"

enum sc_id {
	SC_VERSION,    /* the version banner: major.minor, which picks two hook signatures */
	SC_SYMBOLS,    /* every function and variable bhrr calls, hooks or reads */
	SC_BH_LAYOUT,  /* QEMUBH's ctx/cb/opaque/name offsets, found by one probe, verified by another */
	SC_ICOUNT,     /* timers_state's icount and bias, through QEMU's own icount getters */
	SC_CPU_FIELDS, /* CPUState's running and can_do_io, read from icount_get_raw's code */
	SC_HOOK_SITES, /* every hook target can be patched (a dry run of each) */
	SC_COUNT
};

struct sc_result {
	int ran;            /* 0: not reached (an earlier check it needs failed) */
	int ok;
	char found[320];    /* what was found (on success: what it proves) */
	char expected[200]; /* on failure: what was expected */
};

struct selfcheck {
	struct sc_result r[SC_COUNT];
	int failed; /* the first failed check, or -1 */
};

/* The name of check @id as printed and as BHRR_TEST_BREAK_CHECK takes it. */
const char *selfcheck_name(enum sc_id id);

/*
 * Run every check on shim_qemu, filling qrt (discover.h) on the way; the
 * hook sites are those of @hooks[0..n).  Returns the number of failures.
 * BHRR_TEST_BREAK_CHECK=NAME corrupts what that check discovered (tests
 * only) so that its verification must fail.
 */
int selfcheck_run(struct selfcheck *sc, const struct hook_spec *hooks, size_t n);

/*
 * One line per check to stderr (vlog_say), after @prefix: "self-check NAME
 * ok: ..." or "self-check NAME FAILED: found ...; expected ...".
 */
void selfcheck_report(const struct selfcheck *sc, const char *prefix);

/* "NAME: found ...; expected ..." of the first failure, into @out. */
void selfcheck_failure(const struct selfcheck *sc, char *out, size_t len);

#endif
