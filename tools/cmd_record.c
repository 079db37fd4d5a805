/*
 * cmd_record.c - bhrr record and bhrr replay: run QEMU with libbhrr.so
 * preloaded (BHRR_MODE=record or replay), forward SIGINT/SIGTERM/SIGHUP to
 * it, summarise the log it wrote, and exit with QEMU's status.
 *
 * Before it starts QEMU, record runs the self-check of a build bhrr was not
 * tested on (by GNU build-id, read from the executable file) and refuses it
 * if a check fails, and prints doctor's warnings; replay refuses a build
 * other than the recorded one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "cmd_debug.h"
#include "fingerprint.h"
#include "log.h"
#include "log_action.h"
#include "open_log.h"
#include "run_command.h"
#include "symbols.h"

/* ---- the QEMU executable ---- */

/* Resolve @name like execvp would; 0 or -1. */
static int
resolve_exe(const char *name, char *out, size_t len)
{
	if (strchr(name, '/')) {
		snprintf(out, len, "%s", name);
		return access(out, X_OK);
	}
	const char *path = getenv("PATH");

	if (path == NULL)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		const char *end = strchr(path, ':');
		size_t n = end ? (size_t)(end - path) : strlen(path);

		snprintf(out, len, "%.*s/%s", (int)n, path, name);
		if (access(out, X_OK) == 0)
			return 0;
		path += n + (end ? 1 : 0);
	}
	return -1;
}

/* What "EXE -version" with the shim in check mode (BHRR_CHECK_SELF) said. */
struct probe {
	int ran;            /* 0: not run yet */
	int status, signal; /* run_command()'s status (-1: could not start) and the signal */
	int passed;         /* "self-check passed" */
	char failed[2048];  /* "self-check failed: ..." without that prefix */
	char said[2048];    /* the shim's or the exec's error lines, when there was no verdict */
	char build_id[64];  /* the build-id the shim read in the process, "" if none */
};

static const struct probe *probe_qemu(const char *mode, const char *exe);

/*
 * Resolve the QEMU @name into @exe (@len bytes), or exit naming @cmd; its
 * GNU build-id into @id (@idlen bytes): the file's, or for a file without
 * one (a wrapper script) the one the shim reads inside it; "(none)" if
 * neither.
 */
static void
find_qemu(const char *cmd, const char *name, char *exe, size_t len, char *id, size_t idlen)
{
	if (resolve_exe(name, exe, len) < 0)
		die("%s: cannot find QEMU '%s'", cmd, name);
	if (elf_file_build_id(exe, id, idlen) == 0)
		return;
	/* not an ELF file with a build-id (a wrapper script): ask the shim inside it */
	const struct probe *p = probe_qemu(cmd, exe);

	snprintf(id, idlen, "%s", p->build_id[0] ? p->build_id : "(none)");
}

/* ---- the self-check of an untested build ---- */


/*
 * The shim runs its self-check in its constructor, before QEMU's main, so
 * "EXE -version" with it in check mode runs it in about the time QEMU takes
 * to start, and says the build-id of the QEMU it is in: the one way to
 * learn it when EXE is a wrapper script (make check-compat's chroots).
 * Run once per process; later calls return the first answer.
 */
