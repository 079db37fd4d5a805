/*
 * gdb_regs.c - register layouts of the gdb remote protocol, and the i386
 * view of an x86-64 QEMU gdbstub (gdb_regs.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gdb_regs.h"

/* The value of attribute @name in the element starting at @el (ending at '>') into @out. */
static int
attr(const char *el, const char *end, const char *name, char *out, size_t len)
{
	size_t nl = strlen(name);

	for (const char *p = el; p + nl + 2 < end; p++) {
		if ((p[-1] != ' ' && p[-1] != '\t' && p[-1] != '\n') || strncmp(p, name, nl) != 0 ||
		    p[nl] != '=' || (p[nl + 1] != '"' && p[nl + 1] != '\''))
			continue;
		const char *v = p + nl + 2, *q = strchr(v, p[nl + 1]);

		if (q == NULL || q > end || (size_t)(q - v) >= len)
			return -1;
		memcpy(out, v, (size_t)(q - v));
		out[q - v] = 0;
		return 0;
	}
	return -1;
}

int
gdb_layout_add(struct gdb_layout *L, const char *xml)
{
	const char *a = strstr(xml, "<architecture>");

	if (a != NULL) {
		const char *e = strstr(a, "</architecture>");

		if (e != NULL && (size_t)(e - a - 14) < sizeof(L->arch))
			snprintf(L->arch, sizeof(L->arch), "%.*s", (int)(e - a - 14), a + 14);
	}
	int next = L->n > 0 ? L->r[L->n - 1].regnum + 1 : 0;

	for (const char *p = xml; (p = strstr(p, "<reg")) != NULL; p += 4) {
		const char *end = strchr(p, '>');
		char name[24], bits[16], num[16];

		if (p[4] != ' ' && p[4] != '\t' && p[4] != '\n')
			continue; /* not <reg ...> */
		if (end == NULL || L->n == GDB_REGS_MAX)
			return -1;
		if (attr(p + 4, end, "name", name, sizeof(name)) < 0 ||
		    attr(p + 4, end, "bitsize", bits, sizeof(bits)) < 0 || atoi(bits) <= 0 ||
		    atoi(bits) % 8 != 0)
			return -1;
		if (attr(p + 4, end, "regnum", num, sizeof(num)) == 0)
			next = atoi(num);
		struct gdb_reg *r = &L->r[L->n++];

		snprintf(r->name, sizeof(r->name), "%s", name);
		r->regnum = next++;
		r->bytes = atoi(bits) / 8;
	}
	return 0;
}

int
gdb_xml_include(const char *xml, int k, char *out, size_t len)
{
	for (const char *p = xml; (p = strstr(p, "<xi:include")) != NULL; p++) {
		const char *end = strchr(p, '>');

		if (end == NULL)
			return -1;
		if (k-- == 0)
			return attr(p + 11, end, "href", out, len);
	}
	return -1;
}

static int
by_regnum(const void *a, const void *b)
{
	const struct gdb_reg *x = a, *y = b;

	return (x->regnum > y->regnum) - (x->regnum < y->regnum);
}

void
gdb_layout_finish(struct gdb_layout *L)
{
	int off = 0;

	/* stable enough: numbers are unique in a well-formed description */
	qsort(L->r, (size_t)L->n, sizeof(L->r[0]), by_regnum);
	for (int i = 0; i < L->n; i++) {
		L->r[i].off = off;
		off += L->r[i].bytes;
	}
}

int
gdb_layout_find(const struct gdb_layout *L, const char *name)
{
	for (int i = 0; i < L->n; i++)
		if (strcmp(L->r[i].name, name) == 0)
			return i;
	return -1;
}

int
gdb_layout_num(const struct gdb_layout *L, int regnum)
{
	for (int i = 0; i < L->n; i++)
		if (L->r[i].regnum == regnum)
			return i;
	return -1;
}

int
gdb_layout_pc(const struct gdb_layout *L)
{
	static const char *const pcs[] = { "rip", "eip", "pc" };

	for (size_t k = 0; k < sizeof(pcs) / sizeof(pcs[0]); k++) {
		int i = gdb_layout_find(L, pcs[k]);

		if (i >= 0)
			return i;
	}
	return -1;
}

