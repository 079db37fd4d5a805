/*
 * irq.c - IDT, the 8259 PICs (remapped to vectors 0x20-0x2f) and the PIT.
 */
#include "guest.h"

struct idt_entry {
	uint16_t off_lo, sel;
	uint8_t zero, type;
	uint16_t off_hi;
} __attribute__((packed));

static struct idt_entry idt[256] __attribute__((aligned(16)));
static void (*handlers[16])(void);
volatile uint32_t pit_ticks;

extern const uint32_t exc_table[32], irq_table[16];

void exception(uint32_t vec);
void irq_dispatch(uint32_t irq);

void
exception(uint32_t vec)
{
	fail("cpu exception %u", vec);
}

static void
set_gate(int vec, uint32_t fn)
{
	uint16_t cs;

	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	idt[vec] = (struct idt_entry){ (uint16_t)fn, cs, 0, 0x8e, (uint16_t)(fn >> 16) };
}

static void
pit_irq(void)
{
	pit_ticks++;
}

void
irq_dispatch(uint32_t irq)
{
	if (handlers[irq])
		handlers[irq]();
	if (irq >= 8)
		outb(0xa0, 0x20);
	outb(0x20, 0x20);
}

void
irq_init(void)
{
	struct {
		uint16_t limit;
		uint32_t base;
	} __attribute__((packed)) idtr = { sizeof(idt) - 1, (uint32_t)idt };

	for (int i = 0; i < 32; i++)
		set_gate(i, exc_table[i]);
	for (int i = 0; i < 16; i++)
		set_gate(0x20 + i, irq_table[i]);
	__asm__ volatile("lidt %0" : : "m"(idtr));
	/* ICW1-4: edge triggered, cascade, vectors 0x20 / 0x28, 8086 mode */
	outb(0x20, 0x11);
	outb(0xa0, 0x11);
	outb(0x21, 0x20);
	outb(0xa1, 0x28);
	outb(0x21, 0x04);
	outb(0xa1, 0x02);
	outb(0x21, 0x01);
	outb(0xa1, 0x01);
	outb(0x21, 0xfb); /* all masked but the cascade */
	outb(0xa1, 0xff);
	handlers[0] = pit_irq;
}

void
irq_route(int line, void (*fn)(void))
{
	handlers[line] = fn;
}

void
irq_unmask(int line)
{
	if (line < 8)
		outb(0x21, inb(0x21) & (uint8_t)~(1u << line));
	else
		outb(0xa1, inb(0xa1) & (uint8_t)~(1u << (line - 8)));
	/* PCI lines are level-triggered on the PIIX: program the ELCR. */
}

void
pit_start(int hz)
{
	uint32_t div = 1193182u / (uint32_t)hz;

	outb(0x43, 0x34); /* channel 0, lo/hi, mode 2 */
	outb(0x40, (uint8_t)div);
	outb(0x40, (uint8_t)(div >> 8));
	irq_unmask(0);
}
