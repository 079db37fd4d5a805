/*
 * cmd_export.c - bhrr export --format=chrome: logs as Chrome Trace Event
 * JSON (Perfetto, chrome://tracing), a process per log, a track per role,
 * flows from a BH's scheduling to its run and from a request's submission
 * to its completion; with two logs, the first divergence as diff finds it
 * (action_list.h) is marked in each.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "action_list.h"
#include "cmd.h"
#include "grow.h"
#include "log.h"
#include "open_log.h"

#define EXPORT_USAGE "usage: bhrr export --format=chrome LOG... -o TRACE.json"
#define EXPORT_MAX_LOGS 16

static const char *const role_tracks[] = { "vCPU", "main loop", "thread-pool workers", "other" };

struct flow {
	uint64_t ident;
	uint64_t id;
};

/* One log being written into the trace. */
struct trace {
	FILE *f;
	int *first;              /* no trace event written yet (shared by the logs) */
	int pid;                 /* the log's process in the trace */
	const struct log_reader *r;
	struct flow *pending;    /* bh_schedules waiting for their run */
	size_t n_pending, cap_pending;
	uint64_t next_flow;
};

/* Start a trace event: the separator the one before needs. */
static FILE *
trace_next(struct trace *t)
{
	if (!*t->first)
		fputs(",\n", t->f);
	*t->first = 0;
	return t->f;
}

/* The process and its role tracks. */
static void
trace_process(struct trace *t, const char *path, const struct log_header *h)
{
	char name[600];

	snprintf(name, sizeof(name), "%s (QEMU %s)", path, h->qemu_version);
	fprintf(trace_next(t), "{\"ph\":\"M\",\"pid\":%d,\"name\":\"process_name\",\"args\":{\"name\":",
		t->pid);
	json_cstr(t->f, name);
	fprintf(t->f, "}}");
	for (int k = 0; k < 4; k++) {
		fprintf(trace_next(t), "{\"ph\":\"M\",\"pid\":%d,\"tid\":%d,\"name\":\"thread_name\",\"args\":{\"name\":\"%s\"}}",
			t->pid, k + 1, role_tracks[k]);
		fprintf(trace_next(t), "{\"ph\":\"M\",\"pid\":%d,\"tid\":%d,\"name\":\"thread_sort_index\",\"args\":{\"sort_index\":%d}}",
			t->pid, k + 1, k);
	}
}

/* @ev's label and track (tid); @name: its callback's name, or NULL. */
static int
event_label(const struct log_event *ev, const char *kind, const char *name, char *label,
	    size_t len)
{
	int tid = ev->icount_how == LOG_IC_EXACT ? 1 : 2;

	switch (ev->kind) {
	case LOG_EV_BH_SCHEDULE:
		tid = ev->role < 4 ? (int)ev->role + 1 : 4;
		snprintf(label, len, "schedule %s", name ? name : "?");
		break;
	case LOG_EV_BH_RUN:
		snprintf(label, len, "%s", name ? name : "?");
		break;
	case LOG_EV_IO_SUBMIT:
		tid = 1;
		snprintf(label, len, "submit request %" PRIu64, ev->req);
		break;
	case LOG_EV_IO_COMPLETE:
		snprintf(label, len, "complete request %" PRIu64, ev->req);
		break;
	case LOG_EV_WARP:
		tid = 1;
		snprintf(label, len, "warp +%" PRId64 " ns", ev->delta_ns);
		break;
	case LOG_EV_DIVERGE:
		snprintf(label, len, "DIVERGENCE at recorded event #%" PRIu64, ev->index);
		break;
	case LOG_EV_CHR_READ:
		snprintf(label, len, "console input: %zu bytes to frontend %" PRIu64, ev->text_len,
			 ev->id);
		break;
	case LOG_EV_RNG_READ:
		snprintf(label, len, "entropy: %zu bytes to device %" PRIu64, ev->text_len, ev->id);
		break;
	case LOG_EV_CHR_EVENT:
		snprintf(label, len, "console event %s to frontend %" PRIu64,
			 ev->text_len ? log_chr_event_name((uint8_t)ev->text[0]) : "?", ev->id);
		break;
	case LOG_EV_NET_RECV:
		snprintf(label, len, "network: a %zu-byte frame to NIC %" PRIu64, ev->text_len,
			 ev->id & 0xffffffffu);
		break;
	case LOG_EV_MONITOR:
		snprintf(label, len, "monitor: %.*s", (int)(ev->text_len < 120 ? ev->text_len : 120),
			 ev->text);
		break;
	case LOG_EV_HOST_TIMER:
		snprintf(label, len, "host-clock timer %" PRIu64 " fired", ev->id);
		break;
	default:
		snprintf(label, len, "%s", kind);
		break;
	}
	return tid;
}

