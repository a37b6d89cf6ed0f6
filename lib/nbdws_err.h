/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Error reporting for the userspace library: functions return a negative
 * errno and leave a sentence for the user in a caller-owned buffer, so the
 * tools can print what went wrong and what to do without guessing from the
 * errno alone.
 */
#ifndef _NBDWS_ERR_H
#define _NBDWS_ERR_H

struct nbdws_err {
	char msg[512];
};

/*
 * Format a message into @err (which may be NULL) and return @rc, so that
 * callers can write "return nbdws_err_set(err, -EPROTO, ...);".
 */
int nbdws_err_set(struct nbdws_err *err, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefix the message already in @err with more context; returns @rc. */
int nbdws_err_prefix(struct nbdws_err *err, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif /* _NBDWS_ERR_H */
