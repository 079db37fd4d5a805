/*
 * gate_bh.c - the hooks on QEMU's bottom halves (see gate.h): where a BH
 * runs (aio_bh_call, for every BH however it was scheduled: QEMU inlines
 * the enqueue into many callers), where one is made, scheduled and deleted,
 * and where the main loop polls.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "debug.h"
#include "discover.h"
#include "emit.h"
#include "executor.h"
#include "gate.h"
#include "gate_blk.h"
#include "gate_chr.h"
#include "gate_net.h"
#include "gate_clock.h"
#include "gate_rng.h"
#include "hook.h"
#include "log.h"
#include "log_action.h"
#include "policy.h"
#include "qemu_rt.h"
#include "session.h"
#include "settings.h"
#include "vlog.h"
#include "shim.h"

#define STACK_MAX 16
#define DELETE_RUN_MAX 16

__thread int gate_in_executor;
__thread uint64_t gate_land_flags;
__thread int gate_in_access;

/*
 * A BH that schedules itself again while its held copy runs in the vCPU
 * thread: thread_pool_completion_bh does, in case its callback polls, and
 * cancels that after the callback.  In the main loop's own thread that
 * costs nothing; from the vCPU thread it wakes the sleeping main loop,
 * which then waits for the BQL only to find the BH cancelled - a wake-up
 * and a BQL hand-over per completion.  So while a copy runs in the vCPU
 * thread, a schedule of its original is deferred: dropped by
 * qemu_bh_cancel, forgotten by qemu_bh_delete, done before a nested
 * aio_poll of this thread (which may wait for it), and otherwise done when
 * the copy returns - before the main loop could have taken the BQL to run
 * it anyway.  Not for a oneshot (no original left).  This thread's.
 */
static __thread const void *self_orig;
static __thread int self_deferred;
static void (*real_qemu_bh_schedule)(QEMUBH *bh);
static void (*real_qemu_bh_cancel)(QEMUBH *bh);
__thread int gate_poll_depth;
__thread int gate_quiet_notify;
static const char notify_bh_name[] = "notify_event_cb";
atomic_ullong gate_gated, gate_passed, gate_held, gate_schedules;

/* Host-side BHs that must run at once (doc/record.md). */
static const char *const allow_list[] = {
	notify_bh_name, "co_schedule_bh_cb", "dummy_bh_cb", "aio_wait_bh",
	"spawn_thread_bh_fn", "monitor_accept_input", "do_qmp_dispatch_bh", "chr_closed_bh",
	"graphic_hw_update_bh", "vnc_jobs_bh", "iothread_stop_bh", "vhost_user_async_close_bh",
	"migrate_fd_cleanup_bh", "qemu_chr_be_update_read_handlers_bh", "char_socket_finalize_bh",
	NULL,
};

static int
allow_listed_uncached(const char *name)
{
	if (name == NULL)
		return 0;
	for (int i = 0; allow_list[i]; i++)
		if (strcmp(name, allow_list[i]) == 0)
			return 1;
	return strncmp(name, "snapshot_", 9) == 0 || strncmp(name, "migration_", 10) == 0;
}

/*
 * BH names are string literals, so the same name is the same pointer: the
 * answer is cached per pointer, per thread (no lock), in a small
 * direct-mapped table.  Every BH call on the main context asks.
 */
#define ALLOW_CACHE 16

static __thread struct {
	const char *name;
	int allowed;
} allow_cache[ALLOW_CACHE]; /* this thread's */

static int
allow_listed(const char *name)
{
	unsigned k = (unsigned)(((uintptr_t)name >> 3) % ALLOW_CACHE);

	if (name == NULL || allow_cache[k].name != name) {
		int a = allow_listed_uncached(name);

		if (name == NULL)
			return a;
		allow_cache[k].name = name;
		allow_cache[k].allowed = a;
	}
	return allow_cache[k].allowed;
}

/* ---- running BHs ---- */

static void (*real_aio_bh_call)(QEMUBH *bh);

static void
call_as_executor(QEMUBH *bh)
{
	gate_in_executor++;
	real_aio_bh_call(bh);
	gate_in_executor--;
}

void
gate_run_now(QEMUBH *bh, const struct held *h, uint64_t flags)
{
	unsigned how;
	int64_t ic = qrt_icount_now(&how, 0);

	emit_bh_run(h, how, ic, flags);
	call_as_executor(bh);
}

