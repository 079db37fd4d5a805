/*
 * selfcheck.c - the self-check of a QEMU build (see selfcheck.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "discover.h"
#include "gate.h"
#include "gate_notify.h"
#include "hook.h"
#include "qemu_rt.h"
#include "selfcheck.h"
#include "settings.h"
#include "shim.h"
#include "symbols.h"
#include "vlog.h"

static const char *const names[SC_COUNT] = {
	[SC_VERSION] = "version",
	[SC_SYMBOLS] = "symbols",
	[SC_BH_LAYOUT] = "bh-layout",
	[SC_ICOUNT] = "icount",
	[SC_CPU_FIELDS] = "cpu-fields",
	[SC_HOOK_SITES] = "hook-sites",
};

const char *
selfcheck_name(enum sc_id id)
{
	return id < SC_COUNT ? names[id] : "?";
}

static void
pass(struct selfcheck *sc, enum sc_id id, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void
pass(struct selfcheck *sc, enum sc_id id, const char *fmt, ...)
{
	va_list ap;

	sc->r[id].ran = sc->r[id].ok = 1;
	va_start(ap, fmt);
	vsnprintf(sc->r[id].found, sizeof(sc->r[id].found), fmt, ap);
	va_end(ap);
}

static void
fail(struct selfcheck *sc, enum sc_id id, const char *expected, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void
fail(struct selfcheck *sc, enum sc_id id, const char *expected, const char *fmt, ...)
{
	va_list ap;

	sc->r[id].ran = 1;
	sc->r[id].ok = 0;
	va_start(ap, fmt);
	vsnprintf(sc->r[id].found, sizeof(sc->r[id].found), fmt, ap);
	va_end(ap);
	snprintf(sc->r[id].expected, sizeof(sc->r[id].expected), "%s", expected);
	if (sc->failed < 0)
		sc->failed = (int)id;
}

static void
check_version(struct selfcheck *sc)
{
	const struct qemu_build *b = &shim_qemu;
	int pool = discover_submit_takes_pool();

	if (!b->version[0] || b->major <= 0) {
		fail(sc, SC_VERSION, "\"QEMU emulator version MAJOR.MINOR\" in the executable's "
		     "read-only data", "%s", b->version[0] ? b->version : "no version banner");
		return;
	}
	if (pool < 0) {
		fail(sc, SC_VERSION, "thread_pool_submit_aio to call aio_get_thread_pool (8.0 on) or "
		     "qemu_aio_get (before) first", "QEMU %s, whose thread_pool_submit_aio does "
		     "neither: its signature is unknown", b->version);
		return;
	}
	int ext = discover_notifier_takes_external();

	pass(sc, SC_VERSION, "QEMU %s: thread_pool_submit_aio %s its pool argument (read from its "
	     "code%s), aio_set_event_notifier %s its is_external argument (%s)",
	     b->version, pool ? "with" : "without",
	     pool == (b->major < 8) ? "" : "; the version says otherwise",
	     gate_notify_takes_external() ? "with" : "without",
	     ext >= 0 ? "read from its code" : "by the version: its code has neither shape");
}

static void
check_symbols(struct selfcheck *sc)
{
	char missing[200] = "";
	int found = 0, total = 0, len = 0, full = 0;

	for (int i = 0; i < QS_COUNT; i++) {
		if (i == QS_ICOUNT_GET_RAW)
			continue; /* optional here: without it, icount and cpu-fields fail */
		if (qsym_optional(i) || (i == QS_CONFIGURE_RTC && !qsym_bh_named(&shim_qemu)) ||
		    i == QS_QEMU_INIT_MAIN_LOOP)
			continue; /* only some runs need them, and say so (symbols.h) */
		total++;
		if (shim_qemu.sym[i].addr != NULL) {
			found++;
			continue;
		}
		const char *name = qsym_name(&shim_qemu, (enum qsym_id)i);

		if (full)
			continue;
		if (len + strlen(name) + 8 < sizeof(missing)) {
			len += snprintf(missing + len, sizeof(missing) - (size_t)len, "%s%s",
					len ? ", " : "", name);
		} else {
			snprintf(missing + len, sizeof(missing) - (size_t)len, ", ...");
			full = 1;
		}
	}
	if (found == total) {
		pass(sc, SC_SYMBOLS, "all %d functions and variables bhrr uses", total);
		qrt_bind();
	} else {
		char e[200];

		snprintf(e, sizeof(e), "all %d, in the executable's dynamic symbols", total);
		fail(sc, SC_SYMBOLS, e, "%d of %d; missing %s", found, total, missing);
	}
}

