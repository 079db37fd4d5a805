/*
 * log_encode.c - the event log's encoding of event fields and of the
 * header record (doc/log_format.md 2.2 and 2.3), and the kinds' names:
 * pure functions on caller-owned buffers, so any thread.  The writer
 * (log_writer.c) batches, frames and writes what these produce.
 */
#include <string.h>

#include "log.h"
#include "log_encode.h"
#include "log_format.h"

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
	[LOG_EV_CHR_READ] = "chr_read",
	[LOG_EV_RNG_READ] = "rng_read",
	[LOG_EV_MONITOR] = "monitor",
	[LOG_EV_HOST_CLOCK] = "host_clock",
	[LOG_EV_NET_RECV] = "net_recv",
	[LOG_EV_CHR_EVENT] = "chr_event",
	[LOG_EV_HOST_TIMER] = "host_timer",
	[LOG_EV_FILE_READ] = "file_read",
	[LOG_EV_SLICE] = "slice",
};

const char *
log_chr_event_name(unsigned e)
{
	/* QEMUChrEvent, include/chardev/char.h: the same since 2.x */
	static const char *const names[] = { "break", "opened", "mux_in", "mux_out", "closed" };

	return e < sizeof(names) / sizeof(names[0]) ? names[e] : "?";
}

const char *
log_host_clock_name(uint64_t what)
{
	static const char *const names[] = { "rtc_start", "realtime", "host" };

	return what < sizeof(names) / sizeof(names[0]) ? names[what] : "?";
}

int
log_host_clock_value(const struct log_event *ev, int64_t *value)
{
	uint64_t v = 0;

	if (ev->id == LOG_HC_RTC_START || ev->text_len != 8)
		return -1;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | (uint8_t)ev->text[i];
	*value = (int64_t)v;
	return 0;
}

const char *
log_kind_name(unsigned kind)
{
	return kind < LOG_EV_COUNT ? kind_names[kind] : NULL;
}

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
size_t
log_encode_fields(uint8_t *p, const struct log_event *ev, uint64_t *prev_req)
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
		n += log_put_varint(p + n, log_zigzag((int64_t)(ev->req - *prev_req)));
		n += log_put_varint(p + n, log_zigzag(ev->ret));
		if (ev->flags)
			n += log_put_varint(p + n, ev->flags);
		*prev_req = ev->req;
		break;
	case LOG_EV_CHR_READ:
	case LOG_EV_RNG_READ:
	case LOG_EV_MONITOR:
	case LOG_EV_HOST_CLOCK:
	case LOG_EV_HOST_TIMER:
	case LOG_EV_NET_RECV:
	case LOG_EV_CHR_EVENT:
	case LOG_EV_FILE_READ:
		n += log_put_varint(p + n, ev->id);
		n += log_put_varint(p + n, ev->flags);
		n += put_text(p + n, ev->text, ev->text_len);
		break;
	case LOG_EV_WARP:
		n += log_put_varint(p + n, log_zigzag(ev->delta_ns));
		break;
	case LOG_EV_SLICE:
		n += log_put_varint(p + n, ev->id);
		n += log_put_varint(p + n, ev->bytes);
		if (ev->flags)
			n += log_put_varint(p + n, ev->flags);
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

size_t
log_encode_header(uint8_t *p, size_t cap, const struct log_header *h)
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
	for (int i = 0; i < h->nimages && i < LOG_IMAGES_MAX; i++) {
		if (n + 16 + strnlen(h->image[i], LOG_TEXT_MAX) > cap)
			break;
		n += put_tag_str(p + n, LOG_H_IMAGE, h->image[i]);
	}
	return n;
}

