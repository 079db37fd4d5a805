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

#define STACK_TEXT_MAX (16 * 24)

static struct log_writer *writer; /* set before any thread runs; read-only after */

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

struct log_writer *
emit_writer(void)
{
	return writer;
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

/* The ident of @cb; ids_mu held. */
static uint64_t
ident_locked(const void *cb, const char *name)
{
	int is_new;
	uint64_t id = ident_intern(&idents, cb, &is_new);

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
	return id;
}

uint64_t
emit_ident(const void *cb, const char *name)
{
	pthread_mutex_lock(&ids_mu);
	uint64_t id = ident_locked(cb, name);

	pthread_mutex_unlock(&ids_mu);
	return id;
}

uint64_t
emit_instance_of(const void *bh)
{
	pthread_mutex_lock(&ids_mu);
	struct inst_slot *s = inst_find(&insts, bh);
	uint64_t n = s ? s->instance : 0;

	pthread_mutex_unlock(&ids_mu);
	return n;
}

void
emit_bh_run(const struct held *h, unsigned how, int64_t icount, uint64_t flags)
{
	struct log_event ev = { .kind = LOG_EV_BH_RUN, .icount_how = how, .icount = icount,
				.flags = flags, .ident = h->ident, .instance = h->instance };

	pthread_mutex_lock(&ids_mu);
	ev.ordinal = ident_next_ordinal(&idents, h->ident);
	log_writer_append(writer, &ev);
	pthread_mutex_unlock(&ids_mu);
}

void
emit_schedule(const void *cb, const char *name, void *const *frames, int n, unsigned how,
	      int64_t icount, unsigned role)
{
	struct log_event ev = { 0 };

	ev.kind = LOG_EV_BH_SCHEDULE;
	ev.icount = icount;
	ev.icount_how = how;
	ev.role = role;
	pthread_mutex_lock(&ids_mu);
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
	pthread_mutex_unlock(&ids_mu);
}

void
emit_bh_new(const void *bh, const void *cb, const char *name)
{
	struct log_event ev = { 0 };
	unsigned how;

	ev.kind = LOG_EV_BH_NEW;
	ev.icount = qrt_icount_now(&how, 0);
	ev.icount_how = how;
	pthread_mutex_lock(&ids_mu);
	ev.ident = ident_locked(cb, name);
	ev.instance = ident_next_creation(&idents, ev.ident);
	if (ev.instance)
		inst_add(&insts, bh, ev.ident, ev.instance);
	log_writer_append(writer, &ev);
	pthread_mutex_unlock(&ids_mu);
}

void
emit_bh_delete(const void *bh)
{
	struct log_event ev = { 0 };
	unsigned how;

	pthread_mutex_lock(&ids_mu);
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
	pthread_mutex_unlock(&ids_mu);
}

uint64_t
emit_io_submit(uint64_t req, uint64_t op, uint64_t offset, uint64_t bytes, unsigned how,
	       int64_t icount)
{
	struct log_event ev = { .kind = LOG_EV_IO_SUBMIT, .icount_how = how, .icount = icount,
				.req = req, .op = op, .offset = offset, .bytes = bytes };

	pthread_mutex_lock(&ids_mu);
	uint64_t key = content_key(&occ, op, offset, bytes);

	pthread_mutex_unlock(&ids_mu);
	log_writer_append(writer, &ev);
	return key;
}

void
emit_io_complete(uint64_t req, int64_t ret, unsigned how, int64_t icount, uint64_t flags)
{
	struct log_event ev = { .kind = LOG_EV_IO_COMPLETE, .icount_how = how, .icount = icount,
				.flags = flags, .req = req, .ret = ret };

	log_writer_append(writer, &ev);
}

void
emit_warp(int64_t delta_ns, unsigned how, int64_t icount)
{
	struct log_event ev = { .kind = LOG_EV_WARP, .icount_how = how, .icount = icount,
				.delta_ns = delta_ns };

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
