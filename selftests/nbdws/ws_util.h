/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers for the WebSocket transport selftests (ws_*.c): running the
 * scripted peer (lib/ws_nbd_peer.py), negotiating a connection in either
 * WebSocket role in userspace, handing it to the kernel with CONNECT, and
 * reading CONN_DEAD events together with the WebSocket close code.
 *
 * How a connection reaches the kernel, per role of the kernel:
 *
 * ws-client (NBDWS_TRANSPORT_WS_CLIENT): the peer listens as a WebSocket
 *   server. The test dials it with lib/ws_dial (TCP, HTTP upgrade as the
 *   client, NBD handshake as the NBD client inside WebSocket messages), as
 *   nbdctl does for ws:// URIs, and passes the fd plus the bytes read past
 *   the handshake (PREREAD) to CONNECT.
 *
 * ws-server (NBDWS_TRANSPORT_WS_SERVER): the browser case. The peer is a
 *   WebSocket *client* but still the NBD *server*. The test makes a
 *   connected loopback TCP pair, gives one end to the peer (--fd) and
 *   keeps the other. On its end it plays what the relay will play: it
 *   reads and answers the peer's HTTP upgrade request (WebSocket server),
 *   then runs the NBD handshake as the NBD client over WebSocket messages
 *   in the server role (lib/ws_stream: unmasked out, masked in), detaches
 *   the stream (bytes read past the handshake become PREREAD) and passes
 *   the fd to CONNECT. From then on the kernel is both the WebSocket
 *   server and the NBD client of that socket.
 *
 * Header-only (static inline), like the shared selftest helpers.
 */
#ifndef _NBDWS_WS_UTIL_H
#define _NBDWS_WS_UTIL_H

#include <strings.h>

#include "nbdws_test_genl.h"
#include "nbd_handshake.h"
#include "nbd_uri.h"
#include "ws_dial.h"
#include "ws_stream.h"
#include "ws_upgrade.h"

#define WS_PYTHON	"/usr/bin/python3"
#define WS_PEER_REL	"selftests/nbdws/lib/ws_nbd_peer.py"
#define WS_PEER_MAX_ARGS	48
/* Python starts slowly under TCG; the handshake must still be bounded. */
#define WS_HANDSHAKE_MS	60000

/* Path of the peer script: $NBDWS_TOP/..., or relative to the cwd. */
static inline void ws_peer_script(char *out, size_t len)
{
	const char *top = getenv("NBDWS_TOP");

	snprintf(out, len, "%s%s%s", top && *top ? top : "",
		 top && *top ? "/" : "", WS_PEER_REL);
}

/* A scripted peer process and the files it talks through. */
struct ws_peer {
	pid_t pid;
	char log[256];		/* its --log file */
	char out[256];		/* its stdout/stderr */
	char port_file[256];	/* server role: the bound port */
	int port;
};

/*
 * Start the peer with @extra (NULL-terminated) after the common arguments.
 * @fd >= 0: client role on that connected socket, which the child
 * inherits under the same number (close-on-exec cleared for the fork).
 * @fd < 0: server role listening on 127.0.0.1 with an ephemeral port,
 * read back from its port file (written once the export is open).
 */
