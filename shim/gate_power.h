/*
 * gate_power.h - a guest's shutdown request ends its run on an instruction.
 *
 * A guest powers off by an I/O write (ACPI's PM1a_CNT, a debug port):
 * QEMU's qemu_system_shutdown_request only sets a flag and wakes the main
 * loop, and the vCPU runs on - into its idle loop, through clock warps and
 * whatever timers fall due - until the main loop stops it.  How far it gets
 * is host timing: a record then logs events after the request that a
 * replay, stopping sooner, never reaches (and the reverse), so the run's
 * last events and its end icount differed between runs of one log.
 *
 * bhrr hooks qemu_system_shutdown_request and, when the vCPU thread asks
 * (a guest's request), stops that vCPU at once (cpu_stop_current), as
 * QEMU already does for a reset or a suspend request: with icount the I/O
 * instruction ends its translation block, so the vCPU stops on the
 * instruction after it, in a record and in every replay.  A request from
 * the main loop (a monitor's quit, a signal) is left as it is: no vCPU is
 * running its code.
 *
 * Threads: the hook runs in the requesting thread, with the BQL.
 */
#ifndef BHRR_GATE_POWER_H
#define BHRR_GATE_POWER_H

#include <stddef.h>

#include "shim.h"

/* The hook on qemu_system_shutdown_request; @n set. */
const struct hook_spec *gate_power_hooks(size_t *n);

#endif