/* @ev as a slice (bh_run, io_complete) or an instant, with its fields as args. */
static void
trace_event(struct trace *t, const struct log_event *ev, const char *kind, int tid, double ts,
	    const char *label, uint64_t cb)
{
	FILE *f = trace_next(t);
	int span = ev->kind == LOG_EV_BH_RUN || ev->kind == LOG_EV_IO_COMPLETE;

	fprintf(f, "{\"ph\":\"%s\",\"pid\":%d,\"tid\":%d,\"ts\":%.3f,%s\"cat\":\"%s\",\"name\":",
		span ? "X" : "i", t->pid, tid, ts, span ? "\"dur\":0.001," : "\"s\":\"t\",", kind);
	json_cstr(f, label);
	fprintf(f, ",\"args\":{\"seq\":%" PRIu64 ",\"icount\":", ev->seq);
	if (ev->icount_how == LOG_IC_UNKNOWN)
		fprintf(f, "null");
	else
		fprintf(f, "%" PRId64, ev->icount);
	fprintf(f, ",\"icount_exact\":%s", ev->icount_how == LOG_IC_EXACT ? "true" : "false");
	if (ev->kind == LOG_EV_BH_RUN || ev->kind == LOG_EV_BH_SCHEDULE)
		fprintf(f, ",\"cb_off\":%" PRIu64, cb);
	if (ev->kind == LOG_EV_IO_SUBMIT || ev->kind == LOG_EV_IO_COMPLETE)
		fprintf(f, ",\"req\":%" PRIu64, ev->req);
	if (ev->kind == LOG_EV_WARP)
		fprintf(f, ",\"delta_ns\":%" PRId64, ev->delta_ns);
	if (ev->kind == LOG_EV_DIVERGE) {
		fprintf(f, ",\"expected\":");
		json_cstr(f, ev->text ? ev->text : "");
	}
	fprintf(f, "}}");
}

/* One end of a flow: "s" starts it, "f" ends it. */
static void
trace_flow(struct trace *t, const char *ph, int tid, double ts, const char *name, uint64_t id)
{
	fprintf(trace_next(t), "{\"ph\":\"%s\",%s\"pid\":%d,\"tid\":%d,\"ts\":%.3f,\"cat\":\"flow\","
			       "\"name\":\"%s\",\"id\":%" PRIu64 "}",
		ph, ph[0] == 'f' ? "\"bp\":\"e\"," : "", t->pid, tid, ts, name,
		(uint64_t)t->pid << 40 | id);
}

/* Flows: a bh_schedule to the next run of the same callback; io_submit to its completion. */
static void
trace_flows(struct trace *t, const struct log_event *ev, int tid, double ts)
{
	if (ev->kind == LOG_EV_BH_SCHEDULE) {
		if (GROW(t->pending, t->n_pending, t->cap_pending) < 0)
			die("out of memory");
		t->pending[t->n_pending++] = (struct flow){ ev->ident, t->next_flow };
		trace_flow(t, "s", tid, ts, "bh", t->next_flow++);
	} else if (ev->kind == LOG_EV_BH_RUN) {
		for (size_t i = 0; i < t->n_pending; i++)
			if (t->pending[i].ident == ev->ident) {
				trace_flow(t, "f", tid, ts, "bh", t->pending[i].id);
				memmove(&t->pending[i], &t->pending[i + 1],
					(t->n_pending - i - 1) * sizeof(*t->pending));
				t->n_pending--;
				break;
			}
	} else if (ev->kind == LOG_EV_IO_SUBMIT || ev->kind == LOG_EV_IO_COMPLETE) {
		trace_flow(t, ev->kind == LOG_EV_IO_SUBMIT ? "s" : "f", tid, ts, "io",
			   (uint64_t)1 << 39 | ev->req);
	}
}

/*
 * The log @path as process @pid of the trace in @f; @mark_seq: the event to
 * mark as the first divergence (0: none).  0, or -1 if it cannot be read.
 */
