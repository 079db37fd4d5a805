/*
 * test_policy.c - the shim's policy data structures without QEMU, through
 * their headers: the held-item queue (held.h), the identity and instance
 * tables and content keys (ident.h), and the one definition of an action
 * that the replay loader filters by (log_action.h), on a real log written
 * and read back.  Built plain and under ASan+UBSan.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "held.h"
#include "ident.h"
#include "log.h"
#include "log_action.h"
#include "tap.h"

static int
is_orig(const struct held *h, const void *arg)
{
	return h->orig == arg;
}

static void
test_heldq(void)
{
	struct heldq q = { .max = 5 };
	int pushed = 0;

	for (int i = 0; i < 7; i++) {
		struct held h = { .kind = i % 2 ? HELD_REQ : HELD_BH, .orig = (void *)(uintptr_t)(i + 1),
				  .ident = (uint64_t)i };

		pushed += heldq_push(&q, &h) == 0;
	}
	ok(pushed == 5 && q.n == 5, "a bounded queue takes 5 of 7 items (took %d)", pushed);
	ok(heldq_count(&q, HELD_BH) == 3 && heldq_count(&q, HELD_REQ) == 2 && heldq_count(&q, 0) == 5,
	   "counts by kind: 3 BHs, 2 completions");
	size_t i = heldq_find(&q, 0, is_orig, (void *)3);

	ok(i == 2, "find returns the index of the first match (%zu)", i);
	ok(heldq_find(&q, 3, is_orig, (void *)3) == q.n, "find from past the match: none (q->n)");
	struct held t = heldq_take(&q, 2);

	ok(t.ident == 2 && q.n == 4, "take returns the item and shrinks the queue");
	int order = 1;
	const uint64_t want[] = { 0, 1, 3, 4 };

	for (size_t k = 0; k < q.n; k++)
		order &= q.v[k].ident == want[k];
	ok(order, "take keeps the others in arrival order");
	t = heldq_take(&q, 0);
	ok(t.ident == 0 && q.v[0].ident == 1, "take from the head is FIFO");
	heldq_fini(&q);
	ok(q.n == 0 && q.v == NULL, "fini empties the queue");

	struct heldq big = { 0 };
	int all = 1;

	for (int k = 0; k < 10000; k++) {
		struct held h = { .kind = HELD_BH, .ident = (uint64_t)k };

		all &= heldq_push(&big, &h) == 0;
	}
	ok(all && big.n == 10000 && big.v[9999].ident == 9999, "an unbounded queue grows to 10,000");
	heldq_fini(&big);
}

static void
test_idents(void)
{
	static struct ident_table t;
	int is_new, a_new, b_new;
	uint64_t a = ident_intern(&t, (void *)0x1000, &a_new);
	uint64_t b = ident_intern(&t, (void *)0x2000, &b_new);
	uint64_t a2 = ident_intern(&t, (void *)0x1000, &is_new);

	ok(a == 1 && b == 2 && a_new && b_new, "idents are numbered from 1 in order of first use");
	ok(a2 == a && !is_new, "the same callback keeps its ident, not new the second time");
	ok(ident_next_ordinal(&t, a) == 0 && ident_next_ordinal(&t, a) == 1 &&
	   ident_next_ordinal(&t, b) == 0, "run ordinals count per ident from 0");
	ok(ident_next_creation(&t, b) == 1 && ident_next_creation(&t, b) == 2,
	   "creation ordinals count per ident from 1");
	ok(ident_next_creation(&t, 0) == 0 && ident_next_ordinal(&t, IDENT_MAX + 5) == 0,
	   "ids out of range give 0");

	static struct ident_table full;
	uint64_t last = 1;

	for (uintptr_t k = 1; k <= IDENT_MAX && last; k++)
		last = ident_intern(&full, (void *)(k * 64), &is_new);
	ok(last == IDENT_MAX, "the table holds %d callbacks", IDENT_MAX);
	ok(ident_intern(&full, (void *)0x7777777, &is_new) == 0 && !is_new,
	   "one more callback than the table holds gets 0");
}

static void
test_instances(void)
{
	static struct inst_table t;

	ok(inst_add(&t, (void *)0x10, 3, 1) == 0 && inst_add(&t, (void *)0x20, 3, 2) == 0,
	   "two BHs of one ident are numbered");
	struct inst_slot *s = inst_find(&t, (void *)0x20);

	ok(s && s->ident == 3 && s->instance == 2, "a live BH is found with its ident and instance");
	inst_gone(&t, s);
	ok(inst_find(&t, (void *)0x20) == NULL, "a deleted BH is not found");
	ok(inst_find(&t, (void *)0x10) != NULL, "the other one still is");

	/* churn: many more creations and deletions than slots, as a long run has */
	int bad = 0;

	for (uintptr_t k = 1; k <= 20 * INST_MAX; k++) {
		const void *bh = (void *)(0x100000 + k * 16);

		if (inst_add(&t, bh, 7, k) < 0)
			bad++;
		struct inst_slot *x = inst_find(&t, bh);

		if (x == NULL || x->instance != k)
			bad++;
		else
			inst_gone(&t, x);
	}
	ok(bad == 0, "%d creations and deletions: every live BH found (%d misses)", 20 * INST_MAX, bad);
	ok(inst_find(&t, (void *)0x10) != NULL, "a long-lived BH survives the compactions");

	static struct inst_table live;
	int refused = 0;

	for (uintptr_t k = 1; k <= INST_MAX; k++)
		refused += inst_add(&live, (void *)(k * 16), 1, k) < 0;
	ok(refused > 0 && refused < INST_MAX / 2,
	   "with too many live BHs, new ones go unnumbered (%d refused)", refused);
}

