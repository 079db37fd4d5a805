/*
 * guest.h - the bare-metal test guest: port I/O, MMIO, the driver interface,
 * and what main.c offers the drivers.  32-bit protected mode, flat segments,
 * no paging: physical addresses are pointers.
 */
#ifndef GUEST_H
#define GUEST_H

#include <stddef.h>
#include <stdint.h>

#define SECTOR 512u

static inline void outb(uint16_t p, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(p)); }
static inline void outw(uint16_t p, uint16_t v) { __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(p)); }
static inline void outl(uint16_t p, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(p)); }
static inline uint8_t inb(uint16_t p) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(p)); return v; }
static inline uint16_t inw(uint16_t p) { uint16_t v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(p)); return v; }
static inline uint32_t inl(uint16_t p) { uint32_t v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(p)); return v; }
static inline uint32_t mmio_r32(uintptr_t a) { return *(volatile uint32_t *)a; }
static inline void mmio_w32(uintptr_t a, uint32_t v) { *(volatile uint32_t *)a = v; }
static inline void barrier(void) { __asm__ volatile("" ::: "memory"); }
static inline void mb(void) { __asm__ volatile("lock; addl $0,0(%%esp)" ::: "memory"); }

/* FNV-1a over @n bytes at @p, on from @h (FNV1A_BASIS to start) */
#define FNV1A_BASIS 2166136261u
static inline uint32_t
fnv1a(uint32_t h, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}
static inline uint64_t rdtsc(void) { uint32_t lo, hi; __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi)); return (uint64_t)hi << 32 | lo; }
static inline void cli(void) { __asm__ volatile("cli" ::: "memory"); }
static inline void sti(void) { __asm__ volatile("sti" ::: "memory"); }

/* One guest command. */
struct cmd {
	int id;           /* issue order, 0.. */
	int write;
	uint32_t lba, count;
	int slot;         /* channel / NCQ tag / virtio request, set by the driver */
	int disk;         /* which disk (ide: the channel), set by the driver */
	unsigned gen;     /* write generation of the data written */
	uint64_t issued;  /* TSC when issued */
	uint64_t latency; /* TSC from issue to the completion being seen */
	uint8_t *buf;     /* count * SECTOR bytes */
	int done;
};

struct driver {
	const char *name;
	int max_depth;
	/*
	 * Find and set up the device; 0 or a negative error.  With @use_irq it
	 * routes and unmasks its own interrupt lines (handlers only acknowledge
	 * the device: poll() does the work).
	 */
	int (*init)(int use_irq);
	/* Start @c; 0, or -1 if no slot is free right now. */
	int (*issue)(struct cmd *c);
	/* Advance the device; call cmd_complete() for each finished command. */
	void (*poll)(void);
	/* Optional: tell the device about everything issued since the last call. */
	void (*kick)(void);
};

extern const struct driver ide_driver, ahci_driver, virtio_driver;

/* rng.c: read @k chunks from the virtio-rng and print them. */
void rng_read(int k);
/* e1000.c */
void net_start(int arp);
void net_read(int k);
/*
 * What net= reports of each of its @k frames, whichever NIC: the polls it
 * waited, its length and hash.  net_frames_begin says the guest waits and
 * hands back @k zeroed entries (hash at FNV1A_BASIS); net_frames_print
 * prints them.
 */
struct net_frame {
	uint32_t polls, len, sum;
};
struct net_frame *net_frames_begin(int k);
void net_frames_print(int k);
/* rtl8139.c: the same on an RTL8139 (rtl8139=1) */
void rtl8139_start(void);
void rtl8139_read(int k);

/* Provided by main.c. */
void cmd_complete(struct cmd *c);
void print(const char *s);
void printf(const char *fmt, ...);
void fail(const char *fmt, ...) __attribute__((noreturn));
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
extern struct config {
	const char *dev;   /* ide | ahci | virtio */
	const char *mode;  /* pio | dma (ide) */
	int n;             /* commands */
	int count;         /* sectors per command */
	int depth;         /* commands in flight */
	int writes;        /* percent */
	int irq;           /* wait by IRQ + hlt (1) or status polling (0) */
	int hz;            /* PIT ticks per second while waiting, 0 off */
	uint32_t seed;
	int flaky;         /* 0 off, else the race to fail on (see main.c) */
	int race;          /* 0 off, else fail when command K completes before K-1 */
	int coin;          /* 0 off, else fail when command K's latency hashes to 1 */
	int reset;         /* ide DMA: 0 off, else soft-reset the channel as command K starts, then redo it */
	uint32_t sectors;  /* disk size */
	int channels;      /* ide: 1 or 2 */
	int quiet;         /* 1: no per-command lines, only the digest */
	int batch;         /* ahci, virtio: one doorbell for all commands issued together */
	int idle;          /* PIT ticks to sleep through with no I/O in flight, first (needs hz) */
	int con;           /* bytes to read from COM1 first, 0 none */
	int rng;           /* 16-byte chunks to read from a virtio-rng first, 0 none */
	int warm;          /* say whether this boot follows a reset in con= (RAM kept) */
	int rtc;           /* print the CMOS RTC's date and time at boot */
	int kbd;           /* scancode bytes to read from the i8042 first, 0 none */
	int pwrbtn;        /* wait for the ACPI power button first (system_powerdown) */
	int net;           /* frames to read from an e1000 first, 0 none (needs hz=) */
	int arp;           /* send an ARP request for 10.0.2.2 first (with net=) */
	int rtl8139;       /* net= on an RTL8139 in place of the e1000 */
	int smp;           /* CPUs: 1, or N-1 APs racing the BSP during the I/O (smp.c) */
} cfg;

/* pci.c */
struct pci_dev {
	int bus, dev, fn;
	uint16_t vendor, device;
	uint8_t class, subclass, irq;
};
int pci_find(uint16_t vendor, uint16_t device, int class, int subclass, struct pci_dev *out);
uint32_t pci_read(const struct pci_dev *d, int off);
void pci_write(const struct pci_dev *d, int off, uint32_t v);
void pci_enable(const struct pci_dev *d, int io, int mem, int master);

/*
 * smp.c: smp_start(N) starts N-1 APs racing on a shared counter; each
 * race_step() is one CPU's update; smp_finish() stops them and prints the
 * race.
 */
void smp_start(int n);
void race_step(int id);
void smp_finish(void);

/* irq.c */
void irq_init(void);
void irq_route(int line, void (*fn)(void));
void irq_unmask(int line);
void pit_start(int hz);
extern volatile uint32_t pit_ticks;

#endif
