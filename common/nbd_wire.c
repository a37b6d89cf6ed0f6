// SPDX-License-Identifier: GPL-2.0
/*
 * NBD transmission-phase wire format, shared by nbdws.ko and userspace.
 *
 * Hand-written on purpose: the module runs this on every reply in its
 * receive path, straight on socket bytes, so it must be plain C with no
 * allocation and no library underneath, and the very same source is built
 * into the tools, unit tests and fuzzers so that what is fuzzed in userspace
 * is exactly what runs in the kernel. Byte order is done with shifts rather
 * than cpu_to_be*() because those helpers exist only in the kernel.
 */
#include "nbd_wire.h"

static void put_be16(u8 *p, u16 v)
{
	p[0] = (u8)(v >> 8);
	p[1] = (u8)v;
}

static void put_be32(u8 *p, u32 v)
{
	p[0] = (u8)(v >> 24);
	p[1] = (u8)(v >> 16);
	p[2] = (u8)(v >> 8);
	p[3] = (u8)v;
}

static void put_be64(u8 *p, u64 v)
{
	put_be32(p, (u32)(v >> 32));
	put_be32(p + 4, (u32)v);
}

static u32 get_be32(const u8 *p)
{
	return (u32)p[0] << 24 | (u32)p[1] << 16 | (u32)p[2] << 8 | p[3];
}

static u64 get_be64(const u8 *p)
{
	return (u64)get_be32(p) << 32 | get_be32(p + 4);
}

void nbd_wire_encode_request(u8 out[NBDP_REQUEST_SIZE],
			     const struct nbd_wire_request *req)
{
	put_be32(out, NBDP_REQUEST_MAGIC);
	put_be16(out + 4, req->flags);
	put_be16(out + 6, req->type);
	put_be64(out + 8, req->cookie);
	put_be64(out + 16, req->offset);
	put_be32(out + 24, req->length);
}

void nbd_reply_parser_init(struct nbd_reply_parser *p)
{
	memset(p, 0, sizeof(*p));
}

int nbd_reply_parse(struct nbd_reply_parser *p, const u8 *data, size_t len,
		    size_t *used, struct nbd_wire_reply *out)
{
	size_t want = NBDP_SIMPLE_REPLY_SIZE - p->have;
	size_t n = len < want ? len : want;
	bool had_magic = p->have >= 4;

	/* A bad magic stays bad until the parser is re-initialised. */
	if (had_magic && get_be32(p->buf) != NBDP_SIMPLE_REPLY_MAGIC) {
		*used = 0;
		return NBD_REPLY_BAD_MAGIC;
	}

	memcpy(p->buf + p->have, data, n);
	p->have += (u8)n;
	*used = n;

	/*
	 * Judge the magic as soon as it is complete: a peer that speaks
	 * something else is caught before the rest of its header is awaited.
	 */
	if (!had_magic && p->have >= 4 &&
	    get_be32(p->buf) != NBDP_SIMPLE_REPLY_MAGIC) {
		*used = n - (p->have - 4);
		p->have = 4;
		return NBD_REPLY_BAD_MAGIC;
	}

	if (p->have < NBDP_SIMPLE_REPLY_SIZE)
		return NBD_REPLY_MORE;

	out->error = get_be32(p->buf + 4);
	out->cookie = get_be64(p->buf + 8);
	p->have = 0;
	return NBD_REPLY_DONE;
}

u32 nbd_reply_parser_magic(const struct nbd_reply_parser *p)
{
	return get_be32(p->buf);
}

int nbd_wire_errno(u32 nbd_error)
{
	switch (nbd_error) {
	case 0:
		return 0;
	case NBDP_EPERM:
		return -EPERM;
	case NBDP_EIO:
		return -EIO;
	case NBDP_ENOMEM:
		return -ENOMEM;
	case NBDP_EINVAL:
		return -EINVAL;
	case NBDP_ENOSPC:
		return -ENOSPC;
	case NBDP_EOVERFLOW:
		return -EOVERFLOW;
	case NBDP_ENOTSUP:
		/* The kernel's ENOTSUPP is internal; EOPNOTSUPP is 95 too. */
		return -EOPNOTSUPP;
	case NBDP_ESHUTDOWN:
		return -ESHUTDOWN;
	default:
		return -EIO;
	}
}
