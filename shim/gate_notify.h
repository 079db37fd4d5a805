/*
 * gate_notify.h - ioeventfds, run where the guest writes them.
 *
 * With ioeventfd=on (virtio's default, on every transport), a guest's
 * write to a queue's notify address does not reach the device: QEMU's
 * memory_region_dispatch_write only signals the queue's EventNotifier, and
 * the main loop runs the handler (virtio_queue_host_notifier_read, which
 * reads the guest's rings) whenever it gets to the eventfd - at an icount
 * the host's timing picks.  bhrr runs that handler in the vCPU thread right
 * after the write, with the BQL, as ioeventfd=off would run the device: the
 * rings are read at the icount of the write, in record and in replay alike,
 * so nothing about the kick needs logging.  The main loop later finds the
 * eventfd cleared and does nothing.
 *
 * Which notifiers: those memory_region_add_eventfd registered (ioeventfds,
 * whatever the device), whose handler was registered on the main loop's
 * contexts (qemu_aio_context, or the iohandler context of
 * event_notifier_set_handler); an iothread's (dataplane) are left alone.
 *
 * The way back has the same shape.  Without irqfds (TCG has none), virtio
 * can signal a queue's interrupt through its guest notifier, whose handler
 * the main loop runs at a host-timed icount (virtio-blk with ioeventfd on
 * does since 8.2).  A guest notifier signalled by a thread holding the BQL -
 * a completion bhrr landed, or the main loop itself - has its handler run at
 * once, so the interrupt is raised where the completion landed.
 *
 * Threads: the table is written by whoever registers (QEMU does under the
 * BQL) and read by the vCPU thread with the BQL; the pending list is the
 * vCPU thread's.
 */
#ifndef BHRR_GATE_NOTIFY_H
#define BHRR_GATE_NOTIFY_H

#include <stddef.h>

#include "shim.h"

/* The hooks; @n set. */
const struct hook_spec *gate_notify_hooks(size_t *n);

/* Around the real dispatch of a guest write (io_land.c), vCPU thread, BQL. */
void gate_notify_write_begin(void);
/* After it: run the handlers of the ioeventfds the write signalled. */
void gate_notify_write_end(void);

/* How many kicks ran in the guest's write, and guest notifiers were signalled, so far; any thread. */
unsigned long long gate_notify_kicks(void);
unsigned long long gate_notify_irqs(void);

/*
 * Whether aio_set_event_notifier takes is_external (before 8.1): read from
 * its code (discover.h), or by the version when the code has neither shape.
 */
int gate_notify_takes_external(void);

#endif
