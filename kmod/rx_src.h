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

struct nbdws_rx_src {
	/*
	 * Copy up to iov_iter_count(@to) bytes into @to, advancing it.
	 * Returns the bytes copied, 0 when nothing is available right now,
	 * -ESHUTDOWN at end of stream, or another negative errno.
	 */
	int (*pull)(struct nbdws_rx_src *src, struct iov_iter *to);
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
 * Call @fn on the first @n bytes of the destination @it (a kvec or bvec
 * iterator as it was before bytes were copied into it), one mapped,
 * virtually contiguous piece at a time.
 */
static inline void nbdws_iter_each(const struct iov_iter *it, size_t n,
				   void (*fn)(void *arg, u8 *p, size_t len),
				   void *arg)
{
	size_t skip = it->iov_offset;

	if (iov_iter_is_kvec(it)) {
		const struct kvec *kv = it->kvec;

		while (n) {
			size_t len = min(n, kv->iov_len - skip);

			fn(arg, (u8 *)kv->iov_base + skip, len);
			n -= len;
			skip += len;
			if (skip == kv->iov_len) {
				kv++;
				skip = 0;
			}
		}
		return;
	}
	if (iov_iter_is_bvec(it)) {
		const struct bio_vec *bv = it->bvec;

		while (n) {
			size_t off = bv->bv_offset + skip;
			struct page *page = bv->bv_page + (off >> PAGE_SHIFT);
			size_t len;
			u8 *p;

			off &= ~PAGE_MASK;
			len = min3(n, (size_t)bv->bv_len - skip,
				   (size_t)PAGE_SIZE - off);
			p = kmap_local_page(page);
			fn(arg, p + off, len);
			kunmap_local(p);
			n -= len;
			skip += len;
			if (skip == bv->bv_len) {
				bv++;
				skip = 0;
			}
		}
		return;
	}
	WARN_ON_ONCE(n);
}

#endif /* _NBDWS_RX_SRC_H */
