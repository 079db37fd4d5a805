/*
 * discover.h - measuring QEMU's layouts at run time, by probes and by
 * reading QEMU's own code, never by trusting a version number.
 *
 * Constructor only: every function here runs before any hook is installed
 * and before QEMU has started a thread, and fills fields of qrt
 * (qemu_rt.h) that are read-only from then on.
 */
#ifndef BHRR_DISCOVER_H
#define BHRR_DISCOVER_H

#include <stddef.h>
#include <stdint.h>

/*
 * QEMUBH's size and the offsets of ctx, cb, opaque and name (none where
 * BHs have no name: qrt.bh_named): creates a BH with known values and
 * finds each.  0, or -1 with @why.
 */
int discover_bh_layout(char *why, size_t len);

/*
 * The offsets discover_bh_layout() found, proven on a second BH made with
 * other values: each must read back what it was made with.  0, or -1 with
 * @why naming the field that did not.
 */
int discover_bh_verify(char *why, size_t len);

/*
 * timers_state.qemu_icount and .qemu_icount_bias (+0x40 and +0x28 from 7.2
 * on; otherwise where QEMU's icount_get_raw() and icount_get() load them,
 * read from their code: the bias is at +0x20 in 5.2), proven by a probe:
 * sentinels written there must come back through QEMU's own getters.  0, or -1 with @why (then qrt's
 * pointers stay NULL and the run can only record the order of events).
 */
int discover_timers(char *why, size_t len);

/*
 * CPUState's running and can_do_io offsets, from the code of the function
 * icount_get_raw() calls.  Sets qrt.cpu_fields when found; otherwise
 * vCPU-thread schedule icounts stay lower bounds.
 */
void discover_cpu_fields(void);

/*
 * Whether thread_pool_submit_aio takes the pool as its first argument
 * (before 8.0) or finds it itself (8.0 on), read from its code: from 8.0
 * it calls aio_get_thread_pool before qemu_aio_get, before 8.0 it calls
 * qemu_aio_get first.  1, 0, or -1 when the code has neither shape.  A
 * wrong guess would take the opaque pointer for the completion callback.
 */
int discover_submit_takes_pool(void);

/*
 * Whether aio_set_event_notifier takes is_external (before 8.1), read from
 * its code: it calls aio_set_fd_handler with io_write NULL, which is the
 * fifth argument (r8 zeroed) while is_external is there and the fourth (rcx
 * zeroed) after.  1, 0, or -1 when the code has neither shape.
 */
int discover_notifier_takes_external(void);

/*
 * Where QEMUBH has no name (before 6.2): the callbacks bhrr treats by name
 * (notify_event_cb, co_schedule_bh_cb, the thread pool's, ...), each found
 * in the code of the exported function that makes its BH, into
 * qrt.cb_names.  0, or -1 with @why naming the first one not found.  Needs
 * qrt.off_cb (discover_bh_layout).
 */
int discover_bh_names(char *why, size_t len);

/*
 * Whether QEMU's VM state handler list can take a handler now, before
 * main(): 1 where it is statically initialised (7.2 on), 0 where it is
 * still zero (5.2 initialises it in qemu_init), -1 when the list head
 * was not found in the code of qemu_add_vm_change_state_handler_prio (or,
 * from 10.0, of the _prio_full it tail-jumps to).
 */
int discover_vm_handlers_ready(void);

/*
 * Where aio_bh_poll runs a BH without calling aio_bh_call (5.2 inlines it:
 * "mov rdi, [REG + opaque]; ...; call [REG + cb]"), the window to patch so
 * that the BH gate still sees every BH run (hook_call_site).
 */
struct bh_call_site {
	void *at;           /* the window: the load of rdi .. the end of the call */
	size_t len;
	int reg;            /* the register holding the BH (x86 number) */
	uint8_t keep[24];   /* the instructions between, kept */
	size_t keep_len;
};

/*
 * 0 when aio_bh_poll calls aio_bh_call (its hook sees every BH run); 1 with
 * @site where it calls the callback itself; -1 with @why when neither
 * shape is found or the window cannot be patched safely.
 */
int discover_bh_call_site(struct bh_call_site *site, char *why, size_t len);

#endif
