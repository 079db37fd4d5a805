/*
 * test_log.c - the log reader against LevelDB's checklist, and a seeded
 * round-trip property test of writer and reader.
 *
 * The checklist logs are framed here by hand, by an implementation of the
 * spec (doc/log_format.md) separate from the writer's, so both sides of the
 * format are tested against the document rather than against each other.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "log.h"
#include "log_format.h"
#include "tap.h"

/* ---- a hand framer ---- */

struct img {
	uint8_t buf[8 * LOG_BLOCK];
	size_t len;
};

/* One physical record at the end of @m (caller keeps it inside the block). */
static void
phys(struct img *m, uint8_t type, const uint8_t *payload, size_t len)
{
	uint8_t *p = m->buf + m->len;
	uint16_t l = (uint16_t)len;
	uint32_t sum;

	p[6] = type;
	memcpy(p + 7, payload, len);
	sum = XXH32(p + 6, 1 + len, LOG_SEED);
	memcpy(p, &sum, 4);
	memcpy(p + 4, &l, 2);
	m->len += 7 + len;
}

/* A logical record, fragmented like the spec says. */
static void
logical(struct img *m, const uint8_t *data, size_t len)
{
	int begin = 1;

	do {
		size_t left = LOG_BLOCK - m->len % LOG_BLOCK;

		if (left < LOG_HEADER) {
			memset(m->buf + m->len, 0, left);
			m->len += left;
			left = LOG_BLOCK;
		}
		size_t frag = len < left - LOG_HEADER ? len : left - LOG_HEADER;
		int end = frag == len;

		phys(m, begin && end ? LOG_FULL : begin ? LOG_FIRST : end ? LOG_LAST : LOG_MIDDLE,
		     data, frag);
		data += frag;
		len -= frag;
		begin = 0;
	} while (len > 0);
}

static void
header(struct img *m, unsigned version)
{
	uint8_t h[64];
	size_t n = 0;
	uint16_t v = (uint16_t)version;

	h[n++] = 'H';
	memcpy(h + n, LOG_MAGIC, 8);
	n += 8;
	memcpy(h + n, &v, 2);
	n += 2;
	h[n++] = LOG_H_BUILD_ID;
	h[n++] = 3;
	memcpy(h + n, "abc", 3);
	n += 3;
	m->len = 0;
	logical(m, h, n);
}

/*
 * A batch with @n warp events (icounts first_seq*10, +10, ...) plus, when
 * @pad > 0, one string event of @pad bytes first.  Returns the batch length.
 */
static size_t
batch(uint8_t *b, uint64_t first_seq, int n, size_t pad)
{
	size_t k = 0;

	b[k++] = 'B';
	k += log_put_varint(b + k, first_seq);
	k += log_put_varint(b + k, first_seq * 10);
	if (pad) {
		uint8_t body[8 + LOG_TEXT_MAX];
		size_t bl = 0;

		body[bl++] = 0; /* icount delta */
		body[bl++] = 9; /* string id */
		bl += log_put_varint(body + bl, pad);
		memset(body + bl, 'x', pad);
		bl += pad;
		b[k++] = LOG_EV_STRING;
		k += log_put_varint(b + k, bl);
		memcpy(b + k, body, bl);
		k += bl;
	}
	for (int i = 0; i < n; i++) {
		b[k++] = LOG_EV_WARP;
		b[k++] = 2;
		b[k++] = (uint8_t)log_zigzag(i ? 10 : 0);
		b[k++] = (uint8_t)log_zigzag(7);
	}
	return k;
}

struct result {
	int code;
	int events;
	uint64_t damage, dropped, torn, unknown;
	char err[256];
	char reason[128];
};

static void
on_damage(void *opaque, uint64_t off, uint64_t dropped, const char *reason)
{
	struct result *res = opaque;

	(void)off;
	(void)dropped;
	if (!res->reason[0])
		snprintf(res->reason, sizeof(res->reason), "%s", reason);
}

static struct result
read_img(const struct img *m)
{
	struct result res;
	struct log_event ev;

	memset(&res, 0, sizeof(res));
	struct log_reader *r = log_reader_open_mem(m->buf, m->len, &res.code, res.err, sizeof(res.err));

	if (r == NULL)
		return res;
	log_reader_on_damage(r, on_damage, &res);
	while (log_reader_next(r, &ev) == 1)
		res.events++;
	res.damage = log_reader_damage_count(r);
	res.dropped = log_reader_dropped_bytes(r);
	res.torn = log_reader_torn_tail(r);
	res.unknown = log_reader_unknown_count(r);
	log_reader_close(r);
	return res;
}

