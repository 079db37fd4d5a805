/*
 * gate_clock.c - the host clocks the guest sees (see gate_clock.h).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "emit.h"
#include "gate.h"
#include "gate_clock.h"
#include "log.h"
#include "policy.h"
#include "qemu_rt.h"
#include "replay.h"
#include "symbols.h"
#include "vcpu_sched.h"
#include "vlog.h"

enum { QCLK_REALTIME = 0, QCLK_HOST = 2 }; /* QEMUClockType, include/qemu/timer.h */

#define TIMERS_MAX 32

/* A device's timer on a gated clock. */
struct gtimer {
	void *ts;            /* its QEMUTimer; NULL once its memory may be another timer's */
	int type;            /* its clock */
	QEMUTimerCB *cb;     /* the device's callback and opaque */
	void *opaque;
	int64_t deadline;    /* the last one the device set */
	int phantom;         /* QEMU sees it pending, off every list: record, fired and not landed; replay, armed */
	int held;            /* record: a HELD_TIMER for it is queued */
};

static enum { CLK_OFF, CLK_RECORD, CLK_REPLAY } mode; /* set once, before main() */
static int gating;              /* exact record or replay: host clocks too; set once */
static int layout_ok;           /* QEMUTimer's fields where bhrr expects them; set once */
static int configured;          /* configure_rtc has run (main thread, then read-only) */
static int rtc_type = -1;       /* the RTC's clock, after configure_rtc */
static int in_configure;        /* main thread: inside configure_rtc */
static int creating;            /* main thread: the machine's creation, configure_rtc to the main loop's first turn */
static int resetting;           /* BQL: inside qemu_system_reset */
static __thread int in_timer;   /* this thread runs a gated timer's callback */
static struct gtimer timers[TIMERS_MAX]; /* BQL; entries below n_timers never move */
static unsigned n_timers;       /* written with the BQL, release; read by any thread, acquire */
static int said_full;           /* BQL */
static int deferred;            /* replay, BQL: arm pending timers once live input is free */
static atomic_ullong n_reads, n_landed;
/*
 * Replay, once the log no longer answers (BQL): the guest's clocks go on
 * from the last recorded value, not from the host's now (hours or a reboot
 * away): reads for the guest get the host's value plus an offset, and
 * gated timers are armed that much earlier.  Indexed by clock type (0, 2).
 */
static int64_t last_answer[3];
static int64_t live_off[3];
static int live_set[3];
static unsigned char defer_timer[QRT_TIMER_BYTES]; /* arms pending timers at the recording's end */

static void (*real_configure_rtc)(void *opts);
static int64_t (*real_clock_get_ns)(int type);
static void (*real_timer_init_full)(void *ts, void *tlg, int type, int scale, int attrs,
				    QEMUTimerCB *cb, void *opaque);
static void (*real_timer_mod_ns)(void *ts, int64_t expire);
static void (*real_timer_mod_anticipate_ns)(void *ts, int64_t expire);
static void (*real_system_reset)(int reason);

void
gate_clock_start(int recording, int replaying, int gate_record, int gate_replay)
{
	mode = recording ? CLK_RECORD : replaying ? CLK_REPLAY : CLK_OFF;
	gating = (recording && gate_record) || (replaying && gate_replay);
}

/* QEMUTimer's expire_time: offset 0 since QEMU 1.x (checked by gate_clock_bind). */
static inline int64_t *
expire_of(void *ts)
{
	return (int64_t *)ts;
}

