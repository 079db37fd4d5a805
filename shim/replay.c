/*
 * replay.c - the recorded actions and what both replay policies do with
 * them (see replay.h).
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "debug.h"
#include "emit.h"
#include "gate.h"
#include "gate_chr.h"
#include "gate_net.h"
#include "gate_clock.h"
#include "gate_rng.h"
#include "grow.h"
#include "held.h"
#include "ident.h"
#include "log.h"
#include "policy.h"
#include "qemu_rt.h"
#include "replay.h"
#include "settings.h"
#include "shim.h"
#include "vlog.h"

#define KEYS_MAX (1u << 24) /* request ordinals given a content key */

struct replay replay;
static int freed; /* BQL; read anywhere (atomic) */
/* Set with freed when every action had been taken (replay_input_free); BQL. */
static int freed_at_end;
/* Live input reaches the guest again (replay_input_free); BQL. */
static int input_freed;

int
replay_is_free(void)
{
	return __atomic_load_n(&freed, __ATOMIC_ACQUIRE);
}

int
replay_forcing_ended(void)
{
	return replay_is_free() && !freed_at_end;
}

int
replay_input_free(void)
{
	unsigned how;

	if (!replay_is_free())
		return 0;
	if (input_freed)
		return 1;
	if (!freed_at_end || replay.ordering || replay.end_icount < 0 ||
	    qrt_icount_now(&how, 0) >= replay.end_icount) {
		input_freed = 1;
		if (freed_at_end && !replay.ordering && replay.end_icount >= 0)
			vlog("replay: past the recording's end (icount %lld): live input reaches the "
			     "guest", (long long)replay.end_icount);
	}
	return input_freed;
}

const struct replay_action *
replay_due(void)
{
	return replay.next < replay.n ? &replay.v[replay.next] : NULL;
}

/* Ordering mode: each request's content key, by submission ordinal. */
struct keys {
	uint64_t *v;
	size_t cap;
	struct occ occ;
};

static void
keys_add(struct keys *k, const struct log_event *ev)
{
	if (ev->req >= KEYS_MAX)
		return;
	size_t old = k->cap;

	if (GROW(k->v, ev->req, k->cap) < 0)
		return;
	memset(k->v + old, 0, (k->cap - old) * sizeof(*k->v));
	k->v[ev->req] = content_key(&k->occ, ev->op, ev->offset, ev->bytes);
}

