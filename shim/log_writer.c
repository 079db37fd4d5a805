/*
 * log_writer.c - writes a bhrr log (doc/log_format.md) from any thread.
 *
 * Appenders encode straight into the current batch buffer inside one short
 * critical section (no allocation, no stdio).  A flusher thread, the
 * appender that fills a batch, and close() move the batch to the spare
 * buffer and frame it into 32 KiB blocks with write(2).  Lock order: fmu
 * (file) before mu (batch).  All memory is allocated at open.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "log.h"
#include "log_format.h"

#define BATCH_FLUSH (32u * 1024) /* flush a batch once it is this big */
#define EVENT_MAX (2u * LOG_TEXT_MAX + 128)
#define BATCH_CAP (BATCH_FLUSH + 4 * EVENT_MAX)
#define FRAME_CAP (BATCH_CAP + (BATCH_CAP / LOG_BLOCK + 3) * (LOG_HEADER + LOG_HEADER))

struct batch {
	uint8_t *buf;
	size_t len;
	int64_t prev_icount;
	uint64_t prev_req;
	uint64_t first_seq; /* of the batch's first event */
};

struct log_writer {
	pthread_mutex_t mu;  /* cur, seq, counters */
	pthread_mutex_t fmu; /* spare, frame, fd, block_off */
	pthread_cond_t cv;
	pthread_t flusher;
	int has_flusher, stop;
	unsigned flush_ms;
	int fd;
	int failed;
	int sealed; /* no more appends (log_writer_seal) */
	uint64_t unwritten; /* fmu: the first event a failing write would lose */
	char path[256];
	struct batch cur, spare;
	uint8_t *frame;
	size_t block_off; /* offset within the current block */
	uint64_t seq, dropped;
	int64_t last_icount;
	struct timespec t0;
};

static const char *const kind_names[LOG_EV_COUNT] = {
	[LOG_EV_STRING] = "string",
	[LOG_EV_IDENT] = "ident",
	[LOG_EV_BH_SCHEDULE] = "bh_schedule",
	[LOG_EV_BH_RUN] = "bh_run",
	[LOG_EV_IO_SUBMIT] = "io_submit",
	[LOG_EV_IO_COMPLETE] = "io_complete",
	[LOG_EV_WARP] = "warp",
	[LOG_EV_NESTED_POLL] = "nested_poll",
	[LOG_EV_VM_STOP] = "vm_stop",
	[LOG_EV_VM_RESUME] = "vm_resume",
	[LOG_EV_DIVERGE] = "diverge",
	[LOG_EV_CHAOS] = "chaos",
	[LOG_EV_END] = "end",
	[LOG_EV_BH_NEW] = "bh_new",
	[LOG_EV_BH_DELETE] = "bh_delete",
};

const char *
log_kind_name(unsigned kind)
{
	return kind < LOG_EV_COUNT ? kind_names[kind] : NULL;
}

/* ---- framing ---- */

/*
 * Fill the 7-byte header at @p for the @len payload bytes already at
 * p + LOG_HEADER.  The type byte directly precedes the payload, so the
 * checksum covers one contiguous span.
 */
static void
put_header(uint8_t *p, enum log_rtype type, size_t len)
{
	uint16_t l = (uint16_t)len;
	uint32_t sum;

	p[6] = (uint8_t)type;
	sum = XXH32(p + 6, 1 + len, LOG_SEED);
	memcpy(p, &sum, 4);
	memcpy(p + 4, &l, 2);
}

/* Frame one logical record into w->frame; returns the framed length. */
static size_t
frame_record(struct log_writer *w, const uint8_t *data, size_t len)
{
	size_t out = 0;
	int begin = 1;

	do {
		size_t left = LOG_BLOCK - w->block_off;

		if (left < LOG_HEADER) { /* trailer */
			memset(w->frame + out, 0, left);
			out += left;
			w->block_off = 0;
			left = LOG_BLOCK;
		}
		size_t avail = left - LOG_HEADER;
		size_t frag = len < avail ? len : avail;
		int end = frag == len;
		enum log_rtype type = begin && end ? LOG_FULL : begin ? LOG_FIRST
						 : end	       ? LOG_LAST
								: LOG_MIDDLE;

		memcpy(w->frame + out + LOG_HEADER, data, frag);
		put_header(w->frame + out, type, frag);
		out += LOG_HEADER + frag;
		w->block_off += LOG_HEADER + frag;
		data += frag;
		len -= frag;
		begin = 0;
	} while (len > 0);
	return out;
}

