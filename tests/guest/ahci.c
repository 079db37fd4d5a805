/*
 * ahci.c - AHCI port 0 with native command queueing: several READ/WRITE
 * FPDMA QUEUED commands in flight, one per command slot (= NCQ tag).
 * A command is done when its PxSACT bit clears.
 */
#include "guest.h"

#define SLOTS 8

struct cmd_header {
	uint16_t flags;  /* CFL in dwords (bits 0-4), W bit 6 */
	uint16_t prdtl;
	volatile uint32_t prdbc;
	uint32_t ctba, ctbau;
	uint32_t rsvd[4];
};

struct prdt {
	uint32_t dba, dbau, rsvd, dbc; /* dbc: bytes - 1, bit 31 interrupt */
};

struct cmd_table {
	uint8_t cfis[64];
	uint8_t acmd[16];
	uint8_t rsvd[48];
	struct prdt prdt[8];
};

static struct cmd_header headers[32] __attribute__((aligned(1024)));
static uint8_t fis[256] __attribute__((aligned(256)));
static struct cmd_table tables[SLOTS] __attribute__((aligned(128)));
static struct cmd *slot_cmd[SLOTS];
static uintptr_t port;
static uintptr_t abar;
static uint32_t pending; /* issued, doorbell not rung yet */

#define P_CLB 0x00
#define P_FB 0x08
#define P_IS 0x10
#define P_IE 0x14
#define P_CMD 0x18
#define P_TFD 0x20
#define P_SSTS 0x28
#define P_SERR 0x30
#define P_SACT 0x34
#define P_CI 0x38

static void
ahci_irq(void)
{
	mmio_w32(port + P_IS, mmio_r32(port + P_IS));
	mmio_w32(abar + 0x08, mmio_r32(abar + 0x08));
}

static int
ahci_init(int use_irq)
{
	struct pci_dev d;

	if (pci_find(0xffff, 0xffff, 0x01, 0x06, &d) < 0)
		return -1;
	pci_enable(&d, 0, 1, 1);
	abar = pci_read(&d, 0x24) & ~0xfu;
	mmio_w32(abar + 0x04, 1u << 31); /* GHC.AE */
	if (!(mmio_r32(abar + 0x0c) & 1))
		return -1;
	port = abar + 0x100;
	if ((mmio_r32(port + P_SSTS) & 0xf) != 3)
		return -1; /* no device on port 0 */
	/* stop the port, then point it at our command list and FIS area */
	mmio_w32(port + P_CMD, mmio_r32(port + P_CMD) & ~0x11u);
	while (mmio_r32(port + P_CMD) & 0xc000)
		;
	memset(headers, 0, sizeof(headers));
	mmio_w32(port + P_CLB, (uint32_t)headers);
	mmio_w32(port + P_CLB + 4, 0);
	mmio_w32(port + P_FB, (uint32_t)fis);
	mmio_w32(port + P_FB + 4, 0);
	mmio_w32(port + P_SERR, 0xffffffffu);
	mmio_w32(port + P_IS, 0xffffffffu);
	mmio_w32(port + P_CMD, mmio_r32(port + P_CMD) | 0x10); /* FRE */
	mmio_w32(port + P_CMD, mmio_r32(port + P_CMD) | 0x01); /* ST */
	if (use_irq) {
		mmio_w32(port + P_IE, 0x7dc0007fu);
		mmio_w32(abar + 0x04, mmio_r32(abar + 0x04) | 2); /* GHC.IE */
		irq_route(d.irq, ahci_irq);
		irq_unmask(d.irq);
	}
	return 0;
}

static int
ahci_issue(struct cmd *c)
{
	int s;
	uint32_t busy = mmio_r32(port + P_SACT) | mmio_r32(port + P_CI) | pending;

	for (s = 0; s < SLOTS; s++)
		if (slot_cmd[s] == NULL && !(busy & (1u << s)))
			break;
	if (s == SLOTS)
		return -1;
	struct cmd_table *t = &tables[s];
	struct cmd_header *h = &headers[s];
	uint32_t bytes = c->count * SECTOR;

	memset(t, 0, sizeof(*t));
	t->prdt[0] = (struct prdt){ (uint32_t)c->buf, 0, 0, bytes - 1 };
	uint8_t *f = t->cfis;

	f[0] = 0x27;                            /* register H2D */
	f[1] = 0x80;                            /* command */
	f[2] = c->write ? 0x61 : 0x60;          /* WRITE / READ FPDMA QUEUED */
	f[3] = (uint8_t)c->count;               /* feature = sector count */
	f[4] = (uint8_t)c->lba;
	f[5] = (uint8_t)(c->lba >> 8);
	f[6] = (uint8_t)(c->lba >> 16);
	f[7] = 0x40;                            /* LBA mode */
	f[8] = (uint8_t)(c->lba >> 24);
	f[11] = (uint8_t)(c->count >> 8);
	f[12] = (uint8_t)(s << 3);              /* NCQ tag */
	memset(h, 0, sizeof(*h));
	h->flags = (uint16_t)(5 | (c->write ? 0x40 : 0));
	h->prdtl = 1;
	h->ctba = (uint32_t)t;
	c->slot = s;
	slot_cmd[s] = c;
	pending |= 1u << s;
	return 0;
}

/* Ring the doorbell once for every command issued since the last kick. */
static void
ahci_kick(void)
{
	if (!pending)
		return;
	mb();
	mmio_w32(port + P_SACT, pending);
	mmio_w32(port + P_CI, pending);
	pending = 0;
}

static void
ahci_poll(void)
{
	uint32_t sact = mmio_r32(port + P_SACT);
	uint32_t tfd = mmio_r32(port + P_TFD);

	if (tfd & 1)
		fail("ahci: task file error %x (is %x serr %x)", tfd, mmio_r32(port + P_IS),
		     mmio_r32(port + P_SERR));
	for (int s = 0; s < SLOTS; s++)
		if (slot_cmd[s] != NULL && !(sact & (1u << s))) {
			struct cmd *c = slot_cmd[s];

			slot_cmd[s] = NULL;
			cmd_complete(c);
		}
}

const struct driver ahci_driver = {
	.name = "ahci",
	.max_depth = SLOTS,
	.init = ahci_init,
	.issue = ahci_issue,
	.poll = ahci_poll,
	.kick = ahci_kick,
};
