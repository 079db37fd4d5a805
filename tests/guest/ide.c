/*
 * ide.c - legacy IDE (PIIX3) on both channels, one command in flight per
 * channel, by PIO (READ/WRITE SECTORS, a completion per sector) or by
 * bus-master DMA (READ/WRITE DMA with a PRD table).
 */
#include "guest.h"

#define ST_ERR 0x01
#define ST_DRQ 0x08
#define ST_BSY 0x80

enum { IDLE, PIO_READ, PIO_WRITE, DMA };

struct prd {
	uint32_t addr;
	uint16_t bytes; /* 0 = 64 KiB */
	uint16_t flags; /* 0x8000: last */
};

static struct chan {
	uint16_t base, ctrl, bm;
	int irq, state;
	struct cmd *c;
	uint32_t xfer; /* sectors moved by PIO so far */
	struct prd prd[8] __attribute__((aligned(8)));
} ch[2] = {
	{ .base = 0x1f0, .ctrl = 0x3f6, .irq = 14 },
	{ .base = 0x170, .ctrl = 0x376, .irq = 15 },
};

static int use_dma, nchan;

static void
ide_irq0(void)
{
	inb(ch[0].base + 7); /* reading the status acknowledges */
}

static void
ide_irq1(void)
{
	inb(ch[1].base + 7);
}

static int
ide_init(int use_irq)
{
	struct pci_dev d;

	use_dma = cfg.mode[0] == 'd';
	nchan = cfg.channels == 1 ? 1 : 2;
	if (pci_find(0x8086, 0x7010, -1, -1, &d) < 0)
		return -1;
	pci_enable(&d, 1, 0, use_dma);
	uint16_t bm = (uint16_t)(pci_read(&d, 0x20) & ~3u);

	for (int i = 0; i < nchan; i++) {
		ch[i].bm = (uint16_t)(bm + 8 * i);
		outb(ch[i].ctrl, use_irq ? 0x00 : 0x02); /* nIEN when polling */
		outb(ch[i].base + 6, 0xe0);
		if (inb(ch[i].base + 7) == 0xff)
			return -1;
	}
	if (use_irq) {
		irq_route(14, ide_irq0);
		irq_route(15, ide_irq1);
		irq_unmask(14);
		if (nchan > 1)
			irq_unmask(15);
	}
	return 0;
}

/* PRD entries for @c, split so that none crosses a 64 KiB boundary. */
static void
build_prd(struct chan *k, struct cmd *c)
{
	uint32_t a = (uint32_t)c->buf, left = c->count * SECTOR;
	int n = 0;

	while (left) {
		uint32_t room = 0x10000u - (a & 0xffffu);
		uint32_t len = left < room ? left : room;

		k->prd[n] = (struct prd){ a, (uint16_t)len, 0 };
		a += len;
		left -= len;
		n++;
	}
	k->prd[n - 1].flags = 0x8000;
}

/* Program the bus master (DMA) and the task file for @c, and start it. */
static void
start(struct chan *k, struct cmd *c)
{
	if (use_dma) {
		build_prd(k, c);
		outb(k->bm, 0);
		outl(k->bm + 4, (uint32_t)k->prd);
		outb(k->bm + 2, 0x06); /* clear interrupt and error */
		outb(k->bm, c->write ? 0x00 : 0x08);
	}
	outb(k->base + 6, (uint8_t)(0xe0 | ((c->lba >> 24) & 0x0f)));
	outb(k->base + 2, (uint8_t)c->count);
	outb(k->base + 3, (uint8_t)c->lba);
	outb(k->base + 4, (uint8_t)(c->lba >> 8));
	outb(k->base + 5, (uint8_t)(c->lba >> 16));
	if (use_dma) {
		outb(k->base + 7, c->write ? 0xca : 0xc8);
		outb(k->bm, c->write ? 0x01 : 0x09); /* start */
		k->state = DMA;
	} else {
		outb(k->base + 7, c->write ? 0x30 : 0x20);
		k->state = c->write ? PIO_WRITE : PIO_READ;
	}
}

static int
ide_issue(struct cmd *c)
{
	struct chan *k = NULL;

	for (int i = 0; i < nchan; i++)
		if (ch[(c->id + i) % nchan].state == IDLE) {
			c->slot = (c->id + i) % nchan;
			c->disk = c->slot;
			k = &ch[c->slot];
			break;
		}
	if (k == NULL)
		return -1;
	while (inb(k->base + 7) & ST_BSY)
		;
	k->c = c;
	k->xfer = 0;
	start(k, c);
	/*
	 * reset=K (DMA): soft-reset the channel right after command K starts,
	 * while its DMA runs: QEMU drains the disk, waiting in the vCPU thread
	 * (a nested aio_poll, as when Linux resets a channel).  Then stop the
	 * bus master and start the command again.
	 */
	if (c->id == cfg.reset && cfg.reset > 0 && use_dma) {
		outb(k->ctrl, 0x06); /* SRST, nIEN */
		outb(k->ctrl, cfg.irq ? 0x00 : 0x02);
		while (inb(k->base + 7) & ST_BSY)
			;
		outb(k->bm, 0);
		start(k, c);
	}
	return 0;
}

static uint16_t
ch_alt(const struct chan *k)
{
	return k->ctrl; /* alternate status: reading it acknowledges nothing */
}

static void
finish(struct chan *k)
{
	struct cmd *c = k->c;

	k->state = IDLE;
	k->c = NULL;
	cmd_complete(c);
}

static void
poll_chan(struct chan *k)
{
	uint8_t st;

	if (k->state == DMA) {
		uint8_t bs = inb(k->bm + 2);

		/* with nIEN (polling) there is no interrupt bit: wait for !active */
		if (!(bs & 0x04) && (bs & 0x01))
			return;
		st = inb(ch_alt(k));
		if (st & ST_BSY)
			return;
		outb(k->bm, 0);
		outb(k->bm + 2, 0x06);
		st = inb(k->base + 7);
		if ((bs & 0x02) || (st & ST_ERR))
			fail("ide: dma error on channel %d (bm %x status %x)", (int)(k - ch), bs, st);
		finish(k);
		return;
	}
	st = inb(k->base + 7);
	if (st & ST_BSY)
		return;
	if (st & ST_ERR)
		fail("ide: error on channel %d (status %x)", (int)(k - ch), st);
	uint16_t *w = (uint16_t *)(k->c->buf + k->xfer * SECTOR);

	if (k->state == PIO_READ && (st & ST_DRQ)) {
		uint32_t n = 256;

		__asm__ volatile("rep insw" : "+D"(w), "+c"(n) : "d"(k->base) : "memory");
		if (++k->xfer == k->c->count)
			finish(k);
	} else if (k->state == PIO_WRITE) {
		if ((st & ST_DRQ) && k->xfer < k->c->count) {
			uint32_t n = 256;

			__asm__ volatile("rep outsw" : "+S"(w), "+c"(n) : "d"(k->base) : "memory");
			k->xfer++;
		} else if (!(st & ST_DRQ) && k->xfer == k->c->count) {
			finish(k);
		}
	}
}

static void
ide_poll(void)
{
	for (int i = 0; i < nchan; i++)
		if (ch[i].state != IDLE)
			poll_chan(&ch[i]);
}

const struct driver ide_driver = {
	.name = "ide",
	.max_depth = 2,
	.init = ide_init,
	.issue = ide_issue,
	.poll = ide_poll,
};
