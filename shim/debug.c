/*
 * debug.c - a replay held for a debugger (see debug.h).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "debug.h"
#include "executor.h"
#include "qemu_rt.h"
#include "replay.h"
#include "settings.h"
#include "symbols.h"
#include "vlog.h"

#define BP_GDB 0x10 /* include/hw/core/cpu.h: inserted by the gdbstub */
#define RUN_STATE_PAUSED 4 /* qapi/run-state.json's RunState, the same order since 2.x */

typedef void io_handler(void *opaque);
typedef void set_fd_handler_fn(int fd, io_handler *rd, io_handler *wr, void *opaque);

static void (*real_debug_request)(void);
static int (*real_vm_stop)(int state);

static atomic_int fd = -1;      /* the control socket; set by the constructor, -1 once it failed */
static int real_fd = -1;        /* the socket itself, to unregister and close; BQL after the constructor */
static int started;             /* BQL: debug_vm_running ran */
static int holding;             /* BQL: the vCPU is stopped for the debugger */
static int64_t stop_at = -1;    /* BQL: the icount the stop timer is for, -1 none */
static const char *stop_why;    /* BQL: the reason the stop at stop_at reports */
static unsigned defers;         /* BQL: the stop timer gave way this many times at one time */
static void *stop_timer;        /* set once by debug_vm_running; BQL */
static long wp_hit_off = -1;    /* set once by debug_vm_running: CPUState's watchpoint_hit, -1 unknown */
static int fake_stop = -1;      /* BQL: the run state (RUNNING) to restore after a gdbstub pause, -1 none */
static char in[256];            /* main thread: a partial order */
static size_t in_len;

static void *
sym(enum qsym_id id)
{
	return shim_qemu.sym[id].addr;
}

/* One line to the endpoint; BQL (or the constructor). */
static void
say(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int f = atomic_load(&fd);

	if (f < 0)
		return;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);

	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	for (int off = 0; off < n;) {
		ssize_t w = send(f, buf + off, (size_t)(n - off), MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			vlog_error("debug: the debugger's socket failed (%s); the run goes on without it",
				   w < 0 ? strerror(errno) : "closed");
			atomic_store(&fd, -1);
			return;
		}
		off += (int)w;
	}
}

int
debug_start(char *why, size_t len)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	const char *path = bhrr_cfg.debug_sock;

	if (strlen(path) >= sizeof(a.sun_path)) {
		snprintf(why, len, "BHRR_DEBUG=%s: a socket path longer than %zu bytes", path,
			 sizeof(a.sun_path) - 1);
		return -1;
	}
	for (int i = QS_QEMU_SYSTEM_DEBUG_REQUEST; i <= QS_CPU_WATCHPOINT_REMOVE_ALL; i++)
		if (sym((enum qsym_id)i) == NULL) {
			snprintf(why, len, "a replay for a debugger needs QEMU's %s, which this build lacks",
				 qsym_name(&shim_qemu, (enum qsym_id)i));
			return -1;
		}
	strcpy(a.sun_path, path);
	int f = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (f < 0 || connect(f, (struct sockaddr *)&a, sizeof(a)) < 0) {
		snprintf(why, len, "BHRR_DEBUG=%s: cannot connect to the debugger's socket: %s", path,
			 strerror(errno));
		if (f >= 0)
			close(f);
		return -1;
	}
	atomic_store(&fd, f);
	real_fd = f;
	return 0;
}

void
debug_refused(void)
{
	int f = atomic_load(&fd);

	if (f < 0)
		return;
	say("refused");
	atomic_store(&fd, -1);
	close(f);
	real_fd = -1;
}

int
debug_active(void)
{
	return atomic_load(&fd) >= 0;
}

int
debug_holding(void)
{
	return holding;
}

/* Stop the vCPU here, between two instructions; vCPU thread, BQL. */
static void
hold_here(const char *why, int64_t ic)
{
	if (qrt_current_cpu() == NULL) {
		vlog_error("debug: no current vCPU to stop at icount %lld", (long long)ic);
		return;
	}
	holding = 1;
	((void (*)(void))sym(QS_CPU_STOP_CURRENT))();
	say("stop %s %lld", why, (long long)ic);
}