void
gate_run_unlogged(QEMUBH *bh)
{
	real_aio_bh_call(bh);
}

int
gate_hold_bh(QEMUBH *bh, struct held *h)
{
	/* a copy: a oneshot is freed as soon as aio_bh_call returns */
	h->copy = malloc(qrt.bh_size);
	if (h->copy == NULL)
		return -1;
	memcpy(h->copy, bh, qrt.bh_size);
	if (held_add(h) < 0) {
		free(h->copy);
		h->copy = NULL;
		return -1;
	}
	atomic_fetch_add(&gate_held, 1);
	return 0;
}

void
gate_run_held(struct held *h, unsigned how, int64_t icount, uint64_t flags)
{
	flags |= gate_land_flags;
	if (h->kind == HELD_CHR) {
		gate_chr_run_held(h, how, icount, flags);
		return;
	}
	if (h->kind == HELD_RNG) {
		gate_rng_run_held(h, how, icount, flags);
		return;
	}
	if (h->kind == HELD_NET) {
		gate_net_run_held(h, how, icount, flags);
		return;
	}
	if (h->kind == HELD_TIMER) {
		gate_clock_run_held(h, how, icount, flags);
		return;
	}
	if (h->kind == HELD_REQ) {
		struct req *r = h->req;
		BlockCompletionFunc *cb = r->cb;
		void *op = r->opaque, *blk = r->blk;

		emit_io_complete(r->id, h->ret, how, icount, flags);
		free(r);
		gate_in_executor++;
		cb(op, h->ret);
		gate_in_executor--;
		gate_blk_done(blk);
		return;
	}
	emit_bh_run(h, how, icount, flags);
	if (qrt_role() != QRT_ROLE_VCPU) {
		call_as_executor(h->copy);
		free(h->copy);
		return;
	}
	const void *outer = self_orig;
	int outer_deferred = self_deferred;

	/* not a oneshot's: QEMU freed it, and a new BH may have its address */
	self_orig = h->instance ? h->orig : NULL;
	self_deferred = 0;
	call_as_executor(h->copy);
	if (self_deferred)
		real_qemu_bh_schedule((QEMUBH *)h->orig);
	self_orig = outer;
	self_deferred = outer_deferred;
	free(h->copy);
}

void
gate_run_at_once(struct held *run, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned how;
		int64_t ic = qrt_icount_now(&how, 0);

		gate_run_held(&run[i], how, ic, LOG_F_AT_ONCE);
	}
}

/* A gated BH's held item, identified (bh_new's ordinals; ident events logged once). */
static struct held
gated(QEMUBH *bh, void *cb, const char *name)
{
	struct held h = { .kind = HELD_BH, .orig = bh, .cb_off = qrt_exe_offset(cb) };

	atomic_fetch_add(&gate_gated, 1);
	emit_identify(cb, name, bh, &h.ident, &h.instance);
	return h;
}

/*
 * Whether a oneshot BH only hands a block request's completion to the gate
 * (gate_blk.h): blk_aio_prwv's blk_aio_complete_bh, scheduled through
 * replay_bh_schedule_oneshot_event (so named "cb") when a request completed
 * during its submission, with its BlockAIOCB as @opaque.  Whether a request
 * completes then or later is host timing (io_uring completes what it can at
 * once), so the BH is no event of its own: the gate keeps the completion
 * inside it, as for the thread pool's BH.  Only a "cb" BH's opaque is read:
 * BlockAIOCB's cb (offset 16) lies within any heap object's first 24 bytes.
 */
static int
carries_completion(const char *name, void *opaque)
{
	BlockCompletionFunc *cb;

	if (!gate_blk_on || opaque == NULL || name == NULL || strcmp(name, "cb") != 0)
		return 0;
	memcpy(&cb, (char *)opaque + 16, sizeof(cb));
	return cb == gate_req_complete;
}

