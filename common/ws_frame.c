// SPDX-License-Identifier: GPL-2.0
/*
 * RFC 6455 WebSocket frame decoder and encoder, shared by nbdws.ko and
 * userspace.
 *
 * Hand-written because it must run in the kernel's receive path, on socket
 * bytes arriving in arbitrary pieces, with no allocation, no copy of data
 * payload and no library underneath; building the very same file into the
 * unit tests and fuzzers is what lets them vouch for the kernel code.
 *
 * The decoder is a byte-driven state machine. Every check that can be made
 * early is made early (on the first two header bytes), so a peer that
 * speaks something else is rejected before we wait for more of its bytes.
 */
#include "ws_frame.h"

#ifdef __KERNEL__
/* No vector registers here: the word loop in ws_mask_copy() does it all. */
static inline size_t ws_mask_vec(u8 *dst, const u8 *src, size_t len, u64 kw)
{
	return 0;
}
#else
#include "ws_mask_vec.h"	/* lib/: AVX2 where the CPU has it */
#endif

enum ws_dec_state {
	WS_ST_HEADER,		/* collecting a frame header */
	WS_ST_CONTROL,		/* collecting a control frame's payload */
	WS_ST_DATA,		/* inside data payload, owned by the caller */
	WS_ST_CLOSED,		/* peer's close frame seen */
	WS_ST_FAILED,		/* protocol violation seen */
};

#define WS_B0_FIN	0x80
#define WS_B0_RSV	0x70
#define WS_B0_OPCODE	0x0f
#define WS_B1_MASK	0x80
#define WS_B1_LEN	0x7f
#define WS_LEN_16	126
#define WS_LEN_64	127

void ws_dec_init(struct ws_dec *d, bool expect_masked)
{
	memset(d, 0, sizeof(*d));
	d->state = WS_ST_HEADER;
	d->expect_masked = expect_masked;
}

static bool ws_is_control(u8 opcode)
{
	return opcode & 0x8;
}

static void ws_fail(struct ws_dec *d, u16 code, const char *reason)
{
	d->state = WS_ST_FAILED;
	d->end_code = code;
	d->end_reason = reason;
}

/* Fill @ev from the terminal state the decoder stopped in. */
static void ws_end_event(const struct ws_dec *d, struct ws_event *ev)
{
	if (d->state == WS_ST_CLOSED) {
		ev->type = WS_EV_CLOSE;
		ev->payload = d->ctrl;
		ev->payload_len = d->ctrl_have;
		ev->close_code = d->end_code;
		if (d->ctrl_have >= 2) {
			ev->reason = (const char *)d->ctrl + 2;
			ev->reason_len = d->ctrl_have - 2;
		} else {
			ev->reason = "";
		}
		return;
	}
	ev->type = WS_EV_ERROR;
	ev->close_code = d->end_code;
	ev->reason = d->end_reason;
	ev->reason_len = (u8)strlen(d->end_reason);
}

/*
 * Check the first two header bytes and work out the header length. Returns
 * false (decoder failed) on any violation that these bytes already show.
 */
static bool ws_check_start(struct ws_dec *d)
{
	u8 b0 = d->hdr[0], b1 = d->hdr[1];
	u8 opcode = b0 & WS_B0_OPCODE;
	bool fin = b0 & WS_B0_FIN;
	bool masked = b1 & WS_B1_MASK;
	u8 len7 = b1 & WS_B1_LEN;

	if (b0 & WS_B0_RSV) {
		ws_fail(d, WS_CLOSE_PROTOCOL, "reserved bits set");
		return false;
	}
	switch (opcode) {
	case WS_OP_CONT:
		if (!d->in_message) {
			ws_fail(d, WS_CLOSE_PROTOCOL,
				"continuation frame without a started message");
			return false;
		}
		break;
	case WS_OP_BINARY:
		if (d->in_message) {
			ws_fail(d, WS_CLOSE_PROTOCOL,
				"new message inside a fragmented message");
			return false;
		}
		break;
	case WS_OP_TEXT:
		ws_fail(d, WS_CLOSE_PROTOCOL,
			"text frame (only binary messages are accepted)");
		return false;
	case WS_OP_CLOSE:
	case WS_OP_PING:
	case WS_OP_PONG:
		if (!fin) {
			ws_fail(d, WS_CLOSE_PROTOCOL, "fragmented control frame");
			return false;
		}
		if (len7 > WS_MAX_CONTROL) {
			ws_fail(d, WS_CLOSE_PROTOCOL,
				"control frame payload over 125 bytes");
			return false;
		}
		break;
	default:
		ws_fail(d, WS_CLOSE_PROTOCOL, "unknown opcode");
		return false;
	}
	if (masked != d->expect_masked) {
		ws_fail(d, WS_CLOSE_PROTOCOL, masked ?
			"masked frame from a server" :
			"unmasked frame from a client");
		return false;
	}

	d->opcode = opcode;
	d->masked = masked;
	d->hdr_need = 2 + (masked ? 4 : 0);
	if (len7 == WS_LEN_16)
		d->hdr_need += 2;
	else if (len7 == WS_LEN_64)
		d->hdr_need += 8;
	return true;
}

