/*
 * gate_rng.c - entropy from the host (see gate_rng.h).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emit.h"
#include "gate.h"
#include "gate_rng.h"
#include "log.h"
#include "policy.h"
#include "qemu_rt.h"
#include "replay.h"
#include "symbols.h"
#include "vlog.h"

typedef void entropy_fn(void *opaque, const void *data, size_t size);
typedef void request_fn(void *backend, size_t size, entropy_fn *cb, void *opaque);

#define DEV_MAX 16
#define PENDING_MAX 64

/* A device asking for entropy, by its opaque; ordinals in order of first request. */
struct dev {
	void *opaque;
	/* replay: its requests not answered yet, oldest first */
	struct { entropy_fn *cb; size_t size; } pending[PENDING_MAX];
	unsigned n_pending;
};

/* Record: one request on its way through the backend. */
struct ask {
	entropy_fn *cb;
	void *opaque;
	unsigned dev;
};

static struct dev devs[DEV_MAX];        /* BQL */
static unsigned n_devs;                 /* BQL */
static int said_full, said_queue;       /* BQL */
static enum { RNG_OFF, RNG_RECORD, RNG_REPLAY } mode; /* set once, before main() */
static request_fn *real_request;
static atomic_ullong bytes_out;

void
gate_rng_start(int recording, int replay_mode)
{
	mode = recording ? RNG_RECORD : replay_mode ? RNG_REPLAY : RNG_OFF;
}

static struct dev *
dev_of(void *opaque)
{
	for (unsigned i = 0; i < n_devs; i++)
		if (devs[i].opaque == opaque)
			return &devs[i];
	if (n_devs < DEV_MAX) {
		devs[n_devs].opaque = opaque;
		return &devs[n_devs++];
	}
	if (!said_full) {
		said_full = 1;
		vlog_error("more than %d entropy devices; the others' entropy is not recorded", DEV_MAX);
	}
	return NULL;
}

/* Whether @backend is an rng-random: the one backend that reads the host at host timing. */
static int
reads_host(void *backend)
{
	const char *(*type_of)(void *) = shim_qemu.sym[QS_OBJECT_GET_TYPENAME].addr;
	const char *t = type_of(backend);

	return t != NULL && strcmp(t, "rng-random") == 0;
}

/* Log @len bytes for device @dev at @icount and hand them to @cb, as the executor runs work. */
static void
hand_over(unsigned dev, entropy_fn *cb, void *opaque, const void *data, size_t len, unsigned how,
	  int64_t icount, uint64_t flags)
{
	emit_rng_read(dev, data, len, how, icount, flags);
	atomic_fetch_add(&bytes_out, len);
	gate_in_executor++;
	cb(opaque, data, len);
	gate_in_executor--;
}

/* Record: the backend's answer, in the main loop; held for an exact landing. */
static void
answered(void *opaque, const void *data, size_t size)
{
	struct ask *ask = opaque;

	if (size > LOG_TEXT_MAX)
		size = LOG_TEXT_MAX; /* what one event carries: the device gets what is logged */
	struct held h = { .kind = HELD_RNG, .fe = ask->dev, .len = size, .rng_cb = (void *)ask->cb,
			  .rng_opaque = ask->opaque };

	free(ask);
	h.data = malloc(size ? size : 1);
	if (h.data != NULL) {
		memcpy(h.data, data, size);
		if (held_add(&h) == 0) {
			policy_record_arm_held();
			return;
		}
		free(h.data);
	}
	unsigned how;
	int64_t ic = qrt_icount_now(&how, 0);

	vlog_error("entropy: cannot hold %zu bytes; handed over at once, outside recorded control",
		   size);
	hand_over(h.fe, (entropy_fn *)h.rng_cb, h.rng_opaque, data, size, how, ic, LOG_F_AT_ONCE);
}

static void
hk_request(void *backend, size_t size, entropy_fn *cb, void *opaque)
{
	struct dev *d;

	if (mode == RNG_OFF || replay_is_free() || !reads_host(backend) ||
	    (d = dev_of(opaque)) == NULL) {
		real_request(backend, size, cb, opaque);
		return;
	}
	if (mode == RNG_REPLAY) {
		/* the backend is not asked: the log answers */
		if (d->n_pending < PENDING_MAX) {
			d->pending[d->n_pending].cb = cb;
			d->pending[d->n_pending].size = size;
			d->n_pending++;
		} else if (!said_queue) {
			said_queue = 1;
			vlog_error("entropy device %u has %d requests unanswered; later ones are "
				   "dropped", (unsigned)(d - devs), PENDING_MAX);
		}
		return;
	}
	struct ask *ask = malloc(sizeof(*ask));

	if (ask == NULL) {
		real_request(backend, size, cb, opaque);
		return;
	}
	*ask = (struct ask){ cb, opaque, (unsigned)(d - devs) };
	real_request(backend, size, answered, ask);
}

void
gate_rng_run_held(struct held *h, unsigned how, int64_t icount, uint64_t flags)
{
	hand_over(h->fe, (entropy_fn *)h->rng_cb, h->rng_opaque, h->data, h->len, how, icount, flags);
	free(h->data);
}

int
gate_rng_inject(uint64_t dev, const uint8_t *data, size_t len, unsigned how, int64_t icount,
		uint64_t flags, char *why, size_t whylen)
{
	struct dev *d = dev < n_devs ? &devs[dev] : NULL;

	if (d == NULL || d->n_pending == 0) {
		snprintf(why, whylen, "entropy device %llu has asked for no entropy to answer",
			 (unsigned long long)dev);
		return -1;
	}
	entropy_fn *cb = d->pending[0].cb;

	d->n_pending--;
	memmove(&d->pending[0], &d->pending[1], d->n_pending * sizeof(d->pending[0]));
	hand_over((unsigned)dev, cb, d->opaque, data, len, how, icount, flags);
	return 0;
}

unsigned long long
gate_rng_bytes(void)
{
	return bytes_out;
}

static const struct hook_spec hooks[] = {
	{ QS_RNG_BACKEND_REQUEST_ENTROPY, (void *)hk_request, (void **)&real_request },
};

const struct hook_spec *
gate_rng_hooks(size_t *n)
{
	*n = sizeof(hooks) / sizeof(hooks[0]);
	return hooks;
}
