/*
 * record.c - BHRR_MODE=record: every guest-affecting bottom half, I/O
 * completion and clock warp, in one ordered log, tagged with the icount.
 *
 * Where work runs, not where it is scheduled: aio_bh_call sees every BH
 * execution, however it was scheduled (QEMU inlines the enqueue into many
 * callers).  A BH on the main AioContext is *gated* unless a rule lets it
 * pass (doc/record.md): in exact mode (-icount shift=N,sleep=off) a gated BH
 * is copied and held, and an executor - a QEMU_CLOCK_VIRTUAL timer with
 * QEMU_TIMER_ATTR_EXTERNAL on main_loop_tlg - runs it in the vCPU thread at
 * an instruction boundary, so the logged icount is exactly where the guest
 * saw its effect.  In ordering mode (no usable icount) gated BHs run at once
 * and the log keeps their order.
 *
 * Thread-pool completions are batched into one BH, so each request gets its
 * own identity: thread_pool_submit_aio's callback is wrapped, and every
 * completion is its own io_complete event.
 *
 * Locks: rec.mu guards the held queue and the intern tables; it is never
 * held while calling into QEMU.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "config.h"
#include "hook.h"
#include "hook_decode.h"
#include "log.h"
#include "qemu_types.h"
#include "record.h"
#include "shim.h"
#include "vlog.h"

#define HELD_MAX 4096
#define INST_MAX 8192   /* live BHs made by aio_bh_new_full; a power of 2 */
#define IDENT_MAX 4096
#define SITE_MAX 4096
#define STACK_MAX 16

/* Thread roles in bh_schedule / nested_poll events. */
enum { ROLE_VCPU, ROLE_MAIN, ROLE_WORKER, ROLE_OTHER };

struct held {
	void *copy;     /* a copy of the QEMUBH, run through aio_bh_call */
	void *orig;     /* the QEMUBH it copies (qemu_bh_delete may come first) */
	uint64_t ident;
	uint64_t instance; /* creation ordinal of its ident, from 1; 0: a oneshot */
	int64_t not_before; /* chaos: not before this icount */
	int decided;        /* chaos: its delay was drawn */
};

/*
 * Chaos (BHRR_CHAOS=SEED, exact record only): seeded perturbation of the
 * held items, within these bounds.  Every decision is a chaos event, and
 * what the guest saw is in the log as usual, so plain replay repeats it.
 */
#define CHAOS_DELAY_PERCENT 50      /* of items get an extra delay */
#define CHAOS_DELAY_MIN 1000        /* instructions */
#define CHAOS_DELAY_MAX 1000000
#define CHAOS_REORDER_PERCENT 50    /* of picks among 2+ due items take a random one */

struct ident_slot {
	void *cb;
	uint64_t id;
};

/* A live QEMUBH from aio_bh_new_full: which creation of its ident it is. */
struct inst_slot {
	void *bh;          /* NULL free, INST_GONE deleted */
	uint64_t ident, instance;
};
#define INST_GONE ((void *)1)

struct site_slot {
	uint64_t hash, id;
};

struct req {
	BlockCompletionFunc *cb;
	void *opaque;
	uint64_t id;
	uint64_t key;    /* content key: op, offset, bytes (0 when unknown) */
};

typedef void vm_change_fn(void *opaque, bool running, int state);

static struct {
	int active;
	int exact;                 /* exact mode: hold and place by icount */
	unsigned stacks;           /* BHRR_STACKS */
	struct log_writer *w;
	/* discovered layout */
	size_t bh_size, off_ctx, off_name, off_cb, off_opaque;
	volatile int64_t *qemu_icount, *icount_bias;
	/* CPUState's running and can_do_io, read from QEMU's own icount check */
	int cpu_fields;                /* found */
	int64_t off_running, off_can_do_io;
	unsigned can_do_io_size;
	int64_t (*icount_get_raw)(void);
	/* QEMU state */
	void *main_ctx;
	pid_t main_tid;
	int lazy_done;
	void *timer;
	/* original functions */
	void (*aio_bh_call)(QEMUBH *);
	void (*schedule)(QEMUBH *);
	void (*schedule_idle)(QEMUBH *);
	void (*oneshot)(AioContext *, QEMUBHFunc *, void *, const char *);
	bool (*aio_poll)(AioContext *, bool);
	void (*warp)(void);
	void *submit;
	QEMUBH *(*bh_new)(AioContext *, QEMUBHFunc *, void *, const char *, void *);
	void (*bh_delete)(QEMUBH *);
	/* called functions */
	void (*timer_init_full)(void *, void *, int, int, int, QEMUTimerCB *, void *);
	void (*timer_mod_ns)(void *, int64_t);
	int64_t (*clock_get_ns)(int);
	bool (*runstate_is_running)(void);
	bool (*in_vcpu_thread)(void);
	AioContext *(*get_aio_context)(void);
	void *(*add_vm_change_state_handler)(vm_change_fn *, void *);
	bool (*all_idle)(void);
	CPUState *(*get_cpu)(int);
	int64_t (*deadline_ns_all)(int, int);
	void (*async_run_on_cpu)(CPUState *, run_on_cpu_func, run_on_cpu_data);
	atomic_int warp_queued;
	atomic_ullong warps, warp_handoffs;
	int chaos;                 /* BHRR_CHAOS set */
	unsigned shift;            /* -icount shift */
	struct chaos_req {
		struct req *r;
		int ret;
		int64_t not_before;
	} chaos_reqs[256];         /* completions chaos holds back; vCPU thread only */
	unsigned n_chaos_reqs;
	uint64_t chaos_rng;        /* under mu */
	uint64_t chaos_decisions;
	/* held queue and tables, under mu */
	pthread_mutex_t mu;
	struct held held[HELD_MAX];
	unsigned held_head, held_n;
	struct ident_slot idents[IDENT_MAX];
	uint64_t ordinals[IDENT_MAX];
	uint64_t creations[IDENT_MAX];
	struct inst_slot insts[INST_MAX];
	unsigned n_insts;            /* live and deleted slots in use */
	uint64_t next_ident, next_string;
	struct site_slot sites[SITE_MAX];
	atomic_ullong next_req;
	atomic_ullong gated, passed, held_total, schedules;
	unsigned long long landings; /* executor firings moved one instruction on; vCPU thread */
	int64_t exec_target;         /* the icount arm_at_icount set; vCPU thread */
} rec = { .mu = PTHREAD_MUTEX_INITIALIZER, .exec_target = -1 };

static __thread int in_executor;
static __thread int poll_depth;

/* ---- replay state (BHRR_MODE=replay) ---- */

enum act_kind { ACT_RUN, ACT_COMPLETE, ACT_WARP };

struct action {
	int kind;
	int64_t icount;
	uint64_t key;   /* RUN: callback offset; COMPLETE: request ordinal */
	uint64_t ckey;  /* COMPLETE in ordering mode: the request's content key, if known */
	int64_t delta;  /* WARP */
	uint64_t seq;   /* the event's index in the recorded log */
	char name[48];
};

struct avail_bh {
	uint64_t cb_off;
	void *copy;
	void *orig;
	uint64_t instance;
};

struct avail_req {
	struct req *r;
	int ret;
};

#define AVAIL_MAX 1024
#define WATCHDOG_MS_DEFAULT 10000
static long watchdog_ms = WATCHDOG_MS_DEFAULT; /* BHRR_WATCHDOG_MS */

static struct {
	int on;              /* replaying */
	int free;            /* recorded control ended: run free */
	unsigned shift;
	struct action *v;
	size_t n, next;
	struct avail_bh bhs[AVAIL_MAX];
	size_t n_bhs;
	struct avail_req reqs[AVAIL_MAX];
	size_t n_reqs;
	int parked;
	int ordering;         /* an ordering-mode log: release in order, no icounts */
	int stop_on_diverge;  /* BHRR_ON_DIVERGE=stop (the default) */
	void (*shutdown_request)(int cause);
	void *watchdog;       /* ordering: a REALTIME timer while something is held */
	long long progress_ns;
	uint64_t parks;
	unsigned delay_us;   /* BHRR_TEST_DELAY_US: tests only */
	pthread_cond_t cv;   /* with rec.mu: something became available */
	void (*bql_lock)(const char *, int);
	void (*bql_unlock)(void);
} rp = { .cv = PTHREAD_COND_INITIALIZER };

static void replay_step(void);
static void replay_free(const char *why);
static void replay_arm(void);
static void ord_release(void);
static void ord_watchdog(void *opaque);

/* ---- small helpers ---- */

static void *
field(const void *bh, size_t off)
{
	void *v;

	memcpy(&v, (const char *)bh + off, sizeof(v));
	return v;
}

static int
role(void)
{
	if (rec.in_vcpu_thread && rec.in_vcpu_thread())
		return ROLE_VCPU;
	if ((pid_t)syscall(SYS_gettid) == rec.main_tid)
		return ROLE_MAIN;
	return ROLE_WORKER;
}

/* The icount now and how good it is; exact only where no TB is running. */
static int64_t
icount_now(unsigned *how, int exact_here)
{
	if (rec.qemu_icount == NULL || !rec.exact) {
		*how = rec.qemu_icount ? LOG_IC_LOWER : LOG_IC_UNKNOWN;
		return rec.qemu_icount ? __atomic_load_n(rec.qemu_icount, __ATOMIC_ACQUIRE) : 0;
	}
	*how = exact_here ? LOG_IC_EXACT : LOG_IC_LOWER;
	return __atomic_load_n(rec.qemu_icount, __ATOMIC_ACQUIRE);
}

/*
 * The icount for an event logged wherever QEMU calls us: exact in the vCPU
 * thread when QEMU itself could read it exactly there - outside cpu_exec
 * (qemu_icount is current), or inside an I/O access, where can_do_io is
 * set and icount_get_raw() accounts the TB so far - and a lower bound
 * otherwise.  icount_get_raw() exits QEMU when can_do_io is clear, so it is
 * called only after the very check it makes.
 */
static __thread void **cur_cpu_slot;
static __thread int cur_cpu_tried;

