/*
 * held.c - the held-item queue (see held.h).
 */
#include <stdlib.h>
#include <string.h>

#include "grow.h"
#include "held.h"

pthread_mutex_t held_mu = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t held_cv = PTHREAD_COND_INITIALIZER;
struct heldq held_q = { .max = 4096 };

int
heldq_push(struct heldq *q, const struct held *h)
{
	if ((q->max && q->n >= q->max) || GROW(q->v, q->n, q->cap) < 0)
		return -1;
	q->v[q->n++] = *h;
	return 0;
}

struct held
heldq_take(struct heldq *q, size_t i)
{
	struct held h = q->v[i];

	memmove(&q->v[i], &q->v[i + 1], (q->n - i - 1) * sizeof(h));
	q->n--;
	return h;
}

size_t
heldq_count(const struct heldq *q, enum held_kind kind)
{
	size_t c = 0;

	for (size_t i = 0; i < q->n; i++)
		c += kind == 0 || q->v[i].kind == kind;
	return c;
}

size_t
heldq_find(const struct heldq *q, size_t from, heldq_match_fn *match, const void *arg)
{
	for (size_t i = from; i < q->n; i++)
		if (match(&q->v[i], arg))
			return i;
	return q->n;
}

void
heldq_fini(struct heldq *q)
{
	free(q->v);
	q->v = NULL;
	q->n = q->cap = 0;
}

size_t
held_count(enum held_kind kind)
{
	pthread_mutex_lock(&held_mu);
	size_t n = heldq_count(&held_q, kind);

	pthread_mutex_unlock(&held_mu);
	return n;
}

size_t
held_take(heldq_match_fn *match, const void *arg, struct held *out, size_t max)
{
	size_t n = 0;

	pthread_mutex_lock(&held_mu);
	for (size_t i = heldq_find(&held_q, 0, match, arg); i < held_q.n && n < max;
	     i = heldq_find(&held_q, i, match, arg))
		out[n++] = heldq_take(&held_q, i);
	pthread_mutex_unlock(&held_mu);
	return n;
}

int
held_add(const struct held *h)
{
	pthread_mutex_lock(&held_mu);
	int err = heldq_push(&held_q, h);

	pthread_cond_broadcast(&held_cv);
	pthread_mutex_unlock(&held_mu);
	return err;
}
