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

static int fs_on;  /* set once, in the constructor */
static struct {
	char id[64];
	char root[PATH_MAX]; /* realpath of the shared directory */
	size_t len;
} shares[SHARES_MAX]; /* written once, in the constructor */
static int nshares;

#define QUEUE_MAX 4096 /* files waiting for the hasher; more are left unchecked */

static pthread_mutex_t fs_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fs_cv = PTHREAD_COND_INITIALIZER; /* with fs_mu: the queue changed */
static uint64_t *seen;       /* fs_mu: keys of the files fingerprinted (open addressing) */
static size_t nseen;         /* fs_mu */
static int said_full;        /* fs_mu */
static struct queued {
	int share;
	char *rel;
} queue[QUEUE_MAX];          /* fs_mu: [qhead, qtail) waits for the hasher */
static size_t qhead, qtail;  /* fs_mu */
static int stopping;         /* fs_mu: gate_fs_finish ran */
static int hasher_started;   /* fs_mu: 1 running, -1 could not start */
static pthread_t hasher;     /* written under fs_mu, once */
static atomic_ullong n_files;
static __thread int in_note; /* this thread: inside note(), whose own opens are bhrr's */

void
gate_fs_start(int recording, int argc, char *const argv[])
{
	struct fp_share sh[SHARES_MAX];
	int n = recording ? fp_shares(argc, argv, sh, SHARES_MAX) : 0;

	for (int i = 0; i < n; i++) {
		if (realpath(sh[i].path, shares[nshares].root) == NULL) {
			vlog_say("warning: 9p share %s (%s): %s; a replay cannot check the files the "
				 "guest reads from it", sh[i].id, sh[i].path, strerror(errno));
			continue;
		}
		snprintf(shares[nshares].id, sizeof(shares[nshares].id), "%.63s", sh[i].id);
		shares[nshares].len = strlen(shares[nshares].root);
		vlog("9p: share %s (%s): each file the guest opens is fingerprinted once", sh[i].id,
		     shares[nshares].root);
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

/* Whether @key is new (then remembered); fs_mu held. */
static int
first_time(uint64_t key)
{
	size_t cap = 2 * SEEN_MAX, k = (size_t)(key % cap);

	key |= 1; /* 0 marks a free slot */
	for (; seen[k] != 0; k = (k + 1) % cap)
		if (seen[k] == key)
			return 0;
	if (nseen == SEEN_MAX) {
		if (!said_full)
			vlog_say("warning: the guest opened more than %d files of its 9p shares; the "
				 "rest are not fingerprinted", SEEN_MAX);
		said_full = 1;
		return 0;
	}
	seen[k] = key;
	nseen++;
	return 1;
}

/* Fingerprint one queued file and log it; the hasher thread. */
static void
hash_one(int s, const char *rel)
{
	char path[PATH_MAX + 1], why[160], text[PATH_MAX + 160];
	uint64_t size, x;

	snprintf(path, sizeof(path), "%s/%s", shares[s].root, rel);
	if (fp_hash_file(path, &size, &x, why, sizeof(why)) < 0) {
		vlog_say("warning: 9p share %s: %s: %s; a replay cannot check it", shares[s].id, rel, why);
		return;
	}
	emit_file_read(text, fp_format_read(shares[s].id, rel, size, x, text, sizeof(text)));
	atomic_fetch_add(&n_files, 1);
}

/*
 * The hasher: fingerprints the files note() queued, off QEMU's threads (a
 * 9p worker is not held up hashing).  It takes fs_mu only to pop.
 */
static void *
hasher_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&fs_mu);
	for (;;) {
		while (qhead == qtail && !stopping)
			pthread_cond_wait(&fs_cv, &fs_mu);
		if (qhead == qtail)
			break;
		struct queued q = queue[qhead % QUEUE_MAX];

		qhead++;
		pthread_mutex_unlock(&fs_mu);
		hash_one(q.share, q.rel);
		free(q.rel);
		pthread_mutex_lock(&fs_mu);
		pthread_cond_broadcast(&fs_cv); /* gate_fs_finish waits for an empty queue */
	}
	pthread_mutex_unlock(&fs_mu);
	return NULL;
}

/* @fd was just opened for reading by QEMU: queue it for the hasher if it is a share's file, once. */
static void
note(int fd)
{
	char link[32], path[PATH_MAX];
	struct stat st;
	ssize_t n;
	int s;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	if ((n = readlink(link, path, sizeof(path) - 1)) <= 0)
		return;
	path[n] = 0;
	for (s = 0; s < nshares; s++)
		if (strncmp(path, shares[s].root, shares[s].len) == 0 && path[shares[s].len] == '/')
			break;
	if (s == nshares)
		return;
	const char *rel = path + shares[s].len + 1;
	uint64_t key = XXH3_64bits_withSeed(rel, strlen(rel), (uint64_t)s);
	char *copy = strdup(rel);

	if (copy == NULL)
		return;
	pthread_mutex_lock(&fs_mu);
	if (!stopping && first_time(key) && qtail - qhead < QUEUE_MAX) {
		if (!hasher_started)
			hasher_started = pthread_create(&hasher, NULL, hasher_main, NULL) == 0 ? 1 : -1;
		if (hasher_started == 1) {
			queue[qtail % QUEUE_MAX] = (struct queued){ s, copy };
			qtail++;
			copy = NULL;
			pthread_cond_broadcast(&fs_cv);
		}
	}
	pthread_mutex_unlock(&fs_mu);
	free(copy);
}

void
gate_fs_finish(void)
{
	pthread_mutex_lock(&fs_mu);
	stopping = 1;
	pthread_cond_broadcast(&fs_cv);
	int started = hasher_started == 1;

	pthread_mutex_unlock(&fs_mu);
	if (started)
		pthread_join(hasher, NULL); /* it empties the queue first */
}

/*
 * QEMU's open of a file by directory: the local 9p backend's every open.
 * Exported by libbhrr.so (libbhrr.map) to interpose on libc's.
 */
__attribute__((visibility("default"))) int openat64(int dirfd, const char *path, int flags, ...);

int
openat64(int dirfd, const char *path, int flags, ...)
{
	static int (*real)(int, const char *, int, ...);
	mode_t mode = 0;

	if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) { /* glibc's __OPEN_NEEDS_MODE */
		va_list ap;

		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	if (real == NULL) {
		real = (int (*)(int, const char *, int, ...))dlsym(RTLD_NEXT, "openat64");
		if (real == NULL) {
			errno = ENOSYS;
			return -1;
		}
	}
	int fd = real(dirfd, path, flags, mode);

	if (fd >= 0 && __atomic_load_n(&fs_on, __ATOMIC_RELAXED) && !in_note &&
	    (flags & O_ACCMODE) != O_WRONLY && !(flags & O_DIRECTORY) && session_active()) {
		int e = errno;

		in_note = 1;
		note(fd);
		in_note = 0;
		errno = e;
	}
	return fd;
}
