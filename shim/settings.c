/*
 * settings.c - BHRR_* read once, validated (see settings.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "settings.h"

struct bhrr_settings bhrr_cfg;

#define WATCHDOG_MS_DEFAULT 10000
#define STACKS_MAX 16

static const char *
env(const char *name)
{
	const char *v = secure_getenv(name);

	return v != NULL && v[0] != 0 ? v : NULL;
}

static int
flag(const char *name)
{
	const char *v = env(name);

	return v != NULL && strcmp(v, "0") != 0;
}

/* A whole decimal (or 0x) number in [lo, hi]; 0, or -1 with @why. */
static int
number(const char *name, long long lo, long long hi, long long *out, char *why, size_t len)
{
	const char *v = env(name);
	char *end;

	if (v == NULL)
		return 0;
	errno = 0;
	long long n = strtoll(v, &end, 0);

	if (errno || *end || n < lo || n > hi) {
		snprintf(why, len, "%s=%s: expected %lld to %lld", name, v, lo, hi);
		return -1;
	}
	*out = n;
	return 0;
}

const char *
settings_doing(const struct bhrr_settings *s)
{
	return s->mode == BHRR_REPLAY ? "replaying" : s->mode == BHRR_CHECK ? "checking" : "recording";
}

int
settings_read(struct bhrr_settings *s, char *why, size_t len)
{
	const char *mode = env("BHRR_MODE"), *pol, *chaos;
	long long n;

	memset(s, 0, sizeof(*s));
	s->watchdog_ms = WATCHDOG_MS_DEFAULT;
	s->stop_on_diverge = 1;
	if (mode == NULL)
		return 0;
	s->mode_name = mode;
	s->verbose = env("BHRR_VERBOSE");
	if (strcmp(mode, "check") == 0)
		s->mode = BHRR_CHECK;
	else if (strcmp(mode, "record") == 0)
		s->mode = BHRR_RECORD;
	else if (strcmp(mode, "replay") == 0)
		s->mode = BHRR_REPLAY;
	else {
		snprintf(why, len, "BHRR_MODE='%s' is not a mode this libbhrr.so knows "
			 "(known: check, record, replay)", mode);
		return -1;
	}
	s->check_all = flag("BHRR_CHECK_ALL");
	s->check_self = flag("BHRR_CHECK_SELF");
	s->force = flag("BHRR_FORCE");
	s->log_path = env("BHRR_LOG");
	s->log_overwrite = flag("BHRR_LOG_OVERWRITE");
	s->replay_path = env("BHRR_REPLAY");
	s->debug_sock = env("BHRR_DEBUG");
	if (s->debug_sock != NULL && s->mode != BHRR_REPLAY) {
		snprintf(why, len, "BHRR_DEBUG needs BHRR_MODE=replay");
		return -1;
	}
	if (s->mode == BHRR_REPLAY && s->replay_path == NULL) {
		snprintf(why, len, "BHRR_MODE=replay needs BHRR_REPLAY=LOG");
		return -1;
	}
	pol = env("BHRR_ON_DIVERGE");
	if (pol != NULL && strcmp(pol, "stop") != 0) {
		if (strcmp(pol, "continue") != 0) {
			snprintf(why, len, "BHRR_ON_DIVERGE=%s: expected 'stop' or 'continue'", pol);
			return -1;
		}
		s->stop_on_diverge = 0;
	}
	n = s->watchdog_ms;
	if (number("BHRR_WATCHDOG_MS", 100, 3600000, &n, why, len) < 0)
		return -1;
	s->watchdog_ms = (long)n;
	n = 0;
	if (number("BHRR_STACKS", 0, STACKS_MAX, &n, why, len) < 0)
		return -1;
	s->stacks = (unsigned)n;
	chaos = env("BHRR_CHAOS");
	if (chaos != NULL && s->mode == BHRR_RECORD) {
		char *end;

		errno = 0;
		s->chaos_seed = strtoull(chaos, &end, 0);
		if (errno || *end) {
			snprintf(why, len, "BHRR_CHAOS=%s: expected a number (the seed)", chaos);
			return -1;
		}
		s->chaos = 1;
	}
	n = 0;
	if (number("BHRR_TEST_DELAY_US", 0, 1000000, &n, why, len) < 0)
		return -1;
	s->test.delay_us = (unsigned)n;
	s->test.park = flag("BHRR_TEST_PARK");
	n = 0;
	if (number("BHRR_TEST_SLOW_IO_US", 0, 1000000, &n, why, len) < 0)
		return -1;
	s->test.slow_io_us = (unsigned)n;
	s->test.no_io_land = flag("BHRR_TEST_NO_IO_LAND");
	n = 300;
	if (number("BHRR_TEST_LAND_FALLBACK_US", 1, 10000000, &n, why, len) < 0)
		return -1;
	s->test.land_fallback_us = (unsigned)n;
	s->test.break_check = env("BHRR_TEST_BREAK_CHECK");
	if (s->test.break_check != NULL && strcmp(s->test.break_check, "bh-layout") != 0) {
		snprintf(why, len, "BHRR_TEST_BREAK_CHECK=%s: the only check it can break is 'bh-layout'",
			 s->test.break_check);
		return -1;
	}
	return 0;
}
