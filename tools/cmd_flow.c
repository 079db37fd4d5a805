/*
 * cmd_flow.c - bhrr diff and bhrr export: what happened in a run, and where
 * two runs parted.  Both work on a log's actions (action_list.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "cmd.h"
#include "action_list.h"
#include "grow.h"
#include "log.h"
#include "open_log.h"

/*
 * bhrr diff A B [--json]: the first action where the runs part, and a
 * summary of what differs after it.  0 the same, 1 different, 2 usage or a
 * log that cannot be read.
 */
int
cmd_diff(int argc, char **argv)
{
	const char *p[2] = { NULL, NULL };
	int json = 0, np = 0;
	struct action_list as[2];

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else if (argv[i][0] != '-' && np < 2)
			p[np++] = argv[i];
		else
			usage_error("diff: unexpected '%s' (usage: bhrr diff A B [--json])", argv[i]);
	}
	if (np != 2)
		usage_error("diff: two logs needed (usage: bhrr diff A B [--json])");
	for (int k = 0; k < 2; k++)
		if (action_list_load(&as[k], p[k], "diff", 1) < 0)
			return EXIT_USAGE;
	if (strcmp(as[0].hdr.build_id, as[1].hdr.build_id) != 0)
		fprintf(stderr, "bhrr: diff: warning: %s and %s come from different QEMU builds (%s, %s)\n",
			p[0], p[1], as[0].hdr.build_id, as[1].hdr.build_id);

	long d = action_list_first_difference(&as[0], &as[1]);
	char da[512], db[512];
	uint64_t ca[ACTION_KINDS], cb[ACTION_KINDS];
	size_t differing = 0, n = as[0].n < as[1].n ? as[0].n : as[1].n;

	for (size_t i = d < 0 ? n : (size_t)d; i < n; i++)
		differing += !action_same(&as[0].v[i], &as[1].v[i]);
	differing += (as[0].n > n ? as[0].n - n : as[1].n - n);
	action_list_count(&as[0], d < 0 ? as[0].n : (size_t)d, ca);
	action_list_count(&as[1], d < 0 ? as[1].n : (size_t)d, cb);
	const struct action *a = d >= 0 && (size_t)d < as[0].n ? &as[0].v[d] : NULL;
	const struct action *b = d >= 0 && (size_t)d < as[1].n ? &as[1].v[d] : NULL;

	action_describe(da, sizeof(da), a);
	action_describe(db, sizeof(db), b);
	if (json) {
		printf("{\"a\":");
		json_cstr(stdout, p[0]);
		printf(",\"b\":");
		json_cstr(stdout, p[1]);
		printf(",\"a_actions\":%zu,\"b_actions\":%zu,\"identical\":%s", as[0].n, as[1].n,
		       d < 0 ? "true" : "false");
		if (d >= 0) {
			printf(",\"first\":{\"index\":%ld,\"a_seq\":", d);
			if (a)
				printf("%" PRIu64, a->a.seq);
			else
				printf("null");
			printf(",\"b_seq\":");
			if (b)
				printf("%" PRIu64, b->a.seq);
			else
				printf("null");
			printf(",\"a\":");
			json_cstr(stdout, da);
			printf(",\"b\":");
			json_cstr(stdout, db);
			printf("},\"differing_after\":%zu,\"a_after\":{\"bh_run\":%" PRIu64
			       ",\"io_complete\":%" PRIu64 ",\"warp\":%" PRIu64 ",\"chaos\":%" PRIu64
			       "},\"b_after\":{\"bh_run\":%" PRIu64 ",\"io_complete\":%" PRIu64
			       ",\"warp\":%" PRIu64 ",\"chaos\":%" PRIu64 "}",
			       differing, ca[0], ca[1], ca[2], ca[3], cb[0], cb[1], cb[2], cb[3]);
		}
		printf("}\n");
	} else if (d < 0) {
		printf("identical: %zu actions each (bh_run, io_complete, warp, chaos)\n", as[0].n);
	} else {
		printf("first divergence at action #%ld:\n", d);
		printf("  A %s: %s%s", p[0], a ? "event #" : "", "");
		if (a)
			printf("%" PRIu64 " ", a->a.seq);
		printf("%s\n", da);
		printf("  B %s: %s", p[1], b ? "event #" : "");
		if (b)
			printf("%" PRIu64 " ", b->a.seq);
		printf("%s\n", db);
		if (d > 0) {
			char prev[512];

			action_describe(prev, sizeof(prev), &as[0].v[d - 1]);
			printf("  last common action (#%ld): %s\n", d - 1, prev);
		}
		printf("after it: A has %zu more actions (%" PRIu64 " bh_run, %" PRIu64
		       " io_complete, %" PRIu64 " warp, %" PRIu64 " chaos), B has %zu (%" PRIu64
		       " bh_run, %" PRIu64 " io_complete, %" PRIu64 " warp, %" PRIu64 " chaos); "
		       "%zu positions differ\n",
		       as[0].n - (size_t)d, ca[0], ca[1], ca[2], ca[3], as[1].n - (size_t)d, cb[0], cb[1],
		       cb[2], cb[3], differing);
	}
	for (int k = 0; k < 2; k++) {
		if (as[k].damaged)
			fprintf(stderr, "bhrr: diff: warning: %s is damaged; compared what could be read\n",
				p[k]);
		action_list_free(&as[k]);
	}
	return d < 0 ? 0 : 1;
}