static struct img m;
static uint8_t tmp[6 * LOG_BLOCK];

static void
checklist(void)
{
	struct result r;
	size_t n;

	/* empty log: a header and nothing else */
	header(&m, 1);
	r = read_img(&m);
	ok(r.code == 0 && r.events == 0 && r.damage == 0 && r.torn == 0,
	   "empty log: no events, no damage (code %d %s)", r.code, r.err);

	/* a zero-byte file is not a log */
	m.len = 0;
	r = read_img(&m);
	ok(r.code == LOG_E_NOTLOG && strstr(r.err, "empty") != NULL, "zero-byte file: %s", r.err);

	/* fragmentation: a 100 KiB batch spans four blocks */
	header(&m, 1);
	n = batch(tmp, 0, 25000, 0);
	logical(&m, tmp, n);
	r = read_img(&m);
	ok(m.len > 3 * LOG_BLOCK && r.events == 25000 && r.damage == 0,
	   "fragmentation across blocks: %d events back, %llu damage", r.events,
	   (unsigned long long)r.damage);

	/* marginal trailer: exactly 6 (7) bytes left in block 0, then a batch */
	for (size_t gap = 6; gap <= 7; gap++) {
		header(&m, 1);
		/* the payload that leaves @gap bytes: 3 batch bytes, a string event
		 * of 7 + p bytes (128 <= p < 4096), and 4-byte warps */
		size_t want = LOG_BLOCK - gap - m.len - LOG_HEADER;
		size_t p = 200 + (want - 10 - 200) % 4;
		int nw = (int)((want - 10 - p) / 4);

		n = batch(tmp, 0, nw, p);
		ok(n == want, "trailer set-up: batch of %zu bytes (want %zu)", n, want);
		logical(&m, tmp, n);
		n = batch(tmp, (uint64_t)nw + 1, 3, 0);
		logical(&m, tmp, n);
		/* 6 bytes: a zero trailer; 7: a zero-length FIRST fragment */
		ok(m.len > LOG_BLOCK && (gap == 6 ? m.buf[LOG_BLOCK - 6] == 0 && m.buf[LOG_BLOCK - 1] == 0
						 : m.buf[LOG_BLOCK - 1] == LOG_FIRST && m.buf[LOG_BLOCK - 3] == 0),
		   "set-up: %zu bytes left in block 0", gap);
		r = read_img(&m);
		ok(r.events == nw + 4 && r.damage == 0 && r.torn == 0,
		   "marginal trailer of %zu bytes: %d events (want %d), %llu damage", gap, r.events,
		   nw + 4, (unsigned long long)r.damage);
	}

	/* truncated tail: the last record cut in half is a clean end */
	header(&m, 1);
	logical(&m, tmp, batch(tmp, 0, 5, 0));
	size_t whole = m.len;

	logical(&m, tmp, batch(tmp, 5, 50, 0));
	m.len = whole + 60;
	r = read_img(&m);
	ok(r.events == 5 && r.damage == 0 && r.torn == 60, "truncated tail: 5 events, torn %llu",
	   (unsigned long long)r.torn);
	m.len = whole + 3; /* even inside the record header */
	r = read_img(&m);
	ok(r.events == 5 && r.damage == 0 && r.torn == 3, "tail cut inside a record header");

	/* bad length: resync at the next block */
	header(&m, 1);
	size_t bad_at = m.len;

	logical(&m, tmp, batch(tmp, 0, 5, 0));
	memset(m.buf + m.len, 0, LOG_BLOCK - m.len);
	m.len = LOG_BLOCK;
	logical(&m, tmp, batch(tmp, 5, 7, 0));
	uint16_t huge = 60000;

	memcpy(m.buf + bad_at + 4, &huge, 2);
	r = read_img(&m);
	ok(r.events == 7 && r.damage == 1 && strstr(r.reason, "length") != NULL,
	   "bad length: damage reported (%s), the next block's 7 events read", r.reason);

	/* the same in the last, short block: damage, not a torn tail */
	header(&m, 1);
	bad_at = m.len;
	logical(&m, tmp, batch(tmp, 0, 5, 0));
	logical(&m, tmp, batch(tmp, 5, 7, 0));
	memcpy(m.buf + bad_at + 4, &huge, 2);
	r = read_img(&m);
	ok(r.events == 0 && r.damage == 1 && r.torn == 0 && strstr(r.reason, "length") != NULL,
	   "bad length in the last block: damage (%s), not a torn tail (%llu)", r.reason,
	   (unsigned long long)r.torn);

	/* checksum mismatch */
	header(&m, 1);
	logical(&m, tmp, batch(tmp, 0, 5, 0));
	size_t flip_at = m.len - 2;

	memset(m.buf + m.len, 0, LOG_BLOCK - m.len);
	m.len = LOG_BLOCK;
	logical(&m, tmp, batch(tmp, 5, 7, 0));
	m.buf[flip_at] ^= 0x55;
	r = read_img(&m);
	ok(r.events == 7 && r.damage == 1 && strstr(r.reason, "checksum") != NULL,
	   "checksum mismatch: %s; 7 events of the next block read", r.reason);

	/* unexpected fragment types */
	header(&m, 1);
	n = batch(tmp, 0, 3, 0);
	phys(&m, LOG_MIDDLE, tmp, n);
	phys(&m, LOG_FULL, tmp, n);
	r = read_img(&m);
	ok(r.events == 3 && r.damage == 1 && strstr(r.reason, "middle fragment") != NULL,
	   "middle without first: %s", r.reason);
	header(&m, 1);
	phys(&m, LOG_FIRST, tmp, n);
	phys(&m, LOG_FULL, tmp, n);
	r = read_img(&m);
	ok(r.events == 3 && r.damage == 1 && strstr(r.reason, "without its last") != NULL,
	   "first then full: %s", r.reason);
	header(&m, 1);
	phys(&m, 9, tmp, n);
	phys(&m, LOG_FULL, tmp, n);
	r = read_img(&m);
	ok(r.events == 3 && r.damage == 1 && strstr(r.reason, "unknown record type") != NULL,
	   "unknown physical type: %s", r.reason);

	/* unknown record kinds */
	header(&m, 1);
	tmp[0] = 'Z';
	logical(&m, tmp, 10);
	logical(&m, tmp, batch(tmp, 0, 2, 0));
	r = read_img(&m);
	ok(r.events == 2 && r.damage == 1 && strstr(r.reason, "logical record kind") != NULL,
	   "unknown logical kind: %s", r.reason);
	header(&m, 1);
	n = batch(tmp, 0, 2, 0);
	tmp[n++] = 31; /* event kind 31 (the last a head byte holds), 2-byte body */
	tmp[n++] = 2;
	tmp[n++] = 0;
	tmp[n++] = 0;
	logical(&m, tmp, n);
	r = read_img(&m);
	ok(r.events == 3 && r.unknown == 1 && r.damage == 0,
	   "unknown event kind: returned and counted, not damage");

	/* foreign magic, newer version */
	header(&m, 1);
	memcpy(m.buf + 8, "LEVELDB", 7);
	r = read_img(&m);
	ok(r.code == LOG_E_NOTLOG && strstr(r.err, "not a bhrr log"), "foreign magic: %s", r.err);
	header(&m, LOG_VERSION + 2);
	r = read_img(&m);
	char newer[64], ours[64];

	snprintf(newer, sizeof(newer), "log format version %u,", LOG_VERSION + 2);
	snprintf(ours, sizeof(ours), "reads version %u ", LOG_VERSION);
	ok(r.code == LOG_E_VERSION && strstr(r.err, newer) && strstr(r.err, ours),
	   "newer version: %s", r.err);
	header(&m, 1);
	m.buf[20] ^= 1;
	r = read_img(&m);
	ok(r.code == LOG_E_HEADER, "damaged header: %s", r.err);
}

