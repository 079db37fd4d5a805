/*
 * cmd_record.c - bhrr record and bhrr doctor.
 *
 * record runs QEMU with libbhrr.so preloaded in BHRR_MODE=record, forwards
 * SIGINT/SIGTERM/SIGHUP to it, and exits with QEMU's status.  Before it
 * starts QEMU it refuses a build bhrr does not know (by GNU build-id, read
 * from the executable file) and prints doctor's warnings.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd.h"
#include "log.h"
#include "log_action.h"
#include "symbols.h"

/* ---- the QEMU executable ---- */

/* Resolve @name like execvp would; 0 or -1. */
static int
resolve_exe(const char *name, char *out, size_t len)
{
	if (strchr(name, '/')) {
		snprintf(out, len, "%s", name);
		return access(out, X_OK);
	}
	const char *path = getenv("PATH");

	if (path == NULL)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		const char *end = strchr(path, ':');
		size_t n = end ? (size_t)(end - path) : strlen(path);

		snprintf(out, len, "%.*s/%s", (int)n, path, name);
		if (access(out, X_OK) == 0)
			return 0;
		path += n + (end ? 1 : 0);
	}
	return -1;
}

/* The GNU build-id of the ELF file @path as hex; 0 or -1. */
static int
elf_build_id(const char *path, char *out, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	const unsigned char *m;
	int rc = -1;

	out[0] = 0;
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size < (off_t)sizeof(Elf64_Ehdr)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return -1;
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)m;
	size_t size = (size_t)st.st_size;

	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 && eh->e_ident[EI_CLASS] == ELFCLASS64 &&
	    eh->e_phoff + (size_t)eh->e_phnum * sizeof(Elf64_Phdr) <= size) {
		const Elf64_Phdr *ph = (const Elf64_Phdr *)(m + eh->e_phoff);

		for (int i = 0; i < eh->e_phnum && rc < 0; i++) {
			if (ph[i].p_type != PT_NOTE || ph[i].p_offset + ph[i].p_filesz > size)
				continue;
			const unsigned char *p = m + ph[i].p_offset, *end = p + ph[i].p_filesz;

			while (p + sizeof(Elf64_Nhdr) <= end) {
				const Elf64_Nhdr *n = (const Elf64_Nhdr *)p;
				const unsigned char *name = p + sizeof(*n);
				const unsigned char *desc = name + ((n->n_namesz + 3) & ~3u);

				if (desc + n->n_descsz > end)
					break;
				if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 &&
				    memcmp(name, "GNU", 4) == 0 && 2 * n->n_descsz < len) {
					for (unsigned k = 0; k < n->n_descsz; k++)
						snprintf(out + 2 * k, 3, "%02x", desc[k]);
					rc = 0;
					break;
				}
				p = desc + ((n->n_descsz + 3) & ~3u);
			}
		}
	}
	munmap((void *)m, size);
	return rc;
}

/* ---- doctor ---- */

struct finding {
	const char *what, *fix;
};

/* The value of option @opt (e.g. "-icount"), or NULL. */
static const char *
opt_value(int argc, char **argv, const char *opt)
{
	const char *v = NULL;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (a[0] == '-' && a[1] == '-')
			a++;
		if (strcmp(a, opt) == 0 && i + 1 < argc)
			v = argv[++i];
	}
	return v;
}

static int
has_opt(int argc, char **argv, const char *opt)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (a[0] == '-' && a[1] == '-')
			a++;
		if (strcmp(a, opt) == 0)
			return 1;
	}
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

/*
 * The command-line sources of nondeterminism bhrr does not cover
 * (doc/record.md), each with its fix.  Returns the number found.
 */
