/*
 * action_list.c - reading, describing and comparing a log's list of actions
 * (see action_list.h).
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "action_list.h"
#include "cmd.h"
#include "grow.h"
#include "open_log.h"

/* The last scheduling site seen per ident. */
struct site_by_ident {
	uint64_t ident;
	char *site;
};

struct sites {
	struct site_by_ident *v;
	size_t n, cap;
};

/* The entry of @ident in @ss, or NULL; with @add, one is made. */
static struct site_by_ident *
site_of(struct sites *ss, uint64_t ident, int add)
{
	for (size_t i = 0; i < ss->n; i++)
		if (ss->v[i].ident == ident)
			return &ss->v[i];
	if (!add)
		return NULL;
	if (GROW(ss->v, ss->n, ss->cap) < 0)
		die("out of memory");
	ss->v[ss->n] = (struct site_by_ident){ ident, NULL };
	return &ss->v[ss->n++];
}

static void
push(struct action_list *al, const struct action *a)
{
	if (GROW(al->v, al->n, al->cap) < 0)
		die("out of memory");
	al->v[al->n++] = *a;
}

/* Remember @ev's scheduling site, if it is a bh_schedule with one. */
static void
note_site(struct sites *ss, const struct log_reader *r, const struct log_event *ev)
{
	if (ev->kind != LOG_EV_BH_SCHEDULE || !ev->site)
		return;
	const char *s = log_reader_string(r, ev->site);
	struct site_by_ident *e = site_of(ss, ev->ident, 1);

	free(e->site);
	e->site = xstrdup(s ? s : "?");
}

int
action_list_load(struct action_list *al, const char *path, const char *cmd, int with_chaos)
{
	struct log_reader *r = open_log(path, cmd, NULL);
	struct sites ss = { NULL, 0, 0 };
	struct log_event ev;
	struct log_pieces pieces = { 0 };

	memset(al, 0, sizeof(*al));
	al->path = path;
	if (r == NULL)
		return -1;
	al->hdr = *log_reader_header(r);
	al->hdr.argc = 0;

	int exact = log_header_exact(&al->hdr);

	while (log_reader_next(r, &ev) == 1) {
		struct action a = { 0 };

		note_site(&ss, r, &ev);
		if (exact && log_pieces_add(&pieces, &ev))
			continue; /* a piece of a frame: its last piece is the action, hashed whole */
		if (log_action_of(r, &ev, exact, &a.a)) {
			if (log_pieces_finish(&pieces, &a.a) < 0)
				die("out of memory");
			if (a.a.kind == LOG_ACT_RUN) {
				struct site_by_ident *e = site_of(&ss, ev.ident, 0);

				a.a.name = xstrdup(a.a.name);
				a.site = e && e->site ? xstrdup(e->site) : NULL;
			} else if (a.a.kind == LOG_ACT_CHR_EVENT) {
				a.a.name = xstrdup(a.a.len ? log_chr_event_name(a.a.data[0]) : "?");
			} else if (a.a.kind == LOG_ACT_MONITOR) {
				/* the request, kept as text (freed with the names) */
				char *t = strndup((const char *)a.a.data, a.a.len);

				if (t == NULL)
					die("out of memory");
				a.a.name = t;
			}
			a.a.data = NULL; /* INPUT: the reader's memory; value holds its hash */
		} else if (with_chaos && ev.kind == LOG_EV_CHAOS) {
			a.a.kind = (enum log_action_kind)ACTION_CHAOS;
			a.a.seq = ev.seq;
			a.a.icount = ev.icount;
			a.a.icount_how = ev.icount_how;
			a.a.key = ev.decision;
			a.a.value = ev.value;
		} else {
			continue;
		}
		push(al, &a);
	}
	al->damaged = log_reader_damage_count(r) > 0;
	for (size_t i = 0; i < ss.n; i++)
		free(ss.v[i].site);
	free(ss.v);
	log_reader_close(r);
	log_pieces_free(&pieces);
	return 0;
}

