/*
 * main.c - the bare-metal test guest: read the configuration from the
 * multiboot command line, drive one disk controller with several commands
 * in flight, check every byte read, print one line per completed command on
 * the debugcon port and leave through isa-debug-exit.
 *
 * Its only nondeterminism is when completions arrive: everything it chooses
 * comes from its seed.  So two free runs differ exactly where I/O timing
 * differed, and a replay that delivered completions differently (or wrong
 * data) shows in the output.
 *
 * Exit (isa-debug-exit at 0xf4; QEMU exits with (value << 1) | 1):
 *   0x10 -> 33  pass
 *   0x11 -> 35  failure: bad data, device error, configuration error
 *   0x12 -> 37  flaky failure: flaky=K and at least K commands completed
 *               before the command issued just before them; or race=K and
 *               command K completed before command K-1 (one race decides); or
 *               coin=K and the latencies of the first K commands hash to 1
 *
 * Options (multiboot command line, "key=value ..."):
 *   dev=ide|ahci|virtio  mode=pio|dma (ide)  n=commands  count=sectors each
 *   depth=in flight  writes=percent  wait=poll|irq  hz=PIT rate (0 off)
 *   seed=N  flaky=K  race=K  coin=K  reset=K (ide)  sectors=disk size  channels=1|2 (ide)  quiet=1
 *   batch=0|1 (ahci, virtio: one doorbell per batch of commands)
 *   idle=K (sleep through K PIT ticks first, nothing in flight: K warps; needs hz=)
 *   con=K (read K bytes from COM1 first, polling its line status; each printed with the
 *   polls it waited, which depends on when the host delivered it)
 *   rng=K (read K 16-byte chunks from a legacy virtio-rng first, polled, and print them)
 *   net=K (read K frames from an e1000 first, polled, each printed with the polls it
 *   waited: when the host's backend sent it; needs hz=)  arp=1 (send an ARP request first)
 *   rtl8139=1 (net= on an RTL8139 instead; no arp=)
 *   kbd=K (read K scancode bytes from the i8042 first, polled, each printed with the polls
 *   it waited: when a monitor's sendkey came)
 *   pwrbtn=1 (wait for the ACPI power button first, polled, printed with the polls it
 *   waited: when a monitor's system_powerdown came)
 *   rtc=1 (print the CMOS RTC's date and time at boot: the host's clock with base=utc)
 *   rtc=K, K > 1 (then watch K of the RTC's seconds tick by polling it, each printed with the
 *   polls it took and the update flags seen: with -rtc clock=host, host timing)
 *   warm=1 (with con=: keep the polls so far at 8 MiB, which a reset leaves alone, and
 *   print at boot those of the boot before, if it was reset while it polled)
 *   smp=N (N-1 APs race the BSP on a shared counter while it does its I/O, then one
 *   "race:" line; needs -smp N; smp.c)
 */
#include <stdarg.h>

#include "guest.h"

#define EXIT_PASS 0x10
#define EXIT_FAIL 0x11
#define EXIT_FLAKY 0x12
#define MAX_CMDS 4096
#define MAX_DEPTH 32
#define MAX_COUNT 64
#define MAX_SECTORS 65536

struct config cfg = {
	.dev = "ide", .mode = "pio", .n = 64, .count = 8, .depth = 2, .writes = 25,
	.irq = 0, .hz = 0, .seed = 1, .flaky = 0, .sectors = 2048, .channels = 2, .quiet = 0, .batch = 1,
	.smp = 1,
};

static struct cmd cmds[MAX_CMDS];
static uint8_t bufs[MAX_DEPTH][MAX_COUNT * SECTOR] __attribute__((aligned(4096)));
static int buf_owner[MAX_DEPTH];
static uint8_t version[2][MAX_SECTORS]; /* per disk: 0 original pattern, else the generation */
static uint8_t busy[MAX_SECTORS];    /* sector is part of a command in flight */
static int done_order[MAX_CMDS];
static int n_done;
static uint64_t digest = 0xcbf29ce484222325ull;
static const struct driver *drv;

/* ---- output ---- */

static void
putc_dbg(char c)
{
	outb(0xe9, (uint8_t)c);
	digest = (digest ^ (uint8_t)c) * 0x100000001b3ull;
}

void
print(const char *s)
{
	while (*s)
		putc_dbg(*s++);
}

