/*
 * fingerprint.c - the files a command line gives the guest, by content
 * (see fingerprint.h).  Holes are hashed as the zeros a read returns, so a
 * sparse copy of an image and a dense one have the same fingerprint.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "fingerprint.h"

/*
 * Read in 64 KiB pieces into a buffer on the stack: a fresh 1 MiB heap
 * buffer per file was an mmap whose 256 page faults cost more than the
 * reading and hashing (10 ms for two 1 MiB disks in QEMU's constructor).
 */
#define CHUNK (1u << 16)
/* what a hole hashes as; never written, so any thread may read it */
static uint8_t zero[CHUNK];

/*
 * Value of @key in a QEMU option string ("a=1,file=x,,y" has file "x,y"),
 * or of its first, key-less element when @key is @implied.  1 if found.
 */
static int
opt_get(const char *s, const char *key, const char *implied, char *out, size_t len)
{
	size_t klen = strlen(key);
	int first = 1;

	while (*s) {
		const char *eq = NULL, *p = s;
		size_t n = 0;

		/* one element: up to a ',' that is not ",," */
		while (*p && !(*p == ',' && p[1] != ',')) {
			if (*p == ',')
				p++;
			if (*p == '=' && eq == NULL)
				eq = p;
			p++;
		}
		const char *val = NULL;

		if (eq && (size_t)(eq - s) == klen && strncmp(s, key, klen) == 0)
			val = eq + 1;
		else if (!eq && first && implied && strcmp(key, implied) == 0)
			val = s;
		if (val) {
			for (const char *q = val; q < p && n + 1 < len; q++) {
				out[n++] = *q;
				if (*q == ',')
					q++; /* ",," is one comma */
			}
			out[n] = 0;
			return 1;
		}
		first = 0;
		s = *p ? p + 1 : p;
	}
	return 0;
}

/* Whether @path names something other than a local file ("nbd:", "json:", "http://"). */
static int
is_protocol(const char *path)
{
	const char *colon = strchr(path, ':');
	const char *slash = strchr(path, '/');

	if (colon == NULL || (slash && slash < colon))
		return 0;
	return access(path, F_OK) != 0; /* "a:b.img" that exists is a file */
}

int
fp_hash_file(const char *path, uint64_t *size, uint64_t *hash, char *why, size_t len)
{
	/* O_NONBLOCK: a FIFO put where a file was must not block the open */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOATIME);

	if (fd < 0 && errno == EPERM) /* O_NOATIME: only the owner, or a privileged process */
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st;

	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(why, len, "cannot read it: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, len, "not a regular file");
		close(fd);
		return -1;
	}
	uint8_t buf[CHUNK];
	XXH3_state_t *x = XXH3_createState();
	int rc = -1;

	if (x == NULL || XXH3_64bits_reset(x) == XXH_ERROR) {
		snprintf(why, len, "out of memory");
		goto out;
	}
	off_t off = 0, end = st.st_size;

	while (off < end) {
		/* the next data, or a hole to feed as zeros without reading it */
		off_t data = lseek(fd, off, SEEK_DATA);

		if (data < 0)
			data = errno == ENXIO ? end : off; /* ENXIO: a hole to the end */
		for (; off < data; off += CHUNK)
			XXH3_64bits_update(x, zero, (size_t)(data - off < CHUNK ? data - off : CHUNK));
		off = data;
		off_t hole = off < end ? lseek(fd, off, SEEK_HOLE) : end;

		if (hole < 0 || hole > end)
			hole = end;
		while (off < hole) {
			size_t want = (size_t)(hole - off < CHUNK ? hole - off : CHUNK);
			ssize_t got = pread(fd, buf, want, off);

			if (got <= 0) {
				snprintf(why, len, "read failed at byte %lld: %s", (long long)off,
					 got < 0 ? strerror(errno) : "the file shrank");
				goto out;
			}
			XXH3_64bits_update(x, buf, (size_t)got);
			off += got;
		}
	}
	*size = (uint64_t)end;
	*hash = XXH3_64bits_digest(x);
	rc = 0;
