/*
 * cmd_flake.c - bhrr flake: run a QEMU command line under bhrr record until
 * a run fails, each run in its own run directory (rundir.h), and report the
 * failure rate with its confidence interval, the failing and the last
 * passing log; --merge adds up the summaries of a hunt split into shards.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "config.h"
#include "cmd.h"
#include "rundir.h"
#include "run_command.h"

#define FLAKE_USAGE                                                                               \
	"usage: bhrr flake [-n N] [-j J] [--chaos[=SEED]] [--expect-status S | --fail-if CMD] "   \
	"[--before CMD] [--keep-going] [--shard I/N] [--json FILE] [--junit FILE] -o LOG -- QEMU ARGS...\n" \
	"       bhrr flake --merge SUMMARY.json... [--json FILE]"

struct flake_opts {
	struct judge j;
	int n, jobs, keep_going, shard_i, shard_n, chaos;
	unsigned long long chaos_seed;
	const char *out, *json, *junit; /* the failing log, the summaries */
	char **qargv;
	int qargc;
};

struct run {
	int index;
	struct child_process cp;
	double t0, secs;
	int ended, status, failed;
	char dir[4200];
};

/* A hunt under way. */
struct flake {
	const struct flake_opts *o;
	char base[4096];         /* the run directories' parent, beside the log */
	char pass_log[4200];     /* where the last passing run's log goes */
	struct run *runs;        /* the started runs */
	struct child_process **cps;
	int started, done, failures, running, stop, next, fail_run, pass_run;
	double lo, hi, wall;     /* the failure rate's interval, the wall time */
};

/* Wilson score interval, 95%. */
static void
wilson(unsigned k, unsigned n, double *lo, double *hi)
{
	if (n == 0) {
		*lo = 0;
		*hi = 1;
		return;
	}
	double z = 1.959964, p = (double)k / n, d = 1 + z * z / n;
	double c = p + z * z / (2.0 * n), w = z * sqrt(p * (1 - p) / n + z * z / (4.0 * n * n));

	*lo = (c - w) / d;
	*hi = (c + w) / d;
	if (*lo < 0)
		*lo = 0;
	if (*hi > 1)
		*hi = 1;
}

static void
xml_str(FILE *f, const char *s)
{
	for (; *s; s++)
		if (*s == '<')
			fputs("&lt;", f);
		else if (*s == '>')
			fputs("&gt;", f);
		else if (*s == '&')
			fputs("&amp;", f);
		else if (*s == '"')
			fputs("&quot;", f);
		else
			fputc(*s, f);
}

/* "runs":N and "failures":F from a summary written by --json. */
static int
read_summary(const char *path, unsigned *runs, unsigned *fails)
{
	FILE *f = fopen(path, "r");
	char buf[65536];
	size_t n;

	if (f == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	char *r = strstr(buf, "\"runs\":"), *x = strstr(buf, "\"failures\":");

	if (r == NULL || x == NULL || strstr(buf, "\"bhrr_flake\"") == NULL)
		return -1;
	*runs = (unsigned)strtoul(r + 7, NULL, 10);
	*fails = (unsigned)strtoul(x + 11, NULL, 10);
	return 0;
}

/* The fields a summary and a merged summary share, after "{". */
static void
write_rate(FILE *f, const char *what, int runs, int fails, double lo, double hi)
{
	fprintf(f, "\"bhrr_flake\":\"%s\",\"runs\":%d,\"failures\":%d,\"rate\":%.6f,"
		   "\"ci95\":[%.6f,%.6f]", what, runs, fails, runs ? (double)fails / runs : 0.0, lo, hi);
}

/* Open @path for writing or exit naming it. */
static FILE *
create_or_die(const char *path)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		die("flake: cannot write '%s': %s", path, strerror(errno));
	return f;
}

