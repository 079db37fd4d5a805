/*
 * bhrr-test-tool.c - makes and damages logs for the shell tests.
 *
 *   gen LOG N SEED [FSIZE_LIMIT]  a synthetic run shaped like disk I/O: per
 *                                 command an io_submit, a worker bh_schedule,
 *                                 a bh_run, an io_complete and sometimes a
 *                                 warp; FSIZE_LIMIT caps the file size so
 *                                 the writer hits a write error mid-run
 *   stream LOG [N]                append an event every 0.1 ms (icount: its
 *                                 ordinal) until killed; with N, stop after N,
 *                                 wait until the flusher put them all on disk,
 *                                 say "on disk: N" and wait to be killed
 *   unknown-kind LOG              a log holding an event of kind 31
 *   truncate LOG BYTES            cut the file to BYTES
 *   setbyte LOG OFFSET VALUE      overwrite one byte
 *   flip LOG OFFSET               invert one byte
 *   splice A B OFFSET OUT         A's first OFFSET bytes, then B from OFFSET
 *   size LOG                      print the file size
 *   tamper IN OUT SEQ FIELD DELTA rewrite IN to OUT through the reader and
 *                                 writer, adding DELTA to FIELD (icount,
 *                                 req or ident) of event SEQ; FIELD byte:
 *                                 adding 1 to byte DELTA of its bytes (a
 *                                 console byte, a frame)
 *   build-id IN OUT ID            rewrite IN to OUT with the header's QEMU
 *                                 build-id set to ID (a foreign build's log)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static void __attribute__((noreturn))
fail(const char *msg)
{
	fprintf(stderr, "bhrr-test-tool: %s\n", msg);
	exit(2);
}

static uint64_t rng;

static uint64_t
next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void
fill_header(struct log_header *h, char **argv, int argc)
{
	memset(h, 0, sizeof(*h));
	strcpy(h->bhrr_version, "test");
	strcpy(h->build_id, "0123456789abcdef0123456789abcdef01234567");
	strcpy(h->qemu_version, "0.0.0 (bhrr-test-tool)");
	strcpy(h->exe, "/usr/bin/qemu-system-x86_64");
	strcpy(h->host, "test-host");
	h->icount_mode = 1;
	h->start_ns = (uint64_t)time(NULL) * 1000000000ull;
	h->pid = (uint64_t)getpid();
	h->argc = argc < LOG_ARGV_MAX ? argc : LOG_ARGV_MAX;
	for (int i = 0; i < h->argc; i++)
		h->argv[i] = argv[i];
}

static struct log_writer *
open_writer(const char *path, unsigned flush_ms, char **argv, int argc)
{
	struct log_header h;
	char err[512];
	struct log_writer *w;

	fill_header(&h, argv, argc);
	w = log_writer_open(path, &h, flush_ms, err, sizeof(err));
	if (w == NULL)
		fail(err);
	return w;
}

static void
define(struct log_writer *w, unsigned id, const char *name, uint64_t cb_off)
{
	struct log_event ev = { 0 };

	ev.kind = LOG_EV_STRING;
	ev.icount_how = LOG_IC_UNKNOWN;
	ev.id = id;
	ev.text = name;
	ev.text_len = strlen(name);
	log_writer_append(w, &ev);
	ev.kind = LOG_EV_IDENT;
	ev.name_id = id;
	ev.cb_off = cb_off;
	log_writer_append(w, &ev);
}

static int
cmd_gen(int argc, char **argv)
{
	if (argc < 4)
		fail("usage: gen LOG N SEED [FSIZE_LIMIT]");
	long n = atol(argv[2]);

	rng = strtoull(argv[3], NULL, 0) | 1;
	if (argc > 4) {
		struct rlimit rl = { (rlim_t)atol(argv[4]), (rlim_t)atol(argv[4]) };

		signal(SIGXFSZ, SIG_IGN); /* get EFBIG instead of dying */
		setrlimit(RLIMIT_FSIZE, &rl);
	}
	char *qargv[] = { "qemu-system-x86_64", "-icount", "shift=0,sleep=off", "-kernel", "g.elf" };
	struct log_writer *w = open_writer(argv[1], 0, qargv, 5);
	int64_t ic = 1000000;
	struct log_event ev;

	define(w, 1, "thread_pool_completion_bh", 0x982000);
	define(w, 2, "ide_restart_bh", 0x71a000);
	for (long i = 0; i < n; i++) {
		memset(&ev, 0, sizeof(ev));
		ic += 2000 + (int64_t)(next_rand() % 50000);
		ev.kind = LOG_EV_IO_SUBMIT;
		ev.icount = ic;
		ev.req = (uint64_t)i;
		ev.op = next_rand() % 2;
		ev.offset = (next_rand() % 4096) * 512;
		ev.bytes = 512u << (next_rand() % 4);
		log_writer_append(w, &ev);

		memset(&ev, 0, sizeof(ev));
		ev.kind = LOG_EV_BH_SCHEDULE;
		ev.icount_how = LOG_IC_LOWER;
		ev.icount = ic;
		ev.ident = 1;
		ev.role = 2;
		log_writer_append(w, &ev);

		ic += 100000 + (int64_t)(next_rand() % 400000);
		if (next_rand() % 4 == 0) {
			memset(&ev, 0, sizeof(ev));
			ev.kind = LOG_EV_WARP;
			ev.icount = ic;
			ev.delta_ns = 534 + (int64_t)(next_rand() % 100000);
			log_writer_append(w, &ev);
		}
		memset(&ev, 0, sizeof(ev));
		ev.kind = LOG_EV_BH_RUN;
		ev.icount = ic;
		ev.ident = 1;
		ev.ordinal = (uint64_t)i;
		log_writer_append(w, &ev);

		memset(&ev, 0, sizeof(ev));
		ev.kind = LOG_EV_IO_COMPLETE;
		ev.icount = ic;
		ev.req = (uint64_t)i;
		ev.ret = 0;
		log_writer_append(w, &ev);
	}
	uint64_t dropped = log_writer_dropped(w);
	int rc = log_writer_close(w, ic);

	printf("gen: %ld commands, %s, %llu events dropped\n", n,
	       rc == 0 ? "complete" : "incomplete", (unsigned long long)dropped);
	return 0;
}