void
gate_clock_bind(void)
{
	/* bhrr's own clock reads and timers are not the guest's */
	if (real_clock_get_ns)
		qrt.clock_get_ns = real_clock_get_ns;
	if (real_timer_init_full)
		qrt.timer_init_full = real_timer_init_full;
	if (real_timer_mod_ns)
		qrt.timer_mod_ns = real_timer_mod_ns;
	if (!gating)
		return;
	/*
	 * Without configure_rtc (static in 5.2) bhrr cannot tell when the
	 * machine is made or which clock the RTC runs on, so it leaves the
	 * host's clock alone: a guest that reads it (an RTC without clock=vm
	 * and a fixed base) replays differently.
	 */
	if (shim_qemu.sym[QS_CONFIGURE_RTC].addr == NULL) {
		gating = 0;
		vlog_say("clock: this QEMU has no configure_rtc to hook (static in 5.2), so host "
			 "clocks are not recorded: a guest that reads its RTC replays only with "
			 "-rtc clock=vm,base=<a fixed date>");
		return;
	}
	/* a probe: QEMU's timer_init_full writes expire_time -1, cb and opaque */
	static unsigned char probe[QRT_TIMER_BYTES];

	memset(probe, 0x5a, sizeof(probe));
	qrt.timer_init_full(probe, NULL, QRT_CLOCK_VIRTUAL, QRT_SCALE_NS, 0, (QEMUTimerCB *)gate_clock_bind,
			    probe + 8);
	void **p = (void **)probe;

	layout_ok = *expire_of(probe) == -1 && p[2] == (void *)gate_clock_bind && p[3] == probe + 8;
	if (!layout_ok) {
		gating = 0;
		vlog_error("clock: QEMUTimer's layout is not the one bhrr knows; host clocks (an RTC on "
			   "clock=host or clock=rt) are not recorded");
	}
}

/* Whether reads of clock @type are gated now. */
static inline int
gated_type(int type)
{
	if (type == QCLK_HOST)
		return 1;
	if (type == QCLK_REALTIME)
		return in_configure || rtc_type == QCLK_REALTIME;
	return 0;
}

/* Whether a read made now, in this thread, is made for the guest. */
static int
for_guest(void)
{
	enum qrt_role r = qrt_role();

	if (r == QRT_ROLE_VCPU)
		return gate_in_access || gate_in_executor || in_timer || resetting;
	if (r == QRT_ROLE_MAIN)
		return in_configure || creating || resetting || in_timer;
	return 0;
}

static unsigned
what_of(int type)
{
	return type == QCLK_HOST ? LOG_HC_HOST : LOG_HC_REALTIME;
}

/* Replay: the recorded answer to this read, in @v; 0, or -1 (the host's clock answers). */
static int
answer(int type, int64_t *v)
{
	if (replay_forcing_ended())
		return -1;
	if (replay.next_read >= replay.n_reads &&
	    (replay.n_reads == 0 || replay_input_free()))
		return -1; /* a log without reads (an older bhrr), or past the recording's end */
	unsigned how;
	int64_t ic = qrt_icount_here(&how, qrt_role());
	const char *name = type == QCLK_HOST ? "host" : "realtime";

	if (replay.next_read >= replay.n_reads) {
		const struct replay_read *last = &replay.reads[replay.n_reads - 1];

		replay_diverge_at(last->seq, "no more reads of a host clock",
				  "the guest read the %s clock again at icount %lld, past the %zu recorded "
				  "reads", name, (long long)ic, replay.n_reads);
		return -1;
	}
	const struct replay_read *r = &replay.reads[replay.next_read];

	if (r->what != what_of(type) || r->how != how ||
	    (how == LOG_IC_EXACT && r->icount != ic)) {
		char exp[96];

		snprintf(exp, sizeof(exp), "a read of the %s clock at icount %s%lld",
			 log_host_clock_name(r->what), r->how == LOG_IC_EXACT ? "" : ">=",
			 (long long)r->icount);
		replay_diverge_at(r->seq, exp, "the guest read the %s clock at icount %s%lld", name,
				  how == LOG_IC_EXACT ? "" : ">=", (long long)ic);
		return -1;
	}
	replay.next_read++;
	*v = r->value;
	last_answer[type] = r->value;
	emit_host_clock_read(r->what, r->value, how, ic);
	return 0;
}

/* Replay without answers: how far the guest's clock @type is from the host's (BQL). */
static int64_t
offset_of(int type)
{
	if (!live_set[type]) {
		live_set[type] = 1;
		live_off[type] = last_answer[type] ? last_answer[type] - real_clock_get_ns(type) : 0;
		if (live_off[type])
			vlog("clock: the replay's %s clock goes on from the recording's, %+lld ns from "
			     "the host's", type == QCLK_HOST ? "host" : "realtime",
			     (long long)live_off[type]);
	}
	return live_off[type];
}