static int
flake_merge(int argc, char **argv, int i, const char *json_out)
{
	unsigned runs = 0, fails = 0, files = 0;

	for (; i < argc; i++) {
		unsigned r, f;

		if (strcmp(argv[i], "--json") == 0 && i + 1 < argc) {
			json_out = argv[++i];
			continue;
		}
		files++;
		if (read_summary(argv[i], &r, &f) < 0)
			die("flake --merge: %s is not a summary written by 'bhrr flake --json'", argv[i]);
		runs += r;
		fails += f;
		printf("%s: %u runs, %u failures\n", argv[i], r, f);
	}
	double lo, hi;

	if (files == 0)
		usage_error("flake --merge: no summaries given (usage: bhrr flake --merge SUMMARY.json... [--json FILE])");
	wilson(fails, runs, &lo, &hi);
	printf("merged: %u runs, %u failures, failure rate %.1f%% (95%% CI %.1f%%-%.1f%%)\n", runs,
	       fails, runs ? 100.0 * fails / runs : 0.0, 100 * lo, 100 * hi);
	if (json_out) {
		FILE *f = create_or_die(json_out);

		fputc('{', f);
		write_rate(f, "merged", (int)runs, (int)fails, lo, hi);
		fputs("}\n", f);
		fclose(f);
	}
	return 0;
}

/*
 * Parse flake's arguments into @o.  Returns -1 to hunt, or the exit status
 * of --merge, which it ran.
 */
static int
flake_parse(int argc, char **argv, struct flake_opts *o)
{
	int i = 1;

	*o = (struct flake_opts){ .n = 20, .jobs = 1, .shard_i = 1, .shard_n = 1, .chaos_seed = 1 };
	for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (rundir_parse_opt(argc, argv, &i, &o->j))
			continue;
		if (strcmp(a, "--chaos") == 0 || strncmp(a, "--chaos=", 8) == 0) {
			char *end = NULL;

			o->chaos = 1;
			if (a[7] == '=')
				o->chaos_seed = strtoull(a + 8, &end, 0);
			if (end && (*end || !a[8]))
				usage_error("flake: --chaos=%s: the seed must be a number", a + 8);
		} else if (strcmp(a, "--keep-going") == 0)
			o->keep_going = 1;
		else if (strcmp(a, "--merge") == 0)
			return flake_merge(argc, argv, i + 1, o->json);
		else if (v == NULL)
			usage_error("flake: unexpected '%s'\n%s", a, FLAKE_USAGE);
		else if (strcmp(a, "-n") == 0)
			o->n = atoi(argv[++i]);
		else if (strcmp(a, "-j") == 0)
			o->jobs = atoi(argv[++i]);
		else if (strcmp(a, "-o") == 0)
			o->out = argv[++i];
		else if (strcmp(a, "--json") == 0)
			o->json = argv[++i];
		else if (strcmp(a, "--junit") == 0)
			o->junit = argv[++i];
		else if (strcmp(a, "--shard") == 0) {
			if (sscanf(argv[++i], "%d/%d", &o->shard_i, &o->shard_n) != 2 || o->shard_n < 1 ||
			    o->shard_i < 1 || o->shard_i > o->shard_n)
				usage_error("flake: --shard %s: expected I/N with 1 <= I <= N", argv[i]);
		} else
			usage_error("flake: unexpected '%s'\n%s", a, FLAKE_USAGE);
	}
	if (i >= argc || i + 1 >= argc)
		usage_error("flake: no QEMU command line after '--'\n%s", FLAKE_USAGE);
	if (o->out == NULL)
		usage_error("flake: -o LOG is needed: where the failing run's log goes\n%s", FLAKE_USAGE);
	if (o->n < 1 || o->jobs < 1)
		usage_error("flake: -n and -j must be at least 1");
	if (o->j.fail_if && o->j.expect)
		usage_error("flake: give --expect-status or --fail-if, not both");
	o->qargv = argv + i + 1;
	o->qargc = argc - i - 1;
	return -1;
}