static inline int ws_peer_start(struct ws_peer *p, const char *tag, int fd,
				 const char *const *extra)
{
	char script[512], fdarg[16];
	const char *argv[WS_PEER_MAX_ARGS];
	int n = 0, out, i;
	long long end;

	memset(p, 0, sizeof(*p));
	snprintf(p->log, sizeof(p->log), "%s/ws-peer-%s-%d.log", tu_tmpdir(),
		 tag, getpid());
	snprintf(p->out, sizeof(p->out), "%s/ws-peer-%s-%d.out", tu_tmpdir(),
		 tag, getpid());
	snprintf(p->port_file, sizeof(p->port_file), "%s/ws-peer-%s-%d.port",
		 tu_tmpdir(), tag, getpid());
	unlink(p->log);
	unlink(p->port_file);
	ws_peer_script(script, sizeof(script));
	argv[n++] = WS_PYTHON;
	argv[n++] = script;
	argv[n++] = "--log";
	argv[n++] = p->log;
	if (fd >= 0) {
		snprintf(fdarg, sizeof(fdarg), "%d", fd);
		argv[n++] = "--role";
		argv[n++] = "client";
		argv[n++] = "--fd";
		argv[n++] = fdarg;
		/* The child must inherit it. */
		fcntl(fd, F_SETFD, 0);
	} else {
		argv[n++] = "--role";
		argv[n++] = "server";
		argv[n++] = "--listen";
		argv[n++] = "127.0.0.1:0";
		argv[n++] = "--port-file";
		argv[n++] = p->port_file;
	}
	for (i = 0; extra && extra[i] && n < WS_PEER_MAX_ARGS - 1; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	out = open(p->out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	p->pid = tu_spawn((char *const *)argv, out);
	if (out >= 0)
		close(out);
	if (fd >= 0)
		fcntl(fd, F_SETFD, FD_CLOEXEC);
	if (p->pid < 0)
		return -errno;
	if (fd >= 0)
		return 0;
	end = tu_deadline(WS_HANDSHAKE_MS);
	while (tu_now_ms() < end) {
		FILE *f = fopen(p->port_file, "r");

		if (f) {
			if (fscanf(f, "%d", &p->port) != 1)
				p->port = 0;
			fclose(f);
			if (p->port > 0)
				return 0;
		}
		if (waitpid(p->pid, NULL, WNOHANG) == p->pid) {
			p->pid = 0;
			return -ECHILD;
		}
		tu_msleep(20);
	}
	return -ETIMEDOUT;
}

/* Wait (bounded) for the peer to exit; its exit status, or -ETIMEDOUT. */
static inline int ws_peer_wait(struct ws_peer *p, int timeout_ms)
{
	int st;

	if (p->pid <= 0)
		return -ECHILD;
	if (tu_wait_pid(p->pid, timeout_ms, &st))
		return -ETIMEDOUT;
	p->pid = 0;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static inline void ws_peer_stop(struct ws_peer *p)
{
	if (p->pid > 0)
		tu_kill_reap(p->pid);
	p->pid = 0;
}

/* A whole file (malloc'd, NUL-terminated; "" if absent). */
static inline char *ws_read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	size_t cap = 1 << 16, have = 0, n;
	char *buf = malloc(cap + 1);

	if (!buf)
		return NULL;
	buf[0] = 0;
	if (!f)
		return buf;
	while ((n = fread(buf + have, 1, cap - have, f)) > 0) {
		have += n;
		if (have == cap) {
			char *nb = realloc(buf, 2 * cap + 1);

			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
	}
	buf[have] = 0;
	fclose(f);
	return buf;
}

/* The peer's whole log. */
static inline char *ws_peer_read_log(const struct ws_peer *p)
{
	return ws_read_file(p->log);
}

/* Does the log have a line starting with @prefix? Polls up to @timeout_ms. */
static inline bool ws_peer_log_has(const struct ws_peer *p, const char *prefix,
				   int timeout_ms)
{
	long long end = tu_deadline(timeout_ms);

	for (;;) {
		char *log = ws_peer_read_log(p), *line;
		bool found = false;

		for (line = log; line && *line; ) {
			char *nl = strchr(line, '\n');

			if (!strncmp(line, prefix, strlen(prefix)))
				found = true;
			line = nl ? nl + 1 : line + strlen(line);
		}
		free(log);
		if (found)
			return true;
		if (tu_now_ms() >= end)
			return false;
		tu_msleep(50);
	}
}

/* Count the log lines starting with @prefix. */
static inline int ws_peer_log_count(const struct ws_peer *p, const char *prefix)
{
	char *log = ws_peer_read_log(p), *line;
	int n = 0;

	for (line = log; line && *line; ) {
		char *nl = strchr(line, '\n');

		if (!strncmp(line, prefix, strlen(prefix)))
			n++;
		line = nl ? nl + 1 : line + strlen(line);
	}
	free(log);
	return n;
}

/*
 * A counter from the peer's "summary" line (written when it exits), e.g.
 * "pongs_ok". -1 when there is no summary or no such counter.
 */
static inline long long ws_peer_summary(const struct ws_peer *p,
					const char *key)
{
	char *log = ws_peer_read_log(p), *s, *k;
	char pat[64];
	long long v = -1;

	if (!log)
		return -1;
	s = strstr(log, "\nsummary ");
	if (!s && !strncmp(log, "summary ", 8))
		s = log;
	snprintf(pat, sizeof(pat), " %s=", key);
	if (s) {
		char *eol = strchr(s + 1, '\n');

		if (eol)
			*eol = 0;
		k = strstr(s, pat);
		if (k)
			v = strtoll(k + strlen(pat), NULL, 10);
	}
	free(log);
	return v;
}

/* The last @max bytes of a file, for TH_LOG diagnostics. */
static inline void ws_file_tail(const char *path, char *out, size_t max)
{
	char *log = ws_read_file(path);
	size_t len = log ? strlen(log) : 0;

	snprintf(out, max, "%s", log ? log + (len >= max ? len - max + 1 : 0)
				      : "");
	free(log);
}

/* The end of the peer's log (what it saw). */
static inline void ws_peer_log_tail(const struct ws_peer *p, char *out,
				    size_t max)
{
	ws_file_tail(p->log, out, max);
}

/* ---- the kernel's side of the handshake --------------------------------- */

/* What CONNECT gets for one WebSocket connection. */
struct ws_handover {
	int fd;
	u8 *preread;
	size_t preread_len;
	struct nbd_export_info info;
	char why[1200];		/* what failed */
};

static inline void ws_handover_free(struct ws_handover *h)
{
	if (h->fd >= 0)
		close(h->fd);
	h->fd = -1;
	free(h->preread);
	h->preread = NULL;
	nbd_export_info_free(&h->info);
}

/*
 * Kernel as ws-client: dial ws://127.0.0.1:@port@path like nbdctl does
 * (upgrade, NBD handshake in messages), ending in the transmission phase.
 */
static inline int ws_dial_peer(int port, const char *path,
			       struct ws_handover *h)
{
	struct ws_dial_opts o = { 0 };
	struct nbd_uri uri;
	struct ws_conn conn;
	struct nbdws_err err = { { 0 } };
	char text[128];
	int ret;

	memset(h, 0, sizeof(*h));
	h->fd = -1;
	snprintf(text, sizeof(text), "ws://127.0.0.1:%d%s", port, path);
	ret = nbd_uri_parse(text, &uri, &err);
	if (ret) {
		snprintf(h->why, sizeof(h->why), "%s: %s", text, err.msg);
		return ret;
	}
	memset(&conn, 0, sizeof(conn));
	conn.fd = -1;
	ret = ws_dial(&uri, &o, NBD_DIAL_GO, WS_HANDSHAKE_MS, &h->info, &conn,
		      &err);
	nbd_uri_free(&uri);
	if (ret < 0) {
		snprintf(h->why, sizeof(h->why), "ws_dial %s: %s", text,
			 err.msg);
		return ret;
	}
	h->fd = conn.fd;
	h->preread = conn.preread;
	h->preread_len = conn.preread_len;
	conn.preread = NULL;
	ws_conn_free(&conn);
	return 0;
}

/* Value of header @name in the request header @hdr, or NULL. */
static inline const char *ws_req_header(const char *hdr, const char *name,
					char *val, size_t len)
{
	const char *line = strstr(hdr, "\r\n");
	size_t nlen = strlen(name);

	while (line && line[2] && !(line[2] == '\r' && line[3] == '\n')) {
		const char *start = line + 2, *eol = strstr(start, "\r\n");

		if (!eol)
			break;
		if ((size_t)(eol - start) > nlen && start[nlen] == ':' &&
		    !strncasecmp(start, name, nlen)) {
			const char *v = start + nlen + 1;
			size_t n;

			while (*v == ' ' || *v == '\t')
				v++;
			n = eol - v;
			while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
				n--;
			snprintf(val, len, "%.*s", (int)n, v);
			return val;
		}
		line = eol;
	}
	return NULL;
}

/*
 * Answer the peer's HTTP upgrade on @fd as a WebSocket server: read the
 * request (bounded size and time), check it, send 101 with the right
 * Sec-WebSocket-Accept. Bytes after the request are returned in @rest
 * (the peer may already have sent frames).
 */
static inline int ws_accept_upgrade(int fd, u8 **rest, size_t *rest_len,
				    char *why, size_t whylen)
{
	long long end = tu_deadline(WS_HANDSHAKE_MS);
	char *buf = malloc(WS_HTTP_MAX_HEADER + 1);
	char val[256], accept[WS_ACCEPT_LEN + 1], resp[256];
	size_t have = 0, hend = 0;
	int ret = -EPROTO, rl;

	*rest = NULL;
	*rest_len = 0;
	if (!buf)
		return -ENOMEM;
	while (!hend) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long long left = end - tu_now_ms();
		ssize_t n;

		if (left <= 0 || have == WS_HTTP_MAX_HEADER) {
			snprintf(why, whylen, "no complete upgrade request (%zu bytes)",
				 have);
			ret = -ETIMEDOUT;
			goto out;
		}
		if (poll(&pfd, 1, (int)left) <= 0)
			continue;
		n = recv(fd, buf + have, WS_HTTP_MAX_HEADER - have, 0);
		if (n <= 0) {
			snprintf(why, whylen, "peer ended the upgrade: %s",
				 n ? strerror(errno) : "EOF");
			ret = -ECONNRESET;
			goto out;
		}
		have += n;
		hend = ws_http_header_end((const u8 *)buf, have);
	}
	buf[hend - 2] = 0;	/* keep one CRLF to end the last header */
	if (strncmp(buf, "GET ", 4) || !strstr(buf, " HTTP/1.1\r\n")) {
		snprintf(why, whylen, "bad request line");
		goto out;
	}
	if (!ws_req_header(buf, "Upgrade", val, sizeof(val)) ||
	    !ws_http_list_has(val, "websocket") ||
	    !ws_req_header(buf, "Connection", val, sizeof(val)) ||
	    !ws_http_list_has(val, "upgrade") ||
	    !ws_req_header(buf, "Sec-WebSocket-Version", val, sizeof(val)) ||
	    strcmp(val, "13") || !ws_req_header(buf, "Host", val, sizeof(val))) {
		snprintf(why, whylen, "not a WebSocket upgrade request: %.200s",
			 buf);
		goto out;
	}
	if (!ws_req_header(buf, "Sec-WebSocket-Key", val, sizeof(val)) ||
	    ws_accept_for_key(val, accept)) {
		snprintf(why, whylen, "bad Sec-WebSocket-Key");
		goto out;
	}
	rl = snprintf(resp, sizeof(resp),
		      "HTTP/1.1 101 Switching Protocols\r\n"
		      "Upgrade: websocket\r\nConnection: Upgrade\r\n"
		      "Sec-WebSocket-Accept: %s\r\n\r\n", accept);
	if (send(fd, resp, rl, MSG_NOSIGNAL) != rl) {
		snprintf(why, whylen, "sending 101: %s", strerror(errno));
		ret = -EIO;
		goto out;
	}
	if (have > hend) {
		*rest = malloc(have - hend);
		if (!*rest) {
			ret = -ENOMEM;
			goto out;
		}
		memcpy(*rest, buf + hend, have - hend);
		*rest_len = have - hend;
	}
	ret = 0;
out:
	free(buf);
	return ret;
}

/*
 * Kernel as ws-server: on @fd (the test's end of a pair whose other end
 * the peer holds as a WebSocket client), accept the upgrade, then run the
 * NBD handshake as the NBD client in the WebSocket server role. On
 * success @h owns @fd and the bytes read past the handshake.
 */
static inline int ws_serve_peer(int fd, struct ws_handover *h)
{
	struct nbdws_err err = { { 0 } };
	struct ws_fd_io fio;
	struct ws_io io;
	struct ws_stream s;
	struct nbd_xport x;
	u8 *rest = NULL;
	size_t rest_len = 0;
	int ret;

	memset(h, 0, sizeof(*h));
	h->fd = -1;
	ret = ws_accept_upgrade(fd, &rest, &rest_len, h->why, sizeof(h->why));
	if (ret) {
		close(fd);
		return ret;
	}
	ws_fd_io_init(&io, &fio, fd, WS_HANDSHAKE_MS);
	ret = ws_stream_init(&s, &io, WS_ROLE_SERVER, rest, rest_len);
	free(rest);
	if (ret) {
		snprintf(h->why, sizeof(h->why), "ws_stream_init: %d", ret);
		close(fd);
		return ret;
	}
	ws_stream_xport(&s, &x);
	ret = nbd_handshake_go(&x, "", &h->info, &err);
	if (ret) {
		snprintf(h->why, sizeof(h->why), "NBD handshake: %s%s%s",
			 err.msg, s.err.msg[0] ? " / " : "", s.err.msg);
		ws_stream_free(&s);
		close(fd);
		return ret;
	}
	ret = ws_stream_detach(&s, &h->preread, &h->preread_len);
	ws_stream_free(&s);
	if (ret) {
		snprintf(h->why, sizeof(h->why), "ws_stream_detach: %s",
			 s.err.msg);
		nbd_export_info_free(&h->info);
		close(fd);
		return ret;
	}
	h->fd = fd;
	return 0;
}

/* ---- CONNECT with a WebSocket transport ------------------------------------ */

/*
 * CONNECT one connection @h with @transport (and keepalive @ping_ms, 0 =
 * off) using the export parameters from its handshake and the test's
 * timeouts from @base. *index is the new device.
 */
static inline int ws_connect_dev(struct nl *nl, const struct ws_handover *h,
				 uint32_t transport, uint32_t ping_ms,
				 const struct nbdws_connect_args *base,
				 uint32_t *index)
{
	struct nbdws_connect_args a = *base;
	size_t cap = 65536 + h->preread_len;
	char *buf = calloc(1, cap);
	struct nbdws_reply_index r = { 0 };
	struct nlattr *conns, *c;
	struct nlmsghdr *nlh;
	int ret;

	if (!buf)
		return -ENOMEM;
	a.size = h->info.size;
	a.server_flags = h->info.tflags;
	a.bs_min = h->info.block_min > 512 ? h->info.block_min : 512;
	a.bs_pref = h->info.block_pref > a.bs_min ? h->info.block_pref : a.bs_min;
	a.bs_max = h->info.block_max;
	a.nfds = 0;
	nlh = nl_cmd(nl, buf, NBDWS_CMD_CONNECT);
	nbdws_put_connect_attrs(nlh, &a);
	conns = mnl_attr_nest_start(nlh, NBDWS_A_CONNS);
	c = mnl_attr_nest_start(nlh, NBDWS_A_CONN);
	mnl_attr_put_u32(nlh, NBDWS_CONN_A_FD, (uint32_t)h->fd);
	mnl_attr_put_u32(nlh, NBDWS_CONN_A_TRANSPORT, transport);
	if (h->preread_len)
		mnl_attr_put(nlh, NBDWS_CONN_A_PREREAD, h->preread_len,
			     h->preread);
	if (ping_ms)
		mnl_attr_put_u32(nlh, NBDWS_CONN_A_PING_MS, ping_ms);
	mnl_attr_nest_end(nlh, c);
	mnl_attr_nest_end(nlh, conns);
	ret = nl_transact(nl, nlh, nbdws_index_cb, &r);
	free(buf);
	if (ret)
		return ret;
	if (!r.has_index)
		return -EBADMSG;
	*index = r.index;
	return 0;
}

/* ---- events with their WebSocket close code ------------------------------ */

struct ws_dead_event {
	struct nbdws_event_info ev;
	bool has_close_code;
	uint16_t close_code;
	char close_reason[128];
};

static inline void ws_event_scan(const struct nlattr *first, size_t len,
				 struct ws_dead_event *w)
{
	const struct nlattr *a, *attr;

	mnl_attr_for_each_payload(first, len) {
		a = attr;
		switch (mnl_attr_get_type(a)) {
		case NBDWS_A_WS_CLOSE_CODE:
			if (mnl_attr_get_payload_len(a) >= 2) {
				w->close_code = mnl_attr_get_u16(a);
				w->has_close_code = true;
			}
			break;
		case NBDWS_A_WS_CLOSE_REASON:
			snprintf(w->close_reason, sizeof(w->close_reason),
				 "%.*s", (int)mnl_attr_get_payload_len(a),
				 (const char *)mnl_attr_get_payload(a));
			break;
		case NBDWS_A_CONN:
		case NBDWS_A_CONNS:
			/* Also accept them inside the connection nest. */
			ws_event_scan(mnl_attr_get_payload(a),
				      mnl_attr_get_payload_len(a), w);
			break;
		}
	}
}

/*
 * Like nl_wait_event(), but also returns NBDWS_A_WS_CLOSE_CODE/REASON
 * (top-level or inside the connection nest).
 */
static inline int ws_wait_event(struct nl *nl, uint32_t index, uint32_t event,
				int timeout_ms, struct ws_dead_event *out)
{
	long long end = tu_deadline(timeout_ms);
	int fd = mnl_socket_get_fd(nl->sock);

	memset(out, 0, sizeof(*out));
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long long left = end - tu_now_ms();
		const struct nlmsghdr *nlh;
		int n;

		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(&pfd, 1, (int)left) <= 0)
			continue;
		n = recv(fd, nl->buf, NL_BUF_SIZE, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR || errno == ENOBUFS)
				continue;
			return -errno;
		}
		nlh = (const struct nlmsghdr *)nl->buf;
		for (; mnl_nlmsg_ok(nlh, n); nlh = mnl_nlmsg_next(nlh, &n)) {
			const struct genlmsghdr *g;
			struct ws_dead_event w = { 0 };
			size_t l = strlen(nl->events_seen);

			if (nlh->nlmsg_type != nl->family)
				continue;
			g = mnl_nlmsg_get_payload(nlh);
			if (g->cmd != NBDWS_CMD_EVENT)
				continue;
			nbdws_parse_event(nlh, &w.ev);
			ws_event_scan(mnl_nlmsg_get_payload_offset(nlh,
						sizeof(struct genlmsghdr)),
				      mnl_nlmsg_get_payload_len(nlh) -
						sizeof(struct genlmsghdr), &w);
			snprintf(nl->events_seen + l,
				 sizeof(nl->events_seen) - l,
				 "[dev %u ev %u reason %u close %u] ",
				 w.ev.index, w.ev.event, w.ev.reason,
				 w.close_code);
			if (w.ev.event == event && w.ev.has_index &&
			    w.ev.index == index) {
				*out = w;
				return 0;
			}
		}
	}
}

static inline const char *ws_reason_name(uint32_t r)
{
	static const char * const n[] = {
		"none", "timeout", "peer_closed", "socket_error", "protocol",
		"ws_close", "ws_protocol", "ws_ping_timeout", "user",
	};

	return r < sizeof(n) / sizeof(n[0]) ? n[r] : "?";
}

#endif /* _NBDWS_WS_UTIL_H */
