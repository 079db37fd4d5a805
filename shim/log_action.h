/*
 * log_action.h - the one definition of an *action*: an event of a log that
 * decides what the guest saw, and so the unit that replay forces and that
 * diff, bisect and flake count.  Part of the log library (liblog), used by
 * the shim's replay loader and by the tools alike.
 *
 * An action is, in a log recorded in exact mode (-icount shift=N,sleep=off):
 *  - a bh_run with an exact icount, not LOG_F_AT_ONCE, and not of the
 *    thread pool's completion BH (thread_pool_completion_bh only hands
 *    completions on; each completion is its own action);
 *  - an io_complete with an exact icount, not LOG_F_AT_ONCE;
 *  - a warp (always exact);
 *  - a chr_read, chr_event, rng_read, net_recv, monitor or host_timer event with an exact
 *    icount (input: exact logs only).  A host_clock event is none: the guest's
 *    own reads consume those, in order (gate_clock.h).
 * In an ordering-mode log the same, without the icount condition and
 * without warps (a run without -icount has none to force).
 *
 * Pure functions of their arguments; any thread.
 */
#ifndef BHRR_LOG_ACTION_H
#define BHRR_LOG_ACTION_H

#include <stddef.h>
#include <stdint.h>

#include "log.h"

enum log_action_kind {
	LOG_ACT_NONE = 0,
	LOG_ACT_RUN,      /* a BH ran: key = callback offset in the executable */
	LOG_ACT_COMPLETE, /* an I/O request completed: key = its submission ordinal */
	LOG_ACT_WARP,     /* the virtual clock warped: value = delta in ns */
	LOG_ACT_INPUT,    /* console input reached the guest (exact logs): key = frontend */
	LOG_ACT_ENTROPY,  /* host entropy reached a virtio-rng (exact logs): key = the device */
	LOG_ACT_MONITOR,  /* a monitor command changed the guest (exact logs): data = its QMP request */
	LOG_ACT_NET,      /* a frame reached a guest NIC (exact logs): key = NIC | flags << 32 */
	LOG_ACT_CHR_EVENT, /* a chardev event (opened, closed, break) reached a frontend: key = frontend */
	LOG_ACT_TIMER,    /* a timer on a host clock fired for the guest (exact logs): key = the timer */
};

#define LOG_ACT_THREAD_POOL_BH "thread_pool_completion_bh"

struct log_action {
	enum log_action_kind kind;
	uint64_t seq;         /* the event's sequence number in its log */
	int64_t icount;
	unsigned icount_how;  /* enum log_icount */
	uint64_t key;         /* RUN: callback offset; COMPLETE: request ordinal */
	int64_t value;        /* COMPLETE: return value; WARP: delta ns; INPUT, ENTROPY, MONITOR: XXH3-64 of the bytes */
	uint64_t ident;       /* RUN: the ident */
	uint64_t instance;    /* RUN: creation ordinal, 0 unknown */
	const char *name;     /* RUN: the BH's name, owned by the reader; "?" if unknown */
	const uint8_t *data;  /* INPUT, ENTROPY, MONITOR: the bytes, owned by the reader */
	size_t len;
	int at_io;            /* RUN, COMPLETE, INPUT of an exact log: landed at an I/O access (LOG_F_AT_IO) */
};

/*
 * Whether @ev, read from @r (for ident names), is an action of a log whose
 * header says @exact (icount_mode == 1).  1 with @a filled, or 0.
 */
int log_action_of(const struct log_reader *r, const struct log_event *ev, int exact,
		  struct log_action *a);

/*
 * A frame logged in pieces (net_recv with LOG_F_MORE, doc/log_format.md):
 * one gatherer per reader, zero-initialised.  log_pieces_add keeps @ev's
 * bytes and returns 1 if @ev is such a piece (no action of its own), else
 * 0; log_pieces_finish makes a net_recv action @a (the frame's last piece)
 * the whole frame: its data (owned by @p until the next add) and length,
 * and its value the hash of them; 0, or -1 out of memory.
 */
struct log_pieces {
	uint8_t *buf;
	size_t len, cap;
	int open; /* pieces kept since the last finish */
};
int log_pieces_add(struct log_pieces *p, const struct log_event *ev);
int log_pieces_finish(struct log_pieces *p, struct log_action *a);
void log_pieces_free(struct log_pieces *p);

/* Whether a log header describes an exact-mode recording. */
int log_header_exact(const struct log_header *h);

/*
 * The order check of an exact-mode log, event by event: its actions never go
 * back in icount, nor past the run's end (its end event).  A log altered
 * there would make replay wait for an icount the guest reaches only after
 * hours, never naming a divergence.  Zero-initialise one per log and pass
 * every event read (@a: its action, or NULL if it is none).  0, or -1 with
 * @why saying which event is out of place.  One check for the shim's replay
 * loader and for `bhrr replay`, which refuses before QEMU starts.
 */
struct log_order_check {
	int have;
	int64_t icount; /* the last action's */
	uint64_t seq;
};

int log_order_check(struct log_order_check *c, const struct log_event *ev,
		    const struct log_action *a, char *why, size_t len);

#endif