/* Make the run directories' parent and name the passing log, beside the failing one. */
static void
flake_init(struct flake *fl, const struct flake_opts *o)
{
	memset(fl, 0, sizeof(*fl));
	fl->o = o;
	snprintf(fl->base, sizeof(fl->base), "%s.runs", o->out);
	rundir_mkdirs(fl->base);
	snprintf(fl->pass_log, sizeof(fl->pass_log), "%s", o->out);
	char *dot = strstr(fl->pass_log, ".bhlog");

	if (dot && dot[6] == 0)
		*dot = 0;
	strcat(fl->pass_log, ".pass.bhlog");
	fl->runs = calloc((size_t)o->n + 1, sizeof(*fl->runs));
	fl->cps = calloc((size_t)o->n + 1, sizeof(*fl->cps));
	if (fl->runs == NULL || fl->cps == NULL)
		die("out of memory");
	fprintf(stderr, "bhrr: flake: up to %d runs", o->n);
	if (o->shard_n > 1)
		fprintf(stderr, " (shard %d/%d: runs %d, %d, ...)", o->shard_i, o->shard_n, o->shard_i,
			o->shard_i + o->shard_n);
	fprintf(stderr, ", %d at a time%s; run directories in %s\n", o->jobs,
		o->chaos ? " with chaos" : "", fl->base);
}

/* Start runs until -j run at once, -n are started, or a failure stopped the hunt. */
static void
flake_start(struct flake *fl)
{
	const struct flake_opts *o = fl->o;

	while (!fl->stop && fl->running < o->jobs && fl->next < o->n) {
		int idx = ++fl->next;

		if ((idx - 1) % o->shard_n != o->shard_i - 1)
			continue;
		struct run *r = &fl->runs[fl->started++];

		r->index = idx;
		r->cp = (struct child_process)CHILD_PROCESS_INIT;
		rundir_make(&o->j, fl->base, idx, "flake", r->dir, sizeof(r->dir));
		strvec_pushl(&r->cp.args, "bhrr", "record", "-o", NULL);
		strvec_pushf(&r->cp.args, "%s/run.bhlog", r->dir);
		/* the run's own directory: a log left by an earlier hunt is replaced */
		char old[sizeof(r->dir) + 16];

		snprintf(old, sizeof(old), "%s/run.bhlog", r->dir);
		unlink(old);
		strvec_push(&r->cp.args, "--");
		strvec_push_subst(&r->cp.args, o->qargv, o->qargc, r->dir);
		if (o->chaos)
			strvec_pushf(&r->cp.env, "BHRR_CHAOS=%llu", o->chaos_seed + (unsigned long long)idx);
		r->t0 = now_s();
		rundir_start_bhrr(&r->cp, r->dir);
		fl->running++;
	}
}

/* Wait for a run to end and judge it; 0, or -1 if none is left. */
static int
flake_reap(struct flake *fl)
{
	const struct flake_opts *o = fl->o;

	for (int k = 0; k < fl->started; k++)
		fl->cps[k] = fl->runs[k].ended ? NULL : &fl->runs[k].cp;
	struct child_process *cp = finish_any_command(fl->cps, (size_t)fl->started);
	struct run *r = fl->runs;
	char log[4300];

	if (cp == NULL)
		return -1;
	while (&r->cp != cp)
		r++;
	r->ended = 1;
	fl->running--;
	fl->done++;
	r->secs = now_s() - r->t0;
	r->status = cp->status;
	r->failed = rundir_failed(&o->j, r->dir, r->index, r->status);
	fl->failures += r->failed;
	fprintf(stderr, "bhrr: flake: run %d/%d: status %d, %s (%.1f s); %d of %d failed so far\n",
		r->index, o->n, r->status, r->failed ? "FAILED" : "passed", r->secs, fl->failures,
		fl->done);
	snprintf(log, sizeof(log), "%s/run.bhlog", r->dir);
	if (r->failed && !fl->fail_run) {
		fl->fail_run = r->index;
		if (copy_file(log, o->out) < 0)
			fprintf(stderr, "bhrr: flake: cannot copy %s to %s\n", log, o->out);
		fl->stop = !o->keep_going;
	} else if (!r->failed) {
		fl->pass_run = r->index;
		copy_file(log, fl->pass_log);
	}
	return 0;
}