static int
doctor(int argc, char **argv, struct finding *f, int max)
{
	int n = 0;
	const char *ic = opt_value(argc, argv, "-icount");
	const char *smp = opt_value(argc, argv, "-smp");
	const char *rtc = opt_value(argc, argv, "-rtc");
	const char *accel = opt_value(argc, argv, "-accel");
	const char *machine = opt_value(argc, argv, "-machine");

#define FIND(w, x)                                      \
	do {                                            \
		if (n < max)                            \
			f[n] = (struct finding){ w, x }; \
		n++;                                    \
	} while (0)

	if (ic == NULL)
		FIND("no -icount: bhrr can record only the order of events, not where the guest saw them",
		     "add -icount shift=0,sleep=off");
	else {
		if (strstr(ic, "auto") || (!strstr(ic, "shift=") && (ic[0] < '0' || ic[0] > '9')))
			FIND("-icount shift=auto: shift and bias follow host speed",
			     "use a fixed shift: -icount shift=0,sleep=off");
		if (!strstr(ic, "sleep=off"))
			FIND("-icount without sleep=off: the clock warps by real time",
			     "add sleep=off to -icount");
	}
	if (has_opt(argc, argv, "-enable-kvm") || (accel && !strstr(accel, "tcg")) ||
	    (machine && strstr(machine, "accel=kvm")))
		FIND("a hardware accelerator: no instruction count to tag events with",
		     "use -accel tcg");
	if (smp && (atoi(smp) > 1 || (strstr(smp, "cpus=") && atoi(strstr(smp, "cpus=") + 5) > 1)))
		FIND("-smp with several vCPUs: their interleaving is host timing", "use -smp 1");
	if (rtc == NULL || !strstr(rtc, "clock=vm") || !strstr(rtc, "base=") ||
	    strstr(rtc, "base=utc") || strstr(rtc, "base=localtime"))
		FIND("the guest RTC follows the host clock",
		     "add -rtc clock=vm,base=2020-01-01T00:00:00");
	if (!has_opt(argc, argv, "-seed"))
		FIND("no -seed: RDRAND and QEMU's own random numbers differ per run", "add -seed 1");
	for (int i = 1; i < argc; i++)
		if (strstr(argv[i], "virtio-") && !strstr(argv[i], "ioeventfd=off") &&
		    (strstr(argv[i], "-blk") || strstr(argv[i], "-scsi") || strstr(argv[i], "-net"))) {
			FIND("a virtio device with ioeventfd: its kicks reach the main loop at any icount",
			     "add ioeventfd=off to every virtio -device");
			break;
		}
	const char *net = opt_value(argc, argv, "-netdev");
	const char *nic = opt_value(argc, argv, "-nic");
	const char *net2 = opt_value(argc, argv, "-net");

	if (net || (nic && strcmp(nic, "none") != 0) || (net2 && strcmp(net2, "none") != 0))
		FIND("a network backend: its traffic arrives at host timing",
		     "record without networking: -nic none");
	if (any_arg(argc, argv, "qcow2") || has_opt(argc, argv, "-snapshot"))
		FIND("a qcow2 image (or -snapshot): its cache-clean timer fires in the main loop",
		     "use raw images, or add cache-clean-interval=0 to the qcow2 drive");
	if (any_arg(argc, argv, "iothread"))
		FIND("an iothread: its AioContext runs outside the gate", "remove iothread=");
	if (any_arg(argc, argv, "aio=native") || any_arg(argc, argv, "aio=io_uring"))
		FIND("aio=native or aio=io_uring: completions come in host-timed batches",
		     "use the default aio=threads");
	if (!has_opt(argc, argv, "-nographic") &&
	    !(opt_value(argc, argv, "-display") && strcmp(opt_value(argc, argv, "-display"), "none") == 0))
		FIND("a display: keyboard and mouse input arrive at host timing", "add -display none");
	const char *mon = opt_value(argc, argv, "-monitor");

	if (mon && strcmp(mon, "none") != 0)
		FIND("a human monitor: commands arrive at host timing",
		     "avoid monitor commands while recording, or use -monitor none");
#undef FIND
	return n;
}

int
cmd_doctor(int argc, char **argv)
{
	struct finding f[32];
	int i = 1;

	if (i < argc && strcmp(argv[i], "--") == 0)
		i++;
	if (i >= argc)
		usage_error("doctor: no QEMU command line given (usage: bhrr doctor [--] QEMU ARGS...)");
	int n = doctor(argc - i, argv + i, f, 32);

	for (int k = 0; k < n && k < 32; k++)
		printf("bhrr doctor: %s\n    fix: %s\n", f[k].what, f[k].fix);
	return n ? 1 : 0;
}

/* ---- record ---- */

static pid_t child;

static void
forward(int sig)
{
	if (child > 0)
		kill(child, sig);
}

/*
 * Run @qargv (its executable already resolved to @exe) with the shim in
 * @mode writing @out; forward signals; summarise the log; QEMU's status.
 */
