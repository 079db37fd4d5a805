/*
 * gate_blk.c - block requests gated at the block backend (gate_blk.h).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>

#include "gate.h"
#include "gate_blk.h"
#include "ident.h"
#include "symbols.h"
#include "vlog.h"

int gate_blk_on;

/* QEMUIOVector's first fields (iov, niov): the same in every QEMU bhrr knows. */
static uint64_t
qiov_bytes(const void *qiov)
{
	struct {
		const struct iovec *iov;
		int niov;
	} q;
	uint64_t n = 0;

	if (qiov == NULL)
		return 0;
	memcpy(&q, qiov, sizeof(q));
	for (int i = 0; q.iov != NULL && i < q.niov && i < 1024; i++)
		n += q.iov[i].iov_len;
	return n;
}

static void (*blk_inc)(void *blk), (*blk_dec)(void *blk); /* set once, constructor */

void
gate_blk_done(void *blk)
{
	if (blk != NULL && blk_dec != NULL)
		blk_dec(blk);
}

/* gate_req_new, with @blk kept in flight until the device's callback has run. */
static struct req *
req_of(void *blk, BlockCompletionFunc *cb, void *opaque, uint64_t op, uint64_t offset, uint64_t bytes)
{
	struct req *r = cb ? gate_req_new(cb, opaque, op, offset, bytes) : NULL;

	if (r != NULL) {
		r->blk = blk;
		blk_inc(blk);
	}
	return r;
}

typedef BlockAIOCB *rw_fn(void *blk, int64_t offset, void *qiov, int flags, BlockCompletionFunc *cb,
			  void *opaque);
static void *real_preadv, *real_pwritev, *real_flush, *real_pdiscard, *real_pwrite_zeroes, *real_ioctl;

static BlockAIOCB *
hk_preadv(void *blk, int64_t offset, void *qiov, int flags, BlockCompletionFunc *cb, void *opaque)
{
	struct req *r = req_of(blk, cb, opaque, REQ_OP_READ, (uint64_t)offset, qiov_bytes(qiov));

	return ((rw_fn *)real_preadv)(blk, offset, qiov, flags, r ? gate_req_complete : cb,
				      r ? (void *)r : opaque);
}

static BlockAIOCB *
hk_pwritev(void *blk, int64_t offset, void *qiov, int flags, BlockCompletionFunc *cb, void *opaque)
{
	struct req *r = req_of(blk, cb, opaque, REQ_OP_WRITE, (uint64_t)offset, qiov_bytes(qiov));

	return ((rw_fn *)real_pwritev)(blk, offset, qiov, flags, r ? gate_req_complete : cb,
				       r ? (void *)r : opaque);
}

static BlockAIOCB *
hk_flush(void *blk, BlockCompletionFunc *cb, void *opaque)
{
	BlockAIOCB *(*real)(void *, BlockCompletionFunc *, void *) = real_flush;
	struct req *r = req_of(blk, cb, opaque, REQ_OP_FLUSH, 0, 0);

	return real(blk, r ? gate_req_complete : cb, r ? (void *)r : opaque);
}

static BlockAIOCB *
hk_pdiscard(void *blk, int64_t offset, int64_t bytes, BlockCompletionFunc *cb, void *opaque)
{
	BlockAIOCB *(*real)(void *, int64_t, int64_t, BlockCompletionFunc *, void *) = real_pdiscard;
	struct req *r = req_of(blk, cb, opaque, REQ_OP_DISCARD, (uint64_t)offset, (uint64_t)bytes);

	return real(blk, offset, bytes, r ? gate_req_complete : cb, r ? (void *)r : opaque);
}

/* blk_aio_pwrite_zeroes(blk, offset, bytes, flags, cb, opaque): a write of zeroes */
static BlockAIOCB *
hk_pwrite_zeroes(void *blk, int64_t offset, int64_t bytes, int flags, BlockCompletionFunc *cb,
		 void *opaque)
{
	BlockAIOCB *(*real)(void *, int64_t, int64_t, int, BlockCompletionFunc *, void *) =
		real_pwrite_zeroes;
	struct req *r = req_of(blk, cb, opaque, REQ_OP_WRITE, (uint64_t)offset, (uint64_t)bytes);

	return real(blk, offset, bytes, flags, r ? gate_req_complete : cb, r ? (void *)r : opaque);
}

