/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nbdws: byte sources of the receive path.
 *
 * The reply parser pulls bytes from a source into an iov_iter: a kvec for
 * reply headers, the request's bio pages for read payload. Sources are the
 * skbs of a read_sock actor, recvmsg, the bytes userspace read past the
 * handshake, and the WebSocket layer, which wraps any of these and hands
 * on only message payload.
 */
#ifndef _NBDWS_RX_SRC_H
#define _NBDWS_RX_SRC_H

#include <linux/highmem.h>
#include <linux/uio.h>

struct nbdws_conn;
struct ws_dec;

struct nbdws_rx_src {
	/*
	 * Copy up to iov_iter_count(@to) bytes into @to, advancing it.
	 * Returns the bytes copied, 0 when nothing is available right now,
	 * -ESHUTDOWN at end of stream, or another negative errno.
	 */
	int (*pull)(struct nbdws_rx_src *src, struct iov_iter *to);
	/*
	 * Optional, for a source that can see its bytes in place (skbs):
	 * the same, but every piece goes through ws_dec_data_copy(@dec), so
	 * masked WebSocket payload is unmasked while it is copied, in one
	 * pass over the data instead of a copy and then an unmask.
	 */
	int (*pull_ws)(struct nbdws_rx_src *src, struct iov_iter *to,
		       struct ws_dec *dec);
};

/* WebSocket framing around @inner (ws_rx.c). */
struct nbdws_ws_src {
	struct nbdws_rx_src src;
	struct nbdws_rx_src *inner;
	struct nbdws_conn *conn;
};

void nbdws_ws_src_init(struct nbdws_ws_src *ws, struct nbdws_conn *conn,
		       struct nbdws_rx_src *inner);

/*
 * Move @len received bytes at @p into @to through ws_dec_data_copy(@dec),
 * advancing @to, which must have room for them (ws_rx.c).
 */
void nbdws_ws_copy_to_iter(struct ws_dec *dec, const u8 *p, size_t len,
			   struct iov_iter *to);

/*
 * Map the destination of @it (a kvec or bvec iterator with bytes left) at
 * its position. Returns the address and sets *@len to how many bytes from
 * there are virtually contiguous: the rest of the segment, and for a bvec
 * at most the rest of the page. Undo with nbdws_iter_unmap().
 */
static inline u8 *nbdws_iter_map(const struct iov_iter *it, size_t *len)
{
	size_t skip = it->iov_offset;

	if (iov_iter_is_bvec(it)) {
		const struct bio_vec *bv = it->bvec;
		size_t off = bv->bv_offset + skip;
		u8 *p = kmap_local_page(bv->bv_page + (off >> PAGE_SHIFT));

		off &= ~PAGE_MASK;
		*len = min((size_t)bv->bv_len - skip, (size_t)PAGE_SIZE - off);
		return p + off;
	}
	*len = it->kvec->iov_len - skip;
	return (u8 *)it->kvec->iov_base + skip;
}

static inline void nbdws_iter_unmap(const struct iov_iter *it, u8 *p)
{
	if (iov_iter_is_bvec(it))
		kunmap_local(p);
}

/*
 * Call @fn on the first @n bytes of the destination @it (a kvec or bvec
 * iterator) from its position, one mapped, virtually contiguous piece at
 * a time. @it itself is not advanced.
 */
static inline void nbdws_iter_each(const struct iov_iter *it, size_t n,
				   void (*fn)(void *arg, u8 *p, size_t len),
				   void *arg)
{
	struct iov_iter at = *it;

	if (WARN_ON_ONCE(!iov_iter_is_kvec(it) && !iov_iter_is_bvec(it)))
		return;
	while (n) {
		size_t len;
		u8 *p = nbdws_iter_map(&at, &len);

		len = min(len, n);
		fn(arg, p, len);
		nbdws_iter_unmap(&at, p);
		iov_iter_advance(&at, len);
		n -= len;
	}
}

#endif /* _NBDWS_RX_SRC_H */