/* ---- export ---- */

static const char *const role_tracks[] = { "vCPU", "main loop", "thread-pool workers", "other" };

static double
ts_of(const struct log_event *ev)
{
	/* virtual time in microseconds at shift=0: one instruction, one ns */
	return ev->icount_how == LOG_IC_UNKNOWN ? (double)ev->seq : (double)ev->icount / 1000.0;
}

struct flow {
	uint64_t ident;
	uint64_t id;
};

/*
 * One log as process @pid.  Flows: each bh_schedule to the next run of the
 * same callback, each io_submit to its completion.  @mark_seq: the event to
 * mark as the first divergence (0: none).
 */
static int
export_one(FILE *f, const char *path, int pid, uint64_t mark_seq, int *first)
{
	struct log_reader *r = open_log(path, "export", NULL);
	struct log_event ev;
	struct flow *pending = NULL;
	size_t n_pending = 0, cap_pending = 0;
	uint64_t next_flow = 1;

	if (r == NULL)
		return -1;
	const struct log_header *h = log_reader_header(r);

#define SEP() (*first ? (*first = 0, "") : ",\n")
	fprintf(f, "%s{\"ph\":\"M\",\"pid\":%d,\"name\":\"process_name\",\"args\":{\"name\":", SEP(),
		pid);
	{
		char name[600];

		snprintf(name, sizeof(name), "%s (QEMU %s)", path, h->qemu_version);
		json_cstr(f, name);
	}
	fprintf(f, "}}");
	for (int t = 0; t < 4; t++) {
		fprintf(f, "%s{\"ph\":\"M\",\"pid\":%d,\"tid\":%d,\"name\":\"thread_name\",\"args\":{\"name\":\"%s\"}}",
			SEP(), pid, t + 1, role_tracks[t]);
		fprintf(f, "%s{\"ph\":\"M\",\"pid\":%d,\"tid\":%d,\"name\":\"thread_sort_index\",\"args\":{\"sort_index\":%d}}",
			SEP(), pid, t + 1, t);
	}
	while (log_reader_next(r, &ev) == 1) {
		const char *kind = log_kind_name(ev.kind);
		uint64_t cb = 0;
		const char *name = NULL;
		char label[256];
		int tid = ev.icount_how == LOG_IC_EXACT ? 1 : 2;
		double ts = ts_of(&ev);

		if (kind == NULL || ev.kind == LOG_EV_STRING || ev.kind == LOG_EV_IDENT)
			continue;
		if (ev.kind == LOG_EV_BH_RUN || ev.kind == LOG_EV_BH_SCHEDULE)
			log_reader_ident(r, ev.ident, &cb, &name);
		switch (ev.kind) {
		case LOG_EV_BH_SCHEDULE:
			tid = ev.role < 4 ? (int)ev.role + 1 : 4;
			snprintf(label, sizeof(label), "schedule %s", name ? name : "?");
			break;
		case LOG_EV_BH_RUN:
			snprintf(label, sizeof(label), "%s", name ? name : "?");
			break;
		case LOG_EV_IO_SUBMIT:
			tid = 1;
			snprintf(label, sizeof(label), "submit request %" PRIu64, ev.req);
			break;
		case LOG_EV_IO_COMPLETE:
			snprintf(label, sizeof(label), "complete request %" PRIu64, ev.req);
			break;
		case LOG_EV_WARP:
			tid = 1;
			snprintf(label, sizeof(label), "warp +%" PRId64 " ns", ev.delta_ns);
			break;
		case LOG_EV_DIVERGE:
			snprintf(label, sizeof(label), "DIVERGENCE at recorded event #%" PRIu64, ev.index);
			break;
		default:
			snprintf(label, sizeof(label), "%s", kind);
			break;
		}
		int span = ev.kind == LOG_EV_BH_RUN || ev.kind == LOG_EV_IO_COMPLETE;

		fprintf(f, "%s{\"ph\":\"%s\",\"pid\":%d,\"tid\":%d,\"ts\":%.3f,%s\"cat\":\"%s\",\"name\":",
			SEP(), span ? "X" : "i", pid, tid, ts, span ? "\"dur\":0.001," : "\"s\":\"t\",",
			kind);
		json_cstr(f, label);
		fprintf(f, ",\"args\":{\"seq\":%" PRIu64 ",\"icount\":", ev.seq);
		if (ev.icount_how == LOG_IC_UNKNOWN)
			fprintf(f, "null");
		else
			fprintf(f, "%" PRId64, ev.icount);
		fprintf(f, ",\"icount_exact\":%s", ev.icount_how == LOG_IC_EXACT ? "true" : "false");
		if (ev.kind == LOG_EV_BH_RUN || ev.kind == LOG_EV_BH_SCHEDULE)
			fprintf(f, ",\"cb_off\":%" PRIu64, cb);
		if (ev.kind == LOG_EV_IO_SUBMIT || ev.kind == LOG_EV_IO_COMPLETE)
			fprintf(f, ",\"req\":%" PRIu64, ev.req);
		if (ev.kind == LOG_EV_WARP)
			fprintf(f, ",\"delta_ns\":%" PRId64, ev.delta_ns);
		if (ev.kind == LOG_EV_DIVERGE) {
			fprintf(f, ",\"expected\":");
			json_cstr(f, ev.text ? ev.text : "");
		}
		fprintf(f, "}}");

		/* flows: schedule -> run of the same callback; submit -> completion */
		if (ev.kind == LOG_EV_BH_SCHEDULE) {
			if (GROW(pending, n_pending, cap_pending) < 0)
				die("out of memory");
			pending[n_pending++] = (struct flow){ ev.ident, next_flow };
			fprintf(f, "%s{\"ph\":\"s\",\"pid\":%d,\"tid\":%d,\"ts\":%.3f,\"cat\":\"flow\",\"name\":\"bh\",\"id\":%" PRIu64 "}",
				SEP(), pid, tid, ts, (uint64_t)pid << 40 | next_flow);
			next_flow++;
		} else if (ev.kind == LOG_EV_BH_RUN) {
			for (size_t i = 0; i < n_pending; i++)
				if (pending[i].ident == ev.ident) {
					fprintf(f, "%s{\"ph\":\"f\",\"bp\":\"e\",\"pid\":%d,\"tid\":%d,\"ts\":%.3f,\"cat\":\"flow\",\"name\":\"bh\",\"id\":%" PRIu64 "}",
						SEP(), pid, tid, ts, (uint64_t)pid << 40 | pending[i].id);
					memmove(&pending[i], &pending[i + 1], (n_pending - i - 1) * sizeof(*pending));
					n_pending--;
					break;
				}
		} else if (ev.kind == LOG_EV_IO_SUBMIT || ev.kind == LOG_EV_IO_COMPLETE) {
			int sub = ev.kind == LOG_EV_IO_SUBMIT;

			fprintf(f, "%s{\"ph\":\"%s\",%s\"pid\":%d,\"tid\":%d,\"ts\":%.3f,\"cat\":\"flow\",\"name\":\"io\",\"id\":%" PRIu64 "}",
				SEP(), sub ? "s" : "f", sub ? "" : "\"bp\":\"e\",", pid, tid, ts,
				(uint64_t)pid << 40 | (uint64_t)1 << 39 | ev.req);
		}
		if (mark_seq && ev.seq == mark_seq)
			fprintf(f, "%s{\"ph\":\"i\",\"s\":\"g\",\"pid\":%d,\"tid\":%d,\"ts\":%.3f,\"cat\":\"bhrr\",\"name\":\"first divergence between the runs\"}",
				SEP(), pid, tid, ts);
	}
#undef SEP
	int damaged = log_reader_damage_count(r) > 0;

	free(pending);
	log_reader_close(r);
	if (damaged)
		fprintf(stderr, "bhrr: export: warning: %s is damaged; exported what could be read\n",
			path);
	return 0;
}