/* ---- round trip ---- */

static uint64_t rng = 88172645463325252ull;

static uint64_t
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static char texts[64][300];

static void
random_event(struct log_event *ev, int64_t *ic)
{
	memset(ev, 0, sizeof(*ev));
	do
		ev->kind = 1 + (unsigned)(rnd() % (LOG_EV_COUNT - 1));
	while (ev->kind == LOG_EV_END); /* all but end */
	ev->icount_how = rnd() % 8 == 0 ? LOG_IC_UNKNOWN : rnd() % 5 == 0 ? LOG_IC_LOWER : LOG_IC_EXACT;
	*ic += (int64_t)(rnd() % 1000000) - (ev->icount_how == LOG_IC_LOWER ? 500000 : 0);
	ev->icount = ev->icount_how == LOG_IC_UNKNOWN ? 0 : *ic;
	ev->id = rnd() % 100;
	ev->ident = rnd() % 50;
	ev->cb_off = rnd() % 0x1000000;
	ev->name_id = rnd() % 100;
	ev->role = rnd() % 4;
	ev->site = rnd() % 10;
	ev->ordinal = rnd() % 100000;
	ev->instance = rnd() % 3 == 0 ? 0 : rnd() % 1000;
	ev->req = rnd() % 100000;
	ev->op = rnd() % 5;
	ev->offset = rnd();
	ev->bytes = rnd() % (1 << 20);
	ev->ret = (int64_t)(rnd() % 200) - 100;
	ev->delta_ns = (int64_t)(rnd() % 100000000) - 1000;
	ev->state = rnd() % 20;
	ev->index = rnd() % 1000000;
	ev->decision = rnd() % 2;
	ev->value = (int64_t)rnd();
	ev->flags = ev->kind == LOG_EV_CHR_READ || ev->kind == LOG_EV_RNG_READ ||
		    ev->kind == LOG_EV_NET_RECV || ev->kind == LOG_EV_CHR_EVENT ||
		    ev->kind == LOG_EV_HOST_TIMER ? rnd() % 4 : 0;
	ev->text = texts[rnd() % 64];
	ev->text_len = strlen(ev->text);
	ev->text2 = texts[rnd() % 64];
	ev->text2_len = strlen(ev->text2);
}