out:
	XXH3_freeState(x);
	close(fd);
	return rc;
}

/*
 * The backing file a qcow2 at @path names, resolved against its directory,
 * into @out; 1 if there is one, 0 if none or not a qcow2.
 */
static int
qcow2_backing(const char *path, char *out, size_t len)
{
	uint8_t h[20];
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	int rc = 0;

	if (pread(fd, h, sizeof(h), 0) == (ssize_t)sizeof(h) && memcmp(h, "QFI\xfb", 4) == 0) {
		uint64_t at = 0;
		uint32_t n = 0;
		char name[FP_PATH_MAX];

		for (int i = 0; i < 8; i++)
			at = at << 8 | h[8 + i];
		for (int i = 0; i < 4; i++)
			n = n << 8 | h[16 + i];
		if (at && n && n < sizeof(name) && pread(fd, name, n, (off_t)at) == (ssize_t)n) {
			name[n] = 0;
			const char *slash = strrchr(path, '/');

			int w;

			if (name[0] == '/' || slash == NULL || is_protocol(name))
				w = snprintf(out, len, "%s", name);
			else
				w = snprintf(out, len, "%.*s/%s", (int)(slash - path), path, name);
			rc = w > 0 && (size_t)w < len; /* a name too long to open is no name */
		}
	}
	close(fd);
	return rc;
}

/* Append @path as @what, hashed, then its backing chain; the new count. */
static int
add(struct fp_image *out, int n, const char *what, const char *path, uint64_t *bytes)
{
	char next[FP_PATH_MAX];

	for (int depth = 0; n < FP_MAX && depth <= FP_CHAIN_MAX; depth++) {
		struct fp_image *im = &out[n++];

		memset(im, 0, sizeof(*im));
		if (depth == 0)
			snprintf(im->what, sizeof(im->what), "%s", what);
		else
			snprintf(im->what, sizeof(im->what), "%s backing %d", what, depth);
		snprintf(im->path, sizeof(im->path), "%s", path);
		if (is_protocol(path)) {
			snprintf(im->skip, sizeof(im->skip), "not a local file");
			break;
		}
		im->ok = fp_hash_file(path, &im->size, &im->xxh3, im->skip, sizeof(im->skip)) == 0;
		if (im->ok && bytes)
			*bytes += im->size;
		if (!im->ok || !qcow2_backing(im->path, next, sizeof(next)))
			break;
		path = next; /* copied into the next entry before next is written again */
	}
	return n;
}

/* "KIND ID" when option value @v has @idkey, else "KIND #K" (the Kth such option). */
static void
name_of(char *what, size_t len, const char *v, const char *idkey, const char *kind, int k)
{
	char id[64];

	if (opt_get(v, idkey, NULL, id, sizeof(id)))
		snprintf(what, len, "%s %s", kind, id);
	else
		snprintf(what, len, "%s #%d", kind, k);
}

static const char *const plain_opts[] = {
	"hda", "hdb", "hdc", "hdd", "cdrom", "fda", "fdb", "pflash", "mtdblock", "sd",
	"kernel", "initrd", "dtb", NULL,
};

int
fp_scan(int argc, char *const argv[], struct fp_image *out, uint64_t *bytes)
{
	int n = 0, drives = 0, blockdevs = 0;
	char what[FP_WHAT_MAX], path[FP_PATH_MAX], drv[32];

	if (bytes)
		*bytes = 0;
	for (int i = 1; i + 1 < argc && n < FP_MAX; i++) {
		const char *o = argv[i];

		if (o[0] != '-')
			continue;
		o += o[1] == '-' ? 2 : 1;
		const char *v = argv[i + 1];

		if (strcmp(o, "drive") == 0) {
			drives++;
			i++;
			if (!opt_get(v, "file", "file", path, sizeof(path)) || path[0] == 0)
				continue;
			name_of(what, sizeof(what), v, "id", "drive", drives);
			n = add(out, n, what, path, bytes);
		} else if (strcmp(o, "blockdev") == 0) {
			blockdevs++;
			i++;
			if (v[0] == '{') /* JSON: its file nodes are not followed */
				continue;
			if (!opt_get(v, "driver", NULL, drv, sizeof(drv)) ||
			    (strcmp(drv, "file") != 0 && strcmp(drv, "host_device") != 0 &&
			     strcmp(drv, "host_cdrom") != 0) ||
			    !opt_get(v, "filename", NULL, path, sizeof(path)))
				continue;
			name_of(what, sizeof(what), v, "node-name", "blockdev", blockdevs);
			n = add(out, n, what, path, bytes);
		} else {
			for (const char *const *p = plain_opts; *p; p++)
				if (strcmp(o, *p) == 0) {
					i++;
					n = add(out, n, *p, v, bytes);
					break;
				}
		}
	}
	return n;
}