static int64_t
icount_here(unsigned *how)
{
	if (!rec.cpu_fields || !rec.exact || rec.qemu_icount == NULL ||
	    !rec.in_vcpu_thread || !rec.in_vcpu_thread())
		return icount_now(how, 0);
	if (!cur_cpu_tried) {
		cur_cpu_tried = 1;
		cur_cpu_slot = dlsym(RTLD_DEFAULT, "current_cpu"); /* this thread's */
	}
	const char *cpu = cur_cpu_slot ? (const char *)*cur_cpu_slot : NULL;

	if (cpu == NULL)
		return icount_now(how, 0);
	if (*(const volatile uint8_t *)(cpu + rec.off_running) == 0)
		return icount_now(how, 1);
	uint32_t cdio = rec.can_do_io_size == 1 ? *(const volatile uint8_t *)(cpu + rec.off_can_do_io)
					       : *(const volatile uint32_t *)(cpu + rec.off_can_do_io);

	if (cdio == 0)
		return icount_now(how, 0);
	*how = LOG_IC_EXACT;
	return rec.icount_get_raw();
}

static void
emit(struct log_event *ev)
{
	log_writer_append(rec.w, ev);
}

/* Intern @cb (with its BH name) as an ident; called with mu held. */
static uint64_t
ident_of(void *cb, const char *name)
{
	size_t h = ((uintptr_t)cb * 0x9e3779b97f4a7c15ull) >> 52;

	for (size_t i = 0; i < IDENT_MAX; i++) {
		struct ident_slot *s = &rec.idents[(h + i) % IDENT_MAX];

		if (s->cb == cb)
			return s->id;
		if (s->cb != NULL)
			continue;
		struct log_event ev = { 0 };

		s->cb = cb;
		s->id = ++rec.next_ident;
		ev.kind = LOG_EV_STRING;
		ev.icount_how = LOG_IC_UNKNOWN;
		ev.id = ++rec.next_string;
		ev.text = name ? name : "?";
		ev.text_len = strlen(ev.text);
		emit(&ev);
		ev.kind = LOG_EV_IDENT;
		ev.name_id = ev.id;
		ev.id = s->id;
		ev.cb_off = (uint64_t)((char *)cb - (char *)shim_qemu.exe_base);
		emit(&ev);
		return s->id;
	}
	return 0;
}

/*
 * The slot of live BH @bh in the instance table, or (@add) a free one for
 * it; NULL if absent (or full).  mu held.  Deleted slots stay as INST_GONE
 * so probes go on past them; the table is rebuilt when those fill it.
 */
static struct inst_slot *
inst_slot(void *bh, int add)
{
	size_t h = ((uintptr_t)bh * 0x9e3779b97f4a7c15ull) >> 51;
	struct inst_slot *gone = NULL;

	if (add && rec.n_insts >= INST_MAX * 3 / 4) {
		/* compact: keep the live entries only */
		static struct inst_slot live[INST_MAX];
		unsigned n = 0;

		for (size_t i = 0; i < INST_MAX; i++)
			if (rec.insts[i].bh != NULL && rec.insts[i].bh != INST_GONE)
				live[n++] = rec.insts[i];
		memset(rec.insts, 0, sizeof(rec.insts));
		rec.n_insts = 0;
		if (n >= INST_MAX * 3 / 4)
			return NULL; /* that many live BHs: stop numbering new ones */
		for (unsigned i = 0; i < n; i++) {
			struct inst_slot *s = inst_slot(live[i].bh, 1);

			*s = live[i];
		}
	}
	for (size_t i = 0; i < INST_MAX; i++) {
		struct inst_slot *s = &rec.insts[(h + i) % INST_MAX];

		if (s->bh == bh)
			return s;
		if (s->bh == INST_GONE) {
			if (gone == NULL)
				gone = s;
			continue;
		}
		if (s->bh != NULL)
			continue;
		if (!add)
			return NULL;
		if (gone != NULL)
			return gone->bh = bh, gone;
		rec.n_insts++;
		s->bh = bh;
		return s;
	}
	return add ? gone : NULL;
}

/* The creation ordinal of live BH @bh, 0 if unknown (a oneshot); mu held. */
static uint64_t
instance_of(void *bh)
{
	struct inst_slot *s = inst_slot(bh, 0);

	return s ? s->instance : 0;
}

/* Intern the caller's stack (BHRR_STACKS frames) as a site string; mu held. */
static uint64_t
site_of(void *const *frames, int n)
{
	uint64_t h = 1469598103934665603ull;

	for (int i = 0; i < n; i++)
		h = (h ^ (uintptr_t)frames[i]) * 1099511628211ull;
	for (size_t i = 0; i < SITE_MAX; i++) {
		struct site_slot *s = &rec.sites[(h + i) % SITE_MAX];

		if (s->hash == h && s->id)
			return s->id;
		if (s->id)
			continue;
		char text[STACK_MAX * 24];
		size_t len = 0;

		for (int k = 0; k < n && len < sizeof(text) - 24; k++)
			len += (size_t)snprintf(text + len, sizeof(text) - len, "%s+%#lx", k ? " " : "",
						(unsigned long)((char *)frames[k] -
								(char *)shim_qemu.exe_base));
		struct log_event ev = { 0 };

		ev.kind = LOG_EV_STRING;
		ev.icount_how = LOG_IC_UNKNOWN;
		ev.id = ++rec.next_string;
		ev.text = text;
		ev.text_len = len;
		emit(&ev);
		s->hash = h;
		s->id = ev.id;
		return s->id;
	}
	return 0;
}

/* ---- gate rules ---- */

/* Host-side BHs that must run at once (doc/record.md). */
static const char *const allow_list[] = {
	"notify_event_cb", "co_schedule_bh_cb", "dummy_bh_cb", "aio_wait_bh",
	"spawn_thread_bh_fn", "monitor_accept_input", "do_qmp_dispatch_bh", "chr_closed_bh",
	"graphic_hw_update_bh", "vnc_jobs_bh", "iothread_stop_bh", "vhost_user_async_close_bh",
	"migrate_fd_cleanup_bh", "qemu_chr_be_update_read_handlers_bh", "char_socket_finalize_bh",
	NULL,
};

static int
allow_listed(const char *name)
{
	if (name == NULL)
		return 0;
	for (int i = 0; allow_list[i]; i++)
		if (strcmp(name, allow_list[i]) == 0)
			return 1;
	return strncmp(name, "snapshot_", 9) == 0 || strncmp(name, "migration_", 10) == 0;
}

/* ---- executor ---- */

static void
run_held(struct held *h, unsigned how, int64_t icount, uint64_t flags)
{
	struct log_event ev = { 0 };

	pthread_mutex_lock(&rec.mu);
	ev.kind = LOG_EV_BH_RUN;
	ev.flags = flags;
	ev.icount_how = how;
	ev.icount = icount;
	ev.ident = h->ident;
	ev.ordinal = h->ident < IDENT_MAX ? rec.ordinals[h->ident]++ : 0;
	ev.instance = h->instance;
	emit(&ev);
	pthread_mutex_unlock(&rec.mu);
	rec.aio_bh_call(h->copy);
	free(h->copy);
}

/* Take the held item @at places from the head out of the queue; mu held. */
static struct held
held_take(unsigned at)
{
	struct held h = rec.held[(rec.held_head + at) % HELD_MAX];

	for (unsigned i = at; i + 1 < rec.held_n; i++)
		rec.held[(rec.held_head + i) % HELD_MAX] = rec.held[(rec.held_head + i + 1) % HELD_MAX];
	rec.held_n--;
	return h;
}

/* Run everything held, in order; the caller holds the BQL. */
static void
drain_held(unsigned how)
{
	in_executor++;
	for (;;) {
		struct held h;
		unsigned exact_how;
		int64_t ic;

		pthread_mutex_lock(&rec.mu);
		if (rec.held_n == 0) {
			pthread_mutex_unlock(&rec.mu);
			break;
		}
		h = rec.held[rec.held_head];
		rec.held_head = (rec.held_head + 1) % HELD_MAX;
		rec.held_n--;
		pthread_mutex_unlock(&rec.mu);
		ic = icount_now(&exact_how, how == LOG_IC_EXACT);
		run_held(&h, exact_how, ic, how == LOG_IC_EXACT ? 0 : LOG_F_AT_ONCE);
	}
	in_executor--;
}

static void complete_now(struct req *r, int ret, unsigned how);

