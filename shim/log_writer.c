/*
 * log_writer.c - writes a bhrr log (doc/log_format.md) from any thread.
 *
 * Appenders encode straight into the current batch buffer inside one short
 * critical section (no allocation, no stdio).  A flusher thread, the
 * appender that fills a batch, and close() move the batch to the spare
 * buffer and frame it into 32 KiB blocks with write(2).  Lock order: fmu
 * (file) before mu (batch).  All memory is allocated at open.
 *
 * failed is written under both locks, so either one suffices to read it;
 * has_flusher, stop, sealed, seq and dropped are under mu; fd under fmu.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "log.h"
#include "log_encode.h"
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
	int finished, finish_rc; /* finish() ran, and its result */
	uint64_t unwritten; /* fmu: the first event a failing write would lose */
	char path[256];
	struct batch cur, spare;
	uint8_t *frame;
	size_t block_off; /* offset within the current block */
	uint64_t seq, dropped;
	int64_t last_icount;
	struct timespec t0;
};

/* ---- framing ---- */

/*
 * This thread's holds of a writer's locks.  A signal handler that runs on
 * a thread inside the writer (QEMU's SIGTERM handler schedules a BH, which
 * bhrr logs) must not wait for a lock that thread holds: its event is
 * dropped instead (counted in dropped_by_signal).
 */
static __thread volatile sig_atomic_t tls_holds;        /* any lock through log_lock */
static __thread volatile sig_atomic_t tls_writer_holds; /* a writer's own mu or fmu */
static unsigned long long dropped_by_signal; /* atomic */

/* counted from before the wait to after the release: no window a handler could fall in */
void
log_lock(pthread_mutex_t *m)
{
	tls_holds++;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	pthread_mutex_lock(m);
}

void
log_unlock(pthread_mutex_t *m)
{
	pthread_mutex_unlock(m);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	tls_holds--;
}

int
log_lock_held(void)
{
	return tls_holds > 0;
}

static void
lock(pthread_mutex_t *m)
{
	tls_writer_holds++;
	log_lock(m);
}

static void
unlock(pthread_mutex_t *m)
{
	log_unlock(m);
	tls_writer_holds--;
}

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
	lock(&w->mu);
	w->failed = 1;
	unlock(&w->mu);
	n = snprintf(msg, sizeof(msg),
		     "bhrr: error: cannot write log '%s': %s; nothing from event #%llu on was "
		     "written: the log stays incomplete, the recorded process runs on\n",
		     w->path, strerror(err), (unsigned long long)w->unwritten);
	if (n > 0 && write(2, msg, (size_t)n) < 0)
		return;
}

/* Write a framed buffer completely; 0 or -1.  Called with fmu held (or alone). */
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

	lock(&w->fmu);
	lock(&w->mu);
	struct batch t = w->cur;

	w->cur = w->spare;
	w->spare = t;
	w->cur.len = 0;
	unlock(&w->mu);
	if (w->spare.len > 0) {
		if (!w->failed) {
			size_t n = frame_record(w, w->spare.buf, w->spare.len);

			w->unwritten = w->spare.first_seq;
			rc = write_all(w, w->frame, n);
		}
		w->spare.len = 0;
	}
	rc = w->failed ? -1 : rc;
	unlock(&w->fmu);
	return rc;
}

/* ---- encoding ---- */

/*
 * Encode @ev at the end of the current batch.  Called with mu held.  The
 * body is written in place after the head byte and a 1-byte length, and
 * slid up one byte in the rare case its length needs two (EVENT_MAX < 2^14:
 * long strings only).
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
	uint8_t *at = b->buf + b->len, *body = at + 2;
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
	n += log_encode_fields(body + n, ev, &b->prev_req);
	at[0] = head;
	if (n < 0x80) {
		at[1] = (uint8_t)n;
		b->len += 2 + n;
	} else {
		memmove(body + 1, body, n);
		b->len += 1 + log_put_varint(at + 1, n) + n;
	}
}

/*
 * Append @ev, or with @end the end event filled in from the counters and
 * seal the writer in the same critical section, so that no other thread's
 * event can follow the end.  Returns the sequence number, 0 if sealed.
 */
static uint64_t
append(struct log_writer *w, const struct log_event *ev, int end)
{
	struct log_event e;
	uint64_t seq;

	if (tls_writer_holds > 0) {
		/* a signal handler on this thread, inside the writer: never wait for ourselves */
		__atomic_add_fetch(&dropped_by_signal, 1, __ATOMIC_RELAXED);
		return 0;
	}
	lock(&w->mu);
	while (!w->sealed && !w->failed && w->cur.len + EVENT_MAX > BATCH_CAP) {
		unlock(&w->mu);
		log_writer_flush(w);
		lock(&w->mu);
	}
	if (w->sealed) {
		unlock(&w->mu);
		return 0;
	}
	if (end) {
		e = *ev;
		e.events = w->seq;
		e.dropped = w->dropped + __atomic_load_n(&dropped_by_signal, __ATOMIC_RELAXED);
		e.complete = !w->failed;
		ev = &e;
		w->sealed = 1;
	}
	seq = w->seq++;
	if (w->failed) {
		w->dropped++;
		unlock(&w->mu);
		return seq;
	}
	encode_event(w, ev, seq);
	int full = w->cur.len >= BATCH_FLUSH && !end;
	int signal_flusher = w->has_flusher;

	unlock(&w->mu);
	if (full) {
		if (signal_flusher)
			pthread_cond_signal(&w->cv);
		else
			log_writer_flush(w);
	}
	return seq;
}