static void
check_bh_layout(struct selfcheck *sc)
{
	char why[300];

	if (discover_bh_layout(why, sizeof(why)) < 0) {
		fail(sc, SC_BH_LAYOUT, "a BH made by aio_bh_new_full to hold its ctx, cb, opaque and "
		     "name (aio_bh_new: no name)", "%s", why);
		return;
	}
	if (bhrr_cfg.test.break_check && strcmp(bhrr_cfg.test.break_check, "bh-layout") == 0)
		qrt.off_cb += sizeof(void *); /* tests: a wrong offset the verification must catch */
	if (discover_bh_verify(why, sizeof(why)) < 0) {
		fail(sc, SC_BH_LAYOUT, "every offset the first probe found to hold, in a second BH, "
		     "what that BH was made with", "%s", why);
		return;
	}
	int inline_call = gate_bh_patch_call_site(1, why, sizeof(why));

	if (inline_call < 0) {
		fail(sc, SC_BH_LAYOUT, "aio_bh_poll to run each BH through aio_bh_call, or through "
		     "a call of its cb bhrr can patch", "%s", why);
		return;
	}
	if (!qrt.bh_named) {
		if (discover_bh_names(why, sizeof(why)) < 0) {
			fail(sc, SC_BH_LAYOUT, "where QEMUBH has no name, each callback bhrr treats by "
			     "name found in the code that makes its BH", "%s", why);
			return;
		}
		pass(sc, SC_BH_LAYOUT, "QEMUBH %zu bytes: ctx@%zu cb@%zu opaque@%zu, no name (aio_bh_new), "
		     "found by one probe and verified by a second; %u callbacks named from QEMU's code; "
		     "%s", qrt.bh_size, qrt.off_ctx, qrt.off_cb, qrt.off_opaque, qrt.n_cb_names,
		     inline_call ? "aio_bh_poll calls the cb itself (patched there)"
				 : "BHs run through aio_bh_call");
		return;
	}
	pass(sc, SC_BH_LAYOUT, "QEMUBH %zu bytes: ctx@%zu cb@%zu opaque@%zu name@%zu, found by one "
	     "probe and verified by a second", qrt.bh_size, qrt.off_ctx, qrt.off_cb, qrt.off_opaque,
	     qrt.off_name);
}

static void
check_icount(struct selfcheck *sc)
{
	char why[300];

	if (discover_timers(why, sizeof(why)) < 0)
		fail(sc, SC_ICOUNT, "sentinels written to timers_state to come back through QEMU's "
		     "icount_get_raw() and icount_get()", "%s", why);
	else
		pass(sc, SC_ICOUNT, "timers_state's qemu_icount (+%#lx) and bias (+%#lx), proven by "
		     "sentinels read back through icount_get_raw() and icount_get()",
		     (unsigned long)((const char *)qrt.qemu_icount -
				     (const char *)shim_qemu.sym[QS_TIMERS_STATE].addr),
		     (unsigned long)((const char *)qrt.icount_bias -
				     (const char *)shim_qemu.sym[QS_TIMERS_STATE].addr));
}

static void
check_cpu_fields(struct selfcheck *sc)
{
	if (shim_qemu.sym[QS_ICOUNT_GET_RAW].addr == NULL) {
		fail(sc, SC_CPU_FIELDS, "icount_get_raw, exported", "icount_get_raw is not exported");
		return;
	}
	discover_cpu_fields();
	if (qrt.cpu_fields)
		pass(sc, SC_CPU_FIELDS, "CPUState running@%#llx can_do_io@%#llx (%u bytes), read from "
		     "the code icount_get_raw() runs before its \"Bad icount read\" error",
		     (unsigned long long)qrt.off_running, (unsigned long long)qrt.off_can_do_io,
		     qrt.can_do_io_size);
	else
		fail(sc, SC_CPU_FIELDS, "cmp of cpu->running; je; cmp of cpu->can_do_io; je to "
		     "error_report", "icount_get_raw()'s callee does not test running and can_do_io "
		     "in that shape");
}

static void
check_hook_sites(struct selfcheck *sc, const struct hook_spec *hooks, size_t n)
{
	hook_batch_begin(); /* one read of /proc/self/maps for all of them */
	for (size_t i = 0; i < n; i++) {
		struct hook_info info;
		int err = hook_install_ex(shim_qemu.sym[hooks[i].id].addr, hooks[i].hook, NULL,
					  HOOK_F_DRY_RUN, &info);

		if (err < 0) {
			hook_batch_end();
			fail(sc, SC_HOOK_SITES, "every hook target's first instructions relocatable "
			     "(doc/hooking.md)", "%s: %s (%s)", qsym_name(&shim_qemu, hooks[i].id),
			     hook_errname(err), info.detail);
			return;
		}
	}
	hook_batch_end();
	pass(sc, SC_HOOK_SITES, "%zu of %zu hook targets patchable (a dry run of each)", n, n);
}

int
selfcheck_run(struct selfcheck *sc, const struct hook_spec *hooks, size_t n)
{
	memset(sc, 0, sizeof(*sc));
	sc->failed = -1;
	check_version(sc);
	check_symbols(sc);
	if (sc->r[SC_SYMBOLS].ok) {
		check_bh_layout(sc);
		check_icount(sc);
		check_cpu_fields(sc);
		check_hook_sites(sc, hooks, n);
	}
	int bad = 0;

	for (int i = 0; i < SC_COUNT; i++)
		bad += sc->r[i].ran && !sc->r[i].ok;
	return bad;
}

void
selfcheck_report(const struct selfcheck *sc, const char *prefix)
{
	for (int i = 0; i < SC_COUNT; i++) {
		const struct sc_result *r = &sc->r[i];

		if (!r->ran)
			vlog_say("%sself-check %-10s not run (needs symbols)", prefix, names[i]);
		else if (r->ok)
			vlog_say("%sself-check %-10s ok: %s", prefix, names[i], r->found);
		else
			vlog_say("%sself-check %-10s FAILED: found %s; expected %s", prefix, names[i],
				 r->found, r->expected);
	}
}

void
selfcheck_failure(const struct selfcheck *sc, char *out, size_t len)
{
	if (sc->failed < 0) {
		snprintf(out, len, "none");
		return;
	}
	const struct sc_result *r = &sc->r[sc->failed];

	snprintf(out, len, "%s: found %s; expected %s", names[sc->failed], r->found, r->expected);
}
