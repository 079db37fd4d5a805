/*
 * policy_chaos.c - BHRR_CHAOS=SEED, exact record only: seeded perturbation
 * of held work within the bounds below.  Every decision is a chaos event,
 * and what the guest saw is in the log as usual, so plain replay repeats it.
 *
 * Threads: the RNG and the decisions are the vCPU thread's alone (the
 * executor, warps between TBs, and completions run from the executor all
 * happen there); the held queue is under held_mu as always.
 */
#include <stdint.h>

#include "emit.h"
#include "executor.h"
#include "gate.h"
#include "log.h"
#include "policy.h"
#include "qemu_rt.h"
#include "settings.h"
#include "vlog.h"
#include "warp.h"

#define CHAOS_DELAY_PERCENT 50      /* of items get an extra delay */
#define CHAOS_DELAY_MIN 1000        /* instructions */
#define CHAOS_DELAY_MAX 1000000
#define CHAOS_REORDER_PERCENT 50    /* of picks among 2+ due items take a random one */
#define CHAOS_REQS_MAX 256          /* completions held back at once */
#define CHAOS_DUE_MAX 256

enum { CHAOS_DELAY = 0, CHAOS_REORDER = 1 }; /* the chaos event's decision */

static uint64_t rng;       /* vCPU thread */
static int seeded;         /* vCPU thread */

static uint64_t
chaos_next(void)
{
	if (!seeded) {
		seeded = 1;
		rng = bhrr_cfg.chaos_seed;
	}
	/* splitmix64: a seeded, well-mixed stream */
	uint64_t z = (rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* A delay for the next item, or 0; logged when drawn. */
static int64_t
chaos_delay(int64_t now)
{
	if (chaos_next() % 100 >= CHAOS_DELAY_PERCENT)
		return 0;
	int64_t d = CHAOS_DELAY_MIN + (int64_t)(chaos_next() % (CHAOS_DELAY_MAX - CHAOS_DELAY_MIN));

	emit_chaos(CHAOS_DELAY, d, now);
	return d;
}

/* Which of @n due items to take: the first, or out of turn (logged). */
static size_t
chaos_pick(size_t n, int64_t now)
{
	size_t pick = 0;

	if (n > 1 && chaos_next() % 100 < CHAOS_REORDER_PERCENT) {
		pick = (size_t)(chaos_next() % n);
		if (pick)
			emit_chaos(CHAOS_REORDER, (int64_t)pick, now);
	}
	return pick;
}

/*
 * Collect the items of @kind that are due at @now (all of them when @all),
 * drawing each BH's delay once; the soonest later one in *@soonest.
 * held_mu held.
 */
static size_t
due_items(enum held_kind kind, int64_t now, int all, size_t *due, int64_t *soonest)
{
	size_t n = 0;

	for (size_t i = 0; i < held_q.n; i++) {
		struct held *c = &held_q.v[i];

		if (c->kind != kind)
			continue;
		if (!c->decided) {
			c->decided = 1;
			c->not_before = now + chaos_delay(now);
		}
		if (all || c->not_before <= now) {
			if (n < CHAOS_DUE_MAX)
				due[n++] = i;
		} else if (c->not_before < *soonest) {
			*soonest = c->not_before;
		}
	}
	return n;
}

/*
 * The executor under chaos: each held item may be delayed once, and among
 * the items due, one may be taken out of turn; completions held back
 * first.  @all: the vCPU idles, so delays are cut short (nothing else
 * would advance the icount to them).
 */
static void
chaos_drain(int all)
{
	for (;;) {
		unsigned how;
		int64_t now = qrt_icount_now(&how, 1);
		size_t due[CHAOS_DUE_MAX], n;
		int64_t soonest = INT64_MAX;

		pthread_mutex_lock(&held_mu);
		n = due_items(HELD_REQ, now, all, due, &soonest);
		if (n == 0)
			n = due_items(HELD_BH, now, all, due, &soonest);
		if (n == 0) {
			pthread_mutex_unlock(&held_mu);
			if (soonest != INT64_MAX)
				executor_arm_at(soonest);
			return;
		}
		size_t pick = chaos_pick(n, now);
		struct held h = heldq_take(&held_q, due[pick]);

		pthread_mutex_unlock(&held_mu);
		gate_run_held(&h, how, now, 0);
	}
}

static void
chaos_execute(void)
{
	chaos_drain(0);
}


static void
chaos_warp(void)
{
	if (held_count(0) && qrt.all_idle()) {
		chaos_drain(1); /* the guest idles: a delay cannot pass by execution */
		return;
	}
	warp_record();
}

static int
chaos_warp_due(void)
{
	return held_count(0) > 0; /* delayed items wait for the vCPU: it idles, so cut them short */
}

/* A completion the executor delivers (vCPU thread) may be held back. */
static void
chaos_complete(struct req *r, int ret)
{
	if (gate_in_executor > 0 && qrt.in_vcpu_thread() && qrt.runstate_is_running()) {
		unsigned how;
		int64_t now = qrt_icount_now(&how, 1);

		int64_t d = held_count(HELD_REQ) < CHAOS_REQS_MAX ? chaos_delay(now) : 0;

		if (d > 0) {
			struct held h = { .kind = HELD_REQ, .req = r, .ret = ret,
					  .not_before = now + d, .decided = 1 };

			if (held_add(&h) == 0) {
				executor_arm_at(now + d);
				return;
			}
		}
		gate_complete_now(r, ret);
		return;
	}
	policy_record_complete(r, ret); /* outside held work: held to an exact icount, as record does */
}

void
policy_chaos_announce(void)
{
	vlog_say("chaos: seed %llu: %d%% of items delayed by %d to %d instructions, "
		 "%d%% of picks out of turn", (unsigned long long)bhrr_cfg.chaos_seed,
		 CHAOS_DELAY_PERCENT, CHAOS_DELAY_MIN, CHAOS_DELAY_MAX, CHAOS_REORDER_PERCENT);
}

const struct policy policy_chaos = {
	.name = "chaos",
	.bh = policy_record_bh,
	.complete = chaos_complete,
	.execute = chaos_execute,
	.warp = chaos_warp,
	.warp_due = chaos_warp_due,
	.vm_change = policy_record_vm_change,
	.nested_poll = policy_record_nested_poll,
	.landing = 1,
};
