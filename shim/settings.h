/*
 * settings.h - every BHRR_* variable the shim obeys, read once.
 *
 * The constructor calls settings_read() before anything else happens and
 * before QEMU starts a thread; from then on bhrr_cfg is read-only, so any
 * thread may read it without a lock.  Variables are read with
 * secure_getenv(): a set-id process ignores them.  A value that does not
 * parse refuses the whole mode up front, with a message naming the variable,
 * what it holds and what was expected.
 */
#ifndef BHRR_SETTINGS_H
#define BHRR_SETTINGS_H

#include <stddef.h>
#include <stdint.h>

enum bhrr_mode { BHRR_OFF = 0, BHRR_CHECK, BHRR_RECORD, BHRR_REPLAY };

struct bhrr_settings {
	enum bhrr_mode mode;      /* BHRR_MODE */
	const char *mode_name;    /* as given */
	const char *log_path;     /* BHRR_LOG; NULL: bhrr-PID.bhlog */
	int log_overwrite;        /* BHRR_LOG_OVERWRITE: replace an existing log (never a symlink) */
	const char *replay_path;  /* BHRR_REPLAY (replay) */
	int stop_on_diverge;      /* BHRR_ON_DIVERGE: stop (1, default) or continue (0) */
	long watchdog_ms;         /* BHRR_WATCHDOG_MS: 100 to 3600000, default 10000 */
	int chaos;                /* BHRR_CHAOS set: seeded chaos (record) */
	uint64_t chaos_seed;
	unsigned stacks;          /* BHRR_STACKS: 0 to 16 frames */
	int force;                /* BHRR_FORCE: an untested build, a log of another build */
	int check_all;            /* BHRR_CHECK_ALL (check) */
	int check_self;           /* BHRR_CHECK_SELF (check): the self-check only, no hooks */
	const char *verbose;      /* BHRR_VERBOSE, for vlog_init() */
	const char *debug_sock;   /* BHRR_DEBUG: a debugger's control socket (exact replay; debug.h) */
	/*
	 * Test-only knobs, never needed by a user; kept apart so that the gate
	 * and the policies name them as such.
	 */
	struct {
		unsigned delay_us;  /* BHRR_TEST_DELAY_US: completions reach QEMU this late */
		int park;           /* BHRR_TEST_PARK: replay parks once for every action */
		unsigned slow_io_us; /* BHRR_TEST_SLOW_IO_US: each thread-pool request's work takes this much longer */
		int no_io_land;     /* BHRR_TEST_NO_IO_LAND: record lands only by stopping the vCPU (make bench compares) */
		unsigned land_fallback_us; /* BHRR_TEST_LAND_FALLBACK_US: how long record waits for a device access (50) */
		const char *break_check; /* BHRR_TEST_BREAK_CHECK: the self-check to corrupt (selfcheck.h) */
	} test;
};

/* Written by settings_read() in the constructor only; read-only afterwards. */
extern struct bhrr_settings bhrr_cfg;

/*
 * Fill @s from the environment.  Returns 0, or -1 with @why naming the
 * variable at fault (the mode stays set, so the caller can say what is not
 * done).  Leaves s->mode BHRR_OFF when BHRR_MODE is unset or empty.
 */
int settings_read(struct bhrr_settings *s, char *why, size_t len);

/* "recording", "replaying", "checking": for "...; not recording". */
const char *settings_doing(const struct bhrr_settings *s);

#endif
