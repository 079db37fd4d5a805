/*
 * A bare-metal guest for QEMU's virt boards (aarch64 and riscv64; the
 * board's addresses are in arch.h, picked by -include): finds the
 * virtio-blk device among the virtio-mmio transports (legacy interface),
 * keeps several requests in flight, and prints each completion with how
 * long it took by the board's virtual counter - which, under -icount,
 * counts the guest's own instructions, so free runs differ wherever the
 * host's I/O timing does, and a replay must print the same.
 */
#include <stdint.h>

/* the board (-include aarch64.h or riscv64.h): ARCH, MMIO0, MMIO_STRIDE, NMMIO, uart_putc(), mb(), counter() */

#define QSZ 16
#define DEPTH 4
#define NCMD 32
#define SECTORS 8

static void putc_(char c) { uart_putc(c); }
static void puts_(const char *s) { while (*s) putc_(*s++); }
static void putu(uint64_t v) { char b[24]; int n = 0; do { b[n++] = (char)('0' + v % 10); v /= 10; } while (v); while (n) putc_(b[--n]); }
static void putx(uint64_t v) { char b[20]; int n = 0; do { b[n++] = "0123456789abcdef"[v & 15]; v >>= 4; } while (v); while (n) putc_(b[--n]); }

static inline uint32_t rd(uint64_t a) { return *(volatile uint32_t *)a; }
static inline void wr(uint64_t a, uint32_t v) { *(volatile uint32_t *)a = v; }

struct desc { uint64_t addr; uint32_t len; uint16_t flags, next; };
struct req { uint32_t type, reserved; uint64_t sector; };

#define QMAX 1024 /* legacy virtio-pci: the device's size, which the driver cannot change */
static uint8_t ring[3 * 4096 + 24 * QMAX] __attribute__((aligned(4096)));
static struct req hdr[DEPTH];
static uint8_t buf[DEPTH][SECTORS * 512] __attribute__((aligned(16)));
static volatile uint8_t st[DEPTH];
static int slot_cmd[DEPTH];
static uint64_t slot_t0[DEPTH];
static uint32_t seed = 1;

static uint32_t rnd(void) { seed = seed * 1103515245u + 12345u; return seed >> 8; }