/* Equal in the fields that @kind carries. */
static int
same_event(const struct log_event *a, const struct log_event *b)
{
	if (a->kind != b->kind || a->icount_how != b->icount_how ||
	    (a->icount_how != LOG_IC_UNKNOWN && a->icount != b->icount))
		return 0;
	switch (a->kind) {
	case LOG_EV_STRING:
		return a->id == b->id && a->text_len == b->text_len && !memcmp(a->text, b->text, a->text_len);
	case LOG_EV_IDENT:
		return a->id == b->id && a->cb_off == b->cb_off && a->name_id == b->name_id;
	case LOG_EV_BH_SCHEDULE:
		return a->ident == b->ident && a->role == b->role && a->site == b->site;
	case LOG_EV_BH_RUN:
		return a->ident == b->ident && a->ordinal == b->ordinal && a->instance == b->instance;
	case LOG_EV_BH_NEW:
	case LOG_EV_BH_DELETE:
		return a->ident == b->ident && a->instance == b->instance;
	case LOG_EV_IO_SUBMIT:
		return a->req == b->req && a->op == b->op && a->offset == b->offset && a->bytes == b->bytes;
	case LOG_EV_IO_COMPLETE:
		return a->req == b->req && a->ret == b->ret;
	case LOG_EV_WARP:
		return a->delta_ns == b->delta_ns;
	case LOG_EV_NESTED_POLL:
		return a->role == b->role;
	case LOG_EV_VM_STOP:
	case LOG_EV_VM_RESUME:
		return a->state == b->state;
	case LOG_EV_DIVERGE:
		return a->index == b->index && a->text_len == b->text_len &&
		       !memcmp(a->text, b->text, a->text_len) && a->text2_len == b->text2_len &&
		       !memcmp(a->text2, b->text2, a->text2_len);
	case LOG_EV_CHAOS:
		return a->decision == b->decision && a->value == b->value;
	case LOG_EV_CHR_READ:
	case LOG_EV_RNG_READ:
	case LOG_EV_MONITOR:
	case LOG_EV_HOST_CLOCK:
	case LOG_EV_HOST_TIMER:
	case LOG_EV_NET_RECV:
	case LOG_EV_CHR_EVENT:
	case LOG_EV_FILE_READ:
		return a->id == b->id && a->flags == b->flags && a->text_len == b->text_len &&
		       !memcmp(a->text, b->text, a->text_len);
	default:
		return 1;
	}
}

