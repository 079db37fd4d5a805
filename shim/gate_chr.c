/*
 * gate_chr.c - console and channel input (see gate_chr.h).
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emit.h"
#include "gate.h"
#include "gate_chr.h"
#include "log.h"
#include "policy.h"
#include "qemu_rt.h"
#include "replay.h"
#include "symbols.h"
#include "vlog.h"

typedef int chr_can_read_fn(void *opaque);
typedef void chr_read_fn(void *opaque, const uint8_t *buf, int size);
typedef void chr_event_fn(void *opaque, int event);
typedef void set_handlers_fn(void *b, chr_can_read_fn *can_read, chr_read_fn *read,
			     void *event, void *be_change, void *opaque, void *context,
			     bool set_open, bool sync_state);

/*
 * A guest frontend, by its CharBackend; ordinals in order of first
 * registration.  QEMU deregisters with every handler and the opaque NULL
 * (qemu_chr_fe_deinit, virtconsole on a VM stop), so the CharBackend is
 * the key; the wrappers, called with the opaque only, find the registered
 * entry by it.
 */
struct fe {
	void *b;                   /* the CharBackend */
	void *opaque;
	chr_can_read_fn *can_read; /* the frontend's own; NULL: it takes whatever comes */
	chr_read_fn *read;         /* NULL while unregistered */
	chr_event_fn *event;       /* the frontend's own; NULL: none */
	size_t pending;            /* record: bytes (and events, one each) held for it, not landed yet */
	int said;                  /* replay: "live input ignored" said */
	int said_event;            /* replay: "live event ignored" said */
};

#define FE_MAX 64
#define DRAIN 4096 /* replay: what a backend may read to be dropped */

static struct fe fes[FE_MAX];           /* BQL */
static unsigned n_fes;                  /* BQL */
static int said_full, said_shared;      /* BQL */
static enum { CHR_OFF, CHR_RECORD, CHR_REPLAY } mode; /* set once, before main() */
static set_handlers_fn *real_set_handlers;
static __thread int set_depth;          /* this thread's nesting of registrations */
static atomic_ullong bytes_in, dropped;

void
gate_chr_start(int recording, int replay_mode)
{
	mode = recording ? CHR_RECORD : replay_mode ? CHR_REPLAY : CHR_OFF;
}

/* The registered frontend of @opaque (its read set), or NULL. */
static struct fe *
fe_of(const void *opaque)
{
	for (unsigned i = 0; i < n_fes; i++)
		if (fes[i].opaque == opaque && fes[i].read != NULL)
			return &fes[i];
	return NULL;
}

static struct fe *
fe_of_backend(const void *b)
{
	for (unsigned i = 0; i < n_fes; i++)
		if (fes[i].b == b)
			return &fes[i];
	return NULL;
}

/* Replay, and not past the recording's end: live input is not the guest's. */
static int
replaying(void)
{
	return mode == CHR_REPLAY && !replay_input_free();
}

static int
wrap_can_read(void *opaque)
{
	struct fe *f = fe_of(opaque);

	if (f == NULL)
		return 0;
	if (replaying())
		return DRAIN;
	/*
	 * While bytes or events wait to land, nothing more: the frontend's room
	 * is known only after they land (a virtio console fills whole guest
	 * buffers; a break fills a 16550's receive register).
	 */
	if (f->pending > 0)
		return 0;
	return f->can_read ? f->can_read(opaque) : DRAIN;
}

/*
 * Log @n (<= LOG_TEXT_MAX) bytes for @f at @icount and hand them to its
 * read, as the executor runs work (nested BHs pass the gate).
 */
static void
deliver(struct fe *f, const uint8_t *buf, size_t n, unsigned how, int64_t icount, uint64_t flags)
{
	emit_chr_read((unsigned)(f - fes), buf, n, how, icount, flags);
	atomic_fetch_add(&bytes_in, n);
	gate_in_executor++;
	f->read(f->opaque, buf, (int)n);
	gate_in_executor--;
}

/* Log event @e for @f at @icount and hand it to its handler, as the executor runs work. */
static void
deliver_event(struct fe *f, int e, unsigned how, int64_t icount, uint64_t flags)
{
	emit_chr_event((unsigned)(f - fes), (unsigned)e, how, icount, flags);
	gate_in_executor++;
	f->event(f->opaque, e);
	gate_in_executor--;
}

/* The same here and now, outside recorded control. */
static void
deliver_at_once(struct fe *f, const uint8_t *buf, size_t n)
{
	unsigned how;
	int64_t ic = qrt_icount_now(&how, 0);

	deliver(f, buf, n, how, ic, LOG_F_AT_ONCE);
}

/* The same for event @e. */
static void
deliver_event_at_once(struct fe *f, int e)
{
	unsigned how;
	int64_t ic = qrt_icount_now(&how, 0);

	deliver_event(f, e, how, ic, LOG_F_AT_ONCE);
}