static void
put_u64(uint64_t v, unsigned base, int width)
{
	char tmp[24];
	int n = 0;

	do {
		uint64_t q = 0, r = 0;

		/* 64-bit division by shifting: no libgcc in a freestanding guest */
		for (int bit = 63; bit >= 0; bit--) {
			r = r << 1 | ((v >> bit) & 1);
			if (r >= base) {
				r -= base;
				q |= 1ull << bit;
			}
		}
		tmp[n++] = "0123456789abcdef"[r];
		v = q;
	} while (v);
	while (n < width)
		tmp[n++] = '0';
	while (n)
		putc_dbg(tmp[--n]);
}

static void
vprint(const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			putc_dbg(*fmt);
			continue;
		}
		int width = 0, lng = 0;

		fmt++;
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + *fmt++ - '0';
		while (*fmt == 'l') {
			lng++;
			fmt++;
		}
		switch (*fmt) {
		case 'd': {
			long long v = lng > 1 ? va_arg(ap, long long) : va_arg(ap, int);

			if (v < 0) {
				putc_dbg('-');
				v = -v;
			}
			put_u64((uint64_t)v, 10, width);
			break;
		}
		case 'u':
			put_u64(lng > 1 ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned), 10, width);
			break;
		case 'x':
			put_u64(lng > 1 ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned), 16, width);
			break;
		case 's':
			print(va_arg(ap, const char *));
			break;
		case 'c':
			putc_dbg((char)va_arg(ap, int));
			break;
		default:
			putc_dbg(*fmt);
		}
	}
}

void
printf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprint(fmt, ap);
	va_end(ap);
}

/* not inlined: gdb breaks here (tests/shell/85-debug.bats) */
static void __attribute__((noreturn, noinline))
leave(uint8_t code)
{
	outb(0xf4, code);
	for (;;)
		__asm__ volatile("cli; hlt");
}

void
fail(const char *fmt, ...)
{
	va_list ap;

	print("FAIL: ");
	va_start(ap, fmt);
	vprint(fmt, ap);
	va_end(ap);
	print("\n");
	leave(EXIT_FAIL);
}

void *
memset(void *d, int c, size_t n)
{
	uint8_t *p = d;

	while (n--)
		*p++ = (uint8_t)c;
	return d;
}

void *
memcpy(void *d, const void *s, size_t n)
{
	uint8_t *p = d;
	const uint8_t *q = s;

	while (n--)
		*p++ = *q++;
	return d;
}

