/* aarch64.h - QEMU's aarch64 virt board, for main.c (-include) */
#ifndef __ASSEMBLER__ /* -include reaches the entry code too */
#include <stdint.h>

#define ARCH "aarch64"
#define UART 0x09000000ul     /* PL011: a write to DR sends a byte */
#define MMIO0 0x0a000000ul    /* 32 virtio-mmio transports, 0x200 apart */
#define MMIO_STRIDE 0x200ul
#define NMMIO 32
#define PCIE_ECAM 0x3f000000ul /* -M virt,highmem=off */
#define PCIE_PIO 0x3eff0000ul  /* the PCI I/O window */

static inline void uart_putc(char c) { *(volatile uint32_t *)UART = (uint32_t)c; }
static inline void mb(void) { __asm__ volatile("dmb sy" ::: "memory"); }
/* the virtual counter: instruction time under -icount */
static inline uint64_t counter(void) { uint64_t v; __asm__ volatile("isb; mrs %0, cntvct_el0" : "=r"(v)); return v; }
#endif
