/*
 * bench_log.c - cost of the event log, measured in one run.
 *
 *   bench_log DIR           writer ns/event, reader events/s, bytes/event
 *                           by kind for a synthetic disk-I/O-shaped stream
 *   bench_log --only N DIR  append N io_complete events and nothing else
 *                           (for callgrind: instructions per append)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static struct log_writer *
open_log(const char *path)
{
	struct log_header h;
	char err[256];
	struct log_writer *w;

	memset(&h, 0, sizeof(h));
	w = log_writer_open(path, &h, 50, err, sizeof(err));
	if (w == NULL) {
		fprintf(stderr, "bench_log: %s\n", err);
		exit(1);
	}
	return w;
}

/* One disk command: submit, worker schedule, (warp), run, complete. */
static int
command(struct log_writer *w, long i, int64_t *ic, unsigned *seed)
{
	struct log_event ev;
	int n = 4;

	memset(&ev, 0, sizeof(ev));
	*ic += 2000 + rand_r(seed) % 50000;
	ev.kind = LOG_EV_IO_SUBMIT;
	ev.icount = *ic;
	ev.req = (uint64_t)i;
	ev.offset = (uint64_t)(rand_r(seed) % 4096) * 512;
	ev.bytes = 4096;
	log_writer_append(w, &ev);
	memset(&ev, 0, sizeof(ev));
	ev.kind = LOG_EV_BH_SCHEDULE;
	ev.icount_how = LOG_IC_LOWER;
	ev.icount = *ic;
	ev.ident = 1;
	ev.role = 2;
	log_writer_append(w, &ev);
	*ic += 100000 + rand_r(seed) % 400000;
	if (rand_r(seed) % 4 == 0) {
		memset(&ev, 0, sizeof(ev));
		ev.kind = LOG_EV_WARP;
		ev.icount = *ic;
		ev.delta_ns = 534;
		log_writer_append(w, &ev);
		n++;
	}
	memset(&ev, 0, sizeof(ev));
	ev.kind = LOG_EV_BH_RUN;
	ev.icount = *ic;
	ev.ident = 1;
	ev.ordinal = (uint64_t)i;
	log_writer_append(w, &ev);
	memset(&ev, 0, sizeof(ev));
	ev.kind = LOG_EV_IO_COMPLETE;
	ev.icount = *ic;
	ev.req = (uint64_t)i;
	log_writer_append(w, &ev);
	return n;
}

int
main(int argc, char **argv)
{
	char path[512];

	if (argc == 4 && strcmp(argv[1], "--only") == 0) {
		long n = atol(argv[2]);
		struct log_event ev;

		snprintf(path, sizeof(path), "%s/only.bhlog", argv[3]);
		struct log_writer *w = open_log(path);

		memset(&ev, 0, sizeof(ev));
		ev.kind = LOG_EV_IO_COMPLETE;
		for (long i = 0; i < n; i++) {
			ev.icount += 300000;
			ev.req = (uint64_t)i;
			log_writer_append(w, &ev);
		}
		log_writer_close(w, ev.icount);
		unlink(path);
		return 0;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: bench_log DIR | bench_log --only N DIR\n");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/bench.bhlog", argv[1]);

	const long cmds = 200000;
	unsigned seed = 1;
	int64_t ic = 0;
	long events = 0;
	struct log_writer *w = open_log(path);
	double t0 = now();

	for (long i = 0; i < cmds; i++)
		events += command(w, i, &ic, &seed);
	double t1 = now();

	log_writer_close(w, ic);
	double t2 = now();

	char err[256];
	int code;
	struct log_reader *r = log_reader_open(path, &code, err, sizeof(err));
	struct log_event ev;
	long read = 0;
	size_t bytes[LOG_EV_COUNT] = { 0 }, count[LOG_EV_COUNT] = { 0 };

	if (r == NULL) {
		fprintf(stderr, "bench_log: %s\n", err);
		return 1;
	}
	while (log_reader_next(r, &ev) == 1) {
		read++;
		if (ev.kind < LOG_EV_COUNT) {
			bytes[ev.kind] += ev.wire_len;
			count[ev.kind]++;
		}
	}
	double t3 = now();
	unsigned long long size = log_reader_file_size(r);

	log_reader_close(r);
	printf("event log, synthetic disk I/O: %ld commands, %ld events, %llu bytes\n", cmds,
	       events, size);
	printf("  writer: %.1f ns/event appending (%.1f ns/event including close and fsync)\n",
	       (t1 - t0) * 1e9 / (double)events, (t2 - t0) * 1e9 / (double)events);
	printf("  reader: %.2f M events/s\n", (double)read / (t3 - t2) / 1e6);
	printf("  on disk: %.2f bytes/event, %.2f bytes per I/O command (QEMU native rr: ~1,700)\n",
	       (double)size / (double)events, (double)size / (double)cmds);
	for (unsigned k = 1; k < LOG_EV_COUNT; k++)
		if (count[k])
			printf("    %-12s %.2f bytes/event in batches\n", log_kind_name(k),
			       (double)bytes[k] / (double)count[k]);
	unlink(path);
	return 0;
}