/* bhrr export --format=chrome LOG... -o trace.json */
int
cmd_export(int argc, char **argv)
{
	const char *out = NULL, *logs[16];
	int n = 0, chrome = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--format=chrome") == 0)
			chrome = 1;
		else if (strncmp(argv[i], "--format=", 9) == 0)
			usage_error("export: format '%s' is not known; 'chrome' (Trace Event JSON, opens in "
				    "Perfetto and chrome://tracing) is", argv[i] + 9);
		else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
			out = argv[++i];
		else if (argv[i][0] != '-' && n < 16)
			logs[n++] = argv[i];
		else
			usage_error("export: unexpected '%s' (usage: bhrr export --format=chrome LOG... -o TRACE.json)",
				    argv[i]);
	}
	if (!chrome)
		usage_error("export: say --format=chrome (usage: bhrr export --format=chrome LOG... -o TRACE.json)");
	if (n == 0)
		usage_error("export: no log given (usage: bhrr export --format=chrome LOG... -o TRACE.json)");
	if (out == NULL)
		usage_error("export: no output given (-o TRACE.json)");

	uint64_t mark[16] = { 0 };

	if (n == 2) {
		struct action_list as[2];

		if (action_list_load(&as[0], logs[0], "export", 1) < 0 ||
		    action_list_load(&as[1], logs[1], "export", 1) < 0)
			return EXIT_USAGE;
		long d = action_list_first_difference(&as[0], &as[1]);

		if (d >= 0) {
			mark[0] = (size_t)d < as[0].n ? as[0].v[d].a.seq : 0;
			mark[1] = (size_t)d < as[1].n ? as[1].v[d].a.seq : 0;
		}
		action_list_free(&as[0]);
		action_list_free(&as[1]);
	}
	FILE *f = fopen(out, "w");

	if (f == NULL)
		die("export: cannot write %s: %s", out, strerror(errno));
	int first = 1;

	fprintf(f, "{\"displayTimeUnit\":\"ns\",\"otherData\":{\"generator\":\"bhrr %s\",\"time\":\"virtual time, 1 us = 1000 instructions at shift=0\"},\"traceEvents\":[\n",
		PACKAGE_VERSION);
	for (int k = 0; k < n; k++)
		if (export_one(f, logs[k], k + 1, mark[k], &first) < 0) {
			fclose(f);
			return EXIT_USAGE;
		}
	fprintf(f, "\n]}\n");
	if (fclose(f) != 0)
		die("export: cannot write %s: %s", out, strerror(errno));
	return 0;
}