static void
write_failed(struct log_writer *w, int err)
{
	char msg[512];
	int n;

	if (w->failed)
		return;
	w->failed = 1;
	n = snprintf(msg, sizeof(msg),
		     "bhrr: error: cannot write log '%s': %s; nothing from event #%llu on was "
		     "written: the log stays incomplete, the recorded process runs on\n",
		     w->path, strerror(err), (unsigned long long)w->unwritten);
	if (n > 0 && write(2, msg, (size_t)n) < 0)
		return;
}

/* Write a framed buffer completely; 0 or -1.  Called with fmu held. */
static int
write_all(struct log_writer *w, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t r = write(w->fd, p, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			write_failed(w, r < 0 ? errno : EIO);
			return -1;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

int
log_writer_flush(struct log_writer *w)
{
	int rc = 0;

	pthread_mutex_lock(&w->fmu);
	pthread_mutex_lock(&w->mu);
	struct batch t = w->cur;

	w->cur = w->spare;
	w->spare = t;
	w->cur.len = 0;
	pthread_mutex_unlock(&w->mu);
	if (w->spare.len > 0) {
		if (!w->failed) {
			size_t n = frame_record(w, w->spare.buf, w->spare.len);

			w->unwritten = w->spare.first_seq;
			rc = write_all(w, w->frame, n);
		}
		w->spare.len = 0;
	}
	rc = w->failed ? -1 : rc;
	pthread_mutex_unlock(&w->fmu);
	return rc;
}

/* ---- encoding ---- */

static size_t
put_text(uint8_t *p, const char *s, size_t len)
{
	size_t n;

	if (s == NULL)
		len = 0;
	if (len > LOG_TEXT_MAX)
		len = LOG_TEXT_MAX;
	n = log_put_varint(p, len);
	if (len)
		memcpy(p + n, s, len);
	return n + len;
}

/* The kind-specific fields after the icount; returns the length. */
static size_t
encode_fields(uint8_t *p, const struct log_event *ev, struct batch *b)
{
	size_t n = 0;

	switch (ev->kind) {
	case LOG_EV_STRING:
		n += log_put_varint(p + n, ev->id);
		n += put_text(p + n, ev->text, ev->text_len);
		break;
	case LOG_EV_IDENT:
		n += log_put_varint(p + n, ev->id);
		n += log_put_varint(p + n, ev->cb_off);
		n += log_put_varint(p + n, ev->name_id);
		break;
	case LOG_EV_BH_SCHEDULE:
		n += log_put_varint(p + n, ev->ident);
		n += log_put_varint(p + n, ev->role);
		n += log_put_varint(p + n, ev->site);
		break;
	case LOG_EV_BH_RUN:
		n += log_put_varint(p + n, ev->ident);
		n += log_put_varint(p + n, ev->ordinal);
		if (ev->flags || ev->instance)
			n += log_put_varint(p + n, ev->flags);
		if (ev->instance)
			n += log_put_varint(p + n, ev->instance);
		break;
	case LOG_EV_BH_NEW:
	case LOG_EV_BH_DELETE:
		n += log_put_varint(p + n, ev->ident);
		n += log_put_varint(p + n, ev->instance);
		break;
	case LOG_EV_IO_SUBMIT:
		n += log_put_varint(p + n, ev->req);
		n += log_put_varint(p + n, ev->op);
		n += log_put_varint(p + n, ev->offset);
		n += log_put_varint(p + n, ev->bytes);
		break;
	case LOG_EV_IO_COMPLETE:
		n += log_put_varint(p + n, log_zigzag((int64_t)(ev->req - b->prev_req)));
		n += log_put_varint(p + n, log_zigzag(ev->ret));
		if (ev->flags)
			n += log_put_varint(p + n, ev->flags);
		b->prev_req = ev->req;
		break;
	case LOG_EV_WARP:
		n += log_put_varint(p + n, log_zigzag(ev->delta_ns));
		break;
	case LOG_EV_NESTED_POLL:
		n += log_put_varint(p + n, ev->role);
		break;
	case LOG_EV_VM_STOP:
	case LOG_EV_VM_RESUME:
		n += log_put_varint(p + n, ev->state);
		break;
	case LOG_EV_DIVERGE:
		n += log_put_varint(p + n, ev->index);
		n += put_text(p + n, ev->text, ev->text_len);
		n += put_text(p + n, ev->text2, ev->text2_len);
		break;
	case LOG_EV_CHAOS:
		n += log_put_varint(p + n, ev->decision);
		n += log_put_varint(p + n, log_zigzag(ev->value));
		break;
	case LOG_EV_END:
		n += log_put_varint(p + n, ev->complete);
		n += log_put_varint(p + n, ev->events);
		n += log_put_varint(p + n, ev->dropped);
		n += log_put_varint(p + n, ev->wall_ns);
		break;
	default:
		break;
	}
	return n;
}

/*
 * Encode @ev at the end of the current batch.  Called with mu held.  The
 * body is written in place after room for the head byte and a 2-byte length
 * (EVENT_MAX < 2^14), then slid down one byte when the length fits in one.
 */
static void
encode_event(struct log_writer *w, const struct log_event *ev, uint64_t seq)
{
	struct batch *b = &w->cur;
	uint8_t head = (uint8_t)(ev->kind & LOG_EV_KIND_MASK);

	if (b->len == 0) {
		b->buf[b->len++] = LOG_REC_BATCH;
		b->len += log_put_varint(b->buf + b->len, seq);
		b->first_seq = seq;
		b->prev_icount = ev->icount_how == LOG_IC_UNKNOWN ? 0 : ev->icount;
		b->len += log_put_varint(b->buf + b->len, (uint64_t)b->prev_icount);
		b->prev_req = 0;
	}
	uint8_t *body = b->buf + b->len + 3;
	size_t n = 0;

	if (ev->icount_how == LOG_IC_UNKNOWN) {
		head |= LOG_EV_ICOUNT_UNKNOWN;
	} else {
		if (ev->icount_how == LOG_IC_LOWER)
			head |= LOG_EV_ICOUNT_LOWER;
		n += log_put_varint(body, log_zigzag(ev->icount - b->prev_icount));
		b->prev_icount = ev->icount;
		w->last_icount = ev->icount;
	}
	n += encode_fields(body + n, ev, b);
	b->buf[b->len++] = head;
	if (n < 0x80) {
		b->buf[b->len++] = (uint8_t)n;
		memmove(b->buf + b->len, body, n);
	} else {
		b->len += log_put_varint(b->buf + b->len, n);
	}
	b->len += n;
}

uint64_t
log_writer_append(struct log_writer *w, const struct log_event *ev)
{
	uint64_t seq;

	pthread_mutex_lock(&w->mu);
	while (w->cur.len + EVENT_MAX > BATCH_CAP && !w->failed) {
		pthread_mutex_unlock(&w->mu);
		log_writer_flush(w);
		pthread_mutex_lock(&w->mu);
	}
	if (w->sealed) {
		pthread_mutex_unlock(&w->mu);
		return 0;
	}
	seq = w->seq++;
	if (w->failed) {
		w->dropped++;
		pthread_mutex_unlock(&w->mu);
		return seq;
	}
	encode_event(w, ev, seq);
	int full = w->cur.len >= BATCH_FLUSH;

	pthread_mutex_unlock(&w->mu);
	if (full) {
		if (w->has_flusher)
			pthread_cond_signal(&w->cv);
		else
			log_writer_flush(w);
	}
	return seq;
}

uint64_t
log_writer_dropped(const struct log_writer *w)
{
	return w->dropped;
}

/* ---- header, flusher, open/close ---- */

static size_t
put_tag_str(uint8_t *p, unsigned tag, const char *s)
{
	size_t n = log_put_varint(p, tag);

	return n + put_text(p + n, s, strlen(s));
}

static size_t
put_tag_num(uint8_t *p, unsigned tag, uint64_t v)
{
	uint8_t tmp[10];
	size_t l = log_put_varint(tmp, v);
	size_t n = log_put_varint(p, tag);

	n += log_put_varint(p + n, l);
	memcpy(p + n, tmp, l);
	return n + l;
}

static size_t
encode_header(uint8_t *p, size_t cap, const struct log_header *h)
{
	size_t n = 0;
	uint16_t v = LOG_VERSION;

	p[n++] = LOG_REC_HEADER;
	memcpy(p + n, LOG_MAGIC, LOG_MAGIC_LEN);
	n += LOG_MAGIC_LEN;
	memcpy(p + n, &v, 2);
	n += 2;
	n += put_tag_str(p + n, LOG_H_BHRR_VERSION, h->bhrr_version);
	n += put_tag_str(p + n, LOG_H_BUILD_ID, h->build_id);
	n += put_tag_str(p + n, LOG_H_QEMU_VERSION, h->qemu_version);
	n += put_tag_str(p + n, LOG_H_EXE, h->exe);
	n += put_tag_str(p + n, LOG_H_HOST, h->host);
	n += put_tag_num(p + n, LOG_H_ICOUNT_MODE, h->icount_mode);
	n += put_tag_num(p + n, LOG_H_ICOUNT_SHIFT, h->icount_shift);
	n += put_tag_num(p + n, LOG_H_START_NS, h->start_ns);
	n += put_tag_num(p + n, LOG_H_PID, h->pid);
	for (int i = 0; i < h->argc && i < LOG_ARGV_MAX; i++) {
		if (n + 16 + strnlen(h->argv[i], LOG_TEXT_MAX) > cap)
			break;
		n += put_tag_str(p + n, LOG_H_ARG, h->argv[i]);
	}
	return n;
}

static void *
flusher_main(void *arg)
{
	struct log_writer *w = arg;

	pthread_mutex_lock(&w->mu);
	while (!w->stop) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)w->flush_ms * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&w->cv, &w->mu, &ts);
		pthread_mutex_unlock(&w->mu);
		log_writer_flush(w);
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static void
writer_free(struct log_writer *w)
{
	free(w->cur.buf);
	free(w->spare.buf);
	free(w->frame);
	free(w);
}

struct log_writer *
log_writer_open(const char *path, const struct log_header *h, unsigned flush_ms, char *err,
		size_t errlen)
{
	struct log_writer *w = calloc(1, sizeof(*w));

	if (w == NULL) {
		snprintf(err, errlen, "cannot create log '%s': out of memory", path);
		return NULL;
	}
	w->cur.buf = malloc(BATCH_CAP);
	w->spare.buf = malloc(BATCH_CAP);
	w->frame = malloc(FRAME_CAP);
	if (!w->cur.buf || !w->spare.buf || !w->frame) {
		snprintf(err, errlen, "cannot create log '%s': out of memory", path);
		writer_free(w);
		return NULL;
	}
	snprintf(w->path, sizeof(w->path), "%s", path);
	w->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (w->fd < 0) {
		snprintf(err, errlen, "cannot create log '%s': %s", path, strerror(errno));
		writer_free(w);
		return NULL;
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_mutex_init(&w->fmu, NULL);
	pthread_cond_init(&w->cv, NULL);
	clock_gettime(CLOCK_MONOTONIC, &w->t0);

	/* The header goes out at once: even a run killed at start leaves it. */
	size_t n = encode_header(w->cur.buf, BATCH_CAP, h);

	n = frame_record(w, w->cur.buf, n);
	if (write_all(w, w->frame, n) < 0) {
		snprintf(err, errlen, "cannot write log '%s': %s", path, strerror(errno));
		close(w->fd);
		writer_free(w);
		return NULL;
	}
	if (flush_ms > 0)
		log_writer_start_flusher(w, flush_ms);
	return w;
}

int
log_writer_start_flusher(struct log_writer *w, unsigned flush_ms)
{
	sigset_t all, old;

	if (w->has_flusher)
		return 0;
	/* The flusher must never receive the process's signals. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	w->flush_ms = flush_ms;
	w->has_flusher = pthread_create(&w->flusher, NULL, flusher_main, w) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return w->has_flusher ? 0 : -1;
}

/* Stop the flusher, append the end event, flush and fsync; 0 if complete. */
static int
finish(struct log_writer *w, int64_t end_icount)
{
	struct timespec t1;
	struct log_event end;
	int rc;

	if (w->has_flusher) {
		pthread_mutex_lock(&w->mu);
		w->stop = 1;
		pthread_cond_signal(&w->cv);
		pthread_mutex_unlock(&w->mu);
		pthread_join(w->flusher, NULL);
		w->has_flusher = 0;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	memset(&end, 0, sizeof(end));
	end.kind = LOG_EV_END;
	end.icount = end_icount;
	end.complete = !w->failed;
	end.dropped = w->dropped;
	end.wall_ns = (uint64_t)((t1.tv_sec - w->t0.tv_sec) * 1000000000LL +
				 (t1.tv_nsec - w->t0.tv_nsec));
	pthread_mutex_lock(&w->mu);
	end.events = w->seq;
	pthread_mutex_unlock(&w->mu);
	log_writer_append(w, &end);
	pthread_mutex_lock(&w->mu);
	w->sealed = 1;
	pthread_mutex_unlock(&w->mu);
	rc = log_writer_flush(w);
	w->unwritten = end.events + 1; /* all written; fsync may yet fail */
	if (!w->failed && fsync(w->fd) < 0 && errno != EINVAL)
		write_failed(w, errno);
	rc = (close(w->fd) < 0 || w->failed) ? -1 : rc;
	w->fd = -1;
	return rc;
}

int
log_writer_seal(struct log_writer *w, int64_t end_icount)
{
	return finish(w, end_icount);
}

int
log_writer_close(struct log_writer *w, int64_t end_icount)
{
	int rc = finish(w, end_icount);

	pthread_mutex_destroy(&w->mu);
	pthread_mutex_destroy(&w->fmu);
	pthread_cond_destroy(&w->cv);
	writer_free(w);
	return rc;
}
