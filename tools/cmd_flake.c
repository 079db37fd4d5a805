/*
 * cmd_flake.c - bhrr flake (record runs until one fails) and bhrr bisect
 * (the shortest prefix of a failing log that, replayed and then run free,
 * still fails: its last action decides the failure).
 *
 * Both run many QEMUs, each in its own run directory: "{rundir}" in the
 * QEMU arguments becomes that directory, and --before CMD runs there first
 * (with BHRR_RUN and BHRR_RUN_DIR set) - to give each run fresh disks.
 * A run fails when its exit status differs from --expect-status (default
 * 0), or, with --fail-if CMD, when CMD exits 0; CMD runs in the run
 * directory with BHRR_STATUS, BHRR_STDOUT and BHRR_STDERR set.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "cmd.h"
#include "action_list.h"
#include "log.h"
#include "log_action.h"
#include "open_log.h"
#include "rundir.h"
#include "run_command.h"

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

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

static int
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

/* ---- flake ---- */

struct run {
	int index;
	struct child_process cp;
	double t0, secs;
	int ended, status, failed;
	char dir[4200];
};

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
		FILE *f = fopen(json_out, "w");

		if (f == NULL)
			die("flake --merge: cannot write %s: %s", json_out, strerror(errno));
		fprintf(f, "{\"bhrr_flake\":\"merged\",\"runs\":%u,\"failures\":%u,\"rate\":%.6f,"
			   "\"ci95\":[%.6f,%.6f]}\n", runs, fails, runs ? (double)fails / runs : 0.0, lo, hi);
		fclose(f);
	}
	return 0;
}

#define FLAKE_USAGE                                                                               \
	"usage: bhrr flake [-n N] [-j J] [--chaos[=SEED]] [--expect-status S | --fail-if CMD] "   \
	"[--before CMD] [--keep-going] [--shard I/N] [--json FILE] [--junit FILE] -o LOG -- QEMU ARGS...\n" \
	"       bhrr flake --merge SUMMARY.json... [--json FILE]"

