/*
 * virtio.c - virtio-blk over the legacy PCI interface (use QEMU's
 * -device virtio-blk-pci,disable-modern=on): one virtqueue,
 * several requests in flight, each a chain of header, data and status.
 */
#include "guest.h"

#define VQ_MAX 1024 /* a legacy driver cannot shrink the queue: QEMU 10.0.13 (Debian 13) says 1024 */
#define MAX_REQ 32

struct vring_desc {
	uint32_t addr_lo, addr_hi;
	uint32_t len;
	uint16_t flags, next;
};

struct blk_req {
	uint32_t type, reserved;
	uint32_t sector_lo, sector_hi;
};

static uint8_t ring[3 * 4096 + 16 * VQ_MAX + 8 * VQ_MAX] __attribute__((aligned(4096)));
static struct blk_req reqs[MAX_REQ];
static volatile uint8_t status[MAX_REQ];
static struct cmd *req_cmd[MAX_REQ];
static struct vring_desc *desc;
static volatile uint16_t *avail; /* flags, idx, ring[] */
static volatile uint8_t *used;   /* flags, idx, ring[] of {u32 id, u32 len} */
static uint16_t qsize, last_used;
static uint16_t io;
static int pending;

static void
vio_irq(void)
{
	inb(io + 0x13); /* reading ISR acknowledges */
}

static int
vio_init(int use_irq)
{
	struct pci_dev d;

	if (pci_find(0x1af4, 0x1001, -1, -1, &d) < 0)
		return -1;
	pci_enable(&d, 1, 0, 1);
	io = (uint16_t)(pci_read(&d, 0x10) & ~3u);
	outb(io + 0x12, 0);           /* reset */
	outb(io + 0x12, 1 | 2);       /* ACKNOWLEDGE | DRIVER */
	(void)inl(io + 0x00);         /* device features: we take none */
	outl(io + 0x04, 0);
	outw(io + 0x0e, 0);           /* queue 0 */
	qsize = inw(io + 0x0c);
	if (qsize == 0 || qsize > VQ_MAX) {
		printf("virtio: queue 0 has %d entries; this guest takes 1 to %d\n", (int)qsize,
		       VQ_MAX);
		return -1;
	}
	uint32_t base = (uint32_t)ring;
	uint32_t used_off = (16u * qsize + 6u + 2u * qsize + 4095u) & ~4095u;

	memset(ring, 0, sizeof(ring));
	desc = (struct vring_desc *)base;
	avail = (volatile uint16_t *)(base + 16u * qsize);
	used = (volatile uint8_t *)(base + used_off);
	outl(io + 0x08, base >> 12);  /* queue PFN */
	if (use_irq) {
		irq_route(d.irq, vio_irq);
		irq_unmask(d.irq);
	} else {
		avail[0] = 1;         /* VRING_AVAIL_F_NO_INTERRUPT */
	}
	outb(io + 0x12, 1 | 2 | 4);   /* DRIVER_OK */
	return 0;
}

static int
vio_issue(struct cmd *c)
{
	int r;

	for (r = 0; r < MAX_REQ && 3 * r + 2 < qsize; r++)
		if (req_cmd[r] == NULL)
			break;
	if (r == MAX_REQ || 3 * r + 2 >= qsize)
		return -1;
	uint16_t h = (uint16_t)(3 * r);

	reqs[r] = (struct blk_req){ c->write ? 1u : 0u, 0, c->lba, 0 };
	status[r] = 0xff;
	desc[h] = (struct vring_desc){ (uint32_t)&reqs[r], 0, sizeof(reqs[r]), 1, (uint16_t)(h + 1) };
	desc[h + 1] = (struct vring_desc){ (uint32_t)c->buf, 0, c->count * SECTOR,
					   (uint16_t)(1 | (c->write ? 0 : 2)), (uint16_t)(h + 2) };
	desc[h + 2] = (struct vring_desc){ (uint32_t)&status[r], 0, 1, 2, 0 };
	c->slot = r;
	req_cmd[r] = c;
	uint16_t idx = avail[1];

	avail[2 + idx % qsize] = h;
	mb();
	avail[1] = (uint16_t)(idx + 1);
	pending = 1;
	return 0;
}

/* One notification for every request made available since the last kick. */
static void
vio_kick(void)
{
	if (!pending)
		return;
	mb();
	outw(io + 0x10, 0);           /* notify queue 0 */
	pending = 0;
}

static void
vio_poll(void)
{
	mb();
	uint16_t idx = *(volatile uint16_t *)(used + 2);

	while (last_used != idx) {
		const volatile uint32_t *e = (const volatile uint32_t *)(used + 4 + 8 * (last_used % qsize));
		uint32_t head = e[0];
		int r = (int)(head / 3);

		last_used++;
		if (head % 3 || r >= MAX_REQ || req_cmd[r] == NULL)
			fail("virtio: bad used element %u", head);
		if (status[r] != 0)
			fail("virtio: request %d failed with status %u", r, status[r]);
		struct cmd *c = req_cmd[r];

		req_cmd[r] = NULL;
		cmd_complete(c);
	}
}

const struct driver virtio_driver = {
	.name = "virtio",
	.max_depth = MAX_REQ,
	.init = vio_init,
	.issue = vio_issue,
	.poll = vio_poll,
	.kick = vio_kick,
};
