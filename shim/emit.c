/*
 * emit.c - building and appending the log's events (see emit.h).
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "emit.h"
#include "held.h"
#include "ident.h"
#include "qemu_rt.h"
#include "vcpu_sched.h"

#define STACK_TEXT_MAX (16 * 24)

static struct log_writer *writer; /* set before any thread runs; read-only after */
static int want_keys;             /* likewise: content keys are computed (ordering replay) */

/* Under ids_mu. */
static pthread_mutex_t ids_mu = PTHREAD_MUTEX_INITIALIZER;
static struct ident_table idents;
static struct inst_table insts;
static struct site_table sites;
static struct occ occ;
static uint64_t next_string;

void
emit_set_writer(struct log_writer *w)
{
	writer = w;
}

void
emit_want_content_keys(int on)
{
	want_keys = on;
}

struct log_writer *
emit_writer(void)
{
	return writer;
}

/*
 * The head every event has.  The hot emitters set only the fields the
 * writer encodes for their kind (log_writer.c, encode_fields) instead of
 * zeroing all 248 bytes of struct log_event: that zeroing was a tenth of
 * the shim's cost per event.
 */
static inline void
head(struct log_event *ev, unsigned kind, unsigned how, int64_t icount)
{
	ev->kind = kind;
	ev->icount_how = how;
	ev->icount = icount;
}

/* A string definition; ids_mu held.  Its id. */
static uint64_t
define_string(const char *text, size_t len)
{
	struct log_event ev = { 0 };

	ev.kind = LOG_EV_STRING;
	ev.icount_how = LOG_IC_UNKNOWN;
	ev.id = ++next_string;
	ev.text = text;
	ev.text_len = len;
	log_writer_append(writer, &ev);
	return ev.id;
}

/*
 * Idents never change once made, so each thread keeps the ones it used in
 * a small direct-mapped cache (no lock): a hit is an ident whose definition
 * is already in the log.
 */
#define ID_CACHE 32

static __thread struct {
	const void *cb;
	uint64_t id;
} id_cache[ID_CACHE]; /* this thread's */

static inline unsigned
id_slot(const void *cb)
{
	return (unsigned)(((uintptr_t)cb >> 4) % ID_CACHE);
}

/* The ident of @cb from this thread's cache, or 0. */
static inline uint64_t
ident_cached(const void *cb)
{
	unsigned k = id_slot(cb);

	return id_cache[k].cb == cb ? id_cache[k].id : 0;
}

/* The ident of @cb; ids_mu held. */
static uint64_t
ident_locked(const void *cb, const char *name)
{
	uint64_t id = ident_cached(cb);
	int is_new;

	if (id)
		return id;
	id = ident_intern(&idents, cb, &is_new);
	if (is_new) {
		struct log_event ev = { 0 };

		if (name == NULL)
			name = "?";
		ev.kind = LOG_EV_IDENT;
		ev.icount_how = LOG_IC_UNKNOWN;
		ev.name_id = define_string(name, strlen(name));
		ev.id = id;
		ev.cb_off = qrt_exe_offset(cb);
		log_writer_append(writer, &ev);
	}
	if (id) {
		id_cache[id_slot(cb)].cb = cb;
		id_cache[id_slot(cb)].id = id;
	}
	return id;
}


void
emit_identify(const void *cb, const char *name, const void *bh, uint64_t *ident,
	      uint64_t *instance)
{
	log_lock(&ids_mu);
	*ident = ident_locked(cb, name);
	struct inst_slot *s = inst_find(&insts, bh);

	*instance = s ? s->instance : 0;
	log_unlock(&ids_mu);
}


void
emit_bh_run(const struct held *h, unsigned how, int64_t icount, uint64_t flags)
{
	struct log_event ev;

	sched_flush(); /* an action: after the vCPU turns before it (vcpu_sched.h) */
	head(&ev, LOG_EV_BH_RUN, how, icount);
	ev.flags = flags;
	ev.ident = h->ident;
	ev.instance = h->instance;
	log_lock(&ids_mu);
	ev.ordinal = ident_next_ordinal(&idents, h->ident);
	log_writer_append(writer, &ev);
	log_unlock(&ids_mu);
}

