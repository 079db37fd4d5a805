/*
 * test_hook.c - the hook engine against one assembly fixture per prologue
 * shape (tests/unit/fixtures_x86_64.S).  For every accepted shape: the hooked
 * function, called directly and through its trampoline, returns what the
 * unhooked one did, and the replacement fired exactly once per direct call.
 * For every refused shape: the right error code, and the code untouched.
 * Then hooks fire from several threads at once, and installing while another
 * thread exists is refused.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hook.h"
#include "hook_symsize.h"
#include "tap.h"

typedef int (*fn_t)(int);

#define FIXTURES(X)                                                                   \
	X(fx_clean) X(fx_riprel) X(fx_riprel_imm) X(fx_lea_rip) X(fx_sse_rip)        \
	X(fx_call_rel) X(fx_jcc_short) X(fx_jcc_near) X(fx_jmp_short) X(fx_tail5)    \
	X(fx_endbr) X(fx_tail_window) X(fx_far) X(fx_cross_page) X(fx_too_short)     \
	X(fx_backjump) X(fx_jrcxz) X(fx_internal) X(fx_eiprel) X(fx_jmp_first)       \
	X(fx_backjump_far) X(fx_fake_branch)

#define DECLARE(f) extern int f(int);
FIXTURES(DECLARE)
#undef DECLARE

enum {
#define INDEX(f) IX_##f,
	FIXTURES(INDEX)
#undef INDEX
	N_FIX
};

static fn_t orig[N_FIX + 1];
static atomic_long hits[N_FIX + 1];

/* One replacement per fixture (each hook needs its own), plus one for chaining. */
#define REPLACEMENT(f)                                                           \
	static int hk_##f(int x)                                                 \
	{                                                                        \
		atomic_fetch_add_explicit(&hits[IX_##f], 1, memory_order_relaxed); \
		return orig[IX_##f](x);                                          \
	}
FIXTURES(REPLACEMENT)
#undef REPLACEMENT

static int
hk_chain(int x)
{
	atomic_fetch_add_explicit(&hits[N_FIX], 1, memory_order_relaxed);
	return orig[N_FIX](x);
}

struct shape {
	const char *name;
	fn_t fn;
	fn_t hk;
	int expect;      /* 0 or the HOOK_E_* refusal */
	unsigned flags;
	int callable;    /* safe to call (not fx_eiprel) */
};

static const struct shape shapes[] = {
#define S(f, e, fl, c) { #f, f, hk_##f, e, fl, c },
	S(fx_clean, 0, 0, 1)
	S(fx_riprel, 0, 0, 1)
	S(fx_riprel_imm, 0, 0, 1)
	S(fx_lea_rip, 0, 0, 1)
	S(fx_sse_rip, 0, 0, 1)
	S(fx_call_rel, 0, HOOK_F_FORCE_FAR, 1)
	S(fx_jcc_short, 0, 0, 1)
	S(fx_jcc_near, 0, 0, 1)
	S(fx_jmp_short, 0, 0, 1)
	S(fx_tail5, 0, 0, 1)
	S(fx_endbr, 0, 0, 1)
	S(fx_tail_window, 0, 0, 1)
	S(fx_far, 0, HOOK_F_FORCE_FAR, 1)
	S(fx_cross_page, 0, 0, 1)
	S(fx_too_short, HOOK_E_TOO_SHORT, 0, 1)
	S(fx_backjump, HOOK_E_BACKJUMP, 0, 1)
	S(fx_jrcxz, HOOK_E_UNSUPPORTED, 0, 1)
	S(fx_internal, HOOK_E_BACKJUMP, 0, 1)
	S(fx_eiprel, HOOK_E_UNSUPPORTED, 0, 0)
	S(fx_jmp_first, HOOK_E_TOO_SHORT, 0, 1)
	S(fx_backjump_far, HOOK_E_BACKJUMP, 0, 1)
	S(fx_fake_branch, 0, 0, 1)
#undef S
};

static const int inputs[] = { 0, 1, 5, 3, 1000, 7 };
#define N_IN (sizeof(inputs) / sizeof(inputs[0]))

static size_t
index_of(fn_t fn)
{
	for (size_t i = 0; i < N_FIX; i++)
		if (shapes[i].fn == fn)
			return i;
	abort();
}

/* The permissions string of the mapping holding @p ("r-xp"), from maps. */
static void
perms_of(const void *p, char out[5])
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];

	strcpy(out, "????");
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		char perms[5];

		if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) == 3 &&
		    (unsigned long)p >= lo && (unsigned long)p < hi) {
			strcpy(out, perms);
			break;
		}
	}
	if (f)
		fclose(f);
}

