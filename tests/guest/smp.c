/*
 * smp.c - smp=N: N-1 application processors race the BSP on shared memory
 * while the BSP does its I/O.
 *
 * The BSP wakes each AP through its local APIC (INIT, then STARTUP twice,
 * as the MP spec says) at a real-mode trampoline (boot.S) copied below
 * 1 MiB; it enters protected mode on its own GDT, takes a stack and calls
 * ap_main().  Then every CPU repeats one step: read a shared counter, work
 * a few hundred dependent instructions, write it back plus one -- not
 * atomically, so an update is lost when another CPU's step falls in
 * between -- and append its id to a shared trace.
 *
 * Under -icount QEMU runs the vCPUs round robin in one thread, and a turn
 * ends at a virtual-timer deadline, at a halt or when a thread kicks the
 * vCPU, as an I/O completion does: so where the turns change, and so the
 * counter, the lost updates and the trace, follow the host's I/O timing.
 * Free runs differ; a replay must repeat them.
 */
#include "guest.h"

#define MAX_CPUS 8
#define AP_STACK 4096
/*
 * The APs' stacks, then the trace of which CPU took each step, live past
 * the image at 16 MiB (QEMU gives 128 MiB).  In .bss they would cost every
 * run, smp= or not: the loader copies the image and boot.S clears .bss a
 * byte an instruction, which the TSC counts.  The trace is kept whole (a
 * turn lasts thousands of steps: a short one would see only the first
 * switches); only the entries written in this run are read.
 */
#define SMP_AREA 0x1000000u
#define AP_STACKS SMP_AREA
#define TRACE ((volatile uint8_t *)(SMP_AREA + MAX_CPUS * AP_STACK))
#define TRACE_MAX (16u << 20)
#define WORK_ROUNDS 64 /* about 5 instructions each: the window a switch falls in */

/*
 * Where the trampoline runs: a STARTUP IPI starts an AP in real mode at
 * vector * 4 KiB.  QEMU's multiboot loader keeps its memory map and
 * information at 0x9000; the kernel is at 1 MiB; 0x8000 is free.
 */
#define AP_TRAMPOLINE 0x8000u

/* The BSP's local APIC (xAPIC, physical: no paging) and its command register. */
#define LAPIC 0xfee00000u
#define ICR_LO 0x300
#define ICR_HI 0x310
#define ICR_INIT 0x4500u    /* INIT, level assert */
#define ICR_STARTUP 0x4600u /* STARTUP | vector */
#define ICR_PENDING 0x1000u

/*
 * Waits are counted in iterations, never in time: under -icount shift=0
 * an instruction is a nanosecond of guest time, whatever the host does.
 */
#define SPIN_INIT 10000     /* after INIT (the MP spec's 10 ms, shortened: QEMU needs none) */
#define SPIN_STARTUP 1000   /* between the STARTUPs */
#define SPIN_MAX 1000000    /* rounds of a bounded wait for the other CPUs */

/* boot.S: the trampoline, and where it reads each AP's stack */
extern const uint8_t ap_tramp[], ap_tramp_end[];
uint32_t ap_stack_tops[MAX_CPUS];
volatile uint32_t ap_next;

void ap_main(int id);

static struct {
	uint16_t limit;
	uint32_t base;
} __attribute__((packed)) idtr;
static int cpus = 1;
static volatile uint32_t ap_up, ap_acked, go, io_done;

/* what the CPUs race on */
static volatile uint32_t counter, steps;
static volatile uint32_t sink[MAX_CPUS];

static inline uint32_t
xadd(volatile uint32_t *p, uint32_t v)
{
	__asm__ volatile("lock xaddl %0, %1" : "+r"(v), "+m"(*p) : : "memory");
	return v;
}

/*
 * PAUSE ends a vCPU's turn in QEMU's TCG: a waiting CPU lets the others
 * run at once instead of spinning out its slice.
 */
static inline void
pause(void)
{
	__asm__ volatile("pause" ::: "memory");
}

