/*
 * vcpu_sched.c - the vCPUs' turns under -smp N (see vcpu_sched.h).
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emit.h"
#include "gate_mon.h"
#include "log.h"
#include "policy.h"
#include "qemu_args.h"
#include "qemu_rt.h"
#include "replay.h"
#include "settings.h"
#include "symbols.h"
#include "vcpu_sched.h"
#include "vlog.h"

#define SCHED_CPUS 256

enum { OFF = 0, RECORD = 1, REPLAY = 2 };

static int mode;          /* written once by sched_start (constructor), read by any thread */
static int asked = -1;    /* constructor: -smp's count, -1 not parsed yet */

/* ---- the vCPU thread's (all of it) ---- */
static CPUState *cpus[SCHED_CPUS]; /* by index, as met */
static int cur = -1;               /* the index of the vCPU in its turn, -1 between turns */
static int64_t turn_start;         /* the global icount at its start */
static int delivered;              /* it took a hardware interrupt */
static int64_t exc_at = -1;        /* the icount where it last entered an exception handler */
static int forcing;                /* replay: the turn is logged turn #done (or the rest of it) */
static int skipping;               /* replay: the turn is not the log's; it runs nothing */
static uint64_t done;              /* replay: the logged turns made so far */
static uint64_t partial;           /* replay: instructions of turn #done run in earlier tries */
static int got_delivery;           /* replay: turn #done's tries took an interrupt */
static long long stall_since;      /* replay: host ns since turn #done's tries run nothing, 0 not */

/*
 * Record: the last turn, not logged yet.  A vCPU's turns in a row, with the
 * others' between them unlogged, are logged as one: a replay's turn of that
 * length stops where the guest stopped itself (a pause, a halt) just as the
 * record's did, and where the record's stopped for a kick, nothing
 * happened that a replay must stop for - else an event would be logged in
 * between (sched_flush).  A spinning Linux vCPU otherwise logged a turn
 * per 10 instructions.  pend_mu: the vCPU thread merges, an event's thread
 * flushes.
 */
static pthread_mutex_t pend_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	unsigned cpu, flags;
	uint64_t ran;
	int64_t end;
} pend;                            /* pend_mu */
static int pend_has;               /* pend_mu; read without it as a hint */

static void (*real_prepare)(CPUState *cpu, int64_t budget);
static void (*real_process)(CPUState *cpu);
static void (*real_handle_deadline)(void);
static bool (*real_exec_interrupt)(CPUState *cpu, int request);
static void (*real_do_interrupt)(CPUState *cpu);
static bool (*real_exec_halt)(CPUState *cpu);

int
sched_cpus_asked(void)
{
	static char buf[65536];

	if (asked >= 0)
		return asked;
	asked = 1;
	FILE *f = fopen("/proc/self/cmdline", "r");

	if (f == NULL)
		return asked;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);

	fclose(f);
	buf[n] = 0;
	for (size_t i = 0; i < n; i += strlen(buf + i) + 1) {
		const char *a = buf + i;

		const char *v = i + strlen(a) + 1 < n ? buf + i + strlen(a) + 1 : "";

		if (strcmp(a, "-smp") == 0 || strcmp(a, "--smp") == 0)
			asked = qemu_smp_count(v);
		/* -machine ...,smp.cpus=N */
		else if ((strcmp(a, "-machine") == 0 || strcmp(a, "-M") == 0) && strstr(v, "smp.cpus="))
			asked = atoi(strstr(v, "smp.cpus=") + 9);
	}
	return asked;
}

/* The vCPU @cpu's index, -1 if QEMU does not know it. */
static int
index_of(CPUState *cpu)
{
	for (int i = 0; i < SCHED_CPUS; i++) {
		if (cpus[i] == NULL && (cpus[i] = qrt.get_cpu(i)) == NULL)
			return -1;
		if (cpus[i] == cpu)
			return i;
	}
	return -1;
}

/* Whether the replay has recorded control (its turns made, or made already). */
static int
replaying(void)
{
	return mode == REPLAY && !replay_is_free() && policy_current() == &policy_replay;
}

