/*
 * qemu_rt.c - QEMU's functions and icount reads (see qemu_rt.h).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "qemu_rt.h"
#include "shim.h"
#include "vlog.h"

struct qemu_rt qrt;

void
qrt_bind(void)
{
	struct qsym *s = shim_qemu.sym;

	qrt.timer_init_full = s[QS_TIMER_INIT_FULL].addr;
	qrt.timer_mod_ns = s[QS_TIMER_MOD_NS].addr;
	qrt.timer_del = s[QS_TIMER_DEL].addr;
	qrt.clock_get_ns = s[QS_QEMU_CLOCK_GET_NS].addr;
	qrt.runstate_is_running = s[QS_RUNSTATE_IS_RUNNING].addr;
	qrt.in_vcpu_thread = s[QS_QEMU_IN_VCPU_THREAD].addr;
	qrt.get_aio_context = s[QS_QEMU_GET_AIO_CONTEXT].addr;
	qrt.add_vm_change_state_handler = s[QS_ADD_VM_CHANGE_STATE_HANDLER].addr;
	qrt.all_idle = s[QS_ALL_CPU_THREADS_IDLE].addr;
	qrt.get_cpu = s[QS_QEMU_GET_CPU].addr;
	qrt.deadline_ns_all = s[QS_QEMU_CLOCK_DEADLINE_NS_ALL].addr;
	qrt.async_run_on_cpu = s[QS_ASYNC_RUN_ON_CPU].addr;
	qrt.shutdown_request = s[QS_QEMU_SYSTEM_SHUTDOWN_REQUEST].addr;
	qrt.bql_lock = s[QS_BQL_LOCK].addr;
	qrt.bql_unlock = s[QS_BQL_UNLOCK].addr;
	/* renamed in 9.0; not required: without it, debug assertions and io_land.h are off */
	qrt.bql_locked = dlsym(RTLD_DEFAULT, "bql_locked");
	if (qrt.bql_locked == NULL)
		qrt.bql_locked = dlsym(RTLD_DEFAULT, "qemu_mutex_iothread_locked");
	qrt.main_tid = (pid_t)syscall(SYS_gettid);
}

static __thread pid_t my_tid; /* this thread's id, once asked */

int
qrt_in_main_thread(void)
{
	if (my_tid == 0)
		my_tid = (pid_t)syscall(SYS_gettid);
	return my_tid == qrt.main_tid;
}

/*
 * A thread's role, once known, never changes: a vCPU thread runs vCPU code
 * to its end, the main thread is the main thread.  A worker is asked again
 * (a thread QEMU starts becomes a vCPU thread only once it set current_cpu).
 */
__thread int qrt_my_role = -1; /* this thread's: QRT_ROLE_VCPU or _MAIN once known */

enum qrt_role
qrt_role_slow(void)
{
	/* only a vCPU thread sets current_cpu: a worker is answered without asking QEMU */
	if (qrt_current_cpu() != NULL && qrt.in_vcpu_thread && qrt.in_vcpu_thread())
		return (enum qrt_role)(qrt_my_role = QRT_ROLE_VCPU);
	if (qrt_in_main_thread())
		return (enum qrt_role)(qrt_my_role = QRT_ROLE_MAIN);
	return QRT_ROLE_WORKER;
}

int64_t
qrt_icount_now(unsigned *how, int exact_here)
{
	if (qrt.qemu_icount == NULL) {
		*how = LOG_IC_UNKNOWN;
		return 0;
	}
	*how = qrt.exact && exact_here ? LOG_IC_EXACT : LOG_IC_LOWER;
	return __atomic_load_n(qrt.qemu_icount, __ATOMIC_ACQUIRE);
}

/* current_cpu is a thread-local of QEMU's: its address differs per thread. */
static __thread void **cur_cpu_slot;  /* this thread's; this thread only */
static __thread int cur_cpu_tried;

CPUState *
qrt_current_cpu(void)
{
	if (!cur_cpu_tried) {
		cur_cpu_tried = 1;
		cur_cpu_slot = dlsym(RTLD_DEFAULT, "current_cpu");
	}
	return cur_cpu_slot ? (CPUState *)*cur_cpu_slot : NULL;
}

int
qrt_outside_tb(void)
{
	const char *cpu = (const char *)qrt_current_cpu();

	if (!qrt.cpu_fields || cpu == NULL)
		return -1;
	return *(const volatile uint8_t *)(cpu + qrt.off_running) == 0;
}

int64_t
qrt_icount_here(unsigned *how, enum qrt_role role)
{
	if (!qrt.cpu_fields || !qrt.exact || qrt.qemu_icount == NULL || role != QRT_ROLE_VCPU)
		return qrt_icount_now(how, 0);
	const char *cpu = (const char *)qrt_current_cpu();

	if (cpu == NULL)
		return qrt_icount_now(how, 0);
	if (*(const volatile uint8_t *)(cpu + qrt.off_running) == 0)
		return qrt_icount_now(how, 1); /* outside cpu_exec: qemu_icount is current */
	uint32_t cdio = qrt.can_do_io_size == 1
				? *(const volatile uint8_t *)(cpu + qrt.off_can_do_io)
				: *(const volatile uint32_t *)(cpu + qrt.off_can_do_io);

	if (cdio == 0)
		return qrt_icount_now(how, 0);
	/* icount_get_raw() exits QEMU when can_do_io is clear: checked just above */
	*how = LOG_IC_EXACT;
	return qrt.icount_get_raw();
}

int64_t
qrt_deadline_of(int64_t ic)
{
	return __atomic_load_n(qrt.icount_bias, __ATOMIC_ACQUIRE) + (ic << qrt.shift);
}

void
qrt_assert_bql(const char *where)
{
#ifndef NDEBUG
	static atomic_int said;

	if (qrt.bql_locked && !qrt.bql_locked() && !atomic_exchange(&said, 1))
		vlog_error("internal: %s runs without the BQL (reported once)", where);
#else
	(void)where;
#endif
}

uint64_t
qrt_exe_offset(const void *p)
{
	return (uint64_t)((const char *)p - (const char *)shim_qemu.exe_base);
}
