/*
 * rtl8139.c - a Realtek RTL8139 (QEMU's rtl8139) receiving, polled, for
 * net=K with rtl8139=1 (main.c): the same frames and lines as e1000.c, from
 * another NIC model.  Receive goes into one ring buffer: each frame is a
 * 4-byte header (status, length with the 4-byte CRC), the frame, its CRC,
 * padded to 4 bytes; the command register's BUFE bit says it is empty, and
 * CAPR (16 behind) hands what was read back.  QEMU takes frames only once
 * the chip's clock runs (HltClk 'R') and receive is on.
 */
#include "guest.h"

#define IDR0 0x00
#define RBSTART 0x30
#define CR 0x37
#define CAPR 0x38
#define IMR 0x3c
#define ISR 0x3e
#define RCR 0x44
#define CONFIG1 0x52
#define HLTCLK 0x5b

#define CR_RST 0x10
#define CR_RE 0x08
#define CR_BUFE 0x01
#define RXLEN 8192

static uint8_t rxring[RXLEN + 16 + 2048] __attribute__((aligned(16)));
static uint16_t io;
static uint32_t offset; /* where the next frame's header is */

void
rtl8139_start(void)
{
	struct pci_dev d;
	uint8_t mac[6];

	if (pci_find(0x10ec, 0x8139, -1, -1, &d) < 0)
		fail("net: no rtl8139");
	pci_enable(&d, 1, 0, 1);
	io = (uint16_t)(pci_read(&d, 0x10) & ~3u);
	outb(io + CONFIG1, 0);
	outb(io + CR, CR_RST);
	while (inb(io + CR) & CR_RST)
		;
	outb(io + HLTCLK, 'R');
	for (int i = 0; i < 6; i++)
		mac[i] = inb(io + IDR0 + i);
	memset(rxring, 0, sizeof(rxring));
	outl(io + RBSTART, (uint32_t)rxring);
	outw(io + IMR, 0);                 /* polled */
	outw(io + ISR, 0xffff);
	/* every unicast, broadcast and multicast; 8K+16 ring, frames may run past its end */
	outl(io + RCR, 0x0f | (1u << 7));
	outb(io + CR, CR_RE);
	offset = 0;
	printf("net: rtl8139 %x:%x:%x:%x:%x:%x\n", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
}

void
rtl8139_read(int k)
{
	struct net_frame *f = net_frames_begin(k);

	for (int i = 0; i < k; i++) {
		while (inb(io + CR) & CR_BUFE)
			f[i].polls++;
		mb();
		uint16_t status = *(volatile uint16_t *)&rxring[offset];
		uint16_t len = *(volatile uint16_t *)&rxring[offset + 2]; /* with the CRC */

		if (!(status & 1) || len < 4 || len > 2048)
			fail("net: rtl8139 frame %d: status %x, length %u", i, status, len);
		f[i].len = len - 4u;
		f[i].sum = fnv1a(f[i].sum, &rxring[offset + 4], f[i].len);
		offset = (offset + 4 + len + 3) & ~3u;
		offset %= RXLEN;
		outw(io + CAPR, (uint16_t)(offset - 16));
	}
	net_frames_print(k);
}