static int64_t
hk_clock_get_ns(int type)
{
	int64_t v;

	if (!gating || !gated_type(type) || !for_guest())
		return real_clock_get_ns(type);
	atomic_fetch_add(&n_reads, 1);
	if (mode == CLK_REPLAY && answer(type, &v) == 0)
		return v;
	v = real_clock_get_ns(type);
	if (mode == CLK_REPLAY)
		v += offset_of(type);
	if (mode == CLK_RECORD || replay_is_free()) {
		unsigned how;
		int64_t ic = qrt_icount_here(&how, qrt_role());

		emit_host_clock_read(what_of(type), v, how, ic);
	}
	return v;
}

/* What the guest's RTC reads now, "YYYY-MM-DDTHH:MM:SS" in @buf; 0, or -1. */
static int
rtc_now(char *buf, size_t len)
{
	struct tm tm;
	/* the offset is an int in 7.2, a time_t later: a long fills the register either way */
	void (*get)(struct tm *, long) = (void (*)(struct tm *, long))
		shim_qemu.sym[QS_QEMU_GET_TIMEDATE].addr;

	memset(&tm, 0, sizeof(tm));
	get(&tm, 0L);
	return strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm) > 0 ? 0 : -1;
}

static void
hk_configure_rtc(void *opts)
{
	char now[32];

	in_configure = 1;
	real_configure_rtc(opts);
	in_configure = 0;
	configured = 1;
	creating = 1;
	rtc_type = *(int *)shim_qemu.sym[QS_RTC_CLOCK].addr;
	if (gating && (rtc_type == QCLK_HOST || rtc_type == QCLK_REALTIME))
		vlog("clock: the guest's RTC runs on the host's clock (%s): its reads and timers are "
		     "%s", rtc_type == QCLK_HOST ? "clock=host" : "clock=rt",
		     mode == CLK_RECORD ? "recorded" : "replayed");
	if (mode == CLK_OFF || rtc_now(now, sizeof(now)) < 0)
		return;
	emit_host_clock(LOG_HC_RTC_START, now); /* a replay's log keeps it too: it can be replayed in turn */
	if (mode == CLK_RECORD) {
		vlog("clock: the guest's RTC starts at %s", now);
		return;
	}
	if (replay.rtc_start[0] && strcmp(now, replay.rtc_start) != 0)
		replay_diverge_at(replay.rtc_seq, "the RTC's start",
				  "the guest's RTC starts at %s, the recording's at %s (an -rtc base that "
				  "follows the host: bhrr replay gives it base=%s)", now, replay.rtc_start,
				  replay.rtc_start);
}

static void
hk_system_reset(int reason)
{
	resetting++;
	real_system_reset(reason);
	resetting--;
}

/*
 * Replay: whether timers fire at host time again - recorded control ended
 * early, or the replay has passed the recording's end.  BQL.
 */
static int
timers_live(void)
{
	return replay_forcing_ended() || replay_input_free();
}

void
gate_clock_turn(void)
{
	creating = 0;
	if (deferred && timers_live()) {
		deferred = 0;
		gate_clock_free();
	}
}

/* The gated timer of QEMUTimer @ts, or NULL; any thread. */
static struct gtimer *
find(void *ts)
{
	unsigned n = __atomic_load_n(&n_timers, __ATOMIC_ACQUIRE);

	for (unsigned i = 0; i < n; i++)
		if (timers[i].ts == ts)
			return &timers[i];
	return NULL;
}

/* Run @g's callback for the guest now, logged as a host_timer at @icount. */
static void
land(struct gtimer *g, unsigned how, int64_t icount, uint64_t flags)
{
	g->phantom = 0;
	*expire_of(g->ts) = -1; /* as timerlist_run_timers leaves a timer it runs */
	emit_host_timer((unsigned)(g - timers), how, icount, flags);
	atomic_fetch_add(&n_landed, 1);
	gate_in_executor++;
	in_timer++;
	g->cb(g->opaque);
	in_timer--;
	gate_in_executor--;
}

