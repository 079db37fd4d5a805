/*
 * log_reader.c - streams a bhrr log (doc/log_format.md) with bounded memory:
 * the header, the string and ident tables, events, and the public API; the
 * blocks and records beneath are log_reader_frame.c's.
 *
 * Nothing read from the file is trusted: every length is checked against
 * the bytes actually there, every count and id against fixed bounds.  Damage
 * is reported (offset, bytes dropped, reason) and reading resumes at the
 * next block; a torn final record is a clean end.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "log.h"
#include "log_format.h"
#include "log_reader_int.h"

/* ---- tables ---- */

static void
table_string(struct log_reader *r, uint64_t id, const uint8_t *s, size_t len)
{
	if (id >= TABLE_MAX || r->strings_bytes + len > STRINGS_BYTES_MAX)
		return;
	if (id >= r->n_strings) {
		size_t n = r->n_strings ? r->n_strings : 64;

		while (n <= id)
			n *= 2;
		char **v = realloc(r->strings, n * sizeof(*v));

		if (v == NULL)
			return;
		memset(v + r->n_strings, 0, (n - r->n_strings) * sizeof(*v));
		r->strings = v;
		r->n_strings = n;
	}
	char *c = malloc(len + 1);

	if (c == NULL)
		return;
	memcpy(c, s, len);
	c[len] = 0;
	if (r->strings[id])
		r->strings_bytes -= strlen(r->strings[id]);
	free(r->strings[id]);
	r->strings[id] = c;
	r->strings_bytes += len;
}

static void
table_ident(struct log_reader *r, uint64_t id, uint64_t cb, uint64_t name)
{
	if (id >= TABLE_MAX)
		return;
	if (id >= r->n_idents) {
		size_t n = r->n_idents ? r->n_idents : 64;

		while (n <= id)
			n *= 2;
		uint64_t *a = realloc(r->ident_cb, n * sizeof(*a));

		if (a == NULL)
			return;
		r->ident_cb = a;
		uint64_t *b = realloc(r->ident_name, n * sizeof(*b));

		if (b == NULL)
			return;
		r->ident_name = b;
		for (size_t i = r->n_idents; i < n; i++)
			a[i] = b[i] = UINT64_MAX;
		r->n_idents = n;
	}
	r->ident_cb[id] = cb;
	r->ident_name[id] = name;
}

const char *
log_reader_string(const struct log_reader *r, uint64_t id)
{
	return id < r->n_strings ? r->strings[id] : NULL;
}

int
log_reader_ident(const struct log_reader *r, uint64_t id, uint64_t *cb_off, const char **name)
{
	if (id >= r->n_idents || r->ident_cb[id] == UINT64_MAX)
		return -1;
	*cb_off = r->ident_cb[id];
	*name = log_reader_string(r, r->ident_name[id]);
	return 0;
}

/* ---- header ---- */

static void
copy_str(char *dst, size_t cap, const uint8_t *s, size_t len)
{
	if (len >= cap)
		len = cap - 1;
	memcpy(dst, s, len);
	dst[len] = 0;
}

static uint64_t
num_of(const uint8_t *v, size_t len)
{
	uint64_t x = 0;
	const uint8_t *p = v;

	if (log_get_varint(&p, v + len, &x) < 0)
		return 0;
	return x;
}

/* Append a copy of @len bytes at @p to @v (@n of @max used); too many or too long: dropped. */
static int
push_str(char **v, int *n, int max, const uint8_t *p, uint64_t len)
{
	if (*n >= max || len > LOG_TEXT_MAX)
		return 0;
	char *a = malloc(len + 1);

	if (a == NULL)
		return -1;
	memcpy(a, p, len);
	a[len] = 0;
	v[(*n)++] = a;
	return 0;
}

