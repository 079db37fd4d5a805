/*
 * hook_mem.c - maps snapshot, near allocation and code writing for the hook
 * engine.  See doc/hooking.md sections 3, 4 and 6 for the reasons behind each
 * rule below.  Everything here runs single-threaded (the preload constructor).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hook.h"
#include "hook_mem.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

/* Never place a slab in the 64 MiB above [heap]: brk() could not grow. */
#define HEAP_GUARD ((uintptr_t)64 * 1024 * 1024)
#define LOWEST_ADDR ((uintptr_t)0x10000)
#define HIGHEST_ADDR ((uintptr_t)0x7ffffffff000)

static struct map_ent *maps;
static size_t maps_n, maps_cap;
static int maps_valid;
static int batch_depth;

struct slab {
	uint8_t *page;
	unsigned used;
};
static struct slab *slabs;
static size_t slabs_n, slabs_cap;

/* Text pages made writable during a batch, restored by batch end. */
struct open_page {
	uintptr_t page;
	int prot;
};
static struct open_page *open_pages;
static size_t open_n, open_cap;

static int
grow(void **v, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 64;

	while (ncap < need)
		ncap *= 2;
	void *nv = realloc(*v, ncap * elem);

	if (nv == NULL)
		return HOOK_E_NOMEM;
	*v = nv;
	*cap = ncap;
	return 0;
}

static uintptr_t
parse_hex(const char **pp)
{
	const char *p = *pp;
	uintptr_t v = 0;

	for (;; p++) {
		int c = *p, d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else
			break;
		v = v << 4 | (uintptr_t)d;
	}
	*pp = p;
	return v;
}

/* Parse one maps line "lo-hi perms off dev inode   path". */
static int
parse_line(const char *line, struct map_ent *e)
{
	const char *p = line;

	e->lo = parse_hex(&p);
	if (*p++ != '-')
		return -1;
	e->hi = parse_hex(&p);
	if (*p++ != ' ')
		return -1;
	e->prot = (p[0] == 'r' ? PROT_READ : 0) | (p[1] == 'w' ? PROT_WRITE : 0) |
		  (p[2] == 'x' ? PROT_EXEC : 0);
	e->is_heap = strstr(p, "[heap]") != NULL;
	return 0;
}

static int
maps_read(void)
{
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return HOOK_E_PROTECT;
	maps_n = 0;
	char buf[8192], line[512];
	size_t ll = 0;
	ssize_t r;
	int err = 0;

	while ((r = read(fd, buf, sizeof(buf))) > 0 || (r < 0 && errno == EINTR)) {
		for (ssize_t i = 0; i < r; i++) {
			if (buf[i] != '\n') {
				if (ll < sizeof(line) - 1)
					line[ll++] = buf[i];
				continue;
			}
			line[ll] = 0;
			ll = 0;
			struct map_ent e;

			if (parse_line(line, &e) < 0)
				continue;
			if ((err = grow((void **)&maps, &maps_cap, maps_n + 1, sizeof(e))) < 0)
				break;
			maps[maps_n++] = e;
		}
	}
	close(fd);
	if (err < 0 || r < 0 || maps_n == 0)
		return err < 0 ? err : HOOK_E_PROTECT;
	maps_valid = 1;
	return 0;
}

int
hook_maps_get(void)
{
	if (batch_depth > 0 && maps_valid)
		return 0;
	return maps_read();
}

void
hook_maps_put(void)
{
	if (batch_depth == 0)
		maps_valid = 0;
}

const struct map_ent *
hook_maps_find(uintptr_t addr)
{
	size_t lo = 0, hi = maps_n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (addr < maps[mid].lo)
			hi = mid;
		else if (addr >= maps[mid].hi)
			lo = mid + 1;
		else
			return &maps[mid];
	}
	return NULL;
}

uintptr_t
hook_maps_exec_end(uintptr_t addr)
{
	const struct map_ent *m = hook_maps_find(addr);

	if (m == NULL || !(m->prot & PROT_EXEC))
		return addr;
	/* mprotect splits a VMA page by page: walk the contiguous run. */
	while (m + 1 < maps + maps_n && m[1].lo == m->hi && (m[1].prot & PROT_EXEC))
		m++;
	return m->hi;
}

