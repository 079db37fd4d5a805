/*
 * gate_clock.h - the host clocks the guest sees: the RTC's start, every
 * read of a host clock made for the guest, and the timers on a host clock
 * whose callbacks change the guest.
 *
 * The RTC's start.  QEMU reads the host's clock when it configures the RTC
 * (configure_rtc): with -rtc base=utc (the default) or base=localtime the
 * guest's wall clock starts at the host's time then.  bhrr hooks
 * configure_rtc and asks QEMU what the RTC reads right after it
 * (qemu_get_timedate): a host_clock event, what 0 ("YYYY-MM-DDTHH:MM:SS").
 * `bhrr replay` gives a replay -rtc base= that start when the command
 * line's base follows the host; a replay whose RTC starts elsewhere is
 * named as a divergence before the guest runs.
 *
 * Host clocks (exact record and replay).  With -rtc clock=host (QEMU's
 * default) or clock=rt the RTC reads the host's clock at every guest access
 * and its timers (update, periodic, alarm) fire at host time; any device
 * may do the same on QEMU_CLOCK_HOST (virtio-net's segment coalescing).
 * The *gated clocks* are QEMU_CLOCK_HOST, and QEMU_CLOCK_REALTIME when the
 * RTC runs on it (rtc_clock, read after configure_rtc).  Caught where
 * every such read and timer goes through:
 *  - qemu_clock_get_ns: a read of a gated clock made for the guest - in a
 *    vCPU thread during a device access or landed work (gate.h), while a
 *    gated timer's callback runs, in configure_rtc (both host clocks), in
 *    the machine's creation (from configure_rtc to the main loop's first
 *    turn) and in every qemu_system_reset - is logged as a host_clock event
 *    (what LOG_HC_REALTIME or LOG_HC_HOST, the value) at its icount; replay
 *    answers each such read with the next recorded one, and names a read
 *    at another icount, of another clock, or beyond the recorded ones as a
 *    divergence.  Reads are not actions: the guest's own accesses make
 *    them, in order.
 *  - timer_init_full: a timer on a gated clock in the main loop's timer
 *    list group, made after configure_rtc (a device's; on the realtime
 *    clock only those made in the machine's creation, so not the
 *    monitor's or the display's), gets bhrr's callback; a timer made where
 *    a gated one was (its memory freed and reused) ends that one's entry.
 *    Record: when it fires at host time, QEMU has taken it off
 *    its list; bhrr puts its deadline back (so the device, which asks
 *    timer_pending, still sees it pending, as a replay will), holds it
 *    (HELD_TIMER) and lands it like a BH: a host_timer event, then the
 *    device's callback, at an exact icount.  Replay: timer_mod_ns and
 *    timer_mod_anticipate_ns of such a timer only set its deadline (QEMU
 *    sees it pending, nothing fires it); the recorded host_timer action
 *    runs its callback at its icount.  When recorded control ends, the
 *    timers pending are armed for real (after a complete replay, once it
 *    has passed the recording's end: a virtual timer at that icount).
 * Once the log no longer answers, the guest's clock goes on from the last
 * recorded value (the host's plus a fixed offset; gated timers are armed
 * that much earlier or later), never from the host's now, hours or a
 * reboot away.  A log before format version 5 has nothing of this to
 * replay: its replay gates nothing.
 * QEMUTimer's expire_time (offset 0), cb and opaque are checked at start
 * on a probe timer; without that layout nothing is gated (said once).
 *
 * Threads: configure_rtc and qemu_system_reset run in the main thread with
 * the BQL (the vCPUs stopped); reads for the guest are made with the BQL
 * (a device access, landed work, a timer's callback, the machine's
 * creation); so every piece of state below is the BQL's, except the timer
 * table's length, published with release for timer_mod_ns of any thread.
 */
#ifndef BHRR_GATE_CLOCK_H
#define BHRR_GATE_CLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "held.h"
#include "shim.h"

/* The hooks on configure_rtc, qemu_clock_get_ns, the timer functions and qemu_system_reset; @n set. */
const struct hook_spec *gate_clock_hooks(size_t *n);

/*
 * Decide the mode once policies are chosen (session start, constructor):
 * @recording/@replaying the RTC's start; @gate_record/@gate_replay (exact
 * record, exact replay) the host clocks too.
 */
void gate_clock_start(int recording, int replaying, int gate_record, int gate_replay);

/*
 * After the hooks are installed (constructor): bhrr's own calls of the
 * clock and timer functions go to QEMU's, past the hooks; the timer layout
 * is checked.
 */
void gate_clock_bind(void);

/* A turn of the main loop (gate_mon's main_loop_wait hook; main thread, BQL). */
void gate_clock_turn(void);

/* Land held timer @h (vCPU thread, BQL): log it at @icount and run its callback. */
void gate_clock_run_held(struct held *h, unsigned how, int64_t icount, uint64_t flags);

/* Replay: run timer @timer's callback now, logged; 0, or -1 with @why.  vCPU thread, BQL. */
int gate_clock_inject_timer(uint64_t timer, unsigned how, int64_t icount, uint64_t flags,
			    char *why, size_t whylen);

/* Replay: recorded control ended (replay_free; BQL): pending timers are armed for real. */
void gate_clock_free(void);

/* Host clock reads logged or answered, and timers landed; any thread. */
unsigned long long gate_clock_reads(void);
unsigned long long gate_clock_timers(void);

#endif
