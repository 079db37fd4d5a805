/*
 * fingerprint.h - the disk images (and kernels) a recording read, named by
 * content.  A replay is only the same run if the guest reads the same bytes:
 * record stores an xxh3 of every file the command line gives the guest, and
 * of each qcow2 backing file under it; `bhrr replay` recomputes them before
 * QEMU starts and refuses, naming the drive and the file, when one differs.
 *
 * Pure functions of the command line and the files: used by the shim (at
 * record, before QEMU opens anything) and by the tools (at replay).  No
 * shared state; any thread.
 */
#ifndef BHRR_FINGERPRINT_H
#define BHRR_FINGERPRINT_H

#include <stddef.h>
#include <stdint.h>

#define FP_MAX 32           /* files fingerprinted per command line */
#define FP_WHAT_MAX 96
#define FP_PATH_MAX 1024
#define FP_CHAIN_MAX 16     /* backing files followed under one image */

struct fp_image {
	char what[FP_WHAT_MAX];   /* "drive d0", "hda", "kernel", "drive #2 backing 1" */
	char path[FP_PATH_MAX];   /* as QEMU will open it (relative to its directory) */
	uint64_t size;            /* bytes */
	uint64_t xxh3;            /* of the whole file, holes read as zeros */
	int ok;                   /* size and xxh3 are known */
	char skip[160];           /* why not, when !ok: "json: file names are not followed" */
};

/*
 * The files QEMU command line @argv gives the guest to read: -drive file=,
 * -hda..-hdd, -cdrom, -fda/-fdb, -pflash, -mtdblock, -sd, -blockdev
 * driver=file filename=, -kernel, -initrd, -dtb; and each qcow2's backing
 * chain.  Fills at most FP_MAX entries of @out and hashes each (a file that
 * cannot be read gets ok = 0 and the reason in skip).  Returns the count;
 * *@bytes (if not NULL) gets the bytes hashed.
 */
int fp_scan(int argc, char *const argv[], struct fp_image *out, uint64_t *bytes);

/* Header form: "what\tpath\tsize\txxh3-hex" into @buf; its length. */
size_t fp_format(const struct fp_image *im, char *buf, size_t len);
/* Back from the header form; 0, or -1 if @s is not one. */
int fp_parse(const char *s, struct fp_image *im);

/*
 * Compare what was recorded (@rec, @nrec, from a log header) with what the
 * command line about to be replayed reads now (@now, @nnow), by `what`.
 * Returns 0 when every recorded file that could be hashed is the same, or
 * -1 with @why naming the first drive and file that differ or went missing.
 */
int fp_compare(const struct fp_image *rec, int nrec, const struct fp_image *now, int nnow,
	       char *why, size_t len);

/* xxh3 and size of the regular file @path, holes read as zeros; 0, or -1 with @why. */
int fp_hash_file(const char *path, uint64_t *size, uint64_t *xxh3, char *why, size_t len);

/*
 * 9p shares: the host directories a command line gives the guest through
 * the local backend (-fsdev local,id=ID,path=DIR and -virtfs
 * local,path=DIR,mount_tag=TAG[,id=ID]), named by their fsdev id (for
 * -virtfs without id=, its mount_tag).  The guest's reads of their files
 * are recorded as file_read events (shim/gate_fs.c), checked by `bhrr
 * replay` before QEMU starts.
 */
struct fp_share {
	char id[64];
	char path[FP_PATH_MAX];
};

/* The shares of @argv, at most @max into @out; their count. */
int fp_shares(int argc, char *const argv[], struct fp_share *out, int max);

/* The longest file_read text (log.h's LOG_TEXT_MAX): longer ones are not recorded. */
#define FP_READ_MAX 4096

/* file_read's text: "share\tpath-in-share\tsize\txxh3-hex" into @buf; its length. */
size_t fp_format_read(const char *share, const char *rel, uint64_t size, uint64_t xxh3, char *buf,
		      size_t len);

/*
 * Whether the file a file_read event (@text) names reads the same now, in
 * the share of that name among @shares: 0, or -1 with @why naming the
 * share, its directory, the file and both fingerprints.
 */
int fp_check_read(const char *text, size_t tlen, const struct fp_share *shares, int nshares,
		  char *why, size_t len);

#endif