static int
run_with_shim(const char *mode, const char *exe, char **qargv, const char *out,
	      const char *replay, int force, unsigned long long *diverged)
{
	char abs[4096];
	int st;

	if (out[0] != '/' && getcwd(abs, sizeof(abs) - strlen(out) - 2)) {
		strcat(abs, "/");
		strcat(abs, out);
		out = abs;
	}
	fflush(NULL);
	child = fork();
	if (child < 0)
		die("%s: cannot fork: %s", mode, strerror(errno));
	if (child == 0) {
		preload_shim();
		setenv("BHRR_MODE", mode, 1);
		setenv("BHRR_LOG", out, 1);
		if (replay)
			setenv("BHRR_REPLAY", replay, 1);
		if (force)
			setenv("BHRR_FORCE", "1", 1);
		execv(exe, qargv);
		fprintf(stderr, "bhrr: cannot run '%s': %s\n", exe, strerror(errno));
		_exit(127);
	}
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = forward;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	while (waitpid(child, &st, 0) < 0 && errno == EINTR)
		;
	char err[512];
	int code;
	struct log_reader *r = log_reader_open(out, &code, err, sizeof(err));

	if (r == NULL) {
		fprintf(stderr, "bhrr: %s: no log: %s\n", mode, err);
	} else {
		struct log_event ev;
		unsigned long long events = 0, completions = 0;
		int complete = 0;

		while (log_reader_next(r, &ev) == 1) {
			events++;
			completions += ev.kind == LOG_EV_IO_COMPLETE;
			if (diverged && ev.kind == LOG_EV_DIVERGE)
				++*diverged;
			complete |= ev.kind == LOG_EV_END && ev.complete;
		}
		fprintf(stderr, "bhrr: %s: %llu events (%llu I/O completions) in %s%s\n", mode, events,
			completions, out, complete ? "" : " (incomplete)");
		log_reader_close(r);
	}
	if (WIFSIGNALED(st)) {
		signal(WTERMSIG(st), SIG_DFL);
		raise(WTERMSIG(st));
		return 128 + WTERMSIG(st);
	}
	return WEXITSTATUS(st);
}

int
cmd_record(int argc, char **argv)
{
	const char *out = "bhrr.bhlog";
	int i = 1, force = 0;
	char exe[4096], id[64];
	struct finding f[32];

	for (; i < argc && argv[i][0] == '-' && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
			out = argv[++i];
		else if (strcmp(argv[i], "--force") == 0)
			force = 1;
		else
			usage_error("record: unknown option '%s' (usage: bhrr record [-o LOG] [--force] [--] QEMU ARGS...)",
				    argv[i]);
	}
	if (i < argc && strcmp(argv[i], "--") == 0)
		i++;
	if (i >= argc)
		usage_error("record: no QEMU command line given (usage: bhrr record [-o LOG] [--] QEMU ARGS...)");
	char **qargv = argv + i;
	int qargc = argc - i;

	if (resolve_exe(qargv[0], exe, sizeof(exe)) < 0)
		die("record: cannot find QEMU '%s'", qargv[0]);
	if (elf_build_id(exe, id, sizeof(id)) < 0)
		snprintf(id, sizeof(id), "(none)");
	if (qemu_known_build(id) == NULL && !force) {
		fprintf(stderr, "bhrr: record: %s has build-id %s, which is not a QEMU build bhrr was "
				"tested on; refusing (--force tries anyway). Known builds:\n", exe, id);
		for (int k = 0; qemu_known_builds[k]; k += 2)
			fprintf(stderr, "  %s  %s\n", qemu_known_builds[k], qemu_known_builds[k + 1]);
		return EXIT_USAGE;
	}
	int n = doctor(qargc, qargv, f, 32);

	for (int k = 0; k < n && k < 32; k++)
		fprintf(stderr, "bhrr: record: warning: %s (fix: %s)\n", f[k].what, f[k].fix);
	return run_with_shim("record", exe, qargv, out, NULL, force, NULL);
}

/*
 * An exact-mode log's actions never go back in icount, nor past the run's
 * end: in a log altered there, replay would wait for the guest to reach an
 * icount it reaches only after hours, never naming a divergence.  0, or -1
 * after saying which event is out of place.
 */
