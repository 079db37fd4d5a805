/*
 * discover.c - QEMU's layouts, measured (see discover.h).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "discover.h"
#include "hook_decode.h"
#include "hook_symsize.h"
#include "qemu_rt.h"
#include "shim.h"

#define TIMERS_ICOUNT_OFF 0x40
#define TIMERS_BIAS_OFF 0x28

static void
probe_cb(void *opaque)
{
	(void)opaque;
}

/*
 * A BH made by QEMU's own aio_bh_new_full with these values, or by
 * aio_bh_new (before 6.2: no name); NULL with @why.
 */
static void *
probe_bh(void *ctx, QEMUBHFunc *cb, void *opaque, const char *name, char *why, size_t len)
{
	void *f = shim_qemu.sym[QS_AIO_BH_NEW_FULL].addr;
	void *bh;

	if (qrt.bh_named)
		bh = ((QEMUBH *(*)(void *, QEMUBHFunc *, void *, const char *, void *))f)(ctx, cb, opaque,
											name, NULL);
	else
		bh = ((QEMUBH *(*)(void *, QEMUBHFunc *, void *))f)(ctx, cb, opaque);
	if (bh == NULL)
		snprintf(why, len, "%s returned NULL", qsym_name(&shim_qemu, QS_AIO_BH_NEW_FULL));
	return bh;
}

int
discover_bh_layout(char *why, size_t len)
{
	void *const ctx = (void *)0x6268727201010101ull, *const opaque = (void *)0x6268727202020202ull;
	static const char name[] = "bhrr-probe";
	qrt.bh_named = qsym_bh_named(&shim_qemu);
	void *bh = probe_bh(ctx, probe_cb, opaque, name, why, len);
	int found = qrt.bh_named ? 0 : 8, off_name = 0;

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
		else if (qrt.bh_named && v == (void *)name)
			qrt.off_name = off, found |= 8, off_name = 1;
	}
	free(bh); /* g_free is free() with glib's default allocator */
	if (!off_name)
		qrt.off_name = 0; /* no name field: qrt_bh_name() never reads it */
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
	size_t nf = sizeof(f) / sizeof(f[0]) - !qrt.bh_named; /* "name" is last */
	int rc = 0;

	for (size_t i = 0; i < nf && rc == 0; i++) {
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

/*
 * The offsets into timers_state (@ts) of the 8-byte loads "mov REG, qword
 * ptr [rip + d]" in @fn's first 64 instructions and, with @follow, in the
 * first function it calls directly: icount_get_raw's seqlock loop calls
 * the function that reads qemu_icount.  Up to @max; their number.
 */
static int
timers_loads(const void *fn, int follow, const char *ts, size_t ts_size, int64_t *offs, int max)
{
	uint64_t at = (uint64_t)(uintptr_t)fn, callee = 0;
	int n = 0;

	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < 64; i++) {
			struct insn in;

			if (insn_decode((const uint8_t *)(uintptr_t)at, 15, at, &in) < 0)
				break;
			at += in.len;
			if (in.cls == INSN_CALL_REL && callee == 0)
				callee = in.target;
			if (in.cls == INSN_RIPREL && strncmp(in.text, "mov r", 5) == 0 &&
			    strstr(in.text, ", qword ptr [rip") != NULL) {
				int64_t off = (int64_t)(at + (uint64_t)in.disp) - (int64_t)(uintptr_t)ts;

				if (off >= 0 && (size_t)off + 8 <= ts_size && off % 8 == 0 && n < max)
					offs[n++] = off;
			}
			if (in.terminator)
				break;
		}
		if (!follow || callee == 0)
			break;
		at = callee;
		follow = 0;
	}
	return n;
}

