/*
 * hook_symsize.c - the size of the function a hook target starts (see
 * hook_symsize.h).
 *
 * dladdr1(RTLD_DL_SYMENT) answers this, but it walks every dynamic symbol of
 * the object on each call: about 1 ms per call in QEMU 7.2, whose
 * --export-dynamic .dynsym holds tens of thousands of symbols, and a
 * session asks about 36 times before QEMU's main() (a dry run and an
 * install per hook).  So the defined functions of each object asked about
 * are read once from its loaded dynamic section into a hash table keyed by
 * their offset from the object's base (sorting its ~20,000 symbols instead
 * cost about 12 ms of QEMU's start-up).  An object whose dynamic section
 * cannot be read that way is left to dladdr1.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "hook_symsize.h"

/*
 * An entry: the function's offset from the object's base (0: a free slot)
 * and its size, 32 bits each, so QEMU 7.2's 9,459 functions fit 32,768
 * slots in 256 KiB.  (Two 64-bit words per entry, for every dynamic symbol
 * rather than every function, made it 1 MiB; first-touch page faults on
 * it were most of this file's 2-4 ms before main().)
 */
struct sym_ent {
	uint32_t off;
	uint32_t size;
};

#define OBJ_MAX 8

/* Objects read so far; every field under table_mu. */
static pthread_mutex_t table_mu = PTHREAD_MUTEX_INITIALIZER;
static struct obj {
	uintptr_t base;          /* dlpi_addr */
	struct sym_ent *sym;     /* open addressing by off; NULL: use dladdr1 */
	size_t mask;             /* slots - 1 (a power of 2) */
	unsigned shift;          /* 64 - log2(slots): the hash's top bits pick the slot */
} objs[OBJ_MAX];
static size_t nobjs;

struct find {
	uintptr_t target;
	uintptr_t base;
	const ElfW(Dyn) *dyn;
	int found;
};

static int
find_object(struct dl_phdr_info *info, size_t size, void *opaque)
{
	struct find *f = opaque;
	const ElfW(Dyn) *dyn = NULL;
	int inside = 0;

	(void)size;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t start = info->dlpi_addr + ph->p_vaddr;

		if (ph->p_type == PT_LOAD && f->target >= start && f->target - start < ph->p_memsz)
			inside = 1;
		else if (ph->p_type == PT_DYNAMIC)
			dyn = (const ElfW(Dyn) *)(info->dlpi_addr + ph->p_vaddr);
	}
	if (!inside)
		return 0;
	f->base = info->dlpi_addr;
	f->dyn = dyn;
	f->found = 1;
	return 1;
}

/* A d_ptr of the loaded dynamic section: glibc relocates most in place; not all loaders do. */
static uintptr_t
dyn_ptr(uintptr_t base, ElfW(Addr) p)
{
	return p < base ? base + p : p;
}

/* Dynamic symbols in a DT_GNU_HASH table: one past the highest index it reaches. */
static size_t
gnu_hash_count(const uint32_t *h)
{
	uint32_t nbuckets = h[0], symoffset = h[1], bloom_size = h[2];
	const uint32_t *buckets = h + 4 + bloom_size * (sizeof(ElfW(Addr)) / 4);
	const uint32_t *chain = buckets + nbuckets;
	uint32_t last = 0;

	for (uint32_t i = 0; i < nbuckets; i++)
		if (buckets[i] > last)
			last = buckets[i];
	if (last < symoffset)
		return symoffset;
	while (!(chain[last - symoffset] & 1))
		last++;
	return (size_t)last + 1;
}

/*
 * The slot of @off in @o: its entry, or the free one where it would go.
 * Fibonacci hashing: the product's top bits, which every bit of the
 * offset moves (its low bits depend only on the offset's low bits).
 */
static struct sym_ent *
slot(const struct obj *o, uint32_t off)
{
	size_t i = (size_t)(((uint64_t)off * 0x9e3779b97f4a7c15ull) >> o->shift);

	while (o->sym[i].off != 0 && o->sym[i].off != off)
		i = (i + 1) & o->mask;
	return &o->sym[i];
}