/*
 * The stop timer: VIRTUAL, run by the vCPU between TBs.  Last of all that
 * is due at its time (the guest's timers, the executor's landing), so that
 * what was recorded at the icount has run; and again at the new deadline
 * if a warp moved the clock but not the icount.
 */
static void
stop_cb(void *opaque)
{
	(void)opaque;
	if (stop_at < 0)
		return;
	unsigned how;
	int64_t ic = qrt_icount_now(&how, 1);
	int64_t now = qrt.clock_get_ns(QRT_CLOCK_VIRTUAL);

	if (ic < stop_at) {
		qrt.timer_mod_ns(stop_timer, qrt_deadline_of(stop_at));
		return;
	}
	if (defers < 64 && (qrt.deadline_ns_all(QRT_CLOCK_VIRTUAL, ~QRT_TIMER_ATTR_EXTERNAL) == 0 ||
			    executor_pending_at(now))) {
		defers++;
		qrt.timer_mod_ns(stop_timer, now);
		return;
	}
	defers = 0;
	stop_at = -1;
	hold_here(stop_why, ic);
}

static void
arm_stop(int64_t ic, const char *why)
{
	stop_at = ic;
	stop_why = why;
	defers = 0;
	qrt.timer_mod_ns(stop_timer, qrt_deadline_of(ic));
}

/*
 * Whether QEMU's run state is @state: 1 or 0, -1 if this build cannot say
 * (runstate_get is newer than 7.2, runstate_check gone from 10.0's
 * exports).  BQL.
 */
static int
state_is(int state)
{
	static int looked;                /* BQL */
	static int (*get)(void);
	static bool (*check)(int);

	if (!looked) {
		looked = 1;
		get = (int (*)(void))dlsym(RTLD_DEFAULT, "runstate_get");
		check = (bool (*)(int))dlsym(RTLD_DEFAULT, "runstate_check");
	}
	return get != NULL ? get() == state : check != NULL ? check(state) : -1;
}

/* Whether the run state is still RUN_STATE_PAUSED; BQL. */
static int
still_paused(void)
{
	return state_is(RUN_STATE_PAUSED) == 1;
}

static void
resume(int step)
{
	CPUState *cpu = qrt.get_cpu(0);

	if (cpu != NULL)
		((void (*)(CPUState *, int))sym(QS_CPU_SINGLE_STEP))(cpu, step ? 1 /* SSTEP_ENABLE */ : 0);
	holding = 0;
	if (fake_stop >= 0) {
		/* still the gdbstub's mark (nothing else stops the VM while bhrr holds the vCPU) */
		if (still_paused())
			((void (*)(int))sym(QS_RUNSTATE_SET))(fake_stop);
		fake_stop = -1;
	}
	/* stopped by QEMU's gdbstub before bhrr held the vCPU: start it again, at the same icount */
	if (!qrt.runstate_is_running())
		((void (*)(void))sym(QS_VM_START))();
	else
		((void (*)(void))sym(QS_RESUME_ALL_VCPUS))();
}

/* One order from the endpoint; main thread, BQL. */
static void
order(char *line)
{
	unsigned how;
	int64_t ic = qrt_icount_now(&how, holding);
	long long n;

	if (strcmp(line, "when") == 0) {
		const struct replay_action *a = replay_is_free() ? NULL : replay_due();

		if (a != NULL)
			say("ok icount %lld held %d next %llu %lld", (long long)ic, holding,
			    (unsigned long long)a->a.seq, (long long)a->a.icount);
		else
			say("ok icount %lld held %d next %s", (long long)ic, holding,
			    replay_is_free() ? "free" : "none");
	} else if (strcmp(line, "pause") == 0) {
		if (holding) {
			say("ok held");
			return;
		}
		/* a lower bound from here: the vCPU stops at its next TB boundary */
		arm_stop(ic + 1, "pause");
		say("ok");
	} else if (!holding) {
		say("err the vCPU runs: '%s' needs it stopped", line);
	} else if (strcmp(line, "cont") == 0 || strcmp(line, "step") == 0) {
		say("ok");
		resume(line[0] == 's');
	} else if (sscanf(line, "cont-to %lld", &n) == 1) {
		if (n <= ic) {
			say("err icount %lld is not ahead of %lld", n, (long long)ic);
			return;
		}
		arm_stop(n, "target");
		say("ok");
		resume(0);
	} else {
		say("err unknown order '%s'", line);
	}
}