size_t
fp_format(const struct fp_image *im, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s\t%s\t%" PRIu64 "\t%016" PRIx64 "", im->what, im->path,
			 im->ok ? im->size : 0, im->ok ? im->xxh3 : 0);

	if (!im->ok && n >= 0 && (size_t)n < len)
		n += snprintf(buf + n, len - (size_t)n, "\t%s", im->skip);
	return n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
}

int
fp_parse(const char *s, struct fp_image *im)
{
	const char *f[5] = { s };
	size_t nf = 1;

	memset(im, 0, sizeof(*im));
	for (const char *p = s; *p && nf < 5; p++)
		if (*p == '\t')
			f[nf++] = p + 1;
	if (nf < 4)
		return -1;
	snprintf(im->what, sizeof(im->what), "%.*s", (int)(f[1] - f[0] - 1), f[0]);
	snprintf(im->path, sizeof(im->path), "%.*s", (int)(f[2] - f[1] - 1), f[1]);
	char *end;

	im->size = strtoull(f[2], &end, 10);
	if (*end != '\t')
		return -1;
	im->xxh3 = strtoull(f[3], &end, 16);
	if (*end != 0 && *end != '\t')
		return -1;
	im->ok = nf == 4;
	if (!im->ok)
		snprintf(im->skip, sizeof(im->skip), "%s", f[4]);
	return 0;
}

int
fp_compare(const struct fp_image *rec, int nrec, const struct fp_image *now, int nnow,
	   char *why, size_t len)
{
	for (int i = 0; i < nrec; i++) {
		const struct fp_image *r = &rec[i], *c = NULL;

		if (!r->ok)
			continue; /* not checked at record: nothing to compare */
		for (int j = 0; j < nnow && c == NULL; j++)
			if (strcmp(now[j].what, r->what) == 0)
				c = &now[j];
		if (c == NULL) {
			snprintf(why, len, "%s (%s) was read by the recording, but this command line "
				 "has no %s", r->what, r->path, r->what);
			return -1;
		}
		if (!c->ok) {
			snprintf(why, len, "%s (%s): %s; the recording read %" PRIu64 " bytes with "
				 "xxh3 %016" PRIx64, c->what, c->path, c->skip, r->size, r->xxh3);
			return -1;
		}
		if (c->size != r->size || c->xxh3 != r->xxh3) {
			snprintf(why, len, "%s (%s) is not the file the recording read: it has %" PRIu64
				 " bytes with xxh3 %016" PRIx64 ", the recording's had %" PRIu64
				 " bytes with xxh3 %016" PRIx64 " (restore it as it was when the "
				 "recording started)", c->what, c->path, c->size, c->xxh3, r->size,
				 r->xxh3);
			return -1;
		}
	}
	return 0;
}

