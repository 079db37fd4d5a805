/*
 * cmd_debug.h - the gdb endpoint of bhrr replay --gdb (cmd_debug.c).
 */
#ifndef BHRR_CMD_DEBUG_H
#define BHRR_CMD_DEBUG_H

/*
 * Replay @log (an exact-mode log, checked by the caller) with QEMU @exe and
 * @qargv, writing the replay's log to @out, held at icount 0 - or at
 * @stop_at ("ICOUNT" or "#EVENT"), if not NULL - for gdb on @gdb (a TCP
 * port on 127.0.0.1, or unix:PATH).  @arch ("auto", "i386" or "qemu")
 * picks the register description gdb is given (doc/debug.md).  Returns
 * QEMU's status once gdb has left and the replay ended.
 */
int debug_session(const char *exe, char **qargv, const char *log, const char *out, int force,
		  const char *gdb, const char *stop_at, const char *arch);

#endif
