/*
 * test_fingerprint.c - which files a QEMU command line gives the guest, how
 * they are hashed (holes as zeros), qcow2 backing chains, the header form,
 * and the comparison replay makes.  Files are made in a temporary directory;
 * the qcow2 headers are written by hand from the format's first 20 bytes.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fingerprint.h"
#include "tap.h"

static char dir[64];

static void
write_file(const char *name, const void *data, size_t len, off_t at)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT, 0644);

	if (fd < 0 || pwrite(fd, data, len, at) != (ssize_t)len)
		perror(path);
	close(fd);
}

/* A qcow2 header naming @backing (relative), padded to 512 bytes. */
static void
write_qcow2(const char *name, const char *backing)
{
	uint8_t h[512] = { 'Q', 'F', 'I', 0xfb, 0, 0, 0, 3 };
	uint32_t n = (uint32_t)strlen(backing);

	h[15] = 200; /* backing_file_offset (big-endian u64) */
	h[16] = (uint8_t)(n >> 24), h[17] = (uint8_t)(n >> 16), h[18] = (uint8_t)(n >> 8), h[19] = (uint8_t)n;
	memcpy(h + 200, backing, n);
	write_file(name, h, sizeof(h), 0);
}

static int
scan(const char *const *argv, struct fp_image *im)
{
	int argc = 0;

	while (argv[argc])
		argc++;
	return fp_scan(argc, (char *const *)argv, im, NULL);
}

static void
options(void)
{
	char a[256], b[256], c[256], k[256], q[256], comma[256], drive[512], blockdev[512];
	struct fp_image im[FP_MAX];

	snprintf(a, sizeof(a), "%s/a.img", dir);
	snprintf(b, sizeof(b), "%s/b.img", dir);
	snprintf(c, sizeof(c), "%s/c.img", dir);
	snprintf(k, sizeof(k), "%s/k.elf", dir);
	snprintf(q, sizeof(q), "%s/q.qcow2", dir);
	snprintf(comma, sizeof(comma), "%s/x,,y.img", dir); /* QEMU's ",," for a comma */
	write_file("a.img", "aaaa", 4, 0);
	write_file("b.img", "bbbb", 4, 0);
	write_file("c.img", "cccc", 4, 0);
	write_file("k.elf", "kernel", 6, 0);
	write_file("x,y.img", "xy", 2, 0);
	write_qcow2("q.qcow2", "a.img");

	snprintf(drive, sizeof(drive), "if=none,id=d0,file=%s,format=raw", b);
	snprintf(blockdev, sizeof(blockdev), "driver=file,node-name=n1,filename=%s", c);
	const char *argv[] = { "qemu", "-kernel", k, "-drive", drive, "--hda", a, "-blockdev", blockdev,
			       "-drive", NULL, "-append", "file=/not/read", NULL };
	char implied[512], esc[512];

	snprintf(implied, sizeof(implied), "%s,if=ide", q);
	argv[10] = implied;
	int n = scan(argv, im);

	ok(n == 6, "kernel, drive d0, hda, blockdev n1, drive #2 and its backing file: %d", n);
	ok(n == 6 && strcmp(im[0].what, "kernel") == 0 && strcmp(im[0].path, k) == 0 && im[0].ok &&
	       im[0].size == 6, "-kernel: what, path, size");
	ok(n == 6 && strcmp(im[1].what, "drive d0") == 0 && strcmp(im[1].path, b) == 0,
	   "-drive id=d0,file=: \"%s\"", n == 6 ? im[1].what : "");
	ok(n == 6 && strcmp(im[2].what, "hda") == 0, "--hda is -hda");
	ok(n == 6 && strcmp(im[3].what, "blockdev n1") == 0 && strcmp(im[3].path, c) == 0,
	   "-blockdev driver=file,node-name=n1,filename=");
	ok(n == 6 && strcmp(im[4].what, "drive #2") == 0 && strcmp(im[4].path, q) == 0,
	   "-drive with an implied file and no id: \"drive #2\"");
	ok(n == 6 && strcmp(im[5].what, "drive #2 backing 1") == 0 && strcmp(im[5].path, a) == 0 &&
	       im[5].xxh3 == im[2].xxh3, "the qcow2's backing file, resolved next to it: %s",
	   n == 6 ? im[5].path : "");

	snprintf(esc, sizeof(esc), "file=%s,id=e", comma);
	const char *argv2[] = { "qemu", "-drive", esc, "-drive", "file=nbd:localhost:10809",
				"-blockdev", "{\"driver\":\"file\"}", "-hdb", "/no/such.img", NULL };

	n = scan(argv2, im);
	ok(n == 3 && strcmp(im[0].what, "drive e") == 0 && im[0].ok && im[0].size == 2,
	   "\",,\" in a file name is a comma: %s", n ? im[0].path : "");
	ok(n == 3 && !im[1].ok && strcmp(im[1].skip, "not a local file") == 0,
	   "nbd: is named, not hashed (%s)", n > 1 ? im[1].skip : "");
	ok(n == 3 && !im[2].ok && strstr(im[2].skip, "No such file") != NULL,
	   "a missing file is named with the reason (%s)", n > 2 ? im[2].skip : "");
}

