/*
 * log.h - bhrr's event log: the in-memory event and header, the writer and
 * the reader.  Format: doc/log_format.md.
 */
#ifndef BHRR_LOG_H
#define BHRR_LOG_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

enum log_kind {
	LOG_EV_NONE = 0,
	LOG_EV_STRING = 1,
	LOG_EV_IDENT = 2,
	LOG_EV_BH_SCHEDULE = 3,
	LOG_EV_BH_RUN = 4,
	LOG_EV_IO_SUBMIT = 5,
	LOG_EV_IO_COMPLETE = 6,
	LOG_EV_WARP = 7,
	LOG_EV_NESTED_POLL = 8,
	LOG_EV_VM_STOP = 9,
	LOG_EV_VM_RESUME = 10,
	LOG_EV_DIVERGE = 11,
	LOG_EV_CHAOS = 12,
	LOG_EV_END = 13,
	LOG_EV_BH_NEW = 14,
	LOG_EV_BH_DELETE = 15,
	LOG_EV_CHR_READ = 16,
	LOG_EV_RNG_READ = 17,
	LOG_EV_MONITOR = 18,
	LOG_EV_HOST_CLOCK = 19,
	LOG_EV_NET_RECV = 20,
	LOG_EV_CHR_EVENT = 21,
	LOG_EV_HOST_TIMER = 22,
	LOG_EV_FILE_READ = 23,
	LOG_EV_SLICE = 24,
	LOG_EV_COUNT
};

/* How an event's icount was obtained. */
enum log_icount { LOG_IC_EXACT = 0, LOG_IC_LOWER = 1, LOG_IC_UNKNOWN = 2 };

/* bh_run, io_complete, chr_read flags: ran at once, outside recorded control (nested aio_poll, VM stopped) */
#define LOG_F_AT_ONCE 1u
/*
 * bh_run, io_complete, chr_read flags: landed during the vCPU's first I/O access of the
 * instruction at its icount, before the device saw the access (io_land.h)
 */
#define LOG_F_AT_IO 2u
/*
 * net_recv flag: more of this frame follows, in the next net_recv event (a
 * frame longer than one event holds, LOG_TEXT_MAX, is logged in pieces, all
 * at its icount; the last piece, without this flag, is the action)
 */
#define LOG_F_MORE 4u
/*
 * slice flag: the slice ended just after its vCPU entered an exception
 * handler for a faulting instruction (which counts no instruction), before
 * the handler's first instruction (vcpu_sched.h)
 */
#define LOG_F_AFTER_EXC 8u
/* slice flag: the vCPU took a hardware interrupt in it (the replay's must too) */
#define LOG_F_DELIVERED 16u

#define LOG_TEXT_MAX 4096 /* longest string a reader accepts */

/*
 * One event.  Which fields matter depends on kind (doc/log_format.md 2.3);
 * the reader fills the ones of the kind it read and zeroes the rest.
 * Strings point into the reader's or the caller's memory.
 */
struct log_event {
	uint64_t seq;          /* reader: sequence number */
	size_t wire_len;       /* reader: bytes this event took in its batch */
	unsigned kind;         /* enum log_kind; reader: unknown kinds as read */
	unsigned icount_how;   /* enum log_icount */
	int64_t icount;
	uint64_t id;           /* string, ident: the id being defined; chr_read: the frontend; rng_read: the device; monitor: same turn; host_clock: what (0 the RTC's start, 1 a read of QEMU_CLOCK_REALTIME, 2 of QEMU_CLOCK_HOST); host_timer: the timer; net_recv: NIC, QEMU's flags << 32; chr_event: the frontend; slice: the vCPU's index */
	uint64_t ident;        /* bh_schedule, bh_run */
	uint64_t cb_off;       /* ident */
	uint64_t name_id;      /* ident */
	uint64_t role;         /* bh_schedule, nested_poll */
	uint64_t site;         /* bh_schedule */
	uint64_t ordinal;      /* bh_run */
	uint64_t flags;        /* bh_run, io_complete, chr_read: LOG_F_* */
	uint64_t instance;     /* bh_new, bh_delete, bh_run: creation ordinal of the ident, from 1; 0 unknown */
	uint64_t req;          /* io_submit, io_complete (absolute) */
	uint64_t op, offset, bytes; /* io_submit; slice: bytes = the instructions it ran */
	int64_t ret;           /* io_complete */
	int64_t delta_ns;      /* warp */
	uint64_t state;        /* vm_stop, vm_resume */
	uint64_t index;        /* diverge */
	uint64_t decision;     /* chaos */
	int64_t value;         /* chaos */
	uint64_t complete, events, dropped, wall_ns; /* end */
	const char *text;      /* string: the text; diverge: expected; chr_read, rng_read: the bytes */
	size_t text_len;
	const char *text2;     /* diverge: actual */
	size_t text2_len;
};

#define LOG_ARGV_MAX 512
#define LOG_IMAGES_MAX 32 /* fingerprint.h's FP_MAX */

struct log_header {
	unsigned version;
	char bhrr_version[32];
	char build_id[48];
	char qemu_version[128];
	char exe[256];
	char host[160];
	unsigned icount_mode;  /* 0 none, 1 exact, 2 ordering */
	unsigned icount_shift;
	uint64_t start_ns;
	uint64_t pid;
	int argc;
	char *argv[LOG_ARGV_MAX]; /* reader: owned by the reader */
	int nimages;
	char *image[LOG_IMAGES_MAX]; /* fingerprint.h's header form; reader: owned by the reader */
};

