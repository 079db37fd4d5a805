/*
 * log_format.h - constants and varint helpers shared by the log writer and
 * reader.  The format itself is specified in doc/log_format.md.
 */
#ifndef BHRR_LOG_FORMAT_H
#define BHRR_LOG_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#define LOG_BLOCK 32768u
#define LOG_HEADER 7u /* checksum u32, length u16, type u8 */
#define LOG_SEED 0x62687272u
#define LOG_MAGIC "BHRRLOG\0"
#define LOG_MAGIC_LEN 8u
#define LOG_VERSION 7u

enum log_rtype { LOG_ZERO = 0, LOG_FULL = 1, LOG_FIRST = 2, LOG_MIDDLE = 3, LOG_LAST = 4 };

#define LOG_REC_HEADER 'H'
#define LOG_REC_BATCH 'B'

#define LOG_EV_KIND_MASK 0x1fu
#define LOG_EV_ICOUNT_UNKNOWN 0x20u
#define LOG_EV_ICOUNT_LOWER 0x40u

enum log_htag {
	LOG_H_BHRR_VERSION = 1,
	LOG_H_BUILD_ID = 2,
	LOG_H_QEMU_VERSION = 3,
	LOG_H_ARG = 4,
	LOG_H_ICOUNT_MODE = 5,
	LOG_H_ICOUNT_SHIFT = 6,
	LOG_H_HOST = 7,
	LOG_H_START_NS = 8,
	LOG_H_PID = 9,
	LOG_H_EXE = 10,
	LOG_H_IMAGE = 11,
};

/* Append @v as LEB128 at @p; returns bytes written (<= 10). */
static inline size_t
log_put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

static inline uint64_t
log_zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t
log_unzigzag(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/*
 * Read a varint from [*p, end).  Returns 0 and advances *p, or -1 if the
 * bytes end first or the value has more than 10 bytes.
 */
static inline int
log_get_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
	uint64_t v = 0;
	unsigned shift = 0;
	const uint8_t *q = *p;

	while (q < end && shift < 70) {
		uint8_t b = *q++;

		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*p = q;
			*out = v;
			return 0;
		}
		shift += 7;
	}
	return -1;
}

#endif
