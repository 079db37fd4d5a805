/*
 * cmd_debug.c - bhrr replay --gdb, bhrr debug: a gdb remote endpoint on an
 * exact replay, with reverse execution by re-execution (doc/debug.md).
 *
 * gdb talks to bhrr; bhrr talks to the replaying QEMU twice: to its own
 * gdbstub (-gdb on a unix socket) for registers, memory, breakpoints and
 * watchpoints, and to the shim (BHRR_DEBUG, shim/debug.h) for everything
 * that moves the guest: continue, step, stop at an icount, and where the
 * run is.  Moving backwards is a fresh replay of the same log to the
 * target, with gdb's breakpoints and watchpoints carried over; gdb keeps
 * its one connection.
 *
 * A position is an icount and the registers there: a step that enters an
 * interrupt or exception handler does not retire an instruction, so two
 * stops can share an icount.  bhrr keeps the positions of the stops this
 * session saw, and reaching one again means a stop at its icount, then
 * steps while the registers differ and the icount stays.
 *
 * Single-threaded, blocking I/O; all-stop mode, one vCPU.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "action_list.h"
#include "../shim/fingerprint.h"
#include "cmd.h"
#include "cmd_debug.h"
#include "gdb_regs.h"
#include "run_command.h"

#define PKT_MAX 65536
#define MAX_POINTS 64
#define HISTORY_MAX 100000

/* One replaying QEMU. */
struct inst {
	struct child_process cp;
	int ctl, gdb;           /* the shim's orders; QEMU's gdbstub */
	int n;                  /* 0: the first, whose output is the user's */
	char ctlbuf[1024];
	size_t ctllen;
	int64_t icount;         /* at its last stop */
	uint64_t watch;         /* the watchpoint that stopped it last, or 0 */
	char pending[256];      /* a stop line that came while an order waited for its answer */
	int watched;            /* the shim reported watch (the last stop was one) */
	int alive;
	char **args;            /* its QEMU arguments (owned when its disks are copies) */
	char *copies[FP_MAX];   /* its copies of the guest's disks, removed with it */
	int ncopies;
	int lfd;                /* listening for its shim, until it connects */
	char ctlpath[128], gdbpath[128];
	char errp[128];         /* where its messages go */
};

/* A breakpoint or watchpoint gdb inserted: its Z packet's type, address and kind. */
struct point {
	int type;
	uint64_t addr;
	unsigned kind;
	char old[64];           /* a watchpoint: its memory (hex) at the last stop */
};

struct pos {
	int64_t icount;
	char *regs;             /* the 'g' reply */
};

static struct {
	const char *exe, *log, *out;
	char **qargv;
	int force;
	char dir[64];           /* sockets and the re-executions' logs */
	int insts;              /* started so far */
	struct inst cur;
	int gdbfd;              /* gdb's connection */
	int gdb_acks;           /* gdb still wants '+' acks */
	char thread[32];        /* QEMU's thread id, as qC says it */
	struct point pts[MAX_POINTS];
	int npts;
	struct pos *hist;       /* the positions of this timeline's stops, oldest first */
	size_t nhist;
	char last_reply[256];   /* the last stop reply sent to gdb */
	double reverse_s;       /* time spent in re-executions */
	char *disk[FP_MAX];     /* the guest's writable disks as the command line names them */
	char *orig[FP_MAX];     /* and their contents before the first replay wrote them */
	int ndisks;
	unsigned reexecs;
	char *qsupported;       /* gdb's qSupported, which sets how QEMU's gdbstub lays out 'g' */
	int nowatch;            /* the shim cannot report watchpoints: refuse them */
	const char *arch;       /* --gdb-arch: "auto", "i386" or "qemu" */
	struct gdb_layout lay;  /* QEMU's registers, as its target.xml describes them */
	int pc;                 /* the program counter's index in lay, or -1 */
	int view;               /* gdb sees the i386 view of QEMU's x86-64 registers */
	struct gdb_view V;
} D = { .gdbfd = -1, .gdb_acks = 1 };

/*
 * What must not outlive bhrr: the QEMUs it started (reaped ones are taken
 * out) and the disk copies beside the user's images.  Cleaned by
 * kill_all() at exit and on a signal; only async-signal-safe calls there.
 */
#define LIVE_MAX 64
static volatile pid_t live_pid[LIVE_MAX];
static char *live_copy[LIVE_MAX * 4];

static void
live_add_pid(pid_t p)
{
	for (int i = 0; i < LIVE_MAX; i++)
		if (live_pid[i] == 0) {
			live_pid[i] = p;
			return;
		}
}

static void
live_del_pid(pid_t p)
{
	for (int i = 0; i < LIVE_MAX; i++)
		if (live_pid[i] == p)
			live_pid[i] = 0;
}

static void
live_add_copy(char *path)
{
	for (int i = 0; i < LIVE_MAX * 4; i++)
		if (live_copy[i] == NULL) {
			live_copy[i] = path;
			return;
		}
}

static void
live_del_copy(const char *path)
{
	for (int i = 0; i < LIVE_MAX * 4; i++)
		if (live_copy[i] == path)
			live_copy[i] = NULL;
}

static void
kill_all(void)
{
	for (int i = 0; i < LIVE_MAX; i++)
		if (live_pid[i] > 0)
			kill(live_pid[i], SIGKILL);
	for (int i = 0; i < LIVE_MAX * 4; i++)
		if (live_copy[i] != NULL)
			unlink(live_copy[i]);
	for (int d = 0; d < D.ndisks; d++)
		unlink(D.orig[d]);
	if (D.dir[0])
		rmdir(D.dir); /* empty unless a re-execution's files remain: kept to read */
}