static void
test_shape(const struct shape *s)
{
	size_t ix = index_of(s->fn);
	int expected[N_IN];
	uint8_t before[32];
	struct hook_info info;

	memcpy(before, (void *)s->fn, sizeof(before));
	if (s->callable)
		for (size_t i = 0; i < N_IN; i++)
			expected[i] = s->fn(inputs[i]);

	/*
	 * Every other shape is dry-run first, as session.c does, so that its
	 * install reuses the kept analysis: both must come to the same answer.
	 */
	struct hook_info dry;
	int dry_err = 0, dried = ix % 2 == 1;

	if (dried)
		dry_err = hook_install_ex((void *)s->fn, (void *)s->hk, NULL,
					  s->flags | HOOK_F_DRY_RUN, &dry);

	int err = hook_install_ex((void *)s->fn, (void *)s->hk, (void **)&orig[ix], s->flags, &info);

	if (!ok(err == s->expect, "%s: install returns %s (got %s: %s)", s->name,
		hook_errname(s->expect), hook_errname(err), info.detail))
		return;
	if (dried)
		ok(dry_err == err && dry.stolen == info.stolen && dry.n_insns == info.n_insns &&
			   dry.scanned == info.scanned && dry.partial == info.partial &&
			   dry.func_size == info.func_size && dry.endbr == info.endbr &&
			   dry.patch_at == info.patch_at &&
			   memcmp(dry.orig_bytes, info.orig_bytes, sizeof(info.orig_bytes)) == 0,
		   "%s: the install after a dry run agrees with it (%s: %u bytes, %u scanned)",
		   s->name, hook_errname(dry_err), dry.stolen, dry.scanned);
	if (err != 0) {
		ok(memcmp(before, (void *)s->fn, sizeof(before)) == 0,
		   "%s: refused install leaves the code untouched", s->name);
		ok(info.detail[0] != 0, "%s: refusal has a reason: %s", s->name, info.detail);
		if (s->callable)
			ok(s->fn(inputs[2]) == expected[2], "%s: still works after refusal", s->name);
		return;
	}
	diag("%s: %s, tramp_len %u", s->name, info.detail, info.tramp_len);

	int same = 1;
	long h0 = atomic_load(&hits[ix]);

	for (size_t i = 0; i < N_IN; i++)
		same &= s->fn(inputs[i]) == expected[i];
	ok(same, "%s: hooked function returns what the original did", s->name);
	ok(atomic_load(&hits[ix]) - h0 == (long)N_IN, "%s: replacement fired %ld times (want %zu)",
	   s->name, atomic_load(&hits[ix]) - h0, N_IN);

	same = 1;
	h0 = atomic_load(&hits[ix]);
	for (size_t i = 0; i < N_IN; i++)
		same &= orig[ix](inputs[i]) == expected[i];
	ok(same && atomic_load(&hits[ix]) == h0,
	   "%s: trampoline returns what the original did, without the hook", s->name);

	const uint8_t *p = info.patch_at;

	ok(p[0] == 0xe9, "%s: patch is a jmp rel32", s->name);
	int fill = 1;

	for (unsigned i = 5; i < info.stolen; i++)
		fill &= p[i] == 0xcc;
	ok(fill, "%s: leftover %u stolen bytes are int3", s->name, info.stolen - 5);
	long d = (long)((uintptr_t)info.relay - (uintptr_t)s->fn);

	ok(labs(d) < 0x7f000000L, "%s: relay is %ld bytes away (within 2 GiB)", s->name, d);
}