int
discover_timers(char *why, size_t len)
{
	char *ts = shim_qemu.sym[QS_TIMERS_STATE].addr;
	int64_t (*get_raw)(void) = shim_qemu.sym[QS_ICOUNT_GET_RAW].addr;
	int64_t (*get)(void) = shim_qemu.sym[QS_ICOUNT_GET].addr;
	int64_t (*to_ns)(int64_t) = shim_qemu.sym[QS_ICOUNT_TO_NS].addr;
	/* where 7.2 to 11.1 keep them; 5.2 keeps the bias at +0x20 */
	int64_t ic_offs[8] = { TIMERS_ICOUNT_OFF }, bias_offs[8] = { TIMERS_BIAS_OFF };
	int n_ic = 1, n_bias = 1;

	if (ts == NULL || get_raw == NULL || get == NULL || to_ns == NULL) {
		snprintf(why, len, "timers_state or QEMU's icount getters are not exported");
		return -1;
	}
	/* and where QEMU's own getters read them (the first to prove itself wins), within timers_state */
	Dl_info di;
	const ElfW(Sym) *sym = NULL;
	size_t ts_size = dladdr1(ts, &di, (void **)&sym, RTLD_DL_SYMENT) && sym ? sym->st_size : 0;

	if (ts_size > 0 && insn_decoder_open() == 0) {
		n_ic += timers_loads((const void *)get_raw, 1, ts, ts_size, ic_offs + 1, 7);
		n_bias += timers_loads((const void *)get, 0, ts, ts_size, bias_offs + 1, 7);
	}
	/*
	 * Before main(): no vCPU runs and current_cpu is NULL, so QEMU's getters
	 * just read the fields.  Sentinels in, QEMU's own answer out, the fields
	 * restored (they are zero: cpu_timers_init has not run yet).  Only
	 * 8-byte fields QEMU's getters load are written, with even values: were
	 * one the seqlock after all, an odd sequence would make its reader spin.
	 */
	const int64_t s_ic = 0x1234568, s_bias = 0x7654321000ll;
	int64_t raw = 0, clock = 0, want = 0;

	for (int i = 0; i < n_ic; i++)
		for (int k = 0; k < n_bias; k++) {
			if (ic_offs[i] == bias_offs[k])
				continue;
			volatile int64_t *ic = (volatile int64_t *)(ts + ic_offs[i]);
			volatile int64_t *bias = (volatile int64_t *)(ts + bias_offs[k]);
			int64_t ic0 = *ic, bias0 = *bias;

			*ic = s_ic;
			*bias = s_bias;
			raw = get_raw(), clock = get(), want = s_bias + to_ns(s_ic);
			*ic = ic0;
			*bias = bias0;
			if (raw == s_ic && clock == want) {
				qrt.qemu_icount = ic;
				qrt.icount_bias = bias;
				return 0;
			}
		}
	snprintf(why, len, "timers_state does not hold qemu_icount at +%#x and the bias at +%#x, nor "
		 "where QEMU's getters read them (%d and %d places; icount_get_raw() read %#llx for "
		 "%#llx, icount_get() %#llx for %#llx)", TIMERS_ICOUNT_OFF, TIMERS_BIAS_OFF, n_ic - 1,
		 n_bias - 1, (unsigned long long)raw, (unsigned long long)s_ic,
		 (unsigned long long)clock, (unsigned long long)want);
	return -1;
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

/* ---- BH callbacks by name, where QEMUBH has none (before 6.2) ---- */

/* The general-purpose registers, 64- and 32-bit spellings, by slot. */
static const char *const gpr64[16] = { "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
				       "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15" };
static const char *const gpr32[16] = { "eax", "ebx", "ecx", "edx", "esi", "edi", "ebp", "esp",
				       "r8d", "r9d", "r10d", "r11d", "r12d", "r13d", "r14d", "r15d" };

/* The slot of register @s (a whole operand of @n characters), or -1. */
static int
gpr_slot(const char *s, size_t n)
{
	for (int i = 0; i < 16; i++)
		if ((strlen(gpr64[i]) == n && strncmp(s, gpr64[i], n) == 0) ||
		    (strlen(gpr32[i]) == n && strncmp(s, gpr32[i], n) == 0))
			return i;
	return -1;
}

/*
 * The callbacks function @fn gives the BHs it makes, in the order of its
 * code: a code address loaded with "lea REG, [rip + d]" and then passed in
 * the callback's register to aio_bh_new (rsi), qemu_bh_new (rdi) or
 * aio_bh_schedule_oneshot (rsi), by call or tail jump; or stored into a
 * QEMUBH's cb field where aio_bh_new was inlined (async.c's own BHs).  A
 * register written any other way, or by a call, no longer holds it.
 * Linear over the function's bytes (its dynamic symbol's size).  The
 * number found (at most @max), or -1 when @fn cannot be read.
 */
static int
bh_cbs_in(const char *fn, const void **cbs, int max)
{
	static const struct {
		const char *sym;
		int slot; /* the callback's argument register */
	} makers[] = { { "aio_bh_new", 4 }, { "qemu_bh_new", 5 }, { "aio_bh_schedule_oneshot", 4 } };
	const void *maker[3];
	const uint8_t *f = dlsym(RTLD_DEFAULT, fn);
	size_t size = f ? hook_symbol_size(f) : 0;
	uint64_t held[16] = { 0 }; /* the code address each register holds, 0 for none */
	Dl_info di;
	int n = 0;

	if (f == NULL || size == 0 || size > 65536)
		return -1;
	for (int m = 0; m < 3; m++)
		maker[m] = dlsym(RTLD_DEFAULT, makers[m].sym);
	for (uint64_t at = (uint64_t)(uintptr_t)f; at < (uint64_t)(uintptr_t)f + size;) {
		struct insn in;
		const char *ops, *comma;
		int d, s;
		uint64_t cb = 0;

		if (insn_decode((const uint8_t *)(uintptr_t)at, 15, at, &in) < 0)
			return n;
		at += in.len;
		ops = strchr(in.text, ' ');
		ops = ops ? ops + 1 : in.text + strlen(in.text);
		comma = strstr(ops, ", ");
		d = comma ? gpr_slot(ops, (size_t)(comma - ops)) : -1;
		if (in.cls == INSN_CALL_REL || in.cls == INSN_JMP_REL) {
			for (int m = 0; m < 3; m++)
				if (maker[m] && in.target == (uint64_t)(uintptr_t)maker[m])
					cb = held[makers[m].slot];
			memset(held, 0, sizeof(held));
		} else if (strncmp(in.text, "call ", 5) == 0) {
			memset(held, 0, sizeof(held));
		} else if (strncmp(in.text, "lea ", 4) == 0 && in.cls == INSN_RIPREL && d >= 0) {
			held[d] = at + (uint64_t)in.disp;
			continue;
		} else if (in.terminator) {
			memset(held, 0, sizeof(held)); /* ret, an indirect jump: nothing flows on */
		} else if (strncmp(in.text, "mov qword ptr [", 15) == 0 && comma && in.mem_reg != 0 &&
			   in.mem_disp == (int64_t)qrt.off_cb && strncmp(in.text + 15, "rsp", 3) != 0 &&
			   strncmp(in.text + 15, "rbp", 3) != 0 &&
			   (s = gpr_slot(comma + 2, strlen(comma + 2))) >= 0) {
			cb = held[s]; /* into a heap QEMUBH (aio_bh_new inlined), not a stack struct */
		}
		if (d >= 0)
			held[d] = 0;
		/* a callback is code of the executable itself */
		if (cb && n < max && dladdr((void *)(uintptr_t)cb, &di) && di.dli_fbase == shim_qemu.exe_base)
			cbs[n++] = (const void *)(uintptr_t)cb;
	}
	return n;
}

int
discover_bh_names(char *why, size_t len)
{
	/* the callbacks gate_bh.c treats by name, and where QEMU makes their BHs */
	static const struct {
		const char *name, *in;
		int nth, optional; /* optional: a feature CI runs rarely; unnamed, its BH is gated */
	} sites[] = {
		{ "notify_event_cb", "qemu_init_main_loop", 0, 0 },
		{ "co_schedule_bh_cb", "aio_context_new", 0, 0 },
		{ "dummy_bh_cb", "aio_wait_kick", 0, 0 },
		{ "aio_wait_bh", "aio_wait_bh_oneshot", 0, 0 },
		{ "thread_pool_completion_bh", "thread_pool_new", 0, 0 }, /* completion_bh, then */
		{ "spawn_thread_bh_fn", "thread_pool_new", 1, 0 },        /* new_thread_bh */
		{ "monitor_accept_input", "monitor_resume", 0, 0 },
		{ "do_qmp_dispatch_bh", "qmp_dispatch", 0, 0 },
		{ "iothread_stop_bh", "iothread_stop", 0, 1 },
		{ "migrate_fd_cleanup_bh", "migrate_fd_connect", 0, 1 },
	};

	qrt.n_cb_names = 0;
	if (insn_decoder_open() < 0) {
		snprintf(why, len, "the instruction decoder did not open");
		return -1;
	}
	for (size_t i = 0; i < sizeof(sites) / sizeof(sites[0]); i++) {
		const void *cbs[4];
		int n = bh_cbs_in(sites[i].in, cbs, 4);

		if (n <= sites[i].nth && sites[i].optional)
			continue;
		if (n <= sites[i].nth) {
			snprintf(why, len, "%s: %s (where QEMUBH has no name, bhrr finds its callback in "
				 "the code of %s, which gives %d)", sites[i].name,
				 n < 0 ? "not readable" : "not found", sites[i].in, n < 0 ? 0 : n);
			return -1;
		}
		for (unsigned k = 0; k < qrt.n_cb_names; k++)
			if (qrt.cb_names[k].cb == cbs[sites[i].nth]) {
				snprintf(why, len, "%s and %s: the same callback %p, found in %s",
					 qrt.cb_names[k].name, sites[i].name, cbs[sites[i].nth],
					 sites[i].in);
				return -1;
			}
		qrt.cb_names[qrt.n_cb_names].cb = cbs[sites[i].nth];
		qrt.cb_names[qrt.n_cb_names++].name = sites[i].name;
	}
	return 0;
}

/* discover_vm_handlers_ready's scan of @f; *@tail gets a tail jump's target. */
static int
vm_handlers_head(const uint8_t *f, uint64_t *tail)
{
	size_t size = f ? hook_symbol_size(f) : 0;
	uint64_t t[16];
	int n = 0;

	*tail = 0;
	if (f == NULL || size == 0 || size > 4096)
		return -1;
	for (uint64_t at = (uint64_t)(uintptr_t)f; at < (uint64_t)(uintptr_t)f + size && n < 16;) {
		struct insn in;

		if (insn_decode((const uint8_t *)(uintptr_t)at, 15, at, &in) < 0)
			break;
		at += in.len;
		if (in.cls == INSN_RIPREL)
			t[n++] = at + (uint64_t)in.disp;
		if (in.cls == INSN_JMP_REL && *tail == 0)
			*tail = in.target;
	}
	/* the list head: a field T and its tql_prev at T + 8, both used */
	for (int i = 0; i < n; i++)
		for (int k = 0; k < n; k++)
			if (t[k] == t[i] + 8)
				return *(void *const *)(uintptr_t)t[k] != NULL;
	return -1;
}

int
discover_vm_handlers_ready(void)
{
	uint64_t tail;

	if (insn_decoder_open() < 0)
		return -1;
	int r = vm_handlers_head(dlsym(RTLD_DEFAULT, "qemu_add_vm_change_state_handler_prio"), &tail);

	/* 10.0 on: a wrapper that tail-jumps to qemu_add_vm_change_state_handler_prio_full */
	if (r < 0 && tail != 0)
		r = vm_handlers_head((const uint8_t *)(uintptr_t)tail, &tail);
	return r;
}

/* Whether @text mentions register token @tok (whole word). */
static int
mentions(const char *text, const char *tok)
{
	size_t n = strlen(tok);

	for (const char *p = strstr(text, tok); p; p = strstr(p + 1, tok)) {
		int before = p == text || !((p[-1] >= 'a' && p[-1] <= 'z') || (p[-1] >= '0' && p[-1] <= '9'));
		char c = p[n];
		int after = !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'));

		if (before && after)
			return 1;
	}
	return 0;
}

/*
 * Whether instruction @in may stay in the window before the patched call:
 * one of a few plain register and flag operations (no implicit register,
 * no memory write through rdi or REG), whose text was not cut short, that
 * names neither rdi nor REG (@names) nor the stack pointer.
 */
static int
movable(const struct insn *in, const char *const names[5])
{
	static const char *const ok[] = { "mov ", "movzx ", "movsx ", "movsxd ", "lea ", "test ",
					  "cmp ", "and ", "or ", "xor ", "add ", "sub ", "nop",
					  "cmov", "set", NULL };
	static const char *const rdi[] = { "rdi", "edi", "di", "dil", "rsp", "esp", "sp", "spl", NULL };
	const char *sp = strchr(in->text, ' ');
	int known = 0;

	if (in->cls != INSN_PLAIN || in->terminator || (sp && strlen(sp + 1) >= 30))
		return 0; /* the decoder cuts operands at 30 characters: not provably clear */
	for (int k = 0; ok[k] && !known; k++)
		known = strncmp(in->text, ok[k], strlen(ok[k])) == 0;
	for (int k = 0; rdi[k] && known; k++)
		known = !mentions(in->text, rdi[k]);
	for (int k = 0; k < 5 && names[k] && known; k++)
		known = !mentions(in->text, names[k]);
	return known;
}

int
discover_bh_call_site(struct bh_call_site *site, char *why, size_t len)
{
	/* the callee-saved registers a caller keeps the BH in, with their x86 numbers and names */
	static const struct {
		const char *names[5];
		int num;
	} saved[] = {
		{ { "rbx", "ebx", "bx", "bl", "bh" }, 3 },  { { "rbp", "ebp", "bp", "bpl", NULL }, 5 },
		{ { "r12", "r12d", "r12w", "r12b", NULL }, 12 }, { { "r13", "r13d", "r13w", "r13b", NULL }, 13 },
		{ { "r14", "r14d", "r14w", "r14b", NULL }, 14 }, { { "r15", "r15d", "r15w", "r15b", NULL }, 15 },
	};
	enum { MAXI = 512 };
	static struct {
		uint64_t at;
		struct insn in;
	} v[MAXI]; /* constructor only */
	const uint8_t *f = dlsym(RTLD_DEFAULT, "aio_bh_poll");
	void *call = shim_qemu.sym[QS_AIO_BH_CALL].addr;
	size_t size = f ? hook_symbol_size(f) : 0;
	uint64_t at = (uint64_t)(uintptr_t)f;
	int n = 0, j = -1, sites = 0, calls = 0;

	memset(site, 0, sizeof(*site));
	if (f == NULL || size == 0 || insn_decoder_open() < 0) {
		snprintf(why, len, "aio_bh_poll is not exported with a size, or the decoder did not open");
		return -1;
	}
	/* all of it: a site missed, or a branch not seen, would let BHs past the gate */
	for (; at < (uint64_t)(uintptr_t)f + size && n < MAXI; n++) {
		if (insn_decode((const uint8_t *)(uintptr_t)at, 15, at, &v[n].in) < 0)
			break;
		v[n].at = at;
		at += v[n].in.len;
		if (v[n].in.cls == INSN_CALL_REL && v[n].in.target == (uint64_t)(uintptr_t)call)
			calls++;
		if (strncmp(v[n].in.text, "call qword ptr [", 16) == 0 && v[n].in.mem_reg &&
		    v[n].in.mem_disp == (int64_t)qrt.off_cb)
			j = n, sites++;
	}
	if (at < (uint64_t)(uintptr_t)f + size) {
		snprintf(why, len, "aio_bh_poll could not be read to its end (%s at +%#llx)",
			 n == MAXI ? "too long" : "an instruction the decoder refuses",
			 (unsigned long long)(at - (uint64_t)(uintptr_t)f));
		return -1;
	}
	if (sites == 0 && calls > 0)
		return 0; /* QEMU's own aio_bh_call runs every BH: its hook sees them */
	if (sites != 1) {
		snprintf(why, len, "aio_bh_poll calls aio_bh_call %d times and a BH's cb (+%zu) itself "
			 "%d times; bhrr patches exactly one such call", calls, qrt.off_cb, sites);
		return -1;
	}
	/* the BH's register */
	const char *b = strchr(v[j].in.text, '[') + 1;
	int r = -1;

	for (size_t k = 0; k < sizeof(saved) / sizeof(saved[0]); k++)
		if (strncmp(b, saved[k].names[0], strlen(saved[k].names[0])) == 0 &&
		    (b[strlen(saved[k].names[0])] == ' ' || b[strlen(saved[k].names[0])] == ']'))
			r = (int)k;
	if (r < 0) {
		snprintf(why, len, "aio_bh_poll calls a BH's cb through a register a call does not "
			 "keep (%s)", v[j].in.text);
		return -1;
	}
	/* back to "mov rdi, [REG + opaque]", over at most 3 instructions that touch neither */
	int i = j - 1;

	for (; i >= 0 && j - i <= 4; i--) {
		const struct insn *in = &v[i].in;

		if (strncmp(in->text, "mov rdi, qword ptr [", 20) == 0 && in->mem_reg == v[j].in.mem_reg &&
		    in->mem_disp == (int64_t)qrt.off_opaque)
			break;
		if (!movable(in, saved[r].names)) {
			i = -1;
			break;
		}
	}
	if (i < 0 || j - i > 4) {
		snprintf(why, len, "aio_bh_poll's call of a BH's cb (%s) is not preceded by its "
			 "opaque's load into rdi over instructions bhrr can move", v[j].in.text);
		return -1;
	}
	uint64_t lo = v[i].at, hi = v[j].at + v[j].in.len;

	/* no branch of the function lands inside the window */
	for (int k = 0; k < n; k++) {
		const struct insn *in = &v[k].in;

		if ((in->cls == INSN_JMP_REL || in->cls == INSN_JCC_REL || in->cls == INSN_CALL_REL) &&
		    in->target > lo && in->target < hi) {
			snprintf(why, len, "a branch of aio_bh_poll (%s) lands inside the BH call's window",
				 in->text);
			return -1;
		}
	}
	site->at = (void *)(uintptr_t)lo;
	site->len = (size_t)(hi - lo);
	site->reg = saved[r].num;
	for (int k = i + 1; k < j; k++) {
		if (site->keep_len + v[k].in.len > sizeof(site->keep)) {
			snprintf(why, len, "aio_bh_poll's BH call window is too long");
			return -1;
		}
		memcpy(site->keep + site->keep_len, (const void *)(uintptr_t)v[k].at, v[k].in.len);
		site->keep_len += v[k].in.len;
	}
	if (site->keep_len + 5 > site->len) {
		snprintf(why, len, "aio_bh_poll's BH call window has no room for a call");
		return -1;
	}
	return 1;
}