/* Events readable in @path now (a fresh reader each time). */
static long
count_events(const char *path)
{
	char err[256];
	int code;
	struct log_reader *r = log_reader_open(path, &code, err, sizeof(err));
	struct log_event ev;
	long n = 0;

	if (r == NULL)
		return -1;
	while (log_reader_next(r, &ev) == 1)
		n += ev.kind == LOG_EV_WARP;
	log_reader_close(r);
	return n;
}

/*
 * stream LOG [N]: append warps whose icount is their ordinal, one every
 * 0.1 ms, through a writer with a 50 ms flusher and no explicit flush.
 * With N: after N events, wait until the flusher has put all N on disk
 * (read back), print "on disk: N" and wait to be killed.
 */
static int
cmd_stream(int argc, char **argv)
{
	if (argc < 2)
		fail("usage: stream LOG [N]");
	char *qargv[] = { "stream" };
	struct log_writer *w = open_writer(argv[1], 50, qargv, 1);
	long n = argc > 2 ? atol(argv[2]) : -1;
	struct log_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.kind = LOG_EV_WARP;
	ev.delta_ns = 1;
	for (long i = 0; n < 0 || i < n; i++) {
		ev.icount = i;
		log_writer_append(w, &ev);
		usleep(100);
	}
	while (count_events(argv[1]) < n)
		usleep(10000);
	printf("on disk: %ld\n", n);
	fflush(stdout);
	for (;;)
		pause();
}

static int
cmd_unknown_kind(int argc, char **argv)
{
	if (argc < 2)
		fail("usage: unknown-kind LOG");
	char *qargv[] = { "unknown-kind" };
	struct log_writer *w = open_writer(argv[1], 0, qargv, 1);
	struct log_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.kind = LOG_EV_WARP;
	ev.icount = 10;
	ev.delta_ns = 5;
	log_writer_append(w, &ev);
	ev.kind = 31; /* a kind from the future (the last one a head byte holds): empty body */
	ev.icount = 20;
	log_writer_append(w, &ev);
	ev.kind = LOG_EV_WARP;
	ev.icount = 30;
	log_writer_append(w, &ev);
	return log_writer_close(w, 30) == 0 ? 0 : 1;
}

static void
read_file(const char *path, unsigned char **buf, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct stat st;

	if (f == NULL || fstat(fileno(f), &st) < 0)
		fail(strerror(errno));
	*len = (size_t)st.st_size;
	*buf = malloc(*len + 1);
	if (*buf == NULL || fread(*buf, 1, *len, f) != *len)
		fail("short read");
	fclose(f);
}

/*
 * Rewrite log @in to @out through the reader and writer: under build-id
 * @build_id (NULL: the same), adding @delta to @field of event @seq (@field
 * NULL: none).  Whether event @seq was seen.
 */
