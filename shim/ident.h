/*
 * ident.h - identities that survive across runs, where addresses do not:
 *  - a callback's ident: a small number per BH callback, in order of first
 *    use, with its name (the log's string and ident events);
 *  - a BH instance: the Nth BH made with that callback (aio_bh_new_full);
 *  - a call site: the hash of a stack of return addresses;
 *  - a request's content key: what an I/O request does (op, offset, bytes)
 *    and how many requests before it did the same.
 *
 * Pure tables: no QEMU, no log, no lock of their own.  Each table belongs to
 * one owner that serialises access (the shim keeps them under emit.c's
 * ids_mu); tests/unit/test_ident.c drives them directly.
 */
#ifndef BHRR_IDENT_H
#define BHRR_IDENT_H

#include <stddef.h>
#include <stdint.h>

#define IDENT_MAX 4096 /* callbacks; a power of 2 */
#define INST_MAX 8192  /* live BHs made by aio_bh_new_full; a power of 2 */
#define SITE_MAX 4096
#define OCC_SLOTS 8192

struct ident_table {
	struct {
		const void *cb;
		uint64_t id;
	} slot[IDENT_MAX];
	uint64_t next;                  /* the last id handed out */
	uint64_t ordinals[IDENT_MAX];   /* runs so far, per id */
	uint64_t creations[IDENT_MAX];  /* BHs made so far, per id */
};

/*
 * The ident of @cb: its id, *@is_new set when this call made it (the caller
 * then logs its definition).  0 when the table is full.
 */
uint64_t ident_intern(struct ident_table *t, const void *cb, int *is_new);
/* The next run ordinal of ident @id (0 for ids out of range), counted. */
uint64_t ident_next_ordinal(struct ident_table *t, uint64_t id);
/* The next creation ordinal of ident @id, from 1; 0 out of range. */
uint64_t ident_next_creation(struct ident_table *t, uint64_t id);

/* A live QEMUBH: which creation of which ident it is. */
struct inst_slot {
	const void *bh;                 /* NULL free, INST_GONE deleted */
	uint64_t ident, instance;
};
#define INST_GONE ((const void *)1)

struct inst_table {
	struct inst_slot slot[INST_MAX];
	unsigned used;                  /* live and deleted slots */
};

/*
 * Record that live BH @bh is creation @instance of @ident.  0, or -1 when
 * the table holds so many live BHs that new ones go unnumbered.
 */
int inst_add(struct inst_table *t, const void *bh, uint64_t ident, uint64_t instance);
/* The slot of live BH @bh, or NULL. */
struct inst_slot *inst_find(struct inst_table *t, const void *bh);
/* Forget @s (a slot inst_find returned): the BH was deleted. */
void inst_gone(struct inst_table *t, struct inst_slot *s);

struct site_table {
	struct {
		uint64_t hash, id;
	} slot[SITE_MAX];
};

/* The hash of a stack of @n return addresses. */
uint64_t site_hash(void *const *frames, int n);
/*
 * The string id for stack hash @h: the known one, or @new_id (then
 * *@is_new is set and the caller logs the string).  0 when full.
 */
uint64_t site_intern(struct site_table *t, uint64_t h, uint64_t new_id, int *is_new);

/* Occurrence counts for content keys: one per run, and one per log read. */
struct occ {
	uint64_t key[OCC_SLOTS];
	uint32_t n[OCC_SLOTS];
};

/* Request operations as the log has them (io_submit's op). */
enum { REQ_OP_READ, REQ_OP_WRITE, REQ_OP_FLUSH, REQ_OP_DISCARD, REQ_OP_OTHER };

/*
 * The content key of the next request doing @op on [@offset, +@bytes): the
 * same for the n-th such request of any run.  0 for REQ_OP_OTHER (unknown
 * requests are matched by ordinal).  Never 0 otherwise.
 */
uint64_t content_key(struct occ *o, uint64_t op, uint64_t offset, uint64_t bytes);

#endif