static int
streq(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

/* ---- configuration: "key=value key=value ..." ---- */

static char cmdline[512];

static uint32_t
parse_num(const char *s)
{
	uint32_t v = 0;

	while (*s >= '0' && *s <= '9')
		v = v * 10 + (uint32_t)(*s++ - '0');
	return v;
}

static void
parse_cmdline(const char *src)
{
	size_t n = 0;

	while (src && src[n] && n < sizeof(cmdline) - 1) {
		cmdline[n] = src[n];
		n++;
	}
	cmdline[n] = 0;
	for (char *p = cmdline; *p;) {
		while (*p == ' ')
			p++;
		char *key = p, *val = NULL;

		while (*p && *p != ' ') {
			if (*p == '=' && !val) {
				*p = 0;
				val = p + 1;
			}
			p++;
		}
		if (*p)
			*p++ = 0;
		if (!val)
			continue;
		if (streq(key, "dev")) cfg.dev = val;
		else if (streq(key, "mode")) cfg.mode = val;
		else if (streq(key, "n")) cfg.n = (int)parse_num(val);
		else if (streq(key, "count")) cfg.count = (int)parse_num(val);
		else if (streq(key, "depth")) cfg.depth = (int)parse_num(val);
		else if (streq(key, "writes")) cfg.writes = (int)parse_num(val);
		else if (streq(key, "wait")) cfg.irq = streq(val, "irq");
		else if (streq(key, "hz")) cfg.hz = (int)parse_num(val);
		else if (streq(key, "seed")) cfg.seed = parse_num(val);
		else if (streq(key, "flaky")) cfg.flaky = (int)parse_num(val);
		else if (streq(key, "race")) cfg.race = (int)parse_num(val);
		else if (streq(key, "coin")) cfg.coin = (int)parse_num(val);
		else if (streq(key, "reset")) cfg.reset = (int)parse_num(val);
		else if (streq(key, "idle")) cfg.idle = (int)parse_num(val);
		else if (streq(key, "con")) cfg.con = (int)parse_num(val);
		else if (streq(key, "rng")) cfg.rng = (int)parse_num(val);
		else if (streq(key, "warm")) cfg.warm = (int)parse_num(val);
		else if (streq(key, "rtc")) cfg.rtc = (int)parse_num(val);
		else if (streq(key, "kbd")) cfg.kbd = (int)parse_num(val);
		else if (streq(key, "pwrbtn")) cfg.pwrbtn = (int)parse_num(val);
		else if (streq(key, "rtl8139")) cfg.rtl8139 = (int)parse_num(val);
		else if (streq(key, "net")) cfg.net = (int)parse_num(val);
		else if (streq(key, "arp")) cfg.arp = (int)parse_num(val);
		else if (streq(key, "sectors")) cfg.sectors = parse_num(val);
		else if (streq(key, "channels")) cfg.channels = (int)parse_num(val);
		else if (streq(key, "quiet")) cfg.quiet = (int)parse_num(val);
		else if (streq(key, "batch")) cfg.batch = (int)parse_num(val);
		else if (streq(key, "smp")) cfg.smp = (int)parse_num(val);
		else
			fail("unknown option '%s'", key);
	}
}

/* ---- data patterns ---- */

static uint32_t
pattern(uint32_t lba, unsigned i, unsigned gen)
{
	uint32_t base = lba * 65536u + i; /* what tests/guest/mkdisk.sh wrote */

	return gen ? base ^ (gen * 0x9e3779b9u) ^ cfg.seed : base;
}

static uint32_t
rng_state;

static uint32_t
rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

/* Prepare command @i: a random range not overlapping any command in flight. */
static void
make_cmd(struct cmd *c, int i)
{
	uint32_t slots = cfg.sectors / (uint32_t)cfg.count;

	c->id = i;
	c->disk = 0;
	c->gen = (unsigned)(i % 254) + 1;
	c->count = (uint32_t)cfg.count;
	c->write = (int)(rnd() % 100) < cfg.writes;
	for (;;) {
		c->lba = (rnd() % slots) * (uint32_t)cfg.count;
		if (!busy[c->lba])
			break;
	}
	for (uint32_t s = 0; s < c->count; s++)
		busy[c->lba + s] = 1;
	c->buf = NULL;
	for (int b = 0; b < MAX_DEPTH; b++)
		if (buf_owner[b] < 0) {
			buf_owner[b] = i;
			c->buf = bufs[b];
			break;
		}
	if (c->buf == NULL)
		fail("no free buffer");
	if (c->write) {
		uint32_t *w = (uint32_t *)c->buf;

		for (uint32_t s = 0; s < c->count; s++)
			for (unsigned k = 0; k < 128; k++)
				w[s * 128 + k] = pattern(c->lba + s, k, c->gen);
	} else {
		memset(c->buf, 0xee, c->count * SECTOR);
	}
}

void
cmd_complete(struct cmd *c)
{
	uint64_t tsc = rdtsc();
	const uint32_t *w = (const uint32_t *)c->buf;

	if (c->done)
		fail("command %d completed twice", c->id);
	c->done = 1;
	c->latency = tsc - c->issued;
	done_order[n_done++] = c->id;
	for (uint32_t s = 0; s < c->count; s++) {
		uint32_t lba = c->lba + s;
		unsigned gen = c->write ? c->gen : version[c->disk][lba];

		for (unsigned k = 0; k < 128; k++)
			if (w[s * 128 + k] != pattern(lba, k, gen))
				fail("%s: command %d: sector %u word %u is %x, want %x", drv->name,
				     c->id, lba, k, w[s * 128 + k], pattern(lba, k, gen));
		if (c->write)
			version[c->disk][lba] = (uint8_t)gen;
		busy[lba] = 0;
	}
	if (!cfg.quiet)
		printf("%s%d slot=%d cmd=%d op=%c lba=%u n=%u sum=%8x tsc=%llu lat=%llu\n", drv->name, c->disk,
		       c->slot, c->id, c->write ? 'W' : 'R', c->lba, c->count,
		       fnv1a(FNV1A_BASIS, c->buf, c->count * SECTOR), (unsigned long long)tsc,
		       (unsigned long long)c->latency);
	for (int b = 0; b < MAX_DEPTH; b++)
		if (buf_owner[b] == c->id)
			buf_owner[b] = -1;
}

/*
 * Adjacent inversions: how many commands K completed before command K-1.
 * The guest "assumes" completions arrive in issue order; with several
 * commands in flight whether they do depends only on I/O timing.
 */
static int
inversions(void)
{
	static int pos[MAX_CMDS];
	int n = 0;

	for (int i = 0; i < n_done; i++)
		pos[done_order[i]] = i;
	for (int k = 1; k < n_done; k++)
		n += pos[k] < pos[k - 1];
	return n;
}

/* Whether command @k completed before command k-1. */
static int
inverted(int k)
{
	int pk = -1, pp = -1;

	for (int i = 0; i < n_done; i++) {
		if (done_order[i] == k)
			pk = i;
		if (done_order[i] == k - 1)
			pp = i;
	}
	return pk >= 0 && pp >= 0 && pk < pp;
}

/*
 * coin=K: the verdict of a test that hangs on timings it does not control,
 * at a rate no host load moves.  Each command's latency (in TSC ticks, which
 * -icount derives from the instruction count) varies between free runs, but
 * clusters: one value can come up in a third of the runs.  The top bit of
 * its Fibonacci hash is so a biased coin; the XOR of K such coins, nearly
 * independent, is fair to within 2^(K-1) times the product of their biases
 * (the piling-up lemma).  A replay gives the same latencies, so the same side.
 */
static int
coin_side(int k)
{
	int side = 0;

	for (int i = 0; i < k; i++)
		side ^= (int)((cmds[i].latency * 0x9e3779b97f4a7c15ull) >> 63);
	return side;
}

/*
 * con=K: K bytes from the 16550 at COM1, by polling its line status
 * register.  How many polls each byte took depends on when the host's
 * main loop handed it over, so two free runs print different counts; a
 * replay must print the recorded ones.
 */
#define COM1 0x3f8

/*
 * warm=1: where the polls so far live, past the image, in RAM that QEMU's
 * system_reset leaves as it was: the next boot reads how far this one got.
 */
#define WARM ((volatile uint32_t *)0x800000)
#define WARM_MAGIC 0xb4a2a5e7u

/* rtc=1: the MC146818's registers, BCD as QEMU sets them up */
static uint8_t
cmos(uint8_t reg)
{
	outb(0x70, reg);
	return inb(0x71);
}

static void
print_rtc(void)
{
	printf("rtc: 20%02x-%02x-%02x %02x:%02x:%02x\n", cmos(9), cmos(8), cmos(7), cmos(4), cmos(2),
	       cmos(0));
}

/*
 * rtc=K, K > 1: watch K ticks of the RTC's seconds, polling.  Each poll
 * reads register A (UIP: an update is about to happen), register C
 * (UF: an update happened; reading clears it) and the seconds, then works
 * a fixed stretch.  On -rtc clock=host every read asks the host's clock
 * and QEMU's update timer fires at host time, so the polls per tick and
 * the flags seen are host timing: free runs print different lines, and a
 * replay must print the recorded ones.  Last it waits for the update flag.
 */
static void
rtc_watch(int ticks)
{
	uint8_t sec = cmos(0);

	for (int t = 0; t < ticks; t++) {
		uint32_t polls = 0, uip = 0, uf = 0;

		for (;;) {
			polls++;
			if (cmos(0x0a) & 0x80)
				uip++;
			if (cmos(0x0c) & 0x10)
				uf++;
			uint8_t s = cmos(0);

			if (s != sec) {
				sec = s;
				break;
			}
			for (volatile int i = 0; i < 20000; i++)
				;
		}
		printf("rtc: tick %d after %u polls (UIP seen %u times, UF %u times), seconds %02x\n",
		       t + 1, polls, uip, uf, sec);
	}
	/*
	 * Then the update flag, which only QEMU's update timer sets (armed
	 * while the flag is clear, for the next second's turn): so every run
	 * sees that timer fire at least once, whatever the host's speed.
	 */
	uint32_t polls = 0;

	while (!(cmos(0x0c) & 0x10)) {
		polls++;
		for (volatile int i = 0; i < 20000; i++)
			;
	}
	printf("rtc: update flag after %u polls\n", polls);
}

/*
 * kbd=K: K bytes from the keyboard controller, by polling its status
 * (bit 0: output buffer full).  What the firmware left there is read first.
 */
static void
keyboard_read(int k)
{
	uint32_t polls[64];
	uint8_t got[64];

	if (k > 64)
		fail("kbd=%d: at most 64", k);
	while (inb(0x64) & 1)
		(void)inb(0x60);
	printf("kbd: waiting for %d bytes\n", k);
	for (int i = 0; i < k; i++) {
		polls[i] = 0;
		while (!(inb(0x64) & 1))
			polls[i]++;
		got[i] = inb(0x60);
	}
	for (int i = 0; i < k; i++) {
		digest = (digest ^ got[i]) * 0x100000001b3ull;
		printf("kbd: byte %d = %x after %u polls\n", i, got[i], polls[i]);
	}
}

/*
 * pwrbtn=1: the ACPI power button, which a monitor's system_powerdown
 * presses: PIIX4's power-management function (00:01.3) has its PM1 event
 * block at PMBA (config 0x40; SeaBIOS puts it at 0x600), status then
 * enable.  QEMU sets the button's status bit only while it is enabled.
 * Polled: the polls waited say when the command came.
 */
static void
power_button_wait(void)
{
	struct pci_dev pm;

	if (pci_find(0x8086, 0x7113, -1, -1, &pm) < 0)
		fail("pwrbtn: no PIIX4 power management function");
	uint16_t base = (uint16_t)(pci_read(&pm, 0x40) & 0xffc0);

	if (base == 0 || !(pci_read(&pm, 0x80) & 1)) {
		base = 0x600;
		pci_write(&pm, 0x40, base | 1);
		pci_write(&pm, 0x80, pci_read(&pm, 0x80) | 1);
	}
	outw(base, 0x100);     /* PM1_STS: clear the button's status (write 1) */
	outw(base + 2, 0x100); /* PM1_EN: the button */
	printf("pwr: waiting for the power button\n");
	uint32_t polls = 0;

	while (!(inw(base) & 0x100))
		polls++;
	outw(base, 0x100);
	digest = (digest ^ polls) * 0x100000001b3ull;
	printf("pwr: power button after %u polls\n", polls);
}

static void
warm_boot(void)
{
	if (WARM[0] == WARM_MAGIC)
		printf("boot: warm, the boot before was reset after %u polls of COM1\n", WARM[1]);
	else
		printf("boot: cold\n");
	WARM[0] = 0;
}

static void
console_read(int k)
{
	static uint32_t polls[256];
	static uint8_t got[256];
	uint64_t t0 = rdtsc();
	uint32_t total = 0;

	if (k > 256)
		fail("con=%d: at most 256", k);
	/* kept before it says it waits: a harness acts on that line */
	if (cfg.warm) {
		WARM[1] = 0;
		WARM[0] = WARM_MAGIC;
	}
	printf("con: waiting for %d bytes\n", k);
	/* nothing printed meanwhile: the guest spins while the host brings the next byte */
	for (int i = 0; i < k; i++) {
		polls[i] = 0;
		while (!(inb(COM1 + 5) & 1)) {
			polls[i]++;
			if (cfg.warm)
				WARM[1] = ++total;
		}
		got[i] = inb(COM1);
	}
	uint64_t t = rdtsc() - t0;

	for (int i = 0; i < k; i++) {
		digest = (digest ^ got[i]) * 0x100000001b3ull;
		printf("con: byte %d = %x after %u polls\n", i, got[i], polls[i]);
	}
	printf("con: %d bytes in %llu ticks\n", k, (unsigned long long)t);
}

struct mb_info {
	uint32_t flags, mem_lower, mem_upper, boot_device, cmdline;
};

void kmain(const struct mb_info *mb);

void
kmain(const struct mb_info *mb)
{
	parse_cmdline((mb->flags & 4) ? (const char *)mb->cmdline : "");
	rng_state = cfg.seed * 2654435761u + 1;
	if (cfg.n < 0 || cfg.n > MAX_CMDS || cfg.count < 1 || cfg.count > MAX_COUNT ||
	    cfg.depth < 1 || cfg.depth > MAX_DEPTH || cfg.sectors > MAX_SECTORS ||
	    cfg.sectors / (uint32_t)cfg.count < (uint32_t)cfg.depth * 2)
		fail("bad configuration");
	if (streq(cfg.dev, "ide"))
		drv = &ide_driver;
	else if (streq(cfg.dev, "ahci"))
		drv = &ahci_driver;
	else if (streq(cfg.dev, "virtio"))
		drv = &virtio_driver;
	else
		fail("unknown device '%s'", cfg.dev);
	if (cfg.depth > drv->max_depth)
		cfg.depth = drv->max_depth;
	for (int b = 0; b < MAX_DEPTH; b++)
		buf_owner[b] = -1;

	irq_init();
	printf("guest: dev=%s mode=%s n=%d count=%d depth=%d writes=%d wait=%s hz=%d seed=%u flaky=%d batch=%d\n",
	       cfg.dev, cfg.mode, cfg.n, cfg.count, cfg.depth, cfg.writes, cfg.irq ? "irq" : "poll",
	       cfg.hz, cfg.seed, cfg.flaky, cfg.batch);
	if (drv->init(cfg.irq) < 0)
		fail("%s: no device", drv->name);
	if (cfg.hz)
		pit_start(cfg.hz);
	if (cfg.irq || cfg.hz)
		sti();
	/*
	 * idle=K: sleep through K PIT ticks with nothing in flight.  Only the
	 * timer can wake the vCPU, so under -icount sleep=off QEMU warps the
	 * clock to it: K warps, whatever the host does (a test needs them).
	 */
	if (cfg.idle > 0 && cfg.hz == 0)
		fail("idle=%d needs hz=", cfg.idle);
	for (uint32_t t0 = pit_ticks; pit_ticks - t0 < (uint32_t)cfg.idle;)
		__asm__ volatile("sti; hlt" ::: "memory");
	if (cfg.rtc)
		print_rtc();
	if (cfg.rtc > 1)
		rtc_watch(cfg.rtc);
	if (cfg.kbd > 0)
		keyboard_read(cfg.kbd);
	if (cfg.pwrbtn)
		power_button_wait();
	if (cfg.warm)
		warm_boot();
	if (cfg.net > 0) {
		if (cfg.hz == 0)
			fail("net=%d needs hz=", cfg.net);
		if (cfg.rtl8139)
			rtl8139_start();
		else
			net_start(cfg.arp);
		/* QEMU's e1000 takes frames 1000 ms (virtual) after receive is enabled: sleep it out */
		for (uint32_t t0 = pit_ticks; pit_ticks - t0 < (uint32_t)cfg.hz * 11 / 10;)
			__asm__ volatile("sti; hlt" ::: "memory");
		if (cfg.rtl8139)
			rtl8139_read(cfg.net);
		else
			net_read(cfg.net);
	}
	if (cfg.con > 0)
		console_read(cfg.con);
	if (cfg.rng > 0)
		rng_read(cfg.rng);
	/* smp=N: the APs race from here to the end of the I/O (smp.c) */
	if (cfg.smp != 1)
		smp_start(cfg.smp);

	int issued = 0, inflight = 0;

	while (n_done < cfg.n) {
		while (issued < cfg.n && inflight < cfg.depth) {
			struct cmd *c = &cmds[issued];

			make_cmd(c, issued);
			cli();
			c->issued = rdtsc();
			int rc = drv->issue(c);

			if (cfg.irq || cfg.hz)
				sti();
			if (rc < 0) {
				for (uint32_t s = 0; s < c->count; s++)
					busy[c->lba + s] = 0;
				for (int b = 0; b < MAX_DEPTH; b++)
					if (buf_owner[b] == c->id)
						buf_owner[b] = -1;
				break;
			}
			issued++;
			inflight++;
			if (drv->kick && !cfg.batch)
				drv->kick();
		}
		if (drv->kick && cfg.batch) {
			cli();
			drv->kick();
			if (cfg.irq || cfg.hz)
				sti();
		}
		int before = n_done;

		if (cfg.smp != 1)
			race_step(0); /* the BSP's update, between its commands */
		cli();
		drv->poll();
		if (n_done == before && cfg.irq)
			__asm__ volatile("sti; hlt" ::: "memory"); /* woken by the device or the PIT */
		else if (cfg.irq || cfg.hz)
			sti();
		inflight -= n_done - before;
	}
	cli();
	if (cfg.smp != 1)
		smp_finish();
	int inv = inversions();

	printf("done: dev=%s cmds=%d inversions=%d ticks=%u tsc=%llu\n", drv->name, n_done, inv,
	       pit_ticks, (unsigned long long)rdtsc());
	uint64_t d = digest;

	printf("digest=%16llx\n", (unsigned long long)d);
	if (cfg.race > 0 && cfg.race < n_done && inverted(cfg.race)) {
		printf("FLAKY: command %d completed before command %d\n", cfg.race, cfg.race - 1);
		leave(EXIT_FLAKY);
	}
	if (cfg.coin > 0 && coin_side(cfg.coin < n_done ? cfg.coin : n_done)) {
		printf("FLAKY: the latencies of the first %d commands came up odd\n", cfg.coin);
		leave(EXIT_FLAKY);
	}
	if (cfg.flaky && inv >= cfg.flaky) {
		printf("FLAKY: %d commands completed before the one issued just before them (limit %d)\n",
		       inv, cfg.flaky);
		leave(EXIT_FLAKY);
	}
	leave(EXIT_PASS);
}