/* Decode the payload length and mask key of a complete header. */
static bool ws_finish_header(struct ws_dec *d)
{
	u8 len7 = d->hdr[1] & WS_B1_LEN;
	const u8 *p = d->hdr + 2;
	u64 len = len7;
	int i;

	if (len7 == WS_LEN_16) {
		len = (u64)p[0] << 8 | p[1];
		p += 2;
		if (len < WS_LEN_16) {
			ws_fail(d, WS_CLOSE_PROTOCOL,
				"non-minimal 16-bit payload length");
			return false;
		}
	} else if (len7 == WS_LEN_64) {
		len = 0;
		for (i = 0; i < 8; i++)
			len = len << 8 | p[i];
		p += 8;
		if (len >> 63) {
			ws_fail(d, WS_CLOSE_PROTOCOL,
				"64-bit payload length with the top bit set");
			return false;
		}
		if (len <= 0xffff) {
			ws_fail(d, WS_CLOSE_PROTOCOL,
				"non-minimal 64-bit payload length");
			return false;
		}
	}
	if (d->masked)
		memcpy(d->mask, p, 4);
	d->frame_len = len;
	d->frame_done = 0;
	return true;
}

/* RFC 3629 UTF-8: no overlongs, no surrogates, nothing above U+10FFFF. */
bool ws_valid_utf8(const u8 *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		u8 c = s[i];
		u8 lo = 0x80, hi = 0xbf;
		size_t n, k;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			if (c == 0xe0)
				lo = 0xa0;
			else if (c == 0xed)
				hi = 0x9f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			if (c == 0xf0)
				lo = 0x90;
			else if (c == 0xf4)
				hi = 0x8f;
		} else {
			return false;
		}
		if (len - i - 1 < n)
			return false;
		for (k = 1; k <= n; k++) {
			u8 cc = s[i + k];

			if (cc < lo || cc > hi)
				return false;
			lo = 0x80;
			hi = 0xbf;
		}
		i += n + 1;
	}
	return true;
}

/* Close codes a peer may send (RFC 6455 7.4 and the IANA registry). */
bool ws_valid_close_code(u16 code)
{
	if (code >= 1000 && code <= 1003)
		return true;
	if (code >= 1007 && code <= 1014)
		return true;
	return code >= 3000 && code <= 4999;
}

/* A whole control frame payload is in d->ctrl: turn it into an event. */
static void ws_control_event(struct ws_dec *d, struct ws_event *ev)
{
	u8 len = d->ctrl_have;

	d->ctrl[len] = 0;
	d->state = WS_ST_HEADER;
	d->hdr_have = 0;

	if (d->opcode == WS_OP_PING || d->opcode == WS_OP_PONG) {
		ev->type = d->opcode == WS_OP_PING ? WS_EV_PING : WS_EV_PONG;
		ev->payload = d->ctrl;
		ev->payload_len = len;
		return;
	}

	/* Close */
	if (len == 1) {
		ws_fail(d, WS_CLOSE_PROTOCOL, "close frame with a 1-byte payload");
	} else if (len == 0) {
		d->state = WS_ST_CLOSED;
		d->end_code = WS_CLOSE_NO_STATUS;
	} else if (!ws_valid_close_code((u16)(d->ctrl[0] << 8 | d->ctrl[1]))) {
		ws_fail(d, WS_CLOSE_PROTOCOL, "invalid close code");
	} else if (!ws_valid_utf8(d->ctrl + 2, len - 2)) {
		ws_fail(d, WS_CLOSE_INVALID_DATA, "close reason is not UTF-8");
	} else {
		d->state = WS_ST_CLOSED;
		d->end_code = (u16)(d->ctrl[0] << 8 | d->ctrl[1]);
	}
	ws_end_event(d, ev);
}