/* QEMU's chardev event @e by name ("opened"), "?" if unknown: chr_event's byte. */
const char *log_chr_event_name(unsigned e);
/* host_clock's what: 0 the RTC's start (text), else a read of a QEMU clock (value, 8 bytes LE). */
enum log_host_clock { LOG_HC_RTC_START = 0, LOG_HC_REALTIME = 1, LOG_HC_HOST = 2 };
/* host_clock's @what by name ("rtc_start", "realtime", "host"), "?" if unknown. */
const char *log_host_clock_name(uint64_t what);
/* A host_clock read's value (what != 0): its 8 little-endian bytes; 0, or -1 if it has none. */
int log_host_clock_value(const struct log_event *ev, int64_t *value);
/* Name of a kind for dump/JSON ("bh_run"), or NULL if unknown. */
const char *log_kind_name(unsigned kind);

/* ---- writer ---- */

struct log_writer;

/*
 * Create @path and write the header.  @flush_ms > 0 starts a flusher thread
 * writing at least that often.  Returns NULL and fills @err on failure.
 */
struct log_writer *log_writer_open(const char *path, const struct log_header *h,
				   unsigned flush_ms, char *err, size_t errlen);

/* log_writer_open_ex flags */
#define LOG_W_OVERWRITE 1u /* truncate an existing file instead of refusing it */

/*
 * log_writer_open with @flags.  The file is created rw-r--r-- whatever the
 * umask allows more (an overwritten regular file loses group/other write
 * and exec bits), never through a symbolic link at @path (refused, with
 * the path in @err), and only if it does not exist yet unless @flags has
 * LOG_W_OVERWRITE.  log_writer_open() is this with LOG_W_OVERWRITE.
 */
struct log_writer *log_writer_open_ex(const char *path, const struct log_header *h,
				      unsigned flush_ms, unsigned flags, char *err,
				      size_t errlen);
/*
 * Start the flusher thread later (after hooks that need a single-threaded
 * process are installed); 0 or -1.  No-op if one runs already.
 */
int log_writer_start_flusher(struct log_writer *w, unsigned flush_ms);
/*
 * The writer's locks, and any lock held while appending (the shim's id
 * tables), taken through these: a signal handler that lands on a thread
 * holding one (QEMU's SIGTERM handler schedules a BH, which bhrr logs)
 * finds log_lock_held() and drops its event instead of waiting for itself.
 */
void log_lock(pthread_mutex_t *m);
void log_unlock(pthread_mutex_t *m);
int log_lock_held(void);

/*
 * Append one event; any thread.  The fast path encodes on the stack and
 * copies under a mutex: no allocation, no stdio.  Returns the event's
 * sequence number.
 */
uint64_t log_writer_append(struct log_writer *w, const struct log_event *ev);
/* Frame and write what is buffered; 0 or -1 (the writer then stops writing). */
int log_writer_flush(struct log_writer *w);
/*
 * Append the end event (complete unless a write failed), flush, close and
 * free.  Returns 0 if the log on disk is complete.  After log_writer_seal
 * (once no thread appends any more) it just frees, returning the seal's result.
 */
int log_writer_close(struct log_writer *w, int64_t end_icount);
/*
 * Append the end event, flush and fsync, and stop: later appends from any
 * thread are dropped.  Nothing is freed, so threads still appending stay
 * safe; for process exit.  Returns 0 if the log on disk is complete.
 */
int log_writer_seal(struct log_writer *w, int64_t end_icount);
/* Events dropped after a write error. */
uint64_t log_writer_dropped(const struct log_writer *w);

/* ---- reader ---- */

struct log_reader;

enum log_open_err {
	LOG_OK = 0,
	LOG_E_IO = -1,       /* cannot open or read the file */
	LOG_E_NOTLOG = -2,   /* not a bhrr log (no magic in a first header record) */
	LOG_E_VERSION = -3,  /* a newer format version */
	LOG_E_HEADER = -4,   /* magic present but the header record is damaged */
};

/* Open @path and read its header; NULL with *code and @err filled on failure. */
struct log_reader *log_reader_open(const char *path, int *code, char *err, size_t errlen);
/* Read from a buffer instead (fuzzing, tests); the buffer must outlive the reader. */
struct log_reader *log_reader_open_mem(const uint8_t *buf, size_t len, int *code, char *err,
				       size_t errlen);
const struct log_header *log_reader_header(const struct log_reader *r);
/*
 * Next event: 1 with *ev filled, 0 at the end.  Damage never stops reading:
 * it is reported through log_reader_damage_count()/the callback.
 */
int log_reader_next(struct log_reader *r, struct log_event *ev);

/* Called once per damaged span: file offset, bytes dropped, reason. */
typedef void log_damage_fn(void *opaque, uint64_t offset, uint64_t dropped, const char *reason);
void log_reader_on_damage(struct log_reader *r, log_damage_fn *fn, void *opaque);
uint64_t log_reader_damage_count(const struct log_reader *r);
uint64_t log_reader_dropped_bytes(const struct log_reader *r);
/* Bytes of a torn final record (0 if the file ends on a record boundary). */
uint64_t log_reader_torn_tail(const struct log_reader *r);
/* Events whose kind this reader does not know (skipped, but returned as such). */
uint64_t log_reader_unknown_count(const struct log_reader *r);
/* Interned string @id, or NULL if never defined (or lost to damage). */
const char *log_reader_string(const struct log_reader *r, uint64_t id);
/* Callback identity @id: 0 and fills the outputs, or -1. */
int log_reader_ident(const struct log_reader *r, uint64_t id, uint64_t *cb_off, const char **name);
/* File size and logical bytes of events read so far, for stat. */
uint64_t log_reader_file_size(const struct log_reader *r);
void log_reader_close(struct log_reader *r);

#endif