static void
on_signal(int sig)
{
	kill_all();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void
say(const char *fmt, ...)
{
	va_list ap;

	fputs("bhrr: debug: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return; /* the reader is gone; its read end says so */
		p += w;
		n -= (size_t)w;
	}
}

/* ---- the remote protocol's framing ---- */

static void
pkt_send(int fd, const char *data, size_t len)
{
	char *buf = malloc(len + 5);
	unsigned sum = 0;

	if (buf == NULL)
		die("out of memory");
	buf[0] = '$';
	memcpy(buf + 1, data, len);
	for (size_t i = 0; i < len; i++)
		sum += (unsigned char)data[i];
	snprintf(buf + 1 + len, 4, "#%02x", sum & 0xff);
	write_all(fd, buf, len + 4);
	free(buf);
}

static void
pkt_sends(int fd, const char *s)
{
	pkt_send(fd, s, strlen(s));
}

/*
 * Read bytes from @fd into a packet: its payload into @out (NUL-terminated),
 * its length returned; -1 at EOF.  Acks are skipped; an interrupt byte
 * (0x03) outside a packet returns -2.  @ack: answer '+' for each packet.
 */
/* Buffered reads, one buffer per descriptor (bhrr has a handful open). */
#define RBUF_FDS 256
static struct rbuf {
	char b[8192];
	size_t pos, len;
} *rbufs[RBUF_FDS];

/* The next byte of @fd: 0..255, or -1 at EOF or error. */
static int
next_byte(int fd)
{
	struct rbuf *r = fd >= 0 && fd < RBUF_FDS ? rbufs[fd] : NULL;

	if (r == NULL) {
		if (fd < 0 || fd >= RBUF_FDS || (r = rbufs[fd] = calloc(1, sizeof(*r))) == NULL)
			die("debug: descriptor %d out of range", fd);
	}
	while (r->pos == r->len) {
		ssize_t n = read(fd, r->b, sizeof(r->b));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		r->pos = 0;
		r->len = (size_t)n;
	}
	return (unsigned char)r->b[r->pos++];
}

/* Whether bytes of @fd wait in its buffer. */
static int
buffered(int fd)
{
	return fd >= 0 && fd < RBUF_FDS && rbufs[fd] != NULL && rbufs[fd]->pos < rbufs[fd]->len;
}

/* Forget what @fd had buffered: it is closed. */
static void
unbuffer(int fd)
{
	if (fd >= 0 && fd < RBUF_FDS && rbufs[fd] != NULL)
		rbufs[fd]->pos = rbufs[fd]->len = 0;
}

static int
pkt_recv(int fd, char *out, int ack)
{
	int st = 0;
	size_t n = 0;

	for (;;) {
		int c = next_byte(fd);

		if (c < 0)
			return -1;
		if (st == 0) {
			if (c == '$')
				st = 1, n = 0;
			else if (c == 3)
				return -2;
		} else if (st == 1) {
			if (c == '#')
				st = 2;
			else if (n < PKT_MAX - 1)
				out[n++] = (char)c;
		} else if (st == 2) {
			st = 3;
		} else {
			out[n] = 0;
			if (ack)
				write_all(fd, "+", 1);
			return (int)n;
		}
	}
}

/* ---- QEMU's gdbstub ---- */

static char reply[PKT_MAX];

/* Send @req to the instance's gdbstub and return its reply (static). */
static const char *
stub(struct inst *in, const char *req)
{
	/*
	 * QEMU's gdbstub spends the first byte that comes while the VM runs on
	 * stopping it (shim/debug.c makes that stop a mark only); an ack is
	 * that byte, and is ignored when it is stopped already.
	 */
	write_all(in->gdb, "+", 1);
	pkt_sends(in->gdb, req);
	if (pkt_recv(in->gdb, reply, 1) < 0)
		die("debug: QEMU's gdbstub closed the connection (replay %d)", in->n);
	return reply;
}

/* ---- the shim's orders ---- */

/* The next line from the shim into @line; 0, or -1 when QEMU is gone. */
static int
ctl_line(struct inst *in, char *line, size_t len)
{
	for (;;) {
		char *nl = memchr(in->ctlbuf, '\n', in->ctllen);

		if (nl != NULL) {
			size_t l = (size_t)(nl - in->ctlbuf);

			snprintf(line, len, "%.*s", (int)l, in->ctlbuf);
			in->ctllen -= l + 1;
			memmove(in->ctlbuf, nl + 1, in->ctllen);
			return 0;
		}
		if (in->ctllen == sizeof(in->ctlbuf))
			in->ctllen = 0;
		ssize_t r = read(in->ctl, in->ctlbuf + in->ctllen, sizeof(in->ctlbuf) - in->ctllen);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			in->alive = 0;
			return -1;
		}
		in->ctllen += (size_t)r;
	}
}

static int order(struct inst *in, const char *o, char *ans, size_t len);

/* Wait for the shim's next stop; its icount, or -1 if QEMU ended.  @why gets the reason. */
static int64_t
wait_stop(struct inst *in, char *why, size_t len)
{
	char line[256], w[32];
	long long ic;

	for (;;) {
		if (in->pending[0]) {
			snprintf(line, sizeof(line), "%s", in->pending);
			in->pending[0] = 0;
		} else if (ctl_line(in, line, sizeof(line)) < 0) {
			break;
		}
		if (sscanf(line, "stop %31s %lld", w, &ic) == 2) {
			unsigned long long wa;
			const char *wp = strstr(line, " watch ");

			snprintf(why, len, "%s", w);
			in->icount = ic;
			in->watched = wp != NULL && sscanf(wp, " watch %llx", &wa) == 1;
			in->watch = in->watched ? (uint64_t)wa : 0;
			/*
			 * A trap's icount as the main loop reads it with the vCPU held,
			 * as every later question reads it: read in the vCPU thread just
			 * after a watchpoint's single-instruction TB, it is one ahead.
			 */
			if (strcmp(w, "trap") == 0) {
				char ans[128];
				long long ic2;

				if (order(in, "when", ans, sizeof(ans)) == 0 &&
				    sscanf(ans, "ok icount %lld", &ic2) == 1)
					in->icount = ic = ic2;
			}
			return ic;
		}
	}
	snprintf(why, len, "exit");
	return -1;
}

/* Send an order; the shim's "ok ..." answer into @ans.  0, or -1 ("err ..."). */
static int
order(struct inst *in, const char *o, char *ans, size_t len)
{
	char line[256];
	size_t l = strlen(o);
	char buf[128];

	snprintf(buf, sizeof(buf), "%s\n", o);
	write_all(in->ctl, buf, l + 1);
	while (ctl_line(in, line, sizeof(line)) == 0) {
		if (strncmp(line, "stop ", 5) == 0) {
			/* a stop that came first: wait_stop's, after this answer */
			snprintf(in->pending, sizeof(in->pending), "%s", line);
			continue;
		}
		if (strncmp(line, "ok", 2) == 0 || strncmp(line, "err", 3) == 0) {
			if (ans)
				snprintf(ans, len, "%s", line);
			return line[0] == 'o' ? 0 : -1;
		}
	}
	if (ans)
		snprintf(ans, len, "err QEMU ended");
	return -1;
}

/* ---- instances ---- */

/* @a for the unix socket @path: 0, or -1 when the path does not fit. */
static int
unix_addr(struct sockaddr_un *a, const char *path)
{
	size_t n = strlen(path);

	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	if (n >= sizeof(a->sun_path))
		return -1;
	memcpy(a->sun_path, path, n + 1);
	return 0;
}

static int
bind_unix(const char *path, int and_listen)
{
	struct sockaddr_un a;
	struct stat st;

	if (unix_addr(&a, path) < 0)
		die("debug: the socket path %s is longer than %zu bytes", path, sizeof(a.sun_path) - 1);
	/* a socket left by an earlier run goes; any other file stays, and bind says so */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    (and_listen && listen(fd, 1) < 0))
		die("debug: cannot listen on %s: %s", path, strerror(errno));
	return fd;
}

static int
listen_unix(const char *path)
{
	return bind_unix(path, 1);
}

static int
connect_unix(const char *path)
{
	struct sockaddr_un a;

	if (unix_addr(&a, path) < 0)
		return -1;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
		return fd;
	if (fd >= 0)
		close(fd);
	return -1;
}

static void
copy_or_die(const char *from, const char *to)
{
	if (copy_file(from, to) < 0)
		die("debug: cannot copy %s to %s: %s", from, to, strerror(errno));
}

/*
 * Every replay must find the disks as the recording did, and a replay
 * writes them: keep their contents before the first replay, and give each
 * later one fresh copies beside the originals (where a qcow2's relative
 * backing file still resolves).  Not needed with -snapshot.
 */
static void
disks_keep(void)
{
	struct fp_image im[FP_MAX];
	int n = 0;

	for (int i = 0; D.qargv[i]; i++)
		if (qemu_is_opt(D.qargv[i], "-snapshot"))
			return;
	while (D.qargv[n])
		n++;
	n = fp_scan(n, D.qargv, im, NULL);
	for (int i = 0; i < n; i++) {
		if (strstr(im[i].what, "backing") || strcmp(im[i].what, "kernel") == 0 ||
		    strcmp(im[i].what, "initrd") == 0 || strcmp(im[i].what, "dtb") == 0 || !im[i].ok)
			continue;
		D.disk[D.ndisks] = xstrdup(im[i].path);
		if (asprintf(&D.orig[D.ndisks], "%s/orig.%d", D.dir, D.ndisks) < 0)
			die("out of memory");
		copy_or_die(im[i].path, D.orig[D.ndisks]);
		D.ndisks++;
	}
}

/* @arg with @from replaced by @to where it stands as a whole value; malloc'd */
static char *
subst(const char *arg, const char *from, const char *to)
{
	const char *p = strstr(arg, from);
	size_t fl = strlen(from);

	if (p == NULL || (p[fl] != 0 && p[fl] != ','))
		return xstrdup(arg);
	char *r;

	if (asprintf(&r, "%.*s%s%s", (int)(p - arg), arg, to, p + fl) < 0)
		die("out of memory");
	return r;
}

