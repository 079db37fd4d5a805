/*
 * bhrr.c - the bhrr command: a git-style table of subcommands.
 *
 * Exit status: the wrapped QEMU's for commands that run it; 2 for a usage
 * error; 3 for a subcommand this version does not provide yet.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"

#include "cmd.h"

static void __attribute__((noreturn))
vdie(int status, const char *fmt, va_list ap)
{
	fputs("bhrr: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	exit(status);
}

void
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vdie(1, fmt, ap);
}

void
usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vdie(EXIT_USAGE, fmt, ap);
}

double
now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int
copy_file(const char *from, const char *to)
{
	FILE *a = fopen(from, "rb"), *b;
	char buf[65536];
	size_t n;
	int ok = 1;

	if (a == NULL)
		return -1;
	b = fopen(to, "wb");
	if (b == NULL) {
		fclose(a);
		return -1;
	}
	while ((n = fread(buf, 1, sizeof(buf), a)) > 0)
		ok &= fwrite(buf, 1, n, b) == n;
	ok &= !ferror(a);
	fclose(a);
	ok &= fclose(b) == 0;
	return ok ? 0 : -1;
}

char *
xstrdup(const char *s)
{
	char *d = strdup(s);

	if (d == NULL)
		die("out of memory");
	return d;
}

/* Exit with @status after "bhrr: MESSAGE". */
__attribute__((noreturn, format(printf, 2, 3))) static void
die_status(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vdie(status, fmt, ap);
}

/*
 * The shim to preload: $BHRR_SHIM, else the one beside this binary's build
 * tree when run from it, else the installed one.  $BHRR_SHIM may be a list
 * in LD_PRELOAD's syntax, preloaded in its order, for a shim that needs a
 * library before it (libasan.so, then libbhrr-asan.so); each must exist.
 */
static const char *
find_shim(void)
{
	static char path[PATH_MAX];
	char self[PATH_MAX];
	const char *env = getenv("BHRR_SHIM");
	ssize_t n;

	if (env != NULL && env[0] != 0) {
		for (const char *p = env; *p != 0;) {
			size_t len = strcspn(p, ": ");

			if (len >= sizeof(path))
				die("BHRR_SHIM='%s': %s", env, strerror(ENAMETOOLONG));
			memcpy(path, p, len);
			path[len] = 0;
			if (len > 0 && access(path, R_OK) != 0)
				die("BHRR_SHIM='%s': %s: %s", env, path, strerror(errno));
			p += len + (p[len] != 0);
		}
		return env;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = 0;
		snprintf(path, sizeof(path), "%s/tools", BHRR_BUILDDIR);
		if (strcmp(dirname(self), path) == 0) {
			snprintf(path, sizeof(path), "%s/.libs/libbhrr.so", BHRR_BUILDDIR);
			if (access(path, R_OK) == 0)
				return path;
		}
	}
	snprintf(path, sizeof(path), "%s/libbhrr.so", BHRR_PKGLIBDIR);
	if (access(path, R_OK) != 0)
		die("cannot find libbhrr.so (looked in %s; set BHRR_SHIM)", BHRR_PKGLIBDIR);
	return path;
}

char *
shim_ld_preload(void)
{
	const char *shim = find_shim(), *old = getenv("LD_PRELOAD");
	char *v;

	if (old != NULL && old[0] != 0) {
		if (asprintf(&v, "%s:%s", shim, old) < 0)
			v = NULL;
	} else
		v = strdup(shim);
	if (v == NULL)
		die("out of memory");
	return v;
}

/* Skip an optional "--"; the rest must name a QEMU to run. */
static char **
qemu_argv(int argc, char **argv, int i, const char *cmd)
{
	if (i < argc && strcmp(argv[i], "--") == 0)
		i++;
	if (i >= argc)
		usage_error("%s: no QEMU command line given (usage: bhrr %s [--] QEMU ARGS...)",
		    cmd, cmd);
	return argv + i;
}

static void
run_qemu(char **qargv)
{
	execvp(qargv[0], qargv);
	die_status(127, "cannot run '%s': %s", qargv[0], strerror(errno));
}