static void
test_sites_and_keys(void)
{
	static struct site_table st;
	static struct occ o1, o2;
	void *f1[] = { (void *)1, (void *)2 }, *f2[] = { (void *)2, (void *)1 };
	int is_new;

	ok(site_hash(f1, 2) != site_hash(f2, 2), "a stack's hash depends on the order of its frames");
	uint64_t s1 = site_intern(&st, site_hash(f1, 2), 10, &is_new);

	ok(s1 == 10 && is_new, "a new site takes the offered string id");
	ok(site_intern(&st, site_hash(f1, 2), 11, &is_new) == 10 && !is_new, "a known site keeps it");

	uint64_t r1 = content_key(&o1, REQ_OP_READ, 4096, 512);
	uint64_t r2 = content_key(&o1, REQ_OP_READ, 4096, 512);
	uint64_t w1 = content_key(&o1, REQ_OP_WRITE, 4096, 512);

	ok(r1 && r2 && w1 && r1 != r2 && r1 != w1,
	   "content keys: the 2nd identical read differs from the 1st, a write from a read");
	ok(content_key(&o1, REQ_OP_OTHER, 0, 0) == 0, "an unknown request has no content key");
	/* another run, submitting the same requests in another order */
	uint64_t w1b = content_key(&o2, REQ_OP_WRITE, 4096, 512);
	uint64_t r1b = content_key(&o2, REQ_OP_READ, 4096, 512);
	uint64_t r2b = content_key(&o2, REQ_OP_READ, 4096, 512);

	ok(w1b == w1 && r1b == r1 && r2b == r2,
	   "the n-th request doing the same has the same key in any run, whatever the interleaving");
}

/* A log with one event of each kind the action definition decides on. */
static char *
write_log(int exact)
{
	static char path[64];
	char err[256];
	struct log_header h = { 0 };

	snprintf(path, sizeof(path), "/tmp/test_policy_%d_%d.bhlog", (int)getpid(), exact);
	snprintf(h.build_id, sizeof(h.build_id), "test");
	h.icount_mode = exact ? 1 : 0;
	struct log_writer *w = log_writer_open(path, &h, 0, err, sizeof(err));

	if (w == NULL)
		return NULL;
	struct log_event e[] = {
		{ .kind = LOG_EV_STRING, .icount_how = LOG_IC_UNKNOWN, .id = 1, .text = "ide_bh",
		  .text_len = 6 },
		{ .kind = LOG_EV_IDENT, .icount_how = LOG_IC_UNKNOWN, .id = 1, .name_id = 1,
		  .cb_off = 0x1234 },
		{ .kind = LOG_EV_STRING, .icount_how = LOG_IC_UNKNOWN, .id = 2,
		  .text = LOG_ACT_THREAD_POOL_BH, .text_len = strlen(LOG_ACT_THREAD_POOL_BH) },
		{ .kind = LOG_EV_IDENT, .icount_how = LOG_IC_UNKNOWN, .id = 2, .name_id = 2,
		  .cb_off = 0x5678 },
		/* actions */
		{ .kind = LOG_EV_BH_RUN, .icount_how = LOG_IC_EXACT, .icount = 100, .ident = 1,
		  .instance = 2 },
		{ .kind = LOG_EV_IO_COMPLETE, .icount_how = LOG_IC_EXACT, .icount = 200, .req = 7,
		  .ret = 0 },
		{ .kind = LOG_EV_WARP, .icount_how = LOG_IC_EXACT, .icount = 300, .delta_ns = 5000 },
		/* not actions */
		{ .kind = LOG_EV_BH_RUN, .icount_how = LOG_IC_EXACT, .icount = 400, .ident = 2 },
		{ .kind = LOG_EV_BH_RUN, .icount_how = LOG_IC_EXACT, .icount = 500, .ident = 1,
		  .flags = LOG_F_AT_ONCE },
		{ .kind = LOG_EV_IO_COMPLETE, .icount_how = LOG_IC_LOWER, .icount = 600, .req = 8 },
		{ .kind = LOG_EV_BH_SCHEDULE, .icount_how = LOG_IC_EXACT, .icount = 700, .ident = 1 },
		{ .kind = LOG_EV_BH_RUN, .icount_how = LOG_IC_EXACT, .icount = 800, .ident = 99 },
	};
	for (size_t i = 0; i < sizeof(e) / sizeof(e[0]); i++)
		log_writer_append(w, &e[i]);
	return log_writer_close(w, 900) == 0 ? path : NULL;
}

