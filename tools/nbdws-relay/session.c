// SPDX-License-Identifier: GPL-2.0
/*
 * nbdws-relay: a client connection's life up to the hand-over (see
 * session.h). Runs on a fiber: every lib/ call that would block parks
 * the fiber on the loop, so this reads as blocking code.
 */
#include <errno.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth.h"
#include "fallback.h"
#include "fiber.h"
#include "http_req.h"
#include "listen.h"
#include "nbd_handshake.h"
#include "nbd_sock.h"
#include "relay.h"
#include "route.h"
#include "secret.h"
#include "session.h"
#include "slot.h"
#include "status.h"
#include "tls.h"
#include "webfiles.h"
#include "ws_accept.h"
#include "ws_frame.h"
#include "ws_io.h"
#include "ws_stream.h"

/* After the handshake deadline: time still given to say why we close. */
#define SESSION_GOODBYE_MS	1000
/* A static file may take longer than a handshake to send. */
#define SESSION_FILE_MS		120000

struct session {
	struct session *prev, *next;
	struct fiber *fiber;
	int fd;
	bool tls_listener;
	bool counted;			/* in n_handshakes */
	char peer[80];
	long long deadline;

	struct tls_conn *tls;		/* NULL for plain connections */
	bool has_cert;
	u8 cert_sha[32];
	struct ws_fd_io fio;
	struct ws_io io;

	u8 *buf;			/* the request header, then preread */
	size_t have, hend;
	struct http_request req;

	struct ws_stream ws;
	bool ws_on;
	struct slot *slot;
	unsigned int gen;		/* our claim on @slot, 0: none */
};

static struct session *sessions;
static unsigned int n_handshakes;
static struct tls_server *tls_srv;

static int remaining_ms(const struct session *s)
{
	long long left = s->deadline - nbd_now_ms();

	return left < 1 ? 1 : left > INT32_MAX ? INT32_MAX : (int)left;
}

/* Give the connection @ms more, whatever the handshake deadline said. */
static void extend_deadline(struct session *s, int ms)
{
	long long when = nbd_now_ms() + ms;

	if (s->tls)
		s->tls->deadline_ms = when;
	else
		s->fio.deadline_ms = when;
}

static void peer_name(const struct sockaddr *sa, socklen_t len, char *out,
		      size_t size)
{
	char host[NI_MAXHOST], port[NI_MAXSERV];

	if (sa->sa_family == AF_UNIX) {
		snprintf(out, size, "unix");
		return;
	}
	if (getnameinfo(sa, len, host, sizeof(host), port, sizeof(port),
			NI_NUMERICHOST | NI_NUMERICSERV)) {
		snprintf(out, size, "?");
		return;
	}
	snprintf(out, size, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s",
		 host, port);
}

/* The socket is closed or the kernel's now: it no longer counts. */
static void handed_over(struct session *s)
{
	if (s->counted) {
		s->counted = false;
		n_handshakes--;
	}
	listen_conn_closed();
}

/* ---- HTTP answers --------------------------------------------------------- */

static int respond(struct session *s, int status, const char *extra,
		   const char *type, const void *body, size_t len)
{
	size_t size = len + 1024, n;
	char *out = malloc(size);
	int rc;

	if (!out)
		return -ENOMEM;
	n = http_build_response(out, size, status, extra, type, body, len);
	rc = n ? s->io.write(s->io.ctx, out, n) : -EMSGSIZE;
	free(out);
	return rc;
}

/* Refuse with @status: one INFO line, one line of body. */
static void refuse(struct session *s, int status, const char *extra,
		   const char *why)
{
	char line[256], hdrs[256];
	size_t len;

	relay_printable(why, strlen(why), line, sizeof(line) - 1);
	relay_log(RELAY_LOG_INFO, "refused %s: %d %s", s->peer, status, line);
	len = strlen(line);
	/* RFC 9110 11.6.1: every 401 says how to authenticate. */
	snprintf(hdrs, sizeof(hdrs), "%s%s", extra ? extra : "",
		 status == 401 ? "WWW-Authenticate: Bearer\r\n" : "");
	line[len++] = '\n';
	(void)respond(s, status, hdrs[0] ? hdrs : NULL,
		      "text/plain; charset=utf-8", line, len);
}

