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
 * in record or replay, so the place is unambiguous.
 *
 * Hooks memory_region_dispatch_read/_write (every MMIO and port access of
 * TCG goes through them).  Active only in exact mode, with the BQL check
 * and CPUState's fields known; otherwise the hooks only forward.
 *
 * Threads: the hooks run in any thread that accesses a device; only the
 * vCPU thread lands.  io_land_last is the vCPU thread's.
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

#endif