/* QEMU's callback for every gated timer: it fired at host time (main loop, BQL). */
static void
fired(void *opaque)
{
	struct gtimer *g = opaque;

	if (mode != CLK_RECORD) {
		/* a replay armed it for real once recorded control ended */
		unsigned how;
		int64_t ic = qrt_icount_now(&how, 0);

		emit_host_timer((unsigned)(g - timers), how, ic, LOG_F_AT_ONCE);
		in_timer++;
		g->cb(g->opaque);
		in_timer--;
		return;
	}
	/* still pending for the device until it lands */
	*expire_of(g->ts) = g->deadline;
	g->phantom = 1;
	if (g->held)
		return;
	struct held h = { .kind = HELD_TIMER, .fe = (unsigned)(g - timers) };

	if (held_add(&h) == 0) {
		g->held = 1;
		policy_record_arm_held();
		return;
	}
	unsigned how;
	int64_t ic = qrt_icount_now(&how, 0);

	vlog_error("clock: cannot hold timer %u; it runs at once, outside recorded control",
		   (unsigned)(g - timers));
	land(g, how, ic, LOG_F_AT_ONCE);
}

void
gate_clock_run_held(struct held *h, unsigned how, int64_t icount, uint64_t flags)
{
	struct gtimer *g = &timers[h->fe];

	g->held = 0;
	if (!g->phantom || g->ts == NULL || *expire_of(g->ts) < 0)
		return; /* the device moved, deleted or freed it since: nothing fired for the guest */
	land(g, how, icount, flags);
}

int
gate_clock_inject_timer(uint64_t timer, unsigned how, int64_t icount, uint64_t flags, char *why,
			size_t whylen)
{
	struct gtimer *g = timer < n_timers ? &timers[timer] : NULL;

	if (g == NULL || !g->phantom || g->ts == NULL || *expire_of(g->ts) < 0) {
		snprintf(why, whylen, "host-clock timer %llu is %s", (unsigned long long)timer,
			 g == NULL ? "unknown here" : "not pending");
		return -1;
	}
	land(g, how, icount, flags);
	return 0;
}

static void deferred_due(void *opaque);

void
gate_clock_free(void)
{
	if (mode != CLK_REPLAY || !gating)
		return;
	if (!timers_live()) {
		/*
		 * Not before the recording's end: the recording fired none there.
		 * The main loop may sleep through it (no timer of its own due), so
		 * a virtual timer at that icount wakes this up too.
		 */
		if (!deferred && replay.end_icount >= 0) {
			real_timer_init_full(defer_timer, NULL, QRT_CLOCK_VIRTUAL, QRT_SCALE_NS, 0,
					     deferred_due, NULL);
			real_timer_mod_ns(defer_timer, qrt_deadline_of(replay.end_icount));
		}
		deferred = 1;
		return;
	}
	deferred = 0;
	for (unsigned i = 0; i < n_timers; i++)
		if (timers[i].ts && timers[i].phantom && *expire_of(timers[i].ts) >= 0) {
			timers[i].phantom = 0;
			real_timer_mod_ns(timers[i].ts, timers[i].deadline - offset_of(timers[i].type));
		}
}

/* The recording's end passed (a virtual timer, BQL): arm what the replay kept pending. */
static void
deferred_due(void *opaque)
{
	(void)opaque;
	if (deferred && timers_live())
		gate_clock_free();
	else if (deferred)
		real_timer_mod_ns(defer_timer, qrt_deadline_of(replay.end_icount) + 1000000);
}

/*
 * Whether a timer QEMU makes now fires for the guest: on a gated clock, in
 * the main loop's timer list, after configure_rtc.  On the realtime clock
 * only the machine's own (made in its creation: the RTC's), not those that
 * the monitor or the display make as they go.
 */
static int
gated_timer(void *tlg, int type)
{
	if (!gating || !configured || tlg != NULL || !gated_type(type))
		return 0;
	if (type == QCLK_REALTIME && !creating)
		return 0;
	enum qrt_role r = qrt_role();

	return r == QRT_ROLE_MAIN || r == QRT_ROLE_VCPU;
}