int
replay_load(const char *path, char *why, size_t len)
{
	char err[512];
	int code;
	struct log_reader *r = log_reader_open(path, &code, err, sizeof(err));
	struct log_event ev;
	size_t cap = 0, rcap = 0, scap = 0;
	struct keys *keys;
	struct log_order_check order = { 0 };
	struct log_pieces pieces = { 0 };

	if (r == NULL) {
		snprintf(why, len, "%s", err);
		return -1;
	}
	const struct log_header *h = log_reader_header(r);

	replay.ordering = !log_header_exact(h);
	if (strcmp(h->build_id, shim_qemu.build_id) != 0 && !bhrr_cfg.force) {
		snprintf(why, len, "%s was recorded with QEMU build %s (%s), this is %s (%s)", path,
			 h->build_id, h->qemu_version, shim_qemu.build_id, shim_qemu.version);
		log_reader_close(r);
		return -1;
	}
	replay.shift = h->icount_shift;
	replay.version = h->version;
	replay.end_icount = -1;
	keys = calloc(1, sizeof(*keys));
	if (keys == NULL) {
		snprintf(why, len, "out of memory reading %s", path);
		log_reader_close(r);
		return -1;
	}
	while (log_reader_next(r, &ev) == 1) {
		struct replay_action ra = { 0 };

		if (ev.kind == LOG_EV_IO_SUBMIT) {
			keys_add(keys, &ev);
			continue;
		}
		if (ev.kind == LOG_EV_END) /* and on to the order check */
			replay.end_icount = ev.icount_how == LOG_IC_EXACT && ev.complete &&
						    ev.dropped == 0 ? ev.icount : -1;
		int64_t v;

		if (ev.kind == LOG_EV_HOST_CLOCK && log_host_clock_value(&ev, &v) == 0) {
			if (GROW(replay.reads, replay.n_reads, rcap) < 0) {
				snprintf(why, len, "out of memory reading %s", path);
				goto refuse;
			}
			replay.reads[replay.n_reads++] = (struct replay_read){
				.seq = ev.seq, .icount = ev.icount, .how = ev.icount_how,
				.what = (unsigned)ev.id, .value = v };
			continue;
		}
		if (ev.kind == LOG_EV_SLICE && !replay.ordering) {
			const struct replay_slice *prev =
				replay.n_slices ? &replay.slices[replay.n_slices - 1] : NULL;

			/* the global icount moves only in the vCPUs' turns */
			if (ev.icount_how != LOG_IC_EXACT || ev.icount < 0 ||
			    (prev && (uint64_t)(ev.icount - prev->icount) != ev.bytes)) {
				snprintf(why, len, "%s: slice event #%llu ends at icount %lld after %llu "
					 "instructions, but the turn before ended at %lld (an altered log?)",
					 path, (unsigned long long)ev.seq, (long long)ev.icount,
					 (unsigned long long)ev.bytes, prev ? (long long)prev->icount : -1ll);
				goto refuse;
			}
			if (GROW(replay.slices, replay.n_slices, scap) < 0) {
				snprintf(why, len, "out of memory reading %s", path);
				goto refuse;
			}
			replay.slices[replay.n_slices++] = (struct replay_slice){
				.icount = ev.icount, .ran = ev.bytes, .cpu = (unsigned)ev.id,
				.flags = (unsigned)ev.flags };
			continue;
		}
		if (ev.kind == LOG_EV_HOST_CLOCK && ev.id == 0) {
			snprintf(replay.rtc_start, sizeof(replay.rtc_start), "%.*s", (int)ev.text_len,
				 ev.text);
			replay.rtc_seq = ev.seq;
			continue;
		}
		if (!replay.ordering && log_pieces_add(&pieces, &ev))
			continue; /* a piece of a frame, gathered for its last piece */
		int act = log_action_of(r, &ev, !replay.ordering, &ra.a);
		char bad[256];

		if (!replay.ordering && log_order_check(&order, &ev, act ? &ra.a : NULL, bad,
							sizeof(bad)) < 0) {
			snprintf(why, len, "%s: %s (an altered log?)", path, bad);
			goto refuse;
		}
		if (!act)
			continue;
		if (log_pieces_finish(&pieces, &ra.a) < 0) {
			snprintf(why, len, "out of memory reading %s", path);
			goto refuse;
		}
		ra.slice = replay.n_slices;
		if (ra.a.kind == LOG_ACT_RUN)
			snprintf(ra.name, sizeof(ra.name), "%s", ra.a.name);
		else if (ra.a.kind == LOG_ACT_COMPLETE)
			ra.ckey = ra.a.key < keys->cap ? keys->v[ra.a.key] : 0;
		else if (ra.a.kind == LOG_ACT_INPUT || ra.a.kind == LOG_ACT_ENTROPY ||
			 ra.a.kind == LOG_ACT_MONITOR || ra.a.kind == LOG_ACT_NET ||
			 ra.a.kind == LOG_ACT_CHR_EVENT) {
			ra.data = malloc(ra.a.len ? ra.a.len : 1);
			if (ra.data == NULL) {
				snprintf(why, len, "out of memory reading %s", path);
				goto refuse;
			}
			memcpy(ra.data, ra.a.data, ra.a.len);
		}
		ra.a.name = NULL; /* the reader's memory goes away */
		ra.a.data = NULL;
		if (GROW(replay.v, replay.n, cap) < 0) {
			snprintf(why, len, "out of memory reading %s", path);
			goto refuse;
		}
		replay.v[replay.n++] = ra;
	}
	if (log_reader_damage_count(r))
		vlog_error("%s is damaged; replaying the %zu actions that could be read", path, replay.n);
	log_reader_close(r);
	log_pieces_free(&pieces);
	free(keys->v);
	free(keys);
	return 0;
refuse:
	log_reader_close(r);
	log_pieces_free(&pieces);
	free(keys->v);
	free(keys);
	return -1;
}

