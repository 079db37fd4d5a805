/*
 * check.c - BHRR_MODE=check: prove the hook engine on this QEMU build.
 *
 * Installs a forwarding hook (count, then call the original) on each target
 * function bhrr will need, prints one line per target (address, bytes stolen,
 * ok or the refusal and its reason), and lets QEMU run on unchanged.  At exit
 * it prints how often each hook fired, so a test can tell hooks that are
 * installed from hooks that work.
 *
 * With BHRR_CHECK_ALL=1 it also null-hooks every function the executable
 * exports (the relay jumps straight to the function's own trampoline, so each
 * relocation runs on real code) and prints the refusals by reason.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hook.h"
#include "qemu_types.h"
#include "check.h"
#include "selfcheck.h"
#include "session.h"
#include "shim.h"
#include "symbols.h"
#include "vlog.h"

static atomic_ulong calls[QS_HOOK_COUNT];
static void *real[QS_HOOK_COUNT];

#define COUNT(id) atomic_fetch_add_explicit(&calls[id], 1, memory_order_relaxed)
#define REAL(id, type) ((type)real[id])

static void
hk_aio_bh_call(QEMUBH *bh)
{
	COUNT(QS_AIO_BH_CALL);
	REAL(QS_AIO_BH_CALL, void (*)(QEMUBH *))(bh);
}

static void
hk_aio_bh_schedule_oneshot_full(AioContext *ctx, QEMUBHFunc *cb, void *opaque, const char *name)
{
	COUNT(QS_AIO_BH_SCHEDULE_ONESHOT);
	REAL(QS_AIO_BH_SCHEDULE_ONESHOT,
	     void (*)(AioContext *, QEMUBHFunc *, void *, const char *))(ctx, cb, opaque, name);
}

static void
hk_qemu_bh_schedule(QEMUBH *bh)
{
	COUNT(QS_QEMU_BH_SCHEDULE);
	REAL(QS_QEMU_BH_SCHEDULE, void (*)(QEMUBH *))(bh);
}

static void
hk_qemu_bh_schedule_idle(QEMUBH *bh)
{
	COUNT(QS_QEMU_BH_SCHEDULE_IDLE);
	REAL(QS_QEMU_BH_SCHEDULE_IDLE, void (*)(QEMUBH *))(bh);
}

static QEMUBH *
hk_aio_bh_new_full(AioContext *ctx, QEMUBHFunc *cb, void *opaque, const char *name,
		   MemReentrancyGuard *guard)
{
	COUNT(QS_AIO_BH_NEW_FULL);
	return REAL(QS_AIO_BH_NEW_FULL, QEMUBH * (*)(AioContext *, QEMUBHFunc *, void *,
						     const char *, MemReentrancyGuard *))(
		ctx, cb, opaque, name, guard);
}

static bool
hk_aio_poll(AioContext *ctx, bool blocking)
{
	COUNT(QS_AIO_POLL);
	return REAL(QS_AIO_POLL, bool (*)(AioContext *, bool))(ctx, blocking);
}

static void
hk_icount_start_warp_timer(void)
{
	COUNT(QS_ICOUNT_START_WARP_TIMER);
	REAL(QS_ICOUNT_START_WARP_TIMER, void (*)(void))();
}

/* QEMU 7.2: thread_pool_submit_aio(pool, func, arg, cb, opaque) */
static BlockAIOCB *
hk_thread_pool_submit_aio_v7(ThreadPool *pool, ThreadPoolFunc *func, void *arg,
			     BlockCompletionFunc *cb, void *opaque)
{
	COUNT(QS_THREAD_POOL_SUBMIT_AIO);
	return REAL(QS_THREAD_POOL_SUBMIT_AIO,
		    BlockAIOCB * (*)(ThreadPool *, ThreadPoolFunc *, void *, BlockCompletionFunc *,
				     void *))(pool, func, arg, cb, opaque);
}

/* QEMU >= 8.0: thread_pool_submit_aio(func, arg, cb, opaque) */
static BlockAIOCB *
hk_thread_pool_submit_aio_v8(ThreadPoolFunc *func, void *arg, BlockCompletionFunc *cb,
			     void *opaque)
{
	COUNT(QS_THREAD_POOL_SUBMIT_AIO);
	return REAL(QS_THREAD_POOL_SUBMIT_AIO,
		    BlockAIOCB * (*)(ThreadPoolFunc *, void *, BlockCompletionFunc *, void *))(
		func, arg, cb, opaque);
}

static int64_t
hk_icount_get_raw(void)
{
	COUNT(QS_ICOUNT_GET_RAW);
	return REAL(QS_ICOUNT_GET_RAW, int64_t (*)(void))();
}

static void
hk_timer_init_full(QEMUTimer *ts, QEMUTimerListGroup *tlg, QEMUClockType type, int scale,
		   int attributes, QEMUTimerCB *cb, void *opaque)
{
	COUNT(QS_TIMER_INIT_FULL);
	REAL(QS_TIMER_INIT_FULL, void (*)(QEMUTimer *, QEMUTimerListGroup *, QEMUClockType, int,
					  int, QEMUTimerCB *, void *))(ts, tlg, type, scale,
								       attributes, cb, opaque);
}