static int
export_one(FILE *f, const char *path, int pid, uint64_t mark_seq, int *first)
{
	struct log_reader *r = open_log(path, "export", NULL);
	struct trace t = { f, first, pid, r, NULL, 0, 0, 1 };
	struct log_event ev;

	if (r == NULL)
		return -1;
	trace_process(&t, path, log_reader_header(r));
	while (log_reader_next(r, &ev) == 1) {
		const char *kind = log_kind_name(ev.kind), *name = NULL;
		uint64_t cb = 0;
		char label[256];
		/* virtual time in microseconds at shift=0: one instruction, one ns */
		double ts = ev.icount_how == LOG_IC_UNKNOWN ? (double)ev.seq : (double)ev.icount / 1000.0;

		if (kind == NULL || ev.kind == LOG_EV_STRING || ev.kind == LOG_EV_IDENT)
			continue;
		if (ev.kind == LOG_EV_BH_RUN || ev.kind == LOG_EV_BH_SCHEDULE)
			log_reader_ident(r, ev.ident, &cb, &name);
		int tid = event_label(&ev, kind, name, label, sizeof(label));

		trace_event(&t, &ev, kind, tid, ts, label, cb);
		trace_flows(&t, &ev, tid, ts);
		if (mark_seq && ev.seq == mark_seq)
			fprintf(trace_next(&t), "{\"ph\":\"i\",\"s\":\"g\",\"pid\":%d,\"tid\":%d,\"ts\":%.3f,\"cat\":\"bhrr\",\"name\":\"first divergence between the runs\"}",
				pid, tid, ts);
	}
	if (log_reader_damage_count(r) > 0)
		fprintf(stderr, "bhrr: export: warning: %s is damaged; exported what could be read\n",
			path);
	free(t.pending);
	log_reader_close(r);
	return 0;
}

/* Into @mark, the sequence number of the first divergence in each of two logs. */
static int
mark_divergence(const char *const logs[2], uint64_t mark[2])
{
	struct action_list as[2];

	if (action_list_load(&as[0], logs[0], "export", 1) < 0 ||
	    action_list_load(&as[1], logs[1], "export", 1) < 0)
		return -1;
	long d = action_list_first_difference(&as[0], &as[1]);

	for (int k = 0; k < 2; k++) {
		mark[k] = d >= 0 && (size_t)d < as[k].n ? as[k].v[d].a.seq : 0;
		action_list_free(&as[k]);
	}
	return 0;
}

/* bhrr export --format=chrome LOG... -o TRACE.json: 0, or 2 on a usage error or an unreadable log. */
int
cmd_export(int argc, char **argv)
{
	const char *out = NULL, *logs[EXPORT_MAX_LOGS];
	uint64_t mark[EXPORT_MAX_LOGS] = { 0 };
	int n = 0, chrome = 0, first = 1;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--format=chrome") == 0)
			chrome = 1;
		else if (strncmp(argv[i], "--format=", 9) == 0)
			usage_error("export: format '%s' is not known; 'chrome' (Trace Event JSON, opens in "
				    "Perfetto and chrome://tracing) is", argv[i] + 9);
		else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
			out = argv[++i];
		else if (argv[i][0] != '-' && n < EXPORT_MAX_LOGS)
			logs[n++] = argv[i];
		else
			usage_error("export: unexpected '%s' (%s)", argv[i], EXPORT_USAGE);
	}
	if (!chrome)
		usage_error("export: say --format=chrome (%s)", EXPORT_USAGE);
	if (n == 0)
		usage_error("export: no log given (%s)", EXPORT_USAGE);
	if (out == NULL)
		usage_error("export: no output given (-o TRACE.json)");
	if (n == 2 && mark_divergence(logs, mark) < 0)
		return EXIT_USAGE;
	FILE *f = fopen(out, "w");

	if (f == NULL)
		die("export: cannot write '%s': %s", out, strerror(errno));
	fprintf(f, "{\"displayTimeUnit\":\"ns\",\"otherData\":{\"generator\":\"bhrr %s\",\"time\":\"virtual time, 1 us = 1000 instructions at shift=0\"},\"traceEvents\":[\n",
		PACKAGE_VERSION);
	for (int k = 0; k < n; k++)
		if (export_one(f, logs[k], k + 1, mark[k], &first) < 0) {
			fclose(f);
			return EXIT_USAGE;
		}
	fprintf(f, "\n]}\n");
	if (fclose(f) != 0)
		die("export: cannot write '%s': %s", out, strerror(errno));
	return 0;
}
