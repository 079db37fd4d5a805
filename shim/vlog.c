/*
 * vlog.c - see vlog.h.  No locks and no stdio buffers: a line is formatted
 * on the stack and written with a single write(2).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vlog.h"

static int vlog_fd = -1;
static int vlog_is_file;

void
vlog_init(const char *spec)
{
	if (spec == NULL || spec[0] == 0 || strcmp(spec, "0") == 0)
		return;
	if (spec[0] == '/') {
		vlog_fd = open(spec, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
		vlog_is_file = vlog_fd >= 0;
		return;
	}
	char *end;
	long n = strtol(spec, &end, 10);

	if (*end != 0 || n < 1)
		return;
	vlog_fd = n == 1 ? 2 : (int)n;
}

int
vlog_enabled(void)
{
	return vlog_fd >= 0;
}

/* One line: "bhrr[pid]: LABEL..." (with_pid) or "bhrr: LABEL...". */
static void
emit(int fd, int with_pid, const char *label, const char *fmt, va_list ap)
{
	char buf[1024];
	int n = with_pid ? snprintf(buf, sizeof(buf), "bhrr[%d]: %s", (int)getpid(), label)
			 : snprintf(buf, sizeof(buf), "bhrr: %s", label);

	if (n < 0 || n >= (int)sizeof(buf))
		n = 0;
	int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);

	if (m < 0)
		m = 0;
	n += m;
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	int saved = errno;

	while (write(fd, buf, (size_t)n) < 0 && errno == EINTR)
		;
	errno = saved;
}

void
vlog(const char *fmt, ...)
{
	va_list ap;

	if (vlog_fd < 0)
		return;
	va_start(ap, fmt);
	emit(vlog_fd, 1, "", fmt, ap);
	va_end(ap);
}

void
vlog_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit(2, 1, "error: ", fmt, ap);
	va_end(ap);
	if (vlog_is_file) {
		va_start(ap, fmt);
		emit(vlog_fd, 1, "error: ", fmt, ap);
		va_end(ap);
	}
}

void
vlog_say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit(2, 0, "", fmt, ap);
	va_end(ap);
}
