/*
 * warp.h - the hook on QEMU's clock warp (icount_start_warp_timer).
 *
 * QEMU warps the virtual clock from the main loop as soon as every vCPU
 * looks idle.  But a vCPU that has just halted accounts its last
 * instructions to qemu_icount only after it leaves cpu_exec, without the
 * BQL: a warp in that window reads a stale icount and jumps up to a TB's
 * worth of nanoseconds too far, differently each run.  So outside the vCPU
 * thread the warp is handed to the vCPU (async_run_on_cpu), which does it
 * between TBs, where the icount is exact - the same place in record and
 * in replay - through the policy's warp().
 *
 * Threads: the hook runs in the main loop (BQL) or the vCPU thread.
 */
#ifndef BHRR_WARP_H
#define BHRR_WARP_H

#include <stdint.h>

#include "shim.h"

const struct hook_spec *warp_hook(void);
/* QEMU's own warp, now; returns how far the bias moved (0: none).  vCPU thread. */
int64_t warp_apply(void);
/* Warp as a record does: apply, and log it if the clock moved.  vCPU thread. */
void warp_record(void);
/* Counters for the exit summary. */
unsigned long long warp_count(void);
unsigned long long warp_handoffs(void);

#endif
