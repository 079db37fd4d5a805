/*
 * shim.h - state shared by the parts of libbhrr.so.
 */
#ifndef BHRR_SHIM_H
#define BHRR_SHIM_H

#include "symbols.h"

/* Configuration read once from BHRR_* in the constructor. */
struct shim_config {
	const char *mode;  /* BHRR_MODE: NULL (inert), "check", ... */
	int check_all;     /* BHRR_CHECK_ALL=1: null-hook every export (stress test) */
};

extern struct shim_config shim_cfg;
extern struct qemu_build shim_qemu;

/* Monotonic nanoseconds. */
long long shim_now_ns(void);

/*
 * BHRR_MODE=check: forwarding hooks on every target of symbols.h, one line
 * per target on stderr, call counts at exit.  Never stops QEMU.
 */
void check_start(void);
/* Print the call counts; from the destructor. */
void check_finish(void);

#endif
