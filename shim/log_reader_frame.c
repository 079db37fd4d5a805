/*
 * log_reader_frame.c - the reader's lower half: the file (or buffer) read in
 * 32 KiB blocks, physical records checked (length, checksum, type) and
 * assembled into logical records, damage reported with its offset and the
 * bytes dropped, reading resumed at the next block; a torn final record is
 * a clean end.  The format: doc/log_format.md.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "log_reader_int.h"

/* ---- source ---- */

ssize_t
frame_src_read(struct log_reader *r, uint64_t off, uint8_t *buf, size_t len)
{
	if (off >= r->size)
		return 0;
	if (len > r->size - off)
		len = (size_t)(r->size - off);
	if (r->mem) {
		memcpy(buf, r->mem + off, len);
		return (ssize_t)len;
	}
	size_t got = 0;

	while (got < len) {
		ssize_t n = pread(r->fd, buf + got, len - got, (off_t)(off + got));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -1 : (ssize_t)got;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

void
frame_report(struct log_reader *r, uint64_t off, uint64_t dropped, const char *reason)
{
	r->damage++;
	r->dropped += dropped;
	if (r->on_damage)
		r->on_damage(r->opaque, off, dropped, reason);
}

/* Load the block after the current one; 0, or PHYS_EOF. */
static int
next_block(struct log_reader *r)
{
	uint64_t off = r->block_len ? r->block_off + r->block_len : r->block_off;
	ssize_t n;

	if (r->eof)
		return PHYS_EOF;
	if (r->block_len)
		r->block_off = off;
	n = frame_src_read(r, off, r->block, LOG_BLOCK);
	if (n <= 0) {
		r->eof = 1;
		r->block_len = r->pos = 0;
		return PHYS_EOF;
	}
	r->block_len = (size_t)n;
	r->pos = 0;
	if (r->block_len < LOG_BLOCK)
		r->eof = 1; /* this is the last block */
	return 0;
}

/* Drop the rest of the current block as damage. */
static void
drop_block(struct log_reader *r, const char *reason)
{
	frame_report(r, r->block_off + r->pos, r->block_len - r->pos, reason);
	r->pos = r->block_len;
}

static int
all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

/*
 * Next physical record: its type (>= 0) with payload, len and off set,
 * PHYS_EOF at the end, PHYS_AGAIN after damage (the caller drops any
 * record in assembly).
 */
static int
read_physical(struct log_reader *r, const uint8_t **payload, size_t *len, uint64_t *off)
{
	for (;;) {
		size_t left = r->block_len - r->pos;

		if (left < LOG_HEADER) {
			if (r->block_len == LOG_BLOCK || r->block_len == 0) {
				/* a trailer (or nothing loaded yet): next block */
				if (next_block(r) < 0)
					return PHYS_EOF;
				continue;
			}
			r->torn += left; /* a header cut short by the end of file */
			r->pos = r->block_len;
			return PHYS_EOF;
		}
		const uint8_t *p = r->block + r->pos;
		uint32_t sum;
		uint16_t l;
		uint8_t type = p[6];

		memcpy(&sum, p, 4);
		memcpy(&l, p + 4, 2);
		if (type == LOG_ZERO && l == 0 && all_zero(p, left)) {
			r->pos = r->block_len; /* zero fill to the end of the block */
			continue;
		}
		if (LOG_HEADER + (size_t)l > left) {
			/* runs past the end of the file: a torn tail, unless no
			 * writer could have framed it (it would cross its block) */
			if (r->eof && r->pos + LOG_HEADER + (size_t)l <= LOG_BLOCK) {
				r->torn += left;
				r->pos = r->block_len;
				return PHYS_EOF;
			}
			drop_block(r, "record length runs past its block");
			return PHYS_AGAIN;
		}
		if (XXH32(p + 6, 1 + (size_t)l, LOG_SEED) != sum) {
			drop_block(r, "checksum mismatch");
			return PHYS_AGAIN;
		}
		if (type < LOG_FULL || type > LOG_LAST) {
			char why[64];

			snprintf(why, sizeof(why), "unknown record type %u", type);
			frame_report(r, r->block_off + r->pos, LOG_HEADER + (size_t)l, why);
			r->pos += LOG_HEADER + l;
			return PHYS_AGAIN;
		}
		*off = r->block_off + r->pos;
		*payload = p + LOG_HEADER;
		*len = l;
		r->pos += LOG_HEADER + l;
		return type;
	}
}

/*
 * Next logical record into r->rec: 1, or 0 at the end.  Fragments out of
 * sequence are reported and dropped.
 */
int
frame_read_logical(struct log_reader *r)
{
	int in_frag = 0;

	for (;;) {
		const uint8_t *p;
		size_t len;
		uint64_t off;
		int t = read_physical(r, &p, &len, &off);

		if (t != PHYS_AGAIN && t != LOG_MIDDLE && t != LOG_LAST)
			r->resync = 0;

		if (t == PHYS_EOF) {
			if (in_frag)
				r->torn += r->rec_len; /* the last record never finished */
			return 0;
		}
		if (t == PHYS_AGAIN) {
			r->resync = 1;
			if (in_frag)
				frame_report(r, r->rec_off, r->rec_len, "fragmented record cut by damage");
			in_frag = 0;
			continue;
		}
		if ((t == LOG_FULL || t == LOG_FIRST) && in_frag) {
			frame_report(r, r->rec_off, r->rec_len, "fragmented record without its last part");
			in_frag = 0;
		}
		if ((t == LOG_MIDDLE || t == LOG_LAST) && !in_frag) {
			frame_report(r, off, LOG_HEADER + len,
			       r->resync ? "the rest of a record lost to the damage before"
			       : t == LOG_MIDDLE ? "middle fragment without a first"
						 : "last fragment without a first");
			continue;
		}
		if (t == LOG_FULL || t == LOG_FIRST) {
			r->rec_len = 0;
			r->rec_off = off;
		}
		if (r->rec_len + len > RECORD_MAX) {
			frame_report(r, r->rec_off, r->rec_len + len, "record larger than 1 MiB");
			in_frag = 0;
			continue;
		}
		memcpy(r->rec + r->rec_len, p, len);
		r->rec_len += len;
		if (t == LOG_FULL || t == LOG_LAST)
			return 1;
		in_frag = 1;
	}
}

