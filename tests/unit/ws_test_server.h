/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A scripted WebSocket NBD server for the ws_dial tests: it checks the
 * upgrade request, answers it, runs the server side of the NBD handshake
 * in WebSocket messages (greeting split across messages with a ping in
 * between, NBD_OPT_GO or the EXPORT_NAME fallback), can put frames right
 * behind the last handshake reply, and then echoes 4-byte messages.
 * It runs over any ws_io, so over a plain socket or a TLS session.
 *
 * Everything is static: each test program includes this header once.
 */
#ifndef _WS_TEST_SERVER_H
#define _WS_TEST_SERVER_H

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nbd_be.h"
#include "nbd_proto.h"
#include "ws_io.h"
#include "ws_stream.h"
#include "ws_upgrade.h"

#define EXPORT_SIZE	(3ULL << 30)
#define EXPORT_FLAGS	(NBDP_FLAG_HAS_FLAGS | NBDP_FLAG_SEND_FLUSH)

/* A ping frame from a server: unmasked, payload "hi". */
static const u8 ping_hi[] = { 0x89, 0x02, 'h', 'i' };

struct srv_script {
	bool export_name_only;	/* answer OPT_GO with ERR_UNSUP */
	bool ping_in_upgrade;	/* ping in the same write as the 101 */
	bool ping_after_ack;	/* ping in the same write as the final reply */
	bool close_at_go;	/* answer OPT_GO with a close frame 1008 */
	const char *host_fmt;	/* expected Host header, %u = port */
};

/* Exit codes of the server say which check failed. */
enum { SRV_OK, SRV_IO = 10, SRV_REQUEST, SRV_HOST, SRV_HEADERS, SRV_PONG };

static void must(bool ok, int code)
{
	if (!ok)
		_exit(code);
}

static void raw_write(const struct ws_io *io, const void *buf, size_t len)
{
	must(io->write(io->ctx, buf, len) == 0, SRV_IO);
}

/* Final option reply, optionally with a ping in the same segment. */
static void send_reply(struct ws_stream *s, const struct ws_io *io, u32 opt, u32 type,
		       const void *data, u32 len, bool ping_after)
{
	u8 msg[64], frame[WS_MAX_HEADER + 64 + sizeof(ping_hi)];
	size_t h;

	put_be64(msg, NBDP_OPT_REPLY_MAGIC);
	put_be32(msg + 8, opt);
	put_be32(msg + 12, type);
	put_be32(msg + 16, len);
	if (len)
		memcpy(msg + 20, data, len);
	if (!ping_after) {
		must(!ws_stream_send(s, msg, 20 + len), SRV_IO);
		return;
	}
	h = ws_frame_header(frame, WS_OP_BINARY, true, 20 + len, NULL);
	memcpy(frame + h, msg, 20 + len);
	memcpy(frame + h + 20 + len, ping_hi, sizeof(ping_hi));
	raw_write(io, frame, h + 20 + len + sizeof(ping_hi));
}

/*
 * Play a WebSocket NBD server over @io (plain socket or TLS) as @sc says;
 * @port is the listening port, for the expected Host header. Exits the
 * process with SRV_OK or the code of the first failed check.
 */
