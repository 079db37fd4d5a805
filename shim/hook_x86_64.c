/*
 * hook_x86_64.c - the x86-64 inline hook engine (see hook.h, doc/hooking.md).
 *
 * Install steps, in this order:
 *   1. find the function's extent (dynamic symbol size, else <= 512 bytes of
 *      its mapping) and skip a leading endbr64;
 *   2. decode whole instructions until >= 5 bytes are covered (the window),
 *      refusing terminators, unrelocatable branches and EIP-relative operands;
 *   3. decode the whole function and refuse if any relative branch lands
 *      strictly inside the window;
 *   4. emit relay + trampoline into a near slot, seal it RX;
 *   5. publish *original, then write "jmp rel32; int3..." over the window.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <link.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "hook.h"
#include "hook_decode.h"
#include "hook_mem.h"
#include "hook_symsize.h"

#define PATCH_LEN 5u
#define SCAN_NO_SYMSIZE 512u
#define MAX_WINDOW_INSNS 8

struct window {
	uintptr_t target, patch_at, limit;
	unsigned endbr, stolen, n;
	struct insn insn[MAX_WINDOW_INSNS];
	uintptr_t addr[MAX_WINDOW_INSNS];
};

/* ---- registry of patched addresses (open addressing) ---- */

static uintptr_t *reg;
static size_t reg_n, reg_cap;

static size_t
reg_slot(uintptr_t a, size_t cap)
{
	return (size_t)((a * 0x9e3779b97f4a7c15ull) >> 20) & (cap - 1);
}

static int
reg_has(uintptr_t a)
{
	if (reg_cap == 0)
		return 0;
	for (size_t i = reg_slot(a, reg_cap);; i = (i + 1) & (reg_cap - 1)) {
		if (reg[i] == a)
			return 1;
		if (reg[i] == 0)
			return 0;
	}
}

static int
reg_add(uintptr_t a)
{
	if ((reg_n + 1) * 2 > reg_cap) {
		size_t ncap = reg_cap ? reg_cap * 2 : 256;
		uintptr_t *nr = calloc(ncap, sizeof(*nr));

		if (nr == NULL)
			return HOOK_E_NOMEM;
		for (size_t i = 0; i < reg_cap; i++) {
			if (reg[i] == 0)
				continue;
			size_t j = reg_slot(reg[i], ncap);

			while (nr[j] != 0)
				j = (j + 1) & (ncap - 1);
			nr[j] = reg[i];
		}
		free(reg);
		reg = nr;
		reg_cap = ncap;
	}
	size_t i = reg_slot(a, reg_cap);

	while (reg[i] != 0 && reg[i] != a)
		i = (i + 1) & (reg_cap - 1);
	if (reg[i] == 0)
		reg_n++;
	reg[i] = a;
	return 0;
}

/* ---- errors ---- */

static const char *const err_names[HOOK_E_COUNT] = {
	"ok", "bad-argument", "too-short", "back-jump", "unsupported", "decode",
	"threads", "near-alloc", "range", "protect", "not-exec", "already",
	"no-symbol", "no-memory",
};

static const char *const err_text[HOOK_E_COUNT] = {
	"success",
	"bad argument",
	"function ends before the 5-byte patch is covered",
	"a branch in the function lands inside the patch window",
	"an instruction in the patch window cannot be relocated",
	"the decoder failed or contradicted the instruction bytes",
	"the process is multi-threaded",
	"no free page within 2 GiB of the target",
	"a relocated displacement is out of 32-bit range",
	"cannot make the target writable",
	"the target is not in an executable mapping",
	"the target is already hooked",
	"no such symbol",
	"out of memory",
};

const char *
hook_errname(int err)
{
	return err <= 0 && -err < HOOK_E_COUNT ? err_names[-err] : "unknown";
}

const char *
hook_strerror(int err)
{
	return err <= 0 && -err < HOOK_E_COUNT ? err_text[-err] : "unknown error";
}