void
emit_schedule(const void *cb, const char *name, void *const *frames, int n, unsigned how,
	      int64_t icount, unsigned role)
{
	struct log_event ev;

	head(&ev, LOG_EV_BH_SCHEDULE, how, icount);
	ev.role = role;
	ev.site = 0;
	if (n == 0 && (ev.ident = ident_cached(cb)) != 0) {
		log_writer_append(writer, &ev); /* the common case: nothing new to define */
		return;
	}
	log_lock(&ids_mu);
	ev.ident = ident_locked(cb, name);
	if (n > 0) {
		int is_new;
		uint64_t h = site_hash(frames, n);

		ev.site = site_intern(&sites, h, next_string + 1, &is_new);
		if (is_new) {
			char text[STACK_TEXT_MAX];
			size_t len = 0;

			for (int k = 0; k < n && len < sizeof(text) - 24; k++)
				len += (size_t)snprintf(text + len, sizeof(text) - len, "%s+%#llx",
							k ? " " : "",
							(unsigned long long)qrt_exe_offset(frames[k]));
			ev.site = define_string(text, len);
		}
	}
	log_writer_append(writer, &ev);
	log_unlock(&ids_mu);
}

void
emit_bh_new(const void *bh, const void *cb, const char *name)
{
	struct log_event ev = { 0 };
	unsigned how;

	ev.kind = LOG_EV_BH_NEW;
	ev.icount = qrt_icount_now(&how, 0);
	ev.icount_how = how;
	log_lock(&ids_mu);
	ev.ident = ident_locked(cb, name);
	ev.instance = ident_next_creation(&idents, ev.ident);
	if (ev.instance)
		inst_add(&insts, bh, ev.ident, ev.instance);
	log_writer_append(writer, &ev);
	log_unlock(&ids_mu);
}

void
emit_bh_delete(const void *bh)
{
	struct log_event ev = { 0 };
	unsigned how;

	log_lock(&ids_mu);
	struct inst_slot *s = inst_find(&insts, bh);

	if (s != NULL) {
		ev.kind = LOG_EV_BH_DELETE;
		ev.ident = s->ident;
		ev.instance = s->instance;
		ev.icount = qrt_icount_now(&how, 0);
		ev.icount_how = how;
		log_writer_append(writer, &ev);
		inst_gone(&insts, s);
	}
	log_unlock(&ids_mu);
}

uint64_t
emit_io_submit(uint64_t req, uint64_t op, uint64_t offset, uint64_t bytes, unsigned how,
	       int64_t icount)
{
	struct log_event ev;

	head(&ev, LOG_EV_IO_SUBMIT, how, icount);
	ev.req = req;
	ev.op = op;
	ev.offset = offset;
	ev.bytes = bytes;
	uint64_t key = 0;

	if (want_keys) {
		log_lock(&ids_mu);
		key = content_key(&occ, op, offset, bytes);
		log_unlock(&ids_mu);
	}
	log_writer_append(writer, &ev);
	return key;
}

void
emit_io_complete(uint64_t req, int64_t ret, unsigned how, int64_t icount, uint64_t flags)
{
	struct log_event ev;

	sched_flush();
	head(&ev, LOG_EV_IO_COMPLETE, how, icount);
	ev.flags = flags;
	ev.req = req;
	ev.ret = ret;
	log_writer_append(writer, &ev);
}

/*
 * What the host handed the guest, with its bytes (at most LOG_TEXT_MAX
 * kept): chr_read, chr_event, rng_read, net_recv, monitor, host_clock,
 * file_read.
 */
static void
emit_input(unsigned kind, uint64_t id, const uint8_t *data, size_t len, unsigned how,
	   int64_t icount, uint64_t flags)
{
	struct log_event ev;

	if (kind != LOG_EV_FILE_READ) /* the others are actions, or answered in order */
		sched_flush();
	head(&ev, kind, how, icount);
	ev.id = id;
	ev.flags = flags;
	ev.text = (const char *)data;
	ev.text_len = len < LOG_TEXT_MAX ? len : LOG_TEXT_MAX;
	log_writer_append(writer, &ev);
}

