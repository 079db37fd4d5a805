/*
 * gate_chr.h - console and channel input: the bytes a chardev backend
 * (stdio, pty, socket, pipe, file, a mux shared with the monitor) hands to
 * a guest frontend (16550 serial, virtio-console, virtserialport, ...).
 *
 * Caught where they reach the guest, for every backend and frontend alike:
 * every frontend registers its can_read/read handlers through
 * qemu_chr_fe_set_handlers_full, and bhrr wraps them there.  A mux or (10.0)
 * a hub registers its own handlers on the base chardev from inside a
 * frontend's registration: those nested ones are left alone, and so are the
 * monitor's (can_read == monitor_can_read), so the bytes caught are the ones
 * the mux routed to the guest, after its escapes.
 *
 * Exact record: what a backend hands over is held (HELD_CHR) and landed by
 * the executor like a BH, at an exact icount; the landing logs a chr_read
 * event with the bytes and calls the frontend's own read.  While bytes wait,
 * the wrapped can_read offers the backend only what the frontend could take
 * beyond them, so it never reads ahead of the guest.
 * Exact replay: live input is dropped (said once per frontend), can_read
 * lets backends drain, and the logged bytes reach the frontend at their
 * icounts.  Output is untouched in both.
 * Any other mode: the handlers are not wrapped.
 *
 * Chardev events (a socket client connecting or leaving opens or closes a
 * virtserialport; a break reaches a 16550) go the same way, as chr_event.
 *
 * Not covered (doc/record.md): write results a frontend retries on.
 *
 * Threads: registration and both wrappers run with the BQL (the main loop,
 * or the vCPU thread in a device's access); the frontend table is written
 * and read under it.
 */
#ifndef BHRR_GATE_CHR_H
#define BHRR_GATE_CHR_H

#include <stddef.h>
#include <stdint.h>

#include "held.h"
#include "shim.h"

/* The hook on qemu_chr_fe_set_handlers_full; @n set. */
const struct hook_spec *gate_chr_hooks(size_t *n);

/* Decide the mode once policies are chosen (session start, constructor). */
void gate_chr_start(int recording, int replaying);

/* Land held console input @h (vCPU thread, BQL): log it at @icount and deliver it. */
void gate_chr_run_held(struct held *h, unsigned how, int64_t icount, uint64_t flags);

/*
 * Replay: deliver @len logged bytes to frontend @fe now (vCPU thread, BQL,
 * exact icount), logging them as the record did; 0, or -1 with @why when
 * no such frontend exists.
 */
int gate_chr_inject(uint64_t fe, const uint8_t *data, size_t len, unsigned how, int64_t icount,
		    uint64_t flags, char *why, size_t whylen);

/* The same for a recorded chardev event (@data: its one byte, QEMUChrEvent). */
int gate_chr_inject_event(uint64_t fe, const uint8_t *data, size_t len, unsigned how,
			  int64_t icount, uint64_t flags, char *why, size_t whylen);

/* Bytes delivered to the guest so far, and live bytes dropped in replay; any thread. */
unsigned long long gate_chr_bytes(void);
unsigned long long gate_chr_dropped(void);

#endif