/*
 * Whether @h is what @a calls for: a BH by its callback; a completion by
 * what the request does (op, offset, bytes, and which occurrence of those),
 * not by its submission ordinal.  A guest not held to the same instructions
 * (ordering mode) can batch, and so number, its requests differently; and
 * even in exact mode a device may number them by host timing: virtio-blk
 * with ioeventfd=on popped what the guest queued when the main loop got to
 * the kick (gate_notify.h runs kicks in the guest's write now), and sorts
 * each batch by sector before submitting it.  Matched by
 * ordinal, such a replay followed every recorded event and still gave the
 * guest other commands' completions.  A log without the submission falls
 * back to the ordinal.
 */
static int
matches(const struct held *h, const void *arg)
{
	const struct replay_action *a = arg;

	if (a->a.kind == LOG_ACT_RUN)
		return h->kind == HELD_BH && h->cb_off == a->a.key;
	if (a->a.kind != LOG_ACT_COMPLETE || h->kind != HELD_REQ)
		return 0;
	return a->ckey ? h->req->key == a->ckey : h->req->id == a->a.key;
}

int
replay_available(const struct replay_action *a)
{
	if (a->a.kind == LOG_ACT_INPUT || a->a.kind == LOG_ACT_ENTROPY ||
	    a->a.kind == LOG_ACT_MONITOR || a->a.kind == LOG_ACT_NET ||
	    a->a.kind == LOG_ACT_CHR_EVENT || a->a.kind == LOG_ACT_TIMER)
		return 1; /* the log has it */
	pthread_mutex_lock(&held_mu);
	int ok = heldq_find(&held_q, 0, matches, a) < held_q.n;

	pthread_mutex_unlock(&held_mu);
	return ok;
}

/* The icount an action runs at here; in an I/O access (gate_land_flags) qemu_icount lags: the TB still runs. */
static int64_t
take_icount(unsigned *how)
{
	return gate_land_flags ? qrt_icount_here(how, qrt_role()) : qrt_icount_now(how, 1);
}

int
replay_take(const struct replay_action *a)
{
	if (a->a.kind == LOG_ACT_MONITOR)
		return 0; /* the main loop runs it (gate_mon.h), never a taker */
	if (a->a.kind == LOG_ACT_INPUT || a->a.kind == LOG_ACT_ENTROPY || a->a.kind == LOG_ACT_NET ||
	    a->a.kind == LOG_ACT_CHR_EVENT) {
		unsigned how;
		int64_t ic = take_icount(&how);
		char why[128];
		int (*inject)(uint64_t, const uint8_t *, size_t, unsigned, int64_t, uint64_t, char *,
			      size_t) = a->a.kind == LOG_ACT_INPUT ? gate_chr_inject :
					a->a.kind == LOG_ACT_CHR_EVENT ? gate_chr_inject_event :
					a->a.kind == LOG_ACT_NET ? gate_net_inject : gate_rng_inject;

		if (inject(a->a.key, a->data, a->a.len, how, ic, gate_land_flags, why, sizeof(why)) < 0) {
			replay_diverge("%s", why);
			return 0;
		}
		return 1;
	}
	if (a->a.kind == LOG_ACT_TIMER) {
		unsigned how;
		int64_t ic = take_icount(&how);
		char why[128];

		if (gate_clock_inject_timer(a->a.key, how, ic, gate_land_flags, why, sizeof(why)) < 0) {
			replay_diverge("%s", why);
			return 0;
		}
		return 1;
	}
	pthread_mutex_lock(&held_mu);
	size_t i = heldq_find(&held_q, 0, matches, a);

	if (i == held_q.n) {
		pthread_mutex_unlock(&held_mu);
		return 0;
	}
	struct held h = heldq_take(&held_q, i);

	pthread_mutex_unlock(&held_mu);
	unsigned how;
	int64_t ic = take_icount(&how);

	gate_run_held(&h, how, ic, 0);
	return 1;
}

