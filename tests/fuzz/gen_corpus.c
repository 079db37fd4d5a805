/*
 * gen_corpus.c - writes the log reader's seed corpus (tests/fuzz/corpus/)
 * with the real writer, then damages copies the way crashes and disks do.
 *
 *   gen_corpus DIR      ('make fuzz-corpus' regenerates the checked-in one)
 *
 * Seeds: a header-only log; every event kind with exact, lower and unknown
 * icounts and the optional fields present and absent; a log spanning two
 * blocks (first/middle/last fragments, multi-byte lengths); a kind this
 * reader does not know; and damaged copies: a torn tail, a flipped byte in
 * a batch (checksum), a bad record length, a zeroed hole up to block 1.  Only
 * the end event's wall time varies between runs.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "log_format.h"

static const char *dir;

static void __attribute__((noreturn))
die(const char *what, const char *detail)
{
	fprintf(stderr, "gen_corpus: %s: %s\n", what, detail);
	exit(1);
}

static const char *
path_of(const char *name)
{
	static char p[4096];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return p;
}

static struct log_writer *
start(const char *name, int argc)
{
	static char *argv[] = { "qemu-system-x86_64", "-icount", "shift=3,sleep=off", "-m", "64" };
	struct log_header h;
	char err[512];

	memset(&h, 0, sizeof(h));
	strcpy(h.bhrr_version, "0.1.0");
	strcpy(h.build_id, "0123456789abcdef0123456789abcdef01234567");
	strcpy(h.qemu_version, "10.0.0");
	strcpy(h.exe, "/usr/bin/qemu-system-x86_64");
	strcpy(h.host, "seed");
	h.icount_mode = 1;
	h.icount_shift = 3;
	h.start_ns = 1700000000000000000ull;
	h.pid = 4242;
	h.argc = argc;
	for (int i = 0; i < argc; i++)
		h.argv[i] = argv[i];

	struct log_writer *w = log_writer_open_ex(path_of(name), &h, 0, LOG_W_OVERWRITE, err,
						  sizeof(err));

	if (w == NULL)
		die(name, err);
	return w;
}

static void
finish(struct log_writer *w, const char *name, int64_t ic)
{
	if (log_writer_close(w, ic) < 0)
		die(name, "writer reports an incomplete log");
}

static struct log_event
ev_of(unsigned kind, unsigned how, int64_t icount)
{
	struct log_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.kind = kind;
	ev.icount_how = how;
	ev.icount = icount;
	return ev;
}

/* Every kind once or more, exercising the optional fields and icount forms. */
static int64_t
all_kinds(struct log_writer *w, int64_t ic, int round)
{
	struct log_event e;
	static const char name[] = "aio_bh_cb";
	static const char expect[] = "bh_run ident 2 ordinal 7";
	static const char actual[] = "io_complete req 12";

	e = ev_of(LOG_EV_STRING, LOG_IC_UNKNOWN, 0);
	e.id = 1 + 2 * (uint64_t)round;
	e.text = name;
	e.text_len = sizeof(name) - 1;
	log_writer_append(w, &e);
	e = ev_of(LOG_EV_IDENT, LOG_IC_UNKNOWN, 0);
	e.id = 2 + (uint64_t)round;
	e.cb_off = 0x4a3b20 + (uint64_t)round;
	e.name_id = 1 + 2 * (uint64_t)round;
	log_writer_append(w, &e);
	e = ev_of(LOG_EV_BH_NEW, LOG_IC_EXACT, ic += 10);
	e.ident = 2 + (uint64_t)round;
	e.instance = 1;
	log_writer_append(w, &e);
	e = ev_of(LOG_EV_BH_SCHEDULE, LOG_IC_LOWER, ic += 1000);
	e.ident = 2 + (uint64_t)round;
	e.role = 1;
	e.site = 3;
	log_writer_append(w, &e);
	e = ev_of(LOG_EV_BH_RUN, LOG_IC_EXACT, ic += 33);
	e.ident = 2 + (uint64_t)round;
	e.ordinal = 7;
	log_writer_append(w, &e); /* no flags, no instance */
	e.icount = ic += 5;
	e.flags = LOG_F_AT_ONCE;
	log_writer_append(w, &e); /* flags only */
	e.icount = ic += 5;
	e.flags = 0;
	e.instance = 1;
	log_writer_append(w, &e); /* instance, flags 0 */
	e = ev_of(LOG_EV_IO_SUBMIT, LOG_IC_EXACT, ic += 200);
	e.req = 12 + (uint64_t)round;
	e.op = 1;
	e.offset = 1ull << 33;
	e.bytes = 4096;
	log_writer_append(w, &e);
	e = ev_of(LOG_EV_IO_COMPLETE, LOG_IC_EXACT, ic += 90000);
	e.req = 12 + (uint64_t)round;
	e.ret = 4096;
	log_writer_append(w, &e);
	e.icount = ic += 1;
	e.req = 3;
	e.ret = -5;
	e.flags = LOG_F_AT_ONCE;
	log_writer_append(w, &e); /* negative req delta, error, flags */
	e = ev_of(LOG_EV_WARP, LOG_IC_EXACT, ic += 7);
	e.delta_ns = 1000000;
	log_writer_append(w, &e);
	e.icount = ic;
	e.delta_ns = -250;
	log_writer_append(w, &e);
	e = ev_of(LOG_EV_NESTED_POLL, LOG_IC_UNKNOWN, 0);
	e.role = 2;
	log_writer_append(w, &e);
	e = ev_of(LOG_EV_VM_STOP, LOG_IC_EXACT, ic += 1);
	e.state = 4;
	log_writer_append(w, &e);
	e = ev_of(LOG_EV_VM_RESUME, LOG_IC_EXACT, ic);
	e.state = 9;
	log_writer_append(w, &e);
	e = ev_of(LOG_EV_CHAOS, LOG_IC_LOWER, ic - 3);
	e.decision = 1;
	e.value = -1234567;
	log_writer_append(w, &e);
	e = ev_of(LOG_EV_DIVERGE, LOG_IC_EXACT, ic += 2);
	e.index = 19;
	e.text = expect;
	e.text_len = sizeof(expect) - 1;
	e.text2 = actual;
	e.text2_len = sizeof(actual) - 1;
	log_writer_append(w, &e);
	e = ev_of(LOG_EV_BH_DELETE, LOG_IC_EXACT, ic += 4);
	e.ident = 2 + (uint64_t)round;
	e.instance = 1;
	log_writer_append(w, &e);
	return ic;
}