static void answer_json(struct session *s, char *text)
{
	if (!text) {
		refuse(s, 500, NULL, "out of memory");
		return;
	}
	(void)respond(s, 200, "Cache-Control: no-store\r\n",
		      "application/json", text, strlen(text));
	free(text);
}

/* ---- WebSocket closes ---------------------------------------------------- */

/*
 * Close the WebSocket with @code and @reason (ws_stream_close() has no
 * reason), best effort, within a short grace even past the deadline.
 */
static void ws_goodbye(struct session *s, u16 code, const char *reason)
{
	u8 frame[WS_MAX_HEADER + WS_MAX_CONTROL];
	size_t rlen = reason ? strlen(reason) : 0, hlen;

	if (!code || (s->ws_on && s->ws.ended))
		return;
	if (rlen > WS_MAX_CONTROL - 2)
		rlen = WS_MAX_CONTROL - 2;
	hlen = ws_frame_header(frame, WS_OP_CLOSE, true, 2 + rlen, NULL);
	ws_close_payload(frame + hlen, code);
	/* Close reasons go without their NUL. */
	for (size_t i = 0; i < rlen; i++)
		frame[hlen + 2 + i] = (u8)reason[i];
	if (s->ws_on)
		s->ws.ended = true;
	extend_deadline(s, SESSION_GOODBYE_MS);
	(void)s->io.write(s->io.ctx, frame, hlen + 2 + rlen);
}

/* ---- plain requests ------------------------------------------------------ */

static void serve_plain(struct session *s, const struct route *r)
{
	struct auth_result ar;
	int rc;

	if (r->kind == ROUTE_FILE) {
		extend_deadline(s, SESSION_FILE_MS);
		rc = webfiles_serve(&s->io, s->req.path, r->head);
		if (rc > 0)
			refuse(s, rc, NULL, rc == 403 ? "file too large" :
			       rc == 400 ? "bad path" : "not found");
		return;
	}
	auth_check_request(&s->req, s->has_cert ? s->cert_sha : NULL, -1,
			   &ar);
	if (ar.status) {
		refuse(s, ar.status, NULL, ar.why);
		return;
	}
	answer_json(s, r->kind == ROUTE_STATUS ? status_json() :
		    status_slots_json());
}

/* ---- upgrade ------------------------------------------------------------- */

static u16 handshake_close(int rc, const char **reason)
{
	switch (rc) {
	case -ETIMEDOUT:
		*reason = "handshake timed out";
		return WS_CLOSE_INTERNAL;
	case -ECANCELED:
		*reason = "relay shutting down";
		return WS_CLOSE_GOING_AWAY;
	case -ENOENT:
	case -EACCES:
		*reason = "export refused";
		return 1008;
	case -EPROTO:
		*reason = "NBD handshake failed";
		return WS_CLOSE_PROTOCOL;
	case -ECONNRESET:
		*reason = NULL;
		return 0;
	default:
		*reason = "NBD handshake failed";
		return WS_CLOSE_INTERNAL;
	}
}

/* Raw bytes past the handshake, in the order the kernel must see them. */
/* The connection could not be prepared for the kernel: close, release. */
static void handover_failed(struct session *s, int rc, u8 *pre)
{
	relay_log(RELAY_LOG_INFO, "refused %s: hand-over: %s", s->peer,
		  strerror(-rc));
	ws_goodbye(s, rc == -EPROTO ? WS_CLOSE_PROTOCOL : WS_CLOSE_INTERNAL,
		   "hand-over failed");
	slot_release(s->slot, s->gen);
	free(pre);
}

