/*
 * rundir.c - flake's and bisect's run directories: made, prepared by
 * --before, and judged (see rundir.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd.h"
#include "rundir.h"

int
rundir_parse_opt(int argc, char **argv, int *i, struct judge *j)
{
	if (*i + 1 >= argc)
		return 0;
	if (strcmp(argv[*i], "--expect-status") == 0)
		j->expect = atoi(argv[++*i]);
	else if (strcmp(argv[*i], "--fail-if") == 0)
		j->fail_if = argv[++*i];
	else if (strcmp(argv[*i], "--before") == 0)
		j->before = argv[++*i];
	else
		return 0;
	return 1;
}

void
rundir_mkdirs(const char *path)
{
	char tmp[4096];

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++)
		if (*p == '/') {
			*p = 0;
			mkdir(tmp, 0777);
			*p = '/';
		}
	if (mkdir(tmp, 0777) < 0 && errno != EEXIST)
		die("cannot create directory '%s': %s", path, strerror(errno));
}

/*
 * sh -c @sh_cmd in @dir with the variables of run @run; with @status >= 0
 * (the run ended), also its status and output files.  Its exit status, or
 * -1 if it cannot start.
 */
static int
rundir_sh(const char *sh_cmd, const char *dir, int run, int status)
{
	struct child_process cp = CHILD_PROCESS_INIT;

	cp.program = "/bin/sh";
	cp.dir = dir;
	strvec_pushl(&cp.args, "sh", "-c", sh_cmd, NULL);
	strvec_pushf(&cp.env, "BHRR_RUN=%d", run);
	strvec_pushf(&cp.env, "BHRR_RUN_DIR=%s", dir);
	if (status >= 0) {
		strvec_pushf(&cp.env, "BHRR_STATUS=%d", status);
		strvec_pushf(&cp.env, "BHRR_STDOUT=%s/stdout", dir);
		strvec_pushf(&cp.env, "BHRR_STDERR=%s/stderr", dir);
	}
	return run_command(&cp);
}

void
rundir_make(const struct judge *j, const char *base, int run, const char *cmd, char *dir,
	    size_t len)
{
	snprintf(dir, len, "%s/run-%d", base, run);
	rundir_mkdirs(dir);
	if (j->before && rundir_sh(j->before, dir, run, -1) != 0)
		die("%s: --before '%s' failed in %s", cmd, j->before, dir);
}

int
rundir_failed(const struct judge *j, const char *dir, int run, int status)
{
	if (j->fail_if)
		return rundir_sh(j->fail_if, dir, run, status) == 0;
	return status != j->expect;
}

void
rundir_start_bhrr(struct child_process *cp, const char *dir)
{
	char out[4200], err[4200];

	snprintf(out, sizeof(out), "%s/stdout", dir);
	snprintf(err, sizeof(err), "%s/stderr", dir);
	cp->program = self_exe();
	cp->out = out;
	cp->err = err;
	if (start_command(cp) < 0)
		die("cannot fork: %s", strerror(errno));
	cp->out = cp->err = NULL;
}

void
rundir_print_before(const struct judge *j, const char *dir, int mkdir)
{
	if (j->before == NULL)
		return;
	if (mkdir) {
		printf("mkdir -p ");
		sq_quote(stdout, dir);
		printf(" && ");
	}
	printf("(cd ");
	sq_quote(stdout, dir);
	printf(" && %s) && ", j->before);
}
