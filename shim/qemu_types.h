/*
 * qemu_types.h - just enough of QEMU's types to declare the functions bhrr
 * hooks or calls with their exact prototypes.  Every struct stays opaque:
 * layouts differ across builds and are discovered at run time, never
 * assumed here.
 */
#ifndef BHRR_QEMU_TYPES_H
#define BHRR_QEMU_TYPES_H

#include <stdbool.h>
#include <stdint.h>

typedef struct AioContext AioContext;
typedef struct QEMUBH QEMUBH;
typedef struct MemReentrancyGuard MemReentrancyGuard;
typedef void QEMUBHFunc(void *opaque);

typedef struct ThreadPool ThreadPool;
typedef int ThreadPoolFunc(void *opaque);
typedef struct BlockAIOCB BlockAIOCB;
typedef void BlockCompletionFunc(void *opaque, int ret);

typedef struct QEMUTimer QEMUTimer;
typedef struct QEMUTimerListGroup QEMUTimerListGroup;
typedef void QEMUTimerCB(void *opaque);
typedef int QEMUClockType; /* an enum in QEMU: int-sized */

typedef struct CPUState CPUState;
typedef union {
	int host_int;
	unsigned long host_ulong;
	void *host_ptr;
	uint64_t target_ptr;
} run_on_cpu_data;
typedef void (*run_on_cpu_func)(CPUState *cpu, run_on_cpu_data data);

#endif
