/*
 * discover.c - QEMU's layouts, measured (see discover.h).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "discover.h"
#include "hook_decode.h"
#include "qemu_rt.h"
#include "shim.h"

#define TIMERS_ICOUNT_OFF 0x40
#define TIMERS_BIAS_OFF 0x28

static void
probe_cb(void *opaque)
{
	(void)opaque;
}

/* A BH made by QEMU's own aio_bh_new_full with these values; NULL with @why. */
static void *
probe_bh(void *ctx, QEMUBHFunc *cb, void *opaque, const char *name, char *why, size_t len)
{
	QEMUBH *(*new_full)(void *, QEMUBHFunc *, void *, const char *, void *) =
		shim_qemu.sym[QS_AIO_BH_NEW_FULL].addr;
	void *bh = new_full(ctx, cb, opaque, name, NULL);

	if (bh == NULL)
		snprintf(why, len, "aio_bh_new_full returned NULL");
	return bh;
}

int
discover_bh_layout(char *why, size_t len)
{
	void *const ctx = (void *)0x6268727201010101ull, *const opaque = (void *)0x6268727202020202ull;
	static const char name[] = "bhrr-probe";
	void *bh = probe_bh(ctx, probe_cb, opaque, name, why, len);
	int found = 0;

	if (bh == NULL)
		return -1;
	qrt.bh_size = malloc_usable_size(bh);
	for (size_t off = 0; off + sizeof(void *) <= qrt.bh_size; off += sizeof(void *)) {
		void *v = qrt_field(bh, off);

		if (v == ctx)
			qrt.off_ctx = off, found |= 1;
		else if (v == (void *)probe_cb)
			qrt.off_cb = off, found |= 2;
		else if (v == opaque)
			qrt.off_opaque = off, found |= 4;
		else if (v == (void *)name)
			qrt.off_name = off, found |= 8;
	}
	free(bh); /* g_free is free() with glib's default allocator */
	if (found != 15) {
		snprintf(why, len, "the QEMUBH probe found only fields %#x of 0xf in %zu bytes", found,
			 qrt.bh_size);
		return -1;
	}
	return 0;
}

static void
verify_cb(void *opaque)
{
	(void)opaque;
}

int
discover_bh_verify(char *why, size_t len)
{
	void *const ctx = (void *)0x6268727203030303ull, *const opaque = (void *)0x6268727204040404ull;
	static const char name[] = "bhrr-verify";
	void *bh = probe_bh(ctx, verify_cb, opaque, name, why, len);

	if (bh == NULL)
		return -1;
	size_t size = malloc_usable_size(bh);
	const struct {
		const char *what;
		size_t off;
		void *want;
	} f[] = {
		{ "ctx", qrt.off_ctx, ctx },
		{ "cb", qrt.off_cb, (void *)verify_cb },
		{ "opaque", qrt.off_opaque, opaque },
		{ "name", qrt.off_name, (void *)name },
	};
	int rc = 0;

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]) && rc == 0; i++) {
		void *v = f[i].off + sizeof(void *) <= size ? qrt_field(bh, f[i].off) : NULL;

		if (v != f[i].want) {
			snprintf(why, len, "a second QEMUBH holds %p at %s's offset %zu, not the %s %p "
				 "it was made with", v, f[i].what, f[i].off, f[i].what, f[i].want);
			rc = -1;
		}
	}
	free(bh);
	return rc;
}

