/*
 * debug.h - a replay held for a debugger (bhrr replay --gdb, doc/debug.md).
 *
 * With BHRR_DEBUG=SOCKET, an exact replay connects to the unix socket
 * SOCKET, where bhrr's gdb endpoint (tools/cmd_debug.c) listens, and takes
 * its orders there, one line each: where the run is ("when"), run on
 * ("cont"), run to an icount ("cont-to N"), one instruction ("step"), stop
 * soon ("pause").  It answers each with one line ("ok ..." or "err ..."),
 * and says "stop REASON ICOUNT" when the vCPU stops: "start" (icount 0,
 * before the first instruction), "target" (the icount asked for), "trap"
 * (a breakpoint, a watchpoint or a step; QEMU's gdbstub knows which) or
 * "pause".
 *
 * The VM never leaves the running state for the debugger: a QEMU vm_stop
 * drains the block layer and notifies every device, which would wait for
 * completions the replay keeps for later icounts and change what the
 * guest sees.  Instead the vCPU alone is stopped - cpu_stop_current() where
 * it stands, between two instructions - as bhrr stops it for a recorded
 * monitor command, and while it is held no clock warps and no idle check
 * runs.  A guest breakpoint or step ends in qemu_system_debug_request(),
 * which bhrr hooks: the vCPU stops there without the VM stopping.
 * Registers, memory, breakpoints and watchpoints go through QEMU's own
 * gdbstub (-gdb), which reads a stopped vCPU whatever the run state.
 *
 * A stop at an icount is a QEMU_CLOCK_VIRTUAL timer run between TBs, like
 * the executor's, and it runs after everything else due at that virtual
 * time: the guest's timers and the events landed there.  So at a stop at
 * icount N every event recorded at N has run, except one landed at an I/O
 * access (it runs inside the instruction after N).
 *
 * The first line is "hello PID" (with " nowatch" if watchpoints cannot be
 * reported, see find_watchpoint_hit), or "refused" when the session did not
 * start (the reason went to QEMU's stderr): the endpoint then ends QEMU.
 * When the endpoint goes away, every gdb breakpoint and watchpoint is
 * removed and single-stepping is off, and the replay runs on.
 *
 * Threads: the orders are read by the main loop (a QEMU fd handler), with
 * the BQL; stops happen in the vCPU thread, with the BQL.  The socket is
 * written under the BQL only.
 */
#ifndef BHRR_DEBUG_H
#define BHRR_DEBUG_H

#include <stddef.h>

#include "shim.h"

/* Connect to BHRR_DEBUG's socket; constructor.  0, or -1 with @why. */
int debug_start(char *why, size_t len);
/* The session refused to start: tell the endpoint, and leave.  Constructor. */
void debug_refused(void);
/* Whether a debugger drives this run (BHRR_DEBUG, connected); any thread. */
int debug_active(void);
/* The VM runs (its first start): take orders, hold at icount 0.  Main thread, BQL. */
void debug_vm_running(void);
/* Whether bhrr holds the vCPU stopped for the debugger: no warp, no idle check.  BQL. */
int debug_holding(void);
/*
 * Whether the VM runs for bhrr's purposes: running, or only marked paused
 * by QEMU's gdbstub while bhrr holds the vCPU (the gate keeps holding
 * what arrives).  BQL.
 */
int debug_vm_running_or_held(void);
/* The hooks on qemu_system_debug_request and vm_stop; @n set. */
const struct hook_spec *debug_hooks(size_t *n);

#endif
