/*
 * open_log.c - opening a log for a subcommand, or saying why it cannot be
 * (see open_log.h).
 */
#include <stdio.h>
#include <stdlib.h>

#include "open_log.h"

struct log_reader *
open_log(const char *path, const char *cmd, int *code)
{
	char err[512];
	int c = LOG_OK;
	struct log_reader *r = log_reader_open(path, &c, err, sizeof(err));

	if (code)
		*code = c;
	if (r == NULL)
		fprintf(stderr, "bhrr: %s%s%s\n", cmd ? cmd : "", cmd ? ": " : "", err);
	return r;
}

struct log_reader *
open_log_or_exit(const char *path, const char *cmd, int status)
{
	struct log_reader *r = open_log(path, cmd, NULL);

	if (r == NULL)
		exit(status);
	return r;
}
