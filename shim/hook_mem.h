/*
 * hook_mem.h - memory services of the hook engine: a /proc/self/maps
 * snapshot, near-page allocation for relays and trampolines, and writing
 * code into text pages without ever dropping PROT_EXEC.
 * Internal to shim/hook*.c.
 */
#ifndef BHRR_HOOK_MEM_H
#define BHRR_HOOK_MEM_H

#include <stddef.h>
#include <stdint.h>

#define HOOK_PAGE 4096u
/* Relays and trampolines stay this close to their target (rel32 reach). */
#define HOOK_NEAR_LIMIT ((uintptr_t)2 * 1024 * 1024 * 1024 - 16u * 1024 * 1024)
/* A slot: 16-byte relay, then the trampoline. */
#define HOOK_SLOT 128u
#define HOOK_SLOTS_PER_PAGE (HOOK_PAGE / HOOK_SLOT)

struct map_ent {
	uintptr_t lo, hi;
	int prot;     /* PROT_* bits */
	int is_heap;  /* the [heap] line */
};

/* Take a maps snapshot (or reuse the batch's); 0 or HOOK_E_NOMEM/PROTECT. */
int hook_maps_get(void);
/* Release a snapshot taken outside a batch. */
void hook_maps_put(void);
/* The mapping containing @addr in the current snapshot, or NULL. */
const struct map_ent *hook_maps_find(uintptr_t addr);

/*
 * End of the executable memory starting at @addr: the contiguous run of
 * executable mappings (patching splits a text mapping into pieces).
 */
uintptr_t hook_maps_exec_end(uintptr_t addr);

/*
 * Allocate a 128-byte slot within HOOK_NEAR_LIMIT of @target, in a page that
 * is left PROT_READ|PROT_EXEC.  Returns the slot or NULL.
 */
uint8_t *hook_slot_alloc(uintptr_t target);
/* Copy @len bytes into a slot (re-opening its page RW, then RX); 0 or error. */
int hook_slot_write(uint8_t *slot, const uint8_t *bytes, size_t len);

/* Write @len bytes of code at @at in a text page; 0 or HOOK_E_PROTECT. */
int hook_text_write(uintptr_t at, const uint8_t *bytes, size_t len);

int hook_mem_batch_begin(void);
int hook_mem_batch_end(void);
int hook_mem_in_batch(void);

#endif
