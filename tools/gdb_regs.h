/*
 * gdb_regs.h - register layouts of the gdb remote protocol: the one a
 * QEMU gdbstub describes in its target.xml, and the i386 view bhrr gives
 * gdb of an x86-64 QEMU running 32-bit code (doc/debug.md).
 *
 * QEMU's qemu-system-x86_64 describes its vCPU as x86-64 whatever mode the
 * guest runs in, and gdb cannot unwind 32-bit code with that description:
 * reverse-finish, reverse-next, finish and backtrace need the frames.  The
 * i386 view is the description gdb's own i386 target has (the core
 * registers, x87 and SSE), each register the low bytes of QEMU's of the
 * same role; the endpoint translates 'g', 'G', 'p' and 'P' packets and
 * serves the view's target.xml in place of QEMU's.
 *
 * Pure functions of their arguments; no I/O.
 */
#ifndef BHRR_GDB_REGS_H
#define BHRR_GDB_REGS_H

#include <stddef.h>

#define GDB_REGS_MAX 256

/* The registers of one target description, in 'g' order. */
struct gdb_layout {
	int n;
	struct gdb_reg {
		char name[24];
		int regnum;     /* the number 'p' and 'P' use */
		int bytes;      /* its size in the target's order */
		int off;        /* bytes from the start of 'g' */
	} r[GDB_REGS_MAX];
	char arch[32];          /* <architecture>, or "" */
};

/*
 * Add the <reg> elements and the <architecture> of the XML @xml to @L, in
 * document order, numbering as gdb does (a regnum attribute sets the
 * number, else one more than the last).  Call once per document, the
 * target.xml first, then each xi:include in order.  -1 if a register is
 * malformed or there are too many.
 */
int gdb_layout_add(struct gdb_layout *L, const char *xml);

/* The href of the @k'th xi:include in @xml into @out; -1 when there is none. */
int gdb_xml_include(const char *xml, int k, char *out, size_t len);

/* Offsets in 'g', once every document is added: registers sorted by number. */
void gdb_layout_finish(struct gdb_layout *L);

/* The index in @L of the register named @name, or -1. */
int gdb_layout_find(const struct gdb_layout *L, const char *name);

/* The index in @L of register number @regnum, or -1. */
int gdb_layout_num(const struct gdb_layout *L, int regnum);

/* The program counter's index (rip, eip, pc), or -1. */
int gdb_layout_pc(const struct gdb_layout *L);

/*
 * The i386 view of @q: for each register of the view, the index in @q it
 * is the low bytes of.  0, or -1 if @q lacks a register the view needs
 * (@missing gets its name).
 */
struct gdb_view {
	struct gdb_layout v;    /* the view's own layout */
	int from[GDB_REGS_MAX]; /* v's register i is q's register from[i] */
};

int gdb_view_i386(struct gdb_view *V, const struct gdb_layout *q, char *missing, size_t len);

/* The view's target.xml (static text). */
const char *gdb_view_i386_xml(void);

/*
 * @q_hex, a 'g' reply of @q, as the view's 'g' into @out (hex; registers
 * @q_hex lacks read as zeros).  -1 if @out is too small.
 */
int gdb_view_g(const struct gdb_view *V, const struct gdb_layout *q, const char *q_hex, char *out,
	       size_t len);

/*
 * The value @hex (@V's register @i, hex in target order) as @q's register
 * holds it: zero-extended into @out.  -1 if @hex is not the view's size.
 */
int gdb_view_widen(const struct gdb_view *V, const struct gdb_layout *q, int i, const char *hex,
		   char *out, size_t len);

#endif