/* A replay past its log's end: live input delivered at once, in pieces a log event can carry. */
static void
pass_live(struct fe *f, const uint8_t *buf, size_t n)
{
	for (size_t k; n > 0; buf += k, n -= k) {
		k = n < LOG_TEXT_MAX ? n : LOG_TEXT_MAX;
		deliver_at_once(f, buf, k);
	}
}

/* Record: hold @n bytes for @f, in pieces a log event can carry. */
static void
hold(struct fe *f, const uint8_t *buf, size_t n)
{
	while (n > 0) {
		size_t k = n < LOG_TEXT_MAX ? n : LOG_TEXT_MAX;
		struct held h = { .kind = HELD_CHR, .fe = (unsigned)(f - fes), .len = k };

		h.data = malloc(k);
		if (h.data != NULL)
			memcpy(h.data, buf, k);
		if (h.data != NULL && held_add(&h) == 0) {
			f->pending += k;
			policy_record_arm_held();
		} else {
			/* no room to hold it: delivered here, logged outside recorded control */
			free(h.data);
			vlog_error("console input: cannot hold %zu bytes; delivered at once, outside "
				   "recorded control", k);
			deliver_at_once(f, buf, k);
		}
		buf += k;
		n -= k;
	}
}

/*
 * A chardev event (a socket client came or went, a break, a mux switch):
 * input like a byte, since it reaches the guest (a virtio-serial port opens
 * or closes, a 16550 sees a break) whenever the host makes it.  Held and
 * landed in record, also one QEMU sends while the frontend registers (it
 * says whether a client is connected then); dropped live in replay.
 */
static void
wrap_event(void *opaque, int e)
{
	struct fe *f = fe_of(opaque);

	if (f == NULL || f->event == NULL)
		return;
	if (mode == CHR_REPLAY && replay_input_free()) {
		deliver_event_at_once(f, e);
		return;
	}
	if (mode == CHR_REPLAY) {
		/* a backend opening at start sends one in every run: verbose only */
		if (!f->said_event) {
			f->said_event = 1;
			vlog("replay: live %s event to console frontend %u ignored: the recorded "
			     "events are replayed", log_chr_event_name((unsigned)e), (unsigned)(f - fes));
		}
		return;
	}
	struct held h = { .kind = HELD_CHR, .fe = (unsigned)(f - fes), .ret = e + 1 };

	if (held_add(&h) == 0) {
		f->pending++;
		policy_record_arm_held();
		return;
	}
	vlog_error("console input: cannot hold an event; delivered at once, outside recorded control");
	deliver_event_at_once(f, e);
}

static void
wrap_read(void *opaque, const uint8_t *buf, int size)
{
	struct fe *f = fe_of(opaque);

	if (f == NULL || f->read == NULL || size <= 0)
		return;
	if (mode == CHR_REPLAY && replay_input_free()) {
		/* past the recording's end: the run goes on free, input included */
		pass_live(f, buf, (size_t)size);
		return;
	}
	if (mode == CHR_REPLAY) {
		atomic_fetch_add(&dropped, (unsigned long long)size);
		if (!f->said) {
			f->said = 1;
			vlog_say("replay: live input to console frontend %u ignored: the recorded "
				 "input is replayed", (unsigned)(f - fes));
		}
		return;
	}
	hold(f, buf, (size_t)size);
}

/* The chardev labelled @name, or NULL. */
static void *
chr_named(const char *name)
{
	void *(*find)(const char *) = shim_qemu.sym[QS_QEMU_CHR_FIND].addr;

	return find(name);
}

/*
 * Whether a registration is a guest frontend's: not nested in another (a
 * mux's or hub's on its base), not the monitor's, not gdb's (its packets
 * start and stop the VM: held, they would never land), not one polled by
 * an iothread's context (no BQL there).
 */
static int
guest_frontend(void *b, chr_can_read_fn *can_read, void *context)
{
	void *chr;

	if (set_depth > 0 || context != NULL ||
	    (void *)can_read == shim_qemu.sym[QS_MONITOR_CAN_READ].addr)
		return 0;
	__builtin_memcpy(&chr, b, sizeof(chr)); /* CharBackend.chr, its first field */
	return chr == NULL || chr != chr_named("gdb");
}