/* ---- the i386 view ---- */

/*
 * gdb's i386 description (its features/i386/32bit-core.xml and
 * 32bit-sse.xml, which gdb requires together): the view's registers, in
 * order, and the register of an x86-64 description each one is the low
 * bytes of.
 */
static const struct {
	const char *name, *from;
	int bits;
} i386_regs[] = {
	{ "eax", "rax", 32 },	  { "ecx", "rcx", 32 },	    { "edx", "rdx", 32 },
	{ "ebx", "rbx", 32 },	  { "esp", "rsp", 32 },	    { "ebp", "rbp", 32 },
	{ "esi", "rsi", 32 },	  { "edi", "rdi", 32 },	    { "eip", "rip", 32 },
	{ "eflags", "eflags", 32 }, { "cs", "cs", 32 },	    { "ss", "ss", 32 },
	{ "ds", "ds", 32 },	  { "es", "es", 32 },	    { "fs", "fs", 32 },
	{ "gs", "gs", 32 },	  { "st0", "st0", 80 },	    { "st1", "st1", 80 },
	{ "st2", "st2", 80 },	  { "st3", "st3", 80 },	    { "st4", "st4", 80 },
	{ "st5", "st5", 80 },	  { "st6", "st6", 80 },	    { "st7", "st7", 80 },
	{ "fctrl", "fctrl", 32 }, { "fstat", "fstat", 32 }, { "ftag", "ftag", 32 },
	{ "fiseg", "fiseg", 32 }, { "fioff", "fioff", 32 }, { "foseg", "foseg", 32 },
	{ "fooff", "fooff", 32 }, { "fop", "fop", 32 },	    { "xmm0", "xmm0", 128 },
	{ "xmm1", "xmm1", 128 },  { "xmm2", "xmm2", 128 },  { "xmm3", "xmm3", 128 },
	{ "xmm4", "xmm4", 128 },  { "xmm5", "xmm5", 128 },  { "xmm6", "xmm6", 128 },
	{ "xmm7", "xmm7", 128 },  { "mxcsr", "mxcsr", 32 },
};

#define NREGS ((int)(sizeof(i386_regs) / sizeof(i386_regs[0])))

