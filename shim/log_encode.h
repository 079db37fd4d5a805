/*
 * log_encode.h - encoding an event's fields and the header record; private
 * to the log library (log_writer.c and the tests).  Pure functions.
 */
#ifndef BHRR_LOG_ENCODE_H
#define BHRR_LOG_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "log.h"

/*
 * The kind-specific fields of @ev after its icount, at @p; their length.
 * @prev_req: the batch's last request ordinal (io_complete is delta-coded),
 * updated.
 */
size_t log_encode_fields(uint8_t *p, const struct log_event *ev, uint64_t *prev_req);
/* The header record's payload for @h at @p (room: @cap); its length. */
size_t log_encode_header(uint8_t *p, size_t cap, const struct log_header *h);

#endif
