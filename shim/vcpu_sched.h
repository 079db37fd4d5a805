/*
 * vcpu_sched.h - the vCPUs' turns under -smp N with -icount: recorded, and made
 * again in a replay.
 *
 * Overview.  With -icount, QEMU runs every vCPU in one thread, round robin
 * (accel/tcg/tcg-accel-ops-rr.c).  Each round starts with an "outer
 * iteration" (icount_handle_deadline: due timers run, bhrr's executor
 * among them), then gives each vCPU, in index order, one turn of at most a
 * budget of instructions (icount_prepare_for_run .. icount_process_data).
 * A turn ends at its budget, at a halt, or when something sets the vCPU's
 * exit request - and that last is host timing: the main loop kicks the
 * vCPU thread whenever it arms a virtual timer or queues work for a vCPU.
 * A kick also ends the round early, and the next budget is computed anew
 * from the timers then pending.  So where one vCPU's turn ends and the
 * next one's begins - the interleaving a racy guest sees - is host timing.
 *
 * Record logs each turn as a slice event: the vCPU, how many instructions
 * it ran, and the global icount at its end; a vCPU's turns in a row as one,
 * unless the later took an interrupt (vcpu_sched.c says why that is the
 * same to a replay, and why the exception).  A turn that ran nothing and
 * delivered nothing (a halted vCPU passed over) is not logged: how many of
 * those a halted guest gets is host timing too, and they change nothing.
 * The turn's order is QEMU's: the ring of vCPUs in index order, always.
 *
 * Replay makes the same turns: at each turn QEMU offers, the vCPU due in
 * the log gets exactly the instructions its turn ran as its budget; any
 * other vCPU gets none, and the hardware interrupts it would take wait for
 * its own logged turn.  A turn a kick cut short in the replay is finished
 * at the vCPU's next turn.  Every action is landed after as many turns as
 * the record had logged before it: after that turn QEMU is made to end its
 * round (the next vCPU's exit request), and the outer iteration runs it.
 *
 * One place a turn can end that a budget cannot reproduce: a kick taken
 * just after the vCPU entered an exception handler for a faulting
 * instruction (which counts none).  Record flags such a turn; replay gives
 * it one instruction more and ends it from the exception's delivery.
 *
 * Needs QEMU 8.1's per-vCPU budget (icount_prepare_for_run with a budget)
 * and the target's exported interrupt entry points (x86; 10.0's arm ones
 * are static); without them exact mode refuses -smp above 1 (sched_check
 * says why).
 *
 * Threads: sched_hooks and sched_start in the constructor; the hooks run
 * in the vCPU thread, which owns all of vcpu_sched.c's state.
 */
#ifndef BHRR_VCPU_SCHED_H
#define BHRR_VCPU_SCHED_H

#include <stddef.h>
#include <stdint.h>

#include "shim.h"

/* -smp's vCPU count on QEMU's command line (1 when absent); constructor. */
int sched_cpus_asked(void);
/*
 * The hooks -smp above 1 needs (none otherwise, or when this QEMU lacks
 * them: sched_check says so).  Constructor.
 */
const struct hook_spec *sched_hooks(size_t *n);
/*
 * Whether this run can be exact with the vCPUs the command line asks for:
 * 0, or -1 with @why.  Constructor, after sched_hooks.
 */
int sched_check(char *why, size_t len);
/* Start logging turns (@record) or making the logged ones (@replay).  Constructor. */
void sched_start(int record, int replay);
/* Whether turns are logged or made: -smp above 1 in exact mode.  Any thread. */
int sched_active(void);
/* Whether the replay is making the logged turns now.  vCPU thread. */
int sched_replaying(void);
/* Whether the replay has logged turns still to make (the end of the log waits for them).  Any thread. */
int sched_turns_left(void);
/* The logged turns made so far (replay).  vCPU thread. */
uint64_t sched_done(void);
/*
 * Log the last turn now, before an event that a replay places after it
 * (emit.c, for every action); any thread.
 */
void sched_flush(void);
/*
 * At exit: log the turn QEMU exits in (isa-debug-exit, a guest's exit
 * from its vCPU), and the last one; the icount it ended at when it was
 * this thread's, else -1.  Any thread.
 */
int64_t sched_finish(void);
/* The VM runs: say once if it has several vCPUs that -smp did not announce.  Main thread. */
void sched_vm_running(void);

#endif