static const char i386_xml[] =
	"<?xml version=\"1.0\"?>"
	"<!DOCTYPE target SYSTEM \"gdb-target.dtd\">"
	"<target><architecture>i386</architecture>"
	"<feature name=\"org.gnu.gdb.i386.core\">"
	"<flags id=\"i386_eflags\" size=\"4\">"
	"<field name=\"CF\" start=\"0\" end=\"0\"/><field name=\"\" start=\"1\" end=\"1\"/>"
	"<field name=\"PF\" start=\"2\" end=\"2\"/><field name=\"AF\" start=\"4\" end=\"4\"/>"
	"<field name=\"ZF\" start=\"6\" end=\"6\"/><field name=\"SF\" start=\"7\" end=\"7\"/>"
	"<field name=\"TF\" start=\"8\" end=\"8\"/><field name=\"IF\" start=\"9\" end=\"9\"/>"
	"<field name=\"DF\" start=\"10\" end=\"10\"/><field name=\"OF\" start=\"11\" end=\"11\"/>"
	"<field name=\"NT\" start=\"14\" end=\"14\"/><field name=\"RF\" start=\"16\" end=\"16\"/>"
	"<field name=\"VM\" start=\"17\" end=\"17\"/><field name=\"AC\" start=\"18\" end=\"18\"/>"
	"<field name=\"VIF\" start=\"19\" end=\"19\"/><field name=\"VIP\" start=\"20\" end=\"20\"/>"
	"<field name=\"ID\" start=\"21\" end=\"21\"/></flags>"
	"<reg name=\"eax\" bitsize=\"32\" type=\"int32\" regnum=\"0\"/>"
	"<reg name=\"ecx\" bitsize=\"32\" type=\"int32\"/>"
	"<reg name=\"edx\" bitsize=\"32\" type=\"int32\"/>"
	"<reg name=\"ebx\" bitsize=\"32\" type=\"int32\"/>"
	"<reg name=\"esp\" bitsize=\"32\" type=\"data_ptr\"/>"
	"<reg name=\"ebp\" bitsize=\"32\" type=\"data_ptr\"/>"
	"<reg name=\"esi\" bitsize=\"32\" type=\"int32\"/>"
	"<reg name=\"edi\" bitsize=\"32\" type=\"int32\"/>"
	"<reg name=\"eip\" bitsize=\"32\" type=\"code_ptr\"/>"
	"<reg name=\"eflags\" bitsize=\"32\" type=\"i386_eflags\"/>"
	"<reg name=\"cs\" bitsize=\"32\" type=\"int32\"/>"
	"<reg name=\"ss\" bitsize=\"32\" type=\"int32\"/>"
	"<reg name=\"ds\" bitsize=\"32\" type=\"int32\"/>"
	"<reg name=\"es\" bitsize=\"32\" type=\"int32\"/>"
	"<reg name=\"fs\" bitsize=\"32\" type=\"int32\"/>"
	"<reg name=\"gs\" bitsize=\"32\" type=\"int32\"/>"
	"<reg name=\"st0\" bitsize=\"80\" type=\"i387_ext\"/>"
	"<reg name=\"st1\" bitsize=\"80\" type=\"i387_ext\"/>"
	"<reg name=\"st2\" bitsize=\"80\" type=\"i387_ext\"/>"
	"<reg name=\"st3\" bitsize=\"80\" type=\"i387_ext\"/>"
	"<reg name=\"st4\" bitsize=\"80\" type=\"i387_ext\"/>"
	"<reg name=\"st5\" bitsize=\"80\" type=\"i387_ext\"/>"
	"<reg name=\"st6\" bitsize=\"80\" type=\"i387_ext\"/>"
	"<reg name=\"st7\" bitsize=\"80\" type=\"i387_ext\"/>"
	"<reg name=\"fctrl\" bitsize=\"32\" type=\"int\" group=\"float\"/>"
	"<reg name=\"fstat\" bitsize=\"32\" type=\"int\" group=\"float\"/>"
	"<reg name=\"ftag\" bitsize=\"32\" type=\"int\" group=\"float\"/>"
	"<reg name=\"fiseg\" bitsize=\"32\" type=\"int\" group=\"float\"/>"
	"<reg name=\"fioff\" bitsize=\"32\" type=\"int\" group=\"float\"/>"
	"<reg name=\"foseg\" bitsize=\"32\" type=\"int\" group=\"float\"/>"
	"<reg name=\"fooff\" bitsize=\"32\" type=\"int\" group=\"float\"/>"
	"<reg name=\"fop\" bitsize=\"32\" type=\"int\" group=\"float\"/>"
	"</feature>"
	"<feature name=\"org.gnu.gdb.i386.sse\">"
	"<vector id=\"v4f\" type=\"ieee_single\" count=\"4\"/>"
	"<vector id=\"v2d\" type=\"ieee_double\" count=\"2\"/>"
	"<vector id=\"v16i8\" type=\"int8\" count=\"16\"/>"
	"<vector id=\"v8i16\" type=\"int16\" count=\"8\"/>"
	"<vector id=\"v4i32\" type=\"int32\" count=\"4\"/>"
	"<vector id=\"v2i64\" type=\"int64\" count=\"2\"/>"
	"<union id=\"vec128\"><field name=\"v4_float\" type=\"v4f\"/>"
	"<field name=\"v2_double\" type=\"v2d\"/><field name=\"v16_int8\" type=\"v16i8\"/>"
	"<field name=\"v8_int16\" type=\"v8i16\"/><field name=\"v4_int32\" type=\"v4i32\"/>"
	"<field name=\"v2_int64\" type=\"v2i64\"/><field name=\"uint128\" type=\"uint128\"/></union>"
	"<flags id=\"i386_mxcsr\" size=\"4\">"
	"<field name=\"IE\" start=\"0\" end=\"0\"/><field name=\"DE\" start=\"1\" end=\"1\"/>"
	"<field name=\"ZE\" start=\"2\" end=\"2\"/><field name=\"OE\" start=\"3\" end=\"3\"/>"
	"<field name=\"UE\" start=\"4\" end=\"4\"/><field name=\"PE\" start=\"5\" end=\"5\"/>"
	"<field name=\"DAZ\" start=\"6\" end=\"6\"/><field name=\"IM\" start=\"7\" end=\"7\"/>"
	"<field name=\"DM\" start=\"8\" end=\"8\"/><field name=\"ZM\" start=\"9\" end=\"9\"/>"
	"<field name=\"OM\" start=\"10\" end=\"10\"/><field name=\"UM\" start=\"11\" end=\"11\"/>"
	"<field name=\"PM\" start=\"12\" end=\"12\"/><field name=\"FZ\" start=\"15\" end=\"15\"/>"
	"</flags>"
	"<reg name=\"xmm0\" bitsize=\"128\" type=\"vec128\" regnum=\"32\"/>"
	"<reg name=\"xmm1\" bitsize=\"128\" type=\"vec128\"/>"
	"<reg name=\"xmm2\" bitsize=\"128\" type=\"vec128\"/>"
	"<reg name=\"xmm3\" bitsize=\"128\" type=\"vec128\"/>"
	"<reg name=\"xmm4\" bitsize=\"128\" type=\"vec128\"/>"
	"<reg name=\"xmm5\" bitsize=\"128\" type=\"vec128\"/>"
	"<reg name=\"xmm6\" bitsize=\"128\" type=\"vec128\"/>"
	"<reg name=\"xmm7\" bitsize=\"128\" type=\"vec128\"/>"
	"<reg name=\"mxcsr\" bitsize=\"32\" type=\"i386_mxcsr\" group=\"vector\"/>"
	"</feature></target>";