static int
refuse(struct hook_info *info, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
refuse(struct hook_info *info, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(info->detail, sizeof(info->detail), fmt, ap);
	va_end(ap);
	return err;
}

int
hook_thread_count(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/*
 * 1 once an install of the current batch has counted one thread
 * (/proc/self/task read 36 times before main() cost more than the
 * hooks' decoding); installation is single-threaded (hook.h), so no lock.
 */
static int batch_single;

/* ---- analysis ---- */

static int
in_window(const struct window *w, uint64_t t)
{
	return t > w->patch_at && t < w->patch_at + w->stolen;
}

/* Steps 1-2: decode the window. */
static int
analyse_window(struct window *w, struct hook_info *info)
{
	const uint8_t *code = (const uint8_t *)w->target;

	if (w->limit - w->target >= 4 && memcmp(code, "\xf3\x0f\x1e\xfa", 4) == 0)
		w->endbr = 1;
	w->patch_at = w->target + (w->endbr ? 4 : 0);
	for (uintptr_t a = w->patch_at; a < w->patch_at + PATCH_LEN;) {
		struct insn *in = &w->insn[w->n];

		if (a >= w->limit)
			return refuse(info, HOOK_E_TOO_SHORT, "function ends at +%#lx",
				      (unsigned long)(w->limit - w->target));
		if (insn_decode((const uint8_t *)a, w->limit - a, a, in) < 0)
			return refuse(info, a + 15 > w->limit ? HOOK_E_TOO_SHORT : HOOK_E_DECODE,
				      "cannot decode at +%#lx", (unsigned long)(a - w->target));
		w->addr[w->n++] = a;
		a += in->len;
		w->stolen = (unsigned)(a - w->patch_at);
		if (in->cls == INSN_EIPREL || in->cls == INSN_REL_OTHER)
			return refuse(info, HOOK_E_UNSUPPORTED, "'%s' at +%#lx", in->text,
				      (unsigned long)(w->addr[w->n - 1] - w->target));
		if (in->terminator && w->stolen < PATCH_LEN)
			return refuse(info, HOOK_E_TOO_SHORT, "'%s' at +%#lx ends the function",
				      in->text, (unsigned long)(w->addr[w->n - 1] - w->target));
		if (in->terminator)
			break;
	}
	return 0;
}

/*
 * Step 3's fast path: could a relative branch anywhere in [target, limit)
 * land inside the window?  Every byte offset is tried as the opcode of a
 * rel8 branch (jcc, jmp, loop*, jrcx/ecxz), of a rel32 one (call, jmp, jcc,
 * xbegin), and of a rel16 one (the same behind a 0x66 prefix, which no
 * compiler emits in 64-bit code), whatever the instruction boundaries.
 * Prefixes sit before the opcode, so a branch ends where its candidate
 * does.  Every real branch is among the candidates, so none landing in the
 * window proves the check; that skips decoding the body, most of an
 * install's cost (capstone takes about 250 ns an instruction: 36 hooks,
 * some 9,000 instructions, 2-3 ms before main()).  A candidate is usually
 * bytes inside other instructions; the full decode then decides.
 */
static int
window_reachable(const struct window *w)
{
	const uint8_t *p = (const uint8_t *)w->target;
	size_t n = w->limit - w->target;

	for (size_t i = 0; i + 2 <= n; i++) {
		uint64_t a = w->target + i;
		uint8_t b = p[i];
		size_t op = 0; /* the opcode's length, for a rel16/rel32 branch */

		if ((b >= 0x70 && b <= 0x7f) || b == 0xeb || (b >= 0xe0 && b <= 0xe3)) {
			if (in_window(w, a + 2 + (uint64_t)(int64_t)(int8_t)p[i + 1]))
				return 1;
			continue;
		}
		if (b == 0xe8 || b == 0xe9)
			op = 1;
		else if ((b == 0x0f && p[i + 1] >= 0x80 && p[i + 1] <= 0x8f) ||
			 (b == 0xc7 && p[i + 1] == 0xf8))
			op = 2;
		else
			continue;
		int16_t r16;
		int32_t r32;

		if (i + op + 2 <= n) {
			memcpy(&r16, p + i + op, 2);
			if (in_window(w, a + op + 2 + (uint64_t)(int64_t)r16))
				return 1;
		}
		if (i + op + 4 <= n) {
			memcpy(&r32, p + i + op, 4);
			if (in_window(w, a + op + 4 + (uint64_t)(int64_t)r32))
				return 1;
		}
	}
	return 0;
}

/*
 * Step 3: no branch in [target, limit) may land inside the window.  With
 * the function's size known, window_reachable() settles most functions;
 * without it, only decoding tells where the function's code ends.
 */
static int
check_backjumps(struct window *w, struct hook_info *info, int size_known)
{
	struct insn in;

	if (size_known && !window_reachable(w)) {
		info->scanned = (unsigned)(w->limit - w->target);
		return 0;
	}
	for (uintptr_t a = w->target; a < w->limit; a += in.len) {
		if (insn_decode((const uint8_t *)a, w->limit - a, a, &in) < 0) {
			if (!size_known) { /* ran into data or another function */
				info->partial = 1;
				break;
			}
			const uint8_t *b = (const uint8_t *)a;

			info->scanned = (unsigned)(a - w->target);
			return refuse(info, HOOK_E_DECODE,
				      "cannot decode the body at +%#lx (%02x %02x %02x %02x %02x %02x)",
				      (unsigned long)(a - w->target), b[0], b[1], b[2], b[3], b[4], b[5]);
		}
		int rel = in.cls == INSN_CALL_REL || in.cls == INSN_JMP_REL ||
			  in.cls == INSN_JCC_REL || in.cls == INSN_REL_OTHER;

		if (rel && in_window(w, in.target))
			return refuse(info, HOOK_E_BACKJUMP, "'%s' at +%#lx targets +%#lx",
				      in.text, (unsigned long)(a - w->target),
				      (unsigned long)(in.target - w->target));
		info->scanned = (unsigned)(a + in.len - w->target);
	}
	if (!size_known)
		info->partial = 1;
	return 0;
}

/*
 * The analysis of a dry run (steps 1-3), kept for the install that follows
 * it: decoding whole function bodies is most of an install's cost (36
 * hooks, about 9,000 instructions, some milliseconds before main()), and
 * session.c dry-runs every hook before installing any.  Reused only for
 * the same target and flags while the window's bytes are unchanged.
 * Installation is single-threaded (hook.h), so no lock.
 */
#define ANALYSIS_CACHE 64

static struct analysis {
	uintptr_t target;
	unsigned flags;
	size_t func_size;
	unsigned scanned, partial;
	uint8_t bytes[4 + MAX_WINDOW_INSNS * 15];
	struct window w;
} *analyses;
static size_t n_analyses;

static size_t
window_bytes(const struct window *w)
{
	return (size_t)(w->patch_at - w->target) + w->stolen;
}

static void
analysis_keep(const struct window *w, const struct hook_info *info, unsigned flags)
{
	if (analyses == NULL && (analyses = calloc(ANALYSIS_CACHE, sizeof(*analyses))) == NULL)
		return; /* a cache: without it the install decodes again */
	struct analysis *a = &analyses[n_analyses++ % ANALYSIS_CACHE];

	a->target = w->target;
	a->flags = flags & ~HOOK_F_DRY_RUN;
	a->func_size = info->func_size;
	a->scanned = info->scanned;
	a->partial = info->partial;
	memcpy(a->bytes, (const void *)w->target, window_bytes(w));
	a->w = *w;
}

/* The kept analysis of @target, copied out: 1, or 0 when there is none. */
static int
analysis_find(uintptr_t target, unsigned flags, struct window *w, struct hook_info *info)
{
	size_t n = n_analyses < ANALYSIS_CACHE ? n_analyses : ANALYSIS_CACHE;

	for (size_t i = 0; i < n; i++) {
		const struct analysis *a = &analyses[i];

		if (a->target != target || a->flags != (flags & ~HOOK_F_DRY_RUN) ||
		    memcmp(a->bytes, (const void *)target, window_bytes(&a->w)) != 0)
			continue;
		*w = a->w;
		info->func_size = a->func_size;
		info->scanned = a->scanned;
		info->partial = a->partial;
		return 1;
	}
	return 0;
}

/* ---- relocation ---- */

struct emit {
	uint8_t *buf;
	size_t len, cap;
	uintptr_t base; /* runtime address of buf[0] */
	int err;        /* sticky: set once the buffer overflows */
};

static void
put(struct emit *e, const void *bytes, size_t n)
{
	if (e->len + n > e->cap) {
		e->err = HOOK_E_UNSUPPORTED;
		return;
	}
	memcpy(e->buf + e->len, bytes, n);
	e->len += n;
}

static void
put8(struct emit *e, uint8_t b)
{
	put(e, &b, 1);
}

static void
put32(struct emit *e, int32_t v)
{
	put(e, &v, 4);
}

static void
put64(struct emit *e, uint64_t v)
{
	put(e, &v, 8);
}

/* rel32 from the end of an instruction of @len bytes emitted at e->len. */
static int
rel32_to(const struct emit *e, size_t len, uint64_t target, int32_t *rel, unsigned flags)
{
	int64_t d = (int64_t)(target - (e->base + e->len + len));

	if ((flags & HOOK_F_FORCE_FAR) || d != (int32_t)d)
		return -1;
	*rel = (int32_t)d;
	return 0;
}

/* jmp to @target: E9 rel32, or "jmp [rip+0]; .quad target" when far. */
static void
emit_jmp(struct emit *e, uint64_t target, unsigned flags)
{
	int32_t rel;

	if (rel32_to(e, 5, target, &rel, flags) == 0) {
		put8(e, 0xe9);
		put32(e, rel);
		return;
	}
	put(e, "\xff\x25\0\0\0\0", 6);
	put64(e, target);
}

static void
emit_insn(struct emit *e, const struct insn *in, uintptr_t a, unsigned flags)
{
	int32_t rel;

	switch (in->cls) {
	case INSN_PLAIN:
		put(e, (const void *)a, in->len);
		return;
	case INSN_RIPREL: {
		int64_t nd = (int64_t)(a + (uint64_t)in->disp) - (int64_t)(e->base + e->len);
		int32_t d32 = (int32_t)nd;
		size_t at = e->len;

		if (nd != d32) {
			e->err = HOOK_E_RANGE;
			return;
		}
		put(e, (const void *)a, in->len);
		if (e->err == 0)
			memcpy(e->buf + at + in->disp_off, &d32, 4);
		return;
	}
	case INSN_CALL_REL:
		if (rel32_to(e, 5, in->target, &rel, flags) == 0) {
			put8(e, 0xe8);
			put32(e, rel);
			return;
		}
		/* call [rip+2]; jmp +8; .quad target */
		put(e, "\xff\x15\x02\0\0\0\xeb\x08", 8);
		put64(e, in->target);
		return;
	case INSN_JMP_REL:
		emit_jmp(e, in->target, flags);
		return;
	case INSN_JCC_REL:
		if (rel32_to(e, 6, in->target, &rel, flags) == 0) {
			put8(e, 0x0f);
			put8(e, (uint8_t)(0x80 | in->cc));
			put32(e, rel);
			return;
		}
		/* j!cc +14; jmp [rip+0]; .quad target */
		put8(e, (uint8_t)(0x70 | (in->cc ^ 1)));
		put8(e, 14);
		put(e, "\xff\x25\0\0\0\0", 6);
		put64(e, in->target);
		return;
	default:
		e->err = HOOK_E_UNSUPPORTED;
	}
}

/* Step 4: relay (16 bytes) then trampoline, into @slot. */
static int
build_slot(const struct window *w, uint8_t *slot, void *replacement, unsigned flags,
	   struct hook_info *info)
{
	uint8_t buf[HOOK_SLOT];
	struct emit e = { buf + 16, 0, sizeof(buf) - 16, (uintptr_t)slot + 16, 0 };
	int err;

	memset(buf, 0xcc, sizeof(buf));
	if (w->endbr)
		put(&e, "\xf3\x0f\x1e\xfa", 4);
	for (unsigned i = 0; i < w->n; i++)
		emit_insn(&e, &w->insn[i], w->addr[i], flags);
	if (!w->insn[w->n - 1].terminator)
		emit_jmp(&e, w->patch_at + w->stolen, flags);
	if (e.err < 0)
		return refuse(info, e.err,
			      "cannot relocate the window into the trampoline");
	uint64_t dest = (flags & HOOK_F_NULL) ? (uint64_t)(uintptr_t)(slot + 16)
					      : (uint64_t)(uintptr_t)replacement;

	memcpy(buf, "\xff\x25\0\0\0\0", 6);
	memcpy(buf + 6, &dest, 8);
	memcpy(buf + 14, "\xcc\xcc", 2);
	info->tramp_len = (unsigned)e.len;
	if ((err = hook_slot_write(slot, buf, 16 + e.len)) < 0)
		return refuse(info, err, "cannot seal the trampoline page");
	return 0;
}

int
hook_install_ex(void *target, void *replacement, void **original, unsigned flags,
		struct hook_info *info)
{
	struct hook_info scratch;
	struct window w;
	int err;

	if (info == NULL)
		info = &scratch;
	memset(info, 0, sizeof(*info));
	memset(&w, 0, sizeof(w));
	info->target = target;
	if (target == NULL || (replacement == NULL && !(flags & HOOK_F_NULL)))
		return refuse(info, HOOK_E_ARG, "no target or replacement");
	if (!(flags & (HOOK_F_ALLOW_THREADS | HOOK_F_DRY_RUN)) && !batch_single) {
		int threads = hook_thread_count();

		if (threads != 1)
			return refuse(info, HOOK_E_THREADS, "%d threads exist", threads);
		/* only this thread runs, and within a batch it only installs: it stays alone */
		batch_single = hook_mem_in_batch();
	}
	if (insn_decoder_open() < 0)
		return refuse(info, HOOK_E_DECODE, "cannot open the decoder");
	if ((err = hook_maps_get()) < 0)
		return refuse(info, err, "cannot read /proc/self/maps");

	const struct map_ent *m = hook_maps_find((uintptr_t)target);

	if (m == NULL || !(m->prot & PROT_EXEC)) {
		err = refuse(info, HOOK_E_NOT_EXEC, "%p is not in an executable mapping", target);
		goto out;
	}
	if (analysis_find((uintptr_t)target, flags, &w, info)) {
		memcpy(info->orig_bytes, target,
		       w.limit - w.target < sizeof(info->orig_bytes) ? w.limit - w.target
								     : sizeof(info->orig_bytes));
		info->endbr = w.endbr;
		info->patch_at = (void *)w.patch_at;
		info->stolen = w.stolen;
		info->n_insns = w.n;
		goto analysed;
	}
	w.target = (uintptr_t)target;
	info->func_size = (flags & HOOK_F_NO_SYMSIZE) ? 0 : hook_symbol_size(target);
	w.limit = info->func_size ? w.target + info->func_size : w.target + SCAN_NO_SYMSIZE;
	uintptr_t exec_end = hook_maps_exec_end(w.target);

	if (w.limit > exec_end)
		w.limit = exec_end;
	memcpy(info->orig_bytes, target,
	       w.limit - w.target < sizeof(info->orig_bytes) ? w.limit - w.target
							     : sizeof(info->orig_bytes));

	err = analyse_window(&w, info);
	info->endbr = w.endbr;
	info->patch_at = (void *)w.patch_at;
	info->stolen = w.stolen;
	info->n_insns = w.n;
	if (err < 0)
		goto out;
	if ((err = check_backjumps(&w, info, info->func_size != 0)) < 0)
		goto out;
	if (flags & HOOK_F_DRY_RUN)
		analysis_keep(&w, info, flags);
analysed:
	if (reg_has(w.patch_at) && !(flags & HOOK_F_CHAIN)) {
		err = refuse(info, HOOK_E_ALREADY, "already hooked");
		goto out;
	}
	if (flags & HOOK_F_DRY_RUN) {
		snprintf(info->detail, sizeof(info->detail), "would steal %u bytes (%u insns)",
			 w.stolen, w.n);
		goto out;
	}

	uint8_t *slot = hook_slot_alloc(w.target);

	if (slot == NULL) {
		err = refuse(info, HOOK_E_NEAR_ALLOC, "no free page within 2 GiB of %p", target);
		goto out;
	}
	info->relay = slot;
	info->trampoline = slot + 16;
	if ((err = build_slot(&w, slot, replacement, flags, info)) < 0)
		goto out;
	if ((err = reg_add(w.patch_at)) < 0) {
		refuse(info, err, "cannot grow the hook registry");
		goto out;
	}
	if (original != NULL)
		__atomic_store_n(original, (void *)(slot + 16), __ATOMIC_RELEASE);

	uint8_t patch[MAX_WINDOW_INSNS * 16];
	int32_t rel = (int32_t)((intptr_t)slot - (intptr_t)(w.patch_at + PATCH_LEN));

	memset(patch, 0xcc, w.stolen);
	patch[0] = 0xe9;
	memcpy(patch + 1, &rel, 4);
	if ((err = hook_text_write(w.patch_at, patch, w.stolen)) < 0) {
		refuse(info, err, "cannot write the patch at %p", (void *)w.patch_at);
		goto out;
	}
	snprintf(info->detail, sizeof(info->detail), "stole %u bytes (%u insns)%s", w.stolen,
		 w.n, info->partial ? ", back-jump check partial" : "");
out:
	hook_maps_put();
	return err;
}

int
hook_call_site(void *at, size_t len, const uint8_t *keep, size_t keep_len, int r, void *fn,
	       unsigned flags)
{
	uintptr_t a = (uintptr_t)at;
	uint8_t stub[32], patch[64];
	size_t k = 0;
	int err;

	/* a register a call keeps: rbx, rbp, r12..r15 */
	if (at == NULL || fn == NULL || !(r == 3 || r == 5 || (r >= 12 && r <= 15)) ||
	    len > sizeof(patch) || keep_len + PATCH_LEN > len)
		return HOOK_E_ARG;
	if (!(flags & HOOK_F_DRY_RUN) && hook_thread_count() != 1)
		return HOOK_E_THREADS;
	if ((err = hook_maps_get()) < 0)
		return err;
	const struct map_ent *m = hook_maps_find(a);
	uint8_t *slot = NULL;

	if (m == NULL || !(m->prot & PROT_EXEC)) {
		err = HOOK_E_NOT_EXEC;
		goto out;
	}
	if (flags & HOOK_F_DRY_RUN)
		goto out;
	if ((slot = hook_slot_alloc(a)) == NULL) {
		err = HOOK_E_NEAR_ALLOC;
		goto out;
	}
	/* mov rdi, REG; jmp [rip + 0]; .quad fn */
	stub[k++] = (uint8_t)(0x48 | (r >= 8 ? 0x04 : 0));
	stub[k++] = 0x89;
	stub[k++] = (uint8_t)(0xc0 | ((r & 7) << 3) | 7);
	stub[k++] = 0xff;
	stub[k++] = 0x25;
	memset(stub + k, 0, 4);
	k += 4;
	memcpy(stub + k, &fn, 8);
	k += 8;
	if ((err = hook_slot_write(slot, stub, k)) < 0)
		goto out;
	/* the kept instructions, the call, then one-byte nops to the window's end */
	int32_t rel = (int32_t)((intptr_t)slot - (intptr_t)(a + keep_len + PATCH_LEN));

	memcpy(patch, keep, keep_len);
	patch[keep_len] = 0xe8;
	memcpy(patch + keep_len + 1, &rel, 4);
	memset(patch + keep_len + PATCH_LEN, 0x90, len - keep_len - PATCH_LEN);
	err = hook_text_write(a, patch, len);
out:
	hook_maps_put();
	return err;
}

int
hook_install(void *target, void *replacement, void **original)
{
	return hook_install_ex(target, replacement, original, 0, NULL);
}

int
hook_install_sym(const char *name, void *replacement, void **original)
{
	void *t = dlsym(RTLD_DEFAULT, name);

	if (t == NULL)
		return HOOK_E_NOSYM;
	return hook_install(t, replacement, original);
}

int
hook_batch_begin(void)
{
	if (!hook_mem_in_batch())
		batch_single = 0;
	return hook_mem_batch_begin();
}

int
hook_batch_end(void)
{
	int err = hook_mem_batch_end();

	if (!hook_mem_in_batch())
		batch_single = 0;
	return err;
}