int
cmd_flake(int argc, char **argv)
{
	struct judge j = { 0, NULL, NULL };
	int n = 20, jobs = 1, keep_going = 0, shard_i = 1, shard_n = 1, chaos = 0;
	unsigned long long chaos_seed = 1;
	const char *out = NULL, *json = NULL, *junit = NULL;
	int i = 1;

	for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (rundir_parse_opt(argc, argv, &i, &j))
			continue;
		if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
			n = atoi(argv[++i]);
		else if (strcmp(argv[i], "-j") == 0 && i + 1 < argc)
			jobs = atoi(argv[++i]);
		else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
			out = argv[++i];
		else if (strcmp(argv[i], "--chaos") == 0)
			chaos = 1;
		else if (strncmp(argv[i], "--chaos=", 8) == 0) {
			char *end;

			chaos = 1;
			chaos_seed = strtoull(argv[i] + 8, &end, 0);
			if (*end || !argv[i][8])
				usage_error("flake: --chaos=%s: the seed must be a number", argv[i] + 8);
		} else if (strcmp(argv[i], "--keep-going") == 0)
			keep_going = 1;
		else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc)
			json = argv[++i];
		else if (strcmp(argv[i], "--junit") == 0 && i + 1 < argc)
			junit = argv[++i];
		else if (strcmp(argv[i], "--shard") == 0 && i + 1 < argc) {
			if (sscanf(argv[++i], "%d/%d", &shard_i, &shard_n) != 2 || shard_n < 1 ||
			    shard_i < 1 || shard_i > shard_n)
				usage_error("flake: --shard %s: expected I/N with 1 <= I <= N", argv[i]);
		} else if (strcmp(argv[i], "--merge") == 0)
			return flake_merge(argc, argv, i + 1, json);
		else
			usage_error("flake: unexpected '%s'\n%s", argv[i], FLAKE_USAGE);
	}
	if (i >= argc || i + 1 >= argc)
		usage_error("flake: no QEMU command line after '--'\n%s", FLAKE_USAGE);
	if (out == NULL)
		usage_error("flake: -o LOG is needed: where the failing run's log goes\n%s", FLAKE_USAGE);
	if (n < 1 || jobs < 1)
		usage_error("flake: -n and -j must be at least 1");
	if (j.fail_if && j.expect)
		usage_error("flake: give --expect-status or --fail-if, not both");
	char **qargv = argv + i + 1;
	int qargc = argc - i - 1;

	/* run directories beside the log */
	char base[4096], pass_log[4200];

	snprintf(base, sizeof(base), "%s.runs", out);
	rundir_mkdirs(base);
	snprintf(pass_log, sizeof(pass_log), "%s", out);
	char *dot = strstr(pass_log, ".bhlog");

	if (dot && dot[6] == 0)
		*dot = 0;
	strcat(pass_log, ".pass.bhlog");

	struct run *runs = calloc((size_t)n + 1, sizeof(*runs));
	struct child_process **cps = calloc((size_t)n + 1, sizeof(*cps));
	int started = 0, done = 0, failures = 0, running = 0, stop = 0, next = 0;
	int fail_run = 0, pass_run = 0;
	double t_start = now_s();

	if (runs == NULL || cps == NULL)
		die("out of memory");
	fprintf(stderr, "bhrr: flake: up to %d runs", n);
	if (shard_n > 1)
		fprintf(stderr, " (shard %d/%d: runs %d, %d, ...)", shard_i, shard_n, shard_i,
			shard_i + shard_n);
	fprintf(stderr, ", %d at a time%s; run directories in %s\n", jobs, chaos ? " with chaos" : "",
		base);
	for (;;) {
		/* start what may start */
		while (!stop && running < jobs && next < n) {
			int idx = ++next;

			if ((idx - 1) % shard_n != shard_i - 1)
				continue;
			struct run *r = &runs[started++];

			r->index = idx;
			r->cp = (struct child_process)CHILD_PROCESS_INIT;
			rundir_make(&j, base, idx, "flake", r->dir, sizeof(r->dir));
			strvec_pushl(&r->cp.args, "bhrr", "record", "-o", NULL);
			strvec_pushf(&r->cp.args, "%s/run.bhlog", r->dir);
			strvec_push(&r->cp.args, "--");
			strvec_push_subst(&r->cp.args, qargv, qargc, r->dir);
			if (chaos)
				strvec_pushf(&r->cp.env, "BHRR_CHAOS=%llu",
					     chaos_seed + (unsigned long long)idx);
			r->t0 = now_s();
			rundir_start_bhrr(&r->cp, r->dir);
			running++;
		}
		if (running == 0)
			break;
		for (int k = 0; k < started; k++)
			cps[k] = runs[k].ended ? NULL : &runs[k].cp;
		struct child_process *cp = finish_any_command(cps, (size_t)started);
		struct run *r = runs;

		if (cp == NULL)
			break;
		while (&r->cp != cp)
			r++;
		r->ended = 1;
		running--;
		done++;
		r->secs = now_s() - r->t0;
		r->status = cp->status;
		r->failed = rundir_failed(&j, r->dir, r->index, r->status);
		failures += r->failed;
		fprintf(stderr, "bhrr: flake: run %d/%d: status %d, %s (%.1f s); %d of %d failed so far\n",
			r->index, n, r->status, r->failed ? "FAILED" : "passed", r->secs, failures, done);
		char log[4300];

		snprintf(log, sizeof(log), "%s/run.bhlog", r->dir);
		if (r->failed && !fail_run) {
			fail_run = r->index;
			if (copy_file(log, out) < 0)
				fprintf(stderr, "bhrr: flake: cannot copy %s to %s\n", log, out);
			if (!keep_going)
				stop = 1;
		} else if (!r->failed) {
			pass_run = r->index;
			copy_file(log, pass_log);
		}
	}
	double lo, hi, wall = now_s() - t_start;

	wilson((unsigned)failures, (unsigned)done, &lo, &hi);
	printf("bhrr flake: %d runs, %d failed: failure rate %.1f%% (95%% CI %.1f%%-%.1f%%) in %.1f s%s\n",
	       done, failures, done ? 100.0 * failures / done : 0.0, 100 * lo, 100 * hi, wall,
	       chaos ? " with chaos" : "");
	if (fail_run) {
		printf("failing run %d: log %s, output in %s/run-%d\n", fail_run, out, base, fail_run);
		char d[4300];

		snprintf(d, sizeof(d), "%s/run-%d", base, fail_run);
		printf("replay it: ");
		rundir_print_before(&j, d, 0);
		printf("bhrr replay ");
		sq_quote(stdout, out);
		printf("\n");
	} else {
		printf("no run failed: the flake did not show in %d runs\n", done);
	}
	if (pass_run)
		printf("last passing run %d: log %s\n", pass_run, pass_log);
	if (json) {
		FILE *f = fopen(json, "w");

		if (f == NULL)
			die("flake: cannot write %s: %s", json, strerror(errno));
		fprintf(f, "{\"bhrr_flake\":\"%s\",\"runs\":%d,\"failures\":%d,\"rate\":%.6f,"
			   "\"ci95\":[%.6f,%.6f],\"chaos\":", PACKAGE_VERSION, done, failures,
			done ? (double)failures / done : 0.0, lo, hi);
		if (chaos)
			fprintf(f, "%llu", chaos_seed);
		else
			fprintf(f, "null");
		fprintf(f, ",\"shard\":\"%d/%d\",\"wall_s\":%.3f,\"failing_log\":", shard_i, shard_n, wall);
		if (fail_run)
			json_cstr(f, out);
		else
			fprintf(f, "null");
		fprintf(f, ",\"passing_log\":");
		if (pass_run)
			json_cstr(f, pass_log);
		else
			fprintf(f, "null");
		fprintf(f, ",\"run_list\":[");
		for (int k = 0, first = 1; k < started; k++) {
			if (runs[k].cp.pid == 0 || (runs[k].secs == 0 && runs[k].status == 0 && !runs[k].failed &&
						 k >= done))
				continue;
			fprintf(f, "%s{\"run\":%d,\"status\":%d,\"failed\":%s,\"seconds\":%.3f}",
				first ? "" : ",", runs[k].index, runs[k].status,
				runs[k].failed ? "true" : "false", runs[k].secs);
			first = 0;
		}
		fprintf(f, "]}\n");
		fclose(f);
	}
	if (junit) {
		FILE *f = fopen(junit, "w");

		if (f == NULL)
			die("flake: cannot write %s: %s", junit, strerror(errno));
		fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			   "<testsuite name=\"bhrr flake\" tests=\"%d\" failures=\"%d\" time=\"%.3f\">\n",
			done, failures, wall);
		for (int k = 0; k < started; k++) {
			fprintf(f, "  <testcase classname=\"bhrr.flake\" name=\"run %d\" time=\"%.3f\">",
				runs[k].index, runs[k].secs);
			if (runs[k].failed) {
				fprintf(f, "<failure message=\"exit status %d\">log: ", runs[k].status);
				xml_str(f, runs[k].index == fail_run ? out : runs[k].dir);
				fprintf(f, "</failure>");
			}
			fprintf(f, "</testcase>\n");
		}
		fprintf(f, "</testsuite>\n");
		fclose(f);
	}
	free(cps);
	free(runs);
	return fail_run ? 0 : 1;
}

