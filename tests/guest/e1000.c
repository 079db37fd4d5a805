/*
 * e1000.c - an Intel 82540EM (QEMU's e1000, the NIC -M pc adds by default)
 * receiving, polled.  net=K (main.c) reads K frames and prints each with
 * its length, a hash of its bytes and how many polls it waited: the frames
 * come from the host's network backend, and their arrival from its timing.
 * arp=1 first sends an ARP request for 10.0.2.2, user networking's
 * gateway, which answers it at once.
 *
 * QEMU's e1000 takes no frame for 1000 ms of virtual time after the
 * receive control register is written (its flush_queue_timer): net_start
 * enables receive, and the caller sleeps that out on the PIT before it
 * waits for frames (hz= needed).
 */
#include "guest.h"

#define CTRL 0x0000
#define IMC 0x00d8
#define RCTL 0x0100
#define TCTL 0x0400
#define RDBAL 0x2800
#define RDBAH 0x2804
#define RDLEN 0x2808
#define RDH 0x2810
#define RDT 0x2818
#define TDBAL 0x3800
#define TDBAH 0x3804
#define TDLEN 0x3808
#define TDH 0x3810
#define TDT 0x3818
#define RAL0 0x5400
#define RAH0 0x5404

#define RXN 16
#define TXN 8

struct rx_desc {
	uint32_t addr_lo, addr_hi;
	uint16_t len, csum;
	uint8_t status, errors;
	uint16_t special;
};

struct tx_desc {
	uint32_t addr_lo, addr_hi;
	uint16_t len;
	uint8_t cso, cmd, status, css;
	uint16_t special;
};

static struct rx_desc rxd[RXN] __attribute__((aligned(16)));
static struct tx_desc txd[TXN] __attribute__((aligned(16)));
static uint8_t rxbuf[RXN][2048] __attribute__((aligned(16)));
static uint8_t txbuf[64] __attribute__((aligned(16)));
static uintptr_t bar;
static uint8_t mac[6];
static unsigned next_rx;

static uint32_t r32(uint32_t reg) { return mmio_r32(bar + reg); }
static void w32(uint32_t reg, uint32_t v) { mmio_w32(bar + reg, v); }

/* an ARP request from 10.0.2.15 (our MAC) for 10.0.2.2 */
static void
send_arp(void)
{
	static const uint8_t head[] = { 0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1 };
	uint8_t *p = txbuf;

	memset(txbuf, 0, sizeof(txbuf));
	memset(p, 0xff, 6);
	memcpy(p + 6, mac, 6);
	memcpy(p + 12, head, sizeof(head));
	memcpy(p + 22, mac, 6);
	p[28] = 10, p[29] = 0, p[30] = 2, p[31] = 15;
	p[38] = 10, p[39] = 0, p[40] = 2, p[41] = 2;
	txd[0] = (struct tx_desc){ (uint32_t)txbuf, 0, 60, 0, 0x01 | 0x02 | 0x08, 0, 0, 0 };
	mb();
	w32(TDT, 1);
	while (!(((volatile struct tx_desc *)&txd[0])->status & 1))
		;
	printf("net: sent an ARP request for 10.0.2.2\n");
}

void
net_start(int arp)
{
	struct pci_dev d;

	if (pci_find(0x8086, 0x100e, -1, -1, &d) < 0)
		fail("net: no e1000");
	pci_enable(&d, 0, 1, 1);
	bar = pci_read(&d, 0x10) & ~0xfu;
	w32(IMC, 0xffffffffu);             /* polled */
	w32(CTRL, r32(CTRL) | (1u << 6));  /* set link up */
	uint32_t lo = r32(RAL0), hi = r32(RAH0);

	for (int i = 0; i < 4; i++)
		mac[i] = (uint8_t)(lo >> (8 * i));
	mac[4] = (uint8_t)hi, mac[5] = (uint8_t)(hi >> 8);
	memset(rxd, 0, sizeof(rxd));
	for (int i = 0; i < RXN; i++)
		rxd[i].addr_lo = (uint32_t)rxbuf[i];
	w32(RDBAL, (uint32_t)rxd);
	w32(RDBAH, 0);
	w32(RDLEN, sizeof(rxd));
	w32(RDH, 0);
	w32(RDT, RXN - 1);
	/*
	 * on, broadcast and every unicast and multicast, long frames (up to
	 * 16 KiB, over several 2048-byte buffers), CRC stripped
	 */
	w32(RCTL, (1u << 1) | (1u << 3) | (1u << 4) | (1u << 5) | (1u << 15) | (1u << 26));
	memset(txd, 0, sizeof(txd));
	w32(TDBAL, (uint32_t)txd);
	w32(TDBAH, 0);
	w32(TDLEN, sizeof(txd));
	w32(TDH, 0);
	w32(TDT, 0);
	w32(TCTL, (1u << 1) | (1u << 3));  /* on, pad short frames */
	printf("net: e1000 %x:%x:%x:%x:%x:%x\n", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
	if (arp)
		send_arp();
}

static struct net_frame frames[64];

struct net_frame *
net_frames_begin(int k)
{
	if (k > 64)
		fail("net=%d: at most 64", k);
	printf("net: waiting for %d frames\n", k);
	for (int i = 0; i < k; i++)
		frames[i] = (struct net_frame){ 0, 0, FNV1A_BASIS };
	return frames;
}

void
net_frames_print(int k)
{
	for (int i = 0; i < k; i++)
		printf("net: frame %d: %u bytes, hash %x, after %u polls\n", i, frames[i].len,
		       frames[i].sum, frames[i].polls);
}

void
net_read(int k)
{
	struct net_frame *f = net_frames_begin(k);

	for (int i = 0; i < k; i++) {
		/* a long frame spans buffers: the last has end-of-packet (status bit 1) */
		for (int eop = 0; !eop;) {
			volatile struct rx_desc *r = &rxd[next_rx];

			while (!(r->status & 1))
				f[i].polls++;
			f[i].sum = fnv1a(f[i].sum, rxbuf[next_rx], r->len < 2048 ? r->len : 2048);
			f[i].len += r->len;
			eop = r->status & 2;
			r->status = 0;
			mb();
			w32(RDT, next_rx);  /* the buffer goes back to the NIC */
			next_rx = (next_rx + 1) % RXN;
		}
	}
	net_frames_print(k);
}