static void
disks_for(struct inst *in)
{
	int n = 0;

	while (D.qargv[n])
		n++;
	in->args = calloc((size_t)n + 1, sizeof(char *));
	if (in->args == NULL)
		die("out of memory");
	for (int i = 0; i < n; i++)
		in->args[i] = xstrdup(D.qargv[i]);
	for (int d = 0; d < D.ndisks; d++) {
		char *copy;

		if (asprintf(&copy, "%s.bhrr-debug-%d-%d", D.disk[d], (int)getpid(), in->n) < 0)
			die("out of memory");
		copy_or_die(D.orig[d], copy);
		in->copies[in->ncopies++] = copy;
		live_add_copy(copy);
		int used = 0;

		for (int i = 0; i < n; i++) {
			char *r = subst(in->args[i], D.disk[d], copy);

			used |= strcmp(r, in->args[i]) != 0;
			free(in->args[i]);
			in->args[i] = r;
		}
		/* a replay writing the disk the first one writes would read what it wrote */
		if (!used)
			die("debug: cannot give a re-execution its own copy of %s: the command line does "
			    "not name it as file=%s", D.disk[d], D.disk[d]);
	}
}

static void
inst_kill(struct inst *in)
{
	for (int i = 0; i < in->ncopies; i++) {
		unlink(in->copies[i]);
		live_del_copy(in->copies[i]);
		free(in->copies[i]);
	}
	in->ncopies = 0;
	if (in->args != NULL) {
		for (int i = 0; in->args[i]; i++)
			free(in->args[i]);
		free(in->args);
		in->args = NULL;
	}
	if (in->cp.pid > 0) {
		live_del_pid(in->cp.pid);
		kill(in->cp.pid, SIGKILL);
		finish_command(&in->cp);
		in->cp.pid = 0;
	}
	if (in->lfd > 0) {
		close(in->lfd);
		unlink(in->ctlpath);
		unlink(in->gdbpath);
	}
	in->lfd = -1;
	if (in->ctl >= 0)
		close(in->ctl);
	if (in->gdb >= 0) {
		unbuffer(in->gdb);
		close(in->gdb);
	}
	in->ctl = in->gdb = -1;
	in->alive = 0;
}

/*
 * Start replay number D.insts: QEMU runs up to its hold at icount 0
 * while bhrr goes on; inst_attach() waits for it.  The first one's output
 * is the user's; the others' go to files in D.dir.
 */
static void
inst_spawn(struct inst *in)
{
	struct child_process cp = CHILD_PROCESS_INIT;

	memset(in, 0, sizeof(*in));
	in->n = D.insts++;
	snprintf(in->ctlpath, sizeof(in->ctlpath), "%s/ctl.%d", D.dir, in->n);
	snprintf(in->gdbpath, sizeof(in->gdbpath), "%s/gdb.%d", D.dir, in->n);
	in->lfd = listen_unix(in->ctlpath);

	cp.program = D.exe;
	if (in->n > 0)
		disks_for(in);
	strvec_pushv(&cp.args, in->n > 0 ? in->args : D.qargv);
	strvec_push(&cp.args, "-gdb");
	strvec_pushf(&cp.args, "unix:%s,server=on,wait=off", in->gdbpath);
	char outp[128], logp[128];

	snprintf(logp, sizeof(logp), "%s/replay.%d.bhlog", D.dir, in->n);
	shim_env(&cp.env, "replay", in->n == 0 ? D.out : logp, D.log, D.force);
	strvec_pushf(&cp.env, "BHRR_DEBUG=%s", in->ctlpath);
	snprintf(in->errp, sizeof(in->errp), "see above");
	if (in->n > 0) {
		snprintf(outp, sizeof(outp), "%s/out.%d", D.dir, in->n);
		snprintf(in->errp, sizeof(in->errp), "%s/err.%d", D.dir, in->n);
		cp.out = outp;
		cp.err = in->errp;
		cp.in = "/dev/null";
	}
	if (start_command(&cp) < 0)
		die("debug: cannot fork: %s", strerror(errno));
	in->cp = cp;
	in->ctl = in->gdb = -1;
	live_add_pid(cp.pid);
}

/* Wait for a spawned replay to hold at icount 0; connect to its gdbstub. */
static void
inst_attach(struct inst *in)
{
	char buf[256], why[32];
	struct pollfd p = { .fd = in->lfd, .events = POLLIN };

	for (int waited = 0; poll(&p, 1, 100) == 0; waited += 100) {
		int gone = waitpid(in->cp.pid, NULL, WNOHANG) == in->cp.pid;

		if (gone || waited > 60000) {
			if (!gone)
				kill(in->cp.pid, SIGKILL);
			live_del_pid(in->cp.pid);
			in->cp.pid = 0;
			die("debug: the replaying QEMU %s before its shim connected (%s)",
			    gone ? "ended" : "took a minute", in->errp);
		}
	}
	in->ctl = accept4(in->lfd, NULL, NULL, SOCK_CLOEXEC);
	close(in->lfd);
	in->lfd = -1;
	unlink(in->ctlpath);
	if (in->ctl < 0)
		die("debug: accept: %s", strerror(errno));
	in->alive = 1;
	buf[0] = 0;
	if (ctl_line(in, buf, sizeof(buf)) < 0 || strncmp(buf, "hello", 5) != 0) {
		inst_kill(in);
		die("debug: the replay did not start (%s): %s", buf[0] ? buf : "QEMU ended",
		    in->n ? "see the message above it" : "see above");
	}
	D.nowatch = strstr(buf, "nowatch") != NULL;
	if (wait_stop(in, why, sizeof(why)) != 0 || strcmp(why, "start") != 0)
		die("debug: the replay did not hold at icount 0 (%s)", why);
	for (int k = 0; (in->gdb = connect_unix(in->gdbpath)) < 0; k++) {
		if (k > 600)
			die("debug: cannot reach QEMU's gdbstub at %s", in->gdbpath);
		usleep(10000);
	}
	unlink(in->gdbpath);
	/*
	 * QEMU stops the VM when gdb connects and says so (T02) if it ran;
	 * QEMU 7.2 knows no QStartNoAckMode, so bhrr acks each packet.
	 */
	write_all(in->gdb, "+", 1);
	pkt_sends(in->gdb, "qAttached");
	for (int k = 0;; k++) {
		if (pkt_recv(in->gdb, reply, 1) < 0 || k > 4)
			die("debug: QEMU's gdbstub does not answer");
		if (reply[0] != 'T' && reply[0] != 'S')
			break;
	}
	/* a re-execution's gdbstub must answer as the first one does: the same features, target.xml read */
	if (D.qsupported != NULL)
		stub(in, D.qsupported);
	stub(in, "qXfer:features:read:target.xml:0,ffb");
}

/*
 * A re-execution spends most of a short trip on QEMU's start-up: one is
 * kept started and held at icount 0 in reserve (the spare), and each
 * re-execution takes it and starts the next.  BHRR_DEBUG_SPARE=0: none.
 */
static struct inst spare;
static int have_spare;

static int no_spare; /* the command line rules a spare out (said once) */

/*
 * Whether a spare may run beside the replay gdb sees: not when the command
 * line has a listening socket (QEMU would re-bind its path, and a client
 * would reach the idle spare), nor when a disk cannot get a copy of its
 * own (disks_for would refuse).
 */
static int
spare_ok(void)
{
	for (int i = 0; D.qargv[i]; i++)
		if (strstr(D.qargv[i], "server"))
			return 0;
	for (int d = 0; d < D.ndisks; d++) {
		int used = 0;

		for (int i = 0; D.qargv[i] && !used; i++) {
			char *r = subst(D.qargv[i], D.disk[d], "x");

			used = strcmp(r, D.qargv[i]) != 0;
			free(r);
		}
		if (!used)
			return 0;
	}
	return 1;
}

