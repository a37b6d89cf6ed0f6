/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Credentials in memory and on disk: wiping a buffer that held one before
 * it goes back to the allocator (a freed block keeps its bytes, and a core
 * dump, a later heap overflow or a reused block could show them), and
 * reading one from a file the way ssh reads a private key: only from a
 * regular file that the user (or root) owns and nobody else may access.
 */
#ifndef _NBDWS_SECRET_H
#define _NBDWS_SECRET_H

#include <stddef.h>
#include <sys/stat.h>

#include "nbdws_err.h"

/* Wipe @len bytes at @p, then free it. NULL is fine. */
void secret_free(void *p, size_t len);

/* The same for a NUL-terminated string. NULL is fine. */
void secret_free_str(char *s);

/*
 * Read the credential in the file @path into *@out (malloc'd, free it
 * with secret_free_str()): the whole content, without one trailing line
 * end ("\n" or "\r\n"). The caller checks what is inside.
 *
 * Refused, with a sentence in @err naming the path (never the content):
 * -EPERM when group or others have any access to the file (the message
 * names the mode and the chmod that fixes it) or when it belongs to
 * neither root nor the effective user; -EINVAL when it is not a regular
 * file or holds a NUL byte; -EFBIG when it holds more than @max bytes;
 * the errno of open() or read() otherwise. A read error is an error,
 * never a short value. On failure *@out is NULL and nothing read is left
 * in memory.
 */
int secret_file_read(const char *path, size_t max, char **out,
		     struct nbdws_err *err);

/*
 * The ownership and mode rule above for the open file @fd (named @path in
 * messages), with @owner in place of the effective user (a daemon checks
 * against the uid it runs as). Fills *@st. 0, or -EINVAL (not a regular
 * file), -EPERM, or fstat()'s errno, with a sentence in @err.
 */
int secret_file_check(int fd, const char *path, uid_t owner, struct stat *st,
		      struct nbdws_err *err);

#endif /* _NBDWS_SECRET_H */
