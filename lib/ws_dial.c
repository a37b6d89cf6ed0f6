// SPDX-License-Identifier: GPL-2.0
/*
 * Client-role WebSocket dialing: connect, TLS, upgrade, NBD handshake
 * (see ws_dial.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nbd_sock.h"
#include "secret.h"
#include "tls.h"
#include "ws_dial.h"
#include "ws_io.h"
#include "ws_stream.h"
#include "ws_upgrade.h"

/* Everything one WebSocket connection holds while in userspace. */
struct ws_session {
	int fd;
	bool is_tls;
	struct tls_conn tls;
	struct ws_fd_io fio;
	struct ws_io io;
	struct ws_stream stream;
	bool have_stream;
	char *subprotocol;
};

static int time_left(long long deadline)
{
	long long left = deadline - nbd_now_ms();

	return left > 0 ? (int)left : 1;
}

/* "host[:port]" for the Host header; the port only when not the default. */
static int host_header(const struct nbd_uri *uri, char *buf, size_t size)
{
	const char *def = uri->scheme == NBD_URI_WSS ? "443" : "80";
	bool brackets = uri->host_is_ipv6;
	int n;

	if (!strcmp(uri->port, def))
		n = snprintf(buf, size, "%s%s%s", brackets ? "[" : "",
			     uri->host, brackets ? "]" : "");
	else
		n = snprintf(buf, size, "%s%s%s:%s", brackets ? "[" : "",
			     uri->host, brackets ? "]" : "", uri->port);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static void session_close(struct ws_session *s, bool polite)
{
	if (s->have_stream) {
		if (polite)
			ws_stream_close(&s->stream, WS_CLOSE_NORMAL);
		ws_stream_free(&s->stream);
		s->have_stream = false;
	}
	if (s->is_tls)
		tls_free(&s->tls);
	s->is_tls = false;
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	/* A server may answer with a token the client offered. */
	secret_free_str(s->subprotocol);
	s->subprotocol = NULL;
}

static int session_open(struct ws_session *s, const struct nbd_uri *uri,
			const struct ws_dial_opts *o, bool need_ktls,
			int timeout_ms, struct nbdws_err *err)
{
	long long deadline = nbd_now_ms() + timeout_ms;
	struct ws_upgrade_opts uo = {
		.resource = uri->ws_resource && *uri->ws_resource ?
			    uri->ws_resource : "/",
		.subprotocol = o->subprotocol,
		.authorization = o->authorization,
		.origin = o->origin,
	};
	struct ws_upgrade_result res;
	char host[NBD_MAX_STRING + 16];
	int rc;

	memset(s, 0, sizeof(*s));
	s->fd = -1;
	if (uri->scheme != NBD_URI_WS && uri->scheme != NBD_URI_WSS)
		return nbdws_err_set(err, -EINVAL, "not a ws:// or wss:// URI");
	if (host_header(uri, host, sizeof(host)))
		return nbdws_err_set(err, -ENAMETOOLONG, "host name too long");
	uo.host = host;

	if (uri->scheme == NBD_URI_WSS) {
		struct tls_opts to = {
			.server_name = uri->host,
			.ca_file = o->ca_file,
			.insecure = o->insecure,
			.want_ktls = need_ktls,
		};

		/* OpenSSL setup first: the ClientHello follows the connect. */
		rc = tls_prepare(&s->tls, &to, err);
		if (rc)
			return rc;
		s->is_tls = true;
	}
	s->fd = nbd_sock_connect_tcp(uri->host, uri->port, time_left(deadline),
				      err);
	if (s->fd < 0) {
		rc = s->fd;
		goto fail;
	}
	if (s->is_tls) {
		rc = tls_connect(&s->tls, s->fd, time_left(deadline), err);
		if (rc) {
			s->is_tls = false;	/* tls_connect() freed it */
			goto fail;
		}
		if (need_ktls) {
			rc = tls_ktls_check(&s->tls, err);
			if (rc)
				goto fail;
		}
		tls_io(&s->tls, &s->io);
	} else {
		ws_fd_io_init(&s->io, &s->fio, s->fd, time_left(deadline));
	}

	rc = ws_upgrade_client(&s->io, &uo, &res, err);
	if (rc) {
		if (s->is_tls && s->tls.err.msg[0])
			nbdws_err_prefix(err, rc, "%s", s->tls.err.msg);
		goto fail;
	}
	rc = ws_stream_init(&s->stream, &s->io, WS_ROLE_CLIENT, res.preread,
			    res.preread_len);
	s->subprotocol = res.subprotocol;
	res.subprotocol = NULL;
	ws_upgrade_result_free(&res);
	if (rc) {
		nbdws_err_set(err, rc, "out of memory");
		goto fail;
	}
	s->have_stream = true;
	return 0;

fail:
	session_close(s, false);
	return rc;
}

/*
 * The NBD handshake reports transport failures by errno only; add what the
 * WebSocket and TLS layers know about them.
 */
static int add_layer_detail(struct ws_session *s, int rc,
			    struct nbdws_err *err)
{
	char msg[sizeof(err->msg)];

	if (!s->stream.err.msg[0])
		return rc;
	snprintf(msg, sizeof(msg), "%s", err->msg);
	if (s->is_tls && s->tls.err.msg[0])
		return nbdws_err_set(err, rc, "%s (%s; %s)", msg,
				     s->stream.err.msg, s->tls.err.msg);
	return nbdws_err_set(err, rc, "%s (%s)", msg, s->stream.err.msg);
}

/* Take the connection out of the session for the kernel. */
static int hand_over(struct ws_session *s, struct ws_conn *conn,
		     struct nbdws_err *err)
{
	u8 *raw = NULL, *tls_bytes = NULL;
	size_t raw_len = 0, tls_len = 0;
	int rc;

	rc = ws_stream_detach(&s->stream, &raw, &raw_len);
	if (rc)
		return nbdws_err_set(err, rc, "%s", s->stream.err.msg);
	if (s->is_tls) {
		rc = tls_detach(&s->tls, &tls_bytes, &tls_len, err);
		if (rc) {
			free(raw);
			return rc;
		}
		s->is_tls = false;
		conn->ktls = true;
	}
	/* Stream order: what we had buffered, then what OpenSSL had. */
	if (tls_len) {
		u8 *all = realloc(raw, raw_len + tls_len);

		if (!all) {
			free(raw);
			free(tls_bytes);
			return nbdws_err_set(err, -ENOMEM, "out of memory");
		}
		memcpy(all + raw_len, tls_bytes, tls_len);
		raw = all;
		raw_len += tls_len;
	}
	free(tls_bytes);
	conn->preread = raw;
	conn->preread_len = raw_len;
	conn->subprotocol = s->subprotocol;
	s->subprotocol = NULL;
	conn->fd = s->fd;
	s->fd = -1;
	return 0;
}

int ws_dial(const struct nbd_uri *uri, const struct ws_dial_opts *o,
	    enum nbd_dial_mode mode, int timeout_ms,
	    struct nbd_export_info *info, struct ws_conn *conn,
	    struct nbdws_err *err)
{
	struct ws_session s;
	struct nbd_xport x;
	int rc;

	memset(conn, 0, sizeof(*conn));
	conn->fd = -1;
	rc = session_open(&s, uri, o, mode == NBD_DIAL_GO, timeout_ms, err);
	if (rc)
		return rc;
	if (s.is_tls)
		tls_describe(&s.tls, conn->tls_desc, sizeof(conn->tls_desc));
	ws_stream_xport(&s.stream, &x);
	if (mode == NBD_DIAL_GO)
		rc = nbd_handshake_go(&x, uri->export_name, info, err);
	else
		rc = nbd_handshake_info(&x, uri->export_name, info, err);
	if (rc) {
		rc = add_layer_detail(&s, rc, err);
		session_close(&s, true);
		return rc;
	}
	if (mode != NBD_DIAL_GO) {
		session_close(&s, true);
		return 0;
	}
	rc = hand_over(&s, conn, err);
	session_close(&s, false);
	if (rc) {
		nbd_export_info_free(info);
		ws_conn_free(conn);
		return rc;
	}
	return conn->fd;
}

int ws_dial_list(const struct nbd_uri *uri, const struct ws_dial_opts *o,
		 int timeout_ms, struct nbd_export_list *list,
		 struct nbdws_err *err)
{
	struct ws_session s;
	struct nbd_xport x;
	int rc;

	rc = session_open(&s, uri, o, false, timeout_ms, err);
	if (rc)
		return rc;
	ws_stream_xport(&s.stream, &x);
	rc = nbd_handshake_list(&x, list, err);
	if (rc)
		rc = add_layer_detail(&s, rc, err);
	session_close(&s, true);
	return rc;
}

void ws_conn_free(struct ws_conn *conn)
{
	free(conn->preread);
	secret_free_str(conn->subprotocol);
	conn->preread = NULL;
	conn->preread_len = 0;
	conn->subprotocol = NULL;
}