/* A symbol the table keeps: a defined function with a size, within 4 GiB of the base. */
static int
keep_sym(const ElfW(Sym) *s)
{
	return s->st_shndx != SHN_UNDEF && s->st_value != 0 && s->st_size != 0 &&
	       s->st_value <= UINT32_MAX && s->st_size <= UINT32_MAX &&
	       (ELF64_ST_TYPE(s->st_info) == STT_FUNC || ELF64_ST_TYPE(s->st_info) == STT_GNU_IFUNC);
}

/* Read the defined, sized symbols of the object at @base; table_mu held. */
static void
load(struct obj *o, uintptr_t base, const ElfW(Dyn) *dyn)
{
	const ElfW(Sym) *symtab = NULL;
	const uint32_t *hash = NULL, *gnu_hash = NULL;
	size_t count = 0, funcs = 0, n;
	unsigned bits = 1;

	o->base = base;
	o->sym = NULL;
	for (; dyn != NULL && dyn->d_tag != DT_NULL; dyn++) {
		if (dyn->d_tag == DT_SYMTAB)
			symtab = (const ElfW(Sym) *)dyn_ptr(base, dyn->d_un.d_ptr);
		else if (dyn->d_tag == DT_HASH)
			hash = (const uint32_t *)dyn_ptr(base, dyn->d_un.d_ptr);
		else if (dyn->d_tag == DT_GNU_HASH)
			gnu_hash = (const uint32_t *)dyn_ptr(base, dyn->d_un.d_ptr);
	}
	if (symtab == NULL || (hash == NULL && gnu_hash == NULL))
		return;
	count = hash != NULL ? hash[1] : gnu_hash_count(gnu_hash);
	for (size_t i = 0; i < count; i++)
		funcs += (size_t)keep_sym(&symtab[i]);
	if (funcs == 0)
		return;
	for (n = 2; n < 2 * funcs; n *= 2)
		bits++;
	/* populated at once: one system call instead of a fault per page */
	void *m = mmap(NULL, n * sizeof(*o->sym), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	if (m == MAP_FAILED)
		return;
	o->sym = m;
	o->mask = n - 1;
	o->shift = 64 - bits;
	for (size_t i = 0; i < count; i++) {
		const ElfW(Sym) *s = &symtab[i];

		if (!keep_sym(s))
			continue;
		struct sym_ent *e = slot(o, (uint32_t)s->st_value);

		/* the largest size among aliases, as the ELF symbol dladdr1 picks may be any */
		e->off = (uint32_t)s->st_value;
		if (s->st_size > e->size)
			e->size = (uint32_t)s->st_size;
	}
}

static size_t
dladdr_size(const void *target)
{
	Dl_info di;
	const ElfW(Sym) *sym = NULL;

	if (dladdr1(target, &di, (void **)&sym, RTLD_DL_SYMENT) == 0 || sym == NULL)
		return 0;
	if (di.dli_saddr != target)
		return 0;
	return sym->st_size;
}

size_t
hook_symbol_size(const void *target)
{
	struct find f = { .target = (uintptr_t)target };
	struct obj *o = NULL;
	size_t size = 0;
	int table = 0;

	dl_iterate_phdr(find_object, &f);
	if (!f.found)
		return dladdr_size(target);
	pthread_mutex_lock(&table_mu);
	for (size_t i = 0; i < nobjs; i++)
		if (objs[i].base == f.base)
			o = &objs[i];
	if (o == NULL && nobjs < OBJ_MAX) {
		o = &objs[nobjs++];
		load(o, f.base, f.dyn);
	}
	if (o != NULL && o->sym != NULL) {
		table = 1;
		if (f.target > f.base && f.target - f.base <= UINT32_MAX)
			size = slot(o, (uint32_t)(f.target - f.base))->size; /* 0 in a free slot */
	}
	pthread_mutex_unlock(&table_mu);
	return table ? size : dladdr_size(target);
}
