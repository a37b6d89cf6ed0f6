// SPDX-License-Identifier: GPL-2.0
/*
 * ws_attach: give nbdws.ko connections in the ws-server role, for the
 * bench (the browser case: the NBD server is a WebSocket *client*).
 *
 *   ws_attach --listen HOST:PORT --conns N [--port-file FILE]
 *             [--timeout-ms MS]
 *
 * Listens, writes the bound port to FILE (so PORT may be 0), accepts N
 * connections and on each plays the WebSocket server (lib/ws_accept) and
 * the NBD client (lib/nbd_handshake over lib/ws_stream in the server role:
 * unmasked out, masked in). Then one CONNECT hands all N sockets to the
 * kernel with NBDWS_TRANSPORT_WS_SERVER and the bytes read past each
 * handshake (PREREAD), and the device path is printed. Device parameters
 * are derived as `nbdctl connect` derives them, so this device and the
 * bench's nbdctl devices differ only in their transport. Tear down with
 * `nbdctl disconnect`.
 *
 * Not a tool for users: that is the relay's job; this is the smallest
 * thing the bench needs.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/nbdws.h>

#include "nbd_handshake.h"
#include "nbd_sock.h"
#include "ws_accept.h"
#include "ws_stream.h"
#include "../selftests/nbdws/nbdws_test_genl.h"

#define MAX_CONNS	64
#define LBS_MIN		512U

struct handover {
	int fd;
	u8 *preread;
	size_t preread_len;
	struct nbd_export_info info;
};

/* Say what went wrong; returns 1 (the exit status). */
__attribute__((format(printf, 1, 2)))
static int fail(const char *fmt, ...)
{
	va_list ap;

	fputs("ws_attach: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

/* Upgrade as the WebSocket server, then NBD_OPT_GO as the NBD client. */
static int negotiate(int fd, int timeout_ms, struct handover *h)
{
	struct nbdws_err err = { { 0 } };
	struct ws_accept_result res;
	struct ws_fd_io fio;
	struct ws_stream s;
	struct nbd_xport x;
	struct ws_io io;
	int rc;

	ws_fd_io_init(&io, &fio, fd, timeout_ms);
	rc = ws_accept(&io, NULL, &res, &err);
	if (rc)
		return fail("upgrade: %s", err.msg);
	rc = ws_stream_init(&s, &io, WS_ROLE_SERVER, res.preread,
			    res.preread_len);
	ws_accept_result_free(&res);
	if (rc)
		return fail("ws_stream_init: %s", strerror(-rc));
	ws_stream_xport(&s, &x);
	rc = nbd_handshake_go(&x, "", &h->info, &err);
	if (!rc) {
		rc = ws_stream_detach(&s, &h->preread, &h->preread_len);
		if (rc)
			nbd_export_info_free(&h->info);
	}
	if (rc)
		fail("NBD handshake: %s %s", err.msg, s.err.msg);
	ws_stream_free(&s);
	if (!rc && h->preread_len > NBDWS_PREREAD_MAX)
		return fail("the peer sent %zu bytes after the handshake, more than NBDWS_PREREAD_MAX",
			    h->preread_len);
	return rc ? 1 : 0;
}

/* ---- generic netlink ---------------------------------------------------- */

/*
 * One CONNECT carrying all @n sockets. The netlink plumbing (family
 * lookup, extended acks, the reply's device index) is the selftests'
 * libmnl client, so the bench and the tests speak the contract one way.
 */
static int kernel_connect(struct handover *h, int n, u32 *index)
{
	const struct nbd_export_info *i = &h[0].info;
	struct nbdws_connect_args a = { 0 };
	struct nbdws_reply_index r = { 0 };
	struct nlattr *conns, *c;
	struct nlmsghdr *nlh;
	struct nl nl;
	char *buf;
	int rc, k;

	a.size = i->size;
	a.bs_min = i->block_min < LBS_MIN ? LBS_MIN : i->block_min;
	a.bs_pref = i->block_pref < a.bs_min ? a.bs_min : i->block_pref;
	a.bs_max = i->block_max;
	/* As nbdctl: its default request size, capped by the server's. */
	a.max_req = NBDWS_DEFAULT_MAX_REQ_BYTES;
	if (a.max_req > i->block_max)
		a.max_req = i->block_max;
	a.max_req -= a.max_req % a.bs_min;
	a.server_flags = i->tflags;
	a.backend = "ws-server (bench/ws_attach)";

	rc = nl_open(&nl);
	if (rc)
		return rc;
	/* Room for every connection's PREREAD on top of the rest. */
	buf = calloc(1, MNL_SOCKET_BUFFER_SIZE +
		     (size_t)MAX_CONNS * (NBDWS_PREREAD_MAX + 64));
	if (!buf) {
		nl_close(&nl);
		return -ENOMEM;
	}
	nlh = nl_cmd(&nl, buf, NBDWS_CMD_CONNECT);
	nbdws_put_connect_attrs(nlh, &a);
	conns = mnl_attr_nest_start(nlh, NBDWS_A_CONNS);
	for (k = 0; k < n; k++) {
		c = mnl_attr_nest_start(nlh, NBDWS_A_CONN);
		mnl_attr_put_u32(nlh, NBDWS_CONN_A_FD, (u32)h[k].fd);
		mnl_attr_put_u32(nlh, NBDWS_CONN_A_TRANSPORT,
				 NBDWS_TRANSPORT_WS_SERVER);
		if (h[k].preread_len)
			mnl_attr_put(nlh, NBDWS_CONN_A_PREREAD,
				     h[k].preread_len, h[k].preread);
		mnl_attr_nest_end(nlh, c);
	}
	mnl_attr_nest_end(nlh, conns);
	rc = nl_transact(&nl, nlh, nbdws_index_cb, &r);
	if (rc && nl.extack[0])
		fail("the kernel says: %s", nl.extack);
	if (!rc && !r.has_index)
		rc = -EBADMSG;
	*index = r.index;
	nl_close(&nl);
	free(buf);
	return rc;
}

/* ---- main ------------------------------------------------------------ */

static int listen_tcp(char *spec, const char *port_file)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE };
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char *colon = strrchr(spec, ':'), serv[16];
	struct addrinfo *ai;
	int fd, one = 1;
	FILE *f;

	if (!colon)
		return -EINVAL;
	*colon = '\0';
	if (getaddrinfo(spec, colon + 1, &hints, &ai))
		return -EINVAL;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, MAX_CONNS) ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) ||
	    getnameinfo((struct sockaddr *)&ss, sl, NULL, 0, serv, sizeof(serv),
			NI_NUMERICSERV)) {
		freeaddrinfo(ai);
		return -errno;
	}
	freeaddrinfo(ai);
	if (port_file) {
		/* Written whole, then renamed: a reader never sees half. */
		char tmp[4096];

		snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
		f = fopen(tmp, "w");
		if (!f || fprintf(f, "%s\n", serv) < 0 || fclose(f) ||
		    rename(tmp, port_file))
			return -errno;
	}
	return fd;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", 1, NULL, 'l' }, { "conns", 1, NULL, 'n' },
		{ "port-file", 1, NULL, 'f' }, { "timeout-ms", 1, NULL, 't' },
		{ NULL, 0, NULL, 0 }
	};
	struct handover h[MAX_CONNS];
	char *listen_spec = NULL;
	const char *port_file = NULL;
	int ch, n = 1, timeout_ms = 60000, lfd, k, rc = 1, one = 1;
	long long deadline;
	u32 index = 0;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'l': listen_spec = optarg; break;
		case 'n': n = atoi(optarg); break;
		case 'f': port_file = optarg; break;
		case 't': timeout_ms = atoi(optarg); break;
		default: return fail("bad option (see ws_attach.c)");
		}
	}
	if (!listen_spec || n < 1 || n > MAX_CONNS || timeout_ms < 1)
		return fail("need --listen HOST:PORT and --conns 1..%d", MAX_CONNS);
	lfd = listen_tcp(listen_spec, port_file);
	if (lfd < 0)
		return fail("cannot listen on %s: %s", listen_spec, strerror(-lfd));
	memset(h, 0, sizeof(h));
	for (k = 0; k < n; k++)
		h[k].fd = -1;
	deadline = nbd_now_ms() + timeout_ms;
	for (k = 0; k < n; k++) {
		if (nbd_sock_wait(lfd, POLLIN, deadline)) {
			fail("only %d of %d connections came in time", k, n);
			goto out;
		}
		h[k].fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (h[k].fd < 0)
			goto out;
		/*
		 * As lib/nbd_sock.c sets up nbdctl's sockets: without
		 * TCP_NODELAY, Nagle holds the tail of each request back
		 * until the previous segment is acknowledged, and the
		 * ws-server rows would measure delayed ACKs.
		 */
		setsockopt(h[k].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(h[k].fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
		if (negotiate(h[k].fd, timeout_ms, &h[k]))
			goto out;
		/* One device serves one export: every connection must agree. */
		if (k && (h[k].info.size != h[0].info.size ||
			  h[k].info.tflags != h[0].info.tflags)) {
			fail("connection %d disagrees with the first on the export", k + 1);
			goto out;
		}
	}
	rc = kernel_connect(h, n, &index);
	if (rc) {
		fail("CONNECT failed: %s", strerror(-rc));
		rc = 1;
		goto out;
	}
	printf("/dev/nbdws%u\n", index);
out:
	/* The kernel holds its own references to the sockets it took. */
	for (k = 0; k < n; k++) {
		if (h[k].fd >= 0)
			close(h[k].fd);
		free(h[k].preread);
		nbd_export_info_free(&h[k].info);
	}
	close(lfd);
	return rc;
}
