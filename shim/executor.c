/*
 * executor.c - the executor in the vCPU thread (see executor.h).
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "executor.h"
#include "gate.h"
#include "held.h"
#include "io_land.h"
#include "log.h"
#include "policy.h"
#include "qemu_rt.h"
#include "vcpu_sched.h"
#include "settings.h"
#include "vlog.h"

/* vCPU thread only */
static int64_t exec_target = -1;        /* the icount executor_arm_at set */
static int64_t deferred_at = -1;        /* virtual time of the last deferral */
/*
 * Under the BQL: the deadline the timer is pending for, -1 once it fired.  Every
 * arming holds the BQL (the gate, completions, the executor, work items on
 * the vCPU), and so does QEMU when it runs the timer.
 */
static int64_t armed_ns = -1;
static unsigned long long landings;
static __thread int arming;             /* this thread */
static atomic_int land_queued;          /* any thread: a land_fn is queued for the vCPU */

static void executor_cb(void *opaque);
static void fallback_cb(void *opaque);

static void *fallback;                  /* REALTIME QEMUTimer; set once by executor_lazy_init */
static int fallback_armed;              /* BQL */
static int64_t waiting_since = -1;      /* BQL: REALTIME ns since which something waits for an access; -1 none */
static unsigned io_streak;              /* BQL: landings at accesses since the last fallback kick */
static atomic_ullong io_landings, fallbacks;

void
executor_lazy_init(void)
{
	static int done; /* main thread only */

	if (done)
		return;
	done = 1;
	if (qrt.exact) {
		void *t = calloc(1, QRT_TIMER_BYTES); /* never freed: QEMU may fire it until exit */

		if (t == NULL) {
			vlog_error("out of memory for the executor's timer; events run where they arrive");
		} else {
			qrt.timer_init_full(t, NULL, QRT_CLOCK_VIRTUAL, QRT_SCALE_NS,
					    QRT_TIMER_ATTR_EXTERNAL, executor_cb, NULL);
			__atomic_store_n(&qrt.timer, t, __ATOMIC_RELEASE);
		}
		if (io_land_active() && qrt.timer_del != NULL &&
		    (fallback = calloc(1, QRT_TIMER_BYTES)) != NULL) /* never freed, as above */
			qrt.timer_init_full(fallback, NULL, QRT_CLOCK_REALTIME, QRT_SCALE_NS, 0,
					    fallback_cb, NULL);
	}
	if (policy_current()->start)
		policy_current()->start();
}

static void *
timer(void)
{
	return __atomic_load_n(&qrt.timer, __ATOMIC_ACQUIRE);
}

/* timer_mod_ns, which also kicks the vCPU to recompute its budget; BQL. */
static void
arm(int64_t deadline)
{
	armed_ns = deadline;
	qrt.timer_mod_ns(timer(), deadline);
}

void
executor_arm_at(int64_t ic)
{
	exec_target = ic;
	arm(qrt_deadline_of(ic));
}

/*
 * The vCPU, between TBs (a work item, so the icount is exact): arm the
 * executor one instruction on, where the budget stops the vCPU as a
 * replay's would, or here if the vCPU halted - record's landing rule
 * applied before the executor fires rather than after, which saves the
 * firing at the kick and its second exit.  Left alone when the executor
 * is due no later anyway.
 */
static void
land_fn(CPUState *cpu, run_on_cpu_data data)
{
	(void)cpu;
	(void)data;
	atomic_store(&land_queued, 0);
	qrt_assert_bql("the executor's landing");
	unsigned how;
	int64_t ic = qrt_icount_now(&how, 1);
	/* -smp: a replay ends QEMU's round wherever the record's did (vcpu_sched.h) */
	int64_t target = qrt.all_idle() || sched_active() ? ic : ic + 1;

	if (armed_ns != -1 && armed_ns <= qrt_deadline_of(target))
		return;
	executor_arm_at(target);
}

void
executor_arm_now(void)
{
	CPUState *cpu;

	if (timer() == NULL)
		return;
	/* the vCPU thread itself (mid-TB) or no vCPU: due now; land_later moves it on */
	if (qrt.in_vcpu_thread() || (cpu = qrt.get_cpu(0)) == NULL) {
		arm(qrt.clock_get_ns(QRT_CLOCK_VIRTUAL));
		return;
	}
	if (atomic_exchange(&land_queued, 1))
		return; /* the queued one lands everything held by then */
	qrt.async_run_on_cpu(cpu, land_fn, (run_on_cpu_data){ .host_ptr = NULL });
}

