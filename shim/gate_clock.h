/*
 * gate_clock.h - the host clock the guest sees: the RTC's start.
 *
 * QEMU reads the host's clock once for the guest's RTC, when it configures
 * it (configure_rtc): with -rtc base=utc (the default) or base=localtime,
 * the guest's wall clock starts at the host's time then; with clock=vm it
 * advances with the guest's virtual time from there, so that start is the
 * only host time a guest reads.  bhrr hooks configure_rtc and asks QEMU
 * what the RTC reads right after it (qemu_get_timedate, virtual time 0):
 *
 * Record (any mode): logs it as a host_clock event (what 0, the RTC's start
 * as "YYYY-MM-DDTHH:MM:SS").  `bhrr replay` gives a replay -rtc base= that
 * start when the command line's base follows the host.
 * Replay: compares the replay's RTC start with the recorded one and names
 * the difference as a divergence before the guest runs (a replay of the
 * shim alone, or `-- QEMU ARGS` with another base).
 *
 * Threads: configure_rtc runs once, in QEMU's initialisation, in the main
 * thread before any vCPU exists.
 */
#ifndef BHRR_GATE_CLOCK_H
#define BHRR_GATE_CLOCK_H

#include <stddef.h>

#include "shim.h"

/* The hook on configure_rtc; @n set. */
const struct hook_spec *gate_clock_hooks(size_t *n);

/* Decide the mode once policies are chosen (session start, constructor). */
void gate_clock_start(int recording, int replaying);

#endif