uint64_t
log_writer_append(struct log_writer *w, const struct log_event *ev)
{
	return append(w, ev, 0);
}

uint64_t
log_writer_dropped(const struct log_writer *w)
{
	pthread_mutex_t *mu = (pthread_mutex_t *)&w->mu; /* logically const */
	uint64_t n;

	pthread_mutex_lock(mu);
	n = w->dropped;
	pthread_mutex_unlock(mu);
	return n;
}

/* ---- header, flusher, open/close ---- */

static void *
flusher_main(void *arg)
{
	struct log_writer *w = arg;

	lock(&w->mu);
	while (!w->stop) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)w->flush_ms * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&w->cv, &w->mu, &ts);
		unlock(&w->mu);
		log_writer_flush(w);
		lock(&w->mu);
	}
	unlock(&w->mu);
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

/*
 * Create the log file: never through a symlink, never another file's
 * contents unless @flags has LOG_W_OVERWRITE, and at most rw-r--r--.
 */
static int
create_file(const char *path, unsigned flags, char *err, size_t errlen)
{
	int oflags = O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW;
	struct stat st;
	int fd, e;

	oflags |= flags & LOG_W_OVERWRITE ? O_TRUNC : O_EXCL;
	fd = open(path, oflags, 0644);
	if (fd < 0) {
		e = errno;
		/* O_EXCL says EEXIST and O_NOFOLLOW ELOOP for a planted symlink. */
		if ((e == EEXIST || e == ELOOP) && lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
			snprintf(err, errlen,
				 "cannot create log '%s': it is a symbolic link; refusing to follow it",
				 path);
		else if (e == EEXIST)
			snprintf(err, errlen,
				 "cannot create log '%s': the file exists; refusing to overwrite it", path);
		else
			snprintf(err, errlen, "cannot create log '%s': %s", path, strerror(e));
		return -1;
	}
	/* An overwritten file keeps its mode: take back group/other write and exec. */
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 07133) != 0 &&
	    fchmod(fd, st.st_mode & 0644) < 0) {
		e = errno;
		snprintf(err, errlen, "cannot create log '%s': cannot restrict its mode %04o: %s",
			 path, (unsigned)(st.st_mode & 07777), strerror(e));
		close(fd);
		return -1;
	}
	return fd;
}

struct log_writer *
log_writer_open(const char *path, const struct log_header *h, unsigned flush_ms, char *err,
		size_t errlen)
{
	return log_writer_open_ex(path, h, flush_ms, LOG_W_OVERWRITE, err, errlen);
}

struct log_writer *
log_writer_open_ex(const char *path, const struct log_header *h, unsigned flush_ms,
		   unsigned flags, char *err, size_t errlen)
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
	w->fd = create_file(path, flags, err, errlen);
	if (w->fd < 0) {
		writer_free(w);
		return NULL;
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_mutex_init(&w->fmu, NULL);
	pthread_cond_init(&w->cv, NULL);
	clock_gettime(CLOCK_MONOTONIC, &w->t0);

	/* The header goes out at once: even a run killed at start leaves it. */
	size_t n = log_encode_header(w->cur.buf, BATCH_CAP, h);

	n = frame_record(w, w->cur.buf, n);
	if (write_all(w, w->frame, n) < 0) {
		snprintf(err, errlen, "cannot write log '%s': %s", path, strerror(errno));
		close(w->fd);
		pthread_mutex_destroy(&w->mu);
		pthread_mutex_destroy(&w->fmu);
		pthread_cond_destroy(&w->cv);
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
	int rc = 0;

	/* Under mu: appenders read has_flusher; the new thread waits for mu. */
	lock(&w->mu);
	if (!w->has_flusher && !w->stop) {
		/* The flusher must never receive the process's signals. */
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		w->flush_ms = flush_ms;
		w->has_flusher = pthread_create(&w->flusher, NULL, flusher_main, w) == 0;
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		rc = w->has_flusher ? 0 : -1;
	}
	unlock(&w->mu);
	return rc;
}

/*
 * Stop the flusher, append the end event, flush and fsync; 0 if complete.
 * Once only: seal then close returns the seal's result.
 */
static int
finish(struct log_writer *w, int64_t end_icount)
{
	struct timespec t1;
	struct log_event end;
	int rc, joined;

	if (w->finished)
		return w->finish_rc;
	lock(&w->mu);
	joined = w->has_flusher;
	w->stop = 1;
	pthread_cond_signal(&w->cv);
	unlock(&w->mu);
	if (joined)
		pthread_join(w->flusher, NULL);
	lock(&w->mu);
	w->has_flusher = 0;
	unlock(&w->mu);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	memset(&end, 0, sizeof(end));
	end.kind = LOG_EV_END;
	end.icount = end_icount;
	end.wall_ns = (uint64_t)((t1.tv_sec - w->t0.tv_sec) * 1000000000LL +
				 (t1.tv_nsec - w->t0.tv_nsec));
	append(w, &end, 1); /* counts and seals under mu: the end stays last */
	rc = log_writer_flush(w);
	lock(&w->fmu);
	w->unwritten = end.events + 1; /* all written; fsync may yet fail */
	if (!w->failed && fsync(w->fd) < 0 && errno != EINVAL)
		write_failed(w, errno);
	rc = (close(w->fd) < 0 || w->failed) ? -1 : rc;
	w->fd = -1;
	unlock(&w->fmu);
	w->finished = 1;
	w->finish_rc = rc;
	return rc;
}

int
log_writer_seal(struct log_writer *w, int64_t end_icount)
{
	return finish(w, end_icount);
}

/* After log_writer_seal too, once no thread appends any more. */
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
