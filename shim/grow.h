/*
 * grow.h - the one grow-an-array helper, for the shim, the log library and
 * the tools.  Any thread; the caller owns the array.
 */
#ifndef BHRR_GROW_H
#define BHRR_GROW_H

#include <stdlib.h>

/*
 * Make room for element @n of the array *@v, whose capacity is *@cap
 * elements of @size bytes: doubles the capacity (from @first) when full.
 * Returns 0, or -1 with the array unchanged when memory runs out.
 */
static inline int
grow_to(void **v, size_t *cap, size_t n, size_t size, size_t first)
{
	if (n < *cap)
		return 0;
	size_t nc = *cap ? *cap * 2 : first;

	while (nc <= n)
		nc *= 2;
	void *nv = realloc(*v, nc * size);

	if (nv == NULL)
		return -1;
	*v = nv;
	*cap = nc;
	return 0;
}

/* GROW(arr, n, cap): room for arr[n]; 0 or -1.  arr is any pointer lvalue. */
#define GROW(arr, n, cap) grow_to((void **)&(arr), &(cap), (n), sizeof(*(arr)), 16)

#endif
