/*
 * cmd_bisect.c - bhrr bisect: the shortest prefix of a failing log that,
 * replayed and then run free, still fails; its last action is the event
 * that decides the failure.  Each probe replays in its own run directory
 * (rundir.h); actions are as action_list.h reads them.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "action_list.h"
#include "cmd.h"
#include "log.h"
#include "log_action.h"
#include "open_log.h"
#include "rundir.h"
#include "run_command.h"

#define BISECT_USAGE                                                                      \
	"usage: bhrr bisect LOG [--runs R] [--threshold P] [--expect-status S | --fail-if CMD] " \
	"[--before CMD] [-- QEMU ARGS...]"

struct bisect {
	struct judge j;
	const char *log;
	int nruns;               /* runs per probe */
	double threshold;        /* a probe fails when this share of its runs fail */
	char **qargv;            /* QEMU arguments, or NULL: the recorded ones */
	int qargc;
	char base[4096];         /* the work directory, beside the log */
	int counter;             /* runs so far, numbering the run directories */
};

/* Write the prefix of @in holding its first @k actions to @out. */
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
		die("bisect: cannot write log '%s'", out);
}

/* Replay the first @k actions then run free, --runs times; how many failed. */
static int
probe(struct bisect *b, size_t k)
{
	char prefix[4200];
	int fails = 0;

	snprintf(prefix, sizeof(prefix), "%s/prefix-%zu.bhlog", b->base, k);
	write_prefix(b->log, prefix, k);
	for (int t = 0; t < b->nruns; t++) {
		struct child_process cp = CHILD_PROCESS_INIT;
		char dir[4200];
		int idx = ++b->counter;

		rundir_make(&b->j, b->base, idx, "bisect", dir, sizeof(dir));
		strvec_pushl(&cp.args, "bhrr", "replay", prefix, "-o", NULL);
		strvec_pushf(&cp.args, "%s/replay.bhlog", dir);
		strvec_push(&cp.args, "--on-diverge=continue");
		if (b->qargc) {
			strvec_push(&cp.args, "--");
			strvec_push_subst(&cp.args, b->qargv, b->qargc, dir);
		}
		rundir_start_bhrr(&cp, dir);
		fails += rundir_failed(&b->j, dir, idx, finish_command(&cp));
	}
	return fails;
}

static int
probe_fails(const struct bisect *b, int fails)
{
	return fails >= b->threshold * b->nruns;
}

static void
bisect_parse(int argc, char **argv, struct bisect *b)
{
	int i = 1;

	memset(b, 0, sizeof(*b));
	b->nruns = 10;
	b->threshold = 0.9;
	for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (rundir_parse_opt(argc, argv, &i, &b->j))
			continue;
		if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
			b->nruns = atoi(argv[++i]);
		else if (strcmp(argv[i], "--threshold") == 0 && i + 1 < argc)
			b->threshold = atof(argv[++i]);
		else if (argv[i][0] != '-' && b->log == NULL)
			b->log = argv[i];
		else
			usage_error("bisect: unexpected '%s'\n%s", argv[i], BISECT_USAGE);
	}
	if (b->log == NULL)
		usage_error("bisect: no log given\n%s", BISECT_USAGE);
	if (b->nruns < 1 || b->threshold <= 0 || b->threshold > 1)
		usage_error("bisect: --runs must be at least 1 and --threshold in (0, 1]");
	b->qargv = i < argc ? argv + i + 1 : NULL;
	b->qargc = i < argc ? argc - i - 1 : 0;
}

/* The command line that reproduces the failure with the prefix of @hi actions. */
static void
print_repro(const struct bisect *b, size_t hi)
{
	char repro[4200], prefix[4300];

	snprintf(repro, sizeof(repro), "%s/repro", b->base);
	snprintf(prefix, sizeof(prefix), "%s/prefix-%zu.bhlog", b->base, hi);
	printf("reproduce: ");
	rundir_print_before(&b->j, repro, 1);
	printf("bhrr replay ");
	sq_quote(stdout, prefix);
	printf(" --on-diverge=continue");
	if (b->qargc) {
		struct strvec sub = STRVEC_INIT;

		strvec_push_subst(&sub, b->qargv, b->qargc, repro);
		printf(" --");
		sq_quote_argv(stdout, sub.v, b->qargc);
		strvec_clear(&sub);
	}
	printf("\n");
}

/*
 * Binary search between the prefix of *@lo actions, which passes often
 * enough (*@f_lo failures), and that of *@hi, which fails (*@f_hi).
 */
static void
bisect_search(struct bisect *b, size_t *lo, size_t *hi, int *f_lo, int *f_hi)
{
	while (*hi - *lo > 1) {
		size_t mid = *lo + (*hi - *lo) / 2;
		int f = probe(b, mid);

		fprintf(stderr, "bhrr: bisect: prefix of %zu actions: %d/%d failed -> %s\n", mid, f,
			b->nruns, probe_fails(b, f) ? "fails" : "passes enough");
		if (probe_fails(b, f)) {
			*hi = mid;
			*f_hi = f;
		} else {
			*lo = mid;
			*f_lo = f;
		}
	}
}

/*
 * bhrr bisect LOG [options] [-- QEMU ARGS...]: 0 with the deciding event
 * found, 1 when the log does not decide the failure, 2 on a usage error or
 * a log that cannot be read.
 */
int
cmd_bisect(int argc, char **argv)
{
	struct bisect b;
	struct action_list al;

	bisect_parse(argc, argv, &b);
	if (action_list_load(&al, b.log, "bisect", 0) < 0)
		return EXIT_USAGE;
	if (al.n == 0)
		die("bisect: %s holds no event replay acts on", b.log);
	snprintf(b.base, sizeof(b.base), "%s.bisect", b.log);
	rundir_mkdirs(b.base);
	fprintf(stderr, "bhrr: bisect: %zu actions in %s; %d runs per probe, failing means >= %.0f%% "
			"of runs fail; work in %s\n", al.n, b.log, b.nruns, b.threshold * 100, b.base);

	size_t lo = 0, hi = al.n;
	int f_hi = probe(&b, hi), f_lo;

	fprintf(stderr, "bhrr: bisect: all %zu actions replayed: %d/%d runs failed\n", hi, f_hi,
		b.nruns);
	if (!probe_fails(&b, f_hi)) {
		printf("bhrr bisect: replaying all of %s fails only %d/%d times: it does not decide the "
		       "failure (was it recorded with the same disks and command line?)\n", b.log, f_hi,
		       b.nruns);
		return 1;
	}
	f_lo = probe(&b, lo);
	fprintf(stderr, "bhrr: bisect: no action replayed (free runs): %d/%d runs failed\n", f_lo,
		b.nruns);
	if (probe_fails(&b, f_lo)) {
		printf("bhrr bisect: free runs fail %d/%d times already: no event decides it\n", f_lo,
		       b.nruns);
		return 1;
	}
	bisect_search(&b, &lo, &hi, &f_lo, &f_hi);

	char what[2048];

	action_describe(what, sizeof(what), &al.v[hi - 1]);
	printf("bhrr bisect: the deciding event is action %zu of %zu, event #%" PRIu64 ": %s\n", hi,
	       al.n, al.v[hi - 1].a.seq, what);
	printf("  with it replayed:  %d/%d runs failed (prefix %s/prefix-%zu.bhlog)\n", f_hi, b.nruns,
	       b.base, hi);
	printf("  without it:        %d/%d runs failed (prefix %s/prefix-%zu.bhlog)\n", f_lo, b.nruns,
	       b.base, lo);
	print_repro(&b, hi);
	action_list_free(&al);
	return 0;
}