static void
hk_set_handlers(void *b, chr_can_read_fn *can_read, chr_read_fn *read, void *event,
		void *be_change, void *opaque, void *context, bool set_open, bool sync_state)
{
	struct fe *f = mode == CHR_OFF || b == NULL ? NULL : fe_of_backend(b);

	if (f != NULL) {
		/* registered again (virtconsole does at every status change), or deregistered */
		f->read = NULL;
		f->can_read = NULL;
		f->event = NULL;
	}
	if (mode != CHR_OFF && b != NULL && read != NULL && guest_frontend(b, can_read, context)) {
		if (fe_of(opaque) != NULL) {
			/* two backends for one opaque (colo-compare): the wrappers could not tell them apart */
			if (!said_shared) {
				said_shared = 1;
				vlog_error("two character devices feed one frontend; the second's input "
					   "is not recorded");
			}
			f = NULL;
		} else if (f == NULL && n_fes < FE_MAX) {
			f = &fes[n_fes++];
			f->b = b;
		} else if (f == NULL && !said_full) {
			said_full = 1;
			vlog_error("more than %d console frontends; the others' input is not "
				   "recorded", FE_MAX);
		}
		if (f != NULL) {
			f->opaque = opaque;
			f->can_read = can_read;
			f->read = read;
			f->event = (chr_event_fn *)event;
			can_read = can_read ? wrap_can_read : NULL;
			read = wrap_read;
			event = event ? (void *)wrap_event : NULL;
		}
	}
	set_depth++;
	real_set_handlers(b, can_read, read, event, be_change, opaque, context, set_open,
			  sync_state);
	set_depth--;
}

/*
 * Nothing waits for @f any more: ask its backend for input again.  While
 * something waited, can_read offered nothing, and a backend that buffers
 * (a mux) asks again only when told; after a byte the guest's read of it
 * tells it, after an event nothing would.
 */
static void
reopen(struct fe *f)
{
	if (f->pending == 0 && f->read != NULL)
		((void (*)(void *))shim_qemu.sym[QS_CHR_FE_ACCEPT_INPUT].addr)(f->b);
}

static void run_held(struct fe *f, struct held *h, unsigned how, int64_t icount, uint64_t flags);

void
gate_chr_run_held(struct held *h, unsigned how, int64_t icount, uint64_t flags)
{
	struct fe *f = h->fe < n_fes ? &fes[h->fe] : NULL;

	run_held(f, h, how, icount, flags);
	if (f != NULL && mode == CHR_RECORD)
		reopen(f);
}

static void
run_held(struct fe *f, struct held *h, unsigned how, int64_t icount, uint64_t flags)
{
	if (h->ret > 0) {
		/* an event */
		if (f != NULL && f->pending > 0)
			f->pending--;
		if (f == NULL || f->event == NULL)
			vlog("console input: %s event for frontend %u dropped: it is gone",
			     log_chr_event_name((unsigned)h->ret - 1), h->fe);
		else
			deliver_event(f, h->ret - 1, how, icount, flags);
		return;
	}

	if (f != NULL)
		f->pending -= h->len < f->pending ? h->len : f->pending;
	if (f == NULL || f->read == NULL) {
		vlog("console input: %zu bytes for frontend %u dropped: it is gone", h->len, h->fe);
		free(h->data);
		return;
	}
	/*
	 * What the frontend takes now: all of it, unless the guest shrank its
	 * FIFO meanwhile.  The rest is lost, as QEMU would lose it; what the
	 * log says reached the guest is what did.
	 */
	size_t n = h->len;

	if (f->can_read != NULL) {
		int k = f->can_read(f->opaque);

		if (k >= 0 && (size_t)k < n) {
			vlog("console input: frontend %u took %d of %zu bytes", h->fe, k, n);
			n = (size_t)k;
		}
	}
	if (n > 0)
		deliver(f, h->data, n, how, icount, flags);
	free(h->data);
}

int
gate_chr_inject(uint64_t fe, const uint8_t *data, size_t len, unsigned how, int64_t icount,
		uint64_t flags, char *why, size_t whylen)
{
	struct fe *f = fe < n_fes ? &fes[fe] : NULL;

	if (f == NULL || f->read == NULL) {
		snprintf(why, whylen, "the guest has no console frontend %llu to take it",
			 (unsigned long long)fe);
		return -1;
	}
	/* the record gave it no more than it could take: less room is another guest */
	int k = f->can_read ? f->can_read(f->opaque) : (int)len;

	if (k < 0 || (size_t)k < len) {
		snprintf(why, whylen, "console frontend %llu can take %d of the %zu recorded bytes",
			 (unsigned long long)fe, k, len);
		return -1;
	}
	deliver(f, data, len, how, icount, flags);
	return 0;
}

int
gate_chr_inject_event(uint64_t fe, const uint8_t *data, size_t len, unsigned how, int64_t icount,
		      uint64_t flags, char *why, size_t whylen)
{
	struct fe *f = fe < n_fes ? &fes[fe] : NULL;

	if (f == NULL || f->event == NULL || len != 1) {
		snprintf(why, whylen, "the guest has no console frontend %llu taking events",
			 (unsigned long long)fe);
		return -1;
	}
	deliver_event(f, data[0], how, icount, flags);
	return 0;
}

unsigned long long
gate_chr_bytes(void)
{
	return bytes_in;
}

unsigned long long
gate_chr_dropped(void)
{
	return dropped;
}

static const struct hook_spec hooks[] = {
	{ QS_CHR_FE_SET_HANDLERS_FULL, (void *)hk_set_handlers, (void **)&real_set_handlers },
};

const struct hook_spec *
gate_chr_hooks(size_t *n)
{
	*n = sizeof(hooks) / sizeof(hooks[0]);
	return hooks;
}
