/*
 * shim.c - what every part of libbhrr.so shares (see shim.h).
 */
#define _GNU_SOURCE
#include <time.h>

#include "shim.h"

struct qemu_build shim_qemu;

long long
shim_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}
