/*
 * gate.h - where guest-affecting work arrives: the hooks on QEMU's BH
 * machinery (gate_bh.c) and on the thread pool's requests (gate_io.c).
 *
 * The gate decides only *whether* work is guest-affecting (doc/record.md:
 * the main AioContext, not allow-listed, not already inside the executor,
 * the VM running and no nested aio_poll); what happens to gated work -
 * run now, hold for the executor, keep for the log - is the current
 * policy's (policy.h).  Every hook saves its original as real_*, beside it.
 *
 * Threads: the BH hooks run wherever QEMU runs a BH (the main loop, with
 * the BQL, or an iothread); submissions in the caller's thread (the vCPU
 * thread in an I/O access, or the main loop); completions in the thread
 * that polls the thread pool's BH (the main loop, BQL).
 */
#ifndef BHRR_GATE_H
#define BHRR_GATE_H

#include <stdatomic.h>
#include <stdint.h>

#include "held.h"
#include "qemu_types.h"
#include "shim.h"

/* An I/O request bhrr wrapped; owned by whoever holds it, freed on completion. */
struct req {
	BlockCompletionFunc *cb;
	void *opaque;
	uint64_t id;   /* submission ordinal in this run */
	uint64_t key;  /* content key (ident.h), 0 when unknown */
	void *blk;     /* the BlockBackend kept in flight while it is held (gate_blk.h), or NULL */
};

/* This thread is running held work or a BH outside the gate: nested BHs pass. */
extern __thread int gate_in_executor;
/*
 * Set while this thread (the vCPU's) lands work at an I/O access
 * (io_land.h): LOG_F_AT_IO, added to every bh_run and io_complete logged
 * meanwhile; 0 otherwise.
 */
extern __thread uint64_t gate_land_flags;
/*
 * Set while this thread (a vCPU's) is inside a guest's device access
 * (memory_region_dispatch_read/_write, io_land.c): what a device reads
 * then, it reads for the guest (gate_clock.h).
 */
extern __thread int gate_in_access;
/* This thread's depth of aio_poll on the main AioContext. */
extern __thread int gate_poll_depth;
/*
 * Set by the main loop's thread around arming one of bhrr's own
 * main-loop timers (executor.c): the wake-up that arming sends
 * (qemu_notify_event's schedule of notify_event_cb) is dropped, since this
 * thread recomputes its sleep from the timers before it sleeps again.
 * This thread's.
 */
extern __thread int gate_quiet_notify;

/* Counters for the exit summary; atomic. */
extern atomic_ullong gate_gated, gate_passed, gate_held, gate_schedules;

/* The BH hooks (gate_bh.c): @n set to their number. */
const struct hook_spec *gate_bh_hooks(size_t *n);

/*
 * Where aio_bh_poll calls BH callbacks itself (5.2 inlined aio_bh_call),
 * patch that call to go through the BH gate (discover_bh_call_site): 0 when
 * nothing needs patching, 1 when patched (or, @dry_run, patchable), -1
 * with @why.  Constructor: the self-check's dry run, then with the hooks.
 */
int gate_bh_patch_call_site(int dry_run, char *why, size_t len);
/*
 * The thread pool's submission hook: for a thread_pool_submit_aio that
 * @takes_pool as its first argument (before 8.0; discover.h reads it from
 * the code), or not.
 */
const struct hook_spec *gate_io_hook(int takes_pool);
/*
 * A request of @op (ident.h's REQ_OP_*) at @offset for @bytes, completing
 * through @cb(@opaque): its io_submit logged, its struct req returned to
 * pass to QEMU with gate_req_complete as the callback; NULL when memory
 * runs out (then pass @cb and @opaque as they are).
 */
struct req *gate_req_new(BlockCompletionFunc *cb, void *opaque, uint64_t op, uint64_t offset,
			 uint64_t bytes);
/* The callback of a gate_req_new request: hands the completion to the policy. */
void gate_req_complete(void *opaque, int ret);

/* ---- for the policies (BQL held) ---- */

/* Log @h as a bh_run with @flags at the icount now and run @bh itself. */
void gate_run_now(QEMUBH *bh, const struct held *h, uint64_t flags);
/* Run @bh without logging it (the thread pool's BH in replay: its completions are logged). */
void gate_run_unlogged(QEMUBH *bh);
/* Copy @bh into @h and append it to held_q; 0, or -1 (not held: run it yourself). */
int gate_hold_bh(QEMUBH *bh, struct held *h);
/*
 * Run a held item: a BH copy (bh_run logged, the copy freed) or a
 * completion (io_complete logged, the callback called, the request freed),
 * at @icount with @how and @flags.
 */
void gate_run_held(struct held *h, unsigned how, int64_t icount, uint64_t flags);
/* Run @n items taken from held_q here and now, outside recorded control (at once). */
void gate_run_at_once(struct held *run, size_t n);
/* Complete @r now, as record does outside the executor. */
void gate_complete_now(struct req *r, int ret);

#endif