static void
hk_aio_bh_call(QEMUBH *bh)
{
	AioContext *ctx = qrt_field(bh, qrt.off_ctx);
	const char *name = qrt_bh_name(bh);
	void *cb = qrt_field(bh, qrt.off_cb);
	AioContext *main_ctx = __atomic_load_n(&qrt.main_ctx, __ATOMIC_ACQUIRE);

	if (main_ctx == NULL) {
		/* qemu_get_aio_context() is the same global from any thread; NULL before init */
		main_ctx = qrt.get_aio_context();
		__atomic_store_n(&qrt.main_ctx, main_ctx, __ATOMIC_RELEASE);
	}
	if (ctx != main_ctx || main_ctx == NULL || allow_listed(name) || gate_in_executor ||
	    carries_completion(name, qrt_field(bh, qrt.off_opaque))) {
		atomic_fetch_add(&gate_passed, 1);
		real_aio_bh_call(bh);
		return;
	}
	/* only the main thread initialises (the main loop exists by now) */
	if (qrt_in_main_thread())
		executor_lazy_init();
	qrt_assert_bql("the gate");
	struct held h = gated(bh, cb, name);

	if (gate_poll_depth > 0 || !debug_vm_running_or_held()) {
		/* outside recorded control: a nested poll, or a stopped VM */
		gate_run_now(bh, &h, LOG_F_AT_ONCE);
		return;
	}
	policy_current()->bh(bh, &h, name);
}

/* ---- scheduling, creation and deletion ---- */

static void (*real_qemu_bh_schedule)(QEMUBH *bh);
static void (*real_qemu_bh_schedule_idle)(QEMUBH *bh);
static void (*real_aio_bh_schedule_oneshot_full)(AioContext *ctx, QEMUBHFunc *cb, void *opaque,
						 const char *name);
static QEMUBH *(*real_aio_bh_new_full)(AioContext *ctx, QEMUBHFunc *cb, void *opaque,
				       const char *name, void *guard);
static void (*real_qemu_bh_delete)(QEMUBH *bh);

static void
log_schedule(void *cb, const char *name)
{
	void *frames[STACK_MAX + 2];
	int n = 0;
	unsigned how;
	int64_t ic;

	atomic_fetch_add(&gate_schedules, 1);
	/*
	 * QEMU's SIGTERM handler schedules a BH: on a thread inside bhrr's
	 * logging (holding its id tables' or the writer's lock), logging it
	 * would wait for that thread itself.  Not logged.
	 */
	if (log_lock_held())
		return;
	if (bhrr_cfg.stacks)
		n = unw_backtrace(frames, (int)bhrr_cfg.stacks + 2);
	enum qrt_role role = qrt_role();

	ic = qrt_icount_here(&how, role);
	/* skip log_schedule and the hook */
	emit_schedule(cb, name, frames + 2, n > 2 ? n - 2 : 0, how, ic, role);
}

static int
scheduled_copy_of(const struct held *h, const void *bh)
{
	return h->kind == HELD_BH && h->orig == bh && h->scheduled;
}

/*
 * A gated BH that the vCPU thread schedules - a device's handler in a guest
 * access, or work bhrr landed there - would reach the gate when the main
 * loop gets to it: at host timing, and with it whether a second schedule
 * before that run coalesces into the first (QEMU runs a scheduled BH once,
 * however often it was scheduled).  Record and replay could then disagree
 * on how many runs there are: with virtio's ioeventfd on, about one replay
 * in 20 waited for a run of notify_guest_bh that its main loop had
 * coalesced away.  So such a BH is held right where it is scheduled, as if
 * the main loop had run it at once, and QEMU never sees it scheduled.  A
 * schedule while that copy still waits coalesces into it, as in QEMU;
 * qemu_bh_cancel and qemu_bh_delete drop it, as QEMU would not run it.  The
 * thread pool's BH is left alone (its schedule in the vCPU thread is only
 * the self-schedule deferred above).  1 if held (or coalesced).
 */
static int
hold_at_schedule(QEMUBH *bh)
{
	if (bh == NULL || !qrt.exact || qrt_role() != QRT_ROLE_VCPU || gate_poll_depth > 0 ||
	    !session_active() || __atomic_load_n(&qrt.timer, __ATOMIC_ACQUIRE) == NULL ||
	    qrt.bql_locked == NULL || !qrt.bql_locked() || !debug_vm_running_or_held())
		return 0;
	AioContext *ctx = qrt_field(bh, qrt.off_ctx);
	const char *name = qrt_bh_name(bh);
	void *cb = qrt_field(bh, qrt.off_cb);

	if (ctx == NULL || ctx != __atomic_load_n(&qrt.main_ctx, __ATOMIC_ACQUIRE) ||
	    allow_listed(name) || (name && strcmp(name, LOG_ACT_THREAD_POOL_BH) == 0))
		return 0;
	pthread_mutex_lock(&held_mu);
	int waiting = heldq_find(&held_q, 0, scheduled_copy_of, bh) < held_q.n;

	pthread_mutex_unlock(&held_mu);
	if (waiting)
		return 1;
	struct held h = gated(bh, cb, name);

	h.scheduled = 1;
	policy_current()->bh(bh, &h, name);
	return 1;
}

