/*
 * policy_record.c - the record policy (see policy.h), and the policy
 * switch.
 */
#include <string.h>
#include <unistd.h>

#include "executor.h"
#include "gate.h"
#include "held.h"
#include "io_land.h"
#include "log.h"
#include "log_action.h"
#include "policy.h"
#include "qemu_rt.h"
#include "settings.h"
#include "warp.h"

static const struct policy *current = &policy_record; /* atomic; switched with the BQL */

const struct policy *
policy_current(void)
{
	return __atomic_load_n(&current, __ATOMIC_ACQUIRE);
}

void
policy_switch(const struct policy *p)
{
	__atomic_store_n(&current, p, __ATOMIC_RELEASE);
}

void
policy_no_op(void)
{
}

int
policy_never(void)
{
	return 0;
}

/*
 * Exact mode: hold a copy for the executor, due at the next instruction
 * boundary where a replay can stop too (executor_arm_now).  Otherwise, or
 * when it cannot be held, run it where it is, logged.
 */
void
policy_record_bh(QEMUBH *bh, struct held *h, const char *name)
{
	if (!qrt.exact || __atomic_load_n(&qrt.timer, __ATOMIC_ACQUIRE) == NULL) {
		gate_run_now(bh, h, 0);
		return;
	}
	/* test-only (BHRR_TEST_DELAY_US): completions reach QEMU late, so the guest idles and QEMU warps */
	if (bhrr_cfg.test.delay_us && name && strcmp(name, LOG_ACT_THREAD_POOL_BH) == 0)
		usleep(bhrr_cfg.test.delay_us);
	if (gate_hold_bh(bh, h) < 0) {
		executor_drain(LOG_IC_LOWER); /* the queue is full: keep the order */
		gate_run_now(bh, h, LOG_F_AT_ONCE);
		return;
	}
	policy_record_arm_held();
}

void
policy_record_arm_held(void)
{
	if (qrt_role() == QRT_ROLE_VCPU) {
		/* held where the vCPU scheduled it (gate_bh.c): the vCPU stops one instruction on */
		unsigned how;
		int64_t ic = qrt_icount_here(&how, QRT_ROLE_VCPU);

		if (how == LOG_IC_EXACT)
			executor_arm_at(ic + 1);
		else
			executor_arm_now();
		return;
	}
	if (policy_current()->io)
		executor_arm_soon(); /* the guest's next device access lands it */
	else
		executor_arm_now();
}

/* A guest device access (io_land.h): land what is held here, if it is the first of its instruction. */
static void
record_io(void)
{
	int64_t ic;

	/* called only while something is held (io_when_held: the access hook tests held_q.n) */
	if (!qrt.bql_locked()) {
		io_land_untrack(); /* a device of its own locking: not a place to land */
		return;
	}
	if (io_land_first_access(&ic))
		executor_land_io(ic);
}

static void
record_execute(void)
{
	executor_drain(LOG_IC_EXACT);
}

void
policy_record_vm_change(int running)
{
	if (!running)
		executor_drain(LOG_IC_LOWER); /* a stopped VM runs no VIRTUAL timer */
}

void
policy_record_nested_poll(void)
{
	executor_drain(LOG_IC_LOWER);
}

/*
 * A completion: inside held work (a thread pool's BH the executor lands)
 * it runs now, exact; one that comes by itself (an io_uring or Linux AIO
 * completion, gate_blk.h: in the main loop, or in the vCPU thread when a
 * guest's write submitted it and the ring had it done at once) is held
 * for the executor like a BH, so that it too lands at an exact icount.
 * Not in an iothread.
 */
void
policy_record_complete(struct req *r, int ret)
{
	enum qrt_role role = qrt_role();

	if (gate_in_executor || !qrt.exact || (role != QRT_ROLE_MAIN && role != QRT_ROLE_VCPU) ||
	    !qrt.runstate_is_running() || __atomic_load_n(&qrt.timer, __ATOMIC_ACQUIRE) == NULL) {
		gate_complete_now(r, ret); /* (an iothread's stays in its thread) */
		return;
	}
	struct held h = { .kind = HELD_REQ, .req = r, .ret = ret };

	if (held_add(&h) < 0) {
		executor_drain(LOG_IC_LOWER); /* the queue is full: keep the order */
		gate_complete_now(r, ret);
		return;
	}
	policy_record_arm_held();
}

const struct policy policy_record = {
	.name = "record",
	.bh = policy_record_bh,
	.complete = policy_record_complete,
	.execute = record_execute,
	.warp = warp_record,
	.warp_due = policy_never,
	.vm_change = policy_record_vm_change,
	.nested_poll = policy_record_nested_poll,
	.io = record_io,
	.io_when_held = 1,
	.landing = 1,
};
