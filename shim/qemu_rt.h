/*
 * qemu_rt.h - QEMU as bhrr finds it at run time: the QEMU functions bhrr
 * calls, the struct offsets that discovery (discover.h) measured, and the
 * reads of the instruction count.
 *
 * Threads: qrt is filled by the constructor (qrt_bind, then discovery),
 * single-threaded and before any hook is installed; afterwards only
 * qrt.timer and qrt.main_ctx change, each once, from NULL to its value, by
 * the main thread with the BQL (stored with release, read with acquire).
 * Everything else is read-only, so any thread may read it.
 */
#ifndef BHRR_QEMU_RT_H
#define BHRR_QEMU_RT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "qemu_types.h"

/* callbacks named by discovery where QEMUBH has no name (qemu_rt.cb_names) */
#define QRT_CB_NAMES_MAX 16

/* QEMU's clock and timer constants (include/qemu/timer.h), checked by name. */
enum {
	QRT_CLOCK_REALTIME = 0,
	QRT_CLOCK_VIRTUAL = 1,
	QRT_SCALE_NS = 1,
	QRT_TIMER_ATTR_EXTERNAL = 1,
	QRT_SHUTDOWN_CAUSE_HOST_ERROR = 1,
};
/* sizeof(QEMUTimer) is 48 on every 64-bit build bhrr knows: room to spare. */
#define QRT_TIMER_BYTES 256

/* Thread roles in bh_schedule / nested_poll events (doc/log_format.md). */
enum qrt_role { QRT_ROLE_VCPU, QRT_ROLE_MAIN, QRT_ROLE_WORKER, QRT_ROLE_OTHER };

typedef void qrt_vm_change_fn(void *opaque, bool running, int state);

struct qemu_rt {
	/* QEMU functions bhrr calls (never hooks) */
	void (*timer_init_full)(void *ts, void *tlg, int type, int scale, int attrs,
				QEMUTimerCB *cb, void *opaque);
	void (*timer_mod_ns)(void *ts, int64_t expire);
	void (*timer_del)(void *ts);
	int64_t (*clock_get_ns)(int type);
	bool (*runstate_is_running)(void);
	bool (*in_vcpu_thread)(void);
	AioContext *(*get_aio_context)(void);
	void *(*add_vm_change_state_handler)(qrt_vm_change_fn *fn, void *opaque);
	bool (*all_idle)(void);
	CPUState *(*get_cpu)(int index);
	int64_t (*deadline_ns_all)(int type, int attr_mask);
	void (*async_run_on_cpu)(CPUState *cpu, run_on_cpu_func fn, run_on_cpu_data data);
	void (*shutdown_request)(int cause);
	void (*bql_lock)(const char *file, int line);
	void (*bql_unlock)(void);
	bool (*bql_locked)(void); /* bql_locked / qemu_mutex_iothread_locked; may be NULL */
	int64_t (*icount_get_raw)(void); /* set only when cpu_fields is */

	/* QEMUBH, from a probe (discover_bh_layout) */
	size_t bh_size, off_ctx, off_name, off_cb, off_opaque;
	/*
	 * Whether QEMUBH has a name (aio_bh_new_full, 6.2 on).  Without one
	 * (5.2), the callbacks bhrr treats by name are found in QEMU's code
	 * (discover_bh_names) and named from this table.
	 */
	int bh_named;
	unsigned n_cb_names;
	struct qrt_cb_name {
		const void *cb;
		const char *name;
	} cb_names[QRT_CB_NAMES_MAX];
	/* timers_state.qemu_icount and .qemu_icount_bias (discover_timers); NULL without */
	volatile int64_t *qemu_icount, *icount_bias;
	/* CPUState's running and can_do_io (discover_cpu_fields) */
	int cpu_fields;
	int64_t off_running, off_can_do_io;
	unsigned can_do_io_size;

	unsigned shift;   /* -icount shift=N */
	int exact;        /* exact mode: events placed at exact icounts */
	pid_t main_tid;   /* the thread that ran the constructor: QEMU's main loop */

	void *timer;      /* the executor's QEMUTimer (executor.c); set once */
	AioContext *main_ctx; /* the main loop's AioContext; set once */
};

extern struct qemu_rt qrt;

/* Fill the function pointers from the symbol table; constructor only. */
void qrt_bind(void);

/* The pointer-sized field at @off of @obj. */
static inline void *
qrt_field(const void *obj, size_t off)
{
	void *v;

	__builtin_memcpy(&v, (const char *)obj + off, sizeof(v));
	return v;
}

/*
 * The name of BH callback @cb where QEMUBH has none: the name discovery
 * gave it, or NULL.  @name is what QEMU passed or holds (meaningless
 * without names).  Any thread (the table is read-only).
 */
static inline const char *
qrt_cb_name(const void *cb, const char *name)
{
	if (qrt.bh_named)
		return name;
	for (unsigned i = 0; i < qrt.n_cb_names; i++)
		if (qrt.cb_names[i].cb == cb)
			return qrt.cb_names[i].name;
	return NULL;
}

/* The name of @bh, with or without a name field (qrt_cb_name); any thread. */
static inline const char *
qrt_bh_name(const void *bh)
{
	if (qrt.bh_named)
		return qrt_field(bh, qrt.off_name);
	return qrt_cb_name(qrt_field(bh, qrt.off_cb), NULL);
}

/* This thread's role; any thread. */
enum qrt_role qrt_role_slow(void);
/* this thread's role once known (qemu_rt.c), -1 before; this thread's */
extern __thread int qrt_my_role;

static inline enum qrt_role
qrt_role(void)
{
	/* inline: every guest device access asks (io_land.c) */
	return qrt_my_role >= 0 ? (enum qrt_role)qrt_my_role : qrt_role_slow();
}

/* Whether this is QEMU's main thread; any thread. */
int qrt_in_main_thread(void);

/*
 * The icount now and how good it is (enum log_icount): exact only where the
 * caller knows no TB is running (@exact_here) and the run is in exact mode.
 * Any thread.
 */
int64_t qrt_icount_now(unsigned *how, int exact_here);

/*
 * The icount for an event logged wherever QEMU calls us: exact in the vCPU
 * thread where QEMU itself could read it exactly (outside cpu_exec, or in
 * an I/O access with can_do_io set), a lower bound elsewhere.  Any thread;
 * @role is the caller's qrt_role(), which it usually needs anyway.
 */
int64_t qrt_icount_here(unsigned *how, enum qrt_role role);

/* This thread's current_cpu (QEMU's thread-local), or NULL; any thread. */
CPUState *qrt_current_cpu(void);

/*
 * Whether this vCPU thread is outside cpu_exec (no TB running, so
 * qemu_icount is current): 1, 0, or -1 when CPUState's layout is unknown
 * or this is not a vCPU thread.
 */
int qrt_outside_tb(void);

/* The virtual-clock deadline of icount @ic: bias + (ic << shift). */
int64_t qrt_deadline_of(int64_t ic);

/*
 * Debug builds (no NDEBUG): say once (vlog_error) if the BQL is not held where bhrr
 * relies on it; @where names the place.  No-op in other builds or when the
 * QEMU build exports no BQL check.
 */
void qrt_assert_bql(const char *where);

/* The offset of @p from the executable's load address (callback idents). */
uint64_t qrt_exe_offset(const void *p);

#endif
