/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nbdws-serve: the NBD server side of one connection as a state machine
 * fed with payload bytes, with no I/O of its own, so that unit tests can
 * drive it byte by byte and complete requests in any order.
 *
 * Fixed newstyle negotiation: NBD_OPT_GO and NBD_OPT_INFO (export size
 * and flags, block sizes and the name when asked), NBD_OPT_EXPORT_NAME,
 * NBD_OPT_LIST (one export, the default "") and NBD_OPT_ABORT; every
 * other option gets NBD_REP_ERR_UNSUP. Any export name is taken: there is
 * one export. Transmission: each request is checked here (bounds, read
 * only, sizes) and handed to the backend through submit(), with the WRITE
 * payload already read; the backend completes requests in any order and
 * sreq_reply() turns each into its reply frame.
 *
 * A peer that breaks the protocol (bad magic, an option or a write too
 * large to buffer, a client without fixed newstyle) ends the connection:
 * nbdsrv_input() fails with -EPROTO and a sentence in s->err.
 */
#ifndef _NBDWS_SERVE_NBDSRV_H
#define _NBDWS_SERVE_NBDSRV_H

#include <stdbool.h>
#include <stddef.h>

#include "nbdws_types.h"
#include "nbdws_err.h"
#include "nbd_proto.h"
#include "ws_frame.h"
#include "wsc.h"

/* Largest option data kept: GO's name (4096) and a few info requests. */
#define NBDSRV_OPT_MAX		8192
/* Larger options are skipped and refused with ERR_TOO_BIG up to this. */
#define NBDSRV_OPT_SKIP_MAX	(1U << 20)
/* Options before transmission; a client looping in them is dropped. */
#define NBDSRV_MAX_OPTIONS	1024

/* Block sizes we announce: any byte range, 4 KiB preferred, 32 MiB max. */
#define NBDSRV_BLOCK_MIN	1U
#define NBDSRV_BLOCK_PREF	4096U
#define NBDSRV_BLOCK_MAX	(32U << 20)

struct nbdsrv_export {
	u64 size;
	u16 tflags;		/* NBDP_FLAG_*, HAS_FLAGS included */
};

/* One transmission request, from parse to reply frame. */
struct sreq {
	struct wsc_tx tx;	/* the reply frame, once built */
	struct sreq *next;	/* backend queues */
	u16 type;
	u16 flags;
	u64 cookie;
	u64 offset;
	u32 len;
	u32 error;		/* NBD error number for the reply, 0: ok */
	bool done_early;	/* refused in parsing: no backend work */
	/*
	 * READ: WS_MAX_HEADER + 16 + len bytes, the data read at
	 * data + WS_MAX_HEADER + 16 so the frame is built in place;
	 * WRITE: the len bytes to write.
	 */
	u8 *data;
	u8 small[WS_MAX_HEADER + NBDP_SIMPLE_REPLY_SIZE];
};

/* Where READ data goes in r->data. */
static inline u8 *sreq_read_buf(struct sreq *r)
{
	return r->data + WS_MAX_HEADER + NBDP_SIMPLE_REPLY_SIZE;
}

struct nbdsrv_ops {
	void *ctx;
	/* Send one handshake message (one WebSocket message). 0 or -errno. */
	int (*send)(void *ctx, const void *msg, size_t len);
	/*
	 * Take a parsed request; the backend owns it from here. Requests
	 * with done_early set need only sreq_reply().
	 */
	void (*submit)(void *ctx, struct sreq *r);
};

enum nbdsrv_state {
	NBDSRV_CFLAGS,		/* the client's 32-bit flags */
	NBDSRV_OPT_HDR,		/* IHAVEOPT, option, length */
	NBDSRV_OPT_DATA,	/* option data we keep */
	NBDSRV_OPT_SKIP,	/* option data too large to keep */
	NBDSRV_REQ,		/* a 28-byte request header */
	NBDSRV_WDATA,		/* WRITE payload */
	NBDSRV_END,		/* ABORT or DISC seen: read no more */
};

struct nbdsrv {
	enum nbdsrv_state state;
	struct nbdsrv_export exp;
	struct nbdsrv_ops ops;
	bool no_zeroes;		/* client set NBD_FLAG_C_NO_ZEROES */
	bool transmission;	/* GO or EXPORT_NAME succeeded */
	bool disc;		/* ended by NBD_CMD_DISC (else ABORT) */
	u8 hdr[NBDP_REQUEST_SIZE];
	size_t have;		/* bytes of hdr or of the option data */
	u32 opt;
	u32 opt_len;
	u32 skip_left;
	u8 *opt_buf;		/* NBDSRV_OPT_MAX bytes */
	unsigned int options;
	struct sreq *cur;	/* WRITE whose payload is being read */
	u64 requests;		/* requests parsed */
	struct nbdws_err err;
};

/*
 * Set up @s for @exp and send the greeting. Returns 0 or a negative errno
 * (-ENOMEM, or what send() returned).
 */
int nbdsrv_start(struct nbdsrv *s, const struct nbdsrv_export *exp,
		 const struct nbdsrv_ops *ops);

/* Free @s and a request still being read; submitted ones are not its. */
void nbdsrv_free(struct nbdsrv *s);

/*
 * Where the next payload bytes go: sets *dst and returns how many may be
 * stored there (> 0), or 0 in NBDSRV_END.
 */
size_t nbdsrv_want(struct nbdsrv *s, u8 **dst);

/*
 * @n bytes were stored at the place nbdsrv_want() gave. Returns 0, or
 * -EPROTO (and -ENOMEM, or a send() error) with s->err set: the
 * connection must end. In NBDSRV_END the client asked to end.
 */
int nbdsrv_input(struct nbdsrv *s, size_t n);

/*
 * Build r's reply frame (masked, in r->tx) from r->error and, for a
 * successful READ, the data in sreq_read_buf(). Thread-safe. 0 or -EIO
 * (no randomness for the mask).
 */
int sreq_reply(struct sreq *r);

/* Free a request and its buffer. */
void sreq_free(struct sreq *r);

/* NBD error number for a negative errno from the backend. */
u32 nbdsrv_errno_to_nbd(int err);

#endif /* _NBDWS_SERVE_NBDSRV_H */
