/*
 * gate_mon.h - monitor commands that change the guest: `cont` after -S,
 * `stop`, `system_reset`, `system_powerdown`, `sendkey`, `quit`, ...,
 * whichever front end sent them (a QMP socket, an HMP console, a mux with
 * the serial line, QMP's human-monitor-command).
 *
 * Caught where every command is executed: qmp_dispatch (each QMP request,
 * after capabilities negotiation) and handle_hmp_command (each HMP line).
 * Commands known to leave the guest alone (query-*, info, help, ...) pass.
 *
 * Exact record: a command that changes the guest first stops the vCPUs
 * where they are (pause_all_vcpus, at an instruction boundary: the icount
 * is exact there) unless the VM is stopped already (then the icount is
 * frozen), logs a `monitor` event with the command as a QMP request (an HMP
 * line as human-monitor-command) at that icount, and runs it.  The vCPUs
 * resume at the next turn of the main loop, after QEMU acted on what the
 * command requested (a reset or powerdown request is acted on between two
 * turns): so the guest sees its effect at that icount too.
 * Exact replay: live commands that change the guest are refused (said
 * once; QMP answers CommandNotFound for "bhrr-replay-ignores-NAME", HMP
 * prints why); queries and `quit` run live.  At a monitor action's icount
 * the executor stops the vCPU (vCPU thread), and the main loop runs the
 * recorded request through qmp_dispatch with no client; if the VM is
 * stopped (-S, or a recorded `stop`), the main loop runs it at once.  Two
 * commands run in one turn of the main loop only if they did in the record
 * (QEMU acts on a reset request between turns: `system_reset` then `cont`
 * typed in one line differ from the two sent one after the other).
 * Any other mode: the hooks pass everything through.
 *
 * Threads: commands run in the main thread with the BQL (an OOB command in
 * a monitor's own thread passes through untouched); the executor's part
 * runs in the vCPU thread with the BQL.  All state below is the BQL's.
 */
#ifndef BHRR_GATE_MON_H
#define BHRR_GATE_MON_H

#include <stddef.h>

#include "shim.h"

/* The hooks on qmp_dispatch, handle_hmp_command and main_loop_wait; @n set. */
const struct hook_spec *gate_mon_hooks(size_t *n);

/* Decide the mode once policies are chosen (session start, constructor). */
void gate_mon_start(int recording, int replaying);

/*
 * Replay, the executor at a monitor action's icount (vCPU thread, BQL):
 * stop this vCPU here and have the main loop run the command.
 */
void gate_mon_due(void);

/*
 * Whether bhrr keeps the vCPUs stopped for a monitor command (until the
 * next turn of the main loop): they are not idle in the guest's sense, so
 * QEMU must not warp the clock meanwhile.  BQL (or a hint without it).
 */
int gate_mon_holding(void);

/* Whether the main thread is running a recorded command now (BQL). */
int gate_mon_replaying(void);

/* Commands logged (record) or replayed, and live ones refused (replay); any thread. */
unsigned long long gate_mon_commands(void);
unsigned long long gate_mon_refused(void);

#endif