static void
hk_timer_init_full(void *ts, void *tlg, int type, int scale, int attrs, QEMUTimerCB *cb,
		   void *opaque)
{
	/* a freed timer's memory made into another: its entry is dead (its ordinal stays) */
	struct gtimer *old = __atomic_load_n(&n_timers, __ATOMIC_RELAXED) ? find(ts) : NULL;

	if (old != NULL) {
		old->ts = NULL;
		old->phantom = 0;
	}
	/*
	 * -smp: QEMU's round-robin kick timer, the one virtual timer the vCPU
	 * thread makes, is armed and deleted at host-timed moments (whenever
	 * the vCPUs stop or start being all idle), so a warp must not stop at
	 * its deadline: it is QEMU's, not the guest's (vcpu_sched.h).
	 */
	if (type == QRT_CLOCK_VIRTUAL && opaque == NULL && sched_active() && qrt.in_vcpu_thread())
		attrs |= QRT_TIMER_ATTR_EXTERNAL;
	if (!gated_timer(tlg, type)) {
		real_timer_init_full(ts, tlg, type, scale, attrs, cb, opaque);
		return;
	}
	unsigned n = n_timers;

	if (n == TIMERS_MAX) {
		if (!said_full) {
			said_full = 1;
			vlog_error("clock: more than %d timers on the host's clock; the others fire at "
				   "host time, unrecorded", TIMERS_MAX);
		}
		real_timer_init_full(ts, tlg, type, scale, attrs, cb, opaque);
		return;
	}
	struct gtimer *g = &timers[n];

	*g = (struct gtimer){ .ts = ts, .type = type, .cb = cb, .opaque = opaque, .deadline = -1 };
	real_timer_init_full(ts, tlg, type, scale, attrs, fired, g);
	__atomic_store_n(&n_timers, n + 1, __ATOMIC_RELEASE);
	vlog("clock: timer %u on the %s clock (callback +%#lx) fires for the guest", n,
	     type == QCLK_HOST ? "host" : "realtime",
	     (unsigned long)((char *)(void *)cb - (char *)shim_qemu.exe_base));
}

static void
hk_timer_mod_ns(void *ts, int64_t expire)
{
	struct gtimer *g = __atomic_load_n(&n_timers, __ATOMIC_RELAXED) ? find(ts) : NULL;

	if (g == NULL) {
		real_timer_mod_ns(ts, expire);
		return;
	}
	if (expire < 0)
		expire = 0; /* as timer_mod_ns_locked does */
	g->deadline = expire;
	if (mode == CLK_REPLAY && !timers_live()) {
		/* pending for the device; the log says when it fires */
		*expire_of(ts) = expire;
		g->phantom = 1;
		return;
	}
	g->phantom = 0;
	if (mode == CLK_REPLAY) {
		/*
		 * The device's deadline is on the guest's clock, off the host's by
		 * the offset: QEMU's timer list compares with the host's, so the
		 * timer goes there translated (and the device reads that back).
		 */
		real_timer_mod_ns(ts, expire - offset_of(g->type));
		return;
	}
	real_timer_mod_ns(ts, expire);
}

static void
hk_timer_mod_anticipate_ns(void *ts, int64_t expire)
{
	struct gtimer *g = __atomic_load_n(&n_timers, __ATOMIC_RELAXED) ? find(ts) : NULL;

	if (g == NULL) {
		real_timer_mod_anticipate_ns(ts, expire);
		return;
	}
	int64_t cur = *expire_of(ts);

	if (cur < 0 || expire < cur)
		hk_timer_mod_ns(ts, expire);
}

unsigned long long
gate_clock_reads(void)
{
	return n_reads;
}

unsigned long long
gate_clock_timers(void)
{
	return n_landed;
}

static const struct hook_spec hooks[] = {
	{ QS_CONFIGURE_RTC, (void *)hk_configure_rtc, (void **)&real_configure_rtc },
	{ QS_QEMU_CLOCK_GET_NS, (void *)hk_clock_get_ns, (void **)&real_clock_get_ns },
	{ QS_TIMER_INIT_FULL, (void *)hk_timer_init_full, (void **)&real_timer_init_full },
	{ QS_TIMER_MOD_NS, (void *)hk_timer_mod_ns, (void **)&real_timer_mod_ns },
	{ QS_TIMER_MOD_ANTICIPATE_NS, (void *)hk_timer_mod_anticipate_ns,
	  (void **)&real_timer_mod_anticipate_ns },
	{ QS_QEMU_SYSTEM_RESET, (void *)hk_system_reset, (void **)&real_system_reset },
};

const struct hook_spec *
gate_clock_hooks(size_t *n)
{
	*n = sizeof(hooks) / sizeof(hooks[0]);
	if (shim_qemu.sym[QS_CONFIGURE_RTC].addr == NULL) { /* 5.2: static; gate_clock_bind says so */
		--*n;
		return hooks + 1;
	}
	return hooks;
}