static void
test_actions(int exact)
{
	char err[256];
	int code;
	const char *path = write_log(exact);
	struct log_reader *r = path ? log_reader_open(path, &code, err, sizeof(err)) : NULL;
	struct log_event ev;
	struct log_action a, got[16];
	int n = 0;

	if (!ok(r != NULL, "%s log written and opened", exact ? "exact" : "ordering"))
		return;
	ok(log_header_exact(log_reader_header(r)) == exact, "log_header_exact says %d", exact);
	while (log_reader_next(r, &ev) == 1)
		if (log_action_of(r, &ev, exact, &a) && n < 16)
			got[n++] = a;
	if (exact) {
		ok(n == 3, "exact: 3 actions (a run, a completion, a warp), got %d", n);
		ok(n == 3 && got[0].kind == LOG_ACT_RUN && got[0].key == 0x1234 &&
		   got[0].instance == 2 && strcmp(got[0].name, "ide_bh") == 0 && got[0].icount == 100,
		   "the run: callback offset, instance, name, icount");
		ok(n == 3 && got[1].kind == LOG_ACT_COMPLETE && got[1].key == 7 && got[1].icount == 200,
		   "the completion: request ordinal and icount");
		ok(n == 3 && got[2].kind == LOG_ACT_WARP && got[2].value == 5000, "the warp: its delta");
	} else {
		/* no warps; a lower-bound completion counts, at-once and thread-pool runs do not */
		ok(n == 3, "ordering: 3 actions (a run and two completions), got %d", n);
		ok(n == 3 && got[0].kind == LOG_ACT_RUN && got[1].kind == LOG_ACT_COMPLETE &&
		   got[2].kind == LOG_ACT_COMPLETE && got[2].key == 8,
		   "ordering: a lower-bound completion is an action, a warp is not");
	}
	log_reader_close(r);
	unlink(path);
}

/* A frame in pieces (net_recv with LOG_F_MORE) is one action: the whole frame, hashed whole. */
static void
test_pieces(void)
{
	char a4k[LOG_TEXT_MAX], whole[2 * LOG_TEXT_MAX + 10];
	struct log_event ev[] = {
		{ .kind = LOG_EV_NET_RECV, .icount = 50, .id = 1, .flags = LOG_F_MORE,
		  .text = a4k, .text_len = sizeof(a4k) },
		{ .kind = LOG_EV_NET_RECV, .icount = 50, .id = 1, .flags = LOG_F_MORE,
		  .text = a4k, .text_len = sizeof(a4k) },
		{ .kind = LOG_EV_NET_RECV, .icount = 50, .id = 1, .text = "0123456789", .text_len = 10 },
		{ .kind = LOG_EV_NET_RECV, .icount = 60, .id = 1, .text = "abc", .text_len = 3 },
	};
	struct log_pieces p = { 0 };
	struct log_action a;
	int pieces = 0, n = 0;

	memset(a4k, 'x', sizeof(a4k));
	memcpy(whole, a4k, sizeof(a4k));
	memcpy(whole + sizeof(a4k), a4k, sizeof(a4k));
	memcpy(whole + 2 * sizeof(a4k), "0123456789", 10);
	for (size_t i = 0; i < sizeof(ev) / sizeof(ev[0]); i++) {
		if (log_pieces_add(&p, &ev[i])) {
			ok(!log_action_of(NULL, &ev[i], 1, &a), "piece %zu is no action of its own", i);
			pieces++;
			continue;
		}
		if (!log_action_of(NULL, &ev[i], 1, &a))
			continue;
		ok(log_pieces_finish(&p, &a) == 0, "finish after event %zu", i);
		if (n++ == 0)
			ok(a.kind == LOG_ACT_NET && a.len == sizeof(whole) &&
			   memcmp(a.data, whole, sizeof(whole)) == 0 &&
			   a.value == (int64_t)XXH3_64bits(whole, sizeof(whole)) && a.icount == 50,
			   "the last piece is the whole frame: %zu bytes, hashed whole", a.len);
		else
			ok(a.len == 3 && memcmp(a.data, "abc", 3) == 0,
			   "a frame in one event after it is itself");
	}
	ok(pieces == 2 && n == 2, "2 pieces, 2 actions (got %d, %d)", pieces, n);
	log_pieces_free(&p);
}

int
main(void)
{
	test_pieces();
	test_heldq();
	test_idents();
	test_instances();
	test_sites_and_keys();
	test_actions(1);
	test_actions(0);
	return tap_done();
}