/* The verdict on stdout: the rate, the failing run and how to replay it. */
static void
flake_print(const struct flake *fl)
{
	const struct flake_opts *o = fl->o;

	printf("bhrr flake: %d runs, %d failed: failure rate %.1f%% (95%% CI %.1f%%-%.1f%%) in %.1f s%s\n",
	       fl->done, fl->failures, fl->done ? 100.0 * fl->failures / fl->done : 0.0,
	       100 * fl->lo, 100 * fl->hi, fl->wall, o->chaos ? " with chaos" : "");
	if (fl->fail_run) {
		char d[4300];

		snprintf(d, sizeof(d), "%s/run-%d", fl->base, fl->fail_run);
		printf("failing run %d: log %s, output in %s\n", fl->fail_run, o->out, d);
		printf("replay it: ");
		rundir_print_before(&o->j, d, 0);
		printf("bhrr replay ");
		sq_quote(stdout, o->out);
		printf("\n");
	} else {
		printf("no run failed: the flake did not show in %d runs\n", fl->done);
	}
	if (fl->pass_run)
		printf("last passing run %d: log %s\n", fl->pass_run, fl->pass_log);
}

/* --json FILE: the summary --merge reads, with every run. */
static void
flake_write_json(const struct flake *fl, const char *path)
{
	const struct flake_opts *o = fl->o;
	FILE *f = create_or_die(path);

	fputc('{', f);
	write_rate(f, PACKAGE_VERSION, fl->done, fl->failures, fl->lo, fl->hi);
	fprintf(f, ",\"chaos\":");
	if (o->chaos)
		fprintf(f, "%llu", o->chaos_seed);
	else
		fprintf(f, "null");
	fprintf(f, ",\"shard\":\"%d/%d\",\"wall_s\":%.3f,\"failing_log\":", o->shard_i,
		o->shard_n, fl->wall);
	json_cstr(f, fl->fail_run ? o->out : NULL);
	fprintf(f, ",\"passing_log\":");
	json_cstr(f, fl->pass_run ? fl->pass_log : NULL);
	fprintf(f, ",\"run_list\":[");
	for (int k = 0, first = 1; k < fl->started; k++) {
		const struct run *r = &fl->runs[k];

		if (!r->ended)
			continue;
		fprintf(f, "%s{\"run\":%d,\"status\":%d,\"failed\":%s,\"seconds\":%.3f}",
			first ? "" : ",", r->index, r->status, r->failed ? "true" : "false", r->secs);
		first = 0;
	}
	fprintf(f, "]}\n");
	fclose(f);
}

/* --junit FILE: a test case per run, for CI. */
static void
flake_write_junit(const struct flake *fl, const char *path)
{
	FILE *f = create_or_die(path);

	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		   "<testsuite name=\"bhrr flake\" tests=\"%d\" failures=\"%d\" time=\"%.3f\">\n",
		fl->done, fl->failures, fl->wall);
	for (int k = 0; k < fl->started; k++) {
		const struct run *r = &fl->runs[k];

		fprintf(f, "  <testcase classname=\"bhrr.flake\" name=\"run %d\" time=\"%.3f\">",
			r->index, r->secs);
		if (r->failed) {
			fprintf(f, "<failure message=\"exit status %d\">log: ", r->status);
			xml_str(f, r->index == fl->fail_run ? fl->o->out : r->dir);
			fprintf(f, "</failure>");
		}
		fprintf(f, "</testcase>\n");
	}
	fprintf(f, "</testsuite>\n");
	fclose(f);
}

/*
 * bhrr flake [options] -o LOG -- QEMU ARGS...: 0 when a run failed (its log
 * in LOG), 1 when none did, 2 on a usage error.
 */
int
cmd_flake(int argc, char **argv)
{
	struct flake_opts o;
	struct flake fl;
	int rc = flake_parse(argc, argv, &o);

	if (rc >= 0)
		return rc;
	flake_init(&fl, &o);
	double t_start = now_s();

	for (;;) {
		flake_start(&fl);
		if (fl.running == 0 || flake_reap(&fl) < 0)
			break;
	}
	fl.wall = now_s() - t_start;
	wilson((unsigned)fl.failures, (unsigned)fl.done, &fl.lo, &fl.hi);
	flake_print(&fl);
	if (o.json)
		flake_write_json(&fl, o.json);
	if (o.junit)
		flake_write_junit(&fl, o.junit);
	free(fl.cps);
	free(fl.runs);
	return fl.fail_run ? 0 : 1;
}