static int
rewrite_log(const char *in, const char *out, const char *build_id, uint64_t seq,
	    const char *field, int64_t delta)
{
	char err[512];
	int code, found = 0;
	struct log_event ev;
	int64_t end_icount = 0;
	struct log_reader *r = log_reader_open(in, &code, err, sizeof(err));

	if (r == NULL)
		fail(err);
	struct log_header h = *log_reader_header(r);

	if (build_id)
		snprintf(h.build_id, sizeof(h.build_id), "%s", build_id);
	struct log_writer *w = log_writer_open(out, &h, 0, err, sizeof(err));

	if (w == NULL)
		fail(err);
	while (log_reader_next(r, &ev) == 1) {
		if (ev.kind == LOG_EV_END) {
			end_icount = ev.icount;
			continue;
		}
		if (field && ev.seq == seq) {
			found = 1;
			if (strcmp(field, "icount") == 0)
				ev.icount += delta;
			else if (strcmp(field, "req") == 0)
				ev.req += (uint64_t)delta;
			else if (strcmp(field, "ident") == 0)
				ev.ident += (uint64_t)delta;
			else if (strcmp(field, "byte") == 0) {
				static char copy[LOG_TEXT_MAX];

				if (ev.text == NULL || delta < 0 || (size_t)delta >= ev.text_len)
					fail("the event has no such byte");
				memcpy(copy, ev.text, ev.text_len);
				copy[delta]++;
				ev.text = copy;
			}
			else
				fail("FIELD must be icount, req, ident or byte");
		}
		log_writer_append(w, &ev);
	}
	log_reader_close(r);
	if (log_writer_close(w, end_icount) < 0)
		fail("cannot write the rewritten log");
	return found;
}

/* tamper IN OUT SEQ FIELD DELTA */
static int
cmd_tamper(int argc, char **argv)
{
	if (argc != 6)
		fail("usage: tamper IN OUT SEQ icount|req|ident|byte DELTA");
	if (!rewrite_log(argv[1], argv[2], NULL, strtoull(argv[3], NULL, 0), argv[4],
			 strtoll(argv[5], NULL, 0)))
		fail("no event with that sequence number");
	return 0;
}

/* build-id IN OUT ID: the same events under a header naming another build */
static int
cmd_build_id(int argc, char **argv)
{
	if (argc != 4)
		fail("usage: build-id IN OUT ID");
	rewrite_log(argv[1], argv[2], argv[3], 0, NULL, 0);
	return 0;
}

static void
write_file(const char *path, const unsigned char *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	if (f == NULL || fwrite(buf, 1, len, f) != len || fclose(f) != 0)
		fail(strerror(errno));
}

int
main(int argc, char **argv)
{
	unsigned char *a, *b;
	size_t la, lb;

	if (argc < 2)
		fail("usage: bhrr-test-tool gen|stream|unknown-kind|truncate|setbyte|flip|splice|size ...");
	const char *cmd = argv[1];

	argc--;
	argv++;
	if (strcmp(cmd, "gen") == 0)
		return cmd_gen(argc, argv);
	if (strcmp(cmd, "stream") == 0)
		return cmd_stream(argc, argv);
	if (strcmp(cmd, "unknown-kind") == 0)
		return cmd_unknown_kind(argc, argv);
	if (strcmp(cmd, "tamper") == 0)
		return cmd_tamper(argc, argv);
	if (strcmp(cmd, "build-id") == 0)
		return cmd_build_id(argc, argv);
	if (strcmp(cmd, "truncate") == 0 && argc == 3)
		return truncate(argv[1], atol(argv[2])) == 0 ? 0 : 1;
	if (strcmp(cmd, "size") == 0 && argc == 2) {
		read_file(argv[1], &a, &la);
		printf("%zu\n", la);
		free(a);
		return 0;
	}
	if ((strcmp(cmd, "setbyte") == 0 && argc == 4) || (strcmp(cmd, "flip") == 0 && argc == 3)) {
		size_t off = strtoul(argv[2], NULL, 0);

		read_file(argv[1], &a, &la);
		if (off >= la)
			fail("offset beyond the end of the file");
		a[off] = cmd[0] == 'f' ? (unsigned char)~a[off] : (unsigned char)strtoul(argv[3], NULL, 0);
		write_file(argv[1], a, la);
		free(a);
		return 0;
	}
	if (strcmp(cmd, "splice") == 0 && argc == 5) {
		size_t off = strtoul(argv[3], NULL, 0);

		read_file(argv[1], &a, &la);
		read_file(argv[2], &b, &lb);
		if (off > la || off > lb)
			fail("offset beyond the end of a file");
		memcpy(b, a, off);
		write_file(argv[4], b, lb);
		free(a);
		free(b);
		return 0;
	}
	fail("unknown command or wrong arguments");
}
