/*
 * hook_decode_capstone.c - insn_decode() on top of capstone 4 (x86-64).
 *
 * QEMU already links libcapstone.so.4, so this adds no new library to its
 * address space.  One capstone bug matters here: for many 66-prefixed SSE
 * instructions capstone 4.0.2 reports encoding.disp_size == 2 for a RIP
 * displacement (capstone issue #1775).  A RIP-relative displacement is always
 * 4 bytes in 64-bit mode, so we use 4, trust disp_offset (always right), and
 * refuse if the 4 bytes there do not equal the decoded displacement.
 */
#include <capstone/capstone.h>
#include <string.h>

#include "hook_decode.h"

static csh cs_handle;
static cs_insn *cs_scratch;
static int cs_ready;

int
insn_decoder_open(void)
{
	if (cs_ready)
		return 0;
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &cs_handle) != CS_ERR_OK)
		return -1;
	if (cs_option(cs_handle, CS_OPT_DETAIL, CS_OPT_ON) != CS_ERR_OK) {
		cs_close(&cs_handle);
		return -1;
	}
	cs_scratch = cs_malloc(cs_handle);
	if (cs_scratch == NULL) {
		cs_close(&cs_handle);
		return -1;
	}
	cs_ready = 1;
	return 0;
}

void
insn_decoder_close(void)
{
	if (!cs_ready)
		return;
	cs_free(cs_scratch, 1);
	cs_close(&cs_handle);
	cs_ready = 0;
}

static int
has_group(const cs_insn *ci, uint8_t group)
{
	for (unsigned i = 0; i < ci->detail->groups_count; i++)
		if (ci->detail->groups[i] == group)
			return 1;
	return 0;
}

static int
is_terminator(unsigned id)
{
	switch (id) {
	case X86_INS_RET: case X86_INS_RETF: case X86_INS_JMP: case X86_INS_LJMP:
	case X86_INS_UD2: case X86_INS_UD0: case X86_INS_INT3:
#if CS_API_MAJOR >= 5
	case X86_INS_UD1: /* 0f b9: capstone 4 called it ud2b */
#else
	case X86_INS_UD2B:
#endif
	case X86_INS_HLT: case X86_INS_IRET: case X86_INS_IRETD: case X86_INS_IRETQ:
		return 1;
	default:
		return 0;
	}
}

/*
 * "mnemonic op_str" into @buf, truncated; what snprintf("%.15s%s%.30s")
 * gave, without parsing a format for every decoded instruction (4.7 M
 * instructions of the constructor's 25.1 M, callgrind): only messages
 * read the text.
 */
static void
insn_text(char *buf, size_t cap, const char *mnemonic, const char *op_str)
{
	size_t k = 0;

	for (size_t i = 0; mnemonic[i] != '\0' && i < 15 && k + 1 < cap; i++)
		buf[k++] = mnemonic[i];
	if (op_str[0] != '\0' && k + 1 < cap)
		buf[k++] = ' ';
	for (size_t i = 0; op_str[i] != '\0' && i < 30 && k + 1 < cap; i++)
		buf[k++] = op_str[i];
	buf[k] = '\0';
}

/* Classify a relative branch by its opcode bytes (prefixes already stripped). */
static void
classify_relative(const cs_x86 *x, struct insn *out)
{
	uint8_t op0 = x->opcode[0], op1 = x->opcode[1];

	out->target = (uint64_t)x->operands[0].imm;
	if (op0 == 0xe8)
		out->cls = INSN_CALL_REL;
	else if (op0 == 0xe9 || op0 == 0xeb)
		out->cls = INSN_JMP_REL;
	else if (op0 >= 0x70 && op0 <= 0x7f) {
		out->cls = INSN_JCC_REL;
		out->cc = op0 & 0xfu;
	} else if (op0 == 0x0f && op1 >= 0x80 && op1 <= 0x8f) {
		out->cls = INSN_JCC_REL;
		out->cc = op1 & 0xfu;
	} else
		out->cls = INSN_REL_OTHER; /* jrcxz, loop*, xbegin */
}

int
insn_decode(const uint8_t *code, size_t avail, uint64_t addr, struct insn *out)
{
	const uint8_t *p = code;
	size_t n = avail;
	uint64_t a = addr;

	memset(out, 0, sizeof(*out));
	out->disp_off = -1;
	if (!cs_ready && insn_decoder_open() < 0)
		return -1;
	if (!cs_disasm_iter(cs_handle, &p, &n, &a, cs_scratch))
		return -1;

	const cs_insn *ci = cs_scratch;
	const cs_x86 *x = &ci->detail->x86;

	out->len = ci->size;
	out->cls = INSN_PLAIN;
	out->terminator = (unsigned)is_terminator(ci->id);
	insn_text(out->text, sizeof(out->text), ci->mnemonic, ci->op_str);

	switch (ci->id) {
	case X86_INS_CMP: out->op = INSN_OP_CMP; break;
	case X86_INS_TEST: out->op = INSN_OP_TEST; break;
	case X86_INS_MOV: case X86_INS_MOVZX: out->op = INSN_OP_MOV; break;
	case X86_INS_CALL: out->op = INSN_OP_CALL; break;
	default: out->op = INSN_OP_OTHER; break;
	}
	if (x->op_count > 0 && x->operands[0].type == X86_OP_REG)
		out->reg0 = x->operands[0].reg;
	for (unsigned i = 0; i < x->op_count; i++) {
		const cs_x86_op *op = &x->operands[i];

		if (op->type == X86_OP_MEM && op->mem.base != X86_REG_INVALID &&
		    op->mem.base != X86_REG_RIP && op->mem.base != X86_REG_EIP &&
		    op->mem.index == X86_REG_INVALID && op->mem.segment == X86_REG_INVALID) {
			out->mem_reg = op->mem.base;
			out->mem_disp = op->mem.disp;
			out->mem_size = op->size;
			break;
		}
	}
	if (has_group(ci, CS_GRP_BRANCH_RELATIVE)) {
		classify_relative(x, out);
		return 0;
	}
	for (unsigned i = 0; i < x->op_count; i++) {
		const cs_x86_op *op = &x->operands[i];

		if (op->type != X86_OP_MEM)
			continue;
		if (op->mem.base == X86_REG_EIP) {
			out->cls = INSN_EIPREL;
			return 0;
		}
		if (op->mem.base != X86_REG_RIP)
			continue;
		int32_t raw;
		unsigned off = x->encoding.disp_offset;

		if (off == 0 || off + 4 > out->len)
			return -1;
		memcpy(&raw, code + off, 4);
		if ((int64_t)raw != x->disp)
			return -1; /* capstone disagrees with the bytes: refuse */
		out->cls = INSN_RIPREL;
		out->disp_off = (int)off;
		out->disp = x->disp;
		return 0;
	}
	return 0;
}