int
fp_shares(int argc, char *const argv[], struct fp_share *out, int max)
{
	int n = 0;
	char drv[32];

	for (int i = 1; i + 1 < argc && n < max; i++) {
		const char *o = argv[i];

		if (o[0] != '-')
			continue;
		o += o[1] == '-' ? 2 : 1;
		const char *v = argv[i + 1];
		struct fp_share *sh = &out[n];

		if (strcmp(o, "fsdev") != 0 && strcmp(o, "virtfs") != 0)
			continue;
		i++;
		/* the local backend only: proxy and synth read no host directory of ours */
		if (!opt_get(v, "fsdriver", "fsdriver", drv, sizeof(drv)) || strcmp(drv, "local") != 0 ||
		    !opt_get(v, "path", NULL, sh->path, sizeof(sh->path)))
			continue;
		/* -fsdev names it by id=; -virtfs by id=, else by its mount_tag= */
		if (!opt_get(v, "id", NULL, sh->id, sizeof(sh->id)) &&
		    !opt_get(v, "mount_tag", NULL, sh->id, sizeof(sh->id)))
			continue;
		n++;
	}
	return n;
}

size_t
fp_format_read(const char *share, const char *rel, uint64_t size, uint64_t xxh3, char *buf,
	       size_t len)
{
	int n = snprintf(buf, len, "%s\t%s\t%" PRIu64 "\t%016" PRIx64, share, rel, size, xxh3);

	return n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
}

int
fp_check_read(const char *text, size_t tlen, const struct fp_share *shares, int nshares,
	      char *why, size_t len)
{
	char t[FP_READ_MAX + 1], path[FP_PATH_MAX + FP_READ_MAX + 2], e[160];
	const char *f[4];

	/* share, then the path (which may hold a tab), then size and xxh3 from the right */
	snprintf(t, sizeof(t), "%.*s", (int)tlen, text);
	char *t1 = strchr(t, '\t'), *t3 = strrchr(t, '\t'), *t2 = NULL;

	if (t1 != NULL && t3 > t1) {
		*t3 = 0;
		t2 = strrchr(t1 + 1, '\t');
	}
	if (t2 == NULL) {
		snprintf(why, len, "a file_read event that is not \"share\\tpath\\tsize\\txxh3\" (an "
			 "altered log?)");
		return -1;
	}
	*t1 = *t2 = 0;
	f[0] = t, f[1] = t1 + 1, f[2] = t2 + 1, f[3] = t3 + 1;
	uint64_t size = strtoull(f[2], NULL, 10), xxh3 = strtoull(f[3], NULL, 16), s2, x2;
	const struct fp_share *sh = NULL;
	struct stat st;

	for (int k = 0; k < nshares && sh == NULL; k++)
		if (strcmp(shares[k].id, f[0]) == 0)
			sh = &shares[k];
	if (sh == NULL) {
		snprintf(why, len, "the recording's guest read %s from 9p share %s, which this "
			 "command line does not have", f[1], f[0]);
		return -1;
	}
	/* a path in the share, never out of it (an altered log) */
	if (f[1][0] == '/' || strcmp(f[1], "..") == 0 || strncmp(f[1], "../", 3) == 0 ||
	    strstr(f[1], "/../") != NULL || (strlen(f[1]) >= 3 && strcmp(f[1] + strlen(f[1]) - 3, "/..") == 0)) {
		snprintf(why, len, "a file_read event names %s, which is not a path inside 9p share %s "
			 "(an altered log?)", f[1], f[0]);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/%s", sh->path, f[1]);
	/* QEMU opens a share's files without following a last symlink: so does the check */
	if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		snprintf(why, len, "9p share %s (%s): the recording's guest read %s; now it is not a "
			 "regular file", f[0], sh->path, f[1]);
		return -1;
	}
	if (fp_hash_file(path, &s2, &x2, e, sizeof(e)) < 0) {
		snprintf(why, len, "9p share %s (%s): the recording's guest read %s; now %s", f[0],
			 sh->path, f[1], e);
		return -1;
	}
	if (s2 != size || x2 != xxh3) {
		snprintf(why, len, "9p share %s (%s): %s is not the file the recording's guest read "
			 "(%" PRIu64 " bytes, xxh3 %016" PRIx64 "; recorded %" PRIu64 " bytes, xxh3 "
			 "%016" PRIx64 ")", f[0], sh->path, f[1], s2, x2, size, xxh3);
		return -1;
	}
	return 0;
}
