/*
 * cmd_diff.c - bhrr diff: where two runs parted.  Compares the two logs'
 * action lists (action_list.h) and names the first action where they
 * differ, with a summary of what follows in each.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "action_list.h"
#include "cmd.h"

#define DIFF_USAGE "usage: bhrr diff A B [--json]"

/* What diff found: the two lists and where and how they part. */
struct diff {
	const char *path[2];
	struct action_list al[2];
	long first;                    /* index of the first difference, -1: none */
	const struct action *at[2];    /* each log's action there, NULL past its end */
	char what[2][512];             /* those in words */
	uint64_t after[2][ACTION_KINDS]; /* each log's actions from there on, by kind */
	size_t differing;              /* positions that differ from there on */
};

/* Fill the comparison of @d's two loaded lists. */
static void
diff_compare(struct diff *d)
{
	size_t n = d->al[0].n < d->al[1].n ? d->al[0].n : d->al[1].n;

	d->first = action_list_first_difference(&d->al[0], &d->al[1]);
	d->differing = 0;
	for (size_t i = d->first < 0 ? n : (size_t)d->first; i < n; i++)
		d->differing += !action_same(&d->al[0].v[i], &d->al[1].v[i]);
	d->differing += d->al[0].n > n ? d->al[0].n - n : d->al[1].n - n;
	for (int k = 0; k < 2; k++) {
		const struct action_list *al = &d->al[k];
		int in = d->first >= 0 && (size_t)d->first < al->n;

		action_list_count(al, d->first < 0 ? al->n : (size_t)d->first, d->after[k]);
		d->at[k] = in ? &al->v[d->first] : NULL;
		action_describe(d->what[k], sizeof(d->what[k]), d->at[k]);
	}
}

static void
print_seq_or_null(const struct action *a)
{
	if (a)
		printf("%" PRIu64, a->a.seq);
	else
		printf("null");
}

static void
diff_print_json(const struct diff *d)
{
	printf("{\"a\":");
	json_cstr(stdout, d->path[0]);
	printf(",\"b\":");
	json_cstr(stdout, d->path[1]);
	printf(",\"a_actions\":%zu,\"b_actions\":%zu,\"identical\":%s", d->al[0].n, d->al[1].n,
	       d->first < 0 ? "true" : "false");
	if (d->first >= 0) {
		const uint64_t *ca = d->after[0], *cb = d->after[1];

		printf(",\"first\":{\"index\":%ld,\"a_seq\":", d->first);
		print_seq_or_null(d->at[0]);
		printf(",\"b_seq\":");
		print_seq_or_null(d->at[1]);
		printf(",\"a\":");
		json_cstr(stdout, d->what[0]);
		printf(",\"b\":");
		json_cstr(stdout, d->what[1]);
		printf("},\"differing_after\":%zu,\"a_after\":{\"bh_run\":%" PRIu64
		       ",\"io_complete\":%" PRIu64 ",\"warp\":%" PRIu64 ",\"chr_read\":%" PRIu64
		       ",\"rng_read\":%" PRIu64 ",\"monitor\":%" PRIu64 ",\"net_recv\":%" PRIu64
		       ",\"chr_event\":%" PRIu64 ",\"chaos\":%" PRIu64 "},\"b_after\":{\"bh_run\":%" PRIu64
		       ",\"io_complete\":%" PRIu64 ",\"warp\":%" PRIu64 ",\"chr_read\":%" PRIu64
		       ",\"rng_read\":%" PRIu64 ",\"monitor\":%" PRIu64 ",\"net_recv\":%" PRIu64
		       ",\"chr_event\":%" PRIu64 ",\"chaos\":%" PRIu64 "}",
		       d->differing, ca[0], ca[1], ca[2], ca[3], ca[4], ca[5], ca[6], ca[7], ca[8], cb[0],
		       cb[1], cb[2], cb[3], cb[4], cb[5], cb[6], cb[7], cb[8]);
	}
	printf("}\n");
}

static void
diff_print_text(const struct diff *d)
{
	if (d->first < 0) {
		printf("identical: %zu actions each (bh_run, io_complete, warp, chr_read, rng_read, monitor, net_recv, chr_event, host_timer, chaos)\n",
		       d->al[0].n);
		return;
	}
	printf("first divergence at action #%ld:\n", d->first);
	for (int k = 0; k < 2; k++) {
		printf("  %c %s: ", "AB"[k], d->path[k]);
		if (d->at[k])
			printf("event #%" PRIu64 " ", d->at[k]->a.seq);
		printf("%s\n", d->what[k]);
	}
	if (d->first > 0) {
		char prev[512];

		action_describe(prev, sizeof(prev), &d->al[0].v[d->first - 1]);
		printf("  last common action (#%ld): %s\n", d->first - 1, prev);
	}
	const uint64_t *ca = d->after[0], *cb = d->after[1];

	printf("after it: A has %zu more actions (%" PRIu64 " bh_run, %" PRIu64
	       " io_complete, %" PRIu64 " warp, %" PRIu64 " chr_read, %" PRIu64 " rng_read, %" PRIu64
	       " monitor, %" PRIu64 " net_recv, %" PRIu64 " chr_event, %" PRIu64 " chaos), B has %zu (%"
	       PRIu64 " bh_run, %" PRIu64 " io_complete, %" PRIu64 " warp, %" PRIu64 " chr_read, %"
	       PRIu64 " rng_read, %" PRIu64 " monitor, %" PRIu64 " net_recv, %" PRIu64 " chr_event, %"
	       PRIu64 " chaos); %zu positions differ\n",
	       d->al[0].n - (size_t)d->first, ca[0], ca[1], ca[2], ca[3], ca[4], ca[5], ca[6], ca[7],
	       ca[8], d->al[1].n - (size_t)d->first, cb[0], cb[1], cb[2], cb[3], cb[4], cb[5], cb[6],
	       cb[7], cb[8], d->differing);
}

/*
 * bhrr diff A B [--json]: the first action where the runs part, and a
 * summary of what differs after it.  0 the same, 1 different, 2 usage or a
 * log that cannot be read.
 */
int
cmd_diff(int argc, char **argv)
{
	struct diff d;
	int json = 0, np = 0;

	memset(&d, 0, sizeof(d));

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else if (argv[i][0] != '-' && np < 2)
			d.path[np++] = argv[i];
		else
			usage_error("diff: unexpected '%s' (%s)", argv[i], DIFF_USAGE);
	}
	if (np != 2)
		usage_error("diff: two logs needed (%s)", DIFF_USAGE);
	for (int k = 0; k < 2; k++)
		if (action_list_load(&d.al[k], d.path[k], "diff", 1) < 0)
			return EXIT_USAGE;
	if (strcmp(d.al[0].hdr.build_id, d.al[1].hdr.build_id) != 0)
		fprintf(stderr, "bhrr: diff: warning: %s and %s come from different QEMU builds (%s, %s)\n",
			d.path[0], d.path[1], d.al[0].hdr.build_id, d.al[1].hdr.build_id);
	diff_compare(&d);
	(json ? diff_print_json : diff_print_text)(&d);
	for (int k = 0; k < 2; k++) {
		if (d.al[k].damaged)
			fprintf(stderr, "bhrr: diff: warning: %s is damaged; compared what could be read\n",
				d.path[k]);
		action_list_free(&d.al[k]);
	}
	return d.first < 0 ? 0 : 1;
}
