/*
 * ctor.c - libbhrr.so's constructor and destructor: read BHRR_* once,
 * decide whether this process is a QEMU system emulator bhrr can work in,
 * and start the mode (check.h, or session.h for record and replay).
 *
 * The library leaks into every child of the process it was preloaded into
 * (timeout, time, a shell, QEMU's helpers), so it is inert unless BHRR_MODE
 * is set AND this is QEMU: no hooks, no files, no output, no destructor work.
 * Nothing includes this file's symbols: it is the top of the module graph.
 */
#include "check.h"
#include "session.h"
#include "settings.h"
#include "shim.h"
#include "vlog.h"

static int shim_active; /* constructor and destructor only */

__attribute__((constructor)) static void
shim_init(void)
{
	char why[512];
	int bad = settings_read(&bhrr_cfg, why, sizeof(why));

	if (bhrr_cfg.mode == BHRR_OFF && bad == 0)
		return;
	if (qemu_build_probe(&shim_qemu) == QS_COUNT && !shim_qemu.is_qemu)
		return; /* not QEMU: stay inert even though BHRR_MODE is set */
	vlog_init(bhrr_cfg.verbose);
	if (bad) {
		if (bhrr_cfg.mode == BHRR_OFF)
			vlog_error("%s; QEMU runs without bhrr", why);
		else
			vlog_error("%s; not %s", why, settings_doing(&bhrr_cfg));
		return;
	}
	vlog("exe %s build-id %s version '%s'", shim_qemu.exe,
	     shim_qemu.build_id[0] ? shim_qemu.build_id : "none", shim_qemu.version);
	if (!shim_qemu.has_exports) {
		vlog_error("%s exports no QEMU functions (a build without --enable-modules?); "
			   "bhrr cannot hook it and leaves it alone", shim_qemu.exe);
		return;
	}
	if (bhrr_cfg.mode == BHRR_CHECK) {
		shim_active = !bhrr_cfg.check_self; /* call counts at exit, when there are hooks */
		check_start(bhrr_cfg.check_all, bhrr_cfg.check_self);
		return;
	}
	shim_active = session_start() == 0;
}

__attribute__((destructor)) static void
shim_fini(void)
{
	if (!shim_active)
		return;
	if (bhrr_cfg.mode == BHRR_CHECK)
		check_finish();
	else
		session_finish();
}
