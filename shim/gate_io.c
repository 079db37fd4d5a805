/*
 * gate_io.c - the hook on the thread pool's requests (see gate.h).
 *
 * Thread-pool completions are batched into one BH, so each request gets
 * its own identity: thread_pool_submit_aio's callback is wrapped, every
 * submission is an io_submit event and every completion its own
 * io_complete, handed to the current policy.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "debug.h"
#include "emit.h"
#include "gate.h"
#include "gate_blk.h"
#include "ident.h"
#include "log.h"
#include "policy.h"
#include "qemu_rt.h"
#include "settings.h"

static atomic_ullong next_req; /* submission ordinals */

void
gate_complete_now(struct req *r, int ret)
{
	unsigned how;
	int exact = gate_in_executor > 0 && gate_poll_depth == 0;
	/* in an I/O access (gate_land_flags), qemu_icount lags: the TB is still running */
	int64_t ic = exact && gate_land_flags ? qrt_icount_here(&how, qrt_role())
					      : qrt_icount_now(&how, exact);
	uint64_t flags = gate_poll_depth > 0 || !debug_vm_running_or_held() ? LOG_F_AT_ONCE : 0;

	if (exact)
		flags |= gate_land_flags;
	BlockCompletionFunc *cb = r->cb;
	void *op = r->opaque, *blk = r->blk;

	emit_io_complete(r->id, ret, how, ic, flags);
	free(r);
	cb(op, ret);
	gate_blk_done(blk);
}

void
gate_req_complete(void *opaque, int ret)
{
	struct req *r = opaque;

	if (gate_poll_depth > 0) {
		gate_complete_now(r, ret); /* outside recorded control */
		return;
	}
	policy_current()->complete(r, ret);
}

/* The nodes and descriptors a submitting thread has checked, by hash. */
#define SEEN 8
static __thread struct seen {
	void *bs;
	int fd;
} seen[SEEN];

/*
 * What a request does, when its argument is file-posix's RawPosixAIOData
 * (bs, aio_type, aio_fildes, aio_offset, aio_nbytes: the same in 7.2 and
 * 10.0).  Checked, never trusted: an open descriptor and a known type, or
 * the request stays REQ_OP_OTHER.
 */
static int
req_content(const void *arg, uint64_t *op, uint64_t *offset, uint64_t *bytes)
{
	struct {
		void *bs;
		int type;
		int fd;
		int64_t offset;
		uint64_t nbytes;
	} d;

	*op = REQ_OP_OTHER;
	*offset = *bytes = 0;
	if (arg == NULL)
		return 0;
	memcpy(&d, arg, sizeof(d));
	if (d.bs == NULL || d.fd < 0 || d.offset < 0 || d.nbytes > (1ull << 32))
		return 0;
	/*
	 * The descriptor is asked about once per node and descriptor, not per
	 * request: an IDE PIO record made one system call more per completion,
	 * where every sector is a request.  A node that reopens its file under
	 * the same number is still an open descriptor.
	 */
	struct seen *c = &seen[((uintptr_t)d.bs >> 4 ^ (unsigned)d.fd) % SEEN];

	if (c->bs != d.bs || c->fd != d.fd) {
		if (fcntl(d.fd, F_GETFD) < 0)
			return 0;
		c->bs = d.bs;
		c->fd = d.fd;
	}
	switch (d.type & 0xff) { /* QEMU_AIO_READ, _WRITE, _FLUSH, _DISCARD */
	case 0x01: *op = REQ_OP_READ; break;
	case 0x02: *op = REQ_OP_WRITE; break;
	case 0x08: *op = REQ_OP_FLUSH; break;
	case 0x10: *op = REQ_OP_DISCARD; break;
	default: return 1; /* file-posix's, of another kind (write zeroes, ioctl, ...) */
	}
	*offset = (uint64_t)d.offset;
	*bytes = d.nbytes;
	return 1;
}