const char *
gdb_view_i386_xml(void)
{
	return i386_xml;
}

int
gdb_view_i386(struct gdb_view *V, const struct gdb_layout *q, char *missing, size_t len)
{
	memset(V, 0, sizeof(*V));
	if (gdb_layout_add(&V->v, i386_xml) < 0 || V->v.n != NREGS)
		return -1; /* the table and the text disagree: a bug here */
	gdb_layout_finish(&V->v);
	for (int i = 0; i < NREGS; i++) {
		int k = gdb_layout_find(q, i386_regs[i].from);

		if (k < 0 || q->r[k].bytes * 8 < i386_regs[i].bits ||
		    strcmp(V->v.r[i].name, i386_regs[i].name) != 0) {
			snprintf(missing, len, "%s", i386_regs[i].from);
			return -1;
		}
		V->from[i] = k;
	}
	return 0;
}

int
gdb_view_g(const struct gdb_view *V, const struct gdb_layout *q, const char *q_hex, char *out,
	   size_t len)
{
	size_t have = strlen(q_hex), n = 0;

	for (int i = 0; i < V->v.n; i++) {
		const struct gdb_reg *s = &q->r[V->from[i]];
		size_t at = (size_t)s->off * 2, w = (size_t)V->v.r[i].bytes * 2;

		if (n + w + 1 > len)
			return -1;
		/* little-endian: the low bytes come first */
		for (size_t c = 0; c < w; c++)
			out[n++] = at + c < have ? q_hex[at + c] : '0';
	}
	out[n] = 0;
	return 0;
}

int
gdb_view_widen(const struct gdb_view *V, const struct gdb_layout *q, int i, const char *hex,
	       char *out, size_t len)
{
	size_t w = (size_t)V->v.r[i].bytes * 2, qw = (size_t)q->r[V->from[i]].bytes * 2;

	if (strlen(hex) != w || qw + 1 > len)
		return -1;
	memcpy(out, hex, w);
	memset(out + w, '0', qw - w);
	out[qw] = 0;
	return 0;
}
