/*
 * policy_replay.c - exact replay (see policy.h): the same executor as
 * record, driven by the log.  Arriving BHs and completions are kept
 * (held_q); the executor is armed for the next action's icount; there it
 * runs what the action calls for, or parks the vCPU until it arrives, or
 * names the divergence.  Warps happen only where the log has them.
 *
 * Threads: the cursor under the BQL; parking is the vCPU thread's.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "debug.h"
#include "emit.h"
#include "executor.h"
#include "gate.h"
#include "gate_mon.h"
#include "io_land.h"
#include "log.h"
#include "policy.h"
#include "qemu_rt.h"
#include "replay.h"
#include "vcpu_sched.h"
#include "settings.h"
#include "shim.h"
#include "vlog.h"
#include "warp.h"

#define PARK_POLL_MS 10

static int parked; /* written by the vCPU thread, read by any, under the BQL: a park_fn is queued or running */
static size_t forced = (size_t)-1; /* vCPU thread: BHRR_TEST_PARK parked for this action */

/*
 * Arm the executor for the next recorded action, or end at the end of the
 * log.  @kick: re-arm even an unchanged deadline (replay_warp).
 */
static void
replay_arm_kick(int kick)
{
	const struct replay_action *a;

	if (replay_is_free() || executor_arming())
		return;
	a = replay_due();
	if (a == NULL) {
		/* nothing (more) to replay: hand over what is held - after the last vCPU turn */
		if (!sched_turns_left())
			replay_free("end of the log");
		return;
	}
	/*
	 * A parked vCPU is past the deadline already and waits on held_cv,
	 * not the timer, and re-arms once it has taken what arrived: arming
	 * now would only queue QEMU's kick work for it, once per arrival.
	 */
	if (parked && !kick)
		return;
	/*
	 * -smp: the log's vCPU turns stop the guest where an action lands
	 * (vcpu_sched.h); a deadline here would cut a turn short of the
	 * record's, one that ends just after an exception entry included.
	 */
	if (sched_replaying())
		return;
	/*
	 * VIRTUAL = bias + (icount << shift); the bias moves only by warps.
	 * Armed for a warp too: the warp hook applies it, the executor only
	 * notices a guest that ran past it.
	 */
	executor_arm_for(a->a.icount, kick);
}

static void
replay_arm(void)
{
	replay_arm_kick(0);
}

void
policy_replay_arm(void)
{
	replay_arm();
}

static void replay_step(void);

/*
 * Wait with the BQL released until something is held or @ms pass, then
 * take the BQL again: how a parked vCPU, or one waiting in a device
 * access, lets the main loop deliver what it waits for.
 */
static void
wait_unlocked(long ms)
{
	struct timespec ts;

	qrt.bql_unlock();
	pthread_mutex_lock(&held_mu);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += ms * 1000000;
	ts.tv_sec += ts.tv_nsec / 1000000000;
	ts.tv_nsec %= 1000000000;
	pthread_cond_timedwait(&held_cv, &held_mu, &ts);
	pthread_mutex_unlock(&held_mu);
	qrt.bql_lock(__FILE__, __LINE__);
}

/*
 * Parked: an async_run_on_cpu work item, so no instruction runs meanwhile.
 * It holds the BQL only to check and deliver, and leaves when the VM stops.
 */