static uint64_t
chaos_next(void)
{
	/* splitmix64: a seeded, well-mixed stream */
	uint64_t z = (rec.chaos_rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void
chaos_event(uint64_t decision, int64_t value, int64_t icount)
{
	struct log_event ev = { 0 };

	ev.kind = LOG_EV_CHAOS;
	ev.icount = icount;
	ev.icount_how = LOG_IC_EXACT;
	ev.decision = decision;
	ev.value = value;
	emit(&ev);
	rec.chaos_decisions++;
}

/* Arm the executor for icount @ic (exact context). */
static void
arm_at_icount(int64_t ic)
{
	rec.exec_target = ic;
	rec.timer_mod_ns(rec.timer, __atomic_load_n(rec.icount_bias, __ATOMIC_ACQUIRE) +
					    (ic << rec.shift));
}

/*
 * The executor under chaos: each held item may be delayed once, and among
 * the items due, one may be taken out of turn.  @all: the vCPU idles, so
 * delays are cut short (nothing else would advance the icount to them).
 */
static void
chaos_drain(int all)
{
	in_executor++;
	for (;;) {
		unsigned exact_how;
		int64_t now = icount_now(&exact_how, 1);
		struct held h;
		size_t due[64], n_due = 0;
		int64_t soonest = INT64_MAX;

		/* completions held back: deliver one that is due, maybe out of turn */
		size_t rdue[256], n_rdue = 0;

		for (unsigned i = 0; i < rec.n_chaos_reqs; i++) {
			if (all || rec.chaos_reqs[i].not_before <= now)
				rdue[n_rdue++] = i;
			else if (rec.chaos_reqs[i].not_before < soonest)
				soonest = rec.chaos_reqs[i].not_before;
		}
		if (n_rdue) {
			size_t pick = 0;

			pthread_mutex_lock(&rec.mu);
			if (n_rdue > 1 && chaos_next() % 100 < CHAOS_REORDER_PERCENT) {
				pick = (size_t)(chaos_next() % n_rdue);
				if (pick)
					chaos_event(1, (int64_t)pick, now);
			}
			pthread_mutex_unlock(&rec.mu);
			struct chaos_req q = rec.chaos_reqs[rdue[pick]];

			memmove(&rec.chaos_reqs[rdue[pick]], &rec.chaos_reqs[rdue[pick] + 1],
				(rec.n_chaos_reqs - rdue[pick] - 1) * sizeof(q));
			rec.n_chaos_reqs--;
			complete_now(q.r, q.ret, exact_how);
			continue;
		}
		pthread_mutex_lock(&rec.mu);
		for (unsigned i = 0; i < rec.held_n; i++) {
			struct held *c = &rec.held[(rec.held_head + i) % HELD_MAX];

			if (!c->decided) {
				c->decided = 1;
				if (chaos_next() % 100 < CHAOS_DELAY_PERCENT) {
					int64_t d = CHAOS_DELAY_MIN +
						    (int64_t)(chaos_next() % (CHAOS_DELAY_MAX - CHAOS_DELAY_MIN));

					c->not_before = now + d;
					chaos_event(0, d, now);
				}
			}
			if (all || c->not_before <= now) {
				if (n_due < 64)
					due[n_due++] = i;
			} else if (c->not_before < soonest) {
				soonest = c->not_before;
			}
		}
		if (n_due == 0) {
			pthread_mutex_unlock(&rec.mu);
			if (soonest != INT64_MAX)
				arm_at_icount(soonest);
			break;
		}
		size_t pick = 0;

		if (n_due > 1 && chaos_next() % 100 < CHAOS_REORDER_PERCENT) {
			pick = (size_t)(chaos_next() % n_due);
			if (pick)
				chaos_event(1, (int64_t)pick, now);
		}
		unsigned at = (unsigned)due[pick];

		h = held_take(at);
		pthread_mutex_unlock(&rec.mu);
		run_held(&h, exact_how, now, 0);
	}
	in_executor--;
}

/*
 * The executor: a VIRTUAL timer callback, in the vCPU thread with the BQL,
 * at the top of the round-robin loop where no TB runs, so the icount is
 * exact.  It never waits.
 */
static void
executor_cb(void *opaque)
{
	static int64_t deferred_at = -1;

	(void)opaque;
	/*
	 * One rule for the order of timers due at the same virtual time, the
	 * same in record and replay: the guest's own first, then bhrr's.  (A
	 * record arms the executor in the past, a replay exactly on time, so
	 * QEMU's insertion order would differ between the two.)  Re-armed for
	 * now, the executor runs again in this same pass, after them.
	 */
	int64_t now = rec.clock_get_ns(1 /* VIRTUAL */);

	if (now != deferred_at && rec.deadline_ns_all(1, ~1 /* not EXTERNAL */) == 0) {
		deferred_at = now;
		rec.timer_mod_ns(rec.timer, now);
		return;
	}
	deferred_at = -1;
	if (!(rp.on && !rp.free)) {
		/*
		 * Where a record may run held items: only where a replay can stop
		 * too.  A replay stops the vCPU by its icount budget, before the
		 * next instruction.  A record's executor is armed "now" from the
		 * main thread, and the kick lands anywhere the vCPU checks for an
		 * exit - also just after it entered an exception handler for a
		 * faulting instruction, at the very same icount (the fault
		 * executed nothing), where an interrupt then waits for the
		 * handler to enable it again instead of arriving at once.  So
		 * unless the vCPU halted (after its hlt, the same place either
		 * way) or the executor fired exactly where the vCPU thread armed
		 * it, move on one instruction, placed by the budget as in replay.
		 */
		unsigned how;
		int64_t ic = icount_now(&how, 1);

		if (ic != rec.exec_target && !rec.all_idle()) {
			rec.landings++;
			arm_at_icount(ic + 1);
			return;
		}
	}
	if (rp.on && !rp.free)
		replay_step();
	else if (rec.chaos)
		chaos_drain(0);
	else
		drain_held(LOG_IC_EXACT);
}

static void lazy_init(void);

static void
vm_change(void *opaque, bool running, int state)
{
	struct log_event ev = { 0 };
	unsigned how;

	(void)opaque;
	/* the VM starts: QEMU is initialised, vCPUs resume right after this */
	if (running && !rec.lazy_done)
		lazy_init();
	if (running && rp.on && !rp.free)
		replay_arm();
	if (!running && rp.on && !rp.free)
		replay_free("the VM stopped");
	if (!running)
		drain_held(LOG_IC_LOWER); /* a stopped VM runs no VIRTUAL timer */
	ev.kind = running ? LOG_EV_VM_RESUME : LOG_EV_VM_STOP;
	ev.icount = icount_now(&how, 0);
	ev.icount_how = how;
	ev.state = (uint64_t)state;
	emit(&ev);
}

/*
 * Check the timers_state offsets against QEMU's own getters, from the main
 * thread (where icount_get_raw never aborts).  Several tries: a vCPU may
 * move the counters between two reads.
 */
static int
check_timers(void)
{
	int64_t (*get_raw)(void) = shim_qemu.sym[QS_ICOUNT_GET_RAW].addr;
	int64_t (*get)(void) = shim_qemu.sym[QS_ICOUNT_GET].addr;
	int64_t (*to_ns)(int64_t) = shim_qemu.sym[QS_ICOUNT_TO_NS].addr;

	if (rec.qemu_icount == NULL)
		return 0;
	for (int i = 0; i < 100; i++) {
		int64_t raw = get_raw(), mine = *rec.qemu_icount;
		int64_t clock = get(), bias = *rec.icount_bias, raw2 = get_raw();

		if (raw == mine && raw2 == raw && clock == bias + to_ns(raw))
			return 0;
	}
	return -1;
}

/* First gated BH on the main loop: QEMU is initialised, the BQL is held. */
static void
lazy_init(void)
{
	rec.lazy_done = 1;
	if (check_timers() < 0) {
		vlog_error("QEMU build %s: timers_state does not hold qemu_icount at +0x40 and the "
			   "bias at +0x28; recording the order of events only", shim_qemu.build_id);
		rec.exact = 0;
		rec.qemu_icount = NULL;
		rec.icount_bias = NULL;
	}
	if (rp.on && rp.ordering) {
		rp.watchdog = calloc(1, 256);
		if (rp.watchdog)
			rec.timer_init_full(rp.watchdog, NULL, 0 /* QEMU_CLOCK_REALTIME */, 1 /* SCALE_NS */,
					    0, ord_watchdog, NULL);
	}
	if (rec.exact) {
		rec.timer = calloc(1, 256); /* QEMUTimer is 48 bytes; never freed */
		if (rec.timer)
			rec.timer_init_full(rec.timer, NULL, 1 /* QEMU_CLOCK_VIRTUAL */, 1 /* SCALE_NS */,
					    1 /* QEMU_TIMER_ATTR_EXTERNAL */, executor_cb, NULL);
	}
}

/* ---- hooks ---- */

/* Replay: keep a copy of @bh until the log runs it; 0 if it cannot be kept. */
static int
avail_bh_add(QEMUBH *bh, void *cb)
{
	void *copy = malloc(rec.bh_size);
	int kept;

	if (copy == NULL)
		return 0;
	memcpy(copy, bh, rec.bh_size);
	pthread_mutex_lock(&rec.mu);
	kept = rp.n_bhs < AVAIL_MAX;
	if (kept)
		rp.bhs[rp.n_bhs++] = (struct avail_bh){
			(uint64_t)((char *)cb - (char *)shim_qemu.exe_base), copy, bh, instance_of(bh) };
	pthread_cond_broadcast(&rp.cv);
	pthread_mutex_unlock(&rec.mu);
	if (!kept)
		free(copy);
	return kept;
}

static void
hk_aio_bh_call(QEMUBH *bh)
{
	void *ctx = field(bh, rec.off_ctx);
	const char *name = field(bh, rec.off_name);
	void *cb = field(bh, rec.off_cb);

	if (rec.main_ctx == NULL)
		rec.main_ctx = rec.get_aio_context();
	if (ctx != rec.main_ctx || rec.main_ctx == NULL || allow_listed(name) || in_executor) {
		atomic_fetch_add(&rec.passed, 1);
		rec.aio_bh_call(bh);
		return;
	}
	/* only the main thread initialises (icount_get_raw is safe there) */
	if (!rec.lazy_done && (pid_t)syscall(SYS_gettid) == rec.main_tid)
		lazy_init();
	atomic_fetch_add(&rec.gated, 1);

	struct held h = { 0 };
	unsigned how;

	pthread_mutex_lock(&rec.mu);
	h.ident = ident_of(cb, name);
	h.instance = instance_of(bh);
	h.orig = bh;
	pthread_mutex_unlock(&rec.mu);
	if (rp.on && !rp.free && poll_depth == 0 && rec.runstate_is_running() &&
	    (rp.ordering || (rec.exact && rec.timer))) {
		if (name && strcmp(name, "thread_pool_completion_bh") == 0) {
			/* it only hands completions to req_complete, which holds each one */
			rec.aio_bh_call(bh);
			return;
		}
		if (avail_bh_add(bh, cb)) {
			if (rp.ordering)
				ord_release();
			else
				replay_arm();
			return;
		}
	}
	/* Not held: ordering mode, inside a nested poll, VM stopped, no timer. */
	if (!rec.exact || poll_depth > 0 || rec.timer == NULL || !rec.runstate_is_running()) {
		h.copy = NULL;
		pthread_mutex_lock(&rec.mu);
		struct log_event ev = { 0 };

		ev.kind = LOG_EV_BH_RUN;
		ev.icount = icount_now(&how, 0);
		ev.icount_how = how;
		ev.flags = poll_depth > 0 || !rec.runstate_is_running() ? LOG_F_AT_ONCE : 0;
		ev.ident = h.ident;
		ev.ordinal = h.ident < IDENT_MAX ? rec.ordinals[h.ident]++ : 0;
		ev.instance = h.instance;
		emit(&ev);
		pthread_mutex_unlock(&rec.mu);
		in_executor++;
		rec.aio_bh_call(bh);
		in_executor--;
		return;
	}
	if (rp.delay_us && !rp.on && name && strcmp(name, "thread_pool_completion_bh") == 0)
		usleep(rp.delay_us);
	/* Hold a copy: a oneshot is freed as soon as this returns. */
	h.copy = malloc(rec.bh_size);
	if (h.copy == NULL) {
		rec.aio_bh_call(bh);
		return;
	}
	memcpy(h.copy, bh, rec.bh_size);
	pthread_mutex_lock(&rec.mu);
	if (rec.held_n == HELD_MAX) {
		pthread_mutex_unlock(&rec.mu);
		free(h.copy);
		drain_held(LOG_IC_LOWER);
		rec.aio_bh_call(bh);
		return;
	}
	rec.held[(rec.held_head + rec.held_n) % HELD_MAX] = h;
	rec.held_n++;
	pthread_mutex_unlock(&rec.mu);
	atomic_fetch_add(&rec.held_total, 1);
	/* Due now: the vCPU leaves its TB at the next boundary and runs it. */
	rec.timer_mod_ns(rec.timer, rec.clock_get_ns(1));
}

static void
log_schedule(void *cb, const char *name)
{
	struct log_event ev = { 0 };
	void *frames[STACK_MAX + 2];
	int n = 0;
	unsigned how;

	atomic_fetch_add(&rec.schedules, 1);
	if (rec.stacks)
		n = unw_backtrace(frames, (int)(rec.stacks + 2 > STACK_MAX + 2 ? STACK_MAX + 2 : rec.stacks + 2));
	ev.kind = LOG_EV_BH_SCHEDULE;
	ev.icount = icount_here(&how);
	ev.icount_how = how;
	ev.role = (uint64_t)role();
	pthread_mutex_lock(&rec.mu);
	ev.ident = ident_of(cb, name);
	if (n > 2)
		ev.site = site_of(frames + 2, n - 2); /* skip log_schedule and the hook */
	emit(&ev);
	pthread_mutex_unlock(&rec.mu);
}

static void
hk_qemu_bh_schedule(QEMUBH *bh)
{
	log_schedule(field(bh, rec.off_cb), field(bh, rec.off_name));
	rec.schedule(bh);
}

static void
hk_qemu_bh_schedule_idle(QEMUBH *bh)
{
	log_schedule(field(bh, rec.off_cb), field(bh, rec.off_name));
	rec.schedule_idle(bh);
}

static void
hk_oneshot(AioContext *ctx, QEMUBHFunc *cb, void *opaque, const char *name)
{
	/* before 6.2 there was no name argument: it is garbage there */
	log_schedule((void *)cb, shim_qemu.major >= 7 ? name : NULL);
	rec.oneshot(ctx, cb, opaque, name);
}

/* A replay's kept copy as a held item, ready for run_held; mu held. */
static struct held
held_of_avail(const struct avail_bh *b)
{
	struct held h = { 0 };

	h.ident = ident_of((char *)shim_qemu.exe_base + b->cb_off, field(b->copy, rec.off_name));
	h.copy = b->copy;
	h.orig = b->orig;
	h.instance = b->instance;
	return h;
}

/*
 * Creation ordinals: the Nth BH made with this callback.  Every BH a device
 * owns comes from aio_bh_new_full (qemu_bh_new_full is a wrapper), so
 * (ident, instance) names it across runs, where its address does not.
 * 7.2 has four arguments, 10.0 a fifth (the reentrancy guard): the fifth
 * register is passed on either way.
 */
static QEMUBH *
hk_bh_new_full(AioContext *ctx, QEMUBHFunc *cb, void *opaque, const char *name, void *guard)
{
	QEMUBH *bh = rec.bh_new(ctx, cb, opaque, name, guard);
	struct log_event ev = { 0 };

	if (bh == NULL || !rec.active)
		return bh;
	pthread_mutex_lock(&rec.mu);
	ev.ident = ident_of((void *)cb, name);
	if (ev.ident > 0 && ev.ident < IDENT_MAX) {
		struct inst_slot *s = inst_slot(bh, 1);

		ev.instance = ++rec.creations[ev.ident];
		if (s != NULL)
			s->ident = ev.ident, s->instance = ev.instance;
	}
	ev.kind = LOG_EV_BH_NEW;
	ev.icount = icount_now(&ev.icount_how, 0);
	emit(&ev);
	pthread_mutex_unlock(&rec.mu);
	return bh;
}

/*
 * A BH deleted while bhrr still holds a copy of its run: QEMU believes it
 * ran already and may free its opaque right after this, so the copy runs
 * now, at once (logged so), before the real delete.
 */
static void
hk_bh_delete(QEMUBH *bh)
{
	struct held run[16];
	unsigned n_run = 0;
	struct log_event ev = { 0 };

	pthread_mutex_lock(&rec.mu);
	struct inst_slot *s = rec.active ? inst_slot(bh, 0) : NULL;

	if (s != NULL) {
		ev.kind = LOG_EV_BH_DELETE;
		ev.ident = s->ident;
		ev.instance = s->instance;
		ev.icount = icount_now(&ev.icount_how, 0);
		emit(&ev);
		s->bh = INST_GONE;
	}
	for (unsigned i = 0; i < rec.held_n && n_run < 16;) {
		if (rec.held[(rec.held_head + i) % HELD_MAX].orig == bh)
			run[n_run++] = held_take(i);
		else
			i++;
	}
	for (size_t i = 0; i < rp.n_bhs && n_run < 16;) {
		if (rp.bhs[i].orig != bh) {
			i++;
			continue;
		}
		run[n_run++] = held_of_avail(&rp.bhs[i]);
		memmove(&rp.bhs[i], &rp.bhs[i + 1], (rp.n_bhs - i - 1) * sizeof(rp.bhs[0]));
		rp.n_bhs--;
	}
	pthread_mutex_unlock(&rec.mu);
	for (unsigned i = 0; i < n_run; i++) {
		unsigned how;
		int64_t ic = icount_now(&how, 0);

		in_executor++;
		run_held(&run[i], how, ic, LOG_F_AT_ONCE);
		in_executor--;
	}
	rec.bh_delete(bh);
}

static bool
hk_aio_poll(AioContext *ctx, bool blocking)
{
	bool r;

	if (rec.main_ctx == NULL || ctx != rec.main_ctx)
		return rec.aio_poll(ctx, blocking);
	if (poll_depth++ == 0) {
		struct log_event ev = { 0 };
		unsigned how;
		int rl = role();

		ev.kind = LOG_EV_NESTED_POLL;
		ev.icount = icount_now(&how, 0);
		ev.icount_how = how;
		ev.role = (uint64_t)rl;
		emit(&ev);
		/* the main thread may be waiting for a held completion (quit drains) */
		if (rl == ROLE_MAIN && rp.on && !rp.free && rec.runstate_is_running())
			replay_free("the main loop waits in a nested aio_poll");
		if (rl == ROLE_MAIN)
			drain_held(LOG_IC_LOWER);
	}
	r = rec.aio_poll(ctx, blocking);
	poll_depth--;
	return r;
}

static void replay_warp(void);
static __thread int arming; /* timer_mod_ns can call the warp hook (QEMU 7.2) */

/* A warp where the icount is exact: a vCPU thread outside any TB. */
static void
warp_exact(void)
{
	if (rp.on && !rp.free && rec.exact) {
		replay_warp();
		return;
	}
	if (rec.chaos && (rec.held_n || rec.n_chaos_reqs) && rec.all_idle()) {
		chaos_drain(1); /* the guest idles: a delay cannot pass by execution */
		return;
	}
	int64_t before = __atomic_load_n(rec.icount_bias, __ATOMIC_ACQUIRE);

	rec.warp();
	int64_t after = __atomic_load_n(rec.icount_bias, __ATOMIC_ACQUIRE);

	if (after != before) {
		struct log_event ev = { 0 };

		atomic_fetch_add(&rec.warps, 1);
		ev.kind = LOG_EV_WARP;
		ev.icount = icount_now(&ev.icount_how, 1);
		ev.delta_ns = after - before;
		emit(&ev);
	}
}

static void
warp_fn(CPUState *cpu, run_on_cpu_data data)
{
	(void)cpu;
	(void)data;
	atomic_store(&rec.warp_queued, 0);
	warp_exact();
}

/*
 * QEMU warps from the main loop as soon as every vCPU looks idle.  But a
 * vCPU that has just halted accounts its last instructions to qemu_icount
 * only after it leaves cpu_exec, without the BQL: a warp in that window
 * reads a stale icount, and jumps up to a TB's worth of nanoseconds too far,
 * differently each run (measured: 238 ns).  So outside the vCPU thread the
 * warp is handed to the vCPU, which does it between TBs, where the icount
 * is exact - the same place in record and in replay.
 */
static void
hk_warp(void)
{
	if (rec.icount_bias == NULL || arming) {
		if (!arming)
			rec.warp();
		return;
	}
	if (rec.in_vcpu_thread()) {
		warp_exact();
		return;
	}
	/* as QEMU would: nothing to do unless running, idle, and a timer ahead */
	if (!rec.runstate_is_running() || !rec.all_idle())
		return;
	int due = 0; /* replay: an action due, the vCPU halted at its deadline (replay_warp) */

	if (rp.on && !rp.free && rec.exact && rp.next < rp.n) {
		const struct action *a = &rp.v[rp.next];

		due = a->kind != ACT_WARP &&
		      a->icount <= __atomic_load_n(rec.qemu_icount, __ATOMIC_ACQUIRE);
	}
	if (rec.chaos && (rec.held_n || rec.n_chaos_reqs))
		due = 1; /* delayed items wait for the vCPU: it idles, so cut them short */
	/* no guest timer at all: QEMU would not warp either (time stands still) */
	if (!due && rec.deadline_ns_all(1 /* VIRTUAL */, ~1 /* not EXTERNAL */) < 0)
		return;
	CPUState *cpu = rec.get_cpu(0);

	if (cpu == NULL) {
		rec.warp();
		return;
	}
	if (atomic_exchange(&rec.warp_queued, 1))
		return;
	atomic_fetch_add(&rec.warp_handoffs, 1);
	rec.async_run_on_cpu(cpu, warp_fn, (run_on_cpu_data){ .host_ptr = NULL });
}

static void
req_complete(void *opaque, int ret)
{
	struct req *r = opaque;

	if (rp.on && !rp.free && rp.ordering && poll_depth == 0 && !in_executor &&
	    rec.runstate_is_running()) {
		pthread_mutex_lock(&rec.mu);
		if (rp.n_reqs < AVAIL_MAX) {
			rp.reqs[rp.n_reqs++] = (struct avail_req){ r, ret };
			pthread_mutex_unlock(&rec.mu);
			ord_release();
			return;
		}
		pthread_mutex_unlock(&rec.mu);
	}
	if (rp.on && !rp.free && rec.exact && poll_depth == 0 && !in_executor && rec.timer) {
		/* test-only: hold every completion back so the vCPU must park for it */
		if (rp.delay_us)
			usleep(rp.delay_us);
		pthread_mutex_lock(&rec.mu);
		if (rp.n_reqs < AVAIL_MAX) {
			rp.reqs[rp.n_reqs++] = (struct avail_req){ r, ret };
			pthread_cond_broadcast(&rp.cv);
			pthread_mutex_unlock(&rec.mu);
			replay_arm();
			return;
		}
		pthread_mutex_unlock(&rec.mu);
	}
	if (rec.chaos && in_executor > 0 && poll_depth == 0 && rec.in_vcpu_thread() &&
	    rec.n_chaos_reqs < 256 && rec.runstate_is_running()) {
		unsigned how;
		int64_t now = icount_now(&how, 1);

		pthread_mutex_lock(&rec.mu);
		if (chaos_next() % 100 < CHAOS_DELAY_PERCENT) {
			int64_t d = CHAOS_DELAY_MIN +
				    (int64_t)(chaos_next() % (CHAOS_DELAY_MAX - CHAOS_DELAY_MIN));

			chaos_event(0, d, now);
			pthread_mutex_unlock(&rec.mu);
			rec.chaos_reqs[rec.n_chaos_reqs++] = (struct chaos_req){ r, ret, now + d };
			arm_at_icount(now + d);
			return;
		}
		pthread_mutex_unlock(&rec.mu);
	}
	complete_now(r, ret, in_executor > 0 && rec.exact && poll_depth == 0 ? LOG_IC_EXACT : LOG_IC_LOWER);
}

/* Log the completion and hand it to QEMU's callback. */
static void
complete_now(struct req *r, int ret, unsigned how)
{
	struct log_event ev = { 0 };
	BlockCompletionFunc *cb = r->cb;
	void *op = r->opaque;

	ev.kind = LOG_EV_IO_COMPLETE;
	ev.icount = icount_now(&ev.icount_how, how == LOG_IC_EXACT);
	ev.flags = poll_depth > 0 || !rec.runstate_is_running() ? LOG_F_AT_ONCE : 0;
	ev.req = r->id;
	ev.ret = ret;
	emit(&ev);
	free(r);
	cb(op, ret);
}

/*
 * What a request does, when its argument is file-posix's RawPosixAIOData
 * (bs, aio_type, aio_fildes, aio_offset, aio_nbytes: the same in 7.2 and
 * 10.0).  Checked, never trusted: an open descriptor and a known type, or
 * the request stays "other".
 */
static void
req_content(const void *arg, struct log_event *ev)
{
	struct {
		void *bs;
		int type;
		int fd;
		int64_t offset;
		uint64_t nbytes;
	} d;

	ev->op = 4;
	if (arg == NULL)
		return;
	memcpy(&d, arg, sizeof(d));
	if (d.bs == NULL || d.fd < 0 || d.offset < 0 || d.nbytes > (1ull << 32) ||
	    fcntl(d.fd, F_GETFD) < 0)
		return;
	switch (d.type & 0xff) { /* QEMU_AIO_READ, _WRITE, _FLUSH, _DISCARD */
	case 0x01: ev->op = 0; break;
	case 0x02: ev->op = 1; break;
	case 0x08: ev->op = 2; break;
	case 0x10: ev->op = 3; break;
	default: return;
	}
	ev->offset = (uint64_t)d.offset;
	ev->bytes = d.nbytes;
}

/*
 * A key for matching a completion by content across runs, 0 if unknown: what
 * the request does, and how many requests before it did the same (flushes
 * all look alike; the n-th flush of a run is the n-th flush of the other).
 */
#define OCC_SLOTS 8192

struct occ {
	uint64_t key[OCC_SLOTS];
	uint32_t n[OCC_SLOTS];
};

static uint64_t
content_key(struct occ *o, uint64_t op, uint64_t offset, uint64_t bytes)
{
	if (op == 4)
		return 0;
	uint64_t k = (op * 0x9e3779b97f4a7c15ull ^ offset * 0xbf58476d1ce4e5b9ull ^ bytes) | 1;
	uint32_t n = 0;

	for (size_t i = 0, h = (size_t)(k >> 40) % OCC_SLOTS; i < OCC_SLOTS; i++) {
		size_t s = (h + i) % OCC_SLOTS;

		if (o->key[s] == k || o->key[s] == 0) {
			o->key[s] = k;
			n = o->n[s]++;
			break;
		}
	}
	return ((k ^ (n * 0x94d049bb133111ebull)) * 0xff51afd7ed558ccdull) | 1;
}

static struct occ rec_occ; /* under rec.mu */

static struct req *
req_new(BlockCompletionFunc *cb, void *opaque, const void *arg)
{
	struct req *r = malloc(sizeof(*r));
	struct log_event ev = { 0 };

	if (r == NULL)
		return NULL;
	r->cb = cb;
	r->opaque = opaque;
	r->id = atomic_fetch_add(&rec.next_req, 1);
	ev.kind = LOG_EV_IO_SUBMIT;
	ev.icount = icount_here(&ev.icount_how);
	ev.req = r->id;
	req_content(arg, &ev);
	pthread_mutex_lock(&rec.mu);
	r->key = content_key(&rec_occ, ev.op, ev.offset, ev.bytes);
	pthread_mutex_unlock(&rec.mu);
	emit(&ev);
	return r;
}

/* QEMU 7.2: thread_pool_submit_aio(pool, func, arg, cb, opaque) */
static BlockAIOCB *
hk_submit_v7(ThreadPool *pool, ThreadPoolFunc *func, void *arg, BlockCompletionFunc *cb,
	     void *opaque)
{
	BlockAIOCB *(*real)(ThreadPool *, ThreadPoolFunc *, void *, BlockCompletionFunc *, void *) =
		rec.submit;
	struct req *r = cb ? req_new(cb, opaque, arg) : NULL;

	return r ? real(pool, func, arg, req_complete, r) : real(pool, func, arg, cb, opaque);
}

/* QEMU >= 8.0: thread_pool_submit_aio(func, arg, cb, opaque) */
static BlockAIOCB *
hk_submit_v8(ThreadPoolFunc *func, void *arg, BlockCompletionFunc *cb, void *opaque)
{
	BlockAIOCB *(*real)(ThreadPoolFunc *, void *, BlockCompletionFunc *, void *) = rec.submit;
	struct req *r = cb ? req_new(cb, opaque, arg) : NULL;

	return r ? real(func, arg, req_complete, r) : real(func, arg, cb, opaque);
}

/* ---- replay: the same executor, driven by the recorded log ---- */

/* Arm the executor for the next recorded action. */

static void
replay_arm(void)
{
	if (rp.free || rec.timer == NULL || arming)
		return;
	if (rp.next >= rp.n) {
		replay_free("end of the log"); /* nothing (more) to replay: hand over what is held */
		return;
	}
	const struct action *a = &rp.v[rp.next];

	/*
	 * VIRTUAL = bias + (icount << shift); the bias moves only by warps.
	 * Armed for a warp too: the warp hook applies it, the executor only
	 * notices a guest that ran past it.
	 */
	arming = 1;
	rec.timer_mod_ns(rec.timer, __atomic_load_n(rec.icount_bias, __ATOMIC_ACQUIRE) +
					   (a->icount << rp.shift));
	arming = 0;
}

static void
replay_diverge(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
replay_diverge(const char *fmt, ...)
{
	char actual[256], expected[256];
	va_list ap;
	struct log_event ev = { 0 };
	const struct action *a = rp.next < rp.n ? &rp.v[rp.next] : NULL;

	va_start(ap, fmt);
	vsnprintf(actual, sizeof(actual), fmt, ap);
	va_end(ap);
	char at[48] = "";

	if (a && !rp.ordering)
		snprintf(at, sizeof(at), " at icount %lld", (long long)a->icount);
	if (a && a->kind == ACT_COMPLETE)
		snprintf(expected, sizeof(expected), "io_complete of request %llu%s",
			 (unsigned long long)a->key, at);
	else if (a && a->kind == ACT_RUN)
		snprintf(expected, sizeof(expected), "bh_run of %s (callback +%#llx)%s", a->name,
			 (unsigned long long)a->key, at);
	else if (a)
		snprintf(expected, sizeof(expected), "warp of %lld ns%s", (long long)a->delta, at);
	else
		snprintf(expected, sizeof(expected), "the end of the log");
	vlog_say("replay: divergence at recorded event #%llu: expected %s; %s",
		 a ? (unsigned long long)a->seq : 0ull, expected, actual);
	ev.kind = LOG_EV_DIVERGE;
	ev.icount = icount_now(&ev.icount_how, 0);
	ev.index = a ? a->seq : 0;
	ev.text = expected;
	ev.text_len = strlen(expected);
	ev.text2 = actual;
	ev.text2_len = strlen(actual);
	emit(&ev);
	replay_free("divergence");
	if (rp.stop_on_diverge) {
		vlog_say("replay: stopping QEMU (BHRR_ON_DIVERGE=stop; 'continue' would run on free)");
		rp.shutdown_request(1 /* SHUTDOWN_CAUSE_HOST_ERROR */);
	}
}

/* Deliver one completion or BH the way record's executor did; BQL held. */
static void
deliver_req(struct avail_req *q, unsigned how)
{
	struct log_event ev = { 0 };
	struct req *r = q->r;
	BlockCompletionFunc *cb = r->cb;
	void *op = r->opaque;

	ev.kind = LOG_EV_IO_COMPLETE;
	ev.icount = icount_now(&ev.icount_how, how == LOG_IC_EXACT);
	ev.req = r->id;
	ev.ret = q->ret;
	emit(&ev);
	free(r);
	in_executor++;
	cb(op, q->ret);
	in_executor--;
}

static void
deliver_bh(struct avail_bh *b, unsigned how)
{
	unsigned ih;

	pthread_mutex_lock(&rec.mu);
	struct held h = held_of_avail(b);

	pthread_mutex_unlock(&rec.mu);
	in_executor++;
	run_held(&h, how == LOG_IC_EXACT ? LOG_IC_EXACT : LOG_IC_LOWER,
		 icount_now(&ih, how == LOG_IC_EXACT), 0);
	in_executor--;
}

/*
 * Whether @r is the completion @a wants: by submission ordinal (exact mode,
 * where the guest submits identically), or in ordering mode by what the
 * request does, since a guest not held to the same instructions can batch,
 * and so number, its requests differently.
 */
static int
req_matches(const struct req *r, const struct action *a)
{
	return a->ckey ? r->key == a->ckey : r->id == a->key;
}

/* Take what action @a needs from the available sets; 1 if delivered. */
static int
take(const struct action *a)
{
	pthread_mutex_lock(&rec.mu);
	if (a->kind == ACT_COMPLETE) {
		for (size_t i = 0; i < rp.n_reqs; i++)
			if (req_matches(rp.reqs[i].r, a)) {
				struct avail_req q = rp.reqs[i];

				memmove(&rp.reqs[i], &rp.reqs[i + 1], (rp.n_reqs - i - 1) * sizeof(q));
				rp.n_reqs--;
				pthread_mutex_unlock(&rec.mu);
				deliver_req(&q, LOG_IC_EXACT);
				return 1;
			}
	} else if (a->kind == ACT_RUN) {
		for (size_t i = 0; i < rp.n_bhs; i++)
			if (rp.bhs[i].cb_off == a->key) {
				struct avail_bh b = rp.bhs[i];

				memmove(&rp.bhs[i], &rp.bhs[i + 1], (rp.n_bhs - i - 1) * sizeof(b));
				rp.n_bhs--;
				pthread_mutex_unlock(&rec.mu);
				deliver_bh(&b, LOG_IC_EXACT);
				return 1;
			}
	}
	pthread_mutex_unlock(&rec.mu);
	return 0;
}

static int
available(const struct action *a)
{
	int ok = 0;

	pthread_mutex_lock(&rec.mu);
	if (a->kind == ACT_COMPLETE)
		for (size_t i = 0; i < rp.n_reqs && !ok; i++)
			ok = req_matches(rp.reqs[i].r, a);
	else if (a->kind == ACT_RUN)
		for (size_t i = 0; i < rp.n_bhs && !ok; i++)
			ok = rp.bhs[i].cb_off == a->key;
	pthread_mutex_unlock(&rec.mu);
	return ok;
}

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
		if (rp.free || rp.next >= rp.n) {
			rp.parked = 0;
			return;
		}
		if (available(&rp.v[rp.next])) {
			rp.parked = 0;
			replay_step();
			return;
		}
		if (!rec.runstate_is_running()) {
			rp.parked = 0;
			return;
		}
		if (shim_now_ns() - t0 > (long long)watchdog_ms * 1000000) {
			rp.parked = 0;
			replay_diverge("it did not arrive within %ld ms", watchdog_ms);
			return;
		}
		struct timespec ts;

		rp.bql_unlock();
		pthread_mutex_lock(&rec.mu);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 10 * 1000000;
		ts.tv_sec += ts.tv_nsec / 1000000000;
		ts.tv_nsec %= 1000000000;
		pthread_cond_timedwait(&rp.cv, &rec.mu, &ts);
		pthread_mutex_unlock(&rec.mu);
		rp.bql_lock(__FILE__, __LINE__);
	}
}

static void
park(void)
{
	CPUState **cc = dlsym(RTLD_DEFAULT, "current_cpu");

	if (rp.parked)
		return;
	if (cc == NULL || *cc == NULL) {
		replay_free("cannot park: no current vCPU");
		return;
	}
	rp.parked = 1;
	rp.parks++;
	rec.async_run_on_cpu(*cc, park_fn, (run_on_cpu_data){ .host_ptr = NULL });
}

/* From the executor (vCPU thread, BQL, exact icount): act on the log. */
static void
replay_step(void)
{
	while (!rp.free) {
		if (rp.next >= rp.n) {
			replay_free("end of the log");
			return;
		}
		const struct action *a = &rp.v[rp.next];
		int64_t ic = __atomic_load_n(rec.qemu_icount, __ATOMIC_ACQUIRE);

		if (ic < a->icount) {
			replay_arm();
			return;
		}
		if (ic > a->icount) {
			replay_diverge("the guest is already at icount %lld", (long long)ic);
			return;
		}
		if (a->kind == ACT_WARP)
			return;
		if (!take(a)) {
			park();
			return;
		}
		rp.next++;
	}
}

/*
 * Ordering replay: deliver, in the caller's thread (the BQL held), every
 * recorded item whose turn has come and that has arrived.
 */
static void
ord_release(void)
{
	static __thread int depth;

	if (depth)
		return;
	depth++;
	while (!rp.free) {
		if (rp.next >= rp.n) {
			replay_free("end of the log");
			break;
		}
		if (!take(&rp.v[rp.next]))
			break;
		rp.next++;
		rp.progress_ns = shim_now_ns();
	}
	depth--;
	if (!rp.free && (rp.n_bhs || rp.n_reqs) && rp.watchdog)
		rec.timer_mod_ns(rp.watchdog, rec.clock_get_ns(0) + 1000000000ll);
}

/* Ordering replay, main loop, once a second while something is held. */
static void
ord_watchdog(void *opaque)
{
	(void)opaque;
	if (rp.free || (rp.n_bhs == 0 && rp.n_reqs == 0))
		return;
	if (shim_now_ns() - rp.progress_ns > (long long)watchdog_ms * 1000000) {
		replay_diverge("it did not arrive within %ld ms (%zu BHs and %zu completions held)",
			       watchdog_ms, rp.n_bhs, rp.n_reqs);
		return;
	}
	rec.timer_mod_ns(rp.watchdog, rec.clock_get_ns(0) + 1000000000ll);
}

/* The warp hook while replaying: warp only where the log has a warp. */
static void
replay_warp(void)
{
	const struct action *a = rp.next < rp.n ? &rp.v[rp.next] : NULL;
	int64_t ic = __atomic_load_n(rec.qemu_icount, __ATOMIC_ACQUIRE);

	/*
	 * QEMU asks for a warp when every vCPU is idle.  A vCPU that halted
	 * exactly at the executor's deadline is never woken to run it (the
	 * deadline passed by execution, not by a timer_mod): re-arming from
	 * here kicks it.
	 */
	if (a != NULL && a->kind != ACT_WARP && a->icount <= ic) {
		replay_arm();
		return;
	}
	if (arming)
		return;
	if (a == NULL || a->kind != ACT_WARP)
		return;

	if (ic > a->icount) {
		replay_diverge("the guest ran on to icount %lld without the warp", (long long)ic);
		return;
	}
	if (ic != a->icount)
		return;
	int64_t before = __atomic_load_n(rec.icount_bias, __ATOMIC_ACQUIRE);

	rec.warp();
	int64_t delta = __atomic_load_n(rec.icount_bias, __ATOMIC_ACQUIRE) - before;

	if (delta == 0)
		return; /* a vCPU was not idle yet: QEMU tries again */
	struct log_event ev = { 0 };

	ev.kind = LOG_EV_WARP;
	ev.icount = icount_now(&ev.icount_how, 1);
	ev.delta_ns = delta;
	emit(&ev);
	if (delta != a->delta) {
		replay_diverge("a warp of %lld ns where the log has %lld", (long long)delta,
			       (long long)a->delta);
		return;
	}
	rp.next++;
	replay_arm();
}

/* Recorded control ends: deliver everything held, run free from now on. */
static void
replay_free(const char *why)
{
	unsigned how;

	if (rp.free)
		return;
	rp.free = 1;
	vlog_say("replay: recorded control ended at icount %lld after %zu of %zu recorded events "
		 "(%s; %llu parks); running free",
		 (long long)icount_now(&how, 0), rp.next, rp.n, why, (unsigned long long)rp.parks);
	for (;;) {
		struct avail_req q;
		struct avail_bh b;
		int kind = 0;

		pthread_mutex_lock(&rec.mu);
		if (rp.n_reqs) {
			q = rp.reqs[0];
			memmove(&rp.reqs[0], &rp.reqs[1], --rp.n_reqs * sizeof(q));
			kind = 1;
		} else if (rp.n_bhs) {
			b = rp.bhs[0];
			memmove(&rp.bhs[0], &rp.bhs[1], --rp.n_bhs * sizeof(b));
			kind = 2;
		}
		pthread_cond_broadcast(&rp.cv);
		pthread_mutex_unlock(&rec.mu);
		if (kind == 1)
			deliver_req(&q, LOG_IC_LOWER);
		else if (kind == 2)
			deliver_bh(&b, LOG_IC_LOWER);
		else
			break;
	}
}

/* Read the recorded log into the action list; 0, or -1 with @why. */
static int
replay_load(const char *path, char *why, size_t len)
{
	char err[512];
	int code;
	struct log_reader *r = log_reader_open(path, &code, err, sizeof(err));
	struct log_event ev;
	size_t cap = 0;

	if (r == NULL) {
		snprintf(why, len, "%s", err);
		return -1;
	}
	const struct log_header *h = log_reader_header(r);

	rp.ordering = h->icount_mode != 1;
	if (strcmp(h->build_id, shim_qemu.build_id) != 0 && !getenv("BHRR_FORCE")) {
		snprintf(why, len, "%s was recorded with QEMU build %s (%s), this is %s (%s)", path,
			 h->build_id, h->qemu_version, shim_qemu.build_id, shim_qemu.version);
		log_reader_close(r);
		return -1;
	}
	rp.shift = h->icount_shift;
	uint64_t *keys = NULL; /* ordering: content key by request ordinal */
	size_t n_keys = 0;
	static struct occ occ;

	while (log_reader_next(r, &ev) == 1) {
		struct action a = { 0 };
		uint64_t cb;
		const char *name = NULL;

		if (ev.kind == LOG_EV_IO_SUBMIT && rp.ordering && ev.req < (1u << 24)) {
			if (ev.req >= n_keys) {
				size_t nn = (ev.req + 1) * 2;
				uint64_t *k = realloc(keys, nn * sizeof(*k));

				if (k == NULL)
					continue;
				memset(k + n_keys, 0, (nn - n_keys) * sizeof(*k));
				keys = k;
				n_keys = nn;
			}
			keys[ev.req] = content_key(&occ, ev.op, ev.offset, ev.bytes);
			continue;
		}

		if ((!rp.ordering && ev.icount_how != LOG_IC_EXACT) || (ev.flags & LOG_F_AT_ONCE))
			continue;
		if (ev.kind == LOG_EV_BH_RUN) {
			if (log_reader_ident(r, ev.ident, &cb, &name) < 0)
				continue;
			if (name && strcmp(name, "thread_pool_completion_bh") == 0)
				continue; /* its completions are their own actions */
			a.kind = ACT_RUN;
			a.key = cb;
			snprintf(a.name, sizeof(a.name), "%s", name ? name : "?");
		} else if (ev.kind == LOG_EV_IO_COMPLETE) {
			a.kind = ACT_COMPLETE;
			a.key = ev.req;
			a.ckey = rp.ordering && ev.req < n_keys ? keys[ev.req] : 0;
			snprintf(a.name, sizeof(a.name), "request");
		} else if (ev.kind == LOG_EV_WARP && !rp.ordering) {
			a.kind = ACT_WARP;
			a.delta = ev.delta_ns;
		} else {
			continue;
		}
		a.icount = ev.icount;
		a.seq = ev.seq;
		if (rp.n == cap) {
			cap = cap ? cap * 2 : 1024;
			struct action *v = realloc(rp.v, cap * sizeof(*v));

			if (v == NULL) {
				snprintf(why, len, "out of memory reading %s", path);
				log_reader_close(r);
				free(keys);
				return -1;
			}
			rp.v = v;
		}
		rp.v[rp.n++] = a;
	}
	if (log_reader_damage_count(r))
		vlog_error("%s is damaged; replaying the %zu actions that could be read", path, rp.n);
	log_reader_close(r);
	free(keys);
	return 0;
}

/* ---- discovery ---- */

static void
probe_cb(void *opaque)
{
	(void)opaque;
}

/*
 * Find the QEMUBH layout with a probe: create a BH with known ctx, callback,
 * opaque and name, find each value in the block, free it unscheduled.
 */
static int
discover_bh_layout(char *why, size_t len)
{
	QEMUBH *(*new_full)(void *, QEMUBHFunc *, void *, const char *, void *) =
		shim_qemu.sym[QS_AIO_BH_NEW_FULL].addr;
	void *const ctx = (void *)0x6268727201010101ull, *const opaque = (void *)0x6268727202020202ull;
	static const char name[] = "bhrr-probe";
	void *bh = new_full(ctx, probe_cb, opaque, name, NULL);
	int found = 0;

	if (bh == NULL) {
		snprintf(why, len, "aio_bh_new_full returned NULL");
		return -1;
	}
	rec.bh_size = malloc_usable_size(bh);
	for (size_t off = 0; off + sizeof(void *) <= rec.bh_size; off += sizeof(void *)) {
		void *v = field(bh, off);

		if (v == ctx)
			rec.off_ctx = off, found |= 1;
		else if (v == (void *)probe_cb)
			rec.off_cb = off, found |= 2;
		else if (v == opaque)
			rec.off_opaque = off, found |= 4;
		else if (v == (void *)name)
			rec.off_name = off, found |= 8;
	}
	free(bh); /* g_free is free() with glib's default allocator */
	if (found != 15) {
		snprintf(why, len, "the QEMUBH probe found only fields %#x of 0xf in %zu bytes", found,
			 rec.bh_size);
		return -1;
	}
	return 0;
}

/*
 * CPUState's running and can_do_io offsets, from QEMU's own code: the
 * function icount_get_raw() calls loads current_cpu, tests cpu->running
 * (cmpb $0,R(%reg); je), then cpu->can_do_io (cmpb, or mov+test; je) with
 * the je going to error_report("Bad icount read") and exit.  The same shape
 * in 7.2 and 10.0; anything else leaves the fields unknown, and schedule
 * icounts stay lower bounds.
 */
static void
discover_cpu_fields(void)
{
	const uint8_t *f = shim_qemu.sym[QS_ICOUNT_GET_RAW].addr;
	void *err_report = dlsym(RTLD_DEFAULT, "error_report");
	struct insn in;
	uint64_t at = (uint64_t)(uintptr_t)f, locked = 0;

	if (f == NULL || err_report == NULL)
		return;
	for (int i = 0; i < 16 && locked == 0; i++) {
		if (insn_decode((const uint8_t *)(uintptr_t)at, 15, at, &in) < 0 || in.terminator)
			return;
		if (in.cls == INSN_CALL_REL)
			locked = in.target;
		at += in.len;
	}
	if (locked == 0)
		return;
	int64_t running = -1, pend_disp = -1;
	unsigned pend_size = 0;
	int pend_reg = 0;

	at = locked;
	for (int i = 0; i < 24; i++) {
		if (insn_decode((const uint8_t *)(uintptr_t)at, 15, at, &in) < 0 || in.terminator)
			return;
		at += in.len;
		if (in.op == INSN_OP_CMP && in.mem_reg) {
			pend_disp = in.mem_disp, pend_size = in.mem_size, pend_reg = 0;
			continue;
		}
		if (in.op == INSN_OP_MOV && in.mem_reg && in.reg0) {
			pend_disp = in.mem_disp, pend_size = in.mem_size, pend_reg = in.reg0;
			continue;
		}
		if (in.op == INSN_OP_TEST && pend_reg && in.reg0 == pend_reg)
			continue; /* mov R(%rax),%edx; test %edx,%edx */
		if (in.cls != INSN_JCC_REL || in.cc != 4 /* je */ || pend_disp < 0) {
			pend_disp = -1;
			continue;
		}
		if (running < 0) {
			running = pend_disp;
			pend_disp = -1;
			continue;
		}
		/* the second je: does it go to error_report? */
		uint64_t t = in.target;

		for (int k = 0; k < 4; k++) {
			struct insn e;

			if (insn_decode((const uint8_t *)(uintptr_t)t, 15, t, &e) < 0)
				return;
			if (e.cls == INSN_CALL_REL) {
				if (e.target != (uint64_t)(uintptr_t)err_report)
					return;
				if (pend_size != 1 && pend_size != 4)
					return;
				rec.off_running = running;
				rec.off_can_do_io = pend_disp;
				rec.can_do_io_size = pend_size;
				rec.icount_get_raw = (int64_t (*)(void))(uintptr_t)f;
				rec.cpu_fields = 1;
				return;
			}
			t += e.len;
		}
		return;
	}
}

/*
 * timers_state.qemu_icount and .qemu_icount_bias: the documented offsets
 * (0x40, 0x28) are checked once the main loop runs; until then unused.
 */
static int
discover_timers(char *why, size_t len)
{
	char *ts = shim_qemu.sym[QS_TIMERS_STATE].addr;

	if (ts == NULL) {
		snprintf(why, len, "timers_state is not exported");
		return -1;
	}
	rec.qemu_icount = (volatile int64_t *)(ts + 0x40);
	rec.icount_bias = (volatile int64_t *)(ts + 0x28);
	return 0;
}

/* ---- start and stop ---- */

/* "-icount shift=N,sleep=off" (or "-icount N,sleep=off"): exact mode. */
static int
parse_icount(int argc, char **argv, unsigned *shift)
{
	for (int i = 0; i + 1 < argc; i++) {
		if (strcmp(argv[i], "-icount") != 0 && strcmp(argv[i], "--icount") != 0)
			continue;
		const char *o = argv[i + 1];
		const char *s = strstr(o, "shift=");
		const char *v = s ? s + 6 : o;

		if (strncmp(v, "auto", 4) == 0 || v[0] < '0' || v[0] > '9')
			return 2;
		*shift = (unsigned)atoi(v);
		return strstr(o, "sleep=off") ? 1 : 2;
	}
	return 0;
}

static int
read_cmdline(char **argv, int max, char *buf, size_t cap)
{
	FILE *f = fopen("/proc/self/cmdline", "r");
	size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
	int argc = 0;

	if (f)
		fclose(f);
	buf[n] = 0;
	for (size_t i = 0; i < n && argc < max; i += strlen(buf + i) + 1)
		argv[argc++] = buf + i;
	return argc;
}

static int
install(enum qsym_id id, void *hook, void **real, unsigned flags, char *why, size_t len)
{
	struct hook_info info;
	int err = hook_install_ex(shim_qemu.sym[id].addr, hook, real, flags, &info);

	if (err < 0)
		snprintf(why, len, "cannot hook %s: %s (%s)", qsym_name(&shim_qemu, id),
			 hook_errname(err), info.detail);
	return err;
}

int
record_start(int replay)
{
	static char cmdline[65536];
	struct log_header h;
	char why[1024], err[512];
	const char *path = getenv("BHRR_LOG");
	char defpath[64];
	const char *st = getenv("BHRR_STACKS");
	struct utsname un;

	if (shim_qemu.known == NULL && !getenv("BHRR_FORCE")) {
		vlog_error("QEMU build %s (%s, %s) is not one bhrr was tested on; not recording "
			   "(BHRR_FORCE=1 tries anyway)",
			   shim_qemu.build_id[0] ? shim_qemu.build_id : "without build-id",
			   shim_qemu.version[0] ? shim_qemu.version : "version unknown", shim_qemu.exe);
		return -1;
	}
	for (int i = 0; i < QS_COUNT; i++)
		if (shim_qemu.sym[i].addr == NULL && i != QS_ICOUNT_GET_RAW) {
			vlog_error("QEMU build %s lacks %s; not recording", shim_qemu.build_id,
				   qsym_name(&shim_qemu, i));
			return -1;
		}
	discover_cpu_fields();
	if (discover_bh_layout(why, sizeof(why)) < 0 || discover_timers(why, sizeof(why)) < 0) {
		vlog_error("QEMU build %s (%s): %s; not recording", shim_qemu.build_id,
			   shim_qemu.version, why);
		return -1;
	}
	if (replay) {
		const char *in = getenv("BHRR_REPLAY");

		if (in == NULL || in[0] == 0) {
			vlog_error("BHRR_MODE=replay needs BHRR_REPLAY=LOG; not replaying");
			return -1;
		}
		if (replay_load(in, why, sizeof(why)) < 0) {
			vlog_error("%s; not replaying", why);
			return -1;
		}
		const char *pol = getenv("BHRR_ON_DIVERGE");

		if (pol == NULL || pol[0] == 0 || strcmp(pol, "stop") == 0)
			rp.stop_on_diverge = 1;
		else if (strcmp(pol, "continue") != 0) {
			vlog_error("BHRR_ON_DIVERGE=%s: expected 'stop' or 'continue'; not replaying", pol);
			return -1;
		}
		rp.shutdown_request = shim_qemu.sym[QS_QEMU_SYSTEM_SHUTDOWN_REQUEST].addr;
		if (getenv("BHRR_WATCHDOG_MS")) {
			watchdog_ms = atol(getenv("BHRR_WATCHDOG_MS"));
			if (watchdog_ms < 100 || watchdog_ms > 3600000) {
				vlog_error("BHRR_WATCHDOG_MS=%s: expected 100 to 3600000; not replaying",
					   getenv("BHRR_WATCHDOG_MS"));
				return -1;
			}
		}

		rp.bql_lock = shim_qemu.sym[QS_BQL_LOCK].addr;
		rp.bql_unlock = shim_qemu.sym[QS_BQL_UNLOCK].addr;
	}
	rec.stacks = st ? (unsigned)atoi(st) : 0;
	/* test-only: completions reach QEMU this much later (replay: the vCPU parks; record: it idles, so QEMU warps) */
	rp.delay_us = getenv("BHRR_TEST_DELAY_US") ? (unsigned)atoi(getenv("BHRR_TEST_DELAY_US")) : 0;
	rec.main_tid = (pid_t)syscall(SYS_gettid);
	rec.timer_init_full = shim_qemu.sym[QS_TIMER_INIT_FULL].addr;
	rec.timer_mod_ns = shim_qemu.sym[QS_TIMER_MOD_NS].addr;
	rec.clock_get_ns = shim_qemu.sym[QS_QEMU_CLOCK_GET_NS].addr;
	rec.runstate_is_running = shim_qemu.sym[QS_RUNSTATE_IS_RUNNING].addr;
	rec.in_vcpu_thread = shim_qemu.sym[QS_QEMU_IN_VCPU_THREAD].addr;
	rec.get_aio_context = shim_qemu.sym[QS_QEMU_GET_AIO_CONTEXT].addr;
	rec.add_vm_change_state_handler = shim_qemu.sym[QS_ADD_VM_CHANGE_STATE_HANDLER].addr;
	rec.all_idle = shim_qemu.sym[QS_ALL_CPU_THREADS_IDLE].addr;
	rec.get_cpu = shim_qemu.sym[QS_QEMU_GET_CPU].addr;
	rec.deadline_ns_all = shim_qemu.sym[QS_QEMU_CLOCK_DEADLINE_NS_ALL].addr;
	rec.async_run_on_cpu = shim_qemu.sym[QS_ASYNC_RUN_ON_CPU].addr;

	/* every hook is checked before any is installed: never half-hooked */
	struct {
		enum qsym_id id;
		void *hook;
		void **real;
	} hooks[] = {
		{ QS_AIO_BH_CALL, (void *)hk_aio_bh_call, (void **)&rec.aio_bh_call },
		{ QS_QEMU_BH_SCHEDULE, (void *)hk_qemu_bh_schedule, (void **)&rec.schedule },
		{ QS_QEMU_BH_SCHEDULE_IDLE, (void *)hk_qemu_bh_schedule_idle, (void **)&rec.schedule_idle },
		{ QS_AIO_BH_SCHEDULE_ONESHOT, (void *)hk_oneshot, (void **)&rec.oneshot },
		{ QS_AIO_POLL, (void *)hk_aio_poll, (void **)&rec.aio_poll },
		{ QS_ICOUNT_START_WARP_TIMER, (void *)hk_warp, (void **)&rec.warp },
		{ QS_AIO_BH_NEW_FULL, (void *)hk_bh_new_full, (void **)&rec.bh_new },
		{ QS_QEMU_BH_DELETE, (void *)hk_bh_delete, (void **)&rec.bh_delete },
		{ QS_THREAD_POOL_SUBMIT_AIO,
		  shim_qemu.major >= 8 ? (void *)hk_submit_v8 : (void *)hk_submit_v7, &rec.submit },
	};
	size_t n_hooks = sizeof(hooks) / sizeof(hooks[0]);

	for (size_t i = 0; i < n_hooks; i++)
		if (install(hooks[i].id, hooks[i].hook, NULL, HOOK_F_DRY_RUN, why, sizeof(why)) < 0) {
			vlog_error("QEMU build %s: %s; not recording", shim_qemu.build_id, why);
			return -1;
		}

	/* the log first: if it cannot be created, nothing is hooked */
	memset(&h, 0, sizeof(h));
	snprintf(h.bhrr_version, sizeof(h.bhrr_version), "%s", PACKAGE_VERSION);
	snprintf(h.build_id, sizeof(h.build_id), "%s", shim_qemu.build_id);
	snprintf(h.qemu_version, sizeof(h.qemu_version), "%s", shim_qemu.version);
	snprintf(h.exe, sizeof(h.exe), "%s", shim_qemu.exe);
	if (uname(&un) == 0)
		snprintf(h.host, sizeof(h.host), "%.20s %.60s %.16s %.60s", un.sysname, un.release,
			 un.machine, un.nodename);
	h.argc = read_cmdline(h.argv, LOG_ARGV_MAX, cmdline, sizeof(cmdline));
	h.icount_mode = (unsigned)parse_icount(h.argc, h.argv, &h.icount_shift);
	h.pid = (uint64_t)getpid();
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	h.start_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
	rec.exact = h.icount_mode == 1;
	rec.shift = h.icount_shift;
	if (replay && rp.ordering)
		rec.exact = 0; /* the order is all the log has */
	else if (replay && (!rec.exact || h.icount_shift != rp.shift)) {
		vlog_error("replay needs the recorded -icount shift=%u,sleep=off on the command line; "
			   "not replaying", rp.shift);
		return -1;
	}
	if (h.icount_mode == 0)
		rec.qemu_icount = NULL; /* no icount: nothing to tag with */
	const char *chaos = getenv("BHRR_CHAOS");

	if (!replay && chaos && chaos[0]) {
		char *end;
		unsigned long long seed = strtoull(chaos, &end, 0);

		if (*end) {
			vlog_error("BHRR_CHAOS=%s: expected a number (the seed); not recording", chaos);
			return -1;
		}
		if (!rec.exact) {
			vlog_error("BHRR_CHAOS needs exact mode (-icount shift=N,sleep=off); not recording");
			return -1;
		}
		rec.chaos = 1;
		rec.chaos_rng = seed;
		vlog_say("chaos: seed %llu: %d%% of items delayed by %d to %d instructions, "
			 "%d%% of picks out of turn", seed, CHAOS_DELAY_PERCENT, CHAOS_DELAY_MIN,
			 CHAOS_DELAY_MAX, CHAOS_REORDER_PERCENT);
	}
	if (path == NULL || path[0] == 0) {
		snprintf(defpath, sizeof(defpath), "bhrr-%d.bhlog", (int)getpid());
		path = defpath;
	}
	rec.w = log_writer_open(path, &h, 0, err, sizeof(err));
	if (rec.w == NULL) {
		vlog_error("%s; not recording", err);
		return -1;
	}
	hook_batch_begin();
	for (size_t i = 0; i < n_hooks; i++)
		if (install(hooks[i].id, hooks[i].hook, hooks[i].real, 0, why, sizeof(why)) < 0)
			vlog_error("%s (after a successful dry run!)", why);
	hook_batch_end();
	/* threads only now: hooks are installed single-threaded */
	if (log_writer_start_flusher(rec.w, 50) < 0)
		vlog_error("cannot start the log flusher thread; the log is written at exit only");
	rec.active = 1;
	rp.on = replay;
	/* before main: the handler list is statically initialised */
	rec.add_vm_change_state_handler(vm_change, NULL);
	if (replay)
		vlog("replay: %zu recorded actions from %s (%s)", rp.n, getenv("BHRR_REPLAY"),
		     rp.ordering ? "ordering: in the recorded order" : "exact: at the recorded icounts");
	if (rec.cpu_fields)
		vlog("record: CPUState running@%#llx can_do_io@%#llx (%u bytes): exact vCPU-thread icounts",
		     (unsigned long long)rec.off_running, (unsigned long long)rec.off_can_do_io,
		     rec.can_do_io_size);
	else
		vlog("record: CPUState's can_do_io not found; schedule icounts are lower bounds");
	vlog("record: log %s, %s mode, QEMUBH %zu bytes (ctx@%zu name@%zu cb@%zu opaque@%zu)",
	     path, rec.exact ? "exact" : h.icount_mode == 2 ? "ordering (icount not exact)"
							    : "ordering (no icount)",
	     rec.bh_size, rec.off_ctx, rec.off_name, rec.off_cb, rec.off_opaque);
	return 0;
}

void
record_finish(void)
{
	unsigned how;
	int64_t ic;

	if (!rec.active)
		return;
	rec.active = 0;
	ic = icount_now(&how, 0);
	if (log_writer_seal(rec.w, ic) < 0)
		vlog_error("the log is incomplete");
	vlog("record: %llu BHs gated (%llu held for the executor), %llu passed through, "
	     "%llu schedule calls; %llu warps, %llu handed to the vCPU; "
	     "%llu executor landings moved one instruction on",
	     (unsigned long long)rec.gated, (unsigned long long)rec.held_total,
	     (unsigned long long)rec.passed, (unsigned long long)rec.schedules,
	     (unsigned long long)rec.warps, (unsigned long long)rec.warp_handoffs,
	     rec.landings);
}
