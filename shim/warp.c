/*
 * warp.c - warps where the icount is exact (see warp.h).
 */
#include <stdatomic.h>

#include "emit.h"
#include "debug.h"
#include "executor.h"
#include "gate_mon.h"
#include "log.h"
#include "policy.h"
#include "qemu_rt.h"
#include "warp.h"

static void (*real_icount_start_warp_timer)(void);
static atomic_int queued;               /* a hand-off is pending */
static atomic_ullong warps, handoffs;

int64_t
warp_apply(void)
{
	int64_t before = __atomic_load_n(qrt.icount_bias, __ATOMIC_ACQUIRE);

	real_icount_start_warp_timer();
	return __atomic_load_n(qrt.icount_bias, __ATOMIC_ACQUIRE) - before;
}

void
warp_record(void)
{
	int64_t delta = warp_apply();

	if (delta != 0) {
		unsigned how;
		int64_t ic = qrt_icount_now(&how, 1);

		atomic_fetch_add(&warps, 1);
		emit_warp(delta, how, ic);
	}
}

static void
warp_fn(CPUState *cpu, run_on_cpu_data data)
{
	(void)cpu;
	(void)data;
	atomic_store(&queued, 0);
	if (!gate_mon_holding() && !debug_holding())
		policy_current()->warp();
}

static void
hk_icount_start_warp_timer(void)
{
	/*
	 * vCPUs bhrr stopped for a monitor command or a debugger are not asleep:
	 * no warp, in record or replay
	 */
	if (gate_mon_holding() || debug_holding())
		return;
	if (qrt.icount_bias == NULL || executor_arming()) {
		if (!executor_arming())
			real_icount_start_warp_timer();
		return;
	}
	if (qrt.in_vcpu_thread()) {
		policy_current()->warp();
		return;
	}
	/* as QEMU would: nothing to do unless running, idle, and a timer ahead */
	if (!qrt.runstate_is_running() || !qrt.all_idle())
		return;
	int due = policy_current()->warp_due();

	/* no guest timer at all: QEMU would not warp either (time stands still) */
	if (!due && qrt.deadline_ns_all(QRT_CLOCK_VIRTUAL, ~QRT_TIMER_ATTR_EXTERNAL) < 0)
		return;
	CPUState *cpu = qrt.get_cpu(0);

	if (cpu == NULL) {
		real_icount_start_warp_timer();
		return;
	}
	if (atomic_exchange(&queued, 1))
		return;
	atomic_fetch_add(&handoffs, 1);
	qrt.async_run_on_cpu(cpu, warp_fn, (run_on_cpu_data){ .host_ptr = NULL });
}

const struct hook_spec *
warp_hook(void)
{
	static const struct hook_spec h = { QS_ICOUNT_START_WARP_TIMER,
					    (void *)hk_icount_start_warp_timer,
					    (void **)&real_icount_start_warp_timer };

	return &h;
}

unsigned long long
warp_count(void)
{
	return warps;
}

unsigned long long
warp_handoffs(void)
{
	return handoffs;
}
