/*
 * policy.h - what happens to gated work: one small table of callbacks per
 * policy, selected once by the session and switched only at defined
 * moments (a replay whose recorded control ends switches to record: the
 * run goes on free, and is logged as a record would be).
 *
 *   record   exact mode: hold gated BHs for the executor's next landing;
 *            ordering mode: run them at once; log everything
 *   chaos    record, with seeded delays and reorderings of held work
 *   replay   exact: keep arriving work until the log calls for it, at its
 *            icount, parking the vCPU when it has not arrived yet
 *   order    replay of an ordering-mode log: release kept work in the
 *            recorded order, as soon as it has arrived
 *
 * Threads: policy_current() from any thread (an atomic load);
 * policy_switch() from the constructor, or later with the BQL.  Each callback says where it runs.
 */
#ifndef BHRR_POLICY_H
#define BHRR_POLICY_H

#include "held.h"
#include "qemu_types.h"

struct req;

struct policy {
	const char *name;
	/* the main loop is ready (main thread, BQL), once; may be NULL */
	void (*start)(void);
	/* a gated BH @bh (its held item @h filled but for the copy) arrived; BQL */
	void (*bh)(QEMUBH *bh, struct held *h, const char *name);
	/* a thread-pool completion arrived outside a nested poll; BQL */
	void (*complete)(struct req *r, int ret);
	/* the executor fired (vCPU thread, BQL, exact icount) */
	void (*execute)(void);
	/* a warp in the vCPU thread, between TBs */
	void (*warp)(void);
	/* main loop, every vCPU idle: hand a warp to the vCPU even with no guest timer */
	int (*warp_due)(void);
	/* the VM starts (@running) or stops; main thread, BQL */
	void (*vm_change)(int running);
	/*
	 * A thread enters aio_poll on the main context and may wait there for
	 * held work: the main thread (quit drains the block layer) or the vCPU
	 * thread (a device's reset or cancel: bdrv_aio_cancel, blk_drain); BQL
	 */
	void (*nested_poll)(void);
	/*
	 * A blocking nested poll of the vCPU thread saw no progress for the
	 * watchdog bound while work stayed held: it waits for some; BQL.  May
	 * be NULL (record holds nothing by then).
	 */
	void (*nested_stuck)(void);
	/*
	 * A guest device access of the vCPU, before the device sees it
	 * (io_land.h); vCPU thread, inside a TB, with or without the BQL (a
	 * device of its own locking): it must check qrt.bql_locked() before
	 * it touches shared state, after its own cheap test of whether it has
	 * anything to do (this runs for every access).  NULL: none.
	 */
	void (*io)(void);
	/*
	 * io() has nothing to do while nothing is held: the access hook then
	 * skips the call (and its spill of six argument registers) on a
	 * plain load of held_q.n, which is most of record's cost per access.
	 */
	int io_when_held;
	/* the executor applies record's landing rule before execute() */
	int landing;
};

extern const struct policy policy_record, policy_chaos, policy_replay, policy_order;

/*
 * Record: something was just added to held_q (BQL); arm the executor for
 * it - one instruction on from the vCPU thread, else at the guest's next
 * device access with the fallback behind it, else now.
 */
/*
 * Record's completion: run now inside held work, else held for the
 * executor (an io_uring or Linux AIO completion, gate_blk.h); chaos's too
 * when it does not delay one.
 */
void policy_record_complete(struct req *r, int ret);
void policy_record_arm_held(void);

/* Replay: arm the executor for the next recorded action (BQL, any thread). */
void policy_replay_arm(void);
/*
 * -smp (vcpu_sched.h): whether a park holds every vCPU (vCPU thread), and land
 * what the log has after the turns made so far, at this icount (the outer
 * iteration: vCPU thread, BQL).
 */
int policy_replay_parked(void);
void policy_replay_land(void);

const struct policy *policy_current(void);
void policy_switch(const struct policy *p);

/* Callbacks shared by several policies. */
void policy_no_op(void);
int policy_never(void);
void policy_record_bh(QEMUBH *bh, struct held *h, const char *name);
/* Record: a stopping VM or a nested poll (main or vCPU thread) runs what is held, at once. */
void policy_record_vm_change(int running);
void policy_record_nested_poll(void);
/* Chaos: say once what the seed will do (stderr). */
void policy_chaos_announce(void);

#endif
