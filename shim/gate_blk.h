/*
 * gate_blk.h - block requests gated where the device gets them back, for
 * drives whose completions never pass the thread pool (aio=io_uring,
 * aio=native) and for format drivers that fan requests out (qcow2).
 *
 * With aio=threads, every host request of a drive is a thread-pool request
 * and its completion comes in the pool's BH, which the gate holds
 * (gate_io.c).  io_uring and Linux AIO complete in a file-descriptor
 * handler of the main loop, at host timing, and wake the request's
 * coroutine there: the device's completion callback runs inside it.  So
 * for a command line with such a drive (or a qcow2 image, or -snapshot,
 * whose overlay is one) bhrr gates one level up, at the
 * block backend: blk_aio_preadv, _pwritev, _flush, _pdiscard and
 * _pwrite_zeroes, the calls every emulated disk (virtio-blk, IDE, AHCI,
 * SCSI) makes, get their callback wrapped; each is an io_submit, and each
 * completion an io_complete held and landed at an exact icount like a
 * thread-pool one.  Its identity is the guest's request (operation,
 * device offset, bytes), however many host requests a format driver made
 * of it.  The thread pool's own requests then pass unwrapped: one level
 * only.
 *
 * qcow2 images and -snapshot are gated here too: one guest request can
 * become several host requests (metadata, a cluster's copy-on-write),
 * and how many can change with host timing (the qcow2 cache-clean timer
 * runs on the host's clock), so the guest's request is the identity.
 *
 * Threads: the hooks run in the submitting thread (the vCPU thread in an
 * I/O access, or the main loop), completions where the backend completes
 * (the main loop, BQL).  gate_blk_on is written once, in the constructor.
 */
#ifndef BHRR_GATE_BLK_H
#define BHRR_GATE_BLK_H

#include <stddef.h>

#include "shim.h"

/*
 * A held completion keeps its BlockBackend in flight (blk_inc_in_flight at
 * submission), as the coroutine a thread-pool hold blocks did: a drain
 * (a reset's cancel, a VM stop) then polls, and the nested poll lands
 * what is held, instead of returning while the device still waits for
 * it.  Called once the device's callback has run, with the request's blk
 * (NULL: nothing to do); any thread.
 */
void gate_blk_done(void *blk);

/* Gating at the block backend is on (the hooks are in the table): set once, constructor. */
extern int gate_blk_on;

/*
 * The block-backend hooks, when QEMU's command line has a drive that
 * completes outside the thread pool and the build has the functions; @n
 * set (0: none, the thread pool's gate stays).  Sets gate_blk_on.
 * Constructor only.
 */
const struct hook_spec *gate_blk_hooks(size_t *n);

#endif
