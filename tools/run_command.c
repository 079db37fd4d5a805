/*
 * run_command.c - starting, waiting for and quoting child processes: the
 * one place the CLI forks (see run_command.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd.h"
#include "grow.h"
#include "run_command.h"

#define RUNDIR "{rundir}"

/* ---- strvec ---- */

/* Append @s, which the vector takes over. */
static void
strvec_take(struct strvec *sv, char *s)
{
	if (s == NULL || GROW(sv->v, sv->n + 1, sv->cap) < 0)
		die("out of memory");
	sv->v[sv->n++] = s;
	sv->v[sv->n] = NULL;
}

void
strvec_push(struct strvec *sv, const char *s)
{
	strvec_take(sv, strdup(s));
}

void
strvec_pushf(struct strvec *sv, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	strvec_take(sv, s);
}

void
strvec_pushl(struct strvec *sv, ...)
{
	va_list ap;
	const char *s;

	va_start(ap, sv);
	while ((s = va_arg(ap, const char *)) != NULL)
		strvec_push(sv, s);
	va_end(ap);
}

void
strvec_pushv(struct strvec *sv, char *const *argv)
{
	for (; *argv; argv++)
		strvec_push(sv, *argv);
}

void
strvec_push_subst(struct strvec *sv, char *const *argv, int argc, const char *dir)
{
	for (int i = 0; i < argc; i++)
		strvec_take(sv, dir ? subst_rundir(argv[i], dir) : strdup(argv[i]));
}

void
strvec_clear(struct strvec *sv)
{
	for (size_t i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	*sv = (struct strvec)STRVEC_INIT;
}

/* ---- child processes ---- */

/* In the child: make @fd read or write @path, or exit 127 saying why. */
static void
child_redirect(int fd, const char *path, int flags)
{
	int f;

	if (path == NULL)
		return;
	f = open(path, flags, 0666);
	if (f < 0) {
		fprintf(stderr, "bhrr: cannot open '%s': %s\n", path, strerror(errno));
		_exit(127);
	}
	if (f != fd) {
		dup2(f, fd);
		close(f);
	}
}

/* In the child: set up as @cp says and execute, or exit 127 saying why. */
static void __attribute__((noreturn))
child_exec(const struct child_process *cp)
{
	const char *prog = cp->program ? cp->program : cp->args.v[0];

	for (size_t i = 0; i < cp->env.n; i++) {
		char *eq = strchr(cp->env.v[i], '=');

		if (eq)
			putenv(cp->env.v[i]);
		else
			unsetenv(cp->env.v[i]);
	}
	if (cp->dir && chdir(cp->dir) < 0) {
		fprintf(stderr, "bhrr: cannot change to directory '%s': %s\n", cp->dir,
			strerror(errno));
		_exit(127);
	}
	child_redirect(0, cp->in, O_RDONLY);
	child_redirect(1, cp->out, O_WRONLY | O_CREAT | O_TRUNC);
	child_redirect(2, cp->err, O_WRONLY | O_CREAT | O_TRUNC);
	if (cp->program)
		execv(prog, cp->args.v);
	else
		execvp(prog, cp->args.v);
	fprintf(stderr, "bhrr: cannot run '%s': %s\n", prog, strerror(errno));
	_exit(127);
}

int
start_command(struct child_process *cp)
{
	if (cp->args.n == 0)
		die("start_command: no program to run");
	fflush(NULL);
	cp->pid = fork();
	if (cp->pid < 0)
		return -1;
	if (cp->pid == 0)
		child_exec(cp);
	return 0;
}

/* Fill @cp's status from the wait status @st and free its vectors. */
static int
child_ended(struct child_process *cp, int st)
{
	cp->signal = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
	cp->status = cp->signal ? 128 + cp->signal : WEXITSTATUS(st);
	strvec_clear(&cp->args);
	strvec_clear(&cp->env);
	return cp->status;
}

int
finish_command(struct child_process *cp)
{
	int st;

	while (waitpid(cp->pid, &st, 0) < 0)
		if (errno != EINTR)
			die("cannot wait for process %d: %s", (int)cp->pid, strerror(errno));
	return child_ended(cp, st);
}

int
run_command(struct child_process *cp)
{
	if (start_command(cp) < 0) {
		strvec_clear(&cp->args);
		strvec_clear(&cp->env);
		return -1;
	}
	return finish_command(cp);
}

struct child_process *
finish_any_command(struct child_process *const *cps, size_t n)
{
	for (;;) {
		int st;
		pid_t pid = waitpid(-1, &st, 0);

		if (pid < 0) {
			if (errno == EINTR)
				continue;
			return NULL;
		}
		for (size_t i = 0; i < n; i++)
			if (cps[i] && cps[i]->pid == pid) {
				child_ended(cps[i], st);
				return cps[i];
			}
	}
}

const char *
self_exe(void)
{
	static char self[4096];
	ssize_t n;

	if (self[0])
		return self;
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		die("cannot find my own executable: %s", strerror(errno));
	self[n] = 0;
	return self;
}

/* ---- {rundir} and quoting ---- */

char *
subst_rundir(const char *s, const char *dir)
{
	size_t len = strlen(s) + 1, k = strlen(RUNDIR);
	const char *p;

	for (p = s; (p = strstr(p, RUNDIR)); p += k)
		len += strlen(dir);
	char *d = malloc(len), *o = d;

	if (d == NULL)
		die("out of memory");
	while ((p = strstr(s, RUNDIR))) {
		memcpy(o, s, (size_t)(p - s));
		o += p - s;
		o = stpcpy(o, dir);
		s = p + k;
	}
	strcpy(o, s);
	return d;
}

void
sq_quote(FILE *f, const char *s)
{
	static const char safe[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				   "0123456789_-+=./,:@%";

	if (*s && strspn(s, safe) == strlen(s)) {
		fputs(s, f);
		return;
	}
	fputc('\'', f);
	for (; *s; s++)
		if (*s == '\'')
			fputs("'\\''", f);
		else
			fputc(*s, f);
	fputc('\'', f);
}

void
sq_quote_argv(FILE *f, char *const *argv, int argc)
{
	for (int i = 0; i < argc; i++) {
		fputc(' ', f);
		sq_quote(f, argv[i]);
	}
}