/* Parse r->rec as the header; 0 or -1 if malformed. */
static int
parse_header(struct log_reader *r)
{
	const uint8_t *p = r->rec + 1 + LOG_MAGIC_LEN + 2;
	const uint8_t *end = r->rec + r->rec_len;
	struct log_header *h = &r->h;

	while (p < end) {
		uint64_t tag, len;

		if (log_get_varint(&p, end, &tag) < 0 || log_get_varint(&p, end, &len) < 0 ||
		    len > (uint64_t)(end - p))
			return -1;
		switch (tag) {
		case LOG_H_BHRR_VERSION: copy_str(h->bhrr_version, sizeof(h->bhrr_version), p, len); break;
		case LOG_H_BUILD_ID: copy_str(h->build_id, sizeof(h->build_id), p, len); break;
		case LOG_H_QEMU_VERSION: copy_str(h->qemu_version, sizeof(h->qemu_version), p, len); break;
		case LOG_H_EXE: copy_str(h->exe, sizeof(h->exe), p, len); break;
		case LOG_H_HOST: copy_str(h->host, sizeof(h->host), p, len); break;
		case LOG_H_ICOUNT_MODE: h->icount_mode = (unsigned)num_of(p, len); break;
		case LOG_H_ICOUNT_SHIFT: h->icount_shift = (unsigned)num_of(p, len); break;
		case LOG_H_START_NS: h->start_ns = num_of(p, len); break;
		case LOG_H_PID: h->pid = num_of(p, len); break;
		case LOG_H_ARG:
			if (push_str(h->argv, &h->argc, LOG_ARGV_MAX, p, len) < 0)
				return -1;
			break;
		case LOG_H_IMAGE:
			if (push_str(h->image, &h->nimages, LOG_IMAGES_MAX, p, len) < 0)
				return -1;
			break;
		default:
			break; /* a newer writer's field */
		}
		p += len;
	}
	return 0;
}

static struct log_reader *
open_common(struct log_reader *r, int *code, char *err, size_t errlen, const char *name)
{
	uint8_t first[LOG_HEADER + 1 + LOG_MAGIC_LEN + 2];
	ssize_t n = frame_src_read(r, 0, first, sizeof(first));
	uint16_t version;

	r->rec = malloc(RECORD_MAX);
	if (r->rec == NULL) {
		*code = LOG_E_IO;
		snprintf(err, errlen, "%s: out of memory", name);
		goto fail;
	}
	if (n < 0) {
		*code = LOG_E_IO;
		snprintf(err, errlen, "%s: cannot read: %s", name, strerror(errno));
		goto fail;
	}
	if (n == 0) {
		*code = LOG_E_NOTLOG;
		snprintf(err, errlen, "%s: empty file, not a bhrr log", name);
		goto fail;
	}
	/* the start of a header, then the end of the file: a log cut short */
	if ((size_t)n < sizeof(first) && (size_t)n > LOG_HEADER &&
	    (first[6] == LOG_FULL || first[6] == LOG_FIRST) && first[LOG_HEADER] == LOG_REC_HEADER &&
	    memcmp(first + LOG_HEADER + 1, LOG_MAGIC,
		   (size_t)n - LOG_HEADER - 1 < LOG_MAGIC_LEN ? (size_t)n - LOG_HEADER - 1
							      : LOG_MAGIC_LEN) == 0) {
		*code = LOG_E_HEADER;
		snprintf(err, errlen, "%s: the log header is cut short (the file ends at byte %zd)",
			 name, n);
		goto fail;
	}
	if ((size_t)n < sizeof(first) || (first[6] != LOG_FULL && first[6] != LOG_FIRST) ||
	    first[LOG_HEADER] != LOG_REC_HEADER ||
	    memcmp(first + LOG_HEADER + 1, LOG_MAGIC, LOG_MAGIC_LEN) != 0) {
		*code = LOG_E_NOTLOG;
		snprintf(err, errlen, "%s: not a bhrr log (no BHRRLOG header at the start)", name);
		goto fail;
	}
	memcpy(&version, first + LOG_HEADER + 1 + LOG_MAGIC_LEN, 2);
	if (version > LOG_VERSION || version == 0) {
		*code = LOG_E_VERSION;
		snprintf(err, errlen,
			 "%s: log format version %u, but this bhrr reads version %u%s", name,
			 version, LOG_VERSION, version > LOG_VERSION ? " (upgrade bhrr)" : "");
		goto fail;
	}
	r->h.version = version;
	if (!frame_read_logical(r) || r->rec_off != 0 || r->rec_len < 1 + LOG_MAGIC_LEN + 2 ||
	    r->rec[0] != LOG_REC_HEADER || parse_header(r) < 0) {
		*code = LOG_E_HEADER;
		if (r->torn)
			snprintf(err, errlen, "%s: the log header is cut short (the file ends at "
				 "byte %llu)", name, (unsigned long long)r->size);
		else
			snprintf(err, errlen, "%s: the log header is damaged", name);
		goto fail;
	}
	r->damage = r->dropped = 0; /* the header was read whole */
	*code = LOG_OK;
	return r;
fail:
	log_reader_close(r);
	return NULL;
}