static void
test_details(void)
{
	struct hook_info info;
	char perms[5];
	const uint8_t *t;

	/* endbr64 is kept first in the trampoline; the patch goes after it. */
	t = (const uint8_t *)orig[IX_fx_endbr];
	ok(memcmp(t, "\xf3\x0f\x1e\xfa", 4) == 0, "endbr64 is kept first in the trampoline");
	ok(memcmp((void *)fx_endbr, "\xf3\x0f\x1e\xfa\xe9", 5) == 0,
	   "endbr64 stays at the entry and the jmp follows it");

	/* Far relocation emitted absolute forms. */
	t = (const uint8_t *)orig[IX_fx_far];
	ok(t[2] == 0x75 && t[3] == 14 && t[4] == 0xff && t[5] == 0x25,
	   "far je is inverted to jne +14 around an absolute jmp");
	t = (const uint8_t *)orig[IX_fx_call_rel];
	ok(memmem(t, 64, "\xff\x15\x02\0\0\0\xeb\x08", 8) != NULL, "far call uses call [rip+2]");

	/* The RIP-relative trampoline reads the same datum from its new place. */
	t = (const uint8_t *)orig[IX_fx_riprel];
	ok(t[0] == 0x8b && memcmp(t + 2, (void *)((uintptr_t)fx_riprel + 2), 4) != 0,
	   "RIP displacement was rewritten for the trampoline");

	/* W^X: target and trampoline pages end up without write permission. */
	perms_of((void *)fx_clean, perms);
	ok(strcmp(perms, "r-xp") == 0, "target page is back to r-x (%s)", perms);
	perms_of(orig[IX_fx_clean], perms);
	ok(strcmp(perms, "r-xp") == 0, "trampoline page is r-x (%s)", perms);

	/* Second install is refused; chaining is explicit. */
	int err = hook_install_ex((void *)fx_clean, (void *)hk_chain, (void **)&orig[N_FIX], 0, &info);
	ok(err == HOOK_E_ALREADY, "second install is refused as already (%s)", hook_errname(err));
	err = hook_install_ex((void *)fx_clean, (void *)hk_chain, (void **)&orig[N_FIX], HOOK_F_CHAIN, &info);
	ok(err == 0, "chained install works (%s)", info.detail);
	long a = atomic_load(&hits[IX_fx_clean]), b = atomic_load(&hits[N_FIX]);
	ok(fx_clean(41) == 42 && atomic_load(&hits[IX_fx_clean]) == a + 1 &&
	   atomic_load(&hits[N_FIX]) == b + 1, "a chained call runs both hooks and the original");

	/* Argument and mapping errors. */
	ok(hook_install(NULL, (void *)hk_chain, NULL) == HOOK_E_ARG, "NULL target is bad-argument");
	ok(hook_install_sym("bhrr_no_such_function", (void *)hk_chain, NULL) == HOOK_E_NOSYM,
	   "unknown symbol is no-symbol");
	extern int fx_data;
	err = hook_install_ex(&fx_data, (void *)hk_chain, NULL, 0, &info);
	ok(err == HOOK_E_NOT_EXEC, "data address is not-exec (%s)", info.detail);

	/* Dry run analyses without patching. */
	extern int fx_plain(int);
	uint8_t before[8];

	memcpy(before, (void *)fx_plain, 8);
	err = hook_install_ex((void *)fx_plain, (void *)hk_chain, NULL, HOOK_F_DRY_RUN, &info);
	ok(err == HOOK_E_TOO_SHORT && memcmp(before, (void *)fx_plain, 8) == 0,
	   "dry run refuses a 4-byte function and patches nothing (%s)", info.detail);
	for (int e = 0; e > -HOOK_E_COUNT; e--)
		if (strcmp(hook_errname(e), "unknown") == 0 || hook_strerror(e)[0] == 0)
			ok(0, "error %d has a name and a text", e);
}

struct worker {
	int id;
	long bad;
};

