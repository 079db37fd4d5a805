/*
 * gate_fs.h - what the guest read from the host's 9p shares.
 *
 * A 9p share (-fsdev local / -virtfs local) hands the guest the host's
 * files: their contents are an input of the recording as much as a disk
 * image is.  The 9p requests themselves need nothing here: QEMU's local
 * backend runs each in a thread-pool worker (v9fs_co_run_in_worker) and
 * its completion comes back through the thread pool, which gate_io.c
 * already lands at an exact icount.  What a replay cannot reproduce is a
 * file that changed on the host since: so while recording, every regular
 * file of a share that QEMU opens (openat64, which libbhrr.so interposes;
 * the local backend opens each file that way) to read is fingerprinted
 * once, at its first such open, before QEMU reads it, as a file_read event
 * ("share\tpath\tsize\txxh3"), and
 * `bhrr replay` checks them all before QEMU starts, naming the first file
 * that differs (fingerprint.h's fp_check_read).
 *
 * Wherever a share exists, in record and replay, QEMU's opens to read get
 * O_NOATIME (and the interposed fcntl64 keeps it through the backend's
 * F_SETFL), so that neither moves the access times the guest sees.
 *
 * Threads: gate_fs_start runs in the constructor; the interposed openat64
 * and fcntl64 run in any thread (QEMU opens from its 9p workers); openat64
 * hashes there, and takes fs_mu only for the set of files already
 * fingerprinted.
 */
#ifndef BHRR_GATE_FS_H
#define BHRR_GATE_FS_H

/*
 * Start fingerprinting the shares of command line @argv when @recording
 * (exact, ordering or chaos); in every mode, QEMU's opens to read (where a
 * share exists) then leave access times alone (O_NOATIME).  Constructor
 * only.
 */
void gate_fs_start(int recording, int argc, char *const argv[]);

/* Files fingerprinted so far; any thread. */
unsigned long long gate_fs_files(void);

#endif