int
main(void)
{
	uint32_t qsz = QSZ;
#ifdef VIRTIO_PCI
	/*
	 * Legacy virtio-pci on the virt board's PCIe host (-M virt,highmem=off:
	 * the ECAM low, at PCIE_ECAM): no firmware assigned BAR0, so the guest
	 * puts it at I/O port 0x1000, which the CPU reaches at PCIE_PIO + 0x1000.
	 */
	uint64_t cfg = 0, io = PCIE_PIO + 0x1000;

	for (uint64_t dev = 0; dev < 32; dev++)
		if (rd(PCIE_ECAM + (dev << 15)) == 0x10011af4) { cfg = PCIE_ECAM + (dev << 15); break; }
	puts_("guest-" ARCH ": virtio-blk ");
	if (!cfg) { puts_("not found (legacy virtio-pci)\nFAIL\n"); return 1; }
	puts_("pci "); putx(cfg); puts_("\n");
	wr(cfg + 0x10, 0x1000);
	wr(cfg + 0x04, 0x7); /* I/O, memory, bus master */
	*(volatile uint8_t *)(io + 0x12) = 0;
	*(volatile uint8_t *)(io + 0x12) = 1 | 2;
	wr(io + 0x04, 0);
	*(volatile uint16_t *)(io + 0x0e) = 0;
	qsz = *(volatile uint16_t *)(io + 0x0c);
	if (qsz == 0 || qsz > QMAX) { puts_("queue size "); putu(qsz); puts_("\nFAIL\n"); return 1; }
	wr(io + 0x08, (uint32_t)((uint64_t)ring >> 12));
	*(volatile uint8_t *)(io + 0x12) = 1 | 2 | 4;
#define NOTIFY() (*(volatile uint16_t *)(io + 0x10) = 0)
#define ACK() ((void)*(volatile uint8_t *)(io + 0x13))
#else
	uint64_t base = 0;

	for (int i = 0; i < NMMIO; i++) {
		uint64_t b = MMIO0 + MMIO_STRIDE * (uint64_t)i;

		if (rd(b) == 0x74726976 && rd(b + 0x8) == 2) { base = b; break; }
	}
	puts_("guest-" ARCH ": virtio-blk ");
	if (!base || rd(base + 4) != 1) { puts_("not found (legacy virtio-mmio)\nFAIL\n"); return 1; }
	putx(base); puts_("\n");
	wr(base + 0x70, 0); wr(base + 0x70, 1); wr(base + 0x70, 1 | 2);
	wr(base + 0x24, 0); wr(base + 0x20, 0);
	wr(base + 0x28, 4096);
	wr(base + 0x30, 0);
	if (rd(base + 0x34) < QSZ) { puts_("queue too small\nFAIL\n"); return 1; }
	wr(base + 0x38, QSZ); wr(base + 0x3c, 4096);
	wr(base + 0x40, (uint32_t)((uint64_t)ring >> 12));
	wr(base + 0x70, 1 | 2 | 4);
#define NOTIFY() wr(base + 0x50, 0)
#define ACK() wr(base + 0x64, rd(base + 0x60))
#endif
	/* the legacy layout: descriptors, the available ring, then the used ring at the next page */
	volatile struct desc *d = (volatile struct desc *)ring;
	volatile uint16_t *avail = (volatile uint16_t *)(ring + 16 * qsz);
	volatile uint8_t *used = ring + ((16 * qsz + 6 + 2 * qsz + 4095) & ~4095u);

	int issued = 0, done = 0, inflight = 0;
	uint16_t last_used = 0, aidx = 0;
	uint64_t sum_all = 0, t_start = counter();

	while (done < NCMD) {
		for (int s = 0; s < DEPTH && issued < NCMD && inflight < DEPTH; s++) {
			if (slot_cmd[s]) continue;
			int write = rnd() % 4 == 0;
			hdr[s] = (struct req){ write ? 1u : 0u, 0, (uint64_t)(rnd() % 240) * SECTORS };
			if (write) for (int k = 0; k < SECTORS * 512; k++) buf[s][k] = (uint8_t)(issued + k);
			st[s] = 0xff;
			int h = 3 * s;
			d[h] = (struct desc){ (uint64_t)&hdr[s], sizeof(hdr[s]), 1, (uint16_t)(h + 1) };
			d[h + 1] = (struct desc){ (uint64_t)buf[s], SECTORS * 512, (uint16_t)(1 | (write ? 0 : 2)), (uint16_t)(h + 2) };
			d[h + 2] = (struct desc){ (uint64_t)&st[s], 1, 2, 0 };
			avail[2 + aidx % qsz] = (uint16_t)h;
			mb();
			avail[1] = ++aidx;
			mb();
			slot_cmd[s] = ++issued;
			slot_t0[s] = counter();
			inflight++;
			NOTIFY();
		}
		mb();
		uint16_t ui = *(volatile uint16_t *)(used + 2);
		while (last_used != ui) {
			uint32_t id = *(volatile uint32_t *)(used + 4 + 8 * (last_used % qsz));
			int s = (int)id / 3;
			uint64_t lat = counter() - slot_t0[s];
			uint32_t sum = 0;

			for (int k = 0; k < SECTORS * 512; k++) sum = sum * 31 + buf[s][k];
			puts_("cmd="); putu((uint64_t)slot_cmd[s]); puts_(" op="); puts_(hdr[s].type ? "W" : "R");
			puts_(" lba="); putu(hdr[s].sector); puts_(" st="); putu(st[s]);
			puts_(" sum="); putx(sum); puts_(" lat="); putu(lat); puts_("\n");
			sum_all += sum + lat;
			slot_cmd[s] = 0; inflight--; done++; last_used++;
		}
		ACK();
	}
	puts_("done: cmds="); putu(NCMD); puts_(" ticks="); putu(counter() - t_start);
	puts_(" digest="); putx(sum_all); puts_("\n");
	return 0;
}
