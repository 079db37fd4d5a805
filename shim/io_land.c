/*
 * io_land.c - landing held work at the guest's I/O accesses (see io_land.h).
 */
#include <stdint.h>

#include "gate.h"
#include "gate_notify.h"
#include "held.h"
#include "io_land.h"
#include "log.h"
#include "policy.h"
#include "qemu_rt.h"
#include "settings.h"
#include "symbols.h"

/*
 * memory_region_dispatch_read(mr, addr, *pval, op, attrs) and _write(mr,
 * addr, data, op, attrs) return a MemTxResult.  MemTxAttrs is a small
 * struct passed in registers; six integer registers forward whatever it
 * takes, in 7.2 and 10.0 alike.
 */
typedef uint32_t io_fn(void *, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);

static io_fn *real_read, *real_write;
static int active;                       /* written once by the constructor */
static __thread int64_t last_ic;         /* the vCPU thread: icount of its last tracked access */
static __thread int tracking;            /* the vCPU thread: last_ic is that of the access before */

int
io_land_active(void)
{
	return active;
}

void
io_land_start(void)
{
	active = qrt.exact && qrt.cpu_fields && qrt.icount_get_raw != NULL && qrt.bql_locked != NULL &&
		 !bhrr_cfg.test.no_io_land;
}

int
io_land_icount(int64_t *ic)
{
	unsigned how;

	*ic = qrt_icount_here(&how, QRT_ROLE_VCPU);
	return how == LOG_IC_EXACT;
}

int
io_land_first_access(int64_t *ic)
{
	if (!io_land_icount(ic)) {
		tracking = 0;
		return 0;
	}
	int first = tracking && *ic != last_ic;

	last_ic = *ic;
	tracking = 1;
	return first;
}

void
io_land_untrack(void)
{
	tracking = 0;
}

/*
 * Guest accesses seen (the verbose summary, make bench's per-access cost):
 * counted by the vCPU thread alone - under -icount QEMU runs every vCPU in
 * one thread - with a plain load and store, no locked add on this path.
 */
static unsigned long long accesses;

unsigned long long
io_land_accesses(void)
{
	return __atomic_load_n(&accesses, __ATOMIC_RELAXED);
}

/*
 * Before a guest access in the vCPU thread, not inside landed work (its
 * device accesses are not the guest's): the policy's turn.  Nothing more
 * here: this runs for every access the guest makes, every status poll and
 * every word of a PIO transfer (1.35 M for 512 ide-pio commands), so it
 * does not even ask QEMU for the BQL - the policy's io() does, once it has
 * something to land (a device of its own locking never sees landed work) -
 * and the policy reads the icount only then.
 */
static inline int
guest_access(void)
{
	return active && qrt_role() == QRT_ROLE_VCPU && !gate_in_executor;
}

static inline void
before_access(void)
{
	__atomic_store_n(&accesses, __atomic_load_n(&accesses, __ATOMIC_RELAXED) + 1,
			 __ATOMIC_RELAXED);
	const struct policy *p = policy_current();

	if (p->io == NULL)
		return;
	/* a hint, read without held_mu, as record_io reads it */
	if (p->io_when_held && __atomic_load_n(&held_q.n, __ATOMIC_RELAXED) == 0) {
		tracking = 0;
		return;
	}
	p->io();
}

/*
 * The common case of a guest access, inlined into both hooks: the vCPU
 * thread, bhrr active, not in landed work, and nothing held that the
 * policy lands at an access (record's io_when_held).  Only the counter,
 * no policy call: the hooks then forward with nothing to do after but
 * gate_in_access, so they need no frame of their own beyond the call.
 */
static inline int
quiet_access(void)
{
	if (qrt_my_role != QRT_ROLE_VCPU || !active || gate_in_executor)
		return 0;
	const struct policy *p = policy_current();

	if (p->io != NULL && !(p->io_when_held && __atomic_load_n(&held_q.n, __ATOMIC_RELAXED) == 0))
		return 0;
	__atomic_store_n(&accesses, __atomic_load_n(&accesses, __ATOMIC_RELAXED) + 1,
			 __ATOMIC_RELAXED);
	tracking = 0;
	return 1;
}

static __attribute__((noinline)) uint32_t
read_slow(void *mr, uint64_t addr, uint64_t pval, uint64_t op, uint64_t a4, uint64_t a5)
{
	if (qrt_role() != QRT_ROLE_VCPU)
		return real_read(mr, addr, pval, op, a4, a5);
	if (guest_access())
		before_access();
	gate_in_access++;
	uint32_t r = real_read(mr, addr, pval, op, a4, a5);

	gate_in_access--;
	return r;
}

static uint32_t
hk_read(void *mr, uint64_t addr, uint64_t pval, uint64_t op, uint64_t a4, uint64_t a5)
{
	if (__builtin_expect(quiet_access(), 1)) {
		gate_in_access++;
		uint32_t r = real_read(mr, addr, pval, op, a4, a5);

		gate_in_access--;
		return r;
	}
	return read_slow(mr, addr, pval, op, a4, a5);
}

static __attribute__((noinline)) uint32_t
write_slow(void *mr, uint64_t addr, uint64_t data, uint64_t op, uint64_t a4, uint64_t a5,
	   int counted)
{
	int vcpu = qrt_role() == QRT_ROLE_VCPU;

	if (!counted && vcpu && guest_access())
		before_access();
	/*
	 * An ioeventfd the write signals runs here, not when the main loop gets
	 * to it.  Every such write is wrapped, also before any notifier exists:
	 * the write that starts a device's ioeventfds (virtio's DRIVER_OK) kicks
	 * its queues inside itself.  (Skipping the wrapper while gate_notify
	 * knew no notifier made 2 of 3 runs of 90-faults' SIGKILL test diverge.)
	 */
	if (!vcpu)
		return real_write(mr, addr, data, op, a4, a5);
	gate_in_access++;
	uint32_t r;

	if (qrt.bql_locked == NULL || !qrt.bql_locked()) {
		r = real_write(mr, addr, data, op, a4, a5);
	} else {
		gate_notify_write_begin();
		r = real_write(mr, addr, data, op, a4, a5);
		gate_notify_write_end();
	}
	gate_in_access--;
	return r;
}

static uint32_t
hk_write(void *mr, uint64_t addr, uint64_t data, uint64_t op, uint64_t a4, uint64_t a5)
{
	/* a write always takes the wrapper's path; a quiet one skips the policy */
	return write_slow(mr, addr, data, op, a4, a5, quiet_access());
}

static const struct hook_spec hooks[] = {
	{ QS_MR_DISPATCH_READ, (void *)hk_read, (void **)&real_read },
	{ QS_MR_DISPATCH_WRITE, (void *)hk_write, (void **)&real_write },
};

const struct hook_spec *
io_land_hooks(size_t *n)
{
	*n = sizeof(hooks) / sizeof(hooks[0]);
	return hooks;
}
