/*
 * log_action.c - the one definition of an action (see log_action.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "log_action.h"

int
log_header_exact(const struct log_header *h)
{
	return h->icount_mode == 1;
}

int
log_action_of(const struct log_reader *r, const struct log_event *ev, int exact,
	      struct log_action *a)
{
	uint64_t cb = 0;
	const char *name = NULL;

	memset(a, 0, sizeof(*a));
	if ((exact && ev->icount_how != LOG_IC_EXACT) || (ev->flags & LOG_F_AT_ONCE))
		return 0;
	a->at_io = exact && (ev->flags & LOG_F_AT_IO);
	switch (ev->kind) {
	case LOG_EV_BH_RUN:
		if (log_reader_ident(r, ev->ident, &cb, &name) < 0)
			return 0; /* an ident lost to damage: nothing to match it by */
		if (name && strcmp(name, LOG_ACT_THREAD_POOL_BH) == 0)
			return 0;
		a->kind = LOG_ACT_RUN;
		a->key = cb;
		a->ident = ev->ident;
		a->instance = ev->instance;
		a->name = name ? name : "?";
		break;
	case LOG_EV_IO_COMPLETE:
		a->kind = LOG_ACT_COMPLETE;
		a->key = ev->req;
		a->value = ev->ret;
		break;
	case LOG_EV_CHR_READ:
	case LOG_EV_RNG_READ:
	case LOG_EV_MONITOR:
	case LOG_EV_NET_RECV:
	case LOG_EV_CHR_EVENT:
		if (!exact)
			return 0; /* ordering mode does not replay input */
		if (ev->kind == LOG_EV_NET_RECV && (ev->flags & LOG_F_MORE))
			return 0; /* a piece of a frame: its last piece is the action */
		a->kind = ev->kind == LOG_EV_CHR_READ ? LOG_ACT_INPUT :
			  ev->kind == LOG_EV_RNG_READ ? LOG_ACT_ENTROPY :
			  ev->kind == LOG_EV_NET_RECV ? LOG_ACT_NET :
			  ev->kind == LOG_EV_CHR_EVENT ? LOG_ACT_CHR_EVENT : LOG_ACT_MONITOR;
		a->key = ev->id;
		a->data = (const uint8_t *)ev->text;
		a->len = ev->text_len;
		a->value = (int64_t)XXH3_64bits(a->data, a->len); /* what comparisons use */
		break;
	case LOG_EV_HOST_TIMER:
		if (!exact)
			return 0;
		a->kind = LOG_ACT_TIMER;
		a->key = ev->id;
		break;
	case LOG_EV_WARP:
		if (!exact)
			return 0;
		a->kind = LOG_ACT_WARP;
		a->value = ev->delta_ns;
		break;
	default:
		return 0;
	}
	a->seq = ev->seq;
	a->icount = ev->icount;
	a->icount_how = ev->icount_how;
	return 1;
}

int
log_order_check(struct log_order_check *c, const struct log_event *ev,
		const struct log_action *a, char *why, size_t len)
{
	if (ev->kind == LOG_EV_END && ev->icount_how != LOG_IC_UNKNOWN && c->have &&
	    c->icount > ev->icount) {
		snprintf(why, len, "recorded event #%llu is at icount %lld, past the end of the run "
			 "at icount %lld", (unsigned long long)c->seq,
			 (long long)c->icount, (long long)ev->icount);
		return -1;
	}
	if (a == NULL)
		return 0;
	if (c->have && a->icount < c->icount) {
		snprintf(why, len, "recorded event #%llu is at icount %lld, before event #%llu at "
			 "icount %lld, but exact icounts never go back",
			 (unsigned long long)a->seq, (long long)a->icount,
			 (unsigned long long)c->seq, (long long)c->icount);
		return -1;
	}
	c->have = 1;
	c->icount = a->icount;
	c->seq = a->seq;
	return 0;
}

int
log_pieces_add(struct log_pieces *p, const struct log_event *ev)
{
	if (ev->kind != LOG_EV_NET_RECV || !(ev->flags & LOG_F_MORE))
		return 0;
	if (!p->open)
		p->len = 0;
	p->open = 1;
	if (p->len + ev->text_len > p->cap) {
		size_t cap = p->cap ? p->cap : LOG_TEXT_MAX;

		while (cap < p->len + ev->text_len)
			cap *= 2;
		uint8_t *b = realloc(p->buf, cap);

		if (b == NULL)
			return 1; /* the frame comes out short: its hash says so */
		p->buf = b;
		p->cap = cap;
	}
	memcpy(p->buf + p->len, ev->text, ev->text_len);
	p->len += ev->text_len;
	return 1;
}

int
log_pieces_finish(struct log_pieces *p, struct log_action *a)
{
	if (a->kind != LOG_ACT_NET || !p->open)
		return 0;
	p->open = 0;
	if (p->len + a->len > p->cap) {
		uint8_t *b = realloc(p->buf, p->len + a->len);

		if (b == NULL)
			return -1;
		p->buf = b;
		p->cap = p->len + a->len;
	}
	memcpy(p->buf + p->len, a->data, a->len);
	p->len += a->len;
	a->data = p->buf;
	a->len = p->len;
	a->value = (int64_t)XXH3_64bits(a->data, a->len);
	return 0;
}

void
log_pieces_free(struct log_pieces *p)
{
	free(p->buf);
	memset(p, 0, sizeof(*p));
}
