/*
 * io_land.h - landing held work at the guest's own I/O accesses.
 *
 * A guest waiting for a device mostly polls it: every status read is an
 * I/O access of the vCPU thread, at an exact icount (the accessing
 * instruction ends its TB, can_do_io is set), with the BQL held for the
 * device.  Record lands what is held there, before the access, instead of
 * kicking the vCPU out of its TB and stopping it one instruction on (two
 * exits and a main-loop wake-up per completion); replay runs the same
 * actions at the same access.  Such events carry LOG_F_AT_IO: "during the
 * first I/O access of the instruction that brought the icount to N, before
 * the device saw it".  Later accesses of the same instruction never land,
 * so the place is unambiguous.
 *
 * Hooks memory_region_dispatch_read/_write (every MMIO and port access of
 * TCG goes through them).  Active only in exact mode, with the BQL check
 * and CPUState's fields known; otherwise the hooks only forward.
 *
 * Threads: the hooks run in any thread that accesses a device; only the
 * vCPU thread lands, and the tracking of its accesses is its own.
 */
#ifndef BHRR_IO_LAND_H
#define BHRR_IO_LAND_H

#include <stdint.h>

#include "shim.h"

/* The two hooks; @n set to 2. */
const struct hook_spec *io_land_hooks(size_t *n);

/* Whether landing at I/O accesses is on (set once by io_land_start). */
int io_land_active(void);

/* Decide once, after discovery (constructor): on in exact mode if QEMU allows. */
void io_land_start(void);

/*
 * For the policies' io(), in the vCPU thread during a guest access.
 * io_land_icount: the exact icount of the accessing instruction; 0 if it
 * cannot be had.  io_land_first_access: the same, and whether this access
 * is known to be the first of its instruction - the access before was
 * tracked and had another icount; it starts tracking.  io_land_untrack:
 * stop tracking (nothing to land: the icount is not read meanwhile).  So
 * record lands only at an access known to be the first of its
 * instruction, never at a second one that it could not tell apart; a
 * replay, which runs an action at the first access of its icount, meets
 * it there.
 */
int io_land_icount(int64_t *ic);
int io_land_first_access(int64_t *ic);
void io_land_untrack(void);
/* Guest device accesses the hook saw while landing was on; any thread. */
unsigned long long io_land_accesses(void);

#endif