static void
hk_qemu_bh_schedule(QEMUBH *bh)
{
	if (gate_quiet_notify) {
		const char *name = qrt_bh_name(bh);

		if (name != NULL && strcmp(name, notify_bh_name) == 0)
			return; /* see gate_quiet_notify */
	}
	log_schedule(qrt_field(bh, qrt.off_cb), qrt_bh_name(bh));
	if (bh != NULL && bh == self_orig) {
		self_deferred = 1;
		return;
	}
	if (hold_at_schedule(bh))
		return;
	real_qemu_bh_schedule(bh);
}

/* Drop copies held where @bh was scheduled: QEMU believes them not yet run. */
static void
drop_scheduled(QEMUBH *bh)
{
	struct held h;

	for (;;) {
		if (held_take(scheduled_copy_of, bh, &h, 1) == 0)
			break;
		free(h.copy);
	}
}

static void
hk_qemu_bh_cancel(QEMUBH *bh)
{
	if (bh != NULL && bh == self_orig)
		self_deferred = 0;
	if (bh != NULL && session_active())
		drop_scheduled(bh);
	real_qemu_bh_cancel(bh);
}

static void
hk_qemu_bh_schedule_idle(QEMUBH *bh)
{
	log_schedule(qrt_field(bh, qrt.off_cb), qrt_bh_name(bh));
	real_qemu_bh_schedule_idle(bh);
}

/* aio_bh_schedule_oneshot_full (6.2 on) takes a name; before, the register is garbage.  Set once. */
static int oneshot_named;

static void
hk_aio_bh_schedule_oneshot_full(AioContext *ctx, QEMUBHFunc *cb, void *opaque, const char *name)
{
	log_schedule((void *)cb, oneshot_named ? name : qrt_cb_name(cb, NULL));
	real_aio_bh_schedule_oneshot_full(ctx, cb, opaque, name);
}

/*
 * Creation ordinals: the Nth BH made with this callback.  Every BH a device
 * owns comes from aio_bh_new_full (qemu_bh_new_full is a wrapper), so
 * (ident, instance) names it across runs, where its address does not.
 * 7.2 has four arguments, 10.0 a fifth (the reentrancy guard), and 5.2's
 * aio_bh_new three (no name): the fourth and fifth registers are passed on
 * either way, and read only where QEMUBH has a name.
 */
static QEMUBH *
hk_aio_bh_new_full(AioContext *ctx, QEMUBHFunc *cb, void *opaque, const char *name, void *guard)
{
	QEMUBH *bh = real_aio_bh_new_full(ctx, cb, opaque, name, guard);

	if (bh != NULL && session_active())
		emit_bh_new(bh, (void *)cb, qrt_cb_name(cb, name));
	return bh;
}

static int
held_copy_of(const struct held *h, const void *bh)
{
	return h->kind == HELD_BH && h->orig == bh;
}

/*
 * A BH deleted while bhrr still holds a copy of its run: QEMU believes it
 * ran already and may free its opaque right after this, so the copy runs
 * now, at once (logged so), before the real delete.
 */
static void
hk_qemu_bh_delete(QEMUBH *bh)
{
	struct held run[DELETE_RUN_MAX];
	size_t n_run;

	if (bh != NULL && bh == self_orig) /* a deferred schedule of it must not outlive it */
		self_deferred = 0;
	if (!session_active()) {
		real_qemu_bh_delete(bh);
		return;
	}
	emit_bh_delete(bh);
	drop_scheduled(bh); /* QEMU would not run a BH deleted while scheduled */
	n_run = held_take(held_copy_of, bh, run, DELETE_RUN_MAX);
	gate_run_at_once(run, n_run);
	real_qemu_bh_delete(bh);
}

/* ---- the main loop's polls ---- */

static bool (*real_aio_poll)(AioContext *ctx, bool blocking);