static void
round_trip(const char *dir)
{
	enum { N = 60000 };
	static struct log_event evs[N];
	char path[512], err[256];
	struct log_header h;
	int64_t ic = 0;
	int code;

	for (int i = 0; i < 64; i++) {
		size_t len = rnd() % (sizeof(texts[i]) - 1);

		for (size_t k = 0; k < len; k++)
			texts[i][k] = (char)(1 + rnd() % 255);
		texts[i][len] = 0;
	}
	memset(&h, 0, sizeof(h));
	strcpy(h.build_id, "feed");
	h.argc = 2;
	h.argv[0] = "qemu";
	h.argv[1] = "-icount";
	snprintf(path, sizeof(path), "%s/rt.bhlog", dir);

	struct log_writer *w = log_writer_open(path, &h, 20, err, sizeof(err));

	if (!ok(w != NULL, "round trip: writer opens (%s)", w ? "" : err))
		return;
	for (int i = 0; i < N; i++) {
		random_event(&evs[i], &ic);
		log_writer_append(w, &evs[i]);
	}
	ok(log_writer_close(w, ic) == 0, "round trip: writer closes complete");

	struct log_reader *r = log_reader_open(path, &code, err, sizeof(err));

	if (!ok(r != NULL, "round trip: reader opens (%s)", r ? "" : err))
		return;
	const struct log_header *rh = log_reader_header(r);

	ok(strcmp(rh->build_id, "feed") == 0 && rh->argc == 2 && strcmp(rh->argv[1], "-icount") == 0,
	   "round trip: header fields come back");

	struct log_event ev;
	int i = 0, bad = -1;

	while (log_reader_next(r, &ev) == 1) {
		if (i < N) {
			if (bad < 0 && (ev.seq != (uint64_t)i || !same_event(&evs[i], &ev))) {
				bad = i;
				diag("event %d: seq %llu kind %u/%u how %u/%u icount %lld/%lld", i,
				     (unsigned long long)ev.seq, evs[i].kind, ev.kind, evs[i].icount_how,
				     ev.icount_how, (long long)evs[i].icount, (long long)ev.icount);
			}
		} else if (ev.kind != LOG_EV_END || !ev.complete || ev.events != N ||
			   ev.icount != ic) {
			bad = i;
		}
		i++;
	}
	ok(i == N + 1 && bad < 0, "round trip: %d random events (+end) read back equal (first bad %d)",
	   i, bad);
	ok(log_reader_damage_count(r) == 0 && log_reader_torn_tail(r) == 0, "round trip: no damage");
	log_reader_close(r);
	unlink(path);
}

/* ---- concurrent appenders ---- */

struct appender {
	struct log_writer *w;
	int id;
};

#define PER_THREAD 50000

static void *
append_main(void *arg)
{
	struct appender *a = arg;
	struct log_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.kind = LOG_EV_CHAOS;
	ev.icount_how = LOG_IC_UNKNOWN;
	ev.decision = (uint64_t)a->id;
	for (int i = 0; i < PER_THREAD; i++) {
		ev.value = i;
		log_writer_append(a->w, &ev);
	}
	return NULL;
}

static void
concurrent(const char *dir)
{
	enum { T = 4 };
	char path[512], err[256];
	struct log_header h;
	pthread_t th[T];
	struct appender ap[T];
	int code;

	memset(&h, 0, sizeof(h));
	snprintf(path, sizeof(path), "%s/mt.bhlog", dir);

	struct log_writer *w = log_writer_open(path, &h, 10, err, sizeof(err));

	for (int i = 0; i < T; i++) {
		ap[i] = (struct appender){ w, i };
		pthread_create(&th[i], NULL, append_main, &ap[i]);
	}
	for (int i = 0; i < T; i++)
		pthread_join(th[i], NULL);
	log_writer_close(w, 0);

	struct log_reader *r = log_reader_open(path, &code, err, sizeof(err));
	struct log_event ev;
	int64_t next[T] = { 0 };
	int in_order = 1, n = 0;

	while (r && log_reader_next(r, &ev) == 1) {
		if (ev.kind != LOG_EV_CHAOS)
			continue;
		n++;
		if (ev.decision >= T || ev.value != next[ev.decision]++)
			in_order = 0;
	}
	ok(r && n == T * PER_THREAD && in_order,
	   "%d threads appending at once: %d events, each thread's in order", T, n);
	log_reader_close(r);
	unlink(path);
}

/* ---- appenders racing the flusher, explicit flushes and seal ---- */

#define MT_THREADS 4
#define MT_EVENTS 20000 /* per thread */

struct mt_appender {
	struct log_writer *w;
	unsigned id;
	int stop_at;       /* append this many, or until *stop when < 0 */
	atomic_int *stop;
	int appended;      /* accepted (nonzero seq, or seq 0 as the first) */
};

static char mt_text[3000];

/* Open @path and append the first event (seq 0), so that 0 means sealed. */
static struct log_writer *
mt_start(const char *path, char *err, size_t errlen)
{
	struct log_header h;
	struct log_event ev;

	memset(&h, 0, sizeof(h));
	memset(&ev, 0, sizeof(ev));
	memset(mt_text, 'q', sizeof(mt_text));
	struct log_writer *w = log_writer_open(path, &h, 1, err, errlen);

	ev.kind = LOG_EV_VM_RESUME;
	ev.icount_how = LOG_IC_UNKNOWN;
	if (w)
		log_writer_append(w, &ev);
	return w;
}

/*
 * Thread @id's event @i: chaos (decision id<<32 | i, value i, exact icount
 * i) mostly; every 5th a string of up to 3000 bytes, so batches fill and
 * appenders flush themselves while the flusher runs.
 */
