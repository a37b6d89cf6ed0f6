// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target: WebSocket message framing in userspace
 * (lib/ws_stream.c), in both roles, over a ws_io whose read() serves the
 * fuzz input in pieces and whose write() keeps what is sent.
 *
 * Input: byte 0 bit 0 picks the role (0 client, 1 server), bit 1 makes
 * writes fail after (byte 2 & 7) of them; byte 1 is how many stream bytes
 * are handed over as preread at init; byte 2 seeds the piece sizes and
 * the operations (reads of 1..300 bytes, sends, a detach, a close). The
 * rest is the byte stream from the peer. Contracts checked:
 *   - every read that succeeds returns exactly the next bytes of the
 *     message payload a reference decoder (common/ws_frame.c, fed the
 *     whole stream at once) finds;
 *   - a failed read is -ECONNRESET, -EPROTO or the transport's error,
 *     -EPROTO only where the reference found a violation, the close code
 *     recorded is the reference's, and the stream stays ended;
 *   - a successful detach hands back exactly the stream bytes read but
 *     not parsed, and only outside a frame;
 *   - everything written parses, in the peer's role, as valid frames:
 *     the messages sent (payload equal), one pong per ping answered, and
 *     nothing after a close.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "ws_frame.h"
#include "ws_stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_OPS		4096
#define OUT_CAP		(4U << 20)

struct peer {
	const u8 *p;		/* the whole stream, preread included */
	size_t len, pos;	/* pos: handed to the stream so far */
	unsigned int rng;
	unsigned int writes, fail_after;
	bool fail_writes;
	u8 *out;		/* what the stream wrote */
	size_t out_len;
};

struct reference {
	u8 *payload;		/* message payload, unmasked */
	size_t len;
	enum ws_ev_type end;	/* WS_EV_CLOSE, WS_EV_ERROR or NEED_MORE */
	u16 close_code;
};

static ssize_t io_read(void *ctx, void *buf, size_t len)
{
	struct peer *pr = ctx;
	size_t n = 1 + fz_xorshift(&pr->rng) % 200;

	if (pr->pos == pr->len)
		return 0;
	if (n > len)
		n = len;
	if (n > pr->len - pr->pos)
		n = pr->len - pr->pos;
	memcpy(buf, pr->p + pr->pos, n);
	pr->pos += n;
	return (ssize_t)n;
}

static int io_write(void *ctx, const void *buf, size_t len)
{
	struct peer *pr = ctx;

	if (pr->fail_writes && pr->writes++ >= pr->fail_after)
		return -EPIPE;
	fz_check(pr->out_len + len <= OUT_CAP, "too much written");
	memcpy(pr->out + pr->out_len, buf, len);
	pr->out_len += len;
	return 0;
}

/* Decode @p as the stream would, in one go: what payload it holds. */
static void decode_reference(struct reference *r, const u8 *p, size_t len,
			     bool server)
{
	struct ws_dec d;
	size_t off = 0;

	ws_dec_init(&d, server);
	r->len = 0;
	r->end = WS_EV_NEED_MORE;
	while (off <= len) {
		struct ws_event ev;
		u64 left = ws_dec_data_left(&d);

		if (left) {
			size_t n = len - off < left ? len - off : (size_t)left;

			if (!n)
				return;
			memcpy(r->payload + r->len, p + off, n);
			ws_dec_data_done(&d, r->payload + r->len, n);
			r->len += n;
			off += n;
			continue;
		}
		off += ws_dec_parse(&d, p + off, len - off, &ev);
		if (ev.type == WS_EV_NEED_MORE)
			return;
		if (ev.type == WS_EV_CLOSE || ev.type == WS_EV_ERROR) {
			r->end = ev.type;
			r->close_code = ev.close_code;
			return;
		}
	}
}

/*
 * Parse what the stream wrote, as its peer would: every frame valid, the
 * data equal to @sent, pongs counted, nothing after the close.
 */
static void check_written(const struct peer *pr, bool server,
			  const u8 *sent, size_t sent_len, unsigned int pings)
{
	struct ws_dec d;
	size_t off = 0, got = 0;
	unsigned int pongs = 0;
	u8 *buf = malloc(pr->out_len + 1);

	fz_check(buf != NULL, "out of memory in the fuzzer");
	/* A server's peer is a client: it expects unmasked frames. */
	ws_dec_init(&d, !server);
	for (;;) {
		struct ws_event ev;
		u64 left = ws_dec_data_left(&d);

		if (left) {
			size_t n = pr->out_len - off;

			fz_check(n >= left, "written frame cut short");
			memcpy(buf + got, pr->out + off, (size_t)left);
			ws_dec_data_done(&d, buf + got, (size_t)left);
			got += (size_t)left;
			off += (size_t)left;
			continue;
		}
		off += ws_dec_parse(&d, pr->out + off, pr->out_len - off, &ev);
		if (ev.type == WS_EV_NEED_MORE) {
			fz_check(off == pr->out_len && !d.hdr_have,
				 "written frame cut short");
			break;
		}
		fz_check(ev.type != WS_EV_ERROR, "wrote an invalid frame");
		if (ev.type == WS_EV_PONG)
			pongs++;
		if (ev.type == WS_EV_CLOSE) {
			fz_check(off == pr->out_len, "wrote after the close");
			break;
		}
	}
	fz_check(got == sent_len && !memcmp(buf, sent, got),
		 "messages sent differ from those written");
	/* A failed write may have lost a pong that was counted. */
	fz_check(pongs == pings || (pr->fail_writes && pongs < pings),
		 "pongs written differ from pings answered");
	free(buf);
}

