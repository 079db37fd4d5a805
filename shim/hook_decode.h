/*
 * hook_decode.h - the three-function decoder interface the hook engine uses.
 *
 * The engine needs only instruction boundaries and the few facts below, so the
 * decoder (capstone 4 today) stays swappable.  Not thread-safe: the engine
 * runs single-threaded.
 */
#ifndef BHRR_HOOK_DECODE_H
#define BHRR_HOOK_DECODE_H

#include <stddef.h>
#include <stdint.h>

enum insn_class {
	INSN_PLAIN,     /* copy verbatim */
	INSN_RIPREL,    /* memory operand based on RIP: re-base disp32 */
	INSN_CALL_REL,  /* call rel32 */
	INSN_JMP_REL,   /* jmp rel8 / rel32 */
	INSN_JCC_REL,   /* jcc rel8 / rel32; cc in insn.cc */
	INSN_REL_OTHER, /* jrcxz, jecxz, loop*, xbegin: not relocatable */
	INSN_EIPREL,    /* memory operand based on EIP (0x67 prefix): refused */
};

struct insn {
	unsigned len;
	enum insn_class cls;
	unsigned terminator;  /* ret, jmp, ud2, int3, hlt, ljmp, iret: flow ends here */
	int disp_off;         /* RIPREL: offset of the 4-byte displacement */
	int64_t disp;         /* RIPREL: the displacement */
	uint64_t target;      /* *_REL: absolute branch target */
	unsigned cc;          /* JCC_REL: condition nibble 0..15 */
	/* a memory operand [reg + disp] (no index, reg not RIP), for readers of QEMU code */
	int mem_reg;          /* its base register (capstone x86_reg), 0 if none */
	int64_t mem_disp;
	unsigned mem_size;    /* operand size in bytes */
	enum { INSN_OP_OTHER, INSN_OP_CMP, INSN_OP_TEST, INSN_OP_MOV, INSN_OP_CALL } op;
	int reg0;             /* the first operand when it is a register, else 0 */
	char text[48];        /* "mnemonic op_str", for messages */
};

/* Open the decoder; 0 or -1. Idempotent. */
int insn_decoder_open(void);

/*
 * Decode one instruction at @code, which lives at address @addr, reading at
 * most @avail bytes.  Returns 0, or -1 if the bytes are not a valid
 * instruction or a sanity check (e.g. capstone's disp_size bug, see
 * doc/hooking.md) fails.
 */
int insn_decode(const uint8_t *code, size_t avail, uint64_t addr, struct insn *out);

void insn_decoder_close(void);

#endif
