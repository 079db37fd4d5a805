/*
 * hook.h - inline function hooks for code inside an unmodified executable.
 *
 * LD_PRELOAD symbol interposition never sees calls that QEMU makes to its own
 * functions (they are direct call/jmp rel32 inside the executable), so bhrr
 * patches function entries in memory instead.  The design is described in
 * doc/hooking.md; in short:
 *
 *   - the target's first whole instructions covering >= 5 bytes are replaced by
 *     "jmp rel32" to a relay ("jmp [rip+0]; .quad replacement") placed in a page
 *     within +-2 GiB of the target; the rest of the stolen bytes become int3;
 *   - the stolen instructions are relocated into a trampoline beside the relay
 *     (RIP-relative operands re-based, relative call/jmp/jcc re-targeted and
 *     widened), followed by a jmp back; *original points at the trampoline;
 *   - anything the engine cannot prove safe is refused with a distinct error
 *     code and a readable reason: it never guesses.
 *
 * Threads: installation must happen while the process is single-threaded (the
 * preload constructor), unless the caller passes HOOK_F_ALLOW_THREADS and
 * guarantees no other thread runs the patched code meanwhile.  Installed hooks
 * may then fire on any number of threads concurrently.  Hooks are never
 * removed and trampolines never freed: a relocated call leaves return addresses
 * pointing into them.
 */
#ifndef BHRR_HOOK_H
#define BHRR_HOOK_H

#include <stddef.h>
#include <stdint.h>

/* Error codes: every refusal has its own, see hook_strerror(). */
enum hook_error {
	HOOK_OK = 0,
	HOOK_E_ARG = -1,         /* bad argument (NULL target, ...) */
	HOOK_E_TOO_SHORT = -2,   /* function or mapping ends before 5 bytes are covered */
	HOOK_E_BACKJUMP = -3,    /* a branch in the function lands inside the patch window */
	HOOK_E_UNSUPPORTED = -4, /* an instruction in the window cannot be relocated */
	HOOK_E_DECODE = -5,      /* the decoder failed, or its answer failed a sanity check */
	HOOK_E_THREADS = -6,     /* the process has more than one thread */
	HOOK_E_NEAR_ALLOC = -7,  /* no free page within +-2 GiB of the target */
	HOOK_E_RANGE = -8,       /* a relocated displacement does not fit in 32 bits */
	HOOK_E_PROTECT = -9,     /* the target could not be written */
	HOOK_E_NOT_EXEC = -10,   /* the target is not in an executable mapping */
	HOOK_E_ALREADY = -11,    /* the target is hooked already */
	HOOK_E_NOSYM = -12,      /* hook_install_sym: no such symbol */
	HOOK_E_NOMEM = -13,      /* out of memory for bookkeeping */
};
#define HOOK_E_COUNT 14

/* Flags for hook_install_ex(). */
#define HOOK_F_ALLOW_THREADS 0x1u /* caller guarantees the target is quiescent */
#define HOOK_F_NO_SYMSIZE 0x2u    /* ignore the symbol size (tests): scan <= 512 bytes */
#define HOOK_F_NULL 0x4u          /* replacement := own trampoline (stress tests) */
#define HOOK_F_DRY_RUN 0x8u       /* analyse and fill *info, change nothing */
#define HOOK_F_CHAIN 0x10u        /* allow hooking an already hooked target */
#define HOOK_F_FORCE_FAR 0x20u    /* tests: relocate branches as if out of rel32 range */

/* What an install did, or why it refused. */
struct hook_info {
	void *target;      /* the function asked for */
	void *patch_at;    /* where the jmp went: target, or target + 4 after endbr64 */
	void *relay;       /* the 16-byte relay slot */
	void *trampoline;  /* what *original points at */
	size_t func_size;  /* from the dynamic symbol table; 0 when unknown */
	unsigned stolen;   /* bytes of whole instructions moved to the trampoline */
	unsigned n_insns;  /* instructions in the window */
	unsigned tramp_len;
	unsigned endbr;    /* 1 if the function starts with endbr64 */
	unsigned scanned;  /* bytes checked for branches into the window */
	unsigned partial;  /* 1 if the back-jump check could not see the whole function */
	uint8_t orig_bytes[32];
	char detail[160];  /* readable reason for a refusal, or a summary */
};

/*
 * hook_install - detour @target to @replacement.
 * @original: OUT, receives the trampoline that runs the original function.
 * Returns 0 or a negative HOOK_E_* code.  Not thread-safe against itself.
 */
int hook_install(void *target, void *replacement, void **original);

/* As hook_install, with HOOK_F_* @flags; @info (may be NULL) is filled either way. */
int hook_install_ex(void *target, void *replacement, void **original,
		    unsigned flags, struct hook_info *info);

/*
 * hook_call_site - inside a function, replace the @len bytes of whole
 * instructions at @at, which end in an indirect call, by @keep (@keep_len
 * bytes of position-independent instructions the caller copied out of the
 * window, run first as before), then "call rel32" to a stub near @at that
 * moves register @r (x86 number: rbx 3, rbp 5, r12..r15 12..15) into rdi
 * and jumps to @fn, then nops.  So @fn(reg) is called where the indirect
 * call was, with the same stack.  The caller proves the window: whole
 * instructions, no branch into it, @keep neither reading nor writing rdi
 * or @r, the call's own argument set up by an instruction it drops.
 * Constructor only (one thread); 0 or a negative HOOK_E_* code.  With
 * HOOK_F_DRY_RUN, only checks what it can without changing anything.
 */
int hook_call_site(void *at, size_t len, const uint8_t *keep, size_t keep_len, int r, void *fn,
		   unsigned flags);

/* Look @name up with dlsym(RTLD_DEFAULT) and hook it. */
int hook_install_sym(const char *name, void *replacement, void **original);

/*
 * Batching: between begin and end, /proc/self/maps is read once and patched
 * text pages stay writable (never losing PROT_EXEC); end restores every
 * page's protection.  Install time for thousands of hooks drops from seconds
 * to milliseconds.  Returns 0 or a negative HOOK_E_* code (end: PROTECT).
 */
int hook_batch_begin(void);
int hook_batch_end(void);

/* A short stable name for @err ("too-short") and a sentence describing it. */
const char *hook_errname(int err);
const char *hook_strerror(int err);

/* Number of threads of this process, from /proc/self/task; -1 on error. */
int hook_thread_count(void);

#endif