static void
spin(uint32_t n)
{
	for (volatile uint32_t i = 0; i < n; i++)
		;
}

/* Wait until *@p reaches @want, yielding; 0 if it did not in SPIN_MAX rounds. */
static int
wait_for(volatile uint32_t *p, uint32_t want)
{
	for (uint32_t i = 0; i < SPIN_MAX; i++) {
		if (*p >= want)
			return 1;
		pause();
	}
	return *p >= want;
}

static void
ipi(int apic_id, uint32_t cmd)
{
	mmio_w32(LAPIC + ICR_HI, (uint32_t)apic_id << 24);
	mmio_w32(LAPIC + ICR_LO, cmd);
	for (uint32_t i = 0; i < SPIN_MAX && (mmio_r32(LAPIC + ICR_LO) & ICR_PENDING); i++)
		;
}

/*
 * One step of the race.  The read and the write of the counter are a few
 * hundred instructions apart, so a turn that ends between them loses the
 * other CPUs' updates in the meantime.
 */
void
race_step(int id)
{
	uint32_t v = counter, x = v ^ (uint32_t)id;

	for (int i = 0; i < WORK_ROUNDS; i++)
		x = (x * 1103515245u + 12345u) ^ (x >> 11);
	sink[id] = x;
	counter = v + 1;
	uint32_t i = xadd(&steps, 1);

	if (i < TRACE_MAX)
		TRACE[i] = (uint8_t)id;
}

void
ap_main(int id)
{
	__asm__ volatile("lidt %0" : : "m"(idtr)); /* an exception fails the run, not resets it */
	xadd(&ap_up, 1);
	while (!go)
		pause();
	while (!io_done)
		race_step(id);
	xadd(&ap_acked, 1);
	for (;;)
		__asm__ volatile("cli; hlt");
}

/*
 * Start @n - 1 APs (QEMU numbers the APIC IDs 0 to n - 1, the BSP 0) and
 * let them race from now on, until smp_finish().
 */
void
smp_start(int n)
{
	uint32_t size = (uint32_t)(ap_tramp_end - ap_tramp);

	if (n < 1 || n > MAX_CPUS)
		fail("smp=%d: 1 to %d CPUs", n, MAX_CPUS);
	cpus = n;
	memcpy((void *)AP_TRAMPOLINE, ap_tramp, size);
	for (int i = 0; i < MAX_CPUS; i++)
		ap_stack_tops[i] = AP_STACKS + (uint32_t)(i + 1) * AP_STACK;
	__asm__ volatile("sidt %0" : "=m"(idtr));
	mb();
	for (int id = 1; id < n; id++) {
		ipi(id, ICR_INIT);
		spin(SPIN_INIT);
		for (int k = 0; k < 2; k++) {
			ipi(id, ICR_STARTUP | AP_TRAMPOLINE >> 12);
			spin(SPIN_STARTUP);
		}
	}
	if (!wait_for(&ap_up, (uint32_t)n - 1))
		fail("smp=%d: %u of %d APs started", n, ap_up, n - 1);
	printf("smp: %d cpus\n", n);
	go = 1;
}

/* Stop the race and print it: the line enters the digest. */
void
smp_finish(void)
{
	uint32_t c, s, switches = 0, hash = FNV1A_BASIS;

	io_done = 1;
	if (!wait_for(&ap_acked, (uint32_t)cpus - 1))
		fail("smp=%d: %u of %d APs stopped", cpus, ap_acked, cpus - 1);
	c = counter;
	s = steps;
	for (uint32_t i = 0; i < s && i < TRACE_MAX; i++) {
		switches += i > 0 && TRACE[i] != TRACE[i - 1];
		hash = (hash ^ TRACE[i]) * 16777619u;
	}
	printf("race: cpus=%d steps=%u counter=%u lost=%u switches=%u trace=%8x\n", cpus, s, c, s - c,
	       switches, hash);
}