static void
readable(void *opaque)
{
	(void)opaque;
	ssize_t r = real_fd < 0 ? 0 : read(real_fd, in + in_len, sizeof(in) - 1 - in_len);

	if (r < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (r <= 0) {
		/*
		 * The debugger left: let the replay run on, as after gdb's detach,
		 * without the points it set (a breakpoint with no debugger would
		 * stop the VM for good).
		 */
		CPUState *cpu = qrt.get_cpu(0);

		((set_fd_handler_fn *)sym(QS_QEMU_SET_FD_HANDLER))(real_fd, NULL, NULL, NULL);
		atomic_store(&fd, -1);
		close(real_fd);
		real_fd = -1;
		stop_at = -1;
		if (cpu != NULL) {
			((void (*)(CPUState *, int))sym(QS_CPU_BREAKPOINT_REMOVE_ALL))(cpu, BP_GDB);
			((void (*)(CPUState *, int))sym(QS_CPU_WATCHPOINT_REMOVE_ALL))(cpu, BP_GDB);
		}
		if (holding)
			resume(0);
		else if (cpu != NULL)
			((void (*)(CPUState *, int))sym(QS_CPU_SINGLE_STEP))(cpu, 0);
		vlog("debug: the debugger closed its socket; the replay runs on");
		return;
	}
	in_len += (size_t)r;
	for (char *nl; (nl = memchr(in, '\n', in_len)) != NULL;) {
		*nl = 0;
		order(in);
		in_len -= (size_t)(nl + 1 - in);
		memmove(in, nl + 1, in_len);
	}
	if (in_len == sizeof(in) - 1)
		in_len = 0; /* no order is that long */
}

typedef int wp_insert_fn(CPUState *cpu, uint64_t addr, uint64_t len, int flags, void **wp);
typedef void wp_remove_fn(CPUState *cpu, void *wp);

/*
 * Where CPUState keeps watchpoint_hit: QEMU's gdbstub clears it when it
 * reports a watchpoint, and a vCPU resumed with it set re-enters its
 * watchpoint check wrongly (7.2 then takes the BQL it holds, and aborts).
 * bhrr reports stops itself, so it must clear it too.  Found by a probe:
 * a watchpoint inserted into an empty list is its head's first element,
 * and the field follows the head (include/hw/core/cpu.h: breakpoints,
 * watchpoints, watchpoint_hit).  Main thread, before the vCPU runs.
 */
static void
find_watchpoint_hit(void)
{
	CPUState *cpu = qrt.get_cpu(0);
	void *wp = NULL;

	if (cpu == NULL ||
	    ((wp_insert_fn *)sym(QS_CPU_WATCHPOINT_INSERT))(cpu, 0x1000, 4, 2 /* BP_MEM_WRITE */, &wp) != 0 ||
	    wp == NULL)
		return;
	for (long off = 0; off + 24 <= 16384; off += 8) {
		void *v, *next;

		memcpy(&v, (char *)cpu + off, sizeof(v));
		memcpy(&next, (char *)cpu + off + 16, sizeof(next));
		if (v == wp && next == NULL) {
			wp_hit_off = off + 16;
			break;
		}
	}
	((wp_remove_fn *)sym(QS_CPU_WATCHPOINT_REMOVE_BY_REF))(cpu, wp);
	if (wp_hit_off < 0)
		vlog_error("debug: CPUState's watchpoint_hit not found; watchpoints are refused");
}

void
debug_vm_running(void)
{
	if (started || !debug_active())
		return;
	started = 1;
	stop_timer = calloc(1, QRT_TIMER_BYTES); /* never freed: QEMU may fire it until exit */
	if (stop_timer == NULL) {
		vlog_error("debug: out of memory for the stop timer");
		return;
	}
	qrt.timer_init_full(stop_timer, NULL, QRT_CLOCK_VIRTUAL, QRT_SCALE_NS,
			    QRT_TIMER_ATTR_EXTERNAL, stop_cb, NULL);
	find_watchpoint_hit();
	say("hello %d%s", (int)getpid(), wp_hit_off < 0 ? " nowatch" : "");
	((set_fd_handler_fn *)sym(QS_QEMU_SET_FD_HANDLER))(real_fd, readable, NULL, NULL);
	arm_stop(0, "start");
}

/* cpu_handle_guest_debug's request: a breakpoint, watchpoint or step.  vCPU thread, BQL. */
static void
hk_debug_request(void)
{
	if (!debug_active()) {
		real_debug_request();
		return;
	}
	unsigned how;
	int64_t ic = qrt_icount_now(&how, 1);

	/* QEMU sets cpu->stopped after this: the vCPU waits, the VM runs on */
	holding = 1;
	if (stop_at >= 0 && stop_why != NULL && strcmp(stop_why, "pause") == 0)
		stop_at = -1; /* a pause asked for is this stop */
	CPUState *cpu = qrt_current_cpu();
	void *hit = NULL;

	if (cpu != NULL && wp_hit_off >= 0)
		memcpy(&hit, (char *)cpu + wp_hit_off, sizeof(hit));
	if (hit != NULL) {
		uint64_t addr;

		memcpy(&addr, hit, sizeof(addr)); /* CPUWatchpoint's first field: vaddr */
		memset((char *)cpu + wp_hit_off, 0, sizeof(hit));
		say("stop trap %lld watch %llx", (long long)ic, (unsigned long long)addr);
		return;
	}
	say("stop trap %lld", (long long)ic);
}

/* QEMU's RunState RUNNING, found by asking while it runs; -1 unknown */
static int
running_state(void)
{
	static int rs = -1; /* BQL */

	for (int k = 0; rs < 0 && qrt.runstate_is_running() && k < 32; k++)
		if (state_is(k) == 1)
			rs = k;
	return rs;
}

/*
 * QEMU's gdbstub stops the VM when gdb connects and whenever a byte comes
 * while it runs (it then reads packets only with the VM stopped).  A real
 * stop notifies every device and drains the block layer, which would wait
 * for completions the replay keeps for later; with the vCPU held by bhrr
 * the run state alone changes, and the first order that runs the vCPU
 * again restores it.  Main thread, BQL.
 */
static int
hk_vm_stop(int state)
{
	if (!debug_active() || !holding || state != RUN_STATE_PAUSED || qrt.in_vcpu_thread() ||
	    !qrt.runstate_is_running()) {
		vlog("debug: vm_stop(%d) goes through (holding %d, running %d)", state, holding,
		     (int)qrt.runstate_is_running());
		return real_vm_stop(state);
	}
	int rs = running_state();

	if (rs < 0) {
		vlog_error("debug: QEMU's RUNNING run state not found; the VM stops for the debugger");
		return real_vm_stop(state);
	}
	fake_stop = rs;
	((void (*)(int))sym(QS_RUNSTATE_SET))(state);
	return 0;
}

int
debug_vm_running_or_held(void)
{
	return qrt.runstate_is_running() || fake_stop >= 0;
}

static const struct hook_spec hooks[] = {
	{ QS_QEMU_SYSTEM_DEBUG_REQUEST, (void *)hk_debug_request, (void **)&real_debug_request },
	{ QS_VM_STOP, (void *)hk_vm_stop, (void **)&real_vm_stop },
};

const struct hook_spec *
debug_hooks(size_t *n)
{
	*n = bhrr_cfg.debug_sock != NULL ? 2 : 0;
	return hooks;
}