static void
spare_spawn(void)
{
	const char *e = getenv("BHRR_DEBUG_SPARE");

	if (have_spare || no_spare || (e != NULL && strcmp(e, "0") == 0))
		return;
	if (!spare_ok()) {
		no_spare = 1;
		if (getenv("BHRR_DEBUG_TRACE"))
			say("no spare replay: the command line has a server socket or a disk bhrr cannot copy");
		return;
	}
	inst_spawn(&spare);
	have_spare = 1;
}

/* A replay held at icount 0, its gdbstub connected: the spare if there is one. */
static void
inst_start(struct inst *in)
{
	if (have_spare) {
		*in = spare;
		have_spare = 0;
	} else {
		inst_spawn(in);
	}
	inst_attach(in);
	if (in->n > 0)
		spare_spawn();
}

/* ---- positions, points, stop replies ---- */

static int64_t
when(struct inst *in, char *next, size_t len)
{
	char ans[256];
	long long ic = -1;

	if (order(in, "when", ans, sizeof(ans)) < 0 || sscanf(ans, "ok icount %lld", &ic) != 1)
		return -1;
	if (next) {
		const char *p = strstr(ans, "next ");

		snprintf(next, len, "%s", p ? p + 5 : "?");
	}
	return ic;
}

static char *
regs(struct inst *in)
{
	return xstrdup(stub(in, "g"));
}

static void
hist_push(int64_t ic, char *r)
{
	if (D.nhist == HISTORY_MAX) {
		free(D.hist[0].regs);
		memmove(D.hist, D.hist + 1, (HISTORY_MAX - 1) * sizeof(*D.hist));
		D.nhist--;
	}
	if (D.hist == NULL && (D.hist = calloc(HISTORY_MAX, sizeof(*D.hist))) == NULL)
		die("out of memory");
	D.hist[D.nhist].icount = ic;
	D.hist[D.nhist++].regs = r;
}

static void
hist_truncate(size_t n)
{
	while (D.nhist > n)
		free(D.hist[--D.nhist].regs);
}

/* Insert every point gdb set into @in; @remove: take them out instead. */
static void
points_apply(struct inst *in, int remove)
{
	char req[80];

	for (int i = 0; i < D.npts; i++) {
		snprintf(req, sizeof(req), "%c%d,%" PRIx64 ",%x", remove ? 'z' : 'Z', D.pts[i].type,
			 D.pts[i].addr, D.pts[i].kind);
		stub(in, req);
	}
}

/* The memory watched by point @p (its first 16 bytes), as @in's gdbstub reads it (hex). */
static const char *
watch_mem(struct inst *in, const struct point *p)
{
	char req[64];

	snprintf(req, sizeof(req), "m%" PRIx64 ",%x", p->addr, p->kind > 16 ? 16 : p->kind);
	return stub(in, req);
}

static void
watch_snapshot(struct inst *in)
{
	for (int i = 0; i < D.npts; i++)
		if (D.pts[i].type >= 2)
			snprintf(D.pts[i].old, sizeof(D.pts[i].old), "%s", watch_mem(in, &D.pts[i]));
}

/* Take out (@op 'z') or put back ('Z') in @in the breakpoints gdb set at @pc. */
static void
breakpoints_at(struct inst *in, uint64_t pc, char op)
{
	char req[80];

	for (int i = 0; i < D.npts; i++)
		if (D.pts[i].type < 2 && D.pts[i].addr == pc) {
			snprintf(req, sizeof(req), "%c%d,%" PRIx64 ",%x", op, D.pts[i].type, pc,
				 D.pts[i].kind);
			stub(in, req);
		}
}

/* A stop reply's reason for watchpoint @addr: "watch:ADDR;", "rwatch:" or "awatch:" by its type. */
static void
watch_reason(uint64_t addr, char *out, size_t len)
{
	int type = 2;

	for (int i = 0; i < D.npts; i++)
		if (D.pts[i].type >= 2 && D.pts[i].addr == addr)
			type = D.pts[i].type;
	snprintf(out, len, "%swatch:%" PRIx64 ";", type == 3 ? "r" : type == 4 ? "a" : "", addr);
}

/* The PC of @in, read alone (x86-64's rip without a description). */
static uint64_t
read_pc(struct inst *in)
{
	char req[16];
	int num = D.pc >= 0 ? D.lay.r[D.pc].regnum : 16, bytes = D.pc >= 0 ? D.lay.r[D.pc].bytes : 8;

	snprintf(req, sizeof(req), "p%x", num);
	const char *r = stub(in, req);
	uint64_t pc = 0;

	if (bytes > 8 || strlen(r) < (size_t)bytes * 2)
		return 0;
	for (int b = bytes - 1; b >= 0; b--) {
		unsigned v = 0;

		sscanf(r + 2 * b, "%2x", &v);
		pc = pc << 8 | v;
	}
	return pc;
}

/*
 * The stop reply for a stop of @why at @in's position: SIGINT for a pause,
 * else SIGTRAP, with the watchpoint the shim named.  Refreshes the
 * watchpoints' memory.
 */
static void
stop_reply(struct inst *in, const char *why, char *out, size_t len)
{
	char watch[80] = "";

	if (strcmp(why, "trap") == 0 && in->watched)
		watch_reason(in->watch, watch, sizeof(watch));
	watch_snapshot(in);
	snprintf(out, len, "T%02xthread:%s;%s", strcmp(why, "pause") == 0 ? 2 : 5, D.thread, watch);
}

enum trap { TRAP_NONE, TRAP_BREAK, TRAP_WATCH };

/*
 * What a trap that was not a step stopped for, as gdb would see it: a
 * watchpoint the shim named (a write one only if the memory changed: gdb
 * goes on silently otherwise), a breakpoint at the PC, or nothing (a
 * debug interrupt left pending by a watchpoint hit during a step).
 * Compares with the watchpoints' memory at the last watch_snapshot().
 */
static enum trap
trap_kind(struct inst *in, uint64_t pc)
{
	if (in->watched) {
		for (int i = 0; i < D.npts; i++) {
			if (D.pts[i].type < 2 || D.pts[i].addr != in->watch)
				continue;
			if (D.pts[i].type > 2)
				return TRAP_WATCH;
			return strcmp(watch_mem(in, &D.pts[i]), D.pts[i].old) != 0 ? TRAP_WATCH : TRAP_NONE;
		}
	}
	for (int i = 0; i < D.npts; i++)
		if (D.pts[i].type < 2 && D.pts[i].addr == pc)
			return TRAP_BREAK;
	return TRAP_NONE;
}

/* ---- moving ---- */

/*
 * Resume @in (a step or to @to, -1: on) and wait for its stop; the stop's
 * icount, or -1 if QEMU ended.
 */
static int64_t
run(struct inst *in, int step, int64_t to, char *why, size_t len)
{
	char o[64], ans[128];

	if (step)
		snprintf(o, sizeof(o), "step");
	else if (to >= 0)
		snprintf(o, sizeof(o), "cont-to %lld", (long long)to);
	else
		snprintf(o, sizeof(o), "cont");
	if (order(in, o, ans, sizeof(ans)) < 0) {
		snprintf(why, len, "%.*s", (int)(len > 0 ? len - 1 : 0), ans);
		return -2;
	}
	return wait_stop(in, why, len);
}

/*
 * A fresh replay, replacing the current one, at the stop at @ic whose PC
 * is @pc (0: the first stop there): a breakpoint's hit comes after what
 * was delivered at its icount, so after the stop at the icount, step
 * while the PC differs and the icount stays.  No point is inserted on the
 * way; all are once there.
 */
