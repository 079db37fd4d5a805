/*
 * policy_order.c - replay of an ordering-mode log (see policy.h): kept
 * work is released, in the caller's thread with the BQL, as soon as its
 * recorded turn has come and it has arrived.  What is forced is the order
 * of delivery, not its timing.  A REALTIME watchdog names a divergence when
 * nothing the log calls for arrives for BHRR_WATCHDOG_MS.
 *
 * Threads: everything with the BQL (main loop).
 */
#include <stdlib.h>
#include <string.h>

#include "gate.h"
#include "log.h"
#include "policy.h"
#include "qemu_rt.h"
#include "replay.h"
#include "settings.h"
#include "shim.h"
#include "vlog.h"
#include "warp.h"

#define WATCHDOG_PERIOD_NS 1000000000ll

static void *watchdog; /* a REALTIME QEMUTimer; set once by order_start (main thread) */

static void
watchdog_rearm(void)
{
	if (watchdog)
		qrt.timer_mod_ns(watchdog, qrt.clock_get_ns(QRT_CLOCK_REALTIME) + WATCHDOG_PERIOD_NS);
}


/* Deliver every recorded item whose turn has come and that has arrived. */
static void
order_release(void)
{
	static int depth; /* BQL: a delivery may release again */

	if (depth)
		return;
	depth++;
	while (!replay_is_free()) {
		const struct replay_action *a = replay_due();

		if (a == NULL) {
			replay_free("end of the log");
			break;
		}
		if (!replay_take(a))
			break;
		replay.next++;
		replay.progress_ns = shim_now_ns();
	}
	depth--;
	if (!replay_is_free() && held_count(0))
		watchdog_rearm();
}

/* Main loop, once a second while something is held. */
static void
order_watchdog(void *opaque)
{
	(void)opaque;
	if (replay_is_free() || held_count(0) == 0)
		return;
	if (shim_now_ns() - replay.progress_ns > bhrr_cfg.watchdog_ms * 1000000ll) {
		replay_diverge("it did not arrive within %ld ms (%zu BHs and %zu completions held)",
			       bhrr_cfg.watchdog_ms, held_count(HELD_BH), held_count(HELD_REQ));
		return;
	}
	watchdog_rearm();
}

static void
order_start(void)
{
	void *t = calloc(1, QRT_TIMER_BYTES); /* never freed: QEMU may fire it until exit */

	if (t == NULL)
		return;
	qrt.timer_init_full(t, NULL, QRT_CLOCK_REALTIME, QRT_SCALE_NS, 0, order_watchdog, NULL);
	watchdog = t;
}

static void
order_bh(QEMUBH *bh, struct held *h, const char *name)
{
	if (name && strcmp(name, LOG_ACT_THREAD_POOL_BH) == 0) {
		/* it only hands completions to the gate, which keeps each one */
		gate_run_unlogged(bh);
		return;
	}
	if (gate_hold_bh(bh, h) < 0) {
		gate_run_now(bh, h, 0);
		return;
	}
	order_release();
}

static void
order_complete(struct req *r, int ret)
{
	if (gate_in_executor || !qrt.runstate_is_running()) {
		gate_complete_now(r, ret);
		return;
	}
	struct held h = { .kind = HELD_REQ, .req = r, .ret = ret };

	if (held_add(&h) < 0) {
		gate_complete_now(r, ret);
		return;
	}
	order_release();
}

static void
order_vm_change(int running)
{
	if (!running)
		replay_free("the VM stopped");
}


const struct policy policy_order = {
	.name = "order",
	.start = order_start,
	.bh = order_bh,
	.complete = order_complete,
	.execute = policy_no_op,
	.warp = warp_record,
	.warp_due = policy_never,
	.vm_change = order_vm_change,
	.nested_poll = replay_nested_poll,
	.nested_stuck = replay_nested_stuck,
	.landing = 0,
};
