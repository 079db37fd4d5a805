/*
 * gate_rng.h - entropy from the host: the bytes an rng-random backend
 * (/dev/urandom, /dev/random or any file) hands to the device that asked
 * for them (virtio-rng).
 *
 * Caught where every device asks for entropy: rng_backend_request_entropy,
 * whose callback bhrr wraps.  Only rng-random reads the host at host
 * timing: rng-builtin answers in a BH (gated like any) with QEMU's own
 * generator (seeded by -seed), and rng-egd reads a character device, whose
 * bytes the console gate records (gate_chr.h).
 *
 * Exact record: what the backend hands over is held (HELD_RNG) and landed
 * like a BH, logged as rng_read with the bytes, then given to the device's
 * callback.  Exact replay: requests never reach the backend; bhrr keeps
 * them, per device in order, and answers the oldest at each recorded
 * rng_read with the recorded bytes.  Other modes: nothing is wrapped.
 *
 * Threads: requests come from the device (vCPU thread in its access, or
 * the main loop), the backend answers in the main loop; all with the BQL.
 */
#ifndef BHRR_GATE_RNG_H
#define BHRR_GATE_RNG_H

#include <stddef.h>
#include <stdint.h>

#include "held.h"
#include "shim.h"

/* The hook on rng_backend_request_entropy; @n set. */
const struct hook_spec *gate_rng_hooks(size_t *n);

/* Decide the mode once policies are chosen (constructor). */
void gate_rng_start(int recording, int replay_mode);

/* Land held entropy @h (vCPU thread, BQL): log it at @icount and hand it over. */
void gate_rng_run_held(struct held *h, unsigned how, int64_t icount, uint64_t flags);

/*
 * Replay: answer device @dev's oldest request with @len logged bytes now
 * (vCPU thread, BQL, exact icount), logging them; 0, or -1 with @why.
 */
int gate_rng_inject(uint64_t dev, const uint8_t *data, size_t len, unsigned how, int64_t icount,
		    uint64_t flags, char *why, size_t whylen);

/* Entropy bytes handed to devices so far; any thread. */
unsigned long long gate_rng_bytes(void);

#endif