static int
check_action_icounts(struct log_reader *r, const char *log)
{
	struct log_event ev;
	struct log_action a, prev = { 0 };
	int have = 0;

	if (!log_header_exact(log_reader_header(r)))
		return 0;
	while (log_reader_next(r, &ev) == 1) {
		if (ev.kind == LOG_EV_END && ev.icount_how != LOG_IC_UNKNOWN && have &&
		    prev.icount > ev.icount) {
			fprintf(stderr, "bhrr: replay: %s: recorded event #%llu is at icount %lld, past "
					"the end of the run at icount %lld; refusing (an altered log?)\n",
				log, (unsigned long long)prev.seq, (long long)prev.icount,
				(long long)ev.icount);
			return -1;
		}
		if (!log_action_of(r, &ev, 1, &a))
			continue;
		if (have && a.icount < prev.icount) {
			fprintf(stderr, "bhrr: replay: %s: recorded event #%llu is at icount %lld, before "
					"event #%llu at icount %lld, but exact icounts never go back; "
					"refusing (an altered log?)\n",
				log, (unsigned long long)a.seq, (long long)a.icount,
				(unsigned long long)prev.seq, (long long)prev.icount);
			return -1;
		}
		prev = a;
		have = 1;
	}
	return 0;
}

/*
 * bhrr replay LOG [-o OUT] [--force] [--on-diverge=stop|continue] [-- QEMU ARGS...]:
 * exact or ordering replay (doc/record.md).  Without QEMU arguments, the
 * recorded argv.  QEMU's status, or EXIT_DIVERGED if the run diverged.
 */
int
cmd_replay(int argc, char **argv)
{
	const char *out = NULL, *log = NULL;
	int i = 1, force = 0;
	char exe[4096], id[64], err[512], outbuf[4096];
	int code;

	for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
			out = argv[++i];
		else if (strcmp(argv[i], "--force") == 0)
			force = 1;
		else if (strcmp(argv[i], "--on-diverge=stop") == 0 ||
			 strcmp(argv[i], "--on-diverge=continue") == 0)
			setenv("BHRR_ON_DIVERGE", argv[i] + 13, 1);
		else if (strncmp(argv[i], "--on-diverge", 12) == 0)
			usage_error("replay: %s: expected --on-diverge=stop or --on-diverge=continue",
				    argv[i]);
		else if (argv[i][0] != '-' && log == NULL)
			log = argv[i];
		else
			usage_error("replay: unexpected '%s' (usage: bhrr replay LOG [-o OUT] [--force] [--on-diverge=stop|continue] [-- QEMU ARGS...])",
				    argv[i]);
	}
	if (log == NULL)
		usage_error("replay: no log given (usage: bhrr replay LOG [-o OUT] [--force] [--on-diverge=stop|continue] [-- QEMU ARGS...])");
	struct log_reader *r = log_reader_open(log, &code, err, sizeof(err));

	if (r == NULL)
		die("replay: %s", err);
	const struct log_header *h = log_reader_header(r);
	char **qargv;

	if (i < argc) {
		qargv = argv + i + 1;
		if (qargv[0] == NULL)
			usage_error("replay: '--' without a QEMU command line");
		int same = h->argc == argc - i - 1;

		for (int k = 0; same && k < h->argc; k++)
			same = strcmp(h->argv[k], qargv[k]) == 0;
		if (!same)
			fprintf(stderr, "bhrr: replay: warning: the QEMU command line differs from the "
					"recorded one\n");
	} else {
		if (h->argc == 0)
			die("replay: %s holds no QEMU command line", log);
		qargv = calloc((size_t)h->argc + 1, sizeof(*qargv));
		for (int k = 0; qargv && k < h->argc; k++)
			qargv[k] = strdup(h->argv[k]);
	}
	if (resolve_exe(qargv[0], exe, sizeof(exe)) < 0)
		die("replay: cannot find QEMU '%s'", qargv[0]);
	if (elf_build_id(exe, id, sizeof(id)) < 0)
		snprintf(id, sizeof(id), "(none)");
	if (strcmp(id, h->build_id) != 0 && !force) {
		fprintf(stderr, "bhrr: replay: %s was recorded with QEMU build %s (%s); %s is build %s; "
				"refusing (--force tries anyway)\n", log, h->build_id, h->qemu_version, exe, id);
		log_reader_close(r);
		return EXIT_USAGE;
	}
	if (check_action_icounts(r, log) < 0) {
		log_reader_close(r);
		return 1;
	}
	log_reader_close(r);
	if (out == NULL) {
		snprintf(outbuf, sizeof(outbuf), "%s.replay.bhlog", log);
		out = outbuf;
	}
	unsigned long long diverged = 0;
	int st = run_with_shim("replay", exe, qargv, out, log, force, &diverged);

	if (diverged) {
		fprintf(stderr, "bhrr: replay: the run diverged from %s (QEMU exited with %d); "
				"exit status %d\n", log, st, EXIT_DIVERGED);
		return EXIT_DIVERGED;
	}
	return st;
}