/*
 * A header is complete. Returns true with @ev filled when the frame yields
 * an event right away (data payload next, empty control frame, failure).
 */
static bool ws_header_done(struct ws_dec *d, struct ws_event *ev)
{
	if (!ws_finish_header(d)) {
		ws_end_event(d, ev);
		return true;
	}

	if (ws_is_control(d->opcode)) {
		d->ctrl_have = 0;
		if (d->frame_len == 0) {
			ws_control_event(d, ev);
			return true;
		}
		d->state = WS_ST_CONTROL;
		return false;
	}

	/* Binary or continuation: FIN says whether the message goes on. */
	d->in_message = !(d->hdr[0] & WS_B0_FIN);
	if (d->frame_len == 0) {
		d->hdr_have = 0;
		return false;
	}
	d->state = WS_ST_DATA;
	ev->type = WS_EV_DATA;
	return true;
}

size_t ws_dec_parse(struct ws_dec *d, const u8 *buf, size_t len,
		    struct ws_event *ev)
{
	size_t used = 0;

	memset(ev, 0, sizeof(*ev));

	while (1) {
		switch (d->state) {
		case WS_ST_CLOSED:
		case WS_ST_FAILED:
			ws_end_event(d, ev);
			return used;
		case WS_ST_DATA:
			ev->type = WS_EV_DATA;
			return used;
		case WS_ST_HEADER:
			if (used == len)
				goto need_more;
			d->hdr[d->hdr_have++] = buf[used++];
			if (d->hdr_have == 2 && !ws_check_start(d))
				continue;	/* reports the failure */
			if (d->hdr_have < 2 || d->hdr_have < d->hdr_need)
				break;
			if (ws_header_done(d, ev))
				return used;
			break;
		case WS_ST_CONTROL: {
			u64 left = d->frame_len - d->ctrl_have;
			size_t n = len - used;

			if (n == 0)
				goto need_more;
			if (n > left)
				n = (size_t)left;
			memcpy(d->ctrl + d->ctrl_have, buf + used, n);
			if (d->masked)
				ws_mask_copy(d->ctrl + d->ctrl_have,
					     d->ctrl + d->ctrl_have, n,
					     d->mask, d->ctrl_have);
			d->ctrl_have += (u8)n;
			used += n;
			if (d->ctrl_have == d->frame_len) {
				ws_control_event(d, ev);
				return used;
			}
			break;
		}
		}
	}

need_more:
	ev->type = WS_EV_NEED_MORE;
	return used;
}

size_t ws_dec_want(const struct ws_dec *d)
{
	switch (d->state) {
	case WS_ST_HEADER:
		if (d->hdr_have < 2)
			return 2 - d->hdr_have;
		return d->hdr_need - d->hdr_have;
	case WS_ST_CONTROL:
		return (size_t)(d->frame_len - d->ctrl_have);
	default:
		return 0;
	}
}

u64 ws_dec_data_left(const struct ws_dec *d)
{
	if (d->state != WS_ST_DATA)
		return 0;
	return d->frame_len - d->frame_done;
}

/* May @n more payload bytes be consumed? Stops the decoder if not. */
static bool ws_dec_data_fits(struct ws_dec *d, size_t n)
{
	/* Outside data payload only n == 0 is harmless. */
	if (d->state != WS_ST_DATA || n > d->frame_len - d->frame_done) {
		if (n && d->state != WS_ST_CLOSED && d->state != WS_ST_FAILED)
			ws_fail(d, WS_CLOSE_INTERNAL,
				"payload consumed past the end of the frame");
		return false;
	}
	return true;
}

