/*
 * ident.c - identity tables (see ident.h).
 */
#include <stdlib.h>
#include <string.h>

#include "ident.h"

#define GOLDEN 0x9e3779b97f4a7c15ull

uint64_t
ident_intern(struct ident_table *t, const void *cb, int *is_new)
{
	size_t h = ((uintptr_t)cb * GOLDEN) >> 52;

	*is_new = 0;
	for (size_t i = 0; i < IDENT_MAX; i++) {
		size_t s = (h + i) % IDENT_MAX;

		if (t->slot[s].cb == cb)
			return t->slot[s].id;
		if (t->slot[s].cb != NULL)
			continue;
		t->slot[s].cb = cb;
		t->slot[s].id = ++t->next;
		*is_new = 1;
		return t->slot[s].id;
	}
	return 0;
}

uint64_t
ident_next_ordinal(struct ident_table *t, uint64_t id)
{
	return id < IDENT_MAX ? t->ordinals[id]++ : 0;
}

uint64_t
ident_next_creation(struct ident_table *t, uint64_t id)
{
	return id > 0 && id < IDENT_MAX ? ++t->creations[id] : 0;
}

/* The slot for @bh: its own, else a free one when @add (NULL if none). */
static struct inst_slot *
inst_probe(struct inst_table *t, const void *bh, int add)
{
	size_t h = ((uintptr_t)bh * GOLDEN) >> 51;
	struct inst_slot *gone = NULL;

	for (size_t i = 0; i < INST_MAX; i++) {
		struct inst_slot *s = &t->slot[(h + i) % INST_MAX];

		if (s->bh == bh)
			return s;
		if (s->bh == INST_GONE) {
			/* deleted slots stay, so probes go on past them */
			if (gone == NULL)
				gone = s;
			continue;
		}
		if (s->bh != NULL)
			continue;
		if (!add)
			return NULL;
		if (gone != NULL)
			return gone;
		t->used++;
		return s;
	}
	return add ? gone : NULL;
}

/* Rebuild the table with the live entries only; -1 if they nearly fill it. */
static int
inst_compact(struct inst_table *t)
{
	struct inst_slot *live = malloc(sizeof(*live) * (INST_MAX * 3 / 4));
	unsigned n = 0;

	if (live == NULL)
		return -1;
	for (size_t i = 0; i < INST_MAX; i++)
		if (t->slot[i].bh != NULL && t->slot[i].bh != INST_GONE && n < INST_MAX * 3 / 4)
			live[n++] = t->slot[i];
	memset(t, 0, sizeof(*t));
	for (unsigned i = 0; i < n; i++)
		*inst_probe(t, live[i].bh, 1) = live[i];
	free(live);
	return n >= INST_MAX * 3 / 4 ? -1 : 0;
}

int
inst_add(struct inst_table *t, const void *bh, uint64_t ident, uint64_t instance)
{
	if (t->used >= INST_MAX * 3 / 4 && inst_compact(t) < 0)
		return -1; /* that many live BHs: stop numbering new ones */
	struct inst_slot *s = inst_probe(t, bh, 1);

	if (s == NULL)
		return -1;
	*s = (struct inst_slot){ bh, ident, instance };
	return 0;
}

struct inst_slot *
inst_find(struct inst_table *t, const void *bh)
{
	return inst_probe(t, bh, 0);
}

void
inst_gone(struct inst_table *t, struct inst_slot *s)
{
	(void)t;
	s->bh = INST_GONE;
}

uint64_t
site_hash(void *const *frames, int n)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a over the addresses */

	for (int i = 0; i < n; i++)
		h = (h ^ (uintptr_t)frames[i]) * 1099511628211ull;
	return h;
}

uint64_t
site_intern(struct site_table *t, uint64_t h, uint64_t new_id, int *is_new)
{
	*is_new = 0;
	for (size_t i = 0; i < SITE_MAX; i++) {
		size_t s = (h + i) % SITE_MAX;

		if (t->slot[s].hash == h && t->slot[s].id)
			return t->slot[s].id;
		if (t->slot[s].id)
			continue;
		t->slot[s].hash = h;
		t->slot[s].id = new_id;
		*is_new = 1;
		return new_id;
	}
	return 0;
}

uint64_t
content_key(struct occ *o, uint64_t op, uint64_t offset, uint64_t bytes)
{
	if (op == REQ_OP_OTHER)
		return 0;
	uint64_t k = (op * GOLDEN ^ offset * 0xbf58476d1ce4e5b9ull ^ bytes) | 1;
	uint32_t n = 0;

	for (size_t i = 0, h = (size_t)(k >> 40) % OCC_SLOTS; i < OCC_SLOTS; i++) {
		size_t s = (h + i) % OCC_SLOTS;

		if (o->key[s] == k || o->key[s] == 0) {
			o->key[s] = k;
			n = o->n[s]++;
			break;
		}
	}
	return ((k ^ (n * 0x94d049bb133111ebull)) * 0xff51afd7ed558ccdull) | 1;
}