static void
hk_timer_mod_ns(QEMUTimer *ts, int64_t expire)
{
	COUNT(QS_TIMER_MOD_NS);
	REAL(QS_TIMER_MOD_NS, void (*)(QEMUTimer *, int64_t))(ts, expire);
}

static void
hk_async_run_on_cpu(CPUState *cpu, run_on_cpu_func func, run_on_cpu_data data)
{
	COUNT(QS_ASYNC_RUN_ON_CPU);
	REAL(QS_ASYNC_RUN_ON_CPU, void (*)(CPUState *, run_on_cpu_func, run_on_cpu_data))(
		cpu, func, data);
}

static void
hk_bql_lock(const char *file, int line)
{
	COUNT(QS_BQL_LOCK);
	REAL(QS_BQL_LOCK, void (*)(const char *, int))(file, line);
}

static void
hk_bql_unlock(void)
{
	COUNT(QS_BQL_UNLOCK);
	REAL(QS_BQL_UNLOCK, void (*)(void))();
}

static void *
replacement_for(enum qsym_id id)
{
	switch (id) {
	case QS_AIO_BH_CALL: return (void *)hk_aio_bh_call;
	case QS_AIO_BH_SCHEDULE_ONESHOT: return (void *)hk_aio_bh_schedule_oneshot_full;
	case QS_QEMU_BH_SCHEDULE: return (void *)hk_qemu_bh_schedule;
	case QS_QEMU_BH_SCHEDULE_IDLE: return (void *)hk_qemu_bh_schedule_idle;
	case QS_AIO_BH_NEW_FULL: return (void *)hk_aio_bh_new_full;
	case QS_AIO_POLL: return (void *)hk_aio_poll;
	case QS_ICOUNT_START_WARP_TIMER: return (void *)hk_icount_start_warp_timer;
	case QS_THREAD_POOL_SUBMIT_AIO:
		return session_submit_takes_pool() ? (void *)hk_thread_pool_submit_aio_v7
						   : (void *)hk_thread_pool_submit_aio_v8;
	case QS_ICOUNT_GET_RAW: return (void *)hk_icount_get_raw;
	case QS_TIMER_INIT_FULL: return (void *)hk_timer_init_full;
	case QS_TIMER_MOD_NS: return (void *)hk_timer_mod_ns;
	case QS_ASYNC_RUN_ON_CPU: return (void *)hk_async_run_on_cpu;
	case QS_BQL_LOCK: return (void *)hk_bql_lock;
	case QS_BQL_UNLOCK: return (void *)hk_bql_unlock;
	default: return NULL;
	}
}

static unsigned long
exe_off(const void *p)
{
	return (unsigned long)((const char *)p - (const char *)shim_qemu.exe_base);
}

/* ---- all exports (BHRR_CHECK_ALL) ---- */

struct elf_image {
	void *map;
	size_t size;
};

/* Map /proc/self/exe read-only; 0 or -1. */
static int
elf_open(struct elf_image *img)
{
	int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	struct stat st;

	img->map = MAP_FAILED;
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) == 0 && st.st_size > (off_t)sizeof(Elf64_Ehdr))
		img->map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	img->size = (size_t)st.st_size;
	return img->map == MAP_FAILED ? -1 : 0;
}

/* The .dynsym section and its string table, bounds-checked; 0 or -1. */
static int
elf_dynsym(const struct elf_image *img, const Elf64_Sym **syms, size_t *n, const char **strs,
	   size_t *strsz)
{
	const Elf64_Ehdr *eh = img->map;

	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_shoff == 0 || eh->e_shoff + (size_t)eh->e_shnum * sizeof(Elf64_Shdr) > img->size)
		return -1;
	const Elf64_Shdr *sh = (const Elf64_Shdr *)((const char *)img->map + eh->e_shoff);

	for (unsigned i = 0; i < eh->e_shnum; i++) {
		if (sh[i].sh_type != SHT_DYNSYM || sh[i].sh_link >= eh->e_shnum)
			continue;
		const Elf64_Shdr *st = &sh[sh[i].sh_link];

		if (sh[i].sh_offset + sh[i].sh_size > img->size ||
		    st->sh_offset + st->sh_size > img->size)
			return -1;
		*syms = (const Elf64_Sym *)((const char *)img->map + sh[i].sh_offset);
		*n = sh[i].sh_size / sizeof(Elf64_Sym);
		*strs = (const char *)img->map + st->sh_offset;
		*strsz = st->sh_size;
		return 0;
	}
	return -1;
}

