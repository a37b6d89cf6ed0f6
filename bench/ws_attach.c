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
#include <linux/genetlink.h>
#include <linux/nbdws.h>

#include "nbd_handshake.h"
#include "nbd_sock.h"
#include "ws_accept.h"
#include "ws_stream.h"

#define MAX_CONNS	64
#define LBS_MIN		512U
/* Replies: MNL_SOCKET_BUFFER_SIZE is at most this. */
#define NL_BUF		8192

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

struct reply {
	u16 family;
	u32 index;
	bool has_index;
};

static int family_cb(const struct nlmsghdr *nlh, void *data)
{
	struct reply *r = data;
	const struct nlattr *a;

	mnl_attr_for_each(a, nlh, sizeof(struct genlmsghdr))
		if (mnl_attr_get_type(a) == CTRL_ATTR_FAMILY_ID)
			r->family = mnl_attr_get_u16(a);
	return MNL_CB_OK;
}

static int index_cb(const struct nlmsghdr *nlh, void *data)
{
	struct reply *r = data;
	const struct nlattr *a;

	mnl_attr_for_each(a, nlh, sizeof(struct genlmsghdr)) {
		if (mnl_attr_get_type(a) == NBDWS_A_INDEX &&
		    mnl_attr_get_payload_len(a) == 4) {
			r->index = mnl_attr_get_u32(a);
			r->has_index = true;
		}
	}
	return MNL_CB_OK;
}

static struct nlmsghdr *msg_start(char *buf, u16 type, u8 cmd, u8 version)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct genlmsghdr *g;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = (u32)nbd_now_ms();
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->cmd = cmd;
	g->version = version;
	return nlh;
}

/* Send @nlh, run @cb on the replies until the ACK: 0 or -errno. */
static int transact(struct mnl_socket *nl, struct nlmsghdr *nlh,
		    mnl_cb_t cb, struct reply *r)
{
	char buf[NL_BUF];
	u32 seq = nlh->nlmsg_seq, port = mnl_socket_get_portid(nl);
	int n;

	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	for (;;) {
		n = (int)mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (n < 0)
			return -errno;
		n = mnl_cb_run(buf, (size_t)n, seq, port, cb, r);
		if (n < 0)
			return -errno;
		if (n == MNL_CB_STOP)
			return 0;
	}
}

static int kernel_connect(struct handover *h, int n, u32 *index)
{
	const struct nbd_export_info *i = &h[0].info;
	u32 lbs = i->block_min < LBS_MIN ? LBS_MIN : i->block_min;
	u32 pref = i->block_pref < lbs ? lbs : i->block_pref;
	u32 max_req = NBDWS_DEFAULT_MAX_REQ_BYTES;
	struct reply r = { 0 };
	struct mnl_socket *nl;
	struct nlattr *conns, *c;
	struct nlmsghdr *nlh;
	char *buf;
	int rc, k;

	/* As nbdctl: its default request size, capped by the server's. */
	if (max_req > i->block_max)
		max_req = i->block_max;
	max_req -= max_req % lbs;
	/* Room for every connection's PREREAD on top of the rest. */
	buf = calloc(1, NL_BUF + (size_t)MAX_CONNS * (NBDWS_PREREAD_MAX + 64));
	nl = mnl_socket_open(NETLINK_GENERIC);
	if (!buf || !nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		rc = -errno;
		free(buf);
		if (nl)
			mnl_socket_close(nl);
		return rc;
	}
	nlh = msg_start(buf, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1);
	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, NBDWS_GENL_NAME);
	rc = transact(nl, nlh, family_cb, &r);
	if (!rc && !r.family)
		rc = -ENOENT;
	if (rc)
		goto out;
	nlh = msg_start(buf, r.family, NBDWS_CMD_CONNECT, NBDWS_GENL_VERSION);
	mnl_attr_put_u64(nlh, NBDWS_A_SIZE_BYTES, i->size);
	mnl_attr_put_u32(nlh, NBDWS_A_BLOCK_SIZE_MIN, lbs);
	mnl_attr_put_u32(nlh, NBDWS_A_BLOCK_SIZE_PREF, pref);
	mnl_attr_put_u32(nlh, NBDWS_A_BLOCK_SIZE_MAX, i->block_max);
	mnl_attr_put_u32(nlh, NBDWS_A_MAX_REQ_BYTES, max_req);
	mnl_attr_put_u32(nlh, NBDWS_A_SERVER_FLAGS, i->tflags);
	mnl_attr_put_strz(nlh, NBDWS_A_BACKEND, "ws-server (bench/ws_attach)");
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
	rc = transact(nl, nlh, index_cb, &r);
	if (!rc && !r.has_index)
		rc = -EBADMSG;
	*index = r.index;
out:
	mnl_socket_close(nl);
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
