/*
 * hook_symsize.h - the size of a function from its object's dynamic
 * symbol table, for the hook engine's step 1 (hook_x86_64.c).
 */
#ifndef BHRR_HOOK_SYMSIZE_H
#define BHRR_HOOK_SYMSIZE_H

#include <stddef.h>

/*
 * The st_size of a dynamic function symbol whose value is exactly
 * @target, or 0 when none is.  Any thread (a lock of its own); the first
 * call for an object reads its symbols once.
 */
size_t hook_symbol_size(const void *target);

#endif