static void
reexecute_at_pc(int64_t ic, uint64_t pc)
{
	double t0 = now_s();
	struct inst in;
	char why[64];

	inst_start(&in);
	if (ic > 0 && run(&in, 0, ic, why, sizeof(why)) != ic)
		say("the re-execution stopped at icount %lld (%s), not at %lld",
		    (long long)in.icount, why, (long long)ic);
	for (int k = 0; pc != 0 && k < 16 && read_pc(&in) != pc; k++) {
		if (run(&in, 1, -1, why, sizeof(why)) != ic) {
			say("the stop at pc %#llx at icount %lld not found again", (unsigned long long)pc,
			    (long long)ic);
			break;
		}
	}
	points_apply(&in, 0);
	inst_kill(&D.cur);
	D.cur = in;
	D.reexecs++;
	D.reverse_s += now_s() - t0;
}

/*
 * As reexecute_at_pc(), at position (@ic, @g) (@g NULL: the first stop at
 * @ic): steps while the registers differ and the icount stays.
 */
static void
reexecute(int64_t ic, const char *g)
{
	reexecute_at_pc(ic, 0);
	for (int k = 0; g != NULL && k < 16; k++) {
		char *r = regs(&D.cur), why[64];
		int same = strcmp(r, g) == 0;

		if (!same && getenv("BHRR_DEBUG_TRACE")) {
			size_t d = 0;

			while (r[d] && r[d] == g[d])
				d++;
			say("at icount %lld: registers differ from char %zu: %.24s vs %.24s",
			    (long long)D.cur.icount, d, r + d, g + d);
		}
		free(r);
		if (same)
			break;
		points_apply(&D.cur, 1);
		int64_t got = run(&D.cur, 1, -1, why, sizeof(why));

		points_apply(&D.cur, 0);
		if (got != ic) {
			say("position at icount %lld not found again", (long long)ic);
			break;
		}
	}
}

/* After a stop of @why: record the position, answer gdb. */
static void
stopped(const char *why)
{
	stop_reply(&D.cur, why, D.last_reply, sizeof(D.last_reply));
	hist_push(D.cur.icount, regs(&D.cur));
	pkt_sends(D.gdbfd, D.last_reply);
}

/* Forward: continue or step, until a stop or until gdb interrupts. */
static void
forward(int step)
{
	char o[16], ans[128], why[32];

	snprintf(o, sizeof(o), "%s", step ? "step" : "cont");
	if (order(&D.cur, o, ans, sizeof(ans)) < 0) {
		pkt_sends(D.gdbfd, "E01");
		return;
	}
	for (;;) {
		struct pollfd p[2] = { { .fd = D.cur.ctl, .events = POLLIN },
				       { .fd = D.gdbfd, .events = POLLIN } };

		if (D.cur.ctllen == 0 && !D.cur.pending[0] && !buffered(D.gdbfd) && poll(p, 2, -1) < 0 &&
		    errno == EINTR)
			continue;
		if (buffered(D.gdbfd))
			p[1].revents |= POLLIN;
		if (D.cur.ctllen > 0 || D.cur.pending[0] || (p[0].revents & (POLLIN | POLLHUP))) {
			if (wait_stop(&D.cur, why, sizeof(why)) < 0) {
				pid_t pid = D.cur.cp.pid;
				int st = finish_command(&D.cur.cp);

				live_del_pid(pid);
				D.cur.cp.pid = 0;
				if (D.cur.cp.signal)
					snprintf(D.last_reply, sizeof(D.last_reply), "X%02x",
						 D.cur.cp.signal & 0xff);
				else
					snprintf(D.last_reply, sizeof(D.last_reply), "W%02x", st & 0xff);
				pkt_sends(D.gdbfd, D.last_reply);
				return;
			}
			if (!step && strcmp(why, "trap") == 0 && !D.cur.watched) {
				enum trap t = trap_kind(&D.cur, read_pc(&D.cur));

				if (t == TRAP_NONE) {
					/* a debug interrupt left over from a watchpoint hit: not a stop for gdb */
					if (order(&D.cur, "cont", ans, sizeof(ans)) < 0) {
						pkt_sends(D.gdbfd, "E01");
						return;
					}
					continue;
				}
			}
			stopped(why);
			return;
		}
		if (p[1].revents & POLLIN) {
			int c = next_byte(D.gdbfd);

			if (c == 3)
				order(&D.cur, "pause", NULL, 0);
			else if (c < 0)
				return;
		} else if (p[1].revents & POLLHUP) {
			return;
		}
	}
}

/* reverse-stepi: the position before this one. */
static void
reverse_step(void)
{
	int64_t ic = D.cur.icount;

	if (D.nhist >= 2 && D.hist[D.nhist - 2].icount >= ic - 1 &&
	    D.hist[D.nhist - 2].icount <= ic) {
		struct pos p = D.hist[D.nhist - 2];

		reexecute(p.icount, p.regs);
		hist_truncate(D.nhist - 1); /* the current one goes; p stays */
		stop_reply(&D.cur, "trap", D.last_reply, sizeof(D.last_reply));
		pkt_sends(D.gdbfd, D.last_reply);
		return;
	}
	if (ic == 0) {
		pkt_sends(D.gdbfd, "T05replaylog:begin;");
		return;
	}
	reexecute(ic - 1, NULL);
	hist_truncate(D.nhist ? D.nhist - 1 : 0);
	stopped("trap");
}

/*
 * reverse-continue: a replay with every point from icount 0 to here; the
 * last stop before here is where gdb goes; none: the beginning.
 */
static void
reverse_continue(void)
{
	double t0 = now_s();
	int64_t here = D.cur.icount, hit = -1;
	uint64_t hit_pc = 0, hit_waddr = 0;
	int hit_watch = 0;
	char why[32];
	struct inst scan;

	inst_start(&scan);
	points_apply(&scan, 0);
	watch_snapshot(&scan);
	int64_t ic = here > 0 ? run(&scan, 0, here, why, sizeof(why)) : 0;

	/* per stop: its icount, PC and watchpoint only; the registers once there */
	while (ic >= 0 && ic < here && strcmp(why, "trap") == 0) {
		uint64_t pc = read_pc(&scan);
		enum trap t = trap_kind(&scan, pc);

		if (t != TRAP_NONE) {
			hit = ic;
			hit_pc = pc;
			hit_watch = t == TRAP_WATCH;
			hit_waddr = scan.watch;
		}
		/* past a breakpoint at the PC: out, one step, back in; the step may hit a watchpoint */
		if (t == TRAP_BREAK)
			breakpoints_at(&scan, pc, 'z');
		if (t == TRAP_WATCH)
			watch_snapshot(&scan);
		ic = run(&scan, 1, -1, why, sizeof(why));
		if (t == TRAP_BREAK)
			breakpoints_at(&scan, pc, 'Z');
		if (ic < 0 || ic >= here)
			break;
		if (scan.watched && trap_kind(&scan, read_pc(&scan)) == TRAP_WATCH) {
			hit = ic;
			hit_pc = read_pc(&scan);
			hit_watch = 1;
			hit_waddr = scan.watch;
		}
		if (scan.watched)
			watch_snapshot(&scan);
		ic = run(&scan, 0, -1, why, sizeof(why));
	}
	inst_kill(&scan);
	D.reverse_s += now_s() - t0;
	if (getenv("BHRR_DEBUG_TRACE"))
		say("reverse-continue: the last stop before icount %lld is at %lld", (long long)here,
		    (long long)hit);
	if (hit < 0) {
		reexecute(0, NULL);
		hist_truncate(0);
		hist_push(0, regs(&D.cur));
		watch_snapshot(&D.cur);
		snprintf(D.last_reply, sizeof(D.last_reply), "T05replaylog:begin;");
		pkt_sends(D.gdbfd, D.last_reply);
		return;
	}
	/*
	 * Backwards, a watchpoint stops gdb at the instruction that wrote, before
	 * it ran (gdb then sees the value change, as QEMU's reverse debugging
	 * shows it): the position one instruction before the hit.
	 */
	if (hit_watch)
		reexecute_at_pc(hit - 1, 0);
	else
		reexecute_at_pc(hit, hit_pc);
	/* the timeline now ends here */
	size_t k = D.nhist;

	while (k > 0 && D.hist[k - 1].icount >= D.cur.icount)
		k--;
	hist_truncate(k);
	hist_push(D.cur.icount, regs(&D.cur));
	watch_snapshot(&D.cur);
	char watch[80] = "";

	if (hit_watch)
		watch_reason(hit_waddr, watch, sizeof(watch));
	snprintf(D.last_reply, sizeof(D.last_reply), "T05thread:%s;%s", D.thread, watch);
	pkt_sends(D.gdbfd, D.last_reply);
}

