// SPDX-License-Identifier: GPL-2.0
/*
 * nbdws-relay: logging (see relay.h). One write() per line, so lines from
 * the loop and from kernel.c's worker never interleave mid-line.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "peer_text.h"
#include "relay.h"

/* Longer lines are cut: a log line is for a person, not a dump. */
#define LOG_LINE_MAX	1024

void relay_log(enum relay_log_level lvl, const char *fmt, ...)
{
	static const char *const word[] = {
		[RELAY_LOG_ERR] = "error: ",
		[RELAY_LOG_WARN] = "warning: ",
		[RELAY_LOG_INFO] = "",
		[RELAY_LOG_DEBUG] = "",
	};
	char line[LOG_LINE_MAX];
	size_t len;
	va_list ap;
	int n;

	if (lvl == RELAY_LOG_DEBUG && (!relay_cfg || relay_cfg->verbose < 1))
		return;
	n = snprintf(line, sizeof(line), "nbdws-relay: %s", word[lvl]);
	if (n < 0)
		return;
	va_start(ap, fmt);
	/* Cut at the buffer's end; the newline still goes on. */
	(void)vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	len = strlen(line);
	line[len++] = '\n';
	/* Nothing useful can be done if stderr is gone. */
	if (write(STDERR_FILENO, line, len) < 0)
		return;
}

void relay_printable(const char *in, size_t len, char *out, size_t size)
{
	peer_text(out, size, in, len);
}
