/*
 * gate_fs.c - what the guest read from the host's 9p shares (see gate_fs.h).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <xxhash.h>

#include "emit.h"
#include "fingerprint.h"
#include "gate_fs.h"
#include "log.h"
#include "session.h"
#include "vlog.h"

#define SHARES_MAX 16
#define SEEN_MAX 65536 /* files fingerprinted per run; more are said once and left unchecked */

static int fs_on;      /* set once, in the constructor: fingerprinting (recording) */
static int noatime_on; /* set once, in the constructor: a share exists (record or replay) */
static struct {
	char id[64];
	char root[PATH_MAX]; /* realpath of the shared directory */
	size_t len;
} shares[SHARES_MAX]; /* written once, in the constructor */
static int nshares;
/* libc's openat64 and fcntl64; the constructor resolves them, and before that the syscall answers */
static int (*real_openat64)(int, const char *, int, ...);
static int (*real_fcntl64)(int, int, ...);

static pthread_mutex_t fs_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t *seen;       /* fs_mu: keys of the files fingerprinted (open addressing) */
static size_t nseen;         /* fs_mu */
static atomic_int said_full;
static atomic_ullong n_files;
static __thread int in_note; /* this thread: inside note(), whose own opens are bhrr's */

void
gate_fs_start(int recording, int argc, char *const argv[])
{
	struct fp_share sh[SHARES_MAX + 1];
	int n = fp_shares(argc, argv, sh, SHARES_MAX + 1);

	__atomic_store_n(&real_openat64, dlsym(RTLD_NEXT, "openat64"), __ATOMIC_RELEASE);
	__atomic_store_n(&real_fcntl64, dlsym(RTLD_NEXT, "fcntl64"), __ATOMIC_RELEASE);
	/* record and replay alike: neither may move a share's access times */
	noatime_on = n > 0;
	if (!recording)
		return;
	if (n > SHARES_MAX) {
		vlog_say("warning: more than %d 9p shares; the files the guest reads from the rest "
			 "are not fingerprinted", SHARES_MAX);
		n = SHARES_MAX;
	}
	for (int i = 0; i < n; i++) {
		if (realpath(sh[i].path, shares[nshares].root) == NULL) {
			vlog_say("warning: 9p share %s (%s): %s; a replay cannot check the files the "
				 "guest reads from it", sh[i].id, sh[i].path, strerror(errno));
			continue;
		}
		snprintf(shares[nshares].id, sizeof(shares[nshares].id), "%.63s", sh[i].id);
		shares[nshares].len = strlen(shares[nshares].root);
		if (shares[nshares].len == 1)
			shares[nshares].len = 0; /* "/": every absolute path is under it */
		vlog("9p: share %s (%s): each file the guest opens to read is fingerprinted once",
		     sh[i].id, shares[nshares].root);
		nshares++;
	}
	if (nshares > 0 && (seen = calloc(2 * SEEN_MAX, sizeof(*seen))) != NULL)
		fs_on = 1;
}

unsigned long long
gate_fs_files(void)
{
	return n_files;
}

/* Whether @key is new (then remembered); fs_mu held.  -1 when the set is full. */
static int
first_time(uint64_t key)
{
	size_t cap = 2 * SEEN_MAX, k = (size_t)(key % cap);

	key |= 1; /* 0 marks a free slot */
	for (; seen[k] != 0; k = (k + 1) % cap)
		if (seen[k] == key)
			return 0;
	if (nseen == SEEN_MAX)
		return -1;
	seen[k] = key;
	nseen++;
	return 1;
}

/*
 * @fd was just opened by QEMU to read: if it is a regular file of a share,
 * fingerprint it the first time, as it is now, before the guest could read
 * or write it through this open.  The bytes come from the open file itself
 * (a fresh open of /proc/self/fd/N), so a name swapped meanwhile, a FIFO or
 * a symlink, cannot stand in for it.
 */
static void
note(int fd)
{
	char link[32], path[PATH_MAX], why[160], text[FP_READ_MAX + 1];
	struct stat st;
	ssize_t n;
	int s = -1;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink == 0)
		return;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	if ((n = readlink(link, path, sizeof(path))) <= 0 || (size_t)n >= sizeof(path))
		return;
	path[n] = 0;
	/* the innermost share the file is in */
	for (int k = 0; k < nshares; k++)
		if (strncmp(path, shares[k].root, shares[k].len) == 0 && path[shares[k].len] == '/' &&
		    (s < 0 || shares[k].len > shares[s].len))
			s = k;
	if (s < 0)
		return;
	const char *rel = path + shares[s].len + 1;
	uint64_t key = XXH3_64bits_withSeed(rel, strlen(rel), (uint64_t)s);

	pthread_mutex_lock(&fs_mu);
	int fresh = first_time(key);

	pthread_mutex_unlock(&fs_mu);
	if (fresh < 0 && !atomic_exchange(&said_full, 1))
		vlog_say("warning: the guest opened more than %d files of its 9p shares; the rest are "
			 "not fingerprinted", SEEN_MAX);
	if (fresh <= 0)
		return;
	uint64_t size, x;

	if (fp_hash_file(link, &size, &x, why, sizeof(why)) < 0) {
		vlog_say("warning: 9p share %s: %s: %s; a replay cannot check it", shares[s].id, rel, why);
		return;
	}
	size_t len = fp_format_read(shares[s].id, rel, size, x, text, sizeof(text));

	if (len + 1 >= sizeof(text)) {
		vlog_say("warning: 9p share %s: %.200s...: its name is too long to log; a replay "
			 "cannot check it", shares[s].id, rel);
		return;
	}
	emit_file_read(text, len);
	atomic_fetch_add(&n_files, 1);
}