void
action_list_free(struct action_list *al)
{
	for (size_t i = 0; i < al->n; i++) {
		free((char *)al->v[i].a.name);
		free(al->v[i].site);
	}
	free(al->v);
	al->v = NULL;
	al->n = al->cap = 0;
}

static const char *const chaos_names[] = { "delay", "reorder" }; /* log_format.md */

void
action_describe(char *buf, size_t len, const struct action *act)
{
	char at[64];

	if (act == NULL) {
		snprintf(buf, len, "(the log ends)");
		return;
	}
	const struct log_action *a = &act->a;

	if (a->icount_how == LOG_IC_UNKNOWN)
		snprintf(at, sizeof(at), "in order");
	else
		snprintf(at, sizeof(at), "at icount %s%" PRId64,
			 a->icount_how == LOG_IC_EXACT ? "" : ">=", a->icount);
	switch ((unsigned)a->kind) {
	case LOG_ACT_RUN:
		snprintf(buf, len, "bh_run of %s (callback +%#" PRIx64 ") %s%s%s", a->name, a->key, at,
			 act->site ? ", scheduled from " : "", act->site ? act->site : "");
		break;
	case LOG_ACT_COMPLETE:
		snprintf(buf, len, "io_complete of request %" PRIu64 " (ret %" PRId64 ") %s", a->key,
			 a->value, at);
		break;
	case LOG_ACT_WARP:
		snprintf(buf, len, "warp of %" PRId64 " ns %s", a->value, at);
		break;
	case LOG_ACT_INPUT:
		snprintf(buf, len, "chr_read of %zu bytes (hash %016" PRIx64 ") for console frontend %"
			 PRIu64 " %s", a->len, (uint64_t)a->value, a->key, at);
		break;
	case LOG_ACT_ENTROPY:
		snprintf(buf, len, "rng_read of %zu bytes (hash %016" PRIx64 ") for entropy device %"
			 PRIu64 " %s", a->len, (uint64_t)a->value, a->key, at);
		break;
	case LOG_ACT_NET:
		snprintf(buf, len, "net_recv of %zu bytes (hash %016" PRIx64 ") for NIC %" PRIu64 " %s",
			 a->len, (uint64_t)a->value, a->key & 0xffffffffu, at);
		break;
	case LOG_ACT_CHR_EVENT:
		snprintf(buf, len, "chr_event %s for console frontend %" PRIu64 " %s",
			 a->name ? a->name : "?", a->key, at);
		break;
	case LOG_ACT_MONITOR:
		snprintf(buf, len, "monitor command %.160s %s", a->name ? a->name : "?", at);
		break;
	case LOG_ACT_TIMER:
		snprintf(buf, len, "host_timer %" PRIu64 " %s", a->key, at);
		break;
	default:
		snprintf(buf, len, "chaos %s %" PRId64 " %s", a->key < 2 ? chaos_names[a->key] : "?",
			 a->value, at);
		break;
	}
}

int
action_same(const struct action *x, const struct action *y)
{
	const struct log_action *a = &x->a, *b = &y->a;

	if (a->kind != b->kind || a->key != b->key || a->value != b->value)
		return 0;
	if (a->icount_how == LOG_IC_EXACT && b->icount_how == LOG_IC_EXACT)
		return a->icount == b->icount;
	return 1;
}

long
action_list_first_difference(const struct action_list *a, const struct action_list *b)
{
	size_t n = a->n < b->n ? a->n : b->n;

	for (size_t i = 0; i < n; i++)
		if (!action_same(&a->v[i], &b->v[i]))
			return (long)i;
	return a->n == b->n ? -1 : (long)n;
}

void
action_list_count(const struct action_list *al, size_t from, uint64_t c[ACTION_KINDS])
{
	memset(c, 0, ACTION_KINDS * sizeof(*c));
	for (size_t i = from; i < al->n; i++)
		c[al->v[i].a.kind - 1]++;
}