struct req *
gate_req_new(BlockCompletionFunc *cb, void *opaque, uint64_t op, uint64_t offset, uint64_t bytes)
{
	struct req *r = malloc(sizeof(*r));
	unsigned how;

	if (r == NULL)
		return NULL;
	r->cb = cb;
	r->opaque = opaque;
	r->blk = NULL;
	r->id = atomic_fetch_add(&next_req, 1);
	int64_t ic = qrt_icount_here(&how, qrt_role());

	r->key = emit_io_submit(r->id, op, offset, bytes, how, ic);
	return r;
}

/*
 * A thread-pool request of @arg, wrapped; NULL when memory runs out, or
 * when it is file-posix's and the block backend's gate is on (gate_blk.h:
 * the guest's request is gated there, once).  Other pool work (9p's, a
 * device's own) stays gated here.
 */
static struct req *
req_new(BlockCompletionFunc *cb, void *opaque, const void *arg)
{
	uint64_t op, offset, bytes;

	if (req_content(arg, &op, &offset, &bytes) && gate_blk_on)
		return NULL;
	return gate_req_new(cb, opaque, op, offset, bytes);
}

static void *real_thread_pool_submit_aio;

/*
 * Test-only (BHRR_TEST_SLOW_IO_US): the worker sleeps before the request's
 * work, so it is still in flight when the guest acts next (a reset that
 * cancels it).  Without the knob @func is returned as it is.
 */
struct slow_work {
	ThreadPoolFunc *func;
	void *arg;
};

static int
slow_work_fn(void *opaque)
{
	struct slow_work w = *(struct slow_work *)opaque;

	free(opaque);
	usleep(bhrr_cfg.test.slow_io_us);
	return w.func(w.arg);
}

static ThreadPoolFunc *
maybe_slow(ThreadPoolFunc *func, void **arg)
{
	struct slow_work *w;

	if (bhrr_cfg.test.slow_io_us == 0 || (w = malloc(sizeof(*w))) == NULL)
		return func;
	*w = (struct slow_work){ func, *arg };
	*arg = w;
	return slow_work_fn;
}

/* QEMU 7.2: thread_pool_submit_aio(pool, func, arg, cb, opaque) */
static BlockAIOCB *
hk_submit_v7(ThreadPool *pool, ThreadPoolFunc *func, void *arg, BlockCompletionFunc *cb,
	     void *opaque)
{
	BlockAIOCB *(*real)(ThreadPool *, ThreadPoolFunc *, void *, BlockCompletionFunc *, void *) =
		real_thread_pool_submit_aio;
	struct req *r = cb ? req_new(cb, opaque, arg) : NULL;

	func = maybe_slow(func, &arg);
	return r ? real(pool, func, arg, gate_req_complete, r) : real(pool, func, arg, cb, opaque);
}

/* QEMU >= 8.0: thread_pool_submit_aio(func, arg, cb, opaque) */
static BlockAIOCB *
hk_submit_v8(ThreadPoolFunc *func, void *arg, BlockCompletionFunc *cb, void *opaque)
{
	BlockAIOCB *(*real)(ThreadPoolFunc *, void *, BlockCompletionFunc *, void *) =
		real_thread_pool_submit_aio;
	struct req *r = cb ? req_new(cb, opaque, arg) : NULL;

	func = maybe_slow(func, &arg);
	return r ? real(func, arg, gate_req_complete, r) : real(func, arg, cb, opaque);
}

const struct hook_spec *
gate_io_hook(int takes_pool)
{
	static const struct hook_spec v7 = { QS_THREAD_POOL_SUBMIT_AIO, (void *)hk_submit_v7,
					     &real_thread_pool_submit_aio };
	static const struct hook_spec v8 = { QS_THREAD_POOL_SUBMIT_AIO, (void *)hk_submit_v8,
					     &real_thread_pool_submit_aio };

	return takes_pool ? &v7 : &v8;
}
