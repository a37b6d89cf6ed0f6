/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers for the WebSocket transport selftests (ws_*.c): running the
 * scripted peer (lib/ws_nbd_peer.py) or the bench's C peer over wss://
 * with kernel TLS (bench/ws_nbd_peer.c), negotiating a connection in
 * either WebSocket role in userspace, handing it to the kernel with
 * CONNECT, and reading CONN_DEAD events together with the WebSocket close
 * code.
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
 * Kernel as ws-client: dial @url with @o as nbdctl does (for wss:// TLS
 * first; upgrade, NBD handshake in messages), ending in the transmission
 * phase. With @need_ktls, a connection whose record layer did not move
 * into the kernel is a failure. h->why says what failed.
 */
static inline int ws_dial_url(const char *url, const struct ws_dial_opts *o,
			      bool need_ktls, struct ws_handover *h)
{
	struct nbd_uri uri;
	struct ws_conn conn;
	struct nbdws_err err = { { 0 } };
	int ret;

	memset(h, 0, sizeof(*h));
	h->fd = -1;
	ret = nbd_uri_parse(url, &uri, &err);
	if (ret) {
		snprintf(h->why, sizeof(h->why), "%s: %s", url, err.msg);
		return ret;
	}
	memset(&conn, 0, sizeof(conn));
	conn.fd = -1;
	ret = ws_dial(&uri, o, NBD_DIAL_GO, WS_HANDSHAKE_MS, &h->info, &conn,
		      &err);
	nbd_uri_free(&uri);
	if (ret < 0) {
		snprintf(h->why, sizeof(h->why), "ws_dial %s: %s", url,
			 err.msg);
		return ret;
	}
	h->fd = conn.fd;
	h->preread = conn.preread;
	h->preread_len = conn.preread_len;
	conn.preread = NULL;
	if (need_ktls && !conn.ktls) {
		snprintf(h->why, sizeof(h->why), "kTLS is not active: %s",
			 conn.tls_desc);
		ret = -EPROTONOSUPPORT;
	}
	ws_conn_free(&conn);
	return ret < 0 ? ret : 0;
}

/* Kernel as ws-client of ws://127.0.0.1:@port@path. */
static inline int ws_dial_peer(int port, const char *path,
			       struct ws_handover *h)
{
	struct ws_dial_opts o = { 0 };
	char url[128];

