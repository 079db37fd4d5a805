/*
 * check.h - BHRR_MODE=check: forwarding hooks on every target of
 * symbols.h, one line per target on stderr, call counts at exit.  Never
 * stops QEMU.  Constructor and destructor only.
 */
#ifndef BHRR_CHECK_H
#define BHRR_CHECK_H

/*
 * The tested builds and the self-check (selfcheck.h), then, unless
 * @self_only (BHRR_CHECK_SELF), hook and report (BHRR_CHECK_ALL: every
 * export too).
 */
void check_start(int all, int self_only);
/* Print the call counts; from the destructor. */
void check_finish(void);

#endif