int
discover_timers(char *why, size_t len)
{
	char *ts = shim_qemu.sym[QS_TIMERS_STATE].addr;
	int64_t (*get_raw)(void) = shim_qemu.sym[QS_ICOUNT_GET_RAW].addr;
	int64_t (*get)(void) = shim_qemu.sym[QS_ICOUNT_GET].addr;
	int64_t (*to_ns)(int64_t) = shim_qemu.sym[QS_ICOUNT_TO_NS].addr;

	if (ts == NULL || get_raw == NULL || get == NULL || to_ns == NULL) {
		snprintf(why, len, "timers_state or QEMU's icount getters are not exported");
		return -1;
	}
	volatile int64_t *ic = (volatile int64_t *)(ts + TIMERS_ICOUNT_OFF);
	volatile int64_t *bias = (volatile int64_t *)(ts + TIMERS_BIAS_OFF);
	int64_t ic0 = *ic, bias0 = *bias;
	/*
	 * Before main(): no vCPU runs and current_cpu is NULL, so QEMU's getters
	 * just read the fields.  Sentinels in, QEMU's own answer out, the fields
	 * restored (they are zero: cpu_timers_init has not run yet).
	 */
	const int64_t s_ic = 0x1234567, s_bias = 0x7654321000ll;

	*ic = s_ic;
	*bias = s_bias;
	int64_t raw = get_raw(), clock = get(), want = s_bias + to_ns(s_ic);

	*ic = ic0;
	*bias = bias0;
	if (raw != s_ic || clock != want) {
		snprintf(why, len, "timers_state does not hold qemu_icount at +%#x and the bias at "
			 "+%#x (icount_get_raw() read %#llx for %#llx, icount_get() %#llx for %#llx)",
			 TIMERS_ICOUNT_OFF, TIMERS_BIAS_OFF, (unsigned long long)raw,
			 (unsigned long long)s_ic, (unsigned long long)clock, (unsigned long long)want);
		return -1;
	}
	qrt.qemu_icount = ic;
	qrt.icount_bias = bias;
	return 0;
}

/*
 * The function icount_get_raw() calls loads current_cpu, tests cpu->running
 * (cmpb $0,R(%reg); je), then cpu->can_do_io (cmpb, or mov+test; je), the
 * second je going to error_report("Bad icount read") and exit.  The same
 * shape in 7.2 and 10.0; anything else leaves the fields unknown.
 */
void
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
				if (e.target != (uint64_t)(uintptr_t)err_report ||
				    (pend_size != 1 && pend_size != 4))
					return;
				qrt.off_running = running;
				qrt.off_can_do_io = pend_disp;
				qrt.can_do_io_size = pend_size;
				qrt.icount_get_raw = (int64_t (*)(void))(uintptr_t)f;
				qrt.cpu_fields = 1;
				return;
			}
			t += e.len;
		}
		return;
	}
}

int
discover_submit_takes_pool(void)
{
	const uint8_t *f = shim_qemu.sym[QS_THREAD_POOL_SUBMIT_AIO].addr;
	void *get_pool = dlsym(RTLD_DEFAULT, "aio_get_thread_pool");
	void *aio_get = dlsym(RTLD_DEFAULT, "qemu_aio_get");
	uint64_t at = (uint64_t)(uintptr_t)f;

	if (f == NULL || aio_get == NULL)
		return -1;
	for (int i = 0; i < 64; i++) {
		struct insn in;

		if (insn_decode((const uint8_t *)(uintptr_t)at, 15, at, &in) < 0 || in.terminator)
			return -1;
		if (in.cls == INSN_CALL_REL && get_pool != NULL && in.target == (uint64_t)(uintptr_t)get_pool)
			return 0; /* it finds the pool itself: 8.0 on */
		if (in.cls == INSN_CALL_REL && in.target == (uint64_t)(uintptr_t)aio_get)
			return 1; /* the pool was given: before 8.0 */
		at += in.len;
	}
	return -1;
}

int
discover_notifier_takes_external(void)
{
	const uint8_t *f = dlsym(RTLD_DEFAULT, "aio_set_event_notifier");
	void *set_fd = dlsym(RTLD_DEFAULT, "aio_set_fd_handler");
	uint64_t at = (uint64_t)(uintptr_t)f;
	int zeroed = -1; /* 1: r8 (the fifth argument) was zeroed last, 0: rcx (the fourth) */

	if (f == NULL || set_fd == NULL)
		return -1;
	for (int i = 0; i < 48; i++) {
		struct insn in;

		if (insn_decode((const uint8_t *)(uintptr_t)at, 15, at, &in) < 0 || in.terminator)
			return -1;
		if (strcmp(in.text, "xor r8d, r8d") == 0)
			zeroed = 1;
		else if (strcmp(in.text, "xor ecx, ecx") == 0)
			zeroed = 0;
		if (in.cls == INSN_CALL_REL && in.target == (uint64_t)(uintptr_t)set_fd)
			return zeroed; /* io_write, always NULL: its register says where the arguments are */
		at += in.len;
	}
	return -1;
}