/* The first held item, taken: 1, or 0 when none is held. */
static int
take_first(struct held *h)
{
	pthread_mutex_lock(&held_mu);
	int got = held_q.n > 0;

	if (got)
		*h = heldq_take(&held_q, 0);
	pthread_mutex_unlock(&held_mu);
	return got;
}

static int
not_input(const struct held *h, const void *arg)
{
	(void)arg;
	return h->kind != HELD_CHR && h->kind != HELD_RNG && h->kind != HELD_NET &&
	       h->kind != HELD_TIMER;
}

/*
 * The first held item but console input or entropy, taken: for the drains
 * that run items at once, outside recorded control (a stopped VM, a nested
 * poll, a full queue).  Input waits for an exact landing instead: no poll
 * waits for it, and replay could not deliver it where it ran at once.
 */
static int
take_first_not_input(struct held *h)
{
	pthread_mutex_lock(&held_mu);
	size_t i = heldq_find(&held_q, 0, not_input, NULL);
	int got = i < held_q.n;

	if (got)
		*h = heldq_take(&held_q, i);
	pthread_mutex_unlock(&held_mu);
	return got;
}

/*
 * How long work waits for a device access before the fallback kicks: the
 * configured 300 us; 2 ms while the guest is landing everything at its
 * accesses (the last 16 landings or more were there); 16 ms once the last
 * 256 were.  A guest that polls a device lands work long before any of
 * these bounds, and then each longer one lets the timer fire that much less
 * often: at 2 ms, a stream of IDE PIO completions still woke the main loop
 * 350 times a second, each time taking the BQL from the busy vCPU, about 2%
 * of the record's time.  The first kick after the guest stops accessing
 * devices comes up to one bound late, and then the bound is 300 us again.
 * BQL.
 */
#define IO_STREAK 16
#define IO_STREAK_LONG 256
#define STREAK_BOUND_NS 2000000
#define LONG_STREAK_BOUND_NS 16000000

static int64_t
bound_ns(void)
{
	int64_t b = (int64_t)bhrr_cfg.test.land_fallback_us * 1000;
	int64_t streak = io_streak >= IO_STREAK_LONG ? LONG_STREAK_BOUND_NS
		       : io_streak >= IO_STREAK    ? STREAK_BOUND_NS
						   : 0;

	return b < streak ? streak : b;
}

/*
 * The fallback is a REALTIME timer, and it is not armed per held item nor
 * deleted at each landing: every arming of a QEMU timer wakes the main
 * loop (qemu_notify_event), and a deleted timer's deadline still ends the
 * main loop's sleep, which then takes the BQL from a vCPU that is busy
 * with device accesses - per completion, that wake-up and hand-over cost
 * IDE PIO more than the rest of record together.  Instead it is armed
 * when work starts to wait and nothing is armed, and when it fires it
 * kicks only if work has waited the whole bound; else it re-arms for the
 * end of the bound of what waits now, or stops when nothing does.  A
 * stream of completions landed at accesses then costs at most one wake-up
 * per bound instead of one or two per completion.  And the arming itself
 * no longer wakes the main loop when the main loop's thread arms it - a
 * held completion's BH, or the fallback re-arming - since that thread
 * computes its next sleep from the timers anyway (gate_quiet_notify):
 * that wake-up was one more main-loop iteration per bound.
 */
static void
arm_fallback(int64_t deadline)
{
	int quiet = qrt_role() == QRT_ROLE_MAIN;

	fallback_armed = 1;
	gate_quiet_notify = quiet;
	qrt.timer_mod_ns(fallback, deadline);
	gate_quiet_notify = 0;
}

void
executor_arm_soon(void)
{
	if (fallback == NULL || qrt.all_idle()) {
		executor_arm_now();
		return;
	}
	int64_t now = qrt.clock_get_ns(QRT_CLOCK_REALTIME);

	if (waiting_since < 0)
		waiting_since = now;
	if (fallback_armed)
		return;
	arm_fallback(waiting_since + bound_ns());
}

/* REALTIME, main loop, BQL: kick if work waited the whole bound for a device access. */
static void
fallback_cb(void *opaque)
{
	(void)opaque;
	fallback_armed = 0;
	if (!held_count(0)) {
		waiting_since = -1;
		return;
	}
	int64_t bound = bound_ns();
	int64_t now = qrt.clock_get_ns(QRT_CLOCK_REALTIME);

	if (waiting_since < 0)
		waiting_since = now; /* held by a path that does not arm the fallback */
	if (now - waiting_since < bound) {
		arm_fallback(waiting_since + bound);
		return;
	}
	waiting_since = -1;
	io_streak = 0;
	atomic_fetch_add(&fallbacks, 1);
	executor_arm_now();
}