static void
park_fn(CPUState *cpu, run_on_cpu_data data)
{
	long long t0 = shim_now_ns();
	int waited = 0;

	(void)cpu;
	(void)data;
	for (;; waited = 1) {
		const struct replay_action *a = replay_due();

		if (replay_is_free() || a == NULL || !debug_vm_running_or_held()) {
			parked = 0;
			return;
		}
		/* test-only (BHRR_TEST_PARK): what arrived is seen after one wait, as if late */
		if ((waited || !bhrr_cfg.test.park) && replay_available(a)) {
			parked = 0;
			replay_step();
			return;
		}
		if (shim_now_ns() - t0 > bhrr_cfg.watchdog_ms * 1000000ll) {
			parked = 0;
			replay_diverge("it did not arrive within %ld ms", bhrr_cfg.watchdog_ms);
			return;
		}
		/* a forced park (BHRR_TEST_PARK) waits once, briefly: its item is there */
		wait_unlocked(waited || !bhrr_cfg.test.park ? PARK_POLL_MS : 1);
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

int
policy_replay_parked(void)
{
	return parked;
}

void
policy_replay_land(void)
{
	const struct replay_action *a = replay_due();

	if (a != NULL && !a->a.at_io && a->slice == sched_done() &&
	    a->a.icount == __atomic_load_n(qrt.qemu_icount, __ATOMIC_ACQUIRE))
		replay_step();
}

/* From the executor (vCPU thread, BQL, exact icount): act on the log. */
static void
replay_step(void)
{
	while (!replay_is_free()) {
		const struct replay_action *a = replay_due();

		if (a == NULL) {
			if (!sched_turns_left())
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
		/* -smp: at this icount, but after as many vCPU turns as the record had? */
		if (sched_replaying() && !a->a.at_io && a->slice != sched_done()) {
			if (a->slice < sched_done())
				replay_diverge("the vCPUs have had %llu turns by icount %lld, the record %llu",
					       (unsigned long long)sched_done(), (long long)ic,
					       (unsigned long long)a->slice);
			return; /* vcpu_sched.c ends QEMU's round after that turn and lands it then */
		}
		if (a->a.kind == LOG_ACT_WARP)
			return;
		if (a->a.kind == LOG_ACT_MONITOR) {
			gate_mon_due(); /* the main loop runs it, with this vCPU stopped here */
			return;
		}
		if (a->a.at_io) {
			/* replay_io runs it during the access; the guest is past it */
			replay_diverge("the guest made no first device access at icount %lld, where the "
				       "record landed it", (long long)ic);
			return;
		}
		/* test-only (BHRR_TEST_PARK): park once for every action, whatever arrived */
		if (bhrr_cfg.test.park && forced != replay.next) {
			forced = replay.next;
			park();
			return;
		}
		if (!replay_take(a)) {
			park();
			return;
		}
		replay.next++;
	}
}

/*
 * A guest device access, before the device sees it (io_land.h; vCPU
 * thread, BQL, inside a TB).  At the first access of the instruction at an
 * action's icount, run every action the record landed at an access there,
 * in order, waiting for what has not arrived with the BQL released (as a
 * park does, bounded by the watchdog), then arm the executor for what
 * follows.
 */
static void
replay_io(void)
{
	long long t0 = 0;
	int took = 0;
	int64_t ic;

	if (!qrt.bql_locked())
		return; /* a device of its own locking: no action lands there (record's rule) */
	const struct replay_action *next = replay_due();

	/* the icount is read only when the next action is one at an access */
	if (replay_is_free() || next == NULL || !next->a.at_io ||
	    (sched_replaying() && next->slice != sched_done()) || !io_land_icount(&ic) ||
	    ic != next->a.icount)
		return;
	while (!replay_is_free()) {
		const struct replay_action *a = replay_due();

		if (a == NULL || !a->a.at_io || a->a.icount != ic || !debug_vm_running_or_held())
			break;
		/* test-only (BHRR_TEST_PARK): wait once for every action, as if it came late */
		if (bhrr_cfg.test.park && forced != replay.next) {
			forced = replay.next;
			replay.parks++;
			wait_unlocked(1);
			continue;
		}
		gate_land_flags = LOG_F_AT_IO;
		int got = replay_take(a);

		gate_land_flags = 0;
		if (got) {
			replay.next++;
			took = 1;
			continue;
		}
		if (t0 == 0) {
			t0 = shim_now_ns();
			replay.parks++;
		} else if (shim_now_ns() - t0 > bhrr_cfg.watchdog_ms * 1000000ll) {
			replay_diverge("it did not arrive within %ld ms, while the guest waited in a "
				       "device access", bhrr_cfg.watchdog_ms);
			break;
		}
		wait_unlocked(PARK_POLL_MS);
	}
	if (took)
		replay_arm();
}

/* ---- a guest asleep short of the next recorded event ---- */

#define IDLE_RECHECK_NS 100000000ll /* 100 ms */

static void *idle_timer;      /* a REALTIME QEMUTimer; set once by replay_start (main thread) */
static int64_t idle_ic = -1;  /* vCPU thread: the icount the guest was seen idle at */
static long long idle_since;  /* vCPU thread */

static void replay_warp(void);

static void
idle_fn(CPUState *cpu, run_on_cpu_data data)
{
	(void)cpu;
	(void)data;
	replay_warp();
}

/* REALTIME, main loop: look again from the vCPU thread, where the icount is exact. */
static void
idle_timer_cb(void *opaque)
{
	CPUState *cpu = qrt.get_cpu(0);

	(void)opaque;
	if (!replay_is_free() && cpu != NULL)
		qrt.async_run_on_cpu(cpu, idle_fn, (run_on_cpu_data){ .host_ptr = NULL });
}

/*
 * Every vCPU halted at icount @ic, short of the next recorded action @a:
 * nothing bhrr replays can move the icount there, only a warp could, and
 * the log has none here.  Asked of QEMU, not of the distance: if a guest
 * timer lies ahead (deadline > 0), QEMU warps in this state every time,
 * and the record logs each warp - so the recorded guest was not asleep
 * here, and the run has diverged: said at once.  With no guest timer at
 * all, only a host input bhrr does not replay could wake it: named after
 * BHRR_WATCHDOG_MS at the same icount.  vCPU thread, outside any TB.
 * 1 if it named a divergence.
 */
static int
idle_short(int64_t ic, const struct replay_action *a)
{
	if (a == NULL || a->a.icount <= ic || qrt_outside_tb() != 1 || !qrt.all_idle() ||
	    !debug_vm_running_or_held()) {
		idle_ic = -1;
		return 0;
	}
	int64_t deadline = qrt.deadline_ns_all(QRT_CLOCK_VIRTUAL, ~QRT_TIMER_ATTR_EXTERNAL);

	if (deadline > 0) {
		replay_diverge("the guest sleeps at icount %lld, short of it, with a guest timer due in "
			       "%lld ns: QEMU would warp the clock here, and the log has no warp here",
			       (long long)ic, (long long)deadline);
		return 1;
	}
	if (deadline == 0)
		return 0; /* a timer is expiring: the guest wakes */
	long long now = shim_now_ns();

	if (idle_ic != ic) {
		idle_ic = ic;
		idle_since = now;
	} else if (now - idle_since > bhrr_cfg.watchdog_ms * 1000000ll) {
		replay_diverge("the guest has slept at icount %lld, short of it, for %ld ms with no "
			       "timer and no recorded event that could wake it", (long long)ic,
			       bhrr_cfg.watchdog_ms);
		return 1;
	}
	if (idle_timer)
		qrt.timer_mod_ns(idle_timer, qrt.clock_get_ns(QRT_CLOCK_REALTIME) + IDLE_RECHECK_NS);
	return 0;
}

static void
replay_start(void)
{
	void *t = calloc(1, QRT_TIMER_BYTES); /* never freed: QEMU may fire it until exit */

	if (t == NULL)
		return;
	qrt.timer_init_full(t, NULL, QRT_CLOCK_REALTIME, QRT_SCALE_NS, 0, idle_timer_cb, NULL);
	idle_timer = t;
}

/* The warp hook while replaying: warp only where the log has a warp. */
static void
replay_warp(void)
{
	const struct replay_action *a = replay_due();
	int64_t ic = __atomic_load_n(qrt.qemu_icount, __ATOMIC_ACQUIRE);

	/* a vCPU held for a debugger is not asleep: nothing to warp or to find short */
	if (replay_is_free() || debug_holding())
		return;
	/*
	 * QEMU asks for a warp when every vCPU is idle.  A vCPU that halted
	 * exactly at the executor's deadline is never woken to run it (the
	 * deadline passed by execution, not by a timer_mod): re-arming from
	 * here kicks it.
	 */
	if (a != NULL && a->a.kind != LOG_ACT_WARP && a->a.icount <= ic) {
		replay_arm_kick(1);
		return;
	}
	if (executor_arming() || idle_short(ic, a) || a == NULL || a->a.kind != LOG_ACT_WARP)
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

/*
 * Main loop, every vCPU idle: hand the warp to the vCPU whenever a recorded
 * action remains - it is due (the vCPU halted at its deadline), or the
 * guest may be asleep short of it (idle_short decides, exactly).
 */
static int
replay_warp_due(void)
{
	return replay_due() != NULL;
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
	if (gate_in_executor || !debug_vm_running_or_held() ||
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

/*
 * The VM stops for good (a guest's shutdown request stopped its vCPU:
 * gate_power.h): what the log delivers at this very icount, the record
 * delivered here too - an item that arrived as the guest shut down and
 * that the stopped vCPU's work landed before the main loop stopped the VM.
 * In a replay the main loop may get there first: deliver those now rather
 * than end with them untaken.  The vCPUs are paused: the icount is exact.
 */
static size_t
take_at_stop(void)
{
	int64_t ic = __atomic_load_n(qrt.qemu_icount, __ATOMIC_ACQUIRE);
	size_t n = 0;

	for (;;) {
		const struct replay_action *a = replay_due();

		if (a == NULL || a->a.icount != ic || a->a.kind == LOG_ACT_WARP ||
		    a->a.kind == LOG_ACT_MONITOR || a->a.at_io || !replay_available(a) ||
		    !replay_take(a))
			return n;
		replay.next++;
		n++;
	}
}

static void
replay_vm_change(int running)
{
	if (running) {
		replay_arm();
	} else if (gate_mon_replaying()) {
		/*
		 * A recorded stop: the log goes on.  The record ran what it held at
		 * once here (policy_record_vm_change); run what no action calls for.
		 */
		size_t n = replay_run_unexpected();

		if (n)
			vlog("replay: a recorded stop ran %zu kept items at once", n);
	} else {
		size_t n = take_at_stop();

		if (n)
			vlog("replay: the VM stopped at the icount of %zu more recorded events; they "
			     "ran first", n);
		replay_free(replay_due() == NULL ? "end of the log" : "the VM stopped");
	}
}


const struct policy policy_replay = {
	.name = "replay",
	.start = replay_start,
	.bh = replay_bh,
	.complete = replay_complete,
	.execute = replay_step,
	.warp = replay_warp,
	.warp_due = replay_warp_due,
	.vm_change = replay_vm_change,
	.nested_poll = replay_nested_poll,
	.nested_stuck = replay_nested_stuck,
	.io = replay_io,
	.landing = 0,
};