#define CALLS 200000

static void *
worker_run(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < CALLS; i++) {
		int x = i + w->id;

		if (fx_clean(x) != x + 1 || fx_riprel(x) != 42 + x || fx_call_rel(x) != x + 1000 ||
		    fx_far(x) != (x ? x + 1000 : 5) || fx_cross_page(x) != 42 - x)
			w->bad++;
	}
	return NULL;
}

static void
test_threads(void)
{
	enum { N = 4 };
	pthread_t th[N];
	struct worker w[N];
	long before = atomic_load(&hits[IX_fx_riprel]);
	long bad = 0;

	for (int i = 0; i < N; i++) {
		w[i] = (struct worker){ i, 0 };
		pthread_create(&th[i], NULL, worker_run, &w[i]);
	}
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		bad += w[i].bad;
	}
	ok(bad == 0, "%d threads x %d calls through hooks: %ld wrong results", N, CALLS, bad);
	ok(atomic_load(&hits[IX_fx_riprel]) - before == (long)N * CALLS,
	   "every concurrent call went through the hook (%ld)",
	   atomic_load(&hits[IX_fx_riprel]) - before);
}

static int gate[2];

static void *
sleeper(void *arg)
{
	char c;

	(void)arg;
	return read(gate[0], &c, 1) == 1 ? NULL : NULL;
}

static void
test_thread_refusal(void)
{
	pthread_t t;
	struct hook_info info;
	uint8_t before[8];

	memcpy(before, (void *)fx_jrcxz, 8);
	if (pipe(gate) < 0 || pthread_create(&t, NULL, sleeper, NULL) != 0) {
		ok(0, "cannot start a thread");
		return;
	}
	int err = hook_install_ex((void *)fx_sse_rip, (void *)hk_chain, NULL, HOOK_F_CHAIN, &info);
	ok(err == HOOK_E_THREADS, "install with a second thread alive is refused (%s: %s)",
	   hook_errname(err), info.detail);
	if (write(gate[1], "x", 1) != 1)
		ok(0, "cannot release the thread");
	pthread_join(t, NULL);
}

/* dladdr1's answer, which hook_symbol_size must give without its per-call walk. */
static size_t
dladdr_size(const void *f)
{
	Dl_info di;
	const ElfW(Sym) *sym = NULL;

	if (dladdr1(f, &di, (void **)&sym, RTLD_DL_SYMENT) == 0 || sym == NULL || di.dli_saddr != f)
		return 0;
	return sym->st_size;
}

static void
test_symsize(void)
{
	static const struct {
		const char *name;
		const void *fn;
	} fx[] = {
#define ENTRY(f) { #f, (const void *)f },
		FIXTURES(ENTRY)
#undef ENTRY
	};
	int same = 1;

	for (size_t i = 0; i < sizeof(fx) / sizeof(fx[0]); i++) {
		size_t got = hook_symbol_size(fx[i].fn), want = dladdr_size(fx[i].fn);

		if (got != want || got == 0) {
			diag("%s: size %zu, dladdr1 says %zu", fx[i].name, got, want);
			same = 0;
		}
	}
	ok(same, "every fixture's size is its .size, as dladdr1 reads it");
	ok(hook_symbol_size((const char *)fx[0].fn + 1) == 0, "an address inside a function has no size");
	void *q = dlsym(RTLD_DEFAULT, "qsort");

	ok(q != NULL && hook_symbol_size(q) == dladdr_size(q) && dladdr_size(q) > 0,
	   "a function of another object (libc's qsort): %zu bytes, dladdr1 %zu", hook_symbol_size(q),
	   dladdr_size(q));
}

int
main(void)
{
	test_symsize();
	ok(hook_thread_count() == 1, "test starts single-threaded");
	ok(hook_batch_begin() == 0, "batch begins");
	for (size_t i = 0; i < N_FIX; i++)
		test_shape(&shapes[i]);
	ok(hook_batch_end() == 0, "batch ends, page protections restored");
	test_details();
	test_threads();
	test_thread_refusal();
	return tap_done();
}