static void
mt_event(struct log_event *ev, unsigned id, int i)
{
	memset(ev, 0, sizeof(*ev));
	ev->icount_how = LOG_IC_EXACT;
	ev->icount = (int64_t)id * 1000000000 + i;
	if (i % 5 == 4) {
		ev->kind = LOG_EV_STRING;
		ev->id = (uint64_t)id << 32 | (uint64_t)i;
		ev->text = mt_text;
		ev->text_len = (size_t)(i * 37) % sizeof(mt_text);
	} else {
		ev->kind = LOG_EV_CHAOS;
		ev->decision = (uint64_t)id << 32 | (uint64_t)i;
		ev->value = i;
	}
}

static void *
mt_main(void *arg)
{
	struct mt_appender *a = arg;
	struct log_event ev;

	for (int i = 0; a->stop_at < 0 ? !atomic_load(a->stop) : i < a->stop_at; i++) {
		mt_event(&ev, a->id, i);
		if (log_writer_append(a->w, &ev) == 0)
			break; /* sealed: dropped (seq 0 went to mt_start) */
		a->appended++;
		if (a->id == 0 && i % 1000 == 999) {
			log_writer_flush(a->w); /* an explicit flush among appenders */
			(void)log_writer_dropped(a->w);
		}
	}
	return NULL;
}

/* Start MT_THREADS appenders on @w and wait for them all. */
static void
mt_run(struct log_writer *w, pthread_t *th, struct mt_appender *ap)
{
	for (unsigned i = 0; i < MT_THREADS; i++) {
		ap[i] = (struct mt_appender){ w, i, MT_EVENTS, NULL, 0 };
		pthread_create(&th[i], NULL, mt_main, &ap[i]);
	}
	for (int i = 0; i < MT_THREADS; i++)
		pthread_join(th[i], NULL);
}

struct mt_check {
	int n, bad, after_end, end_seen;
	int next[MT_THREADS];
	uint64_t end_events;
	char why[300];
};

/* Read @path back: each thread's events exactly once, in order, then end. */
static struct mt_check
mt_read(const char *path)
{
	struct mt_check c;
	struct log_event ev;
	char err[256];
	int code;
	uint64_t seq = 0;

	memset(&c, 0, sizeof(c));
	struct log_reader *r = log_reader_open(path, &code, err, sizeof(err));

	if (r == NULL) {
		c.bad = 1;
		snprintf(c.why, sizeof(c.why), "reader: %s", err);
		return c;
	}
	while (log_reader_next(r, &ev) == 1) {
		if (c.end_seen) {
			c.after_end++;
			continue;
		}
		if (ev.seq != seq++ && !c.bad) {
			c.bad = 1;
			snprintf(c.why, sizeof(c.why), "seq %llu where %llu was due",
				 (unsigned long long)ev.seq, (unsigned long long)seq - 1);
		}
		if (ev.kind == LOG_EV_END) {
			c.end_seen = 1;
			c.end_events = ev.events;
			continue;
		}
		if (ev.kind == LOG_EV_VM_RESUME && ev.seq == 0)
			continue; /* mt_start's */
		uint64_t key = ev.kind == LOG_EV_STRING ? ev.id : ev.decision;
		unsigned id = (unsigned)(key >> 32);
		int i = (int)(key & 0xffffffffu);
		struct log_event want;

		if (id >= MT_THREADS) {
			c.bad = 1;
			snprintf(c.why, sizeof(c.why), "event of unknown thread %u", id);
			continue;
		}
		mt_event(&want, id, i);
		if (!c.bad && (i != c.next[id] || !same_event(&want, &ev))) {
			c.bad = 1;
			snprintf(c.why, sizeof(c.why), "thread %u: event %d where %d was due%s", id,
				 i, c.next[id], i == c.next[id] ? " (fields differ)" : "");
		}
		c.next[id] = i + 1;
		c.n++;
	}
	if (log_reader_damage_count(r) || log_reader_torn_tail(r)) {
		c.bad = 1;
		snprintf(c.why, sizeof(c.why), "damage %llu, torn tail %llu",
			 (unsigned long long)log_reader_damage_count(r),
			 (unsigned long long)log_reader_torn_tail(r));
	}
	log_reader_close(r);
	return c;
}

