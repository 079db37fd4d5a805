/*
 * shim.c - libbhrr.so's constructor: read BHRR_* once, decide whether this
 * process is a QEMU system emulator bhrr can work in, and start the mode.
 *
 * The library leaks into every child of the process it was preloaded into
 * (timeout, time, a shell, QEMU's helpers), so it is inert unless BHRR_MODE
 * is set AND this is QEMU: no hooks, no files, no output, no destructor work.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "record.h"
#include "shim.h"
#include "vlog.h"

struct shim_config shim_cfg;
struct qemu_build shim_qemu;
static int shim_active;

long long
shim_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int
env_flag(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && v[0] != 0 && strcmp(v, "0") != 0;
}

__attribute__((constructor)) static void
shim_init(void)
{
	const char *mode = getenv("BHRR_MODE");

	if (mode == NULL || mode[0] == 0)
		return;
	if (qemu_build_probe(&shim_qemu) == QS_COUNT && !shim_qemu.is_qemu)
		return; /* not QEMU: stay inert even though BHRR_MODE is set */
	vlog_init(getenv("BHRR_VERBOSE"));
	shim_cfg.mode = mode;
	shim_cfg.check_all = env_flag("BHRR_CHECK_ALL");
	vlog("exe %s build-id %s version '%s'", shim_qemu.exe,
	     shim_qemu.build_id[0] ? shim_qemu.build_id : "none", shim_qemu.version);

	if (!shim_qemu.has_exports) {
		vlog_error("%s exports no QEMU functions (a build without --enable-modules?); "
			   "bhrr cannot hook it and leaves it alone", shim_qemu.exe);
		return;
	}
	if (strcmp(mode, "check") == 0) {
		shim_active = 1;
		check_start();
		return;
	}
	if (strcmp(mode, "record") == 0 || strcmp(mode, "replay") == 0) {
		shim_active = record_start(mode[2] == 'p') == 0;
		return;
	}
	vlog_error("BHRR_MODE='%s' is not a mode this libbhrr.so knows (known: check, record, replay); "
		   "QEMU runs without bhrr", mode);
}

__attribute__((destructor)) static void
shim_fini(void)
{
	if (!shim_active)
		return;
	if (strcmp(shim_cfg.mode, "check") == 0)
		check_finish();
	else
		record_finish();
}
