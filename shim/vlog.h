/*
 * vlog.h - bhrr's one diagnostic channel, steered by BHRR_VERBOSE:
 *   unset, "" or "0"  off
 *   "1"               stderr
 *   "N" (N > 2)       file descriptor N
 *   "/abs/path"       append to that file
 * Each message is one write(2), so lines from QEMU's threads never interleave.
 * Separately, vlog_error() always reaches stderr (the shim reports every
 * failure once, clearly) and also goes to the channel if that is a file.
 */
#ifndef BHRR_VLOG_H
#define BHRR_VLOG_H

/* Read BHRR_VERBOSE once; called by the constructor. */
void vlog_init(const char *spec);
/* Nonzero when the channel is on. */
int vlog_enabled(void);
/* One diagnostic line ("bhrr[pid]: " is prepended, "\n" appended). */
void vlog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* One line that always reaches stderr. */
void vlog_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A line to stderr without the pid prefix ("bhrr: " only): user-facing output. */
void vlog_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