static void
concurrent_flusher(const char *dir)
{
	char path[512], err[256];
	pthread_t th[MT_THREADS];
	struct mt_appender ap[MT_THREADS];

	snprintf(path, sizeof(path), "%s/mtf.bhlog", dir);

	struct log_writer *w = mt_start(path, err, sizeof(err));

	if (!ok(w != NULL, "appenders and flusher: writer opens (%s)", w ? "" : err))
		return;
	mt_run(w, th, ap);
	ok(log_writer_close(w, 0) == 0, "appenders and flusher: writer closes complete");

	struct mt_check c = mt_read(path);
	int all = 1;

	for (int i = 0; i < MT_THREADS; i++)
		all &= c.next[i] == MT_EVENTS;
	ok(!c.bad && all && c.n == MT_THREADS * MT_EVENTS && c.end_seen &&
	   c.end_events == (uint64_t)c.n + 1 && c.after_end == 0,
	   "%d threads x %d events beside a 1 ms flusher and explicit flushes: "
	   "%d back, each once and in its thread's order, then end (%s)",
	   MT_THREADS, MT_EVENTS, c.n, c.why);
	unlink(path);
}

/* Seal while threads still append: the end event is last, nothing follows. */
static void
seal_while_appending(const char *dir)
{
	char path[512], err[256];
	pthread_t th[MT_THREADS];
	struct mt_appender ap[MT_THREADS];
	atomic_int stop = 0;

	snprintf(path, sizeof(path), "%s/seal.bhlog", dir);

	struct log_writer *w = mt_start(path, err, sizeof(err));

	if (!ok(w != NULL, "seal: writer opens (%s)", w ? "" : err))
		return;
	for (unsigned i = 0; i < MT_THREADS; i++) {
		ap[i] = (struct mt_appender){ w, i, -1, &stop, 0 };
		pthread_create(&th[i], NULL, mt_main, &ap[i]);
	}
	usleep(20000);
	int rc = log_writer_seal(w, 0);

	atomic_store(&stop, 1);
	int appended = 0;

	for (int i = 0; i < MT_THREADS; i++) {
		pthread_join(th[i], NULL);
		appended += ap[i].appended;
	}
	ok(rc == 0, "seal with appenders running: the log is complete");
	ok(log_writer_close(w, 0) == 0, "close after seal frees and keeps the sealed result");

	struct mt_check c = mt_read(path);

	ok(!c.bad && c.end_seen && c.after_end == 0 && c.end_events == (uint64_t)c.n + 1 &&
	   c.n == appended && c.n > 0,
	   "seal with %d threads appending: %d events (%d accepted) each once and in order, "
	   "end last (events %llu), %d after it (%s)",
	   MT_THREADS, c.n, appended, (unsigned long long)c.end_events, c.after_end, c.why);
	unlink(path);
}

/*
 * A write fails (RLIMIT_FSIZE) while threads append beside the flusher: the
 * writer stops writing, counts what it drops, and the log reads back as a
 * clean prefix.
 */
static void
write_failure_while_appending(const char *dir)
{
	char path[512], err[256];
	pthread_t th[MT_THREADS];
	struct mt_appender ap[MT_THREADS];
	struct rlimit old, lim;

	snprintf(path, sizeof(path), "%s/efbig.bhlog", dir);
	signal(SIGXFSZ, SIG_IGN);
	if (getrlimit(RLIMIT_FSIZE, &old) < 0) {
		ok(0, "getrlimit: %s", strerror(errno));
		return;
	}
	lim = old;
	lim.rlim_cur = 256 * 1024;
	if (setrlimit(RLIMIT_FSIZE, &lim) < 0) {
		ok(0, "setrlimit: %s", strerror(errno));
		return;
	}

	struct log_writer *w = mt_start(path, err, sizeof(err));

	if (!ok(w != NULL, "write failure: writer opens (%s)", w ? "" : err)) {
		setrlimit(RLIMIT_FSIZE, &old);
		return;
	}
	mt_run(w, th, ap);
	uint64_t dropped = log_writer_dropped(w);

	ok(log_writer_close(w, 0) < 0 && dropped > 0,
	   "write failure among appenders: close reports it, %llu events dropped",
	   (unsigned long long)dropped);
	setrlimit(RLIMIT_FSIZE, &old);

	struct mt_check c = mt_read(path);

	/* the cut is a torn tail, not damage: forgive it, nothing else */
	ok(c.n > 0 && c.n < MT_THREADS * MT_EVENTS && !c.end_seen &&
	   (!c.bad || strncmp(c.why, "damage 0,", 9) == 0),
	   "write failure: %d events read back each once and in order (%s)", c.n, c.why);
	unlink(path);
}

/* ---- safe creation: no symlinks, no silent overwrite, rw-r--r-- ---- */