/* libc's openat64, or before the constructor what it would do. */
static int
open_real(int (*real)(int, const char *, int, ...), int dirfd, const char *path, int flags,
	  mode_t mode)
{
	if (real != NULL)
		return real(dirfd, path, flags, mode);
	return (int)syscall(SYS_openat, dirfd, path, flags, mode);
}

/*
 * QEMU's open of a file by directory: the local 9p backend's every open.
 * Exported by libbhrr.so (libbhrr.map) to interpose on libc's.
 */
__attribute__((visibility("default"))) int openat64(int dirfd, const char *path, int flags, ...);

int
openat64(int dirfd, const char *path, int flags, ...)
{
	int (*real)(int, const char *, int, ...) = __atomic_load_n(&real_openat64, __ATOMIC_ACQUIRE);
	mode_t mode = 0;
	int fd;

	if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) { /* glibc's __OPEN_NEEDS_MODE */
		va_list ap;

		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	/*
	 * Where a 9p share exists, QEMU's opens to read do not move access
	 * times: with relatime, a record's first read of a file written since
	 * its last read moved its access time, the guest saw the moved time in
	 * the replay, and its own relatime asked the server differently (every
	 * record of freshly written files diverged so).  O_NOATIME is only for
	 * the file's owner or a privileged process: elsewhere the open is
	 * made as it was asked (doc/record.md, "9p shares").  O_PATH opens
	 * read nothing.
	 */
	int noatime = __atomic_load_n(&noatime_on, __ATOMIC_RELAXED) &&
		      (flags & O_ACCMODE) == O_RDONLY && !(flags & (O_PATH | O_CREAT | O_TRUNC));

	fd = open_real(real, dirfd, path, noatime ? flags | O_NOATIME : flags, mode);
	if (fd < 0 && noatime && errno == EPERM)
		fd = open_real(real, dirfd, path, flags, mode);
	/*
	 * Only opens to read what is there: one that writes, creates or
	 * truncates changes the file (restore such a share as a disk), and
	 * O_PATH reads nothing.
	 */
	if (fd >= 0 && __atomic_load_n(&fs_on, __ATOMIC_RELAXED) && !in_note &&
	    (flags & O_ACCMODE) == O_RDONLY && !(flags & (O_DIRECTORY | O_PATH | O_CREAT | O_TRUNC)) &&
	    session_active()) {
		int e = errno;

		in_note = 1;
		note(fd);
		in_note = 0;
		errno = e;
	}
	return fd;
}

/*
 * QEMU's fcntl, interposed for one thing: the local 9p backend opens a file
 * and then sets its status flags back to the ones it asked for
 * (openat_file: fcntl(fd, F_SETFL, flags), to drop O_NONBLOCK), which would
 * drop the O_NOATIME openat64 added.  Where a share exists, F_SETFL keeps
 * an O_NOATIME the descriptor has.  Everything else is passed on as it is.
 */
__attribute__((visibility("default"))) int fcntl64(int fd, int cmd, ...);

static int
fcntl_real(int fd, int cmd, void *arg)
{
	int (*real)(int, int, ...) = __atomic_load_n(&real_fcntl64, __ATOMIC_ACQUIRE);

	if (real != NULL)
		return real(fd, cmd, arg);
	return (int)syscall(SYS_fcntl, fd, cmd, arg);
}

int
fcntl64(int fd, int cmd, ...)
{
	va_list ap;

	/* as libc's own: the argument, if any, is read as a pointer-sized word */
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);

	va_end(ap);
	if (cmd == F_SETFL && __atomic_load_n(&noatime_on, __ATOMIC_RELAXED) &&
	    !((intptr_t)arg & O_NOATIME)) {
		int e = errno, cur = fcntl_real(fd, F_GETFL, NULL);

		errno = e;
		if (cur >= 0 && (cur & O_NOATIME))
			arg = (void *)((intptr_t)arg | O_NOATIME);
	}
	return fcntl_real(fd, cmd, arg);
}
