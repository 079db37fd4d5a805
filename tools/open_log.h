/*
 * open_log.h - the tools' one way to open a log: the reader, or a message
 * that names the file and the problem.
 */
#ifndef BHRR_OPEN_LOG_H
#define BHRR_OPEN_LOG_H

#include "log.h"

/*
 * Open the log @path for the subcommand @cmd.
 * @cmd:  prefixes the message ("bhrr: diff: ..."); NULL for none ("bhrr: ...").
 * @code: if not NULL, the reader's enum log_open_err (LOG_OK on success).
 * Returns the reader, or NULL after printing on stderr why it cannot be
 * read (the reader's message names the file: "cannot open log 'x': ...",
 * "x: not a bhrr log ...").
 */
struct log_reader *open_log(const char *path, const char *cmd, int *code);

/*
 * Like open_log(), but exits with @status when the log cannot be read.
 * Returns the reader.
 */
struct log_reader *open_log_or_exit(const char *path, const char *cmd, int status);

#endif
