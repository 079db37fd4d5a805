/*
 * pci.c - configuration mechanism #1 and a bus scan.
 */
#include "guest.h"

static uint32_t
addr(int bus, int dev, int fn, int off)
{
	return 0x80000000u | (uint32_t)bus << 16 | (uint32_t)dev << 11 | (uint32_t)fn << 8 |
	       ((uint32_t)off & 0xfc);
}

uint32_t
pci_read(const struct pci_dev *d, int off)
{
	outl(0xcf8, addr(d->bus, d->dev, d->fn, off));
	return inl(0xcfc);
}

void
pci_write(const struct pci_dev *d, int off, uint32_t v)
{
	outl(0xcf8, addr(d->bus, d->dev, d->fn, off));
	outl(0xcfc, v);
}

/* Find a function by vendor/device (0xffff: any) and class/subclass (-1: any). */
int
pci_find(uint16_t vendor, uint16_t device, int class, int subclass, struct pci_dev *out)
{
	for (int bus = 0; bus < 4; bus++)
		for (int dev = 0; dev < 32; dev++)
			for (int fn = 0; fn < 8; fn++) {
				struct pci_dev d = { bus, dev, fn, 0, 0, 0, 0, 0 };
				uint32_t id = pci_read(&d, 0);

				if ((id & 0xffff) == 0xffff) {
					if (fn == 0)
						break;
					continue;
				}
				uint32_t cls = pci_read(&d, 8);

				d.vendor = (uint16_t)id;
				d.device = (uint16_t)(id >> 16);
				d.class = (uint8_t)(cls >> 24);
				d.subclass = (uint8_t)(cls >> 16);
				d.irq = (uint8_t)pci_read(&d, 0x3c);
				if ((vendor == 0xffff || d.vendor == vendor) &&
				    (device == 0xffff || d.device == device) &&
				    (class < 0 || d.class == class) &&
				    (subclass < 0 || d.subclass == subclass)) {
					*out = d;
					return 0;
				}
			}
	return -1;
}

void
pci_enable(const struct pci_dev *d, int io, int mem, int master)
{
	uint32_t cmd = pci_read(d, 4);

	cmd |= (io ? 1u : 0) | (mem ? 2u : 0) | (master ? 4u : 0);
	cmd &= ~(1u << 10); /* INTx enabled */
	pci_write(d, 4, cmd);
}