static const struct probe *
probe_qemu(const char *mode, const char *exe)
{
	static struct probe p;
	struct child_process cp = CHILD_PROCESS_INIT;
	const char *tmp = getenv("TMPDIR");
	char path[4096], line[2048], *preload = shim_ld_preload();
	size_t n = 0;
	int fd;

	if (p.ran)
		return &p;
	p.ran = 1;
	snprintf(path, sizeof(path), "%s/bhrr-selfcheck.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	fd = mkstemp(path);
	if (fd < 0)
		die("%s: cannot create a file for the self-check of %s: %s", mode, exe, strerror(errno));
	close(fd);
	cp.program = exe;
	strvec_pushl(&cp.args, exe, "-version", NULL);
	strvec_pushf(&cp.env, "LD_PRELOAD=%s", preload);
	free(preload);
	strvec_push(&cp.env, "BHRR_MODE=check");
	strvec_push(&cp.env, "BHRR_CHECK_SELF=1");
	strvec_push(&cp.env, "BHRR_VERBOSE");
	cp.in = "/dev/null";
	cp.out = "/dev/null";
	cp.err = path;
	p.status = run_command(&cp);
	p.signal = cp.signal;
	FILE *f = fopen(path, "r");

	while (f && fgets(line, sizeof(line), f)) {
		static const char ok[] = "bhrr: check: self-check passed",
				  bad[] = "bhrr: check: self-check failed: ", head[] = "bhrr: check: QEMU ";
		const char *b;

		line[strcspn(line, "\n")] = 0;
		if (strncmp(line, ok, sizeof(ok) - 1) == 0) {
			p.passed = 1;
		} else if (strncmp(line, bad, sizeof(bad) - 1) == 0) {
			snprintf(p.failed, sizeof(p.failed), "%s", line + sizeof(bad) - 1);
		} else if (strncmp(line, head, sizeof(head) - 1) == 0 && (b = strstr(line, ", build-id ")) != NULL) {
			b += strlen(", build-id ");
			size_t k = strspn(b, "0123456789abcdef");

			if (k > 0 && k < sizeof(p.build_id))
				snprintf(p.build_id, sizeof(p.build_id), "%.*s", (int)k, b);
		} else if ((strstr(line, ": error: ") || strncmp(line, "bhrr: cannot run", 16) == 0) &&
			   n + 1 < sizeof(p.said)) {
			/* what the shim (or the child's exec) said instead of a verdict */
			int k = snprintf(p.said + n, sizeof(p.said) - n, "%s%s", n ? "; " : "", line);

			n = k < 0 ? n : n + (size_t)k < sizeof(p.said) ? n + (size_t)k : sizeof(p.said) - 1;
		}
	}
	if (f)
		fclose(f);
	unlink(path);
	return &p;
}

/*
 * A build bhrr was not tested on (@exe, build-id @id) may be recorded when
 * its self-check passes (selfcheck.h; probe_qemu runs it).  0 when it
 * passed; otherwise the refusal is printed, naming the check, and the exit
 * status is returned.
 */
static int
self_check(const char *mode, const char *exe, const char *id)
{
	const struct probe *p = probe_qemu(mode, exe);

	if (p->passed && !p->failed[0] && p->status == 0 && p->signal == 0) {
		fprintf(stderr, "bhrr: %s: %s (build-id %s) is not a QEMU build bhrr was tested on; "
				"its self-check passed ('bhrr check -- %s -version' prints it)\n",
			mode, exe, id, exe);
		return 0;
	}
	if (p->failed[0]) {
		fprintf(stderr, "bhrr: %s: %s (build-id %s) is not a QEMU build bhrr was tested on, "
				"and its self-check failed: %s; refusing (--force tries anyway; "
				"'bhrr check -- %s -version' prints the whole self-check)\n",
			mode, exe, id, p->failed, exe);
	} else {
		char how[64];

		if (p->status < 0)
			snprintf(how, sizeof(how), "could not be started");
		else if (p->signal)
			snprintf(how, sizeof(how), "was killed by signal %d", p->signal);
		else
			snprintf(how, sizeof(how), "exited %d", p->status);
		fprintf(stderr, "bhrr: %s: %s (build-id %s) is not a QEMU build bhrr was tested on, "
				"and its self-check ('%s -version' with the shim in check mode) %s "
				"without a verdict%s%s%s; refusing (--force tries anyway)\n", mode, exe, id,
			exe, how, p->said[0] ? ": " : "", p->said[0] ? p->said : "",
			p->said[0] ? "" : " (not a QEMU system emulator?)");
	}
	fprintf(stderr, "bhrr: %s: tested builds:\n", mode);
	for (int k = 0; qemu_known_builds[k]; k += 2)
		fprintf(stderr, "  %s  %s\n", qemu_known_builds[k], qemu_known_builds[k + 1]);
	return EXIT_USAGE;
}

/* ---- record ---- */

static pid_t child;

static void
forward(int sig)
{
	if (child > 0)
		kill(child, sig);
}

/*
 * One line on stderr about the log @out that @mode wrote; with @diverged,
 * count its diverge events there.
 */
static void
summarise_log(const char *mode, const char *out, unsigned long long *diverged)
{
	char what[64];
	struct log_event ev;
	unsigned long long events = 0, completions = 0;
	int complete = 0;

	snprintf(what, sizeof(what), "%s: no log", mode);
	struct log_reader *r = open_log(out, what, NULL);

	if (r == NULL)
		return;
	while (log_reader_next(r, &ev) == 1) {
		events++;
		completions += ev.kind == LOG_EV_IO_COMPLETE;
		if (diverged && ev.kind == LOG_EV_DIVERGE)
			++*diverged;
		complete |= ev.kind == LOG_EV_END && ev.complete;
	}
	fprintf(stderr, "bhrr: %s: %llu events (%llu I/O completions) in %s%s\n", mode, events,
		completions, out, complete ? "" : " (incomplete)");
	log_reader_close(r);
}

/*
 * Refuse, before QEMU starts, a log path the shim would refuse after: a
 * symbolic link (never followed), or an existing file unless @overwrite.
 */
static void
check_log_path(const char *mode, const char *out, int overwrite)
{
	struct stat st;

	if (lstat(out, &st) < 0)
		return;
	if (S_ISLNK(st.st_mode))
		die("%s: '%s' is a symbolic link; refusing to write a log through it", mode, out);
	if (!overwrite)
		die("%s: log '%s' exists; refusing to overwrite it (--force overwrites)", mode, out);
}

/*
 * Run @qargv (its executable already resolved to @exe) with the shim in
 * @mode writing @out; forward signals; summarise the log; QEMU's status.
 */
void
shim_env(struct strvec *env, const char *mode, const char *out, const char *replay, int force)
{
	char *preload = shim_ld_preload();

	strvec_pushf(env, "LD_PRELOAD=%s", preload);
	free(preload);
	strvec_pushf(env, "BHRR_MODE=%s", mode);
	strvec_pushf(env, "BHRR_LOG=%s", out);
	if (replay)
		strvec_pushf(env, "BHRR_REPLAY=%s", replay);
	if (force)
		strvec_push(env, "BHRR_FORCE=1");
	/* a replay's output is derived and made again each replay; a record's only with --force */
	if (force || replay)
		strvec_push(env, "BHRR_LOG_OVERWRITE=1");
}

/*
 * The log path @out as QEMU will be given it: absolute (in @abs, 4096
 * bytes), and checked by check_log_path().
 */
static const char *
out_path(const char *mode, const char *out, char *abs, int overwrite)
{
	if (out[0] != '/' && getcwd(abs, 4096 - strlen(out) - 2)) {
		strcat(abs, "/");
		strcat(abs, out);
		out = abs;
	}
	check_log_path(mode, out, overwrite);
	return out;
}

static int
run_with_shim(const char *mode, const char *exe, char **qargv, const char *out,
	      const char *replay, int force, unsigned long long *diverged)
{
	struct child_process cp = CHILD_PROCESS_INIT;
	char abs[4096];

	out = out_path(mode, out, abs, force || replay);
	cp.program = exe;
	strvec_pushv(&cp.args, qargv);
	shim_env(&cp.env, mode, out, replay, force);
	if (start_command(&cp) < 0)
		die("%s: cannot fork: %s", mode, strerror(errno));
	child = cp.pid;

	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = forward;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	finish_command(&cp);
	summarise_log(mode, out, diverged);
	if (cp.signal) {
		signal(cp.signal, SIG_DFL);
		raise(cp.signal);
	}
	return cp.status;
}

/* ---- the options exact mode needs ---- */


/* Index of the last option @opt with a value in @v, or -1. */
static int
last_opt(const struct strvec *v, const char *opt)
{
	int at = -1;

	for (size_t k = 1; k + 1 < v->n; k++)
		if (qemu_is_opt(v->v[k], opt))
			at = (int)k;
	return at;
}

/* Replace the string at @k of @v by a copy of @s. */
static void
set_arg(struct strvec *v, size_t k, const char *s)
{
	char *c = strdup(s);

	if (c == NULL)
		die("out of memory");
	free(v->v[k]);
	v->v[k] = c;
}

/* Remove the arguments [@k, @k + @n) of @v. */
static void
drop_args(struct strvec *v, size_t k, size_t n)
{
	for (size_t j = k; j < k + n; j++)
		free(v->v[j]);
	memmove(&v->v[k], &v->v[k + n], (v->n - k - n + 1) * sizeof(v->v[0]));
	v->n -= n;
}

/*
 * Where an option value @v sets a key iothread= ("...,iothread=X",
 * "DRIVER.iothread=X", "device.ID.iothread=X", or at @v's start), or NULL.
 */
static const char *
iothread_key(const char *v)
{
	const char *io = strstr(v, "iothread=");

	while (io != NULL && io != v && io[-1] != ',' && io[-1] != '.')
		io = strstr(io + 1, "iothread=");
	return io;
}

/*
 * The iothread= of each device of @v dropped, so that the device runs in
 * the main loop, where bhrr's gate and executor see its requests: the guest
 * sees the same device either way (doc/record.md, "Iothreads").  -device
 * DRIVER,...,iothread=X loses the key; -global DRIVER.iothread=X and -set
 * device.ID.iothread=X go.  JSON -device and iothread-vq-mapping stay, for
 * iothread_user to refuse.  The number of changes, each said on stderr.
 */
static int
drop_iothreads(struct strvec *v, const char *cmd)
{
	int changes = 0;
	char buf[4096];

	for (size_t j = 1; j + 1 < v->n; j++) {
		const char *a = v->v[j + 1], *io = iothread_key(a);

		if (io == NULL || io == a)
			continue;
		if (qemu_is_opt(v->v[j], "-device") && io[-1] == ',') {
			size_t n = strcspn(io, ",");

			snprintf(buf, sizeof(buf), "%.*s%s", (int)(io - a - 1), a, io + n);
			fprintf(stderr, "bhrr: %s: replaced -device %s by -device %s (a device in an "
					"iothread completes its requests outside bhrr's gate; in the main "
					"loop the guest sees the same device)\n", cmd, a, buf);
			set_arg(v, j + 1, buf);
			changes++;
		} else if ((qemu_is_opt(v->v[j], "-global") && io[-1] == '.') ||
			   (qemu_is_opt(v->v[j], "-set") && strncmp(a, "device.", 7) == 0 && io[-1] == '.')) {
			fprintf(stderr, "bhrr: %s: removed %s %s (a device in an iothread completes its "
					"requests outside bhrr's gate; in the main loop the guest sees the "
					"same device)\n", cmd, v->v[j], a);
			drop_args(v, j--, 2);
			changes++;
		}
	}
	return changes;
}

/*
 * What exact mode needs, added to the QEMU command line @v where it lacks
 * it, each change said in one line on stderr: -icount shift=0,sleep=off
 * (or sleep=off added, or a fixed shift for auto), -seed 1, an RTC on the
 * virtual clock starting at the recording's own start (UTC) - a fixed base
 * the guest still sees as today - and TCG in place of a hardware
 * accelerator.  The shim logs the argv QEMU got, so a replay runs this one.
 * Returns how many changes it made.
 */
static int
make_deterministic(struct strvec *v)
{
	int changes = 0, k;
	char buf[512];

	if ((k = last_opt(v, "-icount")) < 0) {
		strvec_pushl(v, "-icount", "shift=0,sleep=off", NULL);
		fprintf(stderr, "bhrr: record: added -icount shift=0,sleep=off (exact mode: events "
				"are tagged with the instruction count)\n");
		changes++;
	} else {
		const char *ic = v->v[k + 1];

		if (strstr(ic, "auto") || (!strstr(ic, "shift=") && (ic[0] < '0' || ic[0] > '9'))) {
			fprintf(stderr, "bhrr: record: replaced -icount %s by -icount shift=0,sleep=off "
					"(an adaptive shift follows host speed)\n", ic);
			set_arg(v, (size_t)k + 1, "shift=0,sleep=off");
			changes++;
		} else if (!strstr(ic, "sleep=off")) {
			snprintf(buf, sizeof(buf), "%s,sleep=off", ic);
			fprintf(stderr, "bhrr: record: added sleep=off to -icount %s (with sleep=on the "
					"clock warps by real time)\n", ic);
			set_arg(v, (size_t)k + 1, buf);
			changes++;
		}
	}
	if (last_opt(v, "-seed") < 0) {
		strvec_pushl(v, "-seed", "1", NULL);
		fprintf(stderr, "bhrr: record: added -seed 1 (RDRAND and QEMU's own random numbers)\n");
		changes++;
	}
	k = last_opt(v, "-rtc");
	const char *rtc = k >= 0 ? v->v[k + 1] : NULL;

	if (rtc == NULL || !strstr(rtc, "clock=vm") || !strstr(rtc, "base=") ||
	    strstr(rtc, "base=utc") || strstr(rtc, "base=localtime")) {
		char base[32], keep[256] = "";
		time_t now = time(NULL);
		struct tm tm;
		const char *b = rtc ? strstr(rtc, "base=") : NULL;

		/* a date the user gave stays; utc and localtime become that time, now */
		if (b && b[5] >= '0' && b[5] <= '9')
			snprintf(base, sizeof(base), "%.*s", (int)strcspn(b + 5, ","), b + 5);
		else if (b && strncmp(b + 5, "localtime", 9) == 0)
			strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", localtime_r(&now, &tm));
		else
			strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", gmtime_r(&now, &tm));
		/* other keys (driftfix=) stay */
		for (const char *p = rtc; p && *p;) {
			size_t n = strcspn(p, ",");

			if (strncmp(p, "clock=", 6) != 0 && strncmp(p, "base=", 5) != 0 && n &&
			    strlen(keep) + n + 2 < sizeof(keep)) {
				strcat(keep, ",");
				strncat(keep, p, n);
			}
			p += n + (p[n] == ',');
		}
		snprintf(buf, sizeof(buf), "clock=vm,base=%s%s", base, keep);
		if (rtc == NULL) {
			strvec_pushl(v, "-rtc", buf, NULL);
			fprintf(stderr, "bhrr: record: added -rtc %s (the guest's clock starts at the "
					"recording's start, in the replay too)\n", buf);
		} else {
			fprintf(stderr, "bhrr: record: replaced -rtc %s by -rtc %s (the guest's clock "
					"starts at the recording's start, in the replay too)\n", rtc, buf);
			set_arg(v, (size_t)k + 1, buf);
		}
		changes++;
	}
	changes += drop_iothreads(v, "record");
	int tcg = 0, changes_accel = 0;

	for (size_t j = 1; j < v->n; j++) {
		if (qemu_is_opt(v->v[j], "-enable-kvm")) {
			fprintf(stderr, "bhrr: record: removed -enable-kvm (no instruction count under KVM)\n");
			drop_args(v, j--, 1);
			tcg = 1;
		} else if (qemu_is_opt(v->v[j], "-accel") && j + 1 < v->n && qemu_hw_accel(v->v[j + 1], 1)) {
			fprintf(stderr, "bhrr: record: removed -accel %s (no instruction count under a "
					"hardware accelerator)\n", v->v[j + 1]);
			drop_args(v, j--, 2);
			tcg = 1;
		} else if ((qemu_is_opt(v->v[j], "-machine") || qemu_is_opt(v->v[j], "-M")) && j + 1 < v->n) {
			char *a = strstr(v->v[j + 1], "accel=");

			if (a == NULL || !qemu_hw_accel(a + 6, 1))
				continue;
			size_t n = strcspn(a + 6, ",");

			snprintf(buf, sizeof(buf), "%.*saccel=tcg%s", (int)(a - v->v[j + 1]), v->v[j + 1],
				 a + 6 + n);
			fprintf(stderr, "bhrr: record: replaced -machine %s by -machine %s (no instruction "
					"count under a hardware accelerator)\n", v->v[j + 1], buf);
			set_arg(v, j + 1, buf);
			changes++;
			changes_accel = 1;
		}
	}
	if (tcg) {
		int machine_accel = 0;

		changes++;
		for (size_t j = 1; j + 1 < v->n; j++)
			if ((qemu_is_opt(v->v[j], "-machine") || qemu_is_opt(v->v[j], "-M")) &&
			    strstr(v->v[j + 1], "accel="))
				machine_accel = 1;
		/* QEMU refuses -accel beside -machine accel= (rewritten to tcg above) */
		if (last_opt(v, "-accel") < 0 && !machine_accel) {
			strvec_pushl(v, "-accel", "tcg", NULL);
			fprintf(stderr, "bhrr: record: added -accel tcg\n");
		}
	}
	if (tcg || changes_accel) {
		/* -cpu host needs KVM or HVF: TCG's closest is max */
		for (size_t j = 1; j + 1 < v->n; j++) {
			const char *c = v->v[j + 1];

			if (!qemu_is_opt(v->v[j], "-cpu") || strncmp(c, "host", 4) != 0 ||
			    (c[4] != 0 && c[4] != ','))
				continue;
			snprintf(buf, sizeof(buf), "max%s", c + 4);
			fprintf(stderr, "bhrr: record: replaced -cpu %s by -cpu %s (the host CPU model "
					"needs a hardware accelerator)\n", c, buf);
			set_arg(v, j + 1, buf);
			changes++;
		}
	}
	return changes;
}

/*
 * A device of @qargv that runs in an iothread, into @what ("virtio-blk-pci
 * (id d0) in iothread io0"); 1 if there is one.  Its requests complete in
 * the iothread's AioContext, which the gate does not see (doc/record.md,
 * "Iothreads"): -device DRIVER,...,iothread=X, -global DRIVER.iothread=X,
 * -set device.ID.iothread=X.
 */
static int
iothread_user(char **qargv, char *what, size_t len)
{
	for (int i = 0; qargv[i] && qargv[i + 1]; i++) {
		const char *v = qargv[i + 1], *io = iothread_key(v);

		if (io == NULL && strstr(v, "iothread") != NULL &&
		    (qemu_is_opt(qargv[i], "-device") || qemu_is_opt(qargv[i], "-global"))) {
			/* JSON (-device '{"driver":...,"iothread":...}'), iothread-vq-mapping, driver=,property= */
			snprintf(what, len, "%s %.60s (an iothread)", qargv[i], v);
			return 1;
		}
		if (io == NULL)
			continue;
		int iol = (int)strcspn(io + 9, ",");

		if (qemu_is_opt(qargv[i], "-device")) {
			const char *id = strstr(v, "id=");
			int dl = (int)strcspn(v, ",");

			while (id != NULL && id != v && id[-1] != ',')
				id = strstr(id + 1, "id=");
			if (id != NULL)
				snprintf(what, len, "device %.*s (id %.*s) in iothread %.*s", dl, v,
					 (int)strcspn(id + 3, ","), id + 3, iol, io + 9);
			else
				snprintf(what, len, "device %.*s in iothread %.*s", dl, v, iol, io + 9);
			return 1;
		}
		if (qemu_is_opt(qargv[i], "-global")) {
			snprintf(what, len, "every %.*s (-global) in iothread %.*s", (int)(io - v - 1), v,
				 iol, io + 9);
			return 1;
		}
		if (qemu_is_opt(qargv[i], "-set") && strncmp(v, "device.", 7) == 0) {
			snprintf(what, len, "device %.*s (-set) in iothread %.*s", (int)(io - v - 8),
				 v + 7, iol, io + 9);
			return 1;
		}
	}
	return 0;
}

int
cmd_record(int argc, char **argv)
{
	const char *out = "bhrr.bhlog";
	int i = 1, force = 0, as_is = 0;
	char exe[4096], id[64];
	struct finding f[DOCTOR_MAX];
	struct strvec qv = STRVEC_INIT;

	for (; i < argc && argv[i][0] == '-' && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
			out = argv[++i];
		else if (strcmp(argv[i], "--force") == 0)
			force = 1;
		else if (strcmp(argv[i], "--as-is") == 0)
			as_is = 1;
		else
			usage_error("record: unknown option '%s' (usage: bhrr record [-o LOG] [--force] [--as-is] [--] QEMU ARGS...)",
				    argv[i]);
	}
	if (i < argc && strcmp(argv[i], "--") == 0)
		i++;
	if (i >= argc)
		usage_error("record: no QEMU command line given (usage: bhrr record [-o LOG] [--force] [--as-is] [--] QEMU ARGS...)");
	strvec_pushv(&qv, argv + i);
	if (!as_is)
		make_deterministic(&qv);
	char **qargv = qv.v;
	int qargc = (int)qv.n;

	find_qemu("record", qargv[0], exe, sizeof(exe), id, sizeof(id));
	if (qemu_known_build(id) == NULL && !force) {
		int st = self_check("record", exe, id);

		if (st != 0)
			return st;
	}
	char io[256];

	if (!force && iothread_user(qargv, io, sizeof(io))) {
		fprintf(stderr, "bhrr: record: %s: its requests complete in that iothread, outside "
				"bhrr's gate, so no replay could follow them (a replay would run free "
				"from the first one, and report no divergence); refusing (without "
				"--as-is bhrr record moves a -device, -global or -set one to the main "
				"loop; or remove iothread= from it, or --force to record anyway; "
				"doc/record.md, \"Iothreads\")\n", io);
		return 2;
	}
	char smp[512];

	/* the shim would refuse it with QEMU started: said before */
	if (doctor_smp_refused(qargc, qargv, smp, sizeof(smp))) {
		fprintf(stderr, "bhrr: record: %s; refusing (use -smp 1, QEMU 10.0, or record the "
				"order of events only: -icount without sleep=off)\n", smp);
		return 2;
	}
	int n = doctor_findings(qargc, qargv, f, DOCTOR_MAX);

	for (int k = 0; k < n && k < DOCTOR_MAX; k++) {
		/*
		 * an -object iothread no device uses any more (drop_iothreads)
		 * changes nothing - unless a -readconfig file may hold a device
		 * in it, which bhrr record does not read or move
		 */
		if (strncmp(f[k].what, "an iothread", 11) == 0 && !iothread_user(qargv, io, sizeof(io)) &&
		    !qemu_has_opt(qargc, qargv, "-readconfig"))
			continue;
		fprintf(stderr, "bhrr: record: warning: %s (fix: %s)\n", f[k].what, f[k].fix);
	}
	return run_with_shim("record", exe, qargv, out, NULL, force, NULL);
}

/* The number of arguments in the NULL-terminated @v. */
static int
argv_len(char *const *v)
{
	int n = 0;

	while (v[n])
		n++;
	return n;
}

/*
 * The QEMU command line to replay @log (header @h) with: @given (@n
 * arguments after "--"), with a warning if it differs from the recorded
 * one; or, @given NULL, a copy of the recorded one.
 */
static char **
replay_qargv(const char *log, const struct log_header *h, char **given, int n)
{
	char **qargv;

	if (given) {
		if (given[0] == NULL)
			usage_error("replay: '--' without a QEMU command line");
		int same, kept = 0;
		struct strvec sv = STRVEC_INIT;

		/* a record that moved devices out of their iothreads: the same here */
		for (int k = 0; k < h->argc; k++)
			kept |= strstr(h->argv[k], "iothread=") != NULL;
		strvec_pushv(&sv, given);
		if (!kept && drop_iothreads(&sv, "replay") > 0) {
			given = sv.v; /* the process's to the end */
			n = (int)sv.n;
		} else {
			strvec_clear(&sv);
		}
		same = h->argc == n;
		for (int k = 0; same && k < h->argc; k++)
			same = strcmp(h->argv[k], given[k]) == 0;
		if (!same)
			fprintf(stderr, "bhrr: replay: warning: the QEMU command line differs from the "
					"recorded one\n");
		return given;
	}
	if (h->argc == 0)
		die("replay: %s holds no QEMU command line", log);
	qargv = calloc((size_t)h->argc + 1, sizeof(*qargv));
	if (qargv == NULL)
		die("out of memory");
	for (int k = 0; k < h->argc; k++)
		if ((qargv[k] = strdup(h->argv[k])) == NULL)
			die("out of memory");
	return qargv;
}

/*
 * The order check of an exact-mode log (log_order_check): 0, or -1 after
 * saying which event is out of place.  Also the recorded RTC start
 * (host_clock, gate_clock.h) into @rtc ("" if none).  And the files the
 * recording's guest read from 9p shares (file_read, gate_fs.h) must read
 * the same in @qargv's shares: else -2 after naming the first that does
 * not (with @force, a warning).
 */
static int
check_action_icounts(struct log_reader *r, const char *log, char *rtc, size_t rtclen,
		     char **qargv, int force)
{
	struct log_event ev;
	struct log_action a;
	struct log_order_check c = { 0 };
	char why[2048];
	int exact = log_header_exact(log_reader_header(r)), files_ok = 1, nsh = -1;
	struct fp_share sh[16];

	rtc[0] = 0;
	while (log_reader_next(r, &ev) == 1) {
		if (ev.kind == LOG_EV_HOST_CLOCK && ev.id == 0)
			snprintf(rtc, rtclen, "%.*s", (int)ev.text_len, ev.text);
		if (ev.kind == LOG_EV_FILE_READ && files_ok) {
			if (nsh < 0)
				nsh = fp_shares(argv_len(qargv), qargv, sh, 16);
			if (fp_check_read(ev.text, ev.text_len, sh, nsh, why, sizeof(why)) < 0) {
				fprintf(stderr, "bhrr: replay: %s: %s; %s\n", log, why,
					force ? "replaying anyway (--force)"
					      : "refusing (the first file that differs; --force tries anyway)");
				files_ok = 0;
				if (!force)
					return -2;
			}
		}
		if (exact && log_order_check(&c, &ev, log_action_of(r, &ev, 1, &a) ? &a : NULL, why,
					     sizeof(why)) < 0) {
			fprintf(stderr, "bhrr: replay: %s: %s; refusing (an altered log?)\n", log, why);
			return -1;
		}
	}
	return 0;
}

/*
 * The recording's RTC started at @start: if @qargv's RTC runs on the
 * virtual clock (clock=vm) from a base that follows the host (utc,
 * localtime, or none given), a copy of it whose last -rtc has base=@start,
 * said on stderr; else @qargv.  Other -rtc keys stay.  An RTC on a host
 * clock (clock=host, QEMU's default, or clock=rt) is left as recorded: the
 * shim answers its every read of the host's clock from the log, those that
 * set its base included (gate_clock.h), and a rewritten base would take
 * the host's time one read later than the recording did.
 */
static char **
replay_rtc_base(char **qargv, const char *start)
{
	int n = argv_len(qargv), k = -1;

	for (int i = 1; i + 1 < n; i++)
		if (qemu_is_opt(qargv[i], "-rtc"))
			k = i + 1;
	const char *old = k >= 0 ? qargv[k] : "", *b = strstr(old, "base=");

	if (start[0] == 0 || (b && b[5] >= '0' && b[5] <= '9') || !strstr(old, "clock=vm"))
		return qargv;
	char **v = calloc((size_t)n + 3, sizeof(*v)), val[512];
	size_t len = 0;

	if (v == NULL)
		die("out of memory");
	len += (size_t)snprintf(val, sizeof(val), "base=%s", start);
	for (const char *p = old; *p && len < sizeof(val);) {
		size_t m = strcspn(p, ",");

		if (m && strncmp(p, "base=", 5) != 0)
			len += (size_t)snprintf(val + len, sizeof(val) - len, ",%.*s", (int)m, p);
		p += m + (p[m] == ',');
	}
	memcpy(v, qargv, (size_t)n * sizeof(*v));
	if (k >= 0) {
		v[k] = strdup(val);
	} else {
		v[n] = "-rtc";
		v[n + 1] = strdup(val);
	}
	if (v[k >= 0 ? k : n + 1] == NULL)
		die("out of memory");
	fprintf(stderr, "bhrr: replay: -rtc %s follows the host's clock: replaying with -rtc %s, "
			"the recording's RTC start\n", k >= 0 ? old : "(QEMU's default, base=utc)", val);
	return v;
}

/*
 * The files @qargv gives the guest must be those the recording read (its
 * header's fingerprints, fingerprint.h): 0, or -1 after saying which drive
 * and file differ.  With @force, a difference is a warning.
 */
static int
check_images(const struct log_header *h, char **qargv, const char *log, int force)
{
	struct fp_image rec[LOG_IMAGES_MAX], now[FP_MAX];
	int nrec = 0;
	char why[2048];

	for (int k = 0; k < h->nimages; k++)
		if (fp_parse(h->image[k], &rec[nrec]) == 0)
			nrec++;
	if (nrec == 0)
		return 0; /* recorded before fingerprints, or nothing to read */
	int nnow = fp_scan(argv_len(qargv), qargv, now, NULL);

	if (fp_compare(rec, nrec, now, nnow, why, sizeof(why)) == 0)
		return 0;
	fprintf(stderr, "bhrr: replay: %s: %s; %s\n", log, why,
		force ? "replaying anyway (--force)" : "refusing (--force tries anyway)");
	return force ? 0 : -1;
}

/*
 * bhrr replay LOG [-o OUT] [--force] [--on-diverge=stop|continue] [-- QEMU ARGS...]:
 * exact or ordering replay (doc/record.md).  Without QEMU arguments, the
 * recorded argv.  QEMU's status, or EXIT_DIVERGED if the run diverged.
 */
int
cmd_replay(int argc, char **argv)
{
	const char *out = NULL, *log = NULL, *gdb = NULL, *stop_at = NULL, *arch = NULL;
	int i = 1, force = 0;
	char exe[4096], id[64], outbuf[4096];

	for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
			out = argv[++i];
		else if (strcmp(argv[i], "--force") == 0)
			force = 1;
		else if (strcmp(argv[i], "--gdb") == 0)
			gdb = "1234";
		else if (strncmp(argv[i], "--gdb=", 6) == 0)
			gdb = argv[i] + 6;
		else if (strncmp(argv[i], "--stop-at=", 10) == 0)
			stop_at = argv[i] + 10;
		else if (strcmp(argv[i], "--gdb-arch=auto") == 0 || strcmp(argv[i], "--gdb-arch=i386") == 0 ||
			 strcmp(argv[i], "--gdb-arch=qemu") == 0)
			arch = argv[i] + 11;
		else if (strncmp(argv[i], "--gdb-arch", 10) == 0)
			usage_error("replay: %s: expected --gdb-arch=auto, i386 or qemu", argv[i]);
		else if (strcmp(argv[i], "--on-diverge=stop") == 0 ||
			 strcmp(argv[i], "--on-diverge=continue") == 0)
			setenv("BHRR_ON_DIVERGE", argv[i] + 13, 1);
		else if (strncmp(argv[i], "--on-diverge", 12) == 0)
			usage_error("replay: %s: expected --on-diverge=stop or --on-diverge=continue",
				    argv[i]);
		else if (argv[i][0] != '-' && log == NULL)
			log = argv[i];
		else
			usage_error("replay: unexpected '%s' (usage: bhrr replay LOG [-o OUT] [--force] [--on-diverge=stop|continue] [--gdb[=PORT|unix:PATH]] [--stop-at=ICOUNT|#EVENT] [--gdb-arch=auto|i386|qemu] [-- QEMU ARGS...])",
				    argv[i]);
	}
	if (log == NULL)
		usage_error("replay: no log given (usage: bhrr replay LOG [-o OUT] [--force] [--on-diverge=stop|continue] [--gdb[=PORT|unix:PATH]] [--stop-at=ICOUNT|#EVENT] [--gdb-arch=auto|i386|qemu] [-- QEMU ARGS...])");
	struct log_reader *r = open_log_or_exit(log, "replay", 1);
	const struct log_header *h = log_reader_header(r);

	if ((stop_at != NULL || arch != NULL) && gdb == NULL)
		gdb = "1234"; /* a stop, a description: for a debugger */
	if (gdb != NULL && !log_header_exact(h)) {
		fprintf(stderr, "bhrr: replay: --gdb needs an exact-mode log; %s is an ordering-mode "
				"log (recorded without an exact -icount): it has no icount to stop at or "
				"to go back to\n", log);
		log_reader_close(r);
		return EXIT_USAGE;
	}
	char **qargv = replay_qargv(log, h, i < argc ? argv + i + 1 : NULL, argc - i - 1);

	find_qemu("replay", qargv[0], exe, sizeof(exe), id, sizeof(id));
	if (strcmp(id, h->build_id) != 0 && !force) {
		fprintf(stderr, "bhrr: replay: %s was recorded with QEMU build %s (%s); %s is build %s; "
				"refusing (--force tries anyway)\n", log, h->build_id, h->qemu_version, exe, id);
		log_reader_close(r);
		return EXIT_USAGE;
	}
	if (check_images(h, qargv, log, force) < 0) {
		log_reader_close(r);
		return EXIT_USAGE;
	}
	char rtc[64];

	int checked = check_action_icounts(r, log, rtc, sizeof(rtc), qargv, force);

	if (checked < 0) {
		log_reader_close(r);
		return checked == -2 ? EXIT_USAGE : 1;
	}
	qargv = replay_rtc_base(qargv, rtc);
	int ordering = !log_header_exact(h);
	/*
	 * What the doctor names on the command line replayed (what bhrr record
	 * could not fix, or all of it with --as-is or the shim preloaded by
	 * hand) may make the replay differ: say so before the run, once each.
	 */
	struct finding f[DOCTOR_MAX];
	int nf = doctor_findings(argv_len(qargv), qargv, f, DOCTOR_MAX);

	for (int k = 0; k < nf && k < DOCTOR_MAX; k++)
		fprintf(stderr, "bhrr: replay: warning: %s; this replay may differ there (bhrr doctor; "
				"fix, when recording: %s)\n", f[k].what, f[k].fix);

	log_reader_close(r);
	if (out == NULL) {
		snprintf(outbuf, sizeof(outbuf), "%s.replay.bhlog", log);
		out = outbuf;
	}
	if (ordering)
		fprintf(stderr, "bhrr: replay: %s is an ordering-mode log (recorded without an exact "
				"-icount): this replay forces the order in which BHs and completions reach "
				"the guest, not when they do\n", log);
	unsigned long long diverged = 0;
	int st;

	if (gdb != NULL) {
		char abs[4096];

		out = out_path("replay", out, abs, 1);
		st = debug_session(exe, qargv, log, out, force, gdb, stop_at, arch ? arch : "auto");
		summarise_log("replay", out, &diverged);
	} else {
		st = run_with_shim("replay", exe, qargv, out, log, force, &diverged);
	}

	if (ordering && !diverged)
		fprintf(stderr, "bhrr: replay: the recorded order was kept; the guest's output may "
				"still differ from the recording's (ordering mode does not replay timing)\n");

	if (diverged) {
		fprintf(stderr, "bhrr: replay: the run diverged from %s (QEMU exited with %d); "
				"exit status %d\n", log, st, EXIT_DIVERGED);
		return EXIT_DIVERGED;
	}
	return st;
}

/* bhrr debug LOG [OPTIONS]: bhrr replay LOG --gdb [OPTIONS]. */
int
cmd_debug(int argc, char **argv)
{
	char **v = calloc((size_t)argc + 2, sizeof(*v));
	int n = 0, has = 0;

	if (v == NULL)
		die("out of memory");
	v[n++] = "replay";
	for (int i = 1; i < argc; i++) {
		has |= strcmp(argv[i], "--gdb") == 0 || strncmp(argv[i], "--gdb=", 6) == 0;
		v[n++] = argv[i];
	}
	if (!has)
		v[n++] = "--gdb";
	return cmd_replay(n, v);
}