static int collect_preread(struct session *s, u8 **pre, size_t *len)
{
	struct nbdws_err err = { { 0 } };
	u8 *tpre = NULL, *all;
	size_t tlen = 0;
	int rc;

	rc = ws_stream_detach(&s->ws, pre, len);
	if (rc || !s->tls)
		return rc;
	rc = tls_detach(s->tls, &tpre, &tlen, &err);
	/* A failed detach leaves the session whole: end it here. */
	if (rc)
		tls_free(s->tls);
	free(s->tls);
	s->tls = NULL;
	/* From here on the socket speaks kTLS by itself. */
	ws_fd_io_init(&s->io, &s->fio, s->fd, remaining_ms(s));
	if (rc) {
		relay_log(RELAY_LOG_WARN, "%s: TLS hand-over: %s", s->peer,
			  err.msg);
		return rc;
	}
	if (!tlen)
		return 0;
	all = realloc(*pre, *len + tlen);
	if (!all) {
		free(tpre);
		return -ENOMEM;
	}
	memcpy(all + *len, tpre, tlen);
	free(tpre);
	*pre = all;
	*len += tlen;
	return 0;
}

static void fast_path(struct session *s, const struct nbd_export_info *info)
{
	struct slot *sl = s->slot;
	struct slot_conn c = { 0 };
	const char *reason = NULL;
	size_t prelen = 0;
	u8 *pre = NULL;
	bool fresh;
	u16 code;
	int rc;

	rc = collect_preread(s, &pre, &prelen);
	if (!rc && prelen > NBDWS_PREREAD_MAX)
		rc = -EMSGSIZE;
	if (rc) {
		handover_failed(s, rc, pre);
		return;
	}
	c.info = info;
	c.fd = s->fd;
	c.transport = NBDWS_TRANSPORT_WS_SERVER;
	c.preread = pre;
	c.preread_len = prelen;
	c.ping_ms = sl->cfg->ping_ms;
	c.peer = s->peer;
	rc = slot_attach(sl, s->gen, &c, &fresh, &code, &reason);
	free(pre);
	if (rc) {
		ws_goodbye(s, code, reason);
		return;
	}
	/* The kernel holds its own reference now. */
	close(s->fd);
	s->fd = -1;
	handed_over(s);
	if (fresh)
		(void)slot_start(sl, s->gen, &code, &reason);
}