static void serve_ws_nbd(const struct ws_io *io, unsigned short port,
			 const struct srv_script *sc)
{
	char req[4096], key[WS_KEY_LEN + 1], acc[WS_ACCEPT_LEN + 1], resp[512];
	char host[64];
	struct ws_stream s;
	size_t have = 0;
	const char *k;
	u8 buf[64];
	int n;

	while (!ws_http_header_end((u8 *)req, have)) {
		ssize_t r = io->read(io->ctx, req + have, sizeof(req) - 1 - have);

		must(r > 0, SRV_IO);
		have += (size_t)r;
	}
	req[have] = '\0';
	must(!strncmp(req, "GET /nbd/disk?token=abc HTTP/1.1\r\n",
		      strlen("GET /nbd/disk?token=abc HTTP/1.1\r\n")), SRV_REQUEST);
	snprintf(host, sizeof(host), sc->host_fmt, port);
	snprintf(resp, sizeof(resp), "\r\nHost: %s\r\n", host);
	must(strstr(req, resp) != NULL, SRV_HOST);
	must(strstr(req, "\r\nOrigin: https://bmc.example\r\n") &&
	     strstr(req, "\r\nAuthorization: Bearer t0k\r\n") &&
	     strstr(req, "\r\nSec-WebSocket-Protocol: nbd\r\n"), SRV_HEADERS);
	k = strstr(req, "Sec-WebSocket-Key: ");
	must(k != NULL, SRV_REQUEST);
	memcpy(key, k + 19, WS_KEY_LEN);
	key[WS_KEY_LEN] = '\0';
	must(!ws_accept_for_key(key, acc), SRV_REQUEST);
	n = snprintf(resp, sizeof(resp),
		     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
		     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
		     "Sec-WebSocket-Protocol: nbd\r\n\r\n", acc);
	if (sc->ping_in_upgrade) {
		memcpy(resp + n, ping_hi, sizeof(ping_hi));
		n += (int)sizeof(ping_hi);
	}
	raw_write(io, resp, (size_t)n);

	must(!ws_stream_init(&s, io, WS_ROLE_SERVER, NULL, 0), SRV_IO);
	/* Greeting in two messages with a ping between them. */
	put_be64(buf, NBDP_INIT_PASSWD);
	put_be64(buf + 8, NBDP_IHAVEOPT);
	put_be16(buf + 16, NBDP_FLAG_FIXED_NEWSTYLE | NBDP_FLAG_NO_ZEROES);
	must(!ws_stream_send(&s, buf, 7), SRV_IO);
	raw_write(io, ping_hi, sizeof(ping_hi));
	must(!ws_stream_send(&s, buf + 7, 11), SRV_IO);
	must(!ws_stream_read(&s, buf, 4), SRV_IO);	/* client flags */
	/* The client answered every ping before it sent its flags. */
	must(s.pongs == 1U + sc->ping_in_upgrade, SRV_PONG);
	for (;;) {
		u8 *data = NULL;
		u32 opt, len;

		must(!ws_stream_read(&s, buf, 16), SRV_IO);
		must(get_be64(buf) == NBDP_IHAVEOPT, SRV_IO);
		opt = get_be32(buf + 8);
		len = get_be32(buf + 12);
		must(len < 65536, SRV_IO);
		data = malloc(len + 1);
		must(!len || !ws_stream_read(&s, data, len), SRV_IO);
		free(data);
		if (opt == NBDP_OPT_GO && sc->close_at_go) {
			u8 frame[] = { 0x88, 0x08, 0x03, 0xf0, 'p', 'o', 'l', 'i', 'c', 'y' };

			raw_write(io, frame, sizeof(frame));
			break;
		}
		if ((opt == NBDP_OPT_GO || opt == NBDP_OPT_INFO) &&
		    !sc->export_name_only) {
			u8 info[12];

			put_be16(info, NBDP_INFO_EXPORT);
			put_be64(info + 2, EXPORT_SIZE);
			put_be16(info + 10, EXPORT_FLAGS);
			send_reply(&s, io, opt, NBDP_REP_INFO, info, 12, false);
			send_reply(&s, io, opt, NBDP_REP_ACK, NULL, 0,
				   opt == NBDP_OPT_GO && sc->ping_after_ack);
			if (opt == NBDP_OPT_GO)
				break;
			continue;
		}
		if (opt == NBDP_OPT_ABORT) {
			/* The client may leave without reading this ACK. */
			u8 ack[20];

			put_be64(ack, NBDP_OPT_REPLY_MAGIC);
			put_be32(ack + 8, opt);
			put_be32(ack + 12, NBDP_REP_ACK);
			put_be32(ack + 16, 0);
			ws_stream_send(&s, ack, sizeof(ack));
			ws_stream_free(&s);
			_exit(SRV_OK);
		}
		if (opt == NBDP_OPT_EXPORT_NAME) {
			u8 msg[10 + sizeof(ping_hi) + WS_MAX_HEADER];
			size_t h;

			put_be64(buf, EXPORT_SIZE);
			put_be16(buf + 8, EXPORT_FLAGS);
			h = ws_frame_header(msg, WS_OP_BINARY, true, 10, NULL);
			memcpy(msg + h, buf, 10);
			memcpy(msg + h + 10, ping_hi, sizeof(ping_hi));
			raw_write(io, msg, h + 10 + (sc->ping_after_ack ?
						     sizeof(ping_hi) : 0));
			break;
		}
		send_reply(&s, io, opt, NBDP_REP_ERR_UNSUP, NULL, 0, false);
	}
	/*
	 * Echo messages until the client goes away: proves that the
	 * connection the client handed over still carries frames both ways.
	 */
	while (!ws_stream_read(&s, buf, 4))
		must(!ws_stream_send(&s, buf, 4), SRV_IO);
	ws_stream_free(&s);
	_exit(SRV_OK);
}

#endif /* _WS_TEST_SERVER_H */