/* Go to icount @ic: on from here if ahead (no point stops it), else a re-execution. */
static int
go_to(int64_t ic)
{
	char why[32];

	if (ic > D.cur.icount) {
		points_apply(&D.cur, 1);
		int64_t got = run(&D.cur, 0, ic, why, sizeof(why));

		points_apply(&D.cur, 0);
		if (got != ic)
			return -1;
	} else if (ic < D.cur.icount) {
		reexecute(ic, NULL);
		size_t k = D.nhist;

		while (k > 0 && D.hist[k - 1].icount >= ic)
			k--;
		hist_truncate(k);
	}
	if (D.nhist == 0 || D.hist[D.nhist - 1].icount != D.cur.icount)
		hist_push(D.cur.icount, regs(&D.cur));
	watch_snapshot(&D.cur);
	snprintf(D.last_reply, sizeof(D.last_reply), "T05thread:%s;", D.thread);
	return 0;
}

/* ---- gdb's monitor commands for bhrr ---- */

static void
console(const char *s)
{
	size_t n = strlen(s);
	char *hex = malloc(2 * n + 2);

	if (hex == NULL)
		die("out of memory");
	hex[0] = 'O';
	for (size_t i = 0; i < n; i++)
		snprintf(hex + 1 + 2 * i, 3, "%02x", (unsigned char)s[i]);
	pkt_sends(D.gdbfd, hex);
	free(hex);
}

static int64_t
target_of(const char *spec, char *err, size_t len);

static void
monitor(const char *cmd)
{
	char buf[512], next[128];

	while (*cmd == ' ')
		cmd++;
	if (strcmp(cmd, "when") == 0) {
		int64_t ic = when(&D.cur, next, sizeof(next));
		unsigned long long seq;
		long long nic;

		if (sscanf(next, "%llu %lld", &seq, &nic) == 2)
			snprintf(buf, sizeof(buf), "icount %lld; next recorded event #%llu at icount %lld\n",
				 (long long)ic, seq, nic);
		else
			snprintf(buf, sizeof(buf), "icount %lld; %s\n", (long long)ic,
				 strcmp(next, "free") == 0 ? "the replay runs free (past its log)"
							  : "no recorded event ahead");
		console(buf);
		pkt_sends(D.gdbfd, "OK");
	} else if (strncmp(cmd, "goto ", 5) == 0) {
		char err[256];

		spare_spawn();
		int64_t ic = target_of(cmd + 5, err, sizeof(err));

		if (ic < 0) {
			snprintf(buf, sizeof(buf), "%s\n", err);
			console(buf);
			pkt_sends(D.gdbfd, "E01");
			return;
		}
		if (go_to(ic) < 0) {
			console("the replay ended before it got there\n");
			pkt_sends(D.gdbfd, "E02");
			return;
		}
		snprintf(buf, sizeof(buf), "icount %lld\n", (long long)D.cur.icount);
		console(buf);
		pkt_sends(D.gdbfd, "OK");
	} else if (strcmp(cmd, "stats") == 0) {
		snprintf(buf, sizeof(buf), "%u re-executions, %.3f s\n", D.reexecs, D.reverse_s);
		console(buf);
		pkt_sends(D.gdbfd, "OK");
	} else {
		console("bhrr monitor commands: when, goto ICOUNT|#EVENT, stats\n");
		pkt_sends(D.gdbfd, "OK");
	}
}

/*
 * A monitor command for QEMU: its output comes as O packets before the
 * answer, all of which go to gdb.
 */
static void
monitor_qemu(const char *p)
{
	const char *r = stub(&D.cur, p);

	while (r[0] == 'O' && strcmp(r, "OK") != 0) {
		pkt_sends(D.gdbfd, r);
		if (pkt_recv(D.cur.gdb, reply, 1) < 0)
			die("debug: QEMU's gdbstub closed the connection");
		r = reply;
	}
	pkt_sends(D.gdbfd, r);
}

/* ---- register descriptions ---- */

/*
 * The qXfer document @annex of @in's gdbstub, whole (malloc'd, the
 * protocol's '}' escapes undone), or NULL if it has none.
 */
static char *
stub_xfer(struct inst *in, const char *annex)
{
	char *doc = NULL, req[192];
	size_t n = 0;

	for (;;) {
		snprintf(req, sizeof(req), "qXfer:features:read:%s:%zx,ffb", annex, n);
		const char *r = stub(in, req);
		size_t l = strlen(r);

		if (r[0] != 'm' && r[0] != 'l') {
			free(doc);
			return NULL;
		}
		char *d = realloc(doc, n + l + 1);

		if (d == NULL)
			die("out of memory");
		doc = d;
		for (size_t i = 1; i < l; i++)
			doc[n++] = r[i] == '}' && i + 1 < l ? (char)(r[++i] ^ 0x20) : r[i];
		doc[n] = 0;
		if (r[0] == 'l' || l == 1)
			return doc;
	}
}

/* QEMU's register description, read from @in: D.lay and D.pc (-1 if it has none). */
static void
layout_load(struct inst *in)
{
	char *top = stub_xfer(in, "target.xml"), href[128];
	int ok = top != NULL && gdb_layout_add(&D.lay, top) == 0;

	for (int k = 0; ok && gdb_xml_include(top, k, href, sizeof(href)) == 0; k++) {
		char *doc = stub_xfer(in, href);

		ok = doc != NULL && gdb_layout_add(&D.lay, doc) == 0;
		free(doc);
	}
	free(top);
	if (!ok || D.lay.n == 0) {
		memset(&D.lay, 0, sizeof(D.lay));
		D.pc = -1;
		return;
	}
	gdb_layout_finish(&D.lay);
	D.pc = gdb_layout_pc(&D.lay);
}

/* Whether the guest's -kernel is a 32-bit x86 ELF (a multiboot kernel, as the test guests are). */
static int
kernel_is_elf_i386(void)
{
	for (int i = 0; D.qargv[i] && D.qargv[i + 1]; i++) {
		if (!qemu_is_opt(D.qargv[i], "-kernel"))
			continue;
		unsigned char h[20];
		FILE *f = fopen(D.qargv[i + 1], "rb");
		int ok = f != NULL && fread(h, 1, sizeof(h), f) == sizeof(h) &&
			 memcmp(h, "\177ELF", 4) == 0 && h[4] == 1 /* ELFCLASS32 */ &&
			 h[18] == 3 && h[19] == 0 /* EM_386 */;

		if (f != NULL)
			fclose(f);
		return ok;
	}
	return 0;
}

/*
 * Which description gdb gets: QEMU's own, or the i386 view of an x86-64
 * one (--gdb-arch=i386; by default when the guest's -kernel is a 32-bit
 * ELF).  Said once, with how to choose the other.
 */