static void
describe(char *buf, size_t len, const struct replay_action *a)
{
	char at[48] = "";

	if (a == NULL) {
		snprintf(buf, len, "the end of the log");
		return;
	}
	if (!replay.ordering)
		snprintf(at, sizeof(at), " at icount %lld%s", (long long)a->a.icount,
			 a->a.at_io ? " (at an I/O access)" : "");
	if (a->a.kind == LOG_ACT_COMPLETE)
		snprintf(buf, len, "io_complete of request %llu%s", (unsigned long long)a->a.key, at);
	else if (a->a.kind == LOG_ACT_RUN)
		snprintf(buf, len, "bh_run of %s (callback +%#llx)%s", a->name,
			 (unsigned long long)a->a.key, at);
	else if (a->a.kind == LOG_ACT_INPUT)
		snprintf(buf, len, "chr_read of %zu bytes for console frontend %llu%s", a->a.len,
			 (unsigned long long)a->a.key, at);
	else if (a->a.kind == LOG_ACT_ENTROPY)
		snprintf(buf, len, "rng_read of %zu bytes for entropy device %llu%s", a->a.len,
			 (unsigned long long)a->a.key, at);
	else if (a->a.kind == LOG_ACT_CHR_EVENT)
		snprintf(buf, len, "chr_event %s for console frontend %llu%s",
			 a->a.len ? log_chr_event_name(a->data[0]) : "?", (unsigned long long)a->a.key, at);
	else if (a->a.kind == LOG_ACT_NET)
		snprintf(buf, len, "net_recv of a %zu-byte frame for NIC %llu%s", a->a.len,
			 (unsigned long long)(a->a.key & 0xffffffffu), at);
	else if (a->a.kind == LOG_ACT_TIMER)
		snprintf(buf, len, "host_timer %llu (a timer on the host's clock)%s",
			 (unsigned long long)a->a.key, at);
	else if (a->a.kind == LOG_ACT_MONITOR)
		snprintf(buf, len, "monitor command %.*s%s", (int)(a->a.len < 120 ? a->a.len : 120),
			 (const char *)a->data, at);
	else
		snprintf(buf, len, "warp of %lld ns%s", (long long)a->a.value, at);
}

static void
diverge(uint64_t seq, const char *expected, const char *actual)
{
	unsigned how;

	vlog_say("replay: divergence at recorded event #%llu: expected %s; %s",
		 (unsigned long long)seq, expected, actual);
	int64_t ic = qrt_icount_now(&how, 0);

	emit_diverge(seq, expected, actual, how, ic);
	replay_free("divergence");
	if (bhrr_cfg.stop_on_diverge) {
		vlog_say("replay: stopping QEMU (BHRR_ON_DIVERGE=stop; 'continue' would run on free)");
		qrt.shutdown_request(QRT_SHUTDOWN_CAUSE_HOST_ERROR);
	}
}

void
replay_diverge(const char *fmt, ...)
{
	char actual[256], expected[256];
	va_list ap;
	const struct replay_action *a = replay_due();

	va_start(ap, fmt);
	vsnprintf(actual, sizeof(actual), fmt, ap);
	va_end(ap);
	describe(expected, sizeof(expected), a);
	diverge(a ? a->a.seq : 0, expected, actual);
}