/*
 * A blocking nested poll of the vCPU thread while replay keeps work for
 * later icounts.  If the poll waits for some of it (a device reset
 * cancelling a request whose completion the log delivers later), blocking
 * would deadlock: the vCPU holds the BQL and only it could deliver.  So
 * poll without blocking; if nothing happens within the watchdog bound the
 * policy is told (replay names the divergence and hands everything over),
 * then block.
 */
static bool
guarded_poll(AioContext *ctx)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if (real_aio_poll(ctx, false))
			return true;
		if (held_count(0) == 0)
			break;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 >
		    bhrr_cfg.watchdog_ms) {
			policy_current()->nested_stuck();
			break;
		}
		usleep(1000);
	}
	return real_aio_poll(ctx, true);
}

static bool
hk_aio_poll(AioContext *ctx, bool blocking)
{
	bool r;

	if (self_deferred) { /* the poll may wait for it */
		self_deferred = 0;
		real_qemu_bh_schedule((QEMUBH *)self_orig);
	}
	if (ctx == NULL || ctx != __atomic_load_n(&qrt.main_ctx, __ATOMIC_ACQUIRE))
		return real_aio_poll(ctx, blocking);
	if (gate_poll_depth++ == 0) {
		unsigned how;
		int64_t ic = qrt_icount_now(&how, 0);
		enum qrt_role rl = qrt_role();

		emit_nested_poll(rl, how, ic);
		/* it may be waiting for held work: quit drains, a device reset cancels */
		if (rl == QRT_ROLE_MAIN || rl == QRT_ROLE_VCPU)
			policy_current()->nested_poll();
		if (blocking && rl == QRT_ROLE_VCPU && policy_current()->nested_stuck &&
		    held_count(0) > 0) {
			r = guarded_poll(ctx);
			gate_poll_depth--;
			return r;
		}
	}
	r = real_aio_poll(ctx, blocking);
	gate_poll_depth--;
	return r;
}

/* ---- where QEMU runs a BH without aio_bh_call ---- */

int
gate_bh_patch_call_site(int dry_run, char *why, size_t len)
{
	struct bh_call_site site;
	int r = discover_bh_call_site(&site, why, len);

	if (r <= 0)
		return r;
	int err = hook_call_site(site.at, site.len, site.keep, site.keep_len, site.reg,
				 (void *)hk_aio_bh_call, dry_run ? HOOK_F_DRY_RUN : 0);

	if (err < 0) {
		snprintf(why, len, "cannot patch aio_bh_poll's BH call at %p: %s", site.at,
			 hook_errname(err));
		return -1;
	}
	if (!dry_run)
		vlog("bh: aio_bh_poll runs BHs itself (aio_bh_call inlined): its call at %p (%zu "
		     "bytes) now goes through the BH gate", site.at, site.len);
	return 1;
}

/* ---- the hook table ---- */

const struct hook_spec *
gate_bh_hooks(size_t *n)
{
	static const struct hook_spec hooks[] = {
		{ QS_AIO_BH_CALL, (void *)hk_aio_bh_call, (void **)&real_aio_bh_call },
		{ QS_QEMU_BH_SCHEDULE, (void *)hk_qemu_bh_schedule, (void **)&real_qemu_bh_schedule },
		{ QS_QEMU_BH_SCHEDULE_IDLE, (void *)hk_qemu_bh_schedule_idle,
		  (void **)&real_qemu_bh_schedule_idle },
		{ QS_AIO_BH_SCHEDULE_ONESHOT, (void *)hk_aio_bh_schedule_oneshot_full,
		  (void **)&real_aio_bh_schedule_oneshot_full },
		{ QS_AIO_POLL, (void *)hk_aio_poll, (void **)&real_aio_poll },
		{ QS_AIO_BH_NEW_FULL, (void *)hk_aio_bh_new_full, (void **)&real_aio_bh_new_full },
		{ QS_QEMU_BH_DELETE, (void *)hk_qemu_bh_delete, (void **)&real_qemu_bh_delete },
		{ QS_QEMU_BH_CANCEL, (void *)hk_qemu_bh_cancel, (void **)&real_qemu_bh_cancel },
	};

	const char *f = shim_qemu.sym[QS_AIO_BH_SCHEDULE_ONESHOT].found;

	oneshot_named = f != NULL && strcmp(f, "aio_bh_schedule_oneshot_full") == 0;
	*n = sizeof(hooks) / sizeof(hooks[0]);
	return hooks;
}