void
executor_land_io(int64_t ic)
{
	int ran = 0;

	qrt_assert_bql("a landing at an I/O access");
	gate_land_flags = LOG_F_AT_IO;
	for (struct held h; take_first(&h);) {
		gate_run_held(&h, LOG_IC_EXACT, ic, 0);
		ran = 1;
	}
	gate_land_flags = 0;
	if (!ran)
		return;
	atomic_fetch_add(&io_landings, 1);
	if (io_streak < IO_STREAK_LONG)
		io_streak++;
	waiting_since = -1; /* the fallback, if armed, finds nothing to do or re-arms */
}

unsigned long long
executor_io_landings(void)
{
	return io_landings;
}

unsigned long long
executor_fallbacks(void)
{
	return fallbacks;
}

void
executor_arm_for(int64_t ic, int kick)
{
	if (timer() == NULL || arming)
		return;
	int64_t deadline = qrt_deadline_of(ic);

	/*
	 * Pending for this very deadline already: the vCPU's budget ends
	 * there, so re-arming would only kick it out of its TB for nothing -
	 * once per arriving completion in a replay.
	 */
	if (deadline == armed_ns && !kick)
		return;
	arming = 1;
	arm(deadline);
	arming = 0;
}

int
executor_pending_at(int64_t ns)
{
	return armed_ns == ns;
}

int
executor_arming(void)
{
	return arming;
}

void
executor_drain(unsigned how)
{
	for (struct held h; how == LOG_IC_EXACT ? take_first(&h) : take_first_not_input(&h);) {
		unsigned ih;
		int64_t ic = qrt_icount_now(&ih, how == LOG_IC_EXACT);

		gate_run_held(&h, ih, ic, how == LOG_IC_EXACT ? 0 : LOG_F_AT_ONCE);
	}
	/* nothing waits now: the next held item's wait starts when it comes */
	if (qrt.bql_locked == NULL || qrt.bql_locked())
		waiting_since = -1;
}

unsigned long long
executor_landings(void)
{
	return landings;
}

/*
 * Where a record may run held items: only where a replay can stop too.  A
 * replay stops the vCPU by its icount budget, before the next instruction.
 * An executor armed "now" fires wherever a kick lands, anywhere the vCPU
 * checks for an exit - also just after it entered an exception handler
 * for a faulting instruction, at the very same icount (the fault executed
 * nothing), where an interrupt then waits for the handler to enable it
 * again instead of arriving at once.  So unless the vCPU halted (after its
 * hlt, the same place either way) or the executor fired exactly where the
 * vCPU thread armed it, move on one instruction, placed by the budget as
 * in replay.  1 if it moved on.  land_fn applies the same rule before the
 * executor fires; this one catches what was armed "now" regardless.
 * Under -smp there is no such rule: a replay makes the record's turns,
 * and ends one just after an exception entry where the record's ended
 * there (vcpu_sched.h).
 */
static int
land_later(void)
{
	unsigned how;
	int64_t ic = qrt_icount_now(&how, 1);

	if (ic == exec_target || qrt.all_idle() || sched_active())
		return 0;
	landings++;
	executor_arm_at(ic + 1);
	return 1;
}

static void
executor_cb(void *opaque)
{
	(void)opaque;
	qrt_assert_bql("the executor");
	armed_ns = -1;
	/*
	 * One rule for the order of timers due at the same virtual time, the
	 * same in record and replay: the guest's own first, then bhrr's.  (A
	 * record arms the executor in the past, a replay exactly on time, so
	 * QEMU's insertion order would differ between the two.)  Re-armed for
	 * now, the executor runs again in this same pass, after them.
	 */
	int64_t now = qrt.clock_get_ns(QRT_CLOCK_VIRTUAL);

	if (now != deferred_at &&
	    qrt.deadline_ns_all(QRT_CLOCK_VIRTUAL, ~QRT_TIMER_ATTR_EXTERNAL) == 0) {
		deferred_at = now;
		arm(now);
		return;
	}
	deferred_at = -1;
	const struct policy *p = policy_current();

	if (p->landing && land_later())
		return;
	p->execute();
}
