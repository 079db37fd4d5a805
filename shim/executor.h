/*
 * executor.h - the executor: a QEMU_CLOCK_VIRTUAL timer with
 * QEMU_TIMER_ATTR_EXTERNAL on the main loop's timer list, which QEMU runs
 * in the vCPU thread, with the BQL, at the top of the round-robin loop
 * where no TB runs - so the icount is exact there, and a held item run
 * from it reaches the guest at an instruction boundary that a replay can
 * stop at too.
 *
 * When it fires: first the guest's own timers due at the same virtual
 * time (one rule for record and replay), then the landing rule when the
 * policy asks for it (record: run held work only where a replay could
 * also stop), then the policy's execute().
 *
 * Threads: executor_lazy_init from the main thread with the BQL; arming
 * from any thread with the BQL; the rest in the vCPU thread with the BQL.
 */
#ifndef BHRR_EXECUTOR_H
#define BHRR_EXECUTOR_H

#include <stdint.h>

/*
 * Create the executor's timer once the main loop exists (and the policy's
 * own timers, through its start()).  Main thread, BQL; idempotent.
 */
void executor_lazy_init(void);
/*
 * Due as soon as the vCPU can stop where a replay can: a work item on the
 * vCPU (one queued at a time) arms the executor one instruction on, or
 * where it is if it halted.  From the vCPU thread itself, due now (the
 * landing rule then moves it on).  BQL.
 */
void executor_arm_now(void);
/*
 * Record with landing at I/O accesses (io_land.h): leave what arrived for
 * the guest's next device access, which lands it without stopping the
 * vCPU; only if none comes within 300 us of host time (the test-only
 * BHRR_TEST_LAND_FALLBACK_US), or the vCPU is idle, executor_arm_now.
 * Main thread, BQL.
 */
void executor_arm_soon(void);
/*
 * Land everything held at the vCPU's I/O access at exact icount @ic, as
 * LOG_F_AT_IO events.  vCPU thread, BQL.
 */
void executor_land_io(int64_t ic);
/* Landings at I/O accesses and fallback kicks so far; any thread. */
unsigned long long executor_io_landings(void);
unsigned long long executor_fallbacks(void);
/*
 * Due at icount @ic, placed by the vCPU's budget; the landing target of
 * record's rule.  vCPU thread (the caller knows the icount exactly).
 */
void executor_arm_at(int64_t ic);
/*
 * Due at icount @ic, for a replay's next action; BQL, any thread.  No-op
 * while arming, and when the timer is pending for the same deadline unless
 * @kick: a vCPU halted exactly at its deadline needs the re-arm to wake.
 */
void executor_arm_for(int64_t ic, int kick);
/* Whether the executor is pending for virtual time @ns; BQL. */
int executor_pending_at(int64_t ns);
/* Whether this thread is inside executor_arm_for (QEMU 7.2's timer_mod_ns can warp). */
int executor_arming(void);
/* Run every held item in order, with @how (exact only in the vCPU thread); BQL. */
void executor_drain(unsigned how);
/* Executor firings moved one instruction on by the landing rule; vCPU thread. */
unsigned long long executor_landings(void);

#endif