static void
check_all_exports(void)
{
	struct elf_image img;
	const Elf64_Sym *syms;
	const char *strs;
	size_t n, strsz;
	unsigned by_err[HOOK_E_COUNT] = { 0 };
	unsigned funcs = 0, partial = 0;
	long long t0 = shim_now_ns();

	if (elf_open(&img) < 0 || elf_dynsym(&img, &syms, &n, &strs, &strsz) < 0) {
		vlog_error("check-all: cannot read the dynamic symbol table of %s", shim_qemu.exe);
		return;
	}
	hook_batch_begin();
	for (size_t i = 0; i < n; i++) {
		const Elf64_Sym *s = &syms[i];

		if (ELF64_ST_TYPE(s->st_info) != STT_FUNC || s->st_shndx == SHN_UNDEF ||
		    s->st_value == 0 || s->st_name >= strsz)
			continue;
		void *target = (char *)shim_qemu.exe_base + s->st_value;
		struct hook_info info;
		int err;

		funcs++;
		err = hook_install_ex(target, NULL, NULL, HOOK_F_NULL, &info);
		by_err[-err]++;
		partial += err == 0 && info.partial;
		if (err < 0 && err != HOOK_E_ALREADY)
			vlog_say("check-all: refused %s @%#lx %s: %s", strs + s->st_name,
				 exe_off(target), hook_errname(err), info.detail);
	}
	if (hook_batch_end() < 0)
		vlog_error("check-all: could not restore text page protections");
	munmap(img.map, img.size);

	char line[512];
	int len = 0;

	for (int e = 1; e < HOOK_E_COUNT; e++)
		if (by_err[e])
			len += snprintf(line + len, sizeof(line) - (size_t)len, " %s=%u",
					hook_errname(-e), by_err[e]);
	line[len] = 0;
	vlog_say("check-all: %u exported functions, %u hooked, %u refused:%s; %u with a partial "
		 "back-jump check; %.1f ms",
		 funcs, by_err[0], funcs - by_err[0], len ? line : " none", partial,
		 (double)(shim_now_ns() - t0) / 1e6);
}

/* ---- the target set ---- */

/*
 * The builds bhrr was tested on, and this build's self-check: one line
 * each, then the verdict a record would reach ("self-check passed" or
 * "self-check failed: NAME ..."), the line bhrr record looks for.
 */
static void
check_self(void)
{
	static struct selfcheck sc; /* constructor only */
	struct hook_spec hooks[QS_COUNT];
	const struct qemu_build *b = &shim_qemu;
	char f[1024];

	for (int k = 0; qemu_known_builds[k]; k += 2)
		vlog_say("check: tested build %s  %s%s", qemu_known_builds[k], qemu_known_builds[k + 1],
			 strcmp(qemu_known_builds[k], b->build_id) == 0 ? "  (this one)" : "");
	if (b->known == NULL)
		vlog_say("check: this build (%s) is not one bhrr was tested on: a record needs every "
			 "check below to pass", b->build_id[0] ? b->build_id : "without build-id");
	int bad = selfcheck_run(&sc, hooks, session_hook_table(hooks));

	selfcheck_report(&sc, "check: ");
	selfcheck_failure(&sc, f, sizeof(f));
	if (bad)
		vlog_say("check: self-check failed: %s", f);
	else
		vlog_say("check: self-check passed (%d checks)", SC_COUNT);
}

void
check_start(int all, int self_only)
{
	struct qemu_build *b = &shim_qemu;
	unsigned hooked = 0, refused = 0;
	long long t0;

	vlog_say("check: QEMU %s, build-id %s, %s", b->version[0] ? b->version : "(version unknown)",
		 b->build_id[0] ? b->build_id : "none", b->exe);
	check_self();
	if (self_only)
		return;
	t0 = shim_now_ns();
	if (hook_batch_begin() < 0)
		vlog_error("check: cannot read /proc/self/maps");
	for (int id = 0; id < QS_HOOK_COUNT; id++) {
		struct qsym *s = &b->sym[id];
		struct hook_info info;

		if (s->addr == NULL) {
			vlog_say("check: %-30s missing (not exported by this build)", qsym_name(b, id));
			refused++;
			continue;
		}
		int err = hook_install_ex(s->addr, replacement_for(id), &real[id], 0, &info);

		if (err == 0) {
			hooked++;
			vlog_say("check: %-30s @%#-9lx stolen %2u (%u insns%s) ok", s->found,
				 exe_off(s->addr), info.stolen, info.n_insns,
				 info.endbr ? ", endbr64" : "");
		} else {
			refused++;
			vlog_say("check: %-30s @%#-9lx refused %s: %s", s->found, exe_off(s->addr),
				 hook_errname(err), info.detail);
		}
	}
	if (hook_batch_end() < 0)
		vlog_error("check: could not restore text page protections");
	vlog_say("check: %u targets, %u hooked, %u refused; install %.2f ms", QS_HOOK_COUNT, hooked,
		 refused, (double)(shim_now_ns() - t0) / 1e6);
	if (all)
		check_all_exports();
}

void
check_finish(void)
{
	char line[1024];
	int len = 0;

	for (int id = 0; id < QS_HOOK_COUNT && len < (int)sizeof(line) - 64; id++)
		if (real[id] != NULL)
			len += snprintf(line + len, sizeof(line) - (size_t)len, " %s=%lu",
					qsym_name(&shim_qemu, id), atomic_load(&calls[id]));
	line[len] = 0;
	vlog_say("check: calls%s", line);
}
