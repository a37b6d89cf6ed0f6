// SPDX-License-Identifier: GPL-2.0
/*
 * nbdws-serve: the file source (see src.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src.h"

/* Zeroes written per pwrite() when the file system cannot zero a range. */
#define ZERO_CHUNK	(1U << 20)

int src_open(struct src *s, const char *path, bool writable,
	     struct nbdws_err *err)
{
	struct stat st;

	memset(s, 0, sizeof(*s));
	s->writable = writable;
	s->fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (s->fd < 0)
		return nbdws_err_set(err, -errno, "cannot open %s%s: %s", path,
				     writable ? " for writing" : "",
				     strerror(errno));
	if (fstat(s->fd, &st) < 0) {
		int e = errno;

		close(s->fd);
		return nbdws_err_set(err, -e, "cannot stat %s: %s", path,
				     strerror(e));
	}
	if (S_ISBLK(st.st_mode)) {
		u64 size = 0;

		if (ioctl(s->fd, BLKGETSIZE64, &size) < 0) {
			int e = errno;

			close(s->fd);
			return nbdws_err_set(err, -e,
					     "cannot get the size of %s: %s",
					     path, strerror(e));
		}
		s->size = size;
		s->is_blockdev = true;
	} else if (S_ISREG(st.st_mode)) {
		s->size = (u64)st.st_size;
	} else {
		close(s->fd);
		return nbdws_err_set(err, -EINVAL,
				     "%s is neither a regular file nor a block device",
				     path);
	}
	if (!s->size) {
		close(s->fd);
		return nbdws_err_set(err, -EINVAL, "%s is empty: nothing to serve",
				     path);
	}
	return 0;
}

void src_close(struct src *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

void src_export(const struct src *s, struct nbdsrv_export *exp)
{
	exp->size = s->size;
	exp->tflags = NBDP_FLAG_HAS_FLAGS | NBDP_FLAG_SEND_FLUSH |
		      NBDP_FLAG_CAN_MULTI_CONN;
	if (!s->writable)
		exp->tflags |= NBDP_FLAG_READ_ONLY;
	else
		exp->tflags |= NBDP_FLAG_SEND_FUA | NBDP_FLAG_SEND_TRIM |
			       NBDP_FLAG_SEND_WRITE_ZEROES;
}

static int pread_all(int fd, u8 *buf, size_t len, u64 off)
{
	while (len) {
		ssize_t n = pread(fd, buf, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		/* The file shrank under us: what is gone reads as zeroes. */
		if (n == 0) {
			memset(buf, 0, len);
			return 0;
		}
		buf += n;
		len -= (size_t)n;
		off += (u64)n;
	}
	return 0;
}

static int pwrite_all(int fd, const u8 *buf, size_t len, u64 off)
{
	while (len) {
		ssize_t n = pwrite(fd, buf, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		buf += n;
		len -= (size_t)n;
		off += (u64)n;
	}
	return 0;
}

static int write_zeroes(struct src *s, const struct sreq *r)
{
	static const u8 zero[ZERO_CHUNK];
	u64 off = r->offset;
	u32 left = r->len;

	if (!s->is_blockdev) {
		if (!fallocate(s->fd, FALLOC_FL_ZERO_RANGE, (off_t)off, left))
			return 0;
		if (!(r->flags & NBDP_CMD_FLAG_NO_HOLE) &&
		    !fallocate(s->fd, FALLOC_FL_PUNCH_HOLE |
			       FALLOC_FL_KEEP_SIZE, (off_t)off, left))
			return 0;
	}
	while (left) {
		u32 n = left < ZERO_CHUNK ? left : ZERO_CHUNK;
		int rc = pwrite_all(s->fd, zero, n, off);

		if (rc)
			return rc;
		off += n;
		left -= n;
	}
	return 0;
}

/* A trim is advisory: where holes cannot be punched it does nothing. */
static int trim(struct src *s, const struct sreq *r)
{
	if (s->is_blockdev || !r->len ||
	    __atomic_load_n(&s->no_trim, __ATOMIC_RELAXED))
		return 0;
	if (!fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		       (off_t)r->offset, r->len))
		return 0;
	if (errno != EOPNOTSUPP)
		return -errno;
	__atomic_store_n(&s->no_trim, true, __ATOMIC_RELAXED);
	return 0;
}

static int flush(struct src *s)
{
	return fdatasync(s->fd) ? -errno : 0;
}

u32 src_exec(struct src *s, struct sreq *r)
{
	int rc;

	switch (r->type) {
	case NBDP_CMD_READ:
		rc = pread_all(s->fd, sreq_read_buf(r), r->len, r->offset);
		break;
	case NBDP_CMD_WRITE:
		rc = pwrite_all(s->fd, r->data, r->len, r->offset);
		if (!rc && (r->flags & NBDP_CMD_FLAG_FUA))
			rc = flush(s);
		break;
	case NBDP_CMD_FLUSH:
		rc = s->writable ? flush(s) : 0;
		break;
	case NBDP_CMD_TRIM:
		rc = trim(s, r);
		break;
	case NBDP_CMD_WRITE_ZEROES:
		rc = write_zeroes(s, r);
		if (!rc && (r->flags & NBDP_CMD_FLAG_FUA))
			rc = flush(s);
		break;
	default:
		rc = -EINVAL;
		break;
	}
	return nbdsrv_errno_to_nbd(rc);
}