/* blk_aio_ioctl(blk, req, buf, cb, opaque): SCSI passthrough (scsi-block, scsi-generic) */
static BlockAIOCB *
hk_ioctl(void *blk, unsigned long req, void *buf, BlockCompletionFunc *cb, void *opaque)
{
	BlockAIOCB *(*real)(void *, unsigned long, void *, BlockCompletionFunc *, void *) = real_ioctl;
	struct req *r = req_of(blk, cb, opaque, REQ_OP_OTHER, (uint64_t)req, 0);

	return real(blk, req, buf, r ? gate_req_complete : cb, r ? (void *)r : opaque);
}

static const struct hook_spec hooks[] = {
	{ QS_BLK_AIO_PREADV, (void *)hk_preadv, &real_preadv },
	{ QS_BLK_AIO_PWRITEV, (void *)hk_pwritev, &real_pwritev },
	{ QS_BLK_AIO_FLUSH, (void *)hk_flush, &real_flush },
	{ QS_BLK_AIO_PDISCARD, (void *)hk_pdiscard, &real_pdiscard },
	{ QS_BLK_AIO_PWRITE_ZEROES, (void *)hk_pwrite_zeroes, &real_pwrite_zeroes },
	{ QS_BLK_AIO_IOCTL, (void *)hk_ioctl, &real_ioctl },
};

/* Whether an argument of QEMU's command line asks for io_uring, Linux AIO, qcow2 or -snapshot. */
static int
cmdline_wants(void)
{
	static char buf[65536];
	FILE *f = fopen("/proc/self/cmdline", "r");
	size_t n;

	if (f == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	for (size_t i = 0; i < n; i += strlen(buf + i) + 1) {
		const char *a = buf + i;

		if (strstr(a, "aio=io_uring") || strstr(a, "aio=native") || strstr(a, "qcow2") ||
		    strcmp(a, "-snapshot") == 0 || strcmp(a, "--snapshot") == 0 ||
		    strstr(a, "snapshot=on") ||
		    (strstr(a, "\"aio\"") && (strstr(a, "io_uring") || strstr(a, "\"native\""))))
			return 1;
	}
	return 0;
}

const struct hook_spec *
gate_blk_hooks(size_t *n)
{
	*n = 0;
	if (!cmdline_wants())
		return hooks;
	/* its completion BH is told by its name ("cb"), which 5.2's BHs lack */
	if (!qsym_bh_named(&shim_qemu)) {
		vlog_say("blk: this QEMU's BHs have no names (aio_bh_new), so bhrr cannot gate drives "
			 "at the block backend: qcow2 and -snapshot drives are recorded at the thread "
			 "pool, where a replay can depend on how many host requests a guest request "
			 "became, and io_uring and Linux AIO completions reach the guest at host timing");
		return hooks;
	}
	for (size_t i = 0; i < sizeof(hooks) / sizeof(hooks[0]); i++) {
		if (shim_qemu.sym[hooks[i].id].addr == NULL) {
			vlog_error("gating block requests at the block backend (aio=io_uring/native, "
				   "qcow2, -snapshot): this QEMU has no %s; the thread pool's gate stays, "
				   "and io_uring or Linux AIO completions reach the guest at host timing",
				   qsym_name(&shim_qemu, hooks[i].id));
			return hooks;
		}
	}
	blk_inc = shim_qemu.sym[QS_BLK_INC_IN_FLIGHT].addr;
	blk_dec = shim_qemu.sym[QS_BLK_DEC_IN_FLIGHT].addr;
	if (blk_inc == NULL || blk_dec == NULL) {
		vlog_error("gating block requests at the block backend: this QEMU has no "
			   "blk_inc_in_flight/blk_dec_in_flight; the thread pool's gate stays");
		return hooks;
	}
	gate_blk_on = 1;
	*n = sizeof(hooks) / sizeof(hooks[0]);
	return hooks;
}