/* ---- bisect ---- */

/* Write the prefix of @in holding its first @k replay actions to @out. */
static void
write_prefix(const char *in, const char *out, size_t k)
{
	char err[512];
	struct log_reader *r = open_log_or_exit(in, "bisect", 1);
	struct log_event ev;
	size_t seen = 0;
	int64_t last = 0;
	struct log_header h = *log_reader_header(r);
	struct log_writer *w = log_writer_open(out, &h, 0, err, sizeof(err));

	if (w == NULL)
		die("bisect: %s", err);
	int exact = log_header_exact(&h);

	while (log_reader_next(r, &ev) == 1) {
		struct log_action a;

		if (ev.kind == LOG_EV_END)
			continue;
		if (log_action_of(r, &ev, exact, &a) && seen++ == k)
			break;
		if (ev.icount_how != LOG_IC_UNKNOWN)
			last = ev.icount;
		log_writer_append(w, &ev);
	}
	log_reader_close(r);
	if (log_writer_close(w, last) < 0)
		die("bisect: cannot write %s", out);
}

struct probe {
	size_t k;
	int fails, runs;
};

/* Replay the first @k actions then run free, @runs times; failures. */
static int
probe(const char *log, size_t k, int nruns, const struct judge *j, char **qargv, int qargc,
      const char *base, int *counter)
{
	char prefix[4200];
	int fails = 0;

	snprintf(prefix, sizeof(prefix), "%s/prefix-%zu.bhlog", base, k);
	write_prefix(log, prefix, k);
	for (int t = 0; t < nruns; t++) {
		struct child_process cp = CHILD_PROCESS_INIT;
		char dir[4200];
		int idx = ++*counter;

		rundir_make(j, base, idx, "bisect", dir, sizeof(dir));
		strvec_pushl(&cp.args, "bhrr", "replay", prefix, "-o", NULL);
		strvec_pushf(&cp.args, "%s/replay.bhlog", dir);
		strvec_push(&cp.args, "--on-diverge=continue");
		if (qargc) {
			strvec_push(&cp.args, "--");
			strvec_push_subst(&cp.args, qargv, qargc, dir);
		}
		rundir_start_bhrr(&cp, dir);
		fails += rundir_failed(j, dir, idx, finish_command(&cp));
	}
	return fails;
}