static void userspace_path(struct session *s,
			   const struct nbd_export_info *info)
{
	struct slot *sl = s->slot;
	struct slot_conn c = { 0 };
	const char *reason = NULL;
	struct fallback *fb;
	size_t prelen = 0;
	u8 *pre = NULL;
	int rc, sv[2];
	bool fresh;
	u16 code;

	rc = ws_stream_detach(&s->ws, &pre, &prelen);
	if (!rc && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		rc = -errno;
	if (rc) {
		handover_failed(s, rc, pre);
		return;
	}
	/*
	 * The pump first: CONNECT makes the kernel read the partition
	 * table, through the socketpair, before it returns.
	 */
	fb = fallback_start(s->fd, s->tls, pre, prelen, sv[0],
			    slot_fallback_end, sl);
	free(pre);
	if (!fb) {
		close(sv[0]);
		close(sv[1]);
		relay_log(RELAY_LOG_WARN, "%s: userspace framing: out of memory",
			  s->peer);
		ws_goodbye(s, WS_CLOSE_INTERNAL, "out of memory");
		slot_release(sl, s->gen);
		return;
	}
	/* The pump owns the client's socket and TLS session now. */
	s->fd = -1;
	s->tls = NULL;
	handed_over(s);
	slot_set_fallback(sl, s->gen, fb);
	c.info = info;
	c.fd = sv[1];
	c.transport = NBDWS_TRANSPORT_PLAIN;
	c.userspace = true;
	c.peer = s->peer;
	rc = slot_attach(sl, s->gen, &c, &fresh, &code, &reason);
	close(sv[1]);
	if (rc) {
		slot_stop_fallback(sl, code, reason);
		return;
	}
	if (fresh)
		(void)slot_start(sl, s->gen, &code, &reason);
}

static void negotiate(struct session *s)
{
	struct nbdws_err err = { { 0 } }, kerr = { { 0 } };
	struct nbd_export_info info;
	const char *reason;
	struct nbd_xport x;
	bool fast;
	u16 code;
	int rc;

	rc = ws_stream_init(&s->ws, &s->io, WS_ROLE_SERVER, s->buf + s->hend,
			    s->have - s->hend);
	if (rc) {
		slot_release(s->slot, s->gen);
		return;
	}
	s->ws_on = true;
	ws_stream_xport(&s->ws, &x);
	memset(&info, 0, sizeof(info));
	rc = nbd_handshake_go(&x, s->slot->cfg->export_name ?
			      s->slot->cfg->export_name : "", &info, &err);
	if (rc) {
		code = handshake_close(rc, &reason);
		relay_log(RELAY_LOG_INFO, "refused %s: slot %s: NBD handshake: %s",
			  s->peer, s->slot->cfg->name, err.msg);
		ws_goodbye(s, code, reason);
		slot_release(s->slot, s->gen);
		return;
	}
	fast = !relay_cfg->fallback &&
	       (!s->tls || !tls_ktls_check(s->tls, &kerr));
	if (!fast)
		relay_log(RELAY_LOG_WARN, "slot %s: %s: userspace framing: %s",
			  s->slot->cfg->name, s->peer, relay_cfg->fallback ?
			  "--fallback" : kerr.msg);
	if (fast)
		fast_path(s, &info);
	else
		userspace_path(s, &info);
	nbd_export_info_free(&info);
}

static void upgrade(struct session *s, const struct route *r)
{
	struct slot *sl = slot_get((unsigned int)r->slot);
	struct auth_result ar;
	const char *how;
	bool reconnect;
	char out[1024];
	size_t n;
	int rc;

	auth_check_request(&s->req, s->has_cert ? s->cert_sha : NULL,
			   r->slot, &ar);
	if (ar.status) {
		refuse(s, ar.status, NULL, ar.why);
		return;
	}
	if (!auth_origin_ok(sl->cfg, &s->req)) {
		refuse(s, 403, NULL, "origin not allowed for this slot");
		return;
	}
	rc = slot_claim(sl, &ar.id, &s->gen, &reconnect);
	if (rc) {
		if (rc == -EBUSY)
			refuse(s, 409, NULL, "the slot is busy");
		else
			refuse(s, 503, NULL, "the relay is shutting down");
		return;
	}
	s->slot = sl;
	n = ws_build_accept(r->accept, ar.protocol[0] ? ar.protocol : NULL,
			    out, sizeof(out));
	how = ar.why;
	memset(&ar, 0, sizeof(ar));	/* the protocol may be a token */
	if (!n) {
		slot_release(sl, s->gen);
		refuse(s, 500, NULL, "cannot build the upgrade response");
		return;
	}
	rc = s->io.write(s->io.ctx, out, n);
	memset(out, 0, sizeof(out));
	if (rc) {
		slot_release(sl, s->gen);
		return;
	}
	relay_log(RELAY_LOG_INFO, "slot %s: %s upgraded (%s%s)", sl->cfg->name,
		  s->peer, how, reconnect ? ", reconnecting" :
		  "");
	negotiate(s);
}

/* ---- the fiber ----------------------------------------------------------- */

static int start_tls(struct session *s)
{
	struct nbdws_err err = { { 0 } };
	char what[96];
	int rc;

	if (!tls_srv) {
		relay_log(RELAY_LOG_ERR, "%s: TLS listener without a certificate",
			  s->peer);
		return -EINVAL;
	}
	s->tls = calloc(1, sizeof(*s->tls));
	if (!s->tls)
		return -ENOMEM;
	rc = tls_accept(s->tls, tls_srv, s->fd, remaining_ms(s), &err);
	if (rc) {
		free(s->tls);
		s->tls = NULL;
		relay_log(RELAY_LOG_INFO, "refused %s: TLS: %s", s->peer,
			  err.msg);
		return rc;
	}
	tls_describe(s->tls, what, sizeof(what));
	relay_log(RELAY_LOG_DEBUG, "%s: %s", s->peer, what);
	tls_io(s->tls, &s->io);
	s->has_cert = !tls_peer_cert_sha256(s->tls, s->cert_sha);
	return 0;
}

static void serve(struct session *s)
{
	struct nbdws_err err = { { 0 } };
	struct route r;
	int rc;

	s->buf = malloc(RELAY_MAX_HEADER_BYTES);
	if (!s->buf)
		return;
	rc = http_read_header(&s->io, s->buf, RELAY_MAX_HEADER_BYTES, &s->have,
			      &s->hend, &err);
	if (rc == -EMSGSIZE) {
		refuse(s, 431, NULL, "request header too large");
		return;
	}
	if (rc == -ETIMEDOUT) {
		extend_deadline(s, SESSION_GOODBYE_MS);
		refuse(s, 408, NULL, "request not complete in time");
		return;
	}
	if (rc) {
		relay_log(RELAY_LOG_DEBUG, "%s: %s", s->peer, err.msg);
		return;
	}
	rc = http_parse_request((const char *)s->buf, s->hend,
				RELAY_MAX_REQUEST_LINE, &s->req, &err);
	if (rc) {
		refuse(s, rc, NULL, err.msg);
		return;
	}
	route_request(relay_cfg, &s->req, &r);
	switch (r.kind) {
	case ROUTE_REFUSE:
		refuse(s, r.status, r.headers, r.why);
		break;
	case ROUTE_UPGRADE:
		upgrade(s, &r);
		break;
	default:
		serve_plain(s, &r);
		break;
	}
}

static void session_free(struct session *s)
{
	if (s->ws_on)
		ws_stream_free(&s->ws);
	if (s->slot && s->gen)
		slot_release(s->slot, s->gen);
	http_request_free(&s->req);
	/* The request header: Authorization, ?token=, subprotocol tokens. */
	secret_free(s->buf, RELAY_MAX_HEADER_BYTES);
	if (s->tls) {
		tls_free(s->tls);
		free(s->tls);
	}
	if (s->fd >= 0) {
		close(s->fd);
		handed_over(s);
	}
	if (s->counted)
		n_handshakes--;
	if (s->prev)
		s->prev->next = s->next;
	else
		sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	free(s);
}

static void session_main(void *arg)
{
	struct session *s = arg;

	s->fiber = fiber_self();
	if (!s->tls_listener || !start_tls(s)) {
		if (!s->tls_listener)
			ws_fd_io_init(&s->io, &s->fio, s->fd, remaining_ms(s));
		serve(s);
	}
	session_free(s);
}

void session_start(int fd, const struct sockaddr *peer, socklen_t peer_len,
		   bool tls)
{
	struct session *s = calloc(1, sizeof(*s));

	if (!s) {
		close(fd);
		listen_conn_closed();
		return;
	}
	s->fd = fd;
	s->tls_listener = tls;
	s->deadline = nbd_now_ms() + relay_cfg->handshake_ms;
	peer_name(peer, peer_len, s->peer, sizeof(s->peer));
	relay_log(RELAY_LOG_DEBUG, "accepted %s%s", s->peer,
		  tls ? " (TLS)" : "");
	s->next = sessions;
	if (sessions)
		sessions->prev = s;
	sessions = s;
	s->counted = true;
	n_handshakes++;
	if (!fiber_start(session_main, s)) {
		relay_log(RELAY_LOG_WARN, "%s: no memory for a fiber", s->peer);
		session_free(s);
	}
}

unsigned int session_handshakes(void)
{
	return n_handshakes;
}

void session_cancel_all(void)
{
	struct session *s;

	for (s = sessions; s; s = s->next)
		if (s->fiber)
			fiber_cancel(s->fiber);
}

int session_init(void)
{
	struct nbdws_err err = { { 0 } };
	struct tls_server_opts o = { 0 };
	int rc;

	rc = auth_init();
	if (rc)
		return rc;
	rc = webfiles_init();
	if (rc)
		return rc;
	if (!relay_cfg->tls.cert_file)
		return 0;
	o.cert_file = relay_cfg->tls.cert_file;
	o.key_file = relay_cfg->tls.key_file;
	o.client_ca_file = relay_cfg->tls.client_ca_file;
	o.require_client_cert = relay_cfg->tls.require_client_cert;
	o.want_ktls = !relay_cfg->fallback;
	rc = tls_server_new(&tls_srv, &o, &err);
	if (rc)
		relay_log(RELAY_LOG_ERR, "TLS: %s", err.msg);
	return rc;
}

void session_fini(void)
{
	tls_server_free(tls_srv);
	tls_srv = NULL;
	webfiles_fini();
	auth_fini();
}
