/*
 * replay.h - what both replay policies share: the recorded actions (read
 * once by replay_load, through the log library's one definition of an
 * action), the cursor into them, taking kept work that an action calls
 * for, naming a divergence, and handing over to record when recorded
 * control ends.
 *
 * Threads: replay_load in the constructor (single-threaded); everything
 * else with the BQL, which guards the cursor (replay.next).  The action
 * list is read-only after loading.
 */
#ifndef BHRR_REPLAY_H
#define BHRR_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "log_action.h"

struct replay_action {
	struct log_action a;
	uint64_t ckey;  /* ordering mode: the request's content key, 0 unknown */
	char name[48];  /* RUN: the BH's name */
	uint8_t *data;  /* INPUT: the bytes (a.data, a.len), owned */
	size_t slice;   /* -smp: the vCPU turns (slice events) the record logged before it */
};

/* One recorded vCPU turn of -smp's round robin (a slice event, vcpu_sched.h). */
struct replay_slice {
	int64_t icount;   /* the global icount at its end */
	uint64_t ran;     /* instructions */
	unsigned cpu;     /* the vCPU's index */
	unsigned flags;   /* LOG_F_AFTER_EXC */
};

/* A recorded read of a host clock (gate_clock.h), answered in order. */
struct replay_read {
	uint64_t seq;
	int64_t icount;
	unsigned how, what;       /* enum log_icount; enum log_host_clock */
	int64_t value;
};

struct replay {
	struct replay_action *v;  /* read-only after replay_load */
	size_t n;
	size_t next;              /* BQL */
	int ordering;             /* an ordering-mode log */
	unsigned version;         /* its format version */
	unsigned shift;           /* its -icount shift */
	unsigned long long parks; /* vCPU thread */
	long long progress_ns;    /* BQL: when an action was last delivered (ordering) */
	int64_t end_icount;       /* the recording's end (its end event, exact), -1 if none */
	char rtc_start[32];       /* the recorded RTC start (host_clock), "" if none */
	uint64_t rtc_seq;         /* its event's sequence number */
	struct replay_read *reads; /* the recorded host clock reads, read-only after replay_load */
	size_t n_reads;
	size_t next_read;         /* BQL: the next one to answer */
	struct replay_slice *slices; /* -smp's recorded turns, read-only after replay_load */
	size_t n_slices;
};

extern struct replay replay;

/*
 * Read @path's actions.  0, or -1 with @why (not a log, another build
 * without BHRR_FORCE, out of memory).  Constructor only.
 */
int replay_load(const char *path, char *why, size_t len);
/* The action due next, or NULL at the end of the log. */
const struct replay_action *replay_due(void);
/* Whether what @a calls for has arrived (held_mu taken inside). */
int replay_available(const struct replay_action *a);
/* Take what @a calls for and run it at the icount now; 1 if it was there.  BQL. */
int replay_take(const struct replay_action *a);
/*
 * Name the divergence at the action due (what was expected, and @fmt: what
 * happened), log it, end recorded control, and stop QEMU unless
 * BHRR_ON_DIVERGE=continue.  BQL.
 */
void replay_diverge(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same at recorded event #@seq, which was @expected (not an action). */
void replay_diverge_at(uint64_t seq, const char *expected, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/*
 * Recorded control ends (@why): switch to the record policy and run
 * everything still held, at once.  BQL; idempotent.
 */
void replay_free(const char *why);
/*
 * A nested aio_poll of a running VM.  In the main thread (it may be waiting
 * for kept work, as a drain does) recorded control ends.  In the vCPU
 * thread (a device's reset or cancel) what no recorded action still calls
 * for runs at once, as the record ran it there.  BQL.
 */
void replay_nested_poll(void);
/*
 * Run at once what is kept and no recorded action still calls for (the
 * record ran it at once: a VM stop, a nested poll); how many.  BQL.
 */
size_t replay_run_unexpected(void);
/* The vCPU thread's nested poll waits for work kept for later: a divergence.  BQL. */
void replay_nested_stuck(void);
/* Whether recorded control has ended. */
int replay_is_free(void);
/*
 * Whether it ended before the log did (a divergence, a stop, a nested
 * poll): the log no longer answers what the guest reads.  BQL.
 */
int replay_forcing_ended(void);
/*
 * Whether live input from the host (console bytes and events, network
 * frames, monitor commands) may reach the guest: once recorded control has
 * ended and, when it ended with every action taken, the run has passed the
 * recording's end icount.  The recording saw no input between its last
 * action and its end, so neither does a faithful replay: a harness still
 * typing into a replay that has taken its last keystroke, or a QMP client
 * still sending, is ignored until then, however fast the replay got there.
 * A divergence, a log without a complete end (dropped events),
 * frees input at once.  BQL (the main loop; the vCPU thread in an I/O
 * access, where the icount read is a lower bound and only delays this).
 */
int replay_input_free(void);

#endif
