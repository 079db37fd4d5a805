/*
 * rng.c - virtio-rng over the legacy PCI interface (QEMU's -device
 * virtio-rng-pci,disable-modern=on): one virtqueue, one 16-byte buffer at
 * a time, polled.  rng=K (main.c) reads K such chunks and prints each with
 * how long it waited: the bytes come from the host's RNG backend, and
 * their arrival from its timing.
 */
#include "guest.h"

#define RNG_VQ_MAX 256
#define CHUNK 16

struct rng_desc {
	uint32_t addr_lo, addr_hi;
	uint32_t len;
	uint16_t flags, next;
};

static uint8_t rring[3 * 4096 + 16 * RNG_VQ_MAX + 8 * RNG_VQ_MAX] __attribute__((aligned(4096)));
static uint8_t chunk[CHUNK];

void
rng_read(int k)
{
	struct pci_dev d;

	if (pci_find(0x1af4, 0x1005, -1, -1, &d) < 0)
		fail("rng: no virtio-rng (legacy) device");
	pci_enable(&d, 1, 0, 1);
	uint16_t io = (uint16_t)(pci_read(&d, 0x10) & ~3u);

	outb(io + 0x12, 0);           /* reset */
	outb(io + 0x12, 1 | 2);       /* ACKNOWLEDGE | DRIVER */
	(void)inl(io + 0x00);
	outl(io + 0x04, 0);
	outw(io + 0x0e, 0);
	uint16_t qsize = inw(io + 0x0c);

	if (qsize == 0 || qsize > RNG_VQ_MAX)
		fail("rng: queue size %u", qsize);
	uint32_t base = (uint32_t)rring;
	uint32_t used_off = (16u * qsize + 6u + 2u * qsize + 4095u) & ~4095u;
	struct rng_desc *desc = (struct rng_desc *)base;
	volatile uint16_t *avail = (volatile uint16_t *)(base + 16u * qsize);
	volatile uint8_t *used = (volatile uint8_t *)(base + used_off);

	memset(rring, 0, sizeof(rring));
	outl(io + 0x08, base >> 12);
	avail[0] = 1;                 /* no interrupts: polled */
	outb(io + 0x12, 1 | 2 | 4);   /* DRIVER_OK */

	uint16_t last = 0;

	for (int i = 0; i < k; i++) {
		memset(chunk, 0, sizeof(chunk));
		desc[0] = (struct rng_desc){ (uint32_t)chunk, 0, CHUNK, 2, 0 }; /* device writes */
		uint16_t idx = avail[1];

		avail[2 + idx % qsize] = 0;
		mb();
		avail[1] = (uint16_t)(idx + 1);
		mb();
		outw(io + 0x10, 0);   /* notify queue 0 */
		uint32_t polls = 0;

		while (*(volatile uint16_t *)(used + 2) == last)
			polls++;
		last++;
		uint32_t len = ((const volatile uint32_t *)(used + 4 + 8 * ((last - 1) % qsize)))[1];

		printf("rng: chunk %d: %u bytes after %u polls:", i, len, polls);
		for (uint32_t b = 0; b < len && b < CHUNK; b++)
			printf(" %x", chunk[b]);
		printf("\n");
	}
	outb(io + 0x12, 0);           /* reset: the device stops asking its backend */
}
