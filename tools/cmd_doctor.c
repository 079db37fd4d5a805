/*
 * cmd_doctor.c - bhrr doctor: the sources of nondeterminism on a QEMU
 * command line that bhrr does not cover (doc/record.md), each with its fix.
 * bhrr record prints the same findings as warnings.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "qemu_args.h"
#include "run_command.h"

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

int
qemu_is_opt(const char *a, const char *opt)
{
	return strcmp(a[0] == '-' && a[1] == '-' ? a + 1 : a, opt) == 0;
}


/* The value of the last option @opt, or NULL. */
static const char *
opt_value(int argc, char **argv, const char *opt)
{
	const char *v = NULL;

	for (int i = 1; i < argc; i++)
		if (qemu_is_opt(argv[i], opt) && i + 1 < argc)
			v = argv[++i];
	return v;
}

int
qemu_has_opt(int argc, char **argv, const char *opt)
{
	for (int i = 1; i < argc; i++)
		if (qemu_is_opt(argv[i], opt))
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

int
qemu_hw_accel(const char *a, int first)
{
	static const char *const hw[] = { "kvm", "hvf", "whpx", "xen", "nvmm", "hax", NULL };

	for (;;) {
		size_t n = strcspn(a, ":,");

		for (int i = 0; hw[i]; i++)
			if (strlen(hw[i]) == n && strncmp(a, hw[i], n) == 0)
				return 1;
		if (first || a[n] != ':')
			return 0;
		a += n + 1;
	}
}

/*
 * The major version "@qemu -version" prints (searched in PATH), or -1 when
 * it does not run or says no version.
 */
static int
qemu_major(const char *qemu)
{
	struct child_process cp = CHILD_PROCESS_INIT;
	char tmp[] = "/tmp/bhrr-doctor.XXXXXX", line[256] = "";
	int fd = mkstemp(tmp), major = -1;

	if (fd < 0)
		return -1;
	close(fd);
	strvec_pushl(&cp.args, qemu, "-version", NULL);
	cp.out = tmp;
	cp.err = "/dev/null";
	cp.in = "/dev/null";
	if (run_command(&cp) == 0) {
		FILE *f = fopen(tmp, "r");
		const char *v;

		if (f != NULL && fgets(line, sizeof(line), f) != NULL &&
		    (v = strstr(line, "version ")) != NULL)
			major = atoi(v + 8);
		if (f != NULL)
			fclose(f);
	}
	unlink(tmp);
	return major;
}

/* Why -smp cannot be exact on a QEMU of @major (before 8). */
static const char *
smp_why(int major)
{
	return major == 7 ? "-smp with several vCPUs: QEMU 7.2 has no per-vCPU icount budget "
			    "(icount_prepare_for_run) for bhrr to make the vCPUs' turns with, so "
			    "bhrr refuses it in exact mode; and QEMU 7.2 itself, under -icount, does "
			    "not boot a Linux guest's second vCPU (it stops after \"x86: Booting SMP "
			    "configuration:\", with bhrr or without)"
			  : "-smp with several vCPUs: this QEMU has no per-vCPU icount budget "
			    "(icount_prepare_for_run) for bhrr to make the vCPUs' turns with, so "
			    "bhrr refuses it in exact mode";
}

int
doctor_smp_refused(int argc, char **argv, char *why, size_t len)
{
	const char *ic = opt_value(argc, argv, "-icount");
	int exact = ic != NULL && strstr(ic, "sleep=off") && !strstr(ic, "auto");
	int major;

	if (qemu_smp_count(opt_value(argc, argv, "-smp")) <= 1 || !exact)
		return 0;
	major = qemu_major(argv[0]);
	if (major <= 0 || major >= 8)
		return 0;
	snprintf(why, len, "%s", smp_why(major));
	return 1;
}

/* What makes the guest's time and its CPUs depend on the host. */
static void
check_clock(int argc, char **argv, struct findings *fs)
{
	const char *ic = opt_value(argc, argv, "-icount");
	const char *smp = opt_value(argc, argv, "-smp");
	const char *rtc = opt_value(argc, argv, "-rtc");
	const char *accel = NULL; /* the first -accel: QEMU tries them in order */

	for (int i = 1; i + 1 < argc && accel == NULL; i++)
		if (qemu_is_opt(argv[i], "-accel"))
			accel = argv[i + 1];
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
	if (qemu_has_opt(argc, argv, "-enable-kvm") || (accel && qemu_hw_accel(accel, 0)) ||
	    (machine && strstr(machine, "accel=") && qemu_hw_accel(strstr(machine, "accel=") + 6, 0)))
		find(fs, "a hardware accelerator (kvm:tcg too, when KVM is there): no instruction "
			 "count to tag events with",
		     "use -accel tcg");
	if (qemu_smp_count(smp) > 1) {
		int exact = ic != NULL && strstr(ic, "sleep=off") && !strstr(ic, "auto");
		int major = exact ? qemu_major(argv[0]) : 0;

		/*
		 * In exact mode the vCPUs' turns are recorded and made again
		 * (shim/vcpu_sched.h), through QEMU's per-vCPU icount budget:
		 * 10.0 has it, 7.2 and 5.2 do not, and bhrr refuses there
		 * (doctor_smp_refused).  Measured (issue 13): QEMU 7.2 alone,
		 * without bhrr, never brings up a Linux guest's second vCPU
		 * under -icount (with sleep=off or not): the boot stops after
		 * "x86: Booting SMP configuration:"; 10.0 boots.
		 */
		if (!exact)
			find(fs, "-smp with several vCPUs: their interleaving is host timing, and bhrr "
				 "records it only in exact mode",
			     "use -icount shift=0,sleep=off, or -smp 1");
		else if (major > 0 && major < 8)
			find(fs, smp_why(major), "use -smp 1, or QEMU 10.0");
	}
	/*
	 * With clock=vm the host's clock reaches the guest once, as the RTC's
	 * start, which a record logs and bhrr replay sets.  An RTC on the
	 * host's clock (clock=host, QEMU's default, or clock=rt) reads it at
	 * every access and fires its timers at host time: exact mode records
	 * those reads and timers (gate_clock.h), ordering mode does not.
	 */
	if (ic == NULL && (rtc == NULL || !strstr(rtc, "clock=vm")))
		find(fs, "the guest RTC follows the host clock, which only exact mode (-icount) records",
		     "add -rtc clock=vm,base=2020-01-01T00:00:00");
	if (!qemu_has_opt(argc, argv, "-seed"))
		find(fs, "no -seed: RDRAND and QEMU's own random numbers differ per run", "add -seed 1");
}

/* Devices and backends whose events arrive at host timing. */
static void
check_devices(int argc, char **argv, struct findings *fs)
{
	/* virtio's ioeventfds need nothing: bhrr runs each kick in the guest's write (gate_notify.h) */
	/*
	 * Frames to a guest NIC are recorded in exact mode, whatever the backend,
	 * the implicit default NIC included (gate_net.h); what bypasses QEMU's
	 * net queues does not pass bhrr either.
	 */
	if (any_arg(argc, argv, "vhost=on") || any_arg(argc, argv, "vhost-user") ||
	    any_arg(argc, argv, "vhost-vdpa"))
		find(fs, "vhost networking (vhost=on, vhost-user, vhost-vdpa): the host moves the "
			 "frames into the guest's rings itself, past QEMU",
		     "use the backend without vhost (tap's default, vhost=off)");
	/*
	 * Frames of any length QEMU handles are recorded: over one log event's
	 * 4096 bytes (a jumbo MTU, a tap's vnet_hdr offloads), in pieces.
	 */
	/*
	 * Console and channel bytes are recorded in exact mode, a virtio-serial
	 * port's client coming and going too (gate_chr.h), and so are monitor
	 * commands, QMP or HMP, on a console or a socket (gate_mon.h).
	 */
	/*
	 * rng-random's bytes are recorded (gate_rng.h); rng-builtin is a gated
	 * BH seeded by -seed; rng-egd's come through a character device, whose
	 * reader the console gate records (gate_chr.h, 76-entropy.bats)
	 */
	/*
	 * qcow2 images and -snapshot, like aio=native and aio=io_uring, are
	 * gated at the block backend (gate_blk.h): what a replay matches is the
	 * guest's request, however many host requests the format driver (or
	 * its cache-clean timer) made of it.
	 */
	if (any_arg(argc, argv, "iothread"))
		find(fs, "an iothread: its AioContext runs outside the gate",
		     "bhrr record moves the device to the main loop (drops iothread=); "
		     "by hand: remove iothread=");
	/* aio=native and aio=io_uring are gated at the block backend (shim/gate_blk.h) */
	const char *display = opt_value(argc, argv, "-display");

	if (!qemu_has_opt(argc, argv, "-nographic") && !(display && strcmp(display, "none") == 0))
		find(fs, "a display: keyboard and mouse input arrive at host timing", "add -display none");
}

/* A growable argument vector. */
struct args {
	char **v;
	int n, cap;
	char **owned; /* strings this vector made, to free */
	int nowned;
};

static void
args_add(struct args *a, char *s, int own)
{
	if (a->n + 2 > a->cap) {
		a->cap = a->cap ? a->cap * 2 : 64;
		a->v = realloc(a->v, (size_t)a->cap * sizeof(*a->v));
		a->owned = realloc(a->owned, (size_t)a->cap * sizeof(*a->owned));
		if (a->v == NULL || a->owned == NULL) {
			perror("bhrr doctor");
			exit(EXIT_FAILURE);
		}
	}
	a->v[a->n++] = s;
	a->v[a->n] = NULL;
	if (own)
		a->owned[a->nowned++] = s;
}

/* Strip blanks and one pair of double quotes from [p, p + n). */
static void
ini_value(const char *p, size_t n, const char **out, size_t *outn)
{
	while (n && (*p == ' ' || *p == '\t'))
		p++, n--;
	while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\n' || p[n - 1] == '\r'))
		n--;
	if (n >= 2 && p[0] == '"' && p[n - 1] == '"')
		p++, n -= 2;
	*out = p;
	*outn = n;
}

/*
 * The options of a -readconfig file, as the command line would give them:
 * [drive "d0"] with file = "x" becomes -drive id=d0,file=x; the key QEMU
 * takes as the option's implied first element (driver, type, backend,
 * qom-type) goes first.  A file that cannot be read is itself a finding.
 */
static void
readconfig(const char *path, struct args *a, struct findings *fs)
{
	FILE *fp = fopen(path, "r");
	char line[1024], group[64] = "", body[4096] = "", head[256] = "";

	if (fp == NULL) {
		find(fs, "a -readconfig file bhrr doctor cannot read: its options are unchecked",
		     "make the file readable, or give its options on the command line");
		return;
	}
	for (int more = 1; more;) {
		more = fgets(line, sizeof(line), fp) != NULL;
		const char *p = line;

		while (more && (*p == ' ' || *p == '\t'))
			p++;
		if (more && (*p == '#' || *p == '\n' || *p == 0))
			continue;
		if (!more || *p == '[') {
			if (group[0]) {
				char opt[80], *val = malloc(strlen(head) + strlen(body) + 2);

				if (val == NULL)
					break;
				snprintf(opt, sizeof(opt), "-%s", strcmp(group, "smp-opts") == 0 ? "smp" : group);
				sprintf(val, "%s%s%s", head, head[0] && body[0] ? "," : "", body);
				char *o = strdup(opt);

				if (o == NULL) {
					free(val);
					break;
				}
				args_add(a, o, 1);
				args_add(a, val, 1);
			}
			group[0] = body[0] = head[0] = 0;
			if (!more)
				break;
			size_t n = strcspn(p + 1, " \"]");

			snprintf(group, sizeof(group), "%.*s", (int)(n < 63 ? n : 63), p + 1);
			const char *q = strchr(p, '"');

			if (q && strchr(q + 1, '"'))
				snprintf(body, sizeof(body), "id=%.*s", (int)(strchr(q + 1, '"') - q - 1), q + 1);
			continue;
		}
		const char *eq = strchr(p, '=');

		if (eq == NULL || !group[0])
			continue;
		const char *k, *v;
		size_t kn, vn;

		ini_value(p, (size_t)(eq - p), &k, &kn);
		ini_value(eq + 1, strlen(eq + 1), &v, &vn);
		if ((kn == 6 && strncmp(k, "driver", 6) == 0) || (kn == 4 && strncmp(k, "type", 4) == 0) ||
		    (kn == 7 && strncmp(k, "backend", 7) == 0) || (kn == 8 && strncmp(k, "qom-type", 8) == 0))
			snprintf(head, sizeof(head), "%.*s", (int)vn, v);
		else {
			size_t at = strlen(body);

			snprintf(body + at, sizeof(body) - at, "%s%.*s=%.*s", at ? "," : "", (int)kn, k,
				 (int)vn, v);
		}
	}
	fclose(fp);
}

int
doctor_findings(int argc, char **argv, struct finding *f, int max)
{
	struct findings fs = { f, 0, max };
	struct args a = { 0 };

	/* the command line as QEMU reads it: -readconfig files' options count too */
	for (int i = 0; i < argc; i++)
		args_add(&a, argv[i], 0);
	for (int i = 1; i + 1 < argc; i++)
		if (qemu_is_opt(argv[i], "-readconfig"))
			readconfig(argv[++i], &a, &fs);
	check_clock(a.n, a.v, &fs);
	check_devices(a.n, a.v, &fs);
	for (int i = 0; i < a.nowned; i++)
		free(a.owned[i]);
	free(a.owned);
	free(a.v);
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