static void
holes(void)
{
	struct fp_image dense, sparse;
	static uint8_t zeros[3 << 20];
	char dp[256], sp[256];

	zeros[(2 << 20) + 5] = 'x'; /* data after two MiB of zeros */
	write_file("dense.img", zeros, sizeof(zeros), 0);
	write_file("sparse.img", "x", 1, (2 << 20) + 5);
	snprintf(sp, sizeof(sp), "%s/sparse.img", dir);
	if (truncate(sp, sizeof(zeros)) < 0)
		perror(sp);
	snprintf(dp, sizeof(dp), "%s/dense.img", dir);
	const char *a1[] = { "qemu", "-hda", dp, NULL }, *a2[] = { "qemu", "-hda", sp, NULL };

	scan(a1, &dense);
	scan(a2, &sparse);
	ok(dense.ok && sparse.ok && dense.size == sparse.size && dense.xxh3 == sparse.xxh3,
	   "a sparse file hashes as its dense copy (%016llx, %016llx)", (unsigned long long)dense.xxh3,
	   (unsigned long long)sparse.xxh3);
}

static void
header_form_and_compare(void)
{
	struct fp_image rec[2], back, now[2];
	char buf[2048], why[2048];

	memset(rec, 0, sizeof(rec));
	snprintf(rec[0].what, sizeof(rec[0].what), "drive d0");
	snprintf(rec[0].path, sizeof(rec[0].path), "/x/disk0.img");
	rec[0].size = 1048576, rec[0].xxh3 = 0x0123456789abcdefull, rec[0].ok = 1;
	snprintf(rec[1].what, sizeof(rec[1].what), "drive d1");
	snprintf(rec[1].path, sizeof(rec[1].path), "nbd:h:1");
	snprintf(rec[1].skip, sizeof(rec[1].skip), "not a local file");
	fp_format(&rec[0], buf, sizeof(buf));
	ok(strcmp(buf, "drive d0\t/x/disk0.img\t1048576\t0123456789abcdef") == 0, "header form: %s",
	   buf);
	ok(fp_parse(buf, &back) == 0 && back.ok && back.size == rec[0].size &&
	       back.xxh3 == rec[0].xxh3 && strcmp(back.path, rec[0].path) == 0,
	   "and back");
	fp_format(&rec[1], buf, sizeof(buf));
	ok(fp_parse(buf, &back) == 0 && !back.ok && strcmp(back.skip, "not a local file") == 0,
	   "an unhashed file keeps its reason: %s", buf);
	ok(fp_parse("drive d0\tno size", &back) < 0, "a malformed form is refused");

	memcpy(now, rec, sizeof(now));
	ok(fp_compare(rec, 2, now, 2, why, sizeof(why)) == 0, "the same files compare equal");
	now[0].xxh3 ^= 1;
	ok(fp_compare(rec, 2, now, 2, why, sizeof(why)) < 0 &&
	       strstr(why, "drive d0 (/x/disk0.img) is not the file the recording read") != NULL,
	   "a changed one is named: %s", why);
	ok(fp_compare(rec, 2, now + 1, 1, why, sizeof(why)) < 0 &&
	       strstr(why, "this command line has no drive d0") != NULL,
	   "a missing drive is named: %s", why);
}

