// SPDX-License-Identifier: GPL-2.0
/*
 * Wiping credentials and reading them from files (see secret.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "secret.h"

void secret_free(void *p, size_t len)
{
	if (p)
		explicit_bzero(p, len);
	free(p);
}

void secret_free_str(char *s)
{
	if (s)
		secret_free(s, strlen(s));
}

/* Who may read it: the same rule as ssh for private keys. */
int secret_file_check(int fd, const char *path, uid_t owner, struct stat *st,
		      struct nbdws_err *err)
{
	/* fstat() on the open file: no window to swap it after the check. */
	if (fstat(fd, st))
		return nbdws_err_set(err, -errno, "cannot stat '%s': %s", path,
				     strerror(errno));
	if (!S_ISREG(st->st_mode))
		return nbdws_err_set(err, -EINVAL, "'%s' is not a regular file",
				     path);
	if (st->st_uid != owner && st->st_uid != 0)
		return nbdws_err_set(err, -EPERM,
				     "'%s' belongs to uid %u, neither to you (uid %u) nor to root: anyone who owns it can change the credential",
				     path, (unsigned int)st->st_uid,
				     (unsigned int)owner);
	if (st->st_mode & 077)
		return nbdws_err_set(err, -EPERM,
				     "'%s' has mode %04o: group or others may access it, and it holds a credential; run chmod 600 '%s'",
				     path, (unsigned int)(st->st_mode & 07777),
				     path);
	return 0;
}

/* Read until end of file or @cap bytes into @buf; the count or -errno. */
static ssize_t read_upto(int fd, char *buf, size_t cap)
{
	size_t have = 0;
	ssize_t n;

	while (have < cap) {
		n = read(fd, buf + have, cap - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (!n)
			break;
		have += (size_t)n;
	}
	return (ssize_t)have;
}

int secret_file_read(const char *path, size_t max, char **out,
		     struct nbdws_err *err)
{
	char *buf = NULL;
	struct stat st;
	ssize_t len;
	int fd, rc;

	*out = NULL;
	/* O_NONBLOCK: a FIFO must not hang us before fstat() refuses it. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return nbdws_err_set(err, -errno, "cannot open '%s': %s", path,
				     strerror(errno));
	rc = secret_file_check(fd, path, geteuid(), &st, err);
	if (rc)
		goto out;
	/*
	 * Up to two bytes of line end may follow @max bytes of value, and a
	 * third byte tells a file that is too long from one that fits.
	 */
	buf = malloc(max + 4);
	if (!buf) {
		rc = nbdws_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	len = read_upto(fd, buf, max + 3);
	if (len < 0) {
		rc = nbdws_err_set(err, (int)len, "cannot read '%s': %s", path,
				   strerror((int)-len));
		goto out;
	}
	buf[len] = '\0';
	/* Editors end files with a line end; it is not part of the value. */
	if (len && buf[len - 1] == '\n')
		buf[--len] = '\0';
	if (len && buf[len - 1] == '\r')
		buf[--len] = '\0';
	if ((size_t)len > max) {
		rc = nbdws_err_set(err, -EFBIG, "'%s' holds more than %zu bytes",
				   path, max);
		goto out;
	}
	if (memchr(buf, '\0', (size_t)len)) {
		rc = nbdws_err_set(err, -EINVAL, "'%s' holds a NUL byte",
				   path);
		goto out;
	}
	*out = buf;
	buf = NULL;
out:
	/* Everything read went into @buf: wipe it all, whatever its state. */
	secret_free(buf, max + 4);
	close(fd);
	return rc;
}