static int err_ok(int rc)
{
	return rc == -ECONNRESET || rc == -EPROTO || rc == -EPIPE;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static u8 rbuf[512], sbuf[300], sent[MAX_OPS * 300], out[OUT_CAP];
	struct reference ref = { 0 };
	struct peer pr = { 0 };
	struct ws_stream s;
	struct ws_io io = { &pr, io_read, io_write };
	u8 *stream;
	size_t pre, got = 0, sent_len = 0;
	bool server, ended = false, detached = false, failed = false;
	int op, rc;

	if (size < 3)
		return 0;
	server = data[0] & 1;
	pr.fail_writes = data[0] & 2;
	pr.fail_after = data[2] & 7;
	pr.rng = 0x9e3779b9u ^ data[2];
	pr.len = size - 3;
	stream = malloc(pr.len + 1);
	ref.payload = malloc(pr.len + 1);
	pr.out = out;
	fz_check(stream && ref.payload,
		 "out of memory in the fuzzer");
	memcpy(stream, data + 3, pr.len);
	pr.p = stream;
	pre = data[1] < pr.len ? data[1] : pr.len;
	pr.pos = pre;

	decode_reference(&ref, stream, pr.len, server);
	fz_check(!ws_stream_init(&s, &io,
				 server ? WS_ROLE_SERVER : WS_ROLE_CLIENT,
				 pre ? stream : NULL, pre), "ws_stream_init");

	for (op = 0; op < MAX_OPS && !detached && !failed; op++) {
		unsigned int r = fz_xorshift(&pr.rng);
		u8 *rest;
		size_t n, rest_len;

		/* An ended stream stays ended; once is enough to see it. */
		if (ended) {
			fz_check(ws_stream_read(&s, rbuf, 1) == -ECONNRESET &&
				 ws_stream_send(&s, sbuf, 1) == -ECONNRESET,
				 "ended stream still usable");
			break;
		}

		switch (r % 16) {
		case 0:		/* send a message of 0..299 bytes */
			n = (r >> 8) % sizeof(sbuf);
			memset(sbuf, (int)(r >> 16), n);
			rc = ws_stream_send(&s, sbuf, n);
			fz_check(rc == 0 || (ended && rc == -ECONNRESET) ||
				 rc == -EPIPE, "send result");
			if (!rc) {
				memcpy(sent + sent_len, sbuf, n);
				sent_len += n;
			}
			break;
		case 1:		/* try to hand the connection over */
			rc = ws_stream_detach(&s, &rest, &rest_len);
			fz_check(rc == 0 || rc == -EPROTO, "detach result");
			fz_check(!rc || (!rest && !rest_len),
				 "failed detach handed bytes");
			if (rc) {
				fz_check(ended || ws_dec_data_left(&s.dec) ||
					 s.dec.hdr_have || s.dec.in_message,
					 "detach refused outside a frame");
				break;
			}
			fz_check(rest_len <= pr.pos &&
				 (!rest_len ||
				  !memcmp(rest, stream + pr.pos - rest_len,
					  rest_len)),
				 "detached bytes are not the unparsed ones");
			free(rest);
			detached = true;	/* the stream is no longer ours */
			break;
		default:	/* read 1..300 bytes */
			n = 1 + (r >> 8) % 300;
			rc = ws_stream_read(&s, rbuf, n);
			if (!rc) {
				fz_check(!ended && got + n <= ref.len &&
					 !memcmp(rbuf, ref.payload + got, n),
					 "read bytes differ from the payload");
				got += n;
				break;
			}
			fz_check(err_ok(rc) && s.err.msg[0], "read result");
			fz_check(rc != -EPROTO || ref.end == WS_EV_ERROR,
				 "-EPROTO where the stream is valid");
			fz_check(!s.peer_close_code ||
				 (ref.end == WS_EV_CLOSE &&
				  s.peer_close_code == ref.close_code),
				 "close code differs from the peer's");
			if (rc == -EPIPE) {
				/*
				 * A transport error leaves the read half done:
				 * the stream is unusable, but not ended.
				 */
				failed = true;
				break;
			}
			fz_check(s.ended, "failed read left stream open");
			ended = true;
			break;
		}
	}
	if (!ended && !detached && !failed)
		ws_stream_close(&s, (u16)(pr.rng & 1 ? 0 : 1000));
	check_written(&pr, server, sent, sent_len, s.pings);
	ws_stream_free(&s);
	free(ref.payload);
	free(stream);
	return 0;
}
