/*
 * gate_net.h - network receive: every frame a backend (user/slirp with its
 * hostfwd, tap, socket, stream, dgram, or a hub in between: QEMU's
 * implicit default NIC) hands to a guest NIC (any model: e1000,
 * virtio-net, rtl8139, ...).
 *
 * Caught where frames enter a NIC's incoming queue, for every backend and
 * model alike: qemu_net_queue_send and qemu_net_queue_send_iov (every
 * frame entering any client's queue passes there; doc/research/
 * net-receive.md).  qemu_new_net_queue tells bhrr which queue belongs to
 * which client, and the client's NetClientInfo whether it is a NIC.
 *
 * Exact record: a frame bound for a NIC is swallowed (the queue never sees
 * it, so no flush of earlier frames happens at host timing either), held
 * (HELD_NET) and landed like a BH, at an exact icount; the landing logs a
 * net_recv event with the bytes and hands the frame to the NIC's own queue,
 * tagged, so QEMU's queueing and the NIC's backpressure run as always.  A
 * frame longer than one event holds (4096 bytes: a jumbo MTU, a tap's
 * offloaded segments) is logged in pieces at the same icount, LOG_F_MORE
 * on all but the last, which replay (log_pieces) makes whole again.  The
 * guest's transmissions go to the backend, and complete at once.
 * Exact replay: nothing untagged reaches a NIC, and the guest's
 * transmissions go nowhere (the backend is cut off both ways); the logged
 * frames reach the NIC queues at their icounts.  After the log's end,
 * frames pass again.
 * Any other mode: the hooks pass everything through.
 *
 * Not covered (doc/record.md): frames over QEMU's own bound (4096 + 65536
 * bytes: dropped, said once), vhost (the kernel moves the frames), a link
 * going up or down.
 *
 * Threads: QEMU sends and flushes with the BQL held (the main loop, the
 * vCPU thread in a device access, a virtual timer); the client table is
 * written and read under it.
 */
#ifndef BHRR_GATE_NET_H
#define BHRR_GATE_NET_H

#include <stddef.h>
#include <stdint.h>

#include "held.h"
#include "shim.h"

/* The hooks on qemu_new_net_queue, qemu_net_queue_send and _send_iov; @n set. */
const struct hook_spec *gate_net_hooks(size_t *n);

/* Decide the mode once policies are chosen (session start, constructor). */
void gate_net_start(int recording, int replaying);

/* Land a held frame @h (vCPU thread, BQL): log it at @icount and hand it to its NIC. */
void gate_net_run_held(struct held *h, unsigned how, int64_t icount, uint64_t flags);

/*
 * Replay: hand the logged frame (@id: NIC ordinal, QEMU's packet flags above
 * bit 32) to its NIC now (vCPU thread, BQL, exact icount), logging it as the
 * record did; 0, or -1 with @why when there is no such NIC.
 */
int gate_net_inject(uint64_t id, const uint8_t *data, size_t len, unsigned how, int64_t icount,
		    uint64_t flags, char *why, size_t whylen);

/* Frames handed to NICs, and frames dropped in replay (live ones, both ways); any thread. */
unsigned long long gate_net_frames(void);
unsigned long long gate_net_dropped(void);

#endif
