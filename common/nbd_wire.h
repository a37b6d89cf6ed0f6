/* SPDX-License-Identifier: GPL-2.0 */
/*
 * NBD transmission-phase wire format: encode the 28-byte request header and
 * parse the 16-byte simple reply header, in big-endian, byte by byte.
 *
 * This is hand-written plain C with no dependency beyond nbdws_types.h
 * because the same source file is compiled into nbdws.ko (the receive path
 * feeds it socket bytes in whatever pieces TCP or WebSocket framing hands
 * over) and into userspace (nbdctl, unit tests, fuzzers). It never
 * allocates and keeps its state in a small caller-owned struct.
 */
#ifndef _NBDWS_NBD_WIRE_H
#define _NBDWS_NBD_WIRE_H

#include "nbdws_types.h"
#include "nbd_proto.h"

struct nbd_wire_request {
	u16 flags;		/* NBDP_CMD_FLAG_* */
	u16 type;		/* NBDP_CMD_* */
	u64 cookie;		/* echoed back in the reply */
	u64 offset;
	u32 length;
};

/* Write the big-endian request header for @req into @out. */
void nbd_wire_encode_request(u8 out[NBDP_REQUEST_SIZE],
			     const struct nbd_wire_request *req);

struct nbd_wire_reply {
	u32 error;		/* NBD numbering (NBDP_E*), 0 on success */
	u64 cookie;
};

/*
 * Reassembles one simple reply header from arbitrarily split input. After
 * NBD_REPLY_BAD_MAGIC the first four bytes of @buf hold the magic that was
 * seen (see nbd_reply_parser_magic()), and further calls repeat
 * NBD_REPLY_BAD_MAGIC, consuming nothing, until nbd_reply_parser_init().
 */
struct nbd_reply_parser {
	u8 buf[NBDP_SIMPLE_REPLY_SIZE];
	u8 have;
};

void nbd_reply_parser_init(struct nbd_reply_parser *p);

enum {
	NBD_REPLY_MORE = 0,
	NBD_REPLY_DONE = 1,
	NBD_REPLY_BAD_MAGIC = -1,
};

/*
 * Feed bytes of a reply header. Consumes at most what completes one 16-byte
 * simple reply header (*used = bytes consumed). Returns NBD_REPLY_DONE with
 * *out filled (the parser is reset for the next header), NBD_REPLY_MORE when
 * all of @data was consumed and more is needed, or NBD_REPLY_BAD_MAGIC as
 * soon as the four magic bytes are known to be wrong. Structured replies are
 * never negotiated, so their magic is bad too.
 */
int nbd_reply_parse(struct nbd_reply_parser *p, const u8 *data, size_t len,
		    size_t *used, struct nbd_wire_reply *out);

/* The magic that made nbd_reply_parse() fail, for diagnostics. */
u32 nbd_reply_parser_magic(const struct nbd_reply_parser *p);

/*
 * Map an NBD error number from a reply to a negative errno (0 stays 0).
 * Values the protocol does not define become -EIO.
 */
int nbd_wire_errno(u32 nbd_error);

#endif /* _NBDWS_NBD_WIRE_H */
