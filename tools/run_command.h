/*
 * run_command.h - the CLI's one way to run a child process, modelled on
 * git's run-command.h: fill a struct child_process, then start_command() and
 * finish_command(), or run_command() for both.  Also the argument vectors it
 * takes, "{rundir}" substitution and quoting for sh.
 *
 *	struct child_process cp = CHILD_PROCESS_INIT;
 *
 *	strvec_pushl(&cp.args, "sh", "-c", "make", NULL);
 *	strvec_pushf(&cp.env, "BHRR_RUN=%d", run);
 *	cp.dir = dir;
 *	status = run_command(&cp);
 *
 * Not thread-safe; the tools are single-threaded.
 */
#ifndef BHRR_RUN_COMMAND_H
#define BHRR_RUN_COMMAND_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

/* A NULL-terminated vector of strings it owns. */
struct strvec {
	char **v;     /* v[n] == NULL once anything was pushed */
	size_t n, cap;
};

#define STRVEC_INIT { NULL, 0, 0 }

/* Append a copy of @s.  Exits on out of memory, like all strvec calls. */
void strvec_push(struct strvec *sv, const char *s);
/* Append a printf-formatted string. */
void strvec_pushf(struct strvec *sv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append each argument up to a NULL. */
void strvec_pushl(struct strvec *sv, ...) __attribute__((sentinel));
/* Append each string of the NULL-terminated @argv. */
void strvec_pushv(struct strvec *sv, char *const *argv);
/* Append @argv[0..argc), each with "{rundir}" replaced by @dir (NULL: as is). */
void strvec_push_subst(struct strvec *sv, char *const *argv, int argc, const char *dir);
/* Free the strings and the vector; it is empty and reusable after. */
void strvec_clear(struct strvec *sv);

/*
 * What to run and how.  program, dir, in, out and err are read only by
 * start_command(): they need to live until it returns.
 */
struct child_process {
	struct strvec args;   /* argv; args.v[0] is the name the child sees */
	struct strvec env;    /* "NAME=VALUE" set in the child, "NAME" unset */
	const char *program;  /* the file to execute; NULL: args.v[0], searched in PATH */
	const char *dir;      /* the child changes to this directory first; NULL: stays */
	const char *in;       /* stdin from this file; NULL: inherited */
	const char *out;      /* stdout to this file (created or truncated); NULL: inherited */
	const char *err;      /* stderr likewise */
	pid_t pid;            /* set by start_command(), kept after finish */
	int status;           /* set by finish: exit status, or 128 + the signal */
	int signal;           /* set by finish: the signal that ended it, or 0 */
};

#define CHILD_PROCESS_INIT { STRVEC_INIT, STRVEC_INIT, NULL, NULL, NULL, NULL, NULL, 0, 0, 0 }

/*
 * Start @cp (stdio is flushed first so the child does not repeat buffered
 * output).  A child that cannot set itself up or execute the program says
 * so on its stderr, "bhrr: cannot run 'PROG': ...", and exits 127.
 * Returns 0, or -1 with errno set if it cannot fork.
 */
int start_command(struct child_process *cp);

/*
 * Wait for the started @cp to end, fill cp->status and cp->signal and free
 * its args and env.  Returns cp->status.
 */
int finish_command(struct child_process *cp);

/* start_command() then finish_command(): the status, or -1 if it cannot start. */
int run_command(struct child_process *cp);

/*
 * Wait until any of the @n started children in @cps ends (NULL entries are
 * skipped) and finish it.  Returns that child, or NULL if none is left.
 */
struct child_process *finish_any_command(struct child_process *const *cps, size_t n);

/* The path of this executable (/proc/self/exe); exits if it cannot be read. */
const char *self_exe(void);

/*
 * A copy of @s with every "{rundir}" replaced by @dir, malloc'd; exits on
 * out of memory.
 */
char *subst_rundir(const char *s, const char *dir);

/* Print @s to @f quoted for sh where it needs it (as is when it is all safe characters). */
void sq_quote(FILE *f, const char *s);

/* Print @argv[0..argc) to @f, each after a space and quoted for sh. */
void sq_quote_argv(FILE *f, char *const *argv, int argc);

#endif