/* Whether the replay makes the logged turns now.  Any thread. */
static int
making(void)
{
	return replaying() && __atomic_load_n(&done, __ATOMIC_RELAXED) < replay.n_slices;
}

int
sched_active(void)
{
	return __atomic_load_n(&mode, __ATOMIC_RELAXED) != OFF;
}

int
sched_replaying(void)
{
	return making();
}

int
sched_turns_left(void)
{
	return mode == REPLAY && __atomic_load_n(&done, __ATOMIC_RELAXED) < replay.n_slices;
}

uint64_t
sched_done(void)
{
	return __atomic_load_n(&done, __ATOMIC_RELAXED);
}

/* Name a divergence from outside the BQL (between turns). */
static void
diverge(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
diverge(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	qrt.bql_lock(__FILE__, __LINE__);
	replay_diverge("%s", msg);
	qrt.bql_unlock();
}

/* Whether @cpu is halted with nothing to wake it (QEMU's cpu_thread_is_idle). */
static int
idle(CPUState *cpu)
{
	void *f = shim_qemu.sym[QS_CPU_THREAD_IS_IDLE].addr;

	return f != NULL && ((bool (*)(CPUState *))f)(cpu);
}

static void
hk_prepare(CPUState *cpu, int64_t budget)
{
	if (mode != OFF) {
		cur = index_of(cpu);
		turn_start = __atomic_load_n(qrt.qemu_icount, __ATOMIC_ACQUIRE);
		delivered = 0;
		exc_at = -1;
		forcing = skipping = 0;
		if (making()) {
			const struct replay_slice *s = &replay.slices[done];

			/* a park or a monitor command holds every vCPU where it is */
			if (s->cpu == (unsigned)cur && !policy_replay_parked() && !gate_mon_holding()) {
				forcing = 1;
				/* one more for the faulting instruction; its exception ends the turn */
				budget = (int64_t)(s->ran - partial) + !!(s->flags & LOG_F_AFTER_EXC);
			} else {
				skipping = 1;
				/*
				 * None: but a halted vCPU with nothing to wake it runs
				 * none anyway, and a budget of 0 makes QEMU wake the
				 * main loop - once per turn of a vCPU spinning on pause.
				 */
				if (!idle(cpu))
					budget = 0;
			}
		}
	}
	real_prepare(cpu, budget);
}

static void
round_end_fn(CPUState *cpu, run_on_cpu_data data)
{
	(void)cpu;
	(void)data;
}

/*
 * End QEMU's round after vCPU @idx's turn, and reach the outer iteration
 * even if every vCPU has halted: work queued for the next vCPU ends the
 * round where its turn would start (QEMU's ring is in index order; after
 * the last vCPU the round ends anyway, and the first one's work keeps the
 * thread from sleeping).  BQL.
 */
static void
end_round_after(int idx)
{
	CPUState *next = qrt.get_cpu(idx + 1);

	if (next == NULL)
		next = qrt.get_cpu(0);
	if (next != NULL)
		qrt.async_run_on_cpu(next, round_end_fn, (run_on_cpu_data){ .host_ptr = NULL });
}

/* Replay: logged turn #done ended as the record's did; what comes after it. */
static void
turn_made(const struct replay_slice *s)
{
	__atomic_store_n(&done, done + 1, __ATOMIC_RELAXED);
	partial = 0;
	got_delivery = 0;
	stall_since = 0;
	emit_slice(s->cpu, s->ran, s->flags, s->icount);
	qrt.bql_lock(__FILE__, __LINE__);
	const struct replay_action *a = replay_due();

	if (a == NULL && done == replay.n_slices) {
		replay_free("end of the log"); /* the last action was before the last turn */
	} else if (a != NULL && !replay_is_free()) {
		int exact = !a->a.at_io && a->a.icount_how == LOG_IC_EXACT;

		if (a->a.at_io && a->slice < done)
			replay_diverge("the guest made no device access at icount %lld in vCPU %u's turn "
				       "#%llu, where the record landed it", (long long)a->a.icount, s->cpu,
				       (unsigned long long)done - 1);
		else if (exact && (a->slice < done || (a->slice == done && a->a.icount != s->icount)))
			replay_diverge("the vCPUs' turn #%llu ended at icount %lld, and the record landed it "
				       "after turn #%llu", (unsigned long long)done - 1, (long long)s->icount,
				       (unsigned long long)a->slice - 1);
		else if (exact && a->slice == done)
			end_round_after(cur); /* it lands in the outer iteration that follows */
		if (done == replay.n_slices && !replay_is_free())
			policy_replay_arm(); /* the last turn: the executor stops the guest again */
	}
	qrt.bql_unlock();
}

/* Replay: a turn QEMU ran with the log's budget (or none) has ended at @end after @ran. */
static void
replay_turn_end(uint64_t ran, int64_t end)
{
	if (skipping) {
		long long now = shim_now_ns();

		if (ran != 0)
			diverge("vCPU %d ran %llu instructions in a turn that was to run none",
				cur, (unsigned long long)ran);
		else if (stall_since == 0)
			stall_since = now;
		else if (now - stall_since > bhrr_cfg.watchdog_ms * 1000000ll &&
			 !policy_replay_parked() && !gate_mon_holding())
			diverge("vCPU %u, whose turn #%llu is next, was not given one for %ld ms "
				"(a vCPU this run does not have?)", replay.slices[done].cpu,
				(unsigned long long)done, bhrr_cfg.watchdog_ms);
		return;
	}
	const struct replay_slice *s = &replay.slices[done];
	int want_exc = (s->flags & LOG_F_AFTER_EXC) != 0;

	partial += ran;
	got_delivery |= delivered;
	if (partial > s->ran) {
		diverge("vCPU %u ran %llu instructions in its turn #%llu, the record %llu%s", s->cpu,
			(unsigned long long)partial, (unsigned long long)done,
			(unsigned long long)s->ran,
			want_exc ? " and then entered an exception handler, which this run did not" : "");
		return;
	}
	/*
	 * Cut short (a kick, a deadline), or just short of the exception (one
	 * instruction's try more), or the record's took an interrupt this one
	 * has not yet: a timer the main loop runs raises it at a host-timed
	 * moment while the vCPUs wait at its deadline, so this turn waits too.
	 */
	if (partial < s->ran || (want_exc && exc_at != end) ||
	    ((s->flags & LOG_F_DELIVERED) && !got_delivery)) {
		/*
		 * Cut short by a kick, or by a timer due (QEMU gives no budget
		 * until it ran), or halted until a timer wakes it (as in the
		 * record: its turns in a row are one): the rest at its next turns.
		 * Unless nothing moves it for the watchdog's time.
		 */
		long long now = shim_now_ns();

		if (ran != 0 || stall_since == 0)
			stall_since = now;
		else if (now - stall_since > bhrr_cfg.watchdog_ms * 1000000ll)
			diverge("vCPU %u stopped after %llu of the %llu instructions of its turn #%llu, "
				"and ran none for %ld ms: it halted where the record ran on", s->cpu,
				(unsigned long long)partial, (unsigned long long)s->ran,
				(unsigned long long)done, bhrr_cfg.watchdog_ms);
		return;
	}
	if (end != s->icount) {
		diverge("vCPU %u's turn #%llu ended at icount %lld, the record's at %lld", s->cpu,
			(unsigned long long)done, (long long)end, (long long)s->icount);
		return;
	}
	turn_made(s);
}

void
sched_flush(void)
{
	if (!__atomic_load_n(&pend_has, __ATOMIC_ACQUIRE))
		return;
	pthread_mutex_lock(&pend_mu);
	if (pend_has)
		emit_slice(pend.cpu, pend.ran, pend.flags, pend.end);
	__atomic_store_n(&pend_has, 0, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&pend_mu);
}

/* Record: a turn ended; logged when the next one is not the same vCPU's, or an event comes. */
static void
record_turn(unsigned cpu, uint64_t ran, unsigned flags, int64_t end)
{
	pthread_mutex_lock(&pend_mu);
	/*
	 * A turn that took an interrupt starts a slice of its own: the
	 * interrupt may have been raised between the two turns (a timer of the
	 * outer iteration), or have waited for the turn's start - a turn QEMU
	 * gives no budget still takes a pending interrupt before it exits.  A
	 * replay's one merged turn of the two would stop at its budget without
	 * taking it, and take it only after the other vCPUs' turns and
	 * whatever lands after them: the guest's PIC would then pick another
	 * pending IRQ first (smp-race on IDE PIO: 15 of 100 replays diverged, 0 of 200 since).
	 */
	if (pend_has && pend.cpu == cpu && !(pend.flags & LOG_F_AFTER_EXC) &&
	    !(flags & LOG_F_DELIVERED)) {
		pend.ran += ran;
		flags |= pend.flags & LOG_F_DELIVERED; /* the first of them took an interrupt */
	} else {
		if (pend_has)
			emit_slice(pend.cpu, pend.ran, pend.flags, pend.end);
		pend.cpu = cpu;
		pend.ran = ran;
	}
	pend.flags = flags;
	pend.end = end;
	__atomic_store_n(&pend_has, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&pend_mu);
}

static void
hk_process(CPUState *cpu)
{
	real_process(cpu);
	if (mode == OFF || cur < 0)
		return;
	int64_t end = __atomic_load_n(qrt.qemu_icount, __ATOMIC_ACQUIRE);
	uint64_t ran = (uint64_t)(end - turn_start);

	if ((forcing || skipping) && !replay_is_free()) {
		replay_turn_end(ran, end);
	} else if (ran || delivered || exc_at == end) {
		record_turn((unsigned)cur, ran, (exc_at == end ? LOG_F_AFTER_EXC : 0) |
						(delivered ? LOG_F_DELIVERED : 0), end);
	}
	forcing = skipping = 0;
	cur = -1;
}

int64_t
sched_finish(void)
{
	unsigned how;
	int64_t end = -1;

	if (mode != OFF && cur >= 0 && qrt_role() == QRT_ROLE_VCPU &&
	    (end = qrt_icount_here(&how, QRT_ROLE_VCPU), how == LOG_IC_EXACT)) {
		uint64_t ran = (uint64_t)(end - turn_start);

		if (forcing) {
			const struct replay_slice *s = &replay.slices[done];

			if (partial + ran == s->ran) /* made: the record's run ended in it too */
				emit_slice(s->cpu, s->ran, s->flags, s->icount);
		} else if (!skipping && (ran || delivered)) {
			record_turn((unsigned)cur, ran, 0, end);
		}
		cur = -1;
	} else {
		end = -1;
	}
	sched_flush();
	return end;
}

void
sched_vm_running(void)
{
	static int said; /* the main thread's */

	if (mode != OFF || !qrt.exact || said || qrt.get_cpu(1) == NULL)
		return;
	said = 1;
	vlog_error("this VM has several vCPUs, but bhrr found no -smp above 1 on QEMU's command "
		   "line (-readconfig?): their turns are not %s, so this run cannot be repeated; "
		   "give -smp N", bhrr_cfg.mode == BHRR_REPLAY ? "made as recorded" : "recorded");
}

/* The outer iteration: the guest's timers due now first, then what the log lands here. */
static void
hk_handle_deadline(void)
{
	real_handle_deadline();
	if (replaying())
		policy_replay_land();
}

static bool
hk_exec_interrupt(CPUState *cpu, int request)
{
	/* not the log's turn: the interrupt waits for the vCPU's own */
	if (skipping)
		return false;
	bool r = real_exec_interrupt(cpu, request);

	if (r && cur >= 0)
		delivered = 1;
	return r;
}

static void
hk_do_interrupt(CPUState *cpu)
{
	unsigned how;

	real_do_interrupt(cpu);
	if (cur < 0)
		return;
	/* exact only where QEMU would read it itself (can_do_io): else it exits */
	int64_t ic = qrt_icount_here(&how, QRT_ROLE_VCPU);

	if (how != LOG_IC_EXACT)
		return;
	exc_at = ic;
	if (forcing) {
		const struct replay_slice *s = &replay.slices[done];

		/* the record's turn ended here, before the handler's first instruction */
		if ((s->flags & LOG_F_AFTER_EXC) && partial + (uint64_t)(exc_at - turn_start) == s->ran)
			((void (*)(CPUState *))shim_qemu.sym[QS_CPU_EXIT].addr)(cpu);
	}
}

/*
 * Not the log's turn: a halted vCPU stays halted, as a trivial turn of the
 * record's left it - else the interrupt that would wake it, held back by
 * hk_exec_interrupt, still woke it here, and it ran on from its hlt
 * without it in its next turn.
 */
static bool
hk_exec_halt(CPUState *cpu)
{
	if (skipping)
		return false;
	return real_exec_halt(cpu);
}

static const struct hook_spec hooks[] = {
	{ QS_ICOUNT_PREPARE_FOR_RUN, (void *)hk_prepare, (void **)&real_prepare },
	{ QS_ICOUNT_PROCESS_DATA, (void *)hk_process, (void **)&real_process },
	{ QS_ICOUNT_HANDLE_DEADLINE, (void *)hk_handle_deadline, (void **)&real_handle_deadline },
	{ QS_CPU_EXEC_INTERRUPT, (void *)hk_exec_interrupt, (void **)&real_exec_interrupt },
	{ QS_CPU_DO_INTERRUPT, (void *)hk_do_interrupt, (void **)&real_do_interrupt },
	{ QS_CPU_EXEC_HALT, (void *)hk_exec_halt, (void **)&real_exec_halt }, /* where it exists */
};

/* The first symbol -smp needs that this QEMU lacks, or NULL. */
static const char *
missing(void)
{
	static const enum qsym_id need[] = { QS_ICOUNT_PREPARE_FOR_RUN, QS_ICOUNT_PROCESS_DATA,
					     QS_ICOUNT_HANDLE_DEADLINE, QS_CPU_EXIT,
					     QS_CPU_EXEC_INTERRUPT, QS_CPU_DO_INTERRUPT };

	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if (shim_qemu.sym[need[i]].addr == NULL)
			return qsym_name(&shim_qemu, need[i]);
	/* before 8.1 it took no budget (and 7.2's Debian build does not export it) */
	if (shim_qemu.major > 0 && (shim_qemu.major < 8 || (shim_qemu.major == 8 && shim_qemu.minor < 1)))
		return "icount_prepare_for_run with a budget";
	return NULL;
}

const struct hook_spec *
sched_hooks(size_t *n)
{
	*n = 0;
	if (sched_cpus_asked() > 1 && missing() == NULL)
		*n = sizeof(hooks) / sizeof(hooks[0]) -
		     (shim_qemu.sym[QS_CPU_EXEC_HALT].addr == NULL); /* the last */
	return hooks;
}

int
sched_check(char *why, size_t len)
{
	const char *m;

	if (sched_cpus_asked() <= 1 || !qrt.exact)
		return 0;
	if ((m = missing()) != NULL) {
		snprintf(why, len, "-smp %d in exact mode: bhrr makes the vCPUs' turns at the "
			 "recorded icounts through QEMU's per-vCPU icount budget (8.1 and later), and "
			 "this QEMU (%s) has no %s; use -smp 1, or record the order of events only "
			 "(without sleep=off)", asked, shim_qemu.version[0] ? shim_qemu.version : "?", m);
		return -1;
	}
	if (qrt.icount_get_raw == NULL) {
		snprintf(why, len, "-smp %d in exact mode needs exact vCPU-thread icounts, and "
			 "CPUState's can_do_io was not found in this QEMU; use -smp 1", asked);
		return -1;
	}
	return 0;
}

void
sched_start(int record, int replay_on)
{
	if (sched_cpus_asked() <= 1 || !qrt.exact || missing() != NULL)
		return;
	__atomic_store_n(&mode, replay_on ? REPLAY : record ? RECORD : OFF, __ATOMIC_RELAXED);
	if (mode != OFF)
		vlog("%s: -smp %d: the vCPUs' turns are %s", replay_on ? "replay" : "record", asked,
		     replay_on ? "made as logged" : "logged");
}