void
emit_chr_read(unsigned fe, const uint8_t *data, size_t len, unsigned how, int64_t icount,
	      uint64_t flags)
{
	emit_input(LOG_EV_CHR_READ, fe, data, len, how, icount, flags);
}

void
emit_chr_event(unsigned fe, unsigned event, unsigned how, int64_t icount, uint64_t flags)
{
	uint8_t e = (uint8_t)event;

	emit_input(LOG_EV_CHR_EVENT, fe, &e, 1, how, icount, flags);
}

void
emit_rng_read(unsigned dev, const uint8_t *data, size_t len, unsigned how, int64_t icount,
	      uint64_t flags)
{
	emit_input(LOG_EV_RNG_READ, dev, data, len, how, icount, flags);
}

void
emit_monitor(unsigned same_turn, const char *request, size_t len, unsigned how, int64_t icount)
{
	emit_input(LOG_EV_MONITOR, same_turn, (const uint8_t *)request, len, how, icount, 0);
}

void
emit_net_recv(uint64_t id, const uint8_t *data, size_t len, unsigned how, int64_t icount,
	      uint64_t flags)
{
	emit_input(LOG_EV_NET_RECV, id, data, len, how, icount, flags);
}

void
emit_file_read(const char *text, size_t len)
{
	/* no icount: QEMU's 9p worker opened the file, at no moment of the guest's */
	emit_input(LOG_EV_FILE_READ, 0, (const uint8_t *)text, len, LOG_IC_UNKNOWN, 0, 0);
}

void
emit_host_clock(unsigned what, const char *value)
{
	emit_input(LOG_EV_HOST_CLOCK, what, (const uint8_t *)value, strlen(value), LOG_IC_EXACT, 0, 0);
}

void
emit_host_clock_read(unsigned what, int64_t value, unsigned how, int64_t icount)
{
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)((uint64_t)value >> (8 * i));
	emit_input(LOG_EV_HOST_CLOCK, what, b, sizeof(b), how, icount, 0);
}

void
emit_host_timer(unsigned timer, unsigned how, int64_t icount, uint64_t flags)
{
	static const uint8_t none[1];

	emit_input(LOG_EV_HOST_TIMER, timer, none, 0, how, icount, flags);
}

void
emit_warp(int64_t delta_ns, unsigned how, int64_t icount)
{
	struct log_event ev = { .kind = LOG_EV_WARP, .icount_how = how, .icount = icount,
				.delta_ns = delta_ns };

	sched_flush();
	log_writer_append(writer, &ev);
}

void
emit_slice(unsigned cpu, uint64_t ran, unsigned flags, int64_t icount)
{
	struct log_event ev = { .kind = LOG_EV_SLICE, .icount_how = LOG_IC_EXACT, .icount = icount,
				.id = cpu, .bytes = ran, .flags = flags };

	log_writer_append(writer, &ev);
}

void
emit_chaos(uint64_t decision, int64_t value, int64_t icount)
{
	struct log_event ev = { .kind = LOG_EV_CHAOS, .icount_how = LOG_IC_EXACT, .icount = icount,
				.decision = decision, .value = value };

	log_writer_append(writer, &ev);
}

void
emit_nested_poll(unsigned role, unsigned how, int64_t icount)
{
	struct log_event ev = { .kind = LOG_EV_NESTED_POLL, .icount_how = how, .icount = icount,
				.role = role };

	log_writer_append(writer, &ev);
}

void
emit_vm_change(int running, int state, unsigned how, int64_t icount)
{
	struct log_event ev = { .kind = running ? LOG_EV_VM_RESUME : LOG_EV_VM_STOP,
				.icount_how = how, .icount = icount, .state = (uint64_t)state };

	log_writer_append(writer, &ev);
}

void
emit_diverge(uint64_t index, const char *expected, const char *actual, unsigned how,
	     int64_t icount)
{
	struct log_event ev = { .kind = LOG_EV_DIVERGE, .icount_how = how, .icount = icount,
				.index = index, .text = expected, .text_len = strlen(expected),
				.text2 = actual, .text2_len = strlen(actual) };

	log_writer_append(writer, &ev);
}