static int
cmd_check(int argc, char **argv)
{
	int i = 1, all = 0;

	for (; i < argc && argv[i][0] == '-' && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "--all") == 0)
			all = 1;
		else
			usage_error("check: unknown option '%s'", argv[i]);
	}
	char **qargv = qemu_argv(argc, argv, i, "check");
	char *preload = shim_ld_preload();

	if (setenv("LD_PRELOAD", preload, 1) != 0)
		die("cannot set LD_PRELOAD");
	free(preload);
	setenv("BHRR_MODE", "check", 1);
	if (all)
		setenv("BHRR_CHECK_ALL", "1", 1);
	run_qemu(qargv);
	return 0;
}

static int
cmd_shim_path(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	puts(find_shim());
	return 0;
}

static int
cmd_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("bhrr %s\n", PACKAGE_VERSION);
	return 0;
}

static int cmd_help(int argc, char **argv);

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *usage;
};

static const struct command commands[] = {
	{ "check", cmd_check, "check [--all] [--] QEMU ARGS...   hook every target, report, run QEMU" },
	{ "record", cmd_record, "record [-o LOG] [--force] [--] QEMU ARGS...  record a run" },
	{ "replay", cmd_replay, "replay LOG [-o OUT] [--force] [--on-diverge=stop|continue]\n"
				"       [--gdb[=PORT|unix:PATH]] [--stop-at=ICOUNT|#EVENT] [--gdb-arch=auto|i386|qemu]\n"
				"       [-- QEMU ARGS...]" },
	{ "debug", cmd_debug, "debug LOG [--gdb=PORT|unix:PATH] [--stop-at=ICOUNT|#EVENT] [--gdb-arch=auto|i386|qemu]\n"
			      "                                      the replay, for gdb (replay --gdb; forwards and backwards)" },
	{ "doctor", cmd_doctor, "doctor [--] QEMU ARGS...            list what bhrr cannot make repeatable" },
	{ "flake", cmd_flake, "flake [-n N] [-j J] [--chaos[=SEED]] [--expect-status S | --fail-if CMD] -o LOG -- QEMU ARGS...\n"
			      "                                      record runs until one fails" },
	{ "diff", cmd_diff, "diff A B [--json]                   the first action where two runs part" },
	{ "bisect", cmd_bisect, "bisect LOG [--runs R] [--expect-status S | --fail-if CMD] [-- QEMU ARGS...]\n"
				"                                      the event that decides a failure" },
	{ "dump", cmd_dump, "dump LOG [--json]                   one event per line (JSON Lines)" },
	{ "verify", cmd_verify, "verify LOG                          0 intact, 1 damaged, 2 not a log" },
	{ "stat", cmd_stat, "stat LOG [--json]                   counts, bytes per event, spans" },
	{ "export", cmd_export, "export --format=chrome LOG... -o TRACE.json  Perfetto / chrome://tracing" },
	{ "shim-path", cmd_shim_path, "shim-path                           print the libbhrr.so bhrr preloads" },
	{ "version", cmd_version, "version" },
	{ "help", cmd_help, "help" },
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void
usage(FILE *f)
{
	fprintf(f, "usage: bhrr COMMAND [ARGS...]\n\ncommands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(f, "  bhrr %s\n", commands[i].usage);
}

static int
cmd_help(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	usage(stdout);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
		return cmd_help(argc - 1, argv + 1);
	if (strcmp(argv[1], "--version") == 0)
		return cmd_version(argc - 1, argv + 1);
	for (size_t i = 0; i < N_COMMANDS; i++) {
		if (strcmp(argv[1], commands[i].name) != 0)
			continue;
		if (commands[i].fn == NULL) {
			fprintf(stderr, "bhrr: '%s' is not available in bhrr %s yet\n",
				commands[i].name, PACKAGE_VERSION);
			return EXIT_NOT_YET;
		}
		return commands[i].fn(argc - 1, argv + 1);
	}
	fprintf(stderr, "bhrr: '%s' is not a bhrr command\n\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