/* Record a page we mapped ourselves, keeping the snapshot sorted. */
static void
maps_insert(uintptr_t lo, int prot)
{
	if (grow((void **)&maps, &maps_cap, maps_n + 1, sizeof(*maps)) < 0) {
		maps_valid = 0; /* re-read next time rather than lie */
		return;
	}
	size_t i = 0;

	while (i < maps_n && maps[i].lo < lo)
		i++;
	memmove(&maps[i + 1], &maps[i], (maps_n - i) * sizeof(*maps));
	maps[i] = (struct map_ent){ lo, lo + HOOK_PAGE, prot, 0 };
	maps_n++;
}

static uintptr_t
dist(uintptr_t a, uintptr_t b)
{
	return a > b ? a - b : b - a;
}

struct cand {
	uintptr_t addr, d;
};

static int
cand_cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	return x->d < y->d ? -1 : x->d > y->d;
}

/*
 * Map one page as near to @target as the gaps in the snapshot allow: for
 * each gap, the page of it nearest the target; sorted by distance; the first
 * that MAP_FIXED_NOREPLACE gives us exactly.
 */
static uint8_t *
near_page(uintptr_t target)
{
	uintptr_t heap_hi = 0;
	struct cand *c = NULL;
	size_t cn = 0, ccap = 0;
	uint8_t *got = NULL;

	for (size_t i = 0; i < maps_n; i++)
		if (maps[i].is_heap)
			heap_hi = maps[i].hi;
	for (size_t i = 0; i <= maps_n; i++) {
		uintptr_t gs = i == 0 ? LOWEST_ADDR : maps[i - 1].hi;
		uintptr_t ge = i == maps_n ? HIGHEST_ADDR : maps[i].lo;
		uintptr_t a;

		if (ge <= gs || ge - gs < HOOK_PAGE)
			continue;
		if (heap_hi && gs < heap_hi + HEAP_GUARD && ge > heap_hi) {
			if (ge <= heap_hi + HEAP_GUARD + HOOK_PAGE)
				continue;
			gs = heap_hi + HEAP_GUARD > gs ? heap_hi + HEAP_GUARD : gs;
		}
		a = ge <= target ? ge - HOOK_PAGE : gs >= target ? gs : target & ~(uintptr_t)(HOOK_PAGE - 1);
		if (dist(a, target) + HOOK_PAGE >= HOOK_NEAR_LIMIT)
			continue;
		if (grow((void **)&c, &ccap, cn + 1, sizeof(*c)) < 0)
			break;
		c[cn++] = (struct cand){ a, dist(a, target) };
	}
	qsort(c, cn, sizeof(*c), cand_cmp);
	for (size_t i = 0; i < cn && got == NULL; i++) {
		void *p = mmap((void *)c[i].addr, HOOK_PAGE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

		if (p == MAP_FAILED)
			continue;
		if ((uintptr_t)p != c[i].addr) { /* pre-4.17 kernels: only a hint */
			munmap(p, HOOK_PAGE);
			continue;
		}
		memset(p, 0xcc, HOOK_PAGE); /* int3: a stray jump traps loudly */
		if (mprotect(p, HOOK_PAGE, PROT_READ | PROT_EXEC) < 0) {
			munmap(p, HOOK_PAGE);
			continue;
		}
		maps_insert(c[i].addr, PROT_READ | PROT_EXEC);
		got = p;
	}
	free(c);
	return got;
}

uint8_t *
hook_slot_alloc(uintptr_t target)
{
	for (size_t i = 0; i < slabs_n; i++) {
		struct slab *s = &slabs[i];

		if (s->used < HOOK_SLOTS_PER_PAGE &&
		    dist((uintptr_t)s->page, target) + HOOK_PAGE < HOOK_NEAR_LIMIT)
			return s->page + HOOK_SLOT * s->used++;
	}
	/* The snapshot may predate other mappings; retry with a fresh one. */
	for (int attempt = 0; attempt < 3; attempt++) {
		uint8_t *p = near_page(target);

		if (p != NULL) {
			if (grow((void **)&slabs, &slabs_cap, slabs_n + 1, sizeof(*slabs)) < 0)
				return NULL;
			slabs[slabs_n++] = (struct slab){ p, 1 };
			return p;
		}
		if (maps_read() < 0)
			return NULL;
	}
	return NULL;
}

int
hook_slot_write(uint8_t *slot, const uint8_t *bytes, size_t len)
{
	void *page = (void *)((uintptr_t)slot & ~(uintptr_t)(HOOK_PAGE - 1));

	if (len > HOOK_SLOT)
		return HOOK_E_ARG;
	if (mprotect(page, HOOK_PAGE, PROT_READ | PROT_WRITE) < 0)
		return HOOK_E_PROTECT;
	memcpy(slot, bytes, len);
	if (mprotect(page, HOOK_PAGE, PROT_READ | PROT_EXEC) < 0)
		return HOOK_E_PROTECT;
	__builtin___clear_cache((char *)slot, (char *)slot + len);
	return 0;
}

/* Fallback when RWX is refused: the kernel writes with FOLL_FORCE. */
static int
proc_mem_write(uintptr_t at, const uint8_t *bytes, size_t len)
{
	int fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return HOOK_E_PROTECT;
	ssize_t w = pwrite(fd, bytes, len, (off_t)at);

	close(fd);
	return w == (ssize_t)len ? 0 : HOOK_E_PROTECT;
}

static int
page_is_open(uintptr_t page)
{
	for (size_t i = 0; i < open_n; i++)
		if (open_pages[i].page == page)
			return 1;
	return 0;
}

/* Make one text page writable, keeping PROT_EXEC; 1 opened, 0 already, <0. */
static int
page_open(uintptr_t page, int prot)
{
	if (batch_depth > 0 && page_is_open(page))
		return 0;
	if (mprotect((void *)page, HOOK_PAGE, prot | PROT_WRITE | PROT_EXEC) < 0)
		return HOOK_E_PROTECT;
	if (batch_depth > 0) {
		if (grow((void **)&open_pages, &open_cap, open_n + 1, sizeof(*open_pages)) < 0) {
			mprotect((void *)page, HOOK_PAGE, prot);
			return HOOK_E_NOMEM;
		}
		open_pages[open_n++] = (struct open_page){ page, prot };
	}
	return 1;
}

/*
 * Not instrumented under TSan: its shadow of text is read-only, so a
 * checked store to the patched page faults (the engine runs before any
 * other thread, and the byte loop races with nothing).
 */
__attribute__((no_sanitize_thread)) int
hook_text_write(uintptr_t at, const uint8_t *bytes, size_t len)
{
	uintptr_t first = at & ~(uintptr_t)(HOOK_PAGE - 1);
	uintptr_t last = (at + len - 1) & ~(uintptr_t)(HOOK_PAGE - 1);
	int opened[2] = { 0, 0 }, prots[2] = { 0, 0 };

	for (uintptr_t pg = first, k = 0; pg <= last; pg += HOOK_PAGE, k++) {
		const struct map_ent *m = hook_maps_find(pg);

		prots[k] = m ? m->prot : PROT_READ | PROT_EXEC;
		opened[k] = page_open(pg, prots[k]);
		if (opened[k] < 0) {
			/* RWX refused (SELinux execmod, PaX): write through /proc. */
			if (k == 1 && opened[0] == 1 && batch_depth == 0)
				mprotect((void *)first, HOOK_PAGE, prots[0]);
			return proc_mem_write(at, bytes, len);
		}
	}
	/* A plain byte loop: no libc call can land on the page being patched. */
	for (size_t i = 0; i < len; i++)
		((volatile uint8_t *)at)[i] = bytes[i];
	__builtin___clear_cache((char *)at, (char *)at + len);
	if (batch_depth == 0)
		for (uintptr_t pg = first, k = 0; pg <= last; pg += HOOK_PAGE, k++)
			if (opened[k] == 1 && mprotect((void *)pg, HOOK_PAGE, prots[k]) < 0)
				return HOOK_E_PROTECT;
	return 0;
}

int
hook_mem_batch_begin(void)
{
	if (batch_depth++ > 0)
		return 0;
	int err = maps_read();

	if (err < 0)
		batch_depth = 0;
	return err;
}

int
hook_mem_batch_end(void)
{
	int err = 0;

	if (batch_depth == 0 || --batch_depth > 0)
		return 0;
	for (size_t i = 0; i < open_n; i++)
		if (mprotect((void *)open_pages[i].page, HOOK_PAGE, open_pages[i].prot) < 0)
			err = HOOK_E_PROTECT;
	open_n = 0;
	maps_valid = 0;
	return err;
}

int
hook_mem_in_batch(void)
{
	return batch_depth > 0;
}
