/*
 * session.c - starting and finishing a record or replay (see session.h).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "debug.h"
#include "discover.h"
#include "emit.h"
#include "executor.h"
#include "fingerprint.h"
#include "gate.h"
#include "gate_fs.h"
#include "gate_blk.h"
#include "gate_chr.h"
#include "gate_clock.h"
#include "gate_mon.h"
#include "gate_net.h"
#include "gate_power.h"
#include "gate_rng.h"
#include "held.h"
#include "hook.h"
#include "gate_notify.h"
#include "io_land.h"
#include "log.h"
#include "policy.h"
#include "qemu_rt.h"
#include "replay.h"
#include "selfcheck.h"
#include "session.h"
#include "settings.h"
#include "vcpu_sched.h"
#include "shim.h"
#include "vlog.h"
#include "warp.h"

#define HOOKS_MAX QS_COUNT /* at most one hook per symbol */

enum icount_mode { ICOUNT_NONE = 0, ICOUNT_EXACT = 1, ICOUNT_INEXACT = 2 };

static int active; /* atomic */

int
session_active(void)
{
	return __atomic_load_n(&active, __ATOMIC_ACQUIRE);
}

/* "-icount shift=N,sleep=off" (or "-icount N,sleep=off"): exact mode. */
static enum icount_mode
parse_icount(int argc, char **argv, unsigned *shift)
{
	for (int i = 0; i + 1 < argc; i++) {
		if (strcmp(argv[i], "-icount") != 0 && strcmp(argv[i], "--icount") != 0)
			continue;
		const char *o = argv[i + 1];
		const char *s = strstr(o, "shift=");
		const char *v = s ? s + 6 : o;

		if (strncmp(v, "auto", 4) == 0 || v[0] < '0' || v[0] > '9')
			return ICOUNT_INEXACT;
		*shift = (unsigned)strtoul(v, NULL, 10);
		return strstr(o, "sleep=off") ? ICOUNT_EXACT : ICOUNT_INEXACT;
	}
	return ICOUNT_NONE;
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

/* The QEMU start's VM state notifications: main thread, BQL. */
static void
vm_change(void *opaque, bool running, int state)
{
	unsigned how;

	(void)opaque;
	/* the VM starts: QEMU is initialised, vCPUs resume right after this */
	if (running) {
		executor_lazy_init();
		debug_vm_running();
	}
	policy_current()->vm_change(running);
	if (running)
		sched_vm_running();
	int64_t ic = qrt_icount_now(&how, 0);

	emit_vm_change(running, state, how, ic);
}

/* vm_change waits for qemu_init_main_loop (session_start): main thread */
static int vm_handler_deferred;
static int (*real_init_main_loop)(void *errp);

static int
hk_init_main_loop(void *errp)
{
	int r = real_init_main_loop(errp); /* int, or void later: the caller ignores it then */

	if (vm_handler_deferred) {
		vm_handler_deferred = 0;
		qrt.add_vm_change_state_handler(vm_change, NULL);
	}
	return r;
}

int
session_submit_takes_pool(void)
{
	int p = discover_submit_takes_pool();

	return p >= 0 ? p : shim_qemu.major < 8; /* neither shape: the self-check's version fails */
}

size_t
session_hook_table(struct hook_spec *t)
{
	size_t n, m, k = 0;
	size_t k2;
	const struct hook_spec *bh = gate_bh_hooks(&n), *io = io_land_hooks(&m),
			       *nt = gate_notify_hooks(&k2);

	for (size_t i = 0; i < n; i++)
		t[k++] = bh[i];
	t[k++] = *warp_hook();
	t[k++] = *gate_io_hook(session_submit_takes_pool());
	for (size_t i = 0; i < m; i++)
		t[k++] = io[i];
	for (size_t i = 0; i < k2; i++)
		t[k++] = nt[i];
	/*
	 * the gates of the host's inputs (console, entropy, network, monitor,
	 * clock) and the guest's shutdown request
	 */
	static const struct hook_spec *(*const inputs[])(size_t *) = {
		gate_chr_hooks, gate_rng_hooks, gate_net_hooks, gate_mon_hooks, gate_clock_hooks,
		gate_power_hooks, debug_hooks, gate_blk_hooks, sched_hooks,
	};

	for (size_t g = 0; g < sizeof(inputs) / sizeof(inputs[0]); g++) {
		const struct hook_spec *h = inputs[g](&k2);

		for (size_t i = 0; i < k2; i++)
			t[k++] = h[i];
	}
	static const struct hook_spec init_main_loop = { QS_QEMU_INIT_MAIN_LOOP,
							 (void *)hk_init_main_loop,
							 (void **)&real_init_main_loop };

	/* only where the VM state handler must wait for it (5.2; see start) */
	if (discover_vm_handlers_ready() == 0)
		t[k++] = init_main_loop;
	return k;
}

static int
install(const struct hook_spec *s, char *why, size_t len)
{
	struct hook_info info;
	int err = hook_install_ex(shim_qemu.sym[s->id].addr, s->hook, s->real, 0, &info);

	if (err < 0)
		snprintf(why, len, "cannot hook %s: %s (%s)", qsym_name(&shim_qemu, s->id),
			 hook_errname(err), info.detail);
	return err;
}

/* The self-check's results: written by prepare() in the constructor, read-only after. */
static struct selfcheck sc;

/*
 * The self-check (selfcheck.h) of this build and the log to replay: 0, or
 * -1 with @why.  Nothing is hooked yet.  A build bhrr was tested on falls
 * back where it always did (icount: the order of events only; cpu-fields:
 * lower-bound icounts); one it was not tested on must pass every check,
 * unless BHRR_FORCE.  Symbols, the QEMUBH layout and the hook sites are
 * needed by every run.
 */
static int
prepare(const struct hook_spec *hooks, size_t n, char *why, size_t len)
{
	static const enum sc_id needed[] = { SC_VERSION, SC_SYMBOLS, SC_BH_LAYOUT, SC_HOOK_SITES };
	const char *id = shim_qemu.build_id[0] ? shim_qemu.build_id : "without build-id";
	const char *ver = shim_qemu.version[0] ? shim_qemu.version : "version unknown";
	char f[512];
	int bad = selfcheck_run(&sc, hooks, n);

	selfcheck_failure(&sc, f, sizeof(f));
	if (bad && shim_qemu.known == NULL && !bhrr_cfg.force) {
		snprintf(why, len, "QEMU build %s (%s, %.300s) is not one bhrr was tested on, and its "
			 "self-check failed: %s; not %s ('bhrr check' prints the whole self-check; "
			 "BHRR_FORCE=1 tries anyway)", id, ver, shim_qemu.exe, f,
			 settings_doing(&bhrr_cfg));
		return -1;
	}
	for (size_t i = 0; i < sizeof(needed) / sizeof(needed[0]); i++) {
		const struct sc_result *r = &sc.r[needed[i]];

		if (r->ran && !r->ok) {
			snprintf(why, len, "QEMU build %s (%s): self-check %s failed: found %s; "
				 "expected %s; not %s", id, ver, selfcheck_name(needed[i]), r->found,
				 r->expected, settings_doing(&bhrr_cfg));
			return -1;
		}
	}
	if (!sc.r[SC_ICOUNT].ok)
		vlog_error("QEMU build %s: self-check icount failed: found %s; recording the order "
			   "of events only", id, sc.r[SC_ICOUNT].found);
	if (shim_qemu.known == NULL && bad == 0)
		vlog_say("QEMU build %s (%s) is not one bhrr was tested on; its self-check passed "
			 "(%d checks; 'bhrr check' prints them): %s", id, ver, SC_COUNT,
			 settings_doing(&bhrr_cfg));
	else if (shim_qemu.known == NULL)
		vlog_say("QEMU build %s (%s) is not one bhrr was tested on and its self-check "
			 "failed (%s); %s anyway (BHRR_FORCE)", id, ver, f, settings_doing(&bhrr_cfg));
	char d[512];

	if (bhrr_cfg.mode == BHRR_REPLAY && replay_load(bhrr_cfg.replay_path, d, sizeof(d)) < 0) {
		snprintf(why, len, "%s; not replaying", d);
		return -1;
	}
	return 0;
}

/*
 * The files the guest will read, by content, into the header (record only:
 * a replay's are checked by bhrr replay before QEMU starts).  Here in the
 * constructor QEMU has opened none of them yet.  What cannot be hashed is
 * said once and left unchecked.
 */
static void
fingerprint_images(struct log_header *h)
{
	static struct fp_image im[FP_MAX];
	static char form[FP_MAX][FP_WHAT_MAX + FP_PATH_MAX + 200];
	struct timespec t0, t1;
	uint64_t bytes;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	int n = fp_scan(h->argc, h->argv, im, &bytes);

	clock_gettime(CLOCK_MONOTONIC, &t1);
	double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;

	for (int i = 0; i < n && i < LOG_IMAGES_MAX; i++) {
		if (!im[i].ok)
			vlog_say("warning: %s (%s): %s; a replay cannot check that it reads the same",
				 im[i].what, im[i].path, im[i].skip);
		fp_format(&im[i], form[i], sizeof(form[i]));
		h->image[h->nimages++] = form[i];
	}
	if (n == FP_MAX)
		vlog_say("warning: more than %d files on the command line; the rest are not "
			 "fingerprinted", FP_MAX);
	/* the cost, where a user would notice it */
	(s >= 1.0 ? vlog_say : vlog)("fingerprinted %d files (%.1f MiB) in %.2f s", n,
				     (double)bytes / 1048576.0, s);
}

/* The log header: who recorded what, how. */
static void
fill_header(struct log_header *h, enum icount_mode *mode)
{
	static char cmdline[65536];
	struct utsname un;
	struct timespec now;

	memset(h, 0, sizeof(*h));
	snprintf(h->bhrr_version, sizeof(h->bhrr_version), "%s", PACKAGE_VERSION);
	snprintf(h->build_id, sizeof(h->build_id), "%s", shim_qemu.build_id);
	snprintf(h->qemu_version, sizeof(h->qemu_version), "%s", shim_qemu.version);
	snprintf(h->exe, sizeof(h->exe), "%s", shim_qemu.exe);
	if (uname(&un) == 0)
		snprintf(h->host, sizeof(h->host), "%.20s %.60s %.16s %.60s", un.sysname, un.release,
			 un.machine, un.nodename);
	h->argc = read_cmdline(h->argv, LOG_ARGV_MAX, cmdline, sizeof(cmdline));
	*mode = parse_icount(h->argc, h->argv, &h->icount_shift);
	h->icount_mode = (unsigned)*mode;
	h->pid = (uint64_t)getpid();
	if (bhrr_cfg.mode == BHRR_RECORD)
		fingerprint_images(h);
	clock_gettime(CLOCK_REALTIME, &now);
	h->start_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
}

/* The mode this run is in, and its policy: 0, or -1 with @why. */
static int
choose_policy(enum icount_mode mode, unsigned shift, const struct policy **p, char *why, size_t len)
{
	qrt.shift = shift;
	qrt.exact = mode == ICOUNT_EXACT && qrt.qemu_icount != NULL;
	if (mode == ICOUNT_NONE)
		qrt.qemu_icount = qrt.icount_bias = NULL; /* no icount: nothing to tag with */
	*p = &policy_record;
	if (bhrr_cfg.mode == BHRR_REPLAY) {
		if (replay.ordering) {
			qrt.exact = 0; /* the order is all the log has */
			*p = &policy_order;
		} else if (!qrt.exact || shift != replay.shift) {
			snprintf(why, len, "replay needs the recorded -icount shift=%u,sleep=off on the "
				 "command line; not replaying", replay.shift);
			return -1;
		} else {
			*p = &policy_replay;
		}
	} else if (bhrr_cfg.chaos) {
		if (!qrt.exact) {
			snprintf(why, len, "BHRR_CHAOS needs exact mode (-icount shift=N,sleep=off); "
				 "not recording");
			return -1;
		}
		*p = &policy_chaos;
	}
	return 0;
}

static void
say_started(const char *path, enum icount_mode mode)
{
	if (bhrr_cfg.mode == BHRR_REPLAY)
		vlog("replay: %zu recorded actions from %s (%s)", replay.n, bhrr_cfg.replay_path,
		     replay.ordering ? "ordering: in the recorded order"
				     : "exact: at the recorded icounts");
	if (qrt.cpu_fields)
		vlog("record: CPUState running@%#llx can_do_io@%#llx (%u bytes): exact vCPU-thread icounts",
		     (unsigned long long)qrt.off_running, (unsigned long long)qrt.off_can_do_io,
		     qrt.can_do_io_size);
	else
		vlog("record: CPUState's can_do_io not found; schedule icounts are lower bounds");
	char name[32] = "no name";

	if (qrt.bh_named)
		snprintf(name, sizeof(name), "name@%zu", qrt.off_name);
	vlog("record: log %s, %s mode, QEMUBH %zu bytes (ctx@%zu %s cb@%zu opaque@%zu)",
	     path, qrt.exact ? "exact" : mode == ICOUNT_INEXACT ? "ordering (icount not exact)"
								 : "ordering (no icount)",
	     qrt.bh_size, qrt.off_ctx, name, qrt.off_cb, qrt.off_opaque);
}

static int start(void);

int
session_start(void)
{
	char why[512];

	/* a debugger's endpoint hears first, and hears of a refusal (debug.h) */
	if (bhrr_cfg.debug_sock != NULL && debug_start(why, sizeof(why)) < 0) {
		vlog_error("%s; not replaying", why);
		return -1;
	}
	int rc = start();

	if (rc < 0)
		debug_refused();
	return rc;
}

static int
start(void)
{
	struct hook_spec hooks[HOOKS_MAX];
	struct log_header h;
	char why[2048], err[512], defpath[64];
	const char *path = bhrr_cfg.log_path;
	const struct policy *p;
	enum icount_mode mode;

	/* every hook is checked (the self-check's hook-sites) before any is installed: never half-hooked */
	size_t n_hooks = session_hook_table(hooks);

	if (prepare(hooks, n_hooks, why, sizeof(why)) < 0) {
		vlog_error("%s", why);
		return -1;
	}
	fill_header(&h, &mode);
	if (choose_policy(mode, h.icount_shift, &p, why, sizeof(why)) < 0) {
		vlog_error("%s", why);
		return -1;
	}
	if (sched_check(why, sizeof(why)) < 0) {
		vlog_error("%s; not %s", why, settings_doing(&bhrr_cfg));
		return -1;
	}
	if (bhrr_cfg.debug_sock != NULL && p != &policy_replay) {
		vlog_error("a debugger needs an exact replay (-icount shift=N,sleep=off); not replaying");
		return -1;
	}
	io_land_start();
	/* the log first: if it cannot be created, nothing is hooked */
	if (path == NULL) {
		snprintf(defpath, sizeof(defpath), "bhrr-%d.bhlog", (int)getpid());
		path = defpath;
	}
	/* never through a symlink; an existing file only with BHRR_LOG_OVERWRITE */
	struct log_writer *w = log_writer_open_ex(path, &h, 0,
						  bhrr_cfg.log_overwrite ? LOG_W_OVERWRITE : 0, err,
						  sizeof(err));

	if (w == NULL) {
		vlog_error("%s; not %s", err, settings_doing(&bhrr_cfg));
		return -1;
	}
	emit_set_writer(w);
	emit_want_content_keys(p == &policy_order || p == &policy_replay);
	policy_switch(p);
	sched_start(p == &policy_record || p == &policy_chaos, p == &policy_replay);
	gate_chr_start(p == &policy_record && qrt.exact, p == &policy_replay);
	gate_rng_start(p == &policy_record && qrt.exact, p == &policy_replay);
	gate_mon_start(p == &policy_record && qrt.exact, p == &policy_replay);
	gate_net_start(p == &policy_record && qrt.exact, p == &policy_replay);
	gate_fs_start(p == &policy_record || p == &policy_chaos, h.argc, h.argv);
	gate_clock_start(p == &policy_record || p == &policy_chaos,
			 p == &policy_replay || p == &policy_order, p == &policy_record && qrt.exact,
			 /* a log before version 5 has no host clock reads or timers to replay */
			 p == &policy_replay && replay.version >= 5);
	if (p == &policy_chaos)
		policy_chaos_announce();
	hook_batch_begin();
	for (size_t i = 0; i < n_hooks; i++)
		if (install(&hooks[i], why, sizeof(why)) < 0)
			vlog_error("%s (after a successful dry run!)", why);
	/* the self-check's bh-layout found the site, or that there is none */
	if (gate_bh_patch_call_site(0, why, sizeof(why)) < 0)
		vlog_error("%s (after a successful dry run!)", why);
	hook_batch_end();
	gate_clock_bind();
	/* threads only now: hooks are installed single-threaded */
	if (log_writer_start_flusher(w, 50) < 0)
		vlog_error("cannot start the log flusher thread; the log is written at exit only");
	__atomic_store_n(&active, 1, __ATOMIC_RELEASE);
	/*
	 * Before main where the handler list is statically initialised (or
	 * where its head was not found, as before 5.2 was known); where it is
	 * still zero (5.2), once qemu_init has made it: qemu_init_main_loop
	 * comes after that and before the machine, in every version.
	 */
	if (discover_vm_handlers_ready() != 0)
		qrt.add_vm_change_state_handler(vm_change, NULL);
	else
		vm_handler_deferred = 1;
	say_started(path, mode);
	return 0;
}

void
session_finish(void)
{
	unsigned how;

	if (!session_active())
		return;
	__atomic_store_n(&active, 0, __ATOMIC_RELEASE);
	int64_t ic = qrt_icount_now(&how, 0);

	size_t held = held_count(0);

	if (held)
		vlog_say("QEMU exits with %zu BHs, %zu completions, %zu pieces of console input, "
			 "%zu of entropy, %zu network frames and %zu host-clock timers still held by "
			 "bhrr (never run)",
			 held_count(HELD_BH), held_count(HELD_REQ), held_count(HELD_CHR),
			 held_count(HELD_RNG), held_count(HELD_NET), held_count(HELD_TIMER));
	int64_t last = sched_finish(); /* the vCPUs' last turns */

	if (last > ic)
		ic = last;
	if (log_writer_seal(emit_writer(), ic) < 0)
		vlog_error("the log is incomplete");
	vlog("record: %llu BHs gated (%llu held for the executor), %llu passed through, "
	     "%llu schedule calls; %llu warps, %llu handed to the vCPU; "
	     "%llu executor landings moved one instruction on; %llu guest device accesses; %llu landings at I/O accesses, "
	     "%llu kicks after none came; %llu ioeventfd kicks run in the guest's write, "
	     "%llu guest notifiers were signalled; %llu console bytes delivered, "
	     "%llu live ones ignored; %llu entropy bytes handed to devices; %llu monitor commands "
	     "recorded or replayed, %llu live ones refused; %llu network frames handed to NICs, "
	     "%llu live ones dropped; %llu host clock reads for the guest, %llu host-clock timers landed; "
	     "%llu 9p share files fingerprinted",
	     (unsigned long long)gate_gated, (unsigned long long)gate_held,
	     (unsigned long long)gate_passed, (unsigned long long)gate_schedules, warp_count(),
	     warp_handoffs(), executor_landings(), io_land_accesses(), executor_io_landings(),
	     executor_fallbacks(),
	     gate_notify_kicks(), gate_notify_irqs(), gate_chr_bytes(), gate_chr_dropped(), gate_rng_bytes(),
	     gate_mon_commands(), gate_mon_refused(), gate_net_frames(), gate_net_dropped(),
	     gate_clock_reads(), gate_clock_timers(), gate_fs_files());
}
