// SPDX-License-Identifier: GPL-2.0
/*
 * nbdctl: parsing of device names, durations and sizes on the command line.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nbdctl.h"

/* Longest time nbdctl accepts for a timeout: one day. */
#define MAX_SECONDS	86400.0

static int parse_u32_exact(const char *s, uint32_t *v)
{
	unsigned long long x;
	char *end;

	if (!*s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	x = strtoull(s, &end, 10);
	if (errno || *end || x > UINT32_MAX)
		return -1;
	*v = (uint32_t)x;
	return 0;
}

/* /dev/nbdwsN, nbdwsN or N. */
int parse_device(const char *arg, uint32_t *index)
{
	const char *p = arg;

	if (!strncmp(p, "/dev/", 5))
		p += 5;
	if (!strncmp(p, NBDWS_DISK_NAME, strlen(NBDWS_DISK_NAME)))
		p += strlen(NBDWS_DISK_NAME);
	else if (p != arg)
		return -1;
	return parse_u32_exact(p, index);
}

int parse_uint(const char *arg, uint32_t min, uint32_t max, uint32_t *v)
{
	if (parse_u32_exact(arg, v) || *v < min || *v > max)
		return -1;
	return 0;
}

/* Decimal seconds ("30", "1.5") to milliseconds, 1 ms .. one day. */
int parse_seconds_ms(const char *arg, uint32_t *ms)
{
	char *end;
	double s;

	if (!*arg || *arg == '-' || *arg == '+')
		return -1;
	errno = 0;
	s = strtod(arg, &end);
	if (errno || *end || !isfinite(s) || s <= 0 || s > MAX_SECONDS)
		return -1;
	*ms = (uint32_t)(s * 1000.0 + 0.5);
	return *ms ? 0 : -1;
}

int parse_connect_timeout(const char *cmd, const char *arg, uint32_t *ms)
{
	/* poll() takes an int of milliseconds; a day fits. */
	if (parse_seconds_ms(arg, ms))
		return nbdctl_usage_error(cmd, "--connect-timeout must be a positive number of seconds, at most %.0f",
					  MAX_SECONDS);
	return 0;
}

/* Bytes with an optional binary suffix: 4096, 128K, 1M. */
int parse_bytes(const char *arg, uint32_t *bytes)
{
	unsigned long long x, mult = 1;
	char *end;

	if (!*arg || *arg < '0' || *arg > '9')
		return -1;
	errno = 0;
	x = strtoull(arg, &end, 10);
	if (errno)
		return -1;
	if (*end == 'k' || *end == 'K')
		mult = 1ULL << 10, end++;
	else if (*end == 'm' || *end == 'M')
		mult = 1ULL << 20, end++;
	if (*end == 'i' && mult > 1)
		end++;
	if ((*end == 'B' || *end == 'b') && mult > 1)
		end++;
	if (*end || x > UINT32_MAX / mult || x == 0)
		return -1;
	*bytes = (uint32_t)(x * mult);
	return 0;
}