/* Read @name whole, apply @fn, write it to @out. */
static void
derive(const char *name, const char *out, void (*fn)(uint8_t *buf, size_t *len))
{
	static uint8_t buf[1 << 20];
	int fd = open(path_of(name), O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf));
	size_t len;

	if (n < 0)
		die(name, "cannot read");
	close(fd);
	len = (size_t)n;
	fn(buf, &len);
	fd = open(path_of(out), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, buf, len) != (ssize_t)len || close(fd) < 0)
		die(out, "cannot write");
}

static void
torn(uint8_t *buf, size_t *len)
{
	(void)buf;
	*len -= 9; /* inside the last batch */
}

/* The second physical record: the first batch after the header. */
static size_t
second_record(const uint8_t *buf)
{
	uint16_t l;

	memcpy(&l, buf + 4, 2);
	return LOG_HEADER + l;
}

static void
flip(uint8_t *buf, size_t *len)
{
	(void)len;
	buf[second_record(buf) + LOG_HEADER + 20] ^= 0x41;
}

static void
bad_length(uint8_t *buf, size_t *len)
{
	uint16_t huge = 60000;

	(void)len;
	memcpy(buf + second_record(buf) + 4, &huge, 2);
}

/* Zero the tail of block 0 from the third record on: a hole, then block 1. */
static void
hole(uint8_t *buf, size_t *len)
{
	size_t at = second_record(buf);
	uint16_t l;

	memcpy(&l, buf + at + 4, 2);
	at += LOG_HEADER + l;
	if (*len > LOG_BLOCK)
		memset(buf + at, 0, LOG_BLOCK - at);
}

int
main(int argc, char **argv)
{
	struct log_writer *w;
	int64_t ic = 0;

	if (argc != 2)
		die("usage", "gen_corpus DIR");
	dir = argv[1];
	mkdir(dir, 0755);

	/* a run that ended before any event */
	w = start("header-only.bhlog", 5);
	finish(w, "header-only.bhlog", 0);

	/* every kind, in two flushed batches */
	w = start("all-kinds.bhlog", 3);
	ic = all_kinds(w, 1000, 0);
	log_writer_flush(w);
	ic = all_kinds(w, ic, 1);
	finish(w, "all-kinds.bhlog", ic);

	/* an ordering-mode run: no icounts at all */
	w = start("ordering.bhlog", 1);
	for (int i = 0; i < 40; i++) {
		struct log_event e = ev_of(i % 2 ? LOG_EV_BH_RUN : LOG_EV_BH_SCHEDULE,
					   LOG_IC_UNKNOWN, 0);

		e.ident = 1 + (uint64_t)(i % 3);
		e.ordinal = (uint64_t)i / 2;
		e.role = 1;
		log_writer_append(w, &e);
	}
	finish(w, "ordering.bhlog", 0);

	/* a kind from a newer writer, between known ones */
	w = start("unknown-kind.bhlog", 1);
	{
		struct log_event e = ev_of(LOG_EV_WARP, LOG_IC_EXACT, 10);

		e.delta_ns = 5;
		log_writer_append(w, &e);
		e = ev_of(20, LOG_IC_EXACT, 20);
		log_writer_append(w, &e);
		e = ev_of(LOG_EV_VM_STOP, LOG_IC_EXACT, 30);
		log_writer_append(w, &e);
	}
	finish(w, "unknown-kind.bhlog", 30);

	/* two blocks: a long string (2-byte lengths), then a batch in fragments */
	w = start("two-blocks.bhlog", 5);
	{
		static char text[LOG_TEXT_MAX];
		struct log_event e = ev_of(LOG_EV_STRING, LOG_IC_UNKNOWN, 0);

		memset(text, 'x', sizeof(text));
		e.id = 100;
		e.text = text;
		e.text_len = sizeof(text);
		log_writer_append(w, &e);
		log_writer_flush(w);
		for (int i = 0; i < 230; i++)
			ic = all_kinds(w, ic, i % 4);
	}
	finish(w, "two-blocks.bhlog", ic);

	derive("all-kinds.bhlog", "torn-tail.bhlog", torn);
	derive("all-kinds.bhlog", "damaged-batch.bhlog", flip);
	derive("all-kinds.bhlog", "bad-length.bhlog", bad_length);
	derive("two-blocks.bhlog", "hole.bhlog", hole);
	return 0;
}
