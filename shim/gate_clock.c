/*
 * gate_clock.c - the RTC's start, recorded and checked (see gate_clock.h).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "emit.h"
#include "gate_clock.h"
#include "replay.h"
#include "symbols.h"
#include "vlog.h"

static enum { CLK_OFF, CLK_RECORD, CLK_REPLAY } mode; /* set once, before main() */
static void (*real_configure_rtc)(void *opts);

void
gate_clock_start(int recording, int replaying)
{
	mode = recording ? CLK_RECORD : replaying ? CLK_REPLAY : CLK_OFF;
}

/* What the guest's RTC reads now, "YYYY-MM-DDTHH:MM:SS" in @buf; 0, or -1. */
static int
rtc_now(char *buf, size_t len)
{
	struct tm tm;
	/* the offset is an int in 7.2, a time_t later: a long fills the register either way */
	void (*get)(struct tm *, long) = (void (*)(struct tm *, long))
		shim_qemu.sym[QS_QEMU_GET_TIMEDATE].addr;

	memset(&tm, 0, sizeof(tm));
	get(&tm, 0L);
	return strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm) > 0 ? 0 : -1;
}

static void
hk_configure_rtc(void *opts)
{
	char now[32];

	real_configure_rtc(opts);
	if (mode == CLK_OFF || rtc_now(now, sizeof(now)) < 0)
		return;
	if (mode == CLK_RECORD) {
		emit_host_clock(0, now);
		vlog("clock: the guest's RTC starts at %s", now);
		return;
	}
	emit_host_clock(0, now); /* a replay's log keeps it too: it can be replayed in turn */
	if (replay.rtc_start[0] && strcmp(now, replay.rtc_start) != 0)
		replay_diverge_at(replay.rtc_seq, "the RTC's start",
				  "the guest's RTC starts at %s, the recording's at %s (an -rtc base that "
				  "follows the host: bhrr replay gives it base=%s)", now, replay.rtc_start,
				  replay.rtc_start);
}

static const struct hook_spec hooks[] = {
	{ QS_CONFIGURE_RTC, (void *)hk_configure_rtc, (void **)&real_configure_rtc },
};

const struct hook_spec *
gate_clock_hooks(size_t *n)
{
	*n = sizeof(hooks) / sizeof(hooks[0]);
	return hooks;
}
