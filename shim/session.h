/*
 * session.h - a record or replay session, start to finish: the checks that
 * refuse up front, discovery, the log, the hook table installed in one
 * batch, the policy chosen once, and the summary at exit.
 *
 * Threads: session_start from the constructor (before QEMU has a thread),
 * session_finish from the destructor; session_active from any thread.
 */
#ifndef BHRR_SESSION_H
#define BHRR_SESSION_H

#include <stddef.h>

#include "shim.h"

/*
 * Record (bhrr_cfg.mode BHRR_RECORD) or replay (BHRR_REPLAY BHRR_REPLAY).
 * Returns 0, or -1 after saying once why nothing was hooked: QEMU then runs
 * as if bhrr were not there.
 */
int session_start(void);
/* The end event, flush, fsync, and the summary (BHRR_VERBOSE). */
void session_finish(void);
/*
 * The hooks a record or replay installs, BH gate first, into @t (room for
 * QS_COUNT: at most one hook per symbol); how many.  Also the self-check's
 * hook sites in check mode.
 */
size_t session_hook_table(struct hook_spec *t);
/*
 * Whether thread_pool_submit_aio takes its pool (before 8.0): read from its
 * code (discover.h), or from the version when the code has neither shape.
 */
int session_submit_takes_pool(void);
/* Between a successful start and finish: hooks may log. */
int session_active(void);

#endif
