/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nbdws-relay: static files under --web DIR (the browser page), GET and
 * HEAD. Files are opened below DIR's descriptor one path component at a
 * time with O_NOFOLLOW, so no symbolic link is followed at all and
 * nothing outside DIR can be reached; dotfiles, "..", empty components,
 * anything but regular files and files over WEBFILES_MAX_SIZE are not
 * served.
 */
#ifndef _RELAY_WEBFILES_H
#define _RELAY_WEBFILES_H

#include <stdbool.h>
#include <stddef.h>

#include "ws_io.h"

#define WEBFILES_MAX_SIZE	(64LL << 20)
#define WEBFILES_MAX_NAME	1024

/* Open relay_cfg->web_dir if set: 0 or -errno after logging. */
int webfiles_init(void);
void webfiles_fini(void);

/*
 * URL path @path (as sent, before '?') to a name relative to DIR, percent
 * decoded, "index.html" appended to a directory path: 0, or the status to
 * refuse with (400 bad escape, 404 hidden or malformed).
 */
int webfiles_name(const char *path, char *out, size_t size);

/* Content-Type for @name, by extension. */
const char *webfiles_type(const char *name);

/*
 * Open @name (from webfiles_name()) below @dirfd: a read-only fd of a
 * regular file with its size in *@size, or -errno (-ENOENT, -ELOOP for a
 * symbolic link on the way, -EISDIR, -EACCES not a regular file,
 * -EFBIG over the limit).
 */
int webfiles_open(int dirfd, const char *name, long long *size);

/*
 * Answer a GET (or HEAD, @head) for URL path @path on @io: 0 once a 200
 * was sent (or -errno if sending failed), or the status for the caller
 * to refuse with (nothing sent then).
 */
int webfiles_serve(const struct ws_io *io, const char *path, bool head);

#endif /* _RELAY_WEBFILES_H */
