/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Percent-encoding (RFC 3986 section 2.1): what the URI parser, the HTTP
 * query parser and the relay's static file names share.
 */
#ifndef _NBDWS_PCT_H
#define _NBDWS_PCT_H

/* The value of hexadecimal digit @c, or -1 if it is not one. */
static inline int pct_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

#endif /* _NBDWS_PCT_H */