static void
view_choose(void)
{
	char missing[32];
	int forced = strcmp(D.arch, "i386") == 0;

	if (strcmp(D.arch, "qemu") == 0 || (!forced && !kernel_is_elf_i386())) {
		say("gdb sees the vCPU as QEMU describes it (%s)%s", D.lay.arch[0] ? D.lay.arch : "?",
		    strcmp(D.lay.arch, "i386:x86-64") == 0 && strcmp(D.arch, "qemu") != 0
			    ? "; --gdb-arch=i386 for a guest in 32-bit code"
			    : "");
		return;
	}
	if (strcmp(D.lay.arch, "i386:x86-64") != 0) {
		if (forced && strcmp(D.lay.arch, "i386") != 0)
			die("replay: --gdb-arch=i386: QEMU describes its vCPU as '%s', not as x86-64",
			    D.lay.arch[0] ? D.lay.arch : "(no description)");
		return; /* an i386 QEMU describes itself so already */
	}
	if (gdb_view_i386(&D.V, &D.lay, missing, sizeof(missing)) < 0) {
		if (forced)
			die("replay: --gdb-arch=i386: QEMU's description has no register '%s'", missing);
		say("QEMU's description has no register '%s': gdb gets it as it is (x86-64)", missing);
		return;
	}
	D.view = 1;
	say("gdb sees the vCPU as i386, %s (--gdb-arch=qemu: as QEMU describes it, x86-64)",
	    forced ? "as asked" : "as the guest's kernel is a 32-bit ELF");
}

/* qXfer:features:read:ANNEX:OFF,LEN, the view's description in place of QEMU's. */
static void
view_xfer(const char *args)
{
	const char *xml = gdb_view_i386_xml();
	size_t total = strlen(xml);
	unsigned long off, len;
	char *buf;

	if (strncmp(args, "target.xml:", 11) != 0 || sscanf(args + 11, "%lx,%lx", &off, &len) != 2) {
		pkt_sends(D.gdbfd, "E00");
		return;
	}
	if (off >= total) {
		pkt_sends(D.gdbfd, "l");
		return;
	}
	size_t n = total - off < len ? total - off : len;

	if (asprintf(&buf, "%c%.*s", off + n < total ? 'm' : 'l', (int)n, xml + off) < 0)
		die("out of memory");
	pkt_sends(D.gdbfd, buf);
	free(buf);
}

/* 'p', 'P', 'g' and 'G' of the view, each as QEMU's register(s). */
static void
view_regs(const char *p)
{
	static char out[PKT_MAX];
	char req[640];
	unsigned long n;
	int i = -1;

	if (p[0] == 'g') {
		const char *r = stub(&D.cur, "g");

		if (strlen(r) <= 3 || gdb_view_g(&D.V, &D.lay, r, out, sizeof(out)) < 0)
			pkt_sends(D.gdbfd, r); /* an error */
		else
			pkt_sends(D.gdbfd, out);
		return;
	}
	if (p[0] == 'G') {
		size_t at = 1, have = strlen(p), want = 0;

		for (i = 0; i < D.V.v.n; i++)
			want += (size_t)D.V.v.r[i].bytes * 2;
		if (have != want + 1) {
			pkt_sends(D.gdbfd, "E22"); /* not the view's registers: nothing written */
			return;
		}
		for (i = 0; i < D.V.v.n; i++) {
			size_t w = (size_t)D.V.v.r[i].bytes * 2;
			char v[64], wide[64];

			if (at + w > have || w >= sizeof(v)) {
				pkt_sends(D.gdbfd, "E22");
				return;
			}
			snprintf(v, sizeof(v), "%.*s", (int)w, p + at);
			at += w;
			if (gdb_view_widen(&D.V, &D.lay, i, v, wide, sizeof(wide)) < 0) {
				pkt_sends(D.gdbfd, "E22");
				return;
			}
			snprintf(req, sizeof(req), "P%x=%s", D.lay.r[D.V.from[i]].regnum, wide);
			const char *r = stub(&D.cur, req);

			if (strcmp(r, "OK") != 0) {
				pkt_sends(D.gdbfd, r);
				return;
			}
		}
		pkt_sends(D.gdbfd, "OK");
		return;
	}
	char *end;

	n = strtoul(p + 1, &end, 16);
	if (end != p + 1)
		i = gdb_layout_num(&D.V.v, (int)n);
	if (i < 0 || (p[0] == 'P' && *end != '=') || (p[0] == 'p' && *end != 0)) {
		pkt_sends(D.gdbfd, "E14"); /* as QEMU answers a register it does not have */
		return;
	}
	const struct gdb_reg *q = &D.lay.r[D.V.from[i]];

	if (p[0] == 'p') {
		snprintf(req, sizeof(req), "p%x", q->regnum);
		const char *r = stub(&D.cur, req);
		size_t w = (size_t)D.V.v.r[i].bytes * 2;

		if (strlen(r) >= w && strlen(r) > 3)
			snprintf(out, sizeof(out), "%.*s", (int)w, r);
		else
			snprintf(out, sizeof(out), "%s", r);
		pkt_sends(D.gdbfd, out);
		return;
	}
	char wide[512];

	if (gdb_view_widen(&D.V, &D.lay, i, end + 1, wide, sizeof(wide)) < 0) {
		pkt_sends(D.gdbfd, "E22");
		return;
	}
	snprintf(req, sizeof(req), "P%x=%s", q->regnum, wide);
	pkt_sends(D.gdbfd, stub(&D.cur, req));
}

/* ---- gdb ---- */

static void
track_point(const char *p, const char *ans)
{
	int type;
	uint64_t addr;
	unsigned kind;

	if (strcmp(ans, "OK") != 0 || sscanf(p + 1, "%d,%" SCNx64 ",%x", &type, &addr, &kind) != 3)
		return;
	for (int i = 0; i < D.npts; i++)
		if (D.pts[i].type == type && D.pts[i].addr == addr && D.pts[i].kind == kind) {
			if (p[0] == 'z')
				D.pts[i] = D.pts[--D.npts];
			return;
		}
	if (p[0] == 'Z' && D.npts < MAX_POINTS) {
		D.pts[D.npts] = (struct point){ .type = type, .addr = addr, .kind = kind };
		if (type >= 2)
			snprintf(D.pts[D.npts].old, sizeof(D.pts[D.npts].old), "%s",
				 watch_mem(&D.cur, &D.pts[D.npts]));
		D.npts++;
	}
}

static int
unhex(const char *h, char *out, size_t len)
{
	size_t n = 0;
	unsigned v;

	for (; h[0] && h[1] && n + 1 < len; h += 2) {
		if (sscanf(h, "%2x", &v) != 1)
			return -1;
		out[n++] = (char)v;
	}
	out[n] = 0;
	return 0;
}

