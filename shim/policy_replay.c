/*
 * policy_replay.c - exact replay (see policy.h): the same executor as
 * record, driven by the log.  Arriving BHs and completions are kept
 * (held_q); the executor is armed for the next action's icount; there it
 * runs what the action calls for, or parks the vCPU until it arrives, or
 * names the divergence.  Warps happen only where the log has them.
 *
 * Threads: the cursor under the BQL; parking is the vCPU thread's.
 */
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "emit.h"
#include "executor.h"
#include "gate.h"
#include "log.h"
#include "policy.h"
#include "qemu_rt.h"
#include "replay.h"
#include "settings.h"
#include "shim.h"
#include "warp.h"

#define PARK_POLL_MS 10

static int parked; /* vCPU thread: a park_fn is queued or running */

/* Arm the executor for the next recorded action, or end at the end of the log. */
static void
replay_arm(void)
{
	const struct replay_action *a;

	if (replay_is_free() || executor_arming())
		return;
	a = replay_due();
	if (a == NULL) {
		replay_free("end of the log"); /* nothing (more) to replay: hand over what is held */
		return;
	}
	/*
	 * VIRTUAL = bias + (icount << shift); the bias moves only by warps.
	 * Armed for a warp too: the warp hook applies it, the executor only
	 * notices a guest that ran past it.
	 */
	executor_arm_for(a->a.icount);
}

static void replay_step(void);

/*
 * Parked: an async_run_on_cpu work item, so no instruction runs meanwhile.
 * It holds the BQL only to check and deliver, and leaves when the VM stops.
 */
static void
park_fn(CPUState *cpu, run_on_cpu_data data)
{
	long long t0 = shim_now_ns();

	(void)cpu;
	(void)data;
	for (;;) {
		const struct replay_action *a = replay_due();

		if (replay_is_free() || a == NULL || !qrt.runstate_is_running()) {
			parked = 0;
			return;
		}
		if (replay_available(a)) {
			parked = 0;
			replay_step();
			return;
		}
		if (shim_now_ns() - t0 > bhrr_cfg.watchdog_ms * 1000000ll) {
			parked = 0;
			replay_diverge("it did not arrive within %ld ms", bhrr_cfg.watchdog_ms);
			return;
		}
		struct timespec ts;

		qrt.bql_unlock();
		pthread_mutex_lock(&held_mu);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += PARK_POLL_MS * 1000000;
		ts.tv_sec += ts.tv_nsec / 1000000000;
		ts.tv_nsec %= 1000000000;
		pthread_cond_timedwait(&held_cv, &held_mu, &ts);
		pthread_mutex_unlock(&held_mu);
		qrt.bql_lock(__FILE__, __LINE__);
	}
}

static void
park(void)
{
	CPUState *cpu = qrt_current_cpu();

	if (parked)
		return;
	if (cpu == NULL) {
		replay_free("cannot park: no current vCPU");
		return;
	}
	parked = 1;
	replay.parks++;
	qrt.async_run_on_cpu(cpu, park_fn, (run_on_cpu_data){ .host_ptr = NULL });
}

/* From the executor (vCPU thread, BQL, exact icount): act on the log. */
static void
replay_step(void)
{
	while (!replay_is_free()) {
		const struct replay_action *a = replay_due();

		if (a == NULL) {
			replay_free("end of the log");
			return;
		}
		int64_t ic = __atomic_load_n(qrt.qemu_icount, __ATOMIC_ACQUIRE);

		if (ic < a->a.icount) {
			replay_arm();
			return;
		}
		if (ic > a->a.icount) {
			replay_diverge("the guest is already at icount %lld", (long long)ic);
			return;
		}
		if (a->a.kind == LOG_ACT_WARP)
			return;
		if (!replay_take(a)) {
			park();
			return;
		}
		replay.next++;
	}
}

/* The warp hook while replaying: warp only where the log has a warp. */
static void
replay_warp(void)
{
	const struct replay_action *a = replay_due();
	int64_t ic = __atomic_load_n(qrt.qemu_icount, __ATOMIC_ACQUIRE);

	/*
	 * QEMU asks for a warp when every vCPU is idle.  A vCPU that halted
	 * exactly at the executor's deadline is never woken to run it (the
	 * deadline passed by execution, not by a timer_mod): re-arming from
	 * here kicks it.
	 */
	if (a != NULL && a->a.kind != LOG_ACT_WARP && a->a.icount <= ic) {
		replay_arm();
		return;
	}
	if (executor_arming() || a == NULL || a->a.kind != LOG_ACT_WARP)
		return;
	if (ic > a->a.icount) {
		replay_diverge("the guest ran on to icount %lld without the warp", (long long)ic);
		return;
	}
	if (ic != a->a.icount)
		return;
	int64_t delta = warp_apply();

	if (delta == 0)
		return; /* a vCPU was not idle yet: QEMU tries again */
	unsigned how;
	int64_t now = qrt_icount_now(&how, 1);

	emit_warp(delta, how, now);
	if (delta != a->a.value) {
		replay_diverge("a warp of %lld ns where the log has %lld", (long long)delta,
			       (long long)a->a.value);
		return;
	}
	replay.next++;
	replay_arm();
}

/* Main loop, every vCPU idle: an action due, the vCPU halted at its deadline. */
static int
replay_warp_due(void)
{
	const struct replay_action *a = replay_due();

	return a != NULL && a->a.kind != LOG_ACT_WARP &&
	       a->a.icount <= __atomic_load_n(qrt.qemu_icount, __ATOMIC_ACQUIRE);
}

static void
replay_bh(QEMUBH *bh, struct held *h, const char *name)
{
	if (name && strcmp(name, LOG_ACT_THREAD_POOL_BH) == 0) {
		/* it only hands completions to the gate, which keeps each one */
		gate_run_unlogged(bh);
		return;
	}
	if (__atomic_load_n(&qrt.timer, __ATOMIC_ACQUIRE) == NULL || gate_hold_bh(bh, h) < 0) {
		gate_run_now(bh, h, LOG_F_AT_ONCE); /* cannot be kept: outside recorded control */
		return;
	}
	replay_arm();
}

static void
replay_complete(struct req *r, int ret)
{
	if (gate_in_executor || !qrt.runstate_is_running() ||
	    __atomic_load_n(&qrt.timer, __ATOMIC_ACQUIRE) == NULL) {
		gate_complete_now(r, ret);
		return;
	}
	/* test-only (BHRR_TEST_DELAY_US): hold every completion back so the vCPU must park for it */
	if (bhrr_cfg.test.delay_us)
		usleep(bhrr_cfg.test.delay_us);
	struct held h = { .kind = HELD_REQ, .req = r, .ret = ret };

	if (held_add(&h) < 0) {
		gate_complete_now(r, ret);
		return;
	}
	replay_arm();
}

static void
replay_vm_change(int running)
{
	if (running)
		replay_arm();
	else
		replay_free("the VM stopped");
}


const struct policy policy_replay = {
	.name = "replay",
	.bh = replay_bh,
	.complete = replay_complete,
	.execute = replay_step,
	.warp = replay_warp,
	.warp_due = replay_warp_due,
	.vm_change = replay_vm_change,
	.nested_poll = replay_nested_poll,
	.landing = 0,
};