static void ws_dec_data_advance(struct ws_dec *d, size_t n)
{
	d->frame_done += n;
	if (d->frame_done == d->frame_len) {
		d->state = WS_ST_HEADER;
		d->hdr_have = 0;
	}
}

void ws_dec_data_done(struct ws_dec *d, u8 *dst, size_t n)
{
	if (!ws_dec_data_fits(d, n))
		return;
	if (d->masked && dst)
		ws_mask_copy(dst, dst, n, d->mask, d->frame_done);
	ws_dec_data_advance(d, n);
}

void ws_dec_data_copy(struct ws_dec *d, u8 *dst, const u8 *src, size_t n)
{
	if (!ws_dec_data_fits(d, n))
		return;
	if (d->masked)
		ws_mask_copy(dst, src, n, d->mask, d->frame_done);
	else
		memcpy(dst, src, n);
	ws_dec_data_advance(d, n);
}

size_t ws_frame_header(u8 out[WS_MAX_HEADER], u8 opcode, bool fin, u64 len,
		       const u8 *mask_key)
{
	size_t n = 2;
	int i;

	if (opcode > WS_B0_OPCODE || len >> 63)
		return 0;

	out[0] = (fin ? WS_B0_FIN : 0) | opcode;
	out[1] = mask_key ? WS_B1_MASK : 0;
	if (len < WS_LEN_16) {
		out[1] |= (u8)len;
	} else if (len <= 0xffff) {
		out[1] |= WS_LEN_16;
		out[2] = (u8)(len >> 8);
		out[3] = (u8)len;
		n = 4;
	} else {
		out[1] |= WS_LEN_64;
		for (i = 0; i < 8; i++)
			out[2 + i] = (u8)(len >> (56 - 8 * i));
		n = 10;
	}
	if (mask_key) {
		memcpy(out + n, mask_key, 4);
		n += 4;
	}
	return n;
}

void ws_mask_copy(u8 *dst, const u8 *src, size_t len, const u8 key[4],
		  u64 offset)
{
	u8 k[8];
	u64 kw;
	size_t i;

	/*
	 * An empty payload may come without a buffer (an empty close frame
	 * from lib/ws_stream.c): stepping a NULL pointer, even by 0, is
	 * undefined in C.
	 */
	if (!len)
		return;

	/* The key rotated to @offset, twice: XOR eight bytes at a time. */
	for (i = 0; i < 8; i++)
		k[i] = key[(offset + i) & 3];
	memcpy(&kw, k, 8);

	/* Whole 64-byte blocks keep the phase of @offset for what follows. */
	i = ws_mask_vec(dst, src, len, kw);
	dst += i;
	src += i;
	len -= i;

	/*
	 * Four words per turn: in the kernel (no vector registers) this
	 * halves the loop overhead per byte, which is most of the cost under
	 * emulation; in userspace the compiler may vectorise it. Four named
	 * words, not an array: GCC keeps an array of them on the stack in
	 * the kernel, which tripled the memory accesses per word.
	 */
	for (; len >= 32; len -= 32, src += 32, dst += 32) {
		u64 w0, w1, w2, w3;

		memcpy(&w0, src, 8);
		memcpy(&w1, src + 8, 8);
		memcpy(&w2, src + 16, 8);
		memcpy(&w3, src + 24, 8);
		w0 ^= kw;
		w1 ^= kw;
		w2 ^= kw;
		w3 ^= kw;
		memcpy(dst, &w0, 8);
		memcpy(dst + 8, &w1, 8);
		memcpy(dst + 16, &w2, 8);
		memcpy(dst + 24, &w3, 8);
	}
	for (; len >= 8; len -= 8, src += 8, dst += 8) {
		u64 w;

		memcpy(&w, src, 8);
		w ^= kw;
		memcpy(dst, &w, 8);
	}
	for (i = 0; i < len; i++)
		dst[i] = src[i] ^ k[i];
}

size_t ws_close_payload(u8 out[2], u16 code)
{
	out[0] = (u8)(code >> 8);
	out[1] = (u8)code;
	return 2;
}
