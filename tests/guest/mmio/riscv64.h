/* riscv64.h - QEMU's riscv64 virt board, for main.c (-include) */
#ifndef __ASSEMBLER__ /* -include reaches the entry code too */
#include <stdint.h>

#define ARCH "riscv64"
#define UART 0x10000000ul     /* ns16550a: a write to THR sends a byte */
#define MMIO0 0x10001000ul    /* 8 virtio-mmio transports, 0x1000 apart */
#define MMIO_STRIDE 0x1000ul
#define NMMIO 8
#define MTIME 0x0200bff8ul    /* the CLINT's mtime: instruction time under -icount */

static inline void uart_putc(char c) { *(volatile uint8_t *)UART = (uint8_t)c; }
static inline void mb(void) { __asm__ volatile("fence iorw, iorw" ::: "memory"); }
static inline uint64_t counter(void) { return *(volatile uint64_t *)MTIME; }
#endif
