/*
 * gate_power.c - a guest's shutdown request stops its vCPU (see gate_power.h).
 */
#include "gate_power.h"
#include "symbols.h"

static void (*real_shutdown_request)(int cause);

static void
hk_shutdown_request(int cause)
{
	real_shutdown_request(cause);
	/* a no-op outside a vCPU thread (current_cpu is NULL there) */
	((void (*)(void))shim_qemu.sym[QS_CPU_STOP_CURRENT].addr)();
}

static const struct hook_spec hooks[] = {
	{ QS_QEMU_SYSTEM_SHUTDOWN_REQUEST, (void *)hk_shutdown_request, (void **)&real_shutdown_request },
};

const struct hook_spec *
gate_power_hooks(size_t *n)
{
	*n = sizeof(hooks) / sizeof(hooks[0]);
	return hooks;
}
