/* SPDX-License-Identifier: GPL-2.0 */
/*
 * RFC 6455 WebSocket framing: a streaming frame decoder and a frame header
 * encoder, for a binary-only protocol (NBD carried in binary messages).
 *
 * Hand-written plain C with no dependency beyond nbdws_types.h because the
 * same source is compiled into nbdws.ko, whose receive path parses frames
 * straight off the socket, and into userspace (tools, unit tests, fuzzers).
 *
 * The decoder never copies data payload: it parses frame headers and
 * control frames itself, then hands data payload to the caller, which moves
 * the bytes where they belong (a bio page, an NBD reply header buffer) and
 * calls ws_dec_data_done() to unmask them in place at their destination.
 * It needs no allocation and keeps all its state in struct ws_dec.
 *
 * Policy on top of RFC 6455, documented here because peers will hit it:
 * - TEXT frames are a protocol error (close code 1002): NBD is binary.
 * - Non-minimal length encodings are a protocol error (1002), as the RFC
 *   requires the minimal encoding.
 * - Data frames have no size limit; a message may carry any number of NBD
 *   replies and a reply may span any number of frames and messages.
 * - An invalid UTF-8 close reason fails with 1007, as the RFC requires.
 */
#ifndef _NBDWS_WS_FRAME_H
#define _NBDWS_WS_FRAME_H

#include "nbdws_types.h"

/* Opcodes */
#define WS_OP_CONT		0x0
#define WS_OP_TEXT		0x1
#define WS_OP_BINARY		0x2
#define WS_OP_CLOSE		0x8
#define WS_OP_PING		0x9
#define WS_OP_PONG		0xa

/* Close codes this code sends or interprets */
#define WS_CLOSE_NORMAL		1000
#define WS_CLOSE_GOING_AWAY	1001
#define WS_CLOSE_PROTOCOL	1002
#define WS_CLOSE_NO_STATUS	1005	/* never on the wire */
#define WS_CLOSE_INVALID_DATA	1007
#define WS_CLOSE_TOO_BIG	1009
#define WS_CLOSE_INTERNAL	1011

#define WS_MAX_HEADER		14
#define WS_MAX_CONTROL		125

struct ws_dec {
	u8 state;		/* enum in ws_frame.c */
	bool expect_masked;	/* server role: peer must mask */
	bool in_message;	/* fragmented data message open */
	bool masked;		/* current frame */
	u8 opcode;		/* current frame */
	u8 hdr_have;		/* header bytes collected */
	u8 hdr_need;		/* header length, known after 2 bytes */
	u8 ctrl_have;		/* control payload bytes collected */
	u8 hdr[WS_MAX_HEADER];
	u8 mask[4];
	u64 frame_len;		/* payload length of the current frame */
	u64 frame_done;		/* payload bytes of it already consumed */
	/* Control payload, NUL-terminated so a close reason is a C string */
	u8 ctrl[WS_MAX_CONTROL + 1];
	/* Terminal event, repeated once the decoder has stopped */
	u16 end_code;
	const char *end_reason;
};

/* Server role: @expect_masked true; client role: false. */
void ws_dec_init(struct ws_dec *d, bool expect_masked);

enum ws_ev_type {
	WS_EV_NEED_MORE,	/* all input consumed, frame incomplete */
	WS_EV_DATA,		/* data payload bytes are next in the stream */
	WS_EV_PING,
	WS_EV_PONG,
	WS_EV_CLOSE,		/* peer closed; decoder stops */
	WS_EV_ERROR,		/* protocol violation; decoder stops */
};

struct ws_event {
	enum ws_ev_type type;
	/*
	 * PING, PONG, CLOSE: the whole unmasked control payload, valid until
	 * the next call on the decoder.
	 */
	const u8 *payload;
	u8 payload_len;
	/*
	 * CLOSE: the peer's code (1005 if it sent none).
	 * ERROR: the code to send in our close frame (1002, 1007 or 1011).
	 */
	u16 close_code;
	/*
	 * CLOSE: the peer's reason, NUL-terminated, reason_len bytes of UTF-8.
	 * ERROR: static text describing the violation.
	 */
	const char *reason;
	u8 reason_len;
};

/*
 * Parse frame headers and control frames from @buf. Returns the bytes
 * consumed and fills @ev. Stops as soon as one event is ready:
 * WS_EV_DATA when the next byte of the stream (buf[returned]) is data
 * payload of a binary or continuation frame (0 bytes are consumed when the
 * decoder is already inside payload), a control event, or WS_EV_NEED_MORE
 * when all of @buf was consumed without completing anything. Empty data
 * frames produce no event. After WS_EV_CLOSE or WS_EV_ERROR the decoder is
 * finished and repeats that event, consuming nothing.
 */
size_t ws_dec_parse(struct ws_dec *d, const u8 *buf, size_t len,
		    struct ws_event *ev);

/*
 * Bytes ws_dec_parse() can take before it has something to report: the
 * rest of a frame header or of a control frame's payload. 0 inside data
 * payload and once the decoder has stopped. A caller that reads exactly
 * this many bytes off a stream never reads past a frame header, so data
 * payload can go from the stream straight to its destination.
 */
size_t ws_dec_want(const struct ws_dec *d);

/* Data payload bytes left in the current frame (>0 after WS_EV_DATA). */
u64 ws_dec_data_left(const struct ws_dec *d);

/*
 * The caller moved @n (<= ws_dec_data_left()) payload bytes into @dst:
 * unmask them there if the frame is masked, and advance. @dst may be NULL
 * when the frame is unmasked and the bytes are dropped. Consuming more than
 * is left is a caller bug: the decoder then stops with an ERROR (1011).
 */
void ws_dec_data_done(struct ws_dec *d, u8 *dst, size_t n);

/*
 * Same in one pass, for a caller that can see the received bytes in place:
 * copy @n payload bytes from @src to @dst, unmasking them on the way if the
 * frame is masked, and advance. Split a run of payload anywhere: the key
 * phase follows the bytes consumed.
 */
void ws_dec_data_copy(struct ws_dec *d, u8 *dst, const u8 *src, size_t n);

/*
 * Encode a frame header for a @len byte payload into @out and return its
 * length (2..14). @mask_key NULL sends the frame unmasked. Returns 0 for
 * an opcode above 15 or a length of 2^63 or more, which cannot be framed.
 */
size_t ws_frame_header(u8 out[WS_MAX_HEADER], u8 opcode, bool fin, u64 len,
		       const u8 *mask_key);

/*
 * Copy @len bytes from @src to @dst XOR-ing them with @key, the key phase
 * being that of byte @offset of the frame payload. @dst may equal @src
 * (in-place masking); other overlaps are not allowed. Both may be NULL
 * when @len is 0.
 */
void ws_mask_copy(u8 *dst, const u8 *src, size_t len, const u8 key[4],
		  u64 offset);

/* Payload of a close frame carrying @code and no reason: returns 2. */
size_t ws_close_payload(u8 out[2], u16 code);

/*
 * May a close frame carry @code (RFC 6455 7.4 and the IANA registry)? Not
 * 1004-1006 and 1015, which are reserved or never sent, nor 1016-2999.
 */
bool ws_valid_close_code(u16 code);

/* Is @s[0..@len) RFC 3629 UTF-8, as a close reason must be? */
bool ws_valid_utf8(const u8 *s, size_t len);

#endif /* _NBDWS_WS_FRAME_H */
