/*
 * cmd.h - what the bhrr subcommands share.
 */
#ifndef BHRR_CMD_H
#define BHRR_CMD_H

#include <stdio.h>

#define EXIT_USAGE 2
#define EXIT_NOT_YET 3
#define EXIT_DIVERGED 4 /* bhrr replay: the run stopped being the recorded one */

/* Print "bhrr: MESSAGE" and exit 1. */
void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
/* Seconds on the monotonic clock. */
double now_s(void);
/* Copy file @from to @to (created or truncated): 0, or -1 with errno set. */
int copy_file(const char *from, const char *to);
/* strdup, or die "out of memory". */
char *xstrdup(const char *s);
/* Print "bhrr: MESSAGE" and exit EXIT_USAGE. */
void usage_error(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* @len bytes of @s as a JSON string (control and non-ASCII bytes as \\u00XX). */
void json_str(FILE *f, const char *s, size_t len);
/* @s as a JSON string, or null. */
void json_cstr(FILE *f, const char *s);

/*
 * The LD_PRELOAD value that puts libbhrr.so first and keeps what was there,
 * malloc'd.  Exits if the shim cannot be found.
 */
char *shim_ld_preload(void);

struct strvec;
/*
 * The environment that runs QEMU under the shim in @mode ("record",
 * "replay"), logging to @out, replaying @replay (NULL when recording), with
 * BHRR_FORCE if @force (cmd_record.c).
 */
void shim_env(struct strvec *env, const char *mode, const char *out, const char *replay, int force);

/* Whether QEMU argument @a is option @opt (e.g. "-icount", also as "--icount"). */
int qemu_is_opt(const char *a, const char *opt);
/* Whether QEMU command line @argv (@argv[0] the binary) has option @opt. */
int qemu_has_opt(int argc, char **argv, const char *opt);
/*
 * Whether QEMU's accelerator list @a ("kvm:tcg", an -accel value or what
 * follows a -machine value's accel=, up to a comma) names a hardware
 * accelerator: only as its first element if @first (QEMU then uses it
 * whenever it is there), else anywhere in it.
 */
int qemu_hw_accel(const char *a, int first);

/* A source of nondeterminism on a QEMU command line, and its fix. */
struct finding {
	const char *what, *fix;
};

#define DOCTOR_MAX 32 /* more findings than doctor can make */

/*
 * What bhrr doctor finds on the QEMU command line @argv[0..argc) (argv[0]
 * the binary): up to @max findings into @f.  Returns the number found.
 */
int doctor_findings(int argc, char **argv, struct finding *f, int max);
/*
 * Whether QEMU's command line asks for several vCPUs in exact mode of a
 * QEMU that cannot make their turns (shim/vcpu_sched.h): 1 with @why.
 */
int doctor_smp_refused(int argc, char **argv, char *why, size_t len);

int cmd_dump(int argc, char **argv);
int cmd_record(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_debug(int argc, char **argv);
int cmd_doctor(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_stat(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_flake(int argc, char **argv);
int cmd_bisect(int argc, char **argv);

#endif