	snprintf(url, sizeof(url), "ws://127.0.0.1:%d%s", port, path);
	return ws_dial_url(url, &o, false, h);
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

/* ---- the bench's C peer over wss://, kernel TLS at both ends ------------- */

/*
 * bench/ws_nbd_peer --wss with a throwaway certificate: a server that
 * keeps up under TCG, so an operation that takes long waited for
 * something. The kTLS selftests (ws_ktls_cases.h, ws_tls_record.c) dial
 * it with ws_ktls_dial().
 */
struct ws_ktls_peer {
	pid_t pid;
	char dir[256];		/* scratch: certificate, key, peer.out */
	char out[300];		/* the peer's stdout and stderr */
	char listen_at[64];	/* 127.0.0.1:PORT */
	char why[2300];		/* what failed */
};

#define WS_KTLS_PEER_MAX_EXTRA	8

/*
 * Load the tls module, make a scratch directory named after @tag with a
 * self-signed certificate in it, and start ws_nbd_peer ($NBDWS_TOP/build,
 * else ./build) serving @size bytes of memory on a free port, with the
 * NULL-terminated @extra (or NULL) after its own arguments; wait until it
 * listens. 0, or -1 with p->why saying what failed. ws_ktls_peer_stop()
 * undoes it, also after a failure.
 */
static inline int ws_ktls_peer_start(struct ws_ktls_peer *p, const char *tag,
				     uint64_t size, const char *const *extra)
{
	const char *top = getenv("NBDWS_TOP");
	char prog[300], cert[300], key[300], sz[32], out[2048];
	char *argv[10 + WS_KTLS_PEER_MAX_EXTRA];
	int fd, port, rc, n = 0, i;

	memset(p, 0, sizeof(*p));
	snprintf(p->dir, sizeof(p->dir), "%s/nbdws-%s.XXXXXX", tu_tmpdir(),
		 tag);
	if (!mkdtemp(p->dir)) {
		snprintf(p->why, sizeof(p->why), "mkdtemp: %s", strerror(errno));
		p->dir[0] = 0;
		return -1;
	}
	rc = tu_sh(30000, out, sizeof(out), "modprobe tls");
	if (rc) {
		snprintf(p->why, sizeof(p->why), "modprobe tls: %s", out);
		return -1;
	}
	snprintf(cert, sizeof(cert), "%s/cert.pem", p->dir);
	snprintf(key, sizeof(key), "%s/key.pem", p->dir);
	rc = tu_sh(60000, out, sizeof(out),
		   "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=127.0.0.1 -keyout '%s' -out '%s'",
		   key, cert);
	if (rc) {
		snprintf(p->why, sizeof(p->why), "openssl: %s", out);
		return -1;
	}

	snprintf(prog, sizeof(prog), "%s%sbuild/ws_nbd_peer",
		 top && *top ? top : "", top && *top ? "/" : "");
	port = tu_free_port();
	if (port <= 0) {
		snprintf(p->why, sizeof(p->why), "no free port");
		return -1;
	}
	snprintf(p->listen_at, sizeof(p->listen_at), "127.0.0.1:%d", port);
	snprintf(sz, sizeof(sz), "%llu", (unsigned long long)size);
	argv[n++] = prog;
	argv[n++] = "--size";
	argv[n++] = sz;
	argv[n++] = "--wss";
	argv[n++] = p->listen_at;
	argv[n++] = "--cert";
	argv[n++] = cert;
	argv[n++] = "--key";
	argv[n++] = key;
	for (i = 0; extra && extra[i]; i++) {
		if (i == WS_KTLS_PEER_MAX_EXTRA) {
			snprintf(p->why, sizeof(p->why), "too many peer arguments");
			return -1;
		}
		argv[n++] = (char *)extra[i];
	}
	argv[n] = NULL;

	snprintf(p->out, sizeof(p->out), "%s/peer.out", p->dir);
	fd = open(p->out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		snprintf(p->why, sizeof(p->why), "%s: %s", p->out,
			 strerror(errno));
		return -1;
	}
	p->pid = tu_spawn(argv, fd);
	close(fd);
	if (p->pid <= 0) {
		snprintf(p->why, sizeof(p->why), "fork: %s", strerror(errno));
		return -1;
	}
	if (tu_wait_listen(port, 30000)) {
		snprintf(p->why, sizeof(p->why), "%s did not listen on %s",
			 prog, p->listen_at);
		return -1;
	}
	return 0;
}

/* Stop the peer and remove its directory. */
static inline void ws_ktls_peer_stop(struct ws_ktls_peer *p)
{
	char out[256];

	tu_kill_reap(p->pid);
	p->pid = 0;
	if (p->dir[0])
		tu_sh(10000, out, sizeof(out), "rm -rf '%s'", p->dir);
	p->dir[0] = 0;
}

/*
 * Dial wss://@listen_at/ as nbdctl connect --insecure does, into @h for
 * ws_connect_dev(): 0 once kernel TLS has the socket, else <0 (h->why).
 */
static inline int ws_ktls_dial(const char *listen_at, struct ws_handover *h)
{
	struct ws_dial_opts o = { .insecure = true };
	char url[96];

	snprintf(url, sizeof(url), "wss://%s/", listen_at);
	return ws_dial_url(url, &o, true, h);
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

/* ---- a device on a wss:// connection to a ws_ktls_peer ------------------ */

/* A fixture's state: one device, one connection with kernel TLS. */
struct ws_ktls_dev {
	struct nl nl, ev;		/* commands; events */
	struct ws_ktls_peer peer;
	struct ws_handover h;		/* until CONNECT takes the socket */
	uint32_t index;
	bool connected;
	char dev[64];			/* /dev/nbdwsN */
	char why[2300];			/* what failed */
};

/*
 * Open the netlink sockets, start the peer (@tag, @size, @extra as for
 * ws_ktls_peer_start()) and dial it. 0, or -1 with d->why. The caller may
 * set socket options on d->h.fd before ws_ktls_dev_connect().
 */
static inline int ws_ktls_dev_open(struct ws_ktls_dev *d, const char *tag,
				   uint64_t size, const char *const *extra)
{
	int rc;

	memset(d, 0, sizeof(*d));
	d->h.fd = -1;
	rc = nl_open(&d->nl);
	if (!rc)
		rc = nl_open_events(&d->ev);
	if (rc) {
		snprintf(d->why, sizeof(d->why), "netlink: %s", strerror(-rc));
		return -1;
	}
	if (ws_ktls_peer_start(&d->peer, tag, size, extra)) {
		snprintf(d->why, sizeof(d->why), "%s", d->peer.why);
		return -1;
	}
	if (ws_ktls_dial(d->peer.listen_at, &d->h)) {
		snprintf(d->why, sizeof(d->why), "%s", d->h.why);
		return -1;
	}
	if (d->h.info.size != size) {
		snprintf(d->why, sizeof(d->why), "export of %llu bytes",
			 (unsigned long long)d->h.info.size);
		return -1;
	}
	return 0;
}

/*
 * CONNECT the dialed socket in the ws-client role with these timeouts and
 * wait for the device node. 0; CONNECT's error (extack in d->nl); or
 * -ETIMEDOUT when the node did not appear.
 */
static inline int ws_ktls_dev_connect(struct ws_ktls_dev *d,
				      uint32_t timeout_ms,
				      uint32_t dead_timeout_ms)
{
	struct nbdws_connect_args base;
	int rc;

	nbdws_connect_defaults(&base, d->h.info.size);
	base.timeout_ms = timeout_ms;
	base.dead_timeout_ms = dead_timeout_ms;
	rc = ws_connect_dev(&d->nl, &d->h, NBDWS_TRANSPORT_WS_CLIENT, 0,
			    &base, &d->index);
	if (rc)
		return rc;
	d->connected = true;
	/* The kernel holds its own reference to the socket now. */
	close(d->h.fd);
	d->h.fd = -1;
	nbdws_dev_path(d->index, d->dev, sizeof(d->dev));
	return tu_wait_path(d->dev, true, 10000);
}

/* Undo all of it; 0, or what removing the device returned. */
static inline int ws_ktls_dev_close(struct ws_ktls_dev *d)
{
	int rc = 0;

	if (d->connected)
		rc = nbdws_teardown_dev(&d->nl, d->index);
	d->connected = false;
	ws_handover_free(&d->h);
	ws_ktls_peer_stop(&d->peer);
	nl_close(&d->ev);
	nl_close(&d->nl);
	return rc;
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
