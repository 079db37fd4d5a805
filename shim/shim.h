/*
 * shim.h - what every part of libbhrr.so shares: the QEMU build found by
 * the constructor (written once there, read-only afterwards) and a clock.
 */
#ifndef BHRR_SHIM_H
#define BHRR_SHIM_H

#include "symbols.h"

/* One hook: the symbol it patches, the hook, where its real_* goes. */
struct hook_spec {
	enum qsym_id id;
	void *hook;
	void **real;
};

/* The running QEMU: filled by the constructor, read-only afterwards. */
extern struct qemu_build shim_qemu;

/* Monotonic nanoseconds; any thread. */
long long shim_now_ns(void);

#endif
