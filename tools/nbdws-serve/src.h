/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nbdws-serve: a local file (or block device) as the export, and the
 * blocking I/O the worker threads do on it.
 */
#ifndef _NBDWS_SERVE_SRC_H
#define _NBDWS_SERVE_SRC_H

#include <stdbool.h>

#include "nbdws_types.h"
#include "nbdws_err.h"
#include "nbdsrv.h"

struct src {
	int fd;
	u64 size;
	bool writable;
	bool is_blockdev;
	bool no_trim;		/* fallocate() refused: trims are no-ops */
};

/*
 * Open @path read-only, or read-write with @writable, and find its size
 * (exactly, also when it is not a multiple of 512). Returns 0 or a
 * negative errno with @err set.
 */
int src_open(struct src *s, const char *path, bool writable,
	     struct nbdws_err *err);
void src_close(struct src *s);

/* The export as the NBD server announces it. */
void src_export(const struct src *s, struct nbdsrv_export *exp);

/*
 * Carry out @r (checked already) and return the NBD error for its reply,
 * 0 on success. Runs on a worker thread.
 */
u32 src_exec(struct src *s, struct sreq *r);

#endif /* _NBDWS_SERVE_SRC_H */
