/*
 * cmd_doctor.c - bhrr doctor: the sources of nondeterminism on a QEMU
 * command line that bhrr does not cover (doc/record.md), each with its fix.
 * bhrr record prints the same findings as warnings.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

/* The findings so far: at most max stored, all counted. */
struct findings {
	struct finding *f;
	int n, max;
};

static void
find(struct findings *fs, const char *what, const char *fix)
{
	if (fs->n < fs->max)
		fs->f[fs->n] = (struct finding){ what, fix };
	fs->n++;
}

/* Whether the argument @a is option @opt (e.g. "-icount", also as "--icount"). */
static int
is_opt(const char *a, const char *opt)
{
	return strcmp(a[0] == '-' && a[1] == '-' ? a + 1 : a, opt) == 0;
}

/* The value of the last option @opt, or NULL. */
static const char *
opt_value(int argc, char **argv, const char *opt)
{
	const char *v = NULL;

	for (int i = 1; i < argc; i++)
		if (is_opt(argv[i], opt) && i + 1 < argc)
			v = argv[++i];
	return v;
}

static int
has_opt(int argc, char **argv, const char *opt)
{
	for (int i = 1; i < argc; i++)
		if (is_opt(argv[i], opt))
			return 1;
	return 0;
}

/* Any argument containing @needle. */
static const char *
any_arg(int argc, char **argv, const char *needle)
{
	for (int i = 1; i < argc; i++)
		if (strstr(argv[i], needle))
			return argv[i];
	return NULL;
}

/* Whether option @opt is given with a value other than "none". */
static int
opt_not_none(int argc, char **argv, const char *opt)
{
	const char *v = opt_value(argc, argv, opt);

	return v && strcmp(v, "none") != 0;
}

/* What makes the guest's time and its CPUs depend on the host. */
static void
check_clock(int argc, char **argv, struct findings *fs)
{
	const char *ic = opt_value(argc, argv, "-icount");
	const char *smp = opt_value(argc, argv, "-smp");
	const char *rtc = opt_value(argc, argv, "-rtc");
	const char *accel = opt_value(argc, argv, "-accel");
	const char *machine = opt_value(argc, argv, "-machine");

	if (ic == NULL)
		find(fs, "no -icount: bhrr can record only the order of events, not where the guest saw them",
		     "add -icount shift=0,sleep=off");
	else {
		if (strstr(ic, "auto") || (!strstr(ic, "shift=") && (ic[0] < '0' || ic[0] > '9')))
			find(fs, "-icount shift=auto: shift and bias follow host speed",
			     "use a fixed shift: -icount shift=0,sleep=off");
		if (!strstr(ic, "sleep=off"))
			find(fs, "-icount without sleep=off: the clock warps by real time",
			     "add sleep=off to -icount");
	}
	if (has_opt(argc, argv, "-enable-kvm") || (accel && !strstr(accel, "tcg")) ||
	    (machine && strstr(machine, "accel=kvm")))
		find(fs, "a hardware accelerator: no instruction count to tag events with",
		     "use -accel tcg");
	if (smp && (atoi(smp) > 1 || (strstr(smp, "cpus=") && atoi(strstr(smp, "cpus=") + 5) > 1)))
		find(fs, "-smp with several vCPUs: their interleaving is host timing", "use -smp 1");
	if (rtc == NULL || !strstr(rtc, "clock=vm") || !strstr(rtc, "base=") ||
	    strstr(rtc, "base=utc") || strstr(rtc, "base=localtime"))
		find(fs, "the guest RTC follows the host clock",
		     "add -rtc clock=vm,base=2020-01-01T00:00:00");
	if (!has_opt(argc, argv, "-seed"))
		find(fs, "no -seed: RDRAND and QEMU's own random numbers differ per run", "add -seed 1");
}

/* Devices and backends whose events arrive at host timing. */
static void
check_devices(int argc, char **argv, struct findings *fs)
{
	/* virtio's ioeventfds need nothing: bhrr runs each kick in the guest's write (gate_notify.h) */
	if (opt_value(argc, argv, "-netdev") || opt_not_none(argc, argv, "-nic") ||
	    opt_not_none(argc, argv, "-net"))
		find(fs, "a network backend: its traffic arrives at host timing",
		     "record without networking: -nic none");
	if (any_arg(argc, argv, "qcow2") || has_opt(argc, argv, "-snapshot"))
		find(fs, "a qcow2 image (or -snapshot): its cache-clean timer fires in the main loop",
		     "use raw images, or add cache-clean-interval=0 to the qcow2 drive");
	if (any_arg(argc, argv, "iothread"))
		find(fs, "an iothread: its AioContext runs outside the gate", "remove iothread=");
	if (any_arg(argc, argv, "aio=native") || any_arg(argc, argv, "aio=io_uring"))
		find(fs, "aio=native or aio=io_uring: completions come in host-timed batches",
		     "use the default aio=threads");
	const char *display = opt_value(argc, argv, "-display");

	if (!has_opt(argc, argv, "-nographic") && !(display && strcmp(display, "none") == 0))
		find(fs, "a display: keyboard and mouse input arrive at host timing", "add -display none");
	if (opt_not_none(argc, argv, "-monitor"))
		find(fs, "a human monitor: commands arrive at host timing",
		     "avoid monitor commands while recording, or use -monitor none");
}

int
doctor_findings(int argc, char **argv, struct finding *f, int max)
{
	struct findings fs = { f, 0, max };

	check_clock(argc, argv, &fs);
	check_devices(argc, argv, &fs);
	return fs.n;
}

/* bhrr doctor [--] QEMU ARGS...: 0 and silent on a clean line, else 1 and the findings. */
int
cmd_doctor(int argc, char **argv)
{
	struct finding f[DOCTOR_MAX];
	int i = 1;

	if (i < argc && strcmp(argv[i], "--") == 0)
		i++;
	if (i >= argc)
		usage_error("doctor: no QEMU command line given (usage: bhrr doctor [--] QEMU ARGS...)");
	int n = doctor_findings(argc - i, argv + i, f, DOCTOR_MAX);

	for (int k = 0; k < n && k < DOCTOR_MAX; k++)
		printf("bhrr doctor: %s\n    fix: %s\n", f[k].what, f[k].fix);
	return n ? 1 : 0;
}
