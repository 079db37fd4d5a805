/*
 * rundir.h - what bhrr flake and bhrr bisect share: a run directory for each
 * QEMU they run, prepared by --before, and the verdict on the run in it.
 *
 * "{rundir}" in the QEMU arguments becomes that directory, and --before CMD
 * runs there first (with BHRR_RUN and BHRR_RUN_DIR set) - to give each run
 * fresh disks.  A run fails when its exit status differs from
 * --expect-status (default 0), or, with --fail-if CMD, when CMD exits 0;
 * CMD runs in the run directory with BHRR_STATUS, BHRR_STDOUT and
 * BHRR_STDERR set.
 */
#ifndef BHRR_RUNDIR_H
#define BHRR_RUNDIR_H

#include <stddef.h>

#include "run_command.h"

struct judge {
	int expect;          /* the passing exit status */
	const char *fail_if; /* or a predicate command */
	const char *before;  /* run in each run directory first */
};

/*
 * If argv[*i] is --expect-status, --fail-if or --before (with its value),
 * store it in @j, step *@i past the value and return 1; else 0.
 */
int rundir_parse_opt(int argc, char **argv, int *i, struct judge *j);

/* Create @path and its parents (mkdir -p); exits on failure. */
void rundir_mkdirs(const char *path);

/*
 * Create the directory of run @run, "BASE/run-RUN", into @dir (@len bytes)
 * and run --before in it.  Exits, naming @cmd, if --before fails.
 */
void rundir_make(const struct judge *j, const char *base, int run, const char *cmd, char *dir,
		 size_t len);

/*
 * Whether run @run in @dir, which exited with @status, failed: by
 * --fail-if, else by --expect-status.
 */
int rundir_failed(const struct judge *j, const char *dir, int run, int status);

/*
 * Start this bhrr with @cp's args ("bhrr", SUBCOMMAND, ...), its stdout and
 * stderr in the files "stdout" and "stderr" of @dir.  Exits if it cannot
 * fork.
 */
void rundir_start_bhrr(struct child_process *cp, const char *dir);

/*
 * Print on stdout what prepares @dir for a run by hand, as the start of a
 * sh command line: "(cd DIR && BEFORE) && ", after "mkdir -p DIR && " with
 * @mkdir; nothing without --before.
 */
void rundir_print_before(const struct judge *j, const char *dir, int mkdir);

#endif