/* 9p shares: which options name one, and the replay's check of a file the guest read */
static void
shares(void)
{
	char fsdev[512], virtfs[512], virtfs_id[512], rec[512], why[1024];
	struct fp_share sh[4];

	snprintf(fsdev, sizeof(fsdev), "local,id=fs0,path=%s,security_model=none,readonly=on", dir);
	snprintf(virtfs, sizeof(virtfs), "local,path=%s,mount_tag=host1,security_model=none", dir);
	snprintf(virtfs_id, sizeof(virtfs_id), "local,path=%s/sub,mount_tag=t,id=v2,security_model=none", dir);
	const char *argv[] = { "qemu", "-fsdev", fsdev, "-fsdev", "proxy,id=p,socket=/x",
			       "--virtfs", virtfs, "-virtfs", virtfs_id, "-fsdev", "synth,id=s", NULL };
	int argc = 0;

	while (argv[argc])
		argc++;
	int n = fp_shares(argc, (char *const *)argv, sh, 4);

	ok(n == 3 && strcmp(sh[0].id, "fs0") == 0 && strcmp(sh[0].path, dir) == 0,
	   "-fsdev local names its share by id: %d %s", n, n > 0 ? sh[0].id : "");
	ok(n == 3 && strcmp(sh[1].id, "host1") == 0, "-virtfs without id= by its mount_tag");
	ok(n == 3 && strcmp(sh[2].id, "v2") == 0, "-virtfs with id= by its id; proxy and synth are no shares");

	write_file("f1", "hello", 5, 0);
	size_t len = fp_format_read("fs0", "f1", 5, 0, rec, sizeof(rec));
	uint64_t size, x;

	ok(fp_hash_file(strcat(strcpy(why, dir), "/f1"), &size, &x, why, sizeof(why)) == 0 && size == 5,
	   "a share's file hashes");
	len = fp_format_read("fs0", "f1", size, x, rec, sizeof(rec));
	ok(fp_check_read(rec, len, sh, n, why, sizeof(why)) == 0, "an unchanged file passes: %s", rec);
	write_file("f1", "HELLO", 5, 0);
	ok(fp_check_read(rec, len, sh, n, why, sizeof(why)) < 0 &&
	       strstr(why, "f1 is not the file the recording's guest read (5 bytes") != NULL,
	   "a changed file is named: %s", why);
	len = fp_format_read("fs0", "gone", 5, x, rec, sizeof(rec));
	ok(fp_check_read(rec, len, sh, n, why, sizeof(why)) < 0 &&
	       strstr(why, "the recording's guest read gone; now cannot read it") != NULL,
	   "a missing file is named: %s", why);
	len = fp_format_read("fs9", "f1", 5, x, rec, sizeof(rec));
	ok(fp_check_read(rec, len, sh, n, why, sizeof(why)) < 0 &&
	       strstr(why, "9p share fs9, which this command line does not have") != NULL,
	   "a missing share is named: %s", why);
	ok(fp_check_read("fs0\tf1", 6, sh, n, why, sizeof(why)) < 0, "a malformed event is refused");
	len = fp_format_read("fs0", "../etc/passwd", 5, x, rec, sizeof(rec));
	ok(fp_check_read(rec, len, sh, n, why, sizeof(why)) < 0 &&
	       strstr(why, "not a path inside 9p share fs0") != NULL,
	   "a path out of the share is refused: %s", why);
}

int
main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/bhrr-test-fp.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return 1;
	options();
	holes();
	header_form_and_compare();
	shares();
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		ok(0, "cleaning up %s", dir);
	return tap_done();
}