#define BISECT_USAGE                                                                      \
	"usage: bhrr bisect LOG [--runs R] [--threshold P] [--expect-status S | --fail-if CMD] " \
	"[--before CMD] [-- QEMU ARGS...]"

int
cmd_bisect(int argc, char **argv)
{
	struct judge j = { 0, NULL, NULL };
	int nruns = 10, i = 1;
	double threshold = 0.9;
	const char *log = NULL;

	for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (rundir_parse_opt(argc, argv, &i, &j))
			continue;
		if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
			nruns = atoi(argv[++i]);
		else if (strcmp(argv[i], "--threshold") == 0 && i + 1 < argc)
			threshold = atof(argv[++i]);
		else if (argv[i][0] != '-' && log == NULL)
			log = argv[i];
		else
			usage_error("bisect: unexpected '%s'\n%s", argv[i], BISECT_USAGE);
	}
	if (log == NULL)
		usage_error("bisect: no log given\n%s", BISECT_USAGE);
	if (nruns < 1 || threshold <= 0 || threshold > 1)
		usage_error("bisect: --runs must be at least 1 and --threshold in (0, 1]");
	char **qargv = i < argc ? argv + i + 1 : NULL;
	int qargc = i < argc ? argc - i - 1 : 0;

	/* the actions, as replay forces them */
	struct action_list bl;

	if (action_list_load(&bl, log, "bisect", 0) < 0)
		return EXIT_USAGE;
	if (bl.n == 0)
		die("bisect: %s holds no event replay acts on", log);

	char base[4096];
	int counter = 0;

	snprintf(base, sizeof(base), "%s.bisect", log);
	rundir_mkdirs(base);
	fprintf(stderr, "bhrr: bisect: %zu actions in %s; %d runs per probe, failing means >= %.0f%% "
			"of runs fail; work in %s\n", bl.n, log, nruns, threshold * 100, base);

	size_t lo = 0, hi = bl.n;
	int f_hi = probe(log, hi, nruns, &j, qargv, qargc, base, &counter);

	fprintf(stderr, "bhrr: bisect: all %zu actions replayed: %d/%d runs failed\n", hi, f_hi, nruns);
	if (f_hi < threshold * nruns) {
		printf("bhrr bisect: replaying all of %s fails only %d/%d times: it does not decide the "
		       "failure (was it recorded with the same disks and command line?)\n", log, f_hi,
		       nruns);
		return 1;
	}
	int f_lo = probe(log, lo, nruns, &j, qargv, qargc, base, &counter);

	fprintf(stderr, "bhrr: bisect: no action replayed (free runs): %d/%d runs failed\n", f_lo,
		nruns);
	if (f_lo >= threshold * nruns) {
		printf("bhrr bisect: free runs fail %d/%d times already: no event decides it\n", f_lo,
		       nruns);
		return 1;
	}
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		int f = probe(log, mid, nruns, &j, qargv, qargc, base, &counter);

		fprintf(stderr, "bhrr: bisect: prefix of %zu actions: %d/%d failed -> %s\n", mid, f,
			nruns, f >= threshold * nruns ? "fails" : "passes enough");
		if (f >= threshold * nruns) {
			hi = mid;
			f_hi = f;
		} else {
			lo = mid;
			f_lo = f;
		}
	}
	char what[2048];

	action_describe(what, sizeof(what), &bl.v[hi - 1]);
	printf("bhrr bisect: the deciding event is action %zu of %zu, event #%" PRIu64 ": %s\n", hi,
	       bl.n, bl.v[hi - 1].a.seq, what);
	printf("  with it replayed:  %d/%d runs failed (prefix %s/prefix-%zu.bhlog)\n", f_hi, nruns,
	       base, hi);
	printf("  without it:        %d/%d runs failed (prefix %s/prefix-%zu.bhlog)\n", f_lo, nruns,
	       base, lo);
	char repro[4200], prefix[4300];

	snprintf(repro, sizeof(repro), "%s/repro", base);
	snprintf(prefix, sizeof(prefix), "%s/prefix-%zu.bhlog", base, hi);
	printf("reproduce: ");
	rundir_print_before(&j, repro, 1);
	printf("bhrr replay ");
	sq_quote(stdout, prefix);
	printf(" --on-diverge=continue");
	if (qargc) {
		struct strvec sub = STRVEC_INIT;

		strvec_push_subst(&sub, qargv, qargc, repro);
		printf(" --");
		sq_quote_argv(stdout, sub.v, qargc);
		strvec_clear(&sub);
	}
	printf("\n");
	action_list_free(&bl);
	return 0;
}
