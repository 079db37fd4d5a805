/*
 * log_reader_int.h - the log reader's state, shared by its two halves:
 * log_reader_frame.c (blocks, physical and logical records, damage) and
 * log_reader.c (header, tables, events, the public API).  Private to the
 * log library; a reader belongs to one thread at a time.
 */
#ifndef BHRR_LOG_READER_INT_H
#define BHRR_LOG_READER_INT_H

#include <stdint.h>
#include <sys/types.h>

#include "log.h"
#include "log_format.h"

#define RECORD_MAX (1u << 20)  /* largest logical record accepted */
#define TABLE_MAX (1u << 20)   /* largest string / ident id accepted */
#define STRINGS_BYTES_MAX (64u << 20)

enum { PHYS_EOF = -1, PHYS_AGAIN = -2 };

struct log_reader {
	/* source */
	int fd;
	const uint8_t *mem;
	uint64_t size;
	/* current block */
	uint8_t block[LOG_BLOCK];
	uint64_t block_off; /* file offset of block[0] */
	size_t block_len, pos;
	int eof;
	int resync; /* the last physical record read was damage */
	/* logical record assembly */
	uint8_t *rec;
	size_t rec_len;
	uint64_t rec_off; /* file offset where the record began */
	/* current batch */
	const uint8_t *bp, *bend;
	uint64_t seq, next_seq;
	int64_t prev_icount;
	uint64_t prev_req;
	/* results */
	struct log_header h;
	uint64_t damage, dropped, torn, unknown, lost_events;
	log_damage_fn *on_damage;
	void *opaque;
	/* interned tables, indexed by id */
	char **strings;
	size_t n_strings, strings_bytes;
	uint64_t *ident_cb, *ident_name;
	size_t n_idents;
};

/* Read @len bytes at file offset @off of the source; bytes read, or -1. */
ssize_t frame_src_read(struct log_reader *r, uint64_t off, uint8_t *buf, size_t len);
/* Count and report one damaged span. */
void frame_report(struct log_reader *r, uint64_t off, uint64_t dropped, const char *reason);
/*
 * Assemble the next logical record into r->rec (r->rec_len, r->rec_off):
 * 1, or 0 at the end of the file.  Damage is reported and skipped.
 */
int frame_read_logical(struct log_reader *r);

#endif