struct log_reader *
log_reader_open(const char *path, int *code, char *err, size_t errlen)
{
	struct log_reader *r = calloc(1, sizeof(*r));
	struct stat st;

	if (r == NULL) {
		*code = LOG_E_IO;
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	r->fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block */
	if (r->fd < 0 || fstat(r->fd, &st) < 0) {
		*code = LOG_E_IO;
		snprintf(err, errlen, "cannot open log '%s': %s", path, strerror(errno));
		log_reader_close(r);
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		*code = LOG_E_NOTLOG;
		snprintf(err, errlen, "%s: not a regular file", path);
		log_reader_close(r);
		return NULL;
	}
	r->size = (uint64_t)st.st_size;
	return open_common(r, code, err, errlen, path);
}

struct log_reader *
log_reader_open_mem(const uint8_t *buf, size_t len, int *code, char *err, size_t errlen)
{
	struct log_reader *r = calloc(1, sizeof(*r));

	if (r == NULL) {
		*code = LOG_E_IO;
		snprintf(err, errlen, "(memory): out of memory");
		return NULL;
	}
	r->fd = -1;
	r->mem = buf;
	r->size = len;
	return open_common(r, code, err, errlen, "(memory)");
}

/* ---- events ---- */

#define GET(v)                                              \
	do {                                                \
		if (log_get_varint(&p, end, &(v)) < 0)      \
			return -1;                          \
	} while (0)

static int
get_text(const uint8_t **pp, const uint8_t *end, const char **s, size_t *len)
{
	uint64_t l;

	if (log_get_varint(pp, end, &l) < 0 || l > (uint64_t)(end - *pp) || l > LOG_TEXT_MAX)
		return -1;
	*s = (const char *)*pp;
	*len = (size_t)l;
	*pp += l;
	return 0;
}

/* Decode one event body [p, end) of a known kind into ev; 0 or -1. */
static int
decode_fields(struct log_reader *r, const uint8_t *p, const uint8_t *end, struct log_event *ev)
{
	uint64_t u;

	switch (ev->kind) {
	case LOG_EV_STRING:
		GET(ev->id);
		if (get_text(&p, end, &ev->text, &ev->text_len) < 0)
			return -1;
		table_string(r, ev->id, (const uint8_t *)ev->text, ev->text_len);
		return 0;
	case LOG_EV_IDENT:
		GET(ev->id);
		GET(ev->cb_off);
		GET(ev->name_id);
		table_ident(r, ev->id, ev->cb_off, ev->name_id);
		return 0;
	case LOG_EV_BH_SCHEDULE:
		GET(ev->ident);
		GET(ev->role);
		GET(ev->site);
		return 0;
	case LOG_EV_BH_RUN:
		GET(ev->ident);
		GET(ev->ordinal);
		if (p < end)
			GET(ev->flags);
		if (p < end)
			GET(ev->instance);
		return 0;
	case LOG_EV_BH_NEW:
	case LOG_EV_BH_DELETE:
		GET(ev->ident);
		GET(ev->instance);
		return 0;
	case LOG_EV_IO_SUBMIT:
		GET(ev->req);
		GET(ev->op);
		GET(ev->offset);
		GET(ev->bytes);
		return 0;
	case LOG_EV_IO_COMPLETE:
		GET(u);
		ev->req = r->prev_req + (uint64_t)log_unzigzag(u);
		r->prev_req = ev->req;
		GET(u);
		ev->ret = log_unzigzag(u);
		if (p < end)
			GET(ev->flags);
		return 0;
	case LOG_EV_WARP:
		GET(u);
		ev->delta_ns = log_unzigzag(u);
		return 0;
	case LOG_EV_SLICE:
		GET(ev->id);
		GET(ev->bytes);
		if (p < end)
			GET(ev->flags);
		return 0;
	case LOG_EV_CHR_READ:
	case LOG_EV_RNG_READ:
	case LOG_EV_MONITOR:
	case LOG_EV_HOST_CLOCK:
	case LOG_EV_HOST_TIMER:
	case LOG_EV_NET_RECV:
	case LOG_EV_CHR_EVENT:
	case LOG_EV_FILE_READ:
		GET(ev->id);
		GET(ev->flags);
		return get_text(&p, end, &ev->text, &ev->text_len);
	case LOG_EV_NESTED_POLL:
		GET(ev->role);
		return 0;
	case LOG_EV_VM_STOP:
	case LOG_EV_VM_RESUME:
		GET(ev->state);
		return 0;
	case LOG_EV_DIVERGE:
		GET(ev->index);
		if (get_text(&p, end, &ev->text, &ev->text_len) < 0 ||
		    get_text(&p, end, &ev->text2, &ev->text2_len) < 0)
			return -1;
		return 0;
	case LOG_EV_CHAOS:
		GET(ev->decision);
		GET(u);
		ev->value = log_unzigzag(u);
		return 0;
	case LOG_EV_END:
		GET(ev->complete);
		GET(ev->events);
		GET(ev->dropped);
		GET(ev->wall_ns);
		return 0;
	default:
		return 0;
	}
}

/* Start the batch in r->rec; 0 or -1 if its prefix is malformed. */
static int
start_batch(struct log_reader *r)
{
	const uint8_t *p = r->rec + 1, *end = r->rec + r->rec_len;
	uint64_t first_seq, base;

	if (log_get_varint(&p, end, &first_seq) < 0 || log_get_varint(&p, end, &base) < 0)
		return -1;
	if (first_seq > r->next_seq)
		r->lost_events += first_seq - r->next_seq;
	r->seq = first_seq;
	r->prev_icount = (int64_t)base;
	r->prev_req = 0;
	r->bp = p;
	r->bend = end;
	return 0;
}

int
log_reader_next(struct log_reader *r, struct log_event *ev)
{
	for (;;) {
		while (r->bp == NULL || r->bp >= r->bend) {
			r->bp = r->bend = NULL;
			if (!frame_read_logical(r))
				return 0;
			if (r->rec_len > 0 && r->rec[0] == LOG_REC_BATCH) {
				if (start_batch(r) < 0)
					frame_report(r, r->rec_off, r->rec_len, "malformed batch prefix");
				continue;
			}
			char why[64];

			if (r->rec_len == 0)
				snprintf(why, sizeof(why), "empty logical record");
			else if (r->rec[0] == LOG_REC_HEADER)
				snprintf(why, sizeof(why), "a second header record");
			else
				snprintf(why, sizeof(why), "unknown logical record kind 0x%02x",
					 r->rec[0]);
			frame_report(r, r->rec_off, r->rec_len, why);
		}

		const uint8_t *p = r->bp, *end = r->bend;
		uint8_t head = *p++;
		uint64_t len, u;

		memset(ev, 0, sizeof(*ev));
		if (log_get_varint(&p, end, &len) < 0 || len > (uint64_t)(end - p) ||
		    (head & 0x80)) {
			frame_report(r, r->rec_off, (uint64_t)(r->bend - r->bp), "malformed event in batch");
			r->bp = NULL;
			continue;
		}
		const uint8_t *body_end = p + len;

		ev->wire_len = (size_t)(body_end - r->bp);
		r->bp = body_end;
		ev->seq = r->seq++;
		r->next_seq = r->seq;
		ev->kind = head & LOG_EV_KIND_MASK;
		if (head & LOG_EV_ICOUNT_UNKNOWN) {
			ev->icount_how = LOG_IC_UNKNOWN;
		} else {
			if (log_get_varint(&p, body_end, &u) < 0) {
				frame_report(r, r->rec_off, len, "event without its icount");
				continue;
			}
			ev->icount = r->prev_icount + log_unzigzag(u);
			r->prev_icount = ev->icount;
			ev->icount_how = (head & LOG_EV_ICOUNT_LOWER) ? LOG_IC_LOWER : LOG_IC_EXACT;
		}
		if (log_kind_name(ev->kind) == NULL) {
			r->unknown++;
			return 1; /* returned as is: the caller may show it */
		}
		if (decode_fields(r, p, body_end, ev) < 0) {
			char why[64];

			snprintf(why, sizeof(why), "truncated %s event", log_kind_name(ev->kind));
			frame_report(r, r->rec_off, len, why);
			continue;
		}
		return 1;
	}
}

/* ---- accessors ---- */

const struct log_header *
log_reader_header(const struct log_reader *r)
{
	return &r->h;
}

void
log_reader_on_damage(struct log_reader *r, log_damage_fn *fn, void *opaque)
{
	r->on_damage = fn;
	r->opaque = opaque;
}

uint64_t
log_reader_damage_count(const struct log_reader *r)
{
	return r->damage;
}

uint64_t
log_reader_dropped_bytes(const struct log_reader *r)
{
	return r->dropped;
}

uint64_t
log_reader_torn_tail(const struct log_reader *r)
{
	return r->torn;
}

uint64_t
log_reader_unknown_count(const struct log_reader *r)
{
	return r->unknown;
}

uint64_t
log_reader_file_size(const struct log_reader *r)
{
	return r->size;
}

void
log_reader_close(struct log_reader *r)
{
	if (r == NULL)
		return;
	if (r->fd >= 0)
		close(r->fd);
	for (size_t i = 0; i < r->n_strings; i++)
		free(r->strings[i]);
	for (int i = 0; i < r->h.argc; i++)
		free(r->h.argv[i]);
	for (int i = 0; i < r->h.nimages; i++)
		free(r->h.image[i]);
	free(r->strings);
	free(r->ident_cb);
	free(r->ident_name);
	free(r->rec);
	free(r);
}