static int
events_in(const char *path)
{
	char err[256];
	int code, n = 0;
	struct log_event ev;
	struct log_reader *r = log_reader_open(path, &code, err, sizeof(err));

	while (r && log_reader_next(r, &ev) == 1)
		n++;
	if (r)
		log_reader_close(r);
	return r ? n : -1;
}

static void
safe_create(const char *dir)
{
	char path[512], target[512], err[256];
	struct log_header h;
	struct log_event ev;
	struct stat st;
	struct log_writer *w;

	memset(&h, 0, sizeof(h));
	memset(&ev, 0, sizeof(ev));
	ev.kind = LOG_EV_WARP;
	ev.icount_how = LOG_IC_UNKNOWN;

	/* a new file is rw-r--r-- even with umask 0 */
	mode_t um = umask(0);

	snprintf(path, sizeof(path), "%s/new.bhlog", dir);
	w = log_writer_open_ex(path, &h, 0, 0, err, sizeof(err));
	umask(um);
	ok(w != NULL, "open_ex creates a new log (%s)", w ? "" : err);
	if (w) {
		log_writer_append(w, &ev);
		log_writer_close(w, 0);
	}
	memset(&st, 0, sizeof(st));
	stat(path, &st);
	ok((st.st_mode & 07777) == 0644, "a new log is mode 0644 under umask 0 (%04o)",
	   (unsigned)(st.st_mode & 07777));

	/* an existing file is refused without LOG_W_OVERWRITE and kept */
	err[0] = 0;
	w = log_writer_open_ex(path, &h, 0, 0, err, sizeof(err));
	ok(w == NULL && strstr(err, path) && strstr(err, "exists"),
	   "an existing file is refused without the overwrite flag: %s", err);
	if (w)
		log_writer_close(w, 0);
	ok(events_in(path) == 2, "the refused file is untouched (%d events)", events_in(path));

	/* with it, the file is replaced, and a loose mode is tightened */
	chmod(path, 0777);
	w = log_writer_open_ex(path, &h, 0, LOG_W_OVERWRITE, err, sizeof(err));
	ok(w != NULL, "LOG_W_OVERWRITE replaces an existing file (%s)", w ? "" : err);
	if (w)
		log_writer_close(w, 0);
	memset(&st, 0, sizeof(st));
	stat(path, &st);
	ok(events_in(path) == 1 && (st.st_mode & 07777) == 0644,
	   "the overwritten log is fresh (%d events) and mode 0644 (was 0777: %04o)",
	   events_in(path), (unsigned)(st.st_mode & 07777));

	/* a symlink at the path is refused with and without the flag, even dangling */
	snprintf(target, sizeof(target), "%s/target", dir);
	snprintf(path, sizeof(path), "%s/link.bhlog", dir);
	int fd = open(target, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd >= 0)
		close(fd);
	if (symlink(target, path) < 0) {
		ok(0, "symlink: %s", strerror(errno));
		return;
	}
	for (unsigned flags = 0; flags <= LOG_W_OVERWRITE; flags++) {
		err[0] = 0;
		w = log_writer_open_ex(path, &h, 0, flags, err, sizeof(err));
		ok(w == NULL && strstr(err, path) && strstr(err, "symbolic link"),
		   "a symlink at the log path is refused (flags %u): %s", flags, err);
		if (w)
			log_writer_close(w, 0);
	}
	w = log_writer_open(path, &h, 0, err, sizeof(err));
	ok(w == NULL && strstr(err, "symbolic link"), "log_writer_open refuses it too: %s", err);
	if (w)
		log_writer_close(w, 0);
	ok(stat(target, &st) == 0 && st.st_size == 0, "the symlink's target stays empty");
	unlink(target); /* now dangling */
	w = log_writer_open_ex(path, &h, 0, 0, err, sizeof(err));
	ok(w == NULL && strstr(err, "symbolic link") && access(target, F_OK) < 0,
	   "a dangling symlink is refused and nothing is created through it: %s", err);
	if (w)
		log_writer_close(w, 0);
	unlink(path);
	snprintf(path, sizeof(path), "%s/new.bhlog", dir);
	unlink(path);
}

int
main(void)
{
	char dir[] = "/tmp/bhrr-test-log.XXXXXX";

	if (mkdtemp(dir) == NULL)
		return 1;
	checklist();
	round_trip(dir);
	concurrent(dir);
	concurrent_flusher(dir);
	seal_while_appending(dir);
	write_failure_while_appending(dir);
	safe_create(dir);
	rmdir(dir);
	return tap_done();
}