void
replay_diverge_at(uint64_t seq, const char *expected, const char *fmt, ...)
{
	char actual[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(actual, sizeof(actual), fmt, ap);
	va_end(ap);
	diverge(seq, expected, actual);
}

/* The first held item of @kind, taken; 0 if none.  held_mu held. */
static int
take_kind(enum held_kind kind, struct held *out)
{
	for (size_t i = 0; i < held_q.n; i++)
		if (held_q.v[i].kind == kind) {
			*out = heldq_take(&held_q, i);
			return 1;
		}
	return 0;
}

void
replay_free(const char *why)
{
	unsigned how;

	if (replay_is_free())
		return;
	qrt_assert_bql("the end of recorded control");
	/* every action taken, none of them diverging (a monitor action is taken before it runs) */
	freed_at_end = replay.next == replay.n && strcmp(why, "end of the log") == 0;
	__atomic_store_n(&freed, 1, __ATOMIC_RELEASE);
	policy_switch(&policy_record);
	gate_clock_free();
	size_t bhs = held_count(HELD_BH), reqs = held_count(HELD_REQ);

	vlog_say("replay: recorded control ended at icount %lld after %zu of %zu recorded events "
		 "(%s; %llu parks); running free%s",
		 (long long)qrt_icount_now(&how, 0), replay.next, replay.n, why, replay.parks,
		 bhs + reqs ? "" : ", nothing held");
	if (bhs + reqs)
		vlog_say("replay: %zu BHs and %zu completions were held for later events; they run now",
			 bhs, reqs);
	/* completions first, then BHs, each in arrival order */
	for (;;) {
		struct held h;
		int got;

		pthread_mutex_lock(&held_mu);
		got = take_kind(HELD_REQ, &h) || take_kind(HELD_BH, &h);
		pthread_cond_broadcast(&held_cv);
		pthread_mutex_unlock(&held_mu);
		if (!got)
			break;
		int64_t ic = qrt_icount_now(&how, 0);

		gate_run_held(&h, how, ic, 0);
	}
}

/* Whether no action from the cursor on calls for @h (heldq_match_fn).  held_mu held. */
static int
unexpected(const struct held *h, const void *arg)
{
	(void)arg;
	for (size_t k = replay.next; k < replay.n; k++)
		if (matches(h, &replay.v[k]))
			return 0;
	return 1;
}

void
replay_nested_poll(void)
{
	if (replay_is_free())
		return;
	/*
	 * Also with the VM stopped, if anything is kept: a vm-change handler
	 * that runs before bhrr's may drain the block layer (virtio-blk
	 * stopping its ioeventfd does), waiting for a completion kept for a
	 * later action.  (Before the VM first runs, nothing is kept.)
	 */
	if (qrt_role() == QRT_ROLE_MAIN) {
		if (debug_vm_running_or_held() || held_count(0) > 0)
			replay_free("the main loop waits in a nested aio_poll");
		return;
	}
	if (!debug_vm_running_or_held())
		return;
	/*
	 * The vCPU thread: a device waits here, at the same instruction as in
	 * the record, where everything held or arriving ran at once, so the log
	 * has it as at-once, not as an action.  What arrived earlier this time
	 * is kept; run what no action still calls for.
	 */
	size_t total = replay_run_unexpected();

	if (total)
		vlog("replay: a nested aio_poll of the vCPU thread ran %zu kept items the log ran "
		     "there at once", total);
}

size_t
replay_run_unexpected(void)
{
	struct held run[64];
	size_t n, total = 0;

	/* in batches, until none is left: one left held would stall a poll */
	while ((n = held_take(unexpected, NULL, run, sizeof(run) / sizeof(run[0]))) > 0) {
		gate_run_at_once(run, n);
		total += n;
	}
	return total;
}

void
replay_nested_stuck(void)
{
	replay_diverge("a device in the vCPU thread (a reset or cancel) waited %ld ms in a nested "
		       "aio_poll for work the log delivers later",
		       bhrr_cfg.watchdog_ms);
	replay_free("a nested aio_poll of the vCPU thread waits for held work");
}