/* One packet from gdb; 0 to go on, 1 when gdb is done. */
static int
handle(char *p)
{
	if (strcmp(p, "?") == 0) {
		/* QEMU's gdbstub would also remove every breakpoint here */
		pkt_sends(D.gdbfd, D.last_reply);
	} else if (strcmp(p, "QStartNoAckMode") == 0) {
		pkt_sends(D.gdbfd, "OK");
		D.gdb_acks = 0;
	} else if (strncmp(p, "qSupported", 10) == 0) {
		char r[1024];

		free(D.qsupported);
		D.qsupported = xstrdup(p);
		snprintf(r, sizeof(r), "%.900s;ReverseStep+;ReverseContinue+", stub(&D.cur, p));
		pkt_sends(D.gdbfd, r);
	} else if (D.view && strncmp(p, "qXfer:features:read:", 20) == 0) {
		view_xfer(p + 20);
	} else if (D.view && (p[0] == 'g' || p[0] == 'G' || p[0] == 'p' || p[0] == 'P') &&
		   (p[1] == 0 || isxdigit((unsigned char)p[1]))) {
		view_regs(p);
	} else if (strcmp(p, "vCont?") == 0) {
		pkt_sends(D.gdbfd, "vCont;c;C;s;S");
	} else if (p[0] == 'c' || p[0] == 'C') {
		spare_spawn(); /* gdb's handshake is over: ready for the first move backwards */
		forward(0);
	} else if (p[0] == 's' || p[0] == 'S') {
		spare_spawn();
		forward(1);
	} else if (strncmp(p, "vCont;", 6) == 0) {
		spare_spawn();
		forward(p[6] == 's' || p[6] == 'S');
	} else if (strcmp(p, "bs") == 0) {
		reverse_step();
	} else if (strcmp(p, "bc") == 0) {
		reverse_continue();
	} else if (p[0] == 'Z' && p[1] >= '2' && p[1] <= '4' && D.nowatch) {
		pkt_sends(D.gdbfd, "E22"); /* the shim could not find how to report them */
	} else if (p[0] == 'Z' || p[0] == 'z') {
		char *req = xstrdup(p);
		const char *ans = stub(&D.cur, req);

		track_point(req, ans);
		pkt_sends(D.gdbfd, ans);
		free(req);
	} else if (strncmp(p, "qRcmd,", 6) == 0) {
		char cmd[512];

		if (unhex(p + 6, cmd, sizeof(cmd)) == 0 && strncmp(cmd, "bhrr", 4) == 0 &&
		    (cmd[4] == ' ' || cmd[4] == 0))
			monitor(cmd + 4);
		else
			monitor_qemu(p);
	} else if (p[0] == 'k' || strncmp(p, "vKill", 5) == 0) {
		/* not QEMU's gdbstub: it would exit QEMU from under the held vCPU */
		inst_kill(&D.cur);
		if (p[0] == 'v')
			pkt_sends(D.gdbfd, "OK");
		return 1;
	} else if (p[0] == 'D') {
		pkt_sends(D.gdbfd, "OK");
		return 1;
	} else {
		pkt_sends(D.gdbfd, stub(&D.cur, p));
	}
	return 0;
}

/* ---- start ---- */

/* "ICOUNT" or "#EVENT" of the log: the icount to stop at, or -1 with @err. */
static int64_t
target_of(const char *spec, char *err, size_t len)
{
	char *end;

	if (spec[0] != '#') {
		errno = 0;
		long long v = strtoll(spec, &end, 0);

		if (errno || *end || v < 0 || end == spec) {
			snprintf(err, len, "'%s' is neither an icount nor #EVENT", spec);
			return -1;
		}
		return v;
	}
	unsigned long long seq = strtoull(spec + 1, &end, 10);

	if (*end || end == spec + 1) {
		snprintf(err, len, "'%s': expected #EVENT, an event number as bhrr dump prints it", spec);
		return -1;
	}
	struct action_list al;

	if (action_list_load(&al, D.log, "debug", 0) < 0) {
		snprintf(err, len, "cannot read %s", D.log);
		return -1;
	}
	int64_t ic = -1;

	for (size_t i = 0; i < al.n; i++)
		if (al.v[i].a.seq == seq) {
			/* after it has run: one landed at an I/O access runs inside the next instruction */
			ic = al.v[i].a.icount + (al.v[i].a.at_io ? 1 : 0);
			break;
		}
	action_list_free(&al);
	if (ic < 0)
		snprintf(err, len, "event #%llu of %s is not one the replay delivers (bhrr dump lists "
				   "the events; bhrr export --actions those it does)", seq, D.log);
	return ic;
}

static int
listen_gdb(const char *spec, char *where, size_t len)
{
	if (strncmp(spec, "unix:", 5) == 0) {
		snprintf(where, len, "%s", spec + 5);
		return bind_unix(spec + 5, 0);
	}
	char *end;
	long port = strtol(spec, &end, 10);

	if (*end || port <= 0 || port > 65535)
		usage_error("replay: --gdb=%s: expected a TCP port or unix:PATH", spec);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		die("replay: --gdb: cannot listen on 127.0.0.1:%ld: %s", port, strerror(errno));
	snprintf(where, len, "127.0.0.1:%ld", port);
	return fd;
}

static void
cleanup(void)
{
	char path[128];

	inst_kill(&D.cur);
	if (have_spare)
		inst_kill(&spare);
	have_spare = 0;
	for (int d = 0; d < D.ndisks; d++)
		unlink(D.orig[d]);
	for (int i = 1; i < D.insts; i++) {
		snprintf(path, sizeof(path), "%s/replay.%d.bhlog", D.dir, i);
		unlink(path);
		snprintf(path, sizeof(path), "%s/out.%d", D.dir, i);
		unlink(path);
		snprintf(path, sizeof(path), "%s/err.%d", D.dir, i);
		unlink(path);
	}
	rmdir(D.dir);
}

int
debug_session(const char *exe, char **qargv, const char *log, const char *out, int force,
	      const char *gdb, const char *stop_at, const char *arch)
{
	char where[256], err[256];
	static char pkt[PKT_MAX];

	D.exe = exe;
	D.qargv = qargv;
	D.log = log;
	D.out = out;
	D.force = force;
	D.arch = arch;
	D.pc = -1;
	int64_t at = 0;

	if (stop_at != NULL && (at = target_of(stop_at, err, sizeof(err))) < 0)
		usage_error("replay: --stop-at=%s: %s", stop_at, err);
	snprintf(D.dir, sizeof(D.dir), "/tmp/bhrr-debug.XXXXXX");
	if (mkdtemp(D.dir) == NULL)
		die("debug: cannot make a directory in /tmp: %s", strerror(errno));
	signal(SIGPIPE, SIG_IGN);
	atexit(kill_all);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	/* bound now, so a port in use fails before QEMU starts; listening once the replay is there */
	int lfd = listen_gdb(gdb, where, sizeof(where));

	disks_keep();
	inst_start(&D.cur);
	snprintf(D.thread, sizeof(D.thread), "01");
	const char *qc = stub(&D.cur, "qC");

	if (strncmp(qc, "QC", 2) == 0)
		snprintf(D.thread, sizeof(D.thread), "%s", qc + 2);
	layout_load(&D.cur);
	view_choose();
	if (at > 0) {
		char why[32];

		if (run(&D.cur, 0, at, why, sizeof(why)) != at) {
			cleanup();
			die("replay: --stop-at=%s: the replay ended (%s) before icount %lld", stop_at,
			    why, (long long)at);
		}
	}
	hist_push(D.cur.icount, regs(&D.cur));
	snprintf(D.last_reply, sizeof(D.last_reply), "T05thread:%s;", D.thread);
	if (listen(lfd, 1) < 0) {
		cleanup();
		die("replay: --gdb: cannot listen on %s: %s", where, strerror(errno));
	}
	fprintf(stderr, "bhrr: replay: held at icount %lld; waiting for gdb on %s "
			"(gdb -ex 'target remote %s')\n",
		(long long)D.cur.icount, where, where);
	D.gdbfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	close(lfd);
	if (strncmp(gdb, "unix:", 5) == 0)
		unlink(gdb + 5);
	if (D.gdbfd < 0) {
		cleanup();
		die("replay: --gdb: accept: %s", strerror(errno));
	}
	int one = 1;

	setsockopt(D.gdbfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	for (;;) {
		int n = pkt_recv(D.gdbfd, pkt, D.gdb_acks);

		if (n == -2)
			continue; /* an interrupt while stopped */
		if (n < 0 || handle(pkt))
			break;
	}
	fprintf(stderr, "bhrr: replay: gdb left; %u re-executions took %.3f s\n", D.reexecs,
		D.reverse_s);
	int st = 0;

	if (have_spare)
		inst_kill(&spare); /* not kept while the replay runs on */
	have_spare = 0;
	if (D.cur.alive && D.cur.cp.pid > 0) {
		/* detached or gone: the replay runs on to its end */
		order(&D.cur, "cont", NULL, 0);
		close(D.cur.ctl);
		D.cur.ctl = -1;
		close(D.cur.gdb);
		D.cur.gdb = -1;
		st = finish_command(&D.cur.cp);
		D.cur.cp.pid = 0;
	}
	cleanup();
	return st;
}
