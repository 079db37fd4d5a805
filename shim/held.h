/*
 * held.h - the held-item queue: work that reached the gate and waits for
 * the executor to land it at an exact icount.  One type for every policy:
 * record holds BHs until the next landing, chaos holds BHs and completions
 * until a drawn icount, replay keeps BHs and completions until the log
 * calls for them.
 *
 * struct heldq is a plain growable array with no lock of its own
 * (tests/unit/test_held.c drives it directly).  The shim has one instance,
 * held_q, guarded by held_mu; held_cv (with held_mu) is broadcast whenever
 * an item is added or the queue is handed back, for a parked vCPU.
 */
#ifndef BHRR_HELD_H
#define BHRR_HELD_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct req; /* an I/O request of the gate (gate.h) */

enum held_kind { HELD_BH = 1, HELD_REQ = 2, HELD_CHR = 3, HELD_RNG = 4, HELD_NET = 5,
		HELD_TIMER = 6 };

struct held {
	enum held_kind kind;
	/* HELD_BH */
	void *copy;         /* a copy of the QEMUBH, run through aio_bh_call; owned */
	const void *orig;   /* the QEMUBH it copies (qemu_bh_delete may come first) */
	uint64_t ident;     /* callback ident */
	uint64_t instance;  /* creation ordinal of its ident, from 1; 0: a oneshot */
	uint64_t cb_off;    /* callback offset in the executable (replay matches by it) */
	/* HELD_REQ */
	struct req *req;    /* owned */
	int ret;            /* HELD_NET: QEMU's packet flags; HELD_CHR: an event + 1, 0 bytes */
	/* HELD_CHR: bytes for a guest's console or channel frontend (gate_chr.h) */
	/* HELD_RNG: entropy for a device (gate_rng.h) */
	/* HELD_NET: a frame for a guest NIC (gate_net.h) */
	/* HELD_TIMER: a timer on a host clock fired (gate_clock.h): fe is its ordinal */
	unsigned fe;        /* the frontend's, device's or NIC's ordinal */
	uint8_t *data;      /* owned */
	size_t len;
	void *rng_cb;       /* HELD_RNG: the device's callback and its opaque */
	void *rng_opaque;
	/* chaos */
	int64_t not_before; /* not before this icount */
	int decided;        /* its delay was drawn */
	/* held where the vCPU thread scheduled it (gate_bh.c): QEMU believes it still scheduled */
	int scheduled;
};

struct heldq {
	struct held *v;
	size_t n, cap;
	size_t max;         /* refuse pushes beyond this many; 0: no bound */
};

/* Append @h; 0, or -1 when the queue is at its bound or memory runs out. */
int heldq_push(struct heldq *q, const struct held *h);
/* Remove and return item @i (< q->n), keeping the others' order. */
struct held heldq_take(struct heldq *q, size_t i);
/* Items of @kind (0: any) in the queue. */
size_t heldq_count(const struct heldq *q, enum held_kind kind);

typedef int heldq_match_fn(const struct held *h, const void *arg);
/* The index of the first item from @from on that @match accepts, or q->n. */
size_t heldq_find(const struct heldq *q, size_t from, heldq_match_fn *match, const void *arg);
/* Free the array (not the items' copies or requests). */
void heldq_fini(struct heldq *q);

/* The shim's queue: every field under held_mu. */
extern pthread_mutex_t held_mu;
extern pthread_cond_t held_cv;
extern struct heldq held_q;

/* Append @h to held_q and wake a parked vCPU; 0, or -1 (full); any thread. */
int held_add(const struct held *h);
/* Items of @kind (0: any) in held_q, taking held_mu; any thread. */
size_t held_count(enum held_kind kind);
/*
 * Take up to @max items of held_q that @match accepts, in order, into @out,
 * taking held_mu; how many.  @match runs under held_mu.  Any thread.
 */
size_t held_take(heldq_match_fn *match, const void *arg, struct held *out, size_t max);

#endif
