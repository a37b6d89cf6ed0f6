// SPDX-License-Identifier: GPL-2.0
/*
 * ws_proxy: the bench's stand-in for jsnbd's nbd-proxy (and bmcweb's NBD
 * proxy), the shape nbdws-relay replaces: a WebSocket server whose data
 * path stays in userspace, framing between the browser and a unix socket
 * on which nbd-client, run as `nbd-client -unix PATH /dev/nbdN -L`, has
 * the in-tree nbd.ko. nbd-client negotiates with the browser through the
 * proxy, so the proxy knows nothing of NBD: it is a pump.
 *
 *   ws_proxy --listen HOST:PORT --unix PATH [--cert PEM --key PEM [--ktls]]
 *            [--port-file FILE]
 *
 * One connection pair at a time, for ever: accept a WebSocket client (TLS
 * first with --cert: in OpenSSL in userspace as bmcweb does, or kernel TLS
 * for the record layer with --ktls), answer its upgrade, accept
 * nbd-client's connection on PATH, and pump with nbdws-relay's own
 * fallback (tools/nbdws-relay/fallback.c) on the relay's loop, so rows
 * (b) and (c) of the relay bench differ only in what sits behind the
 * socketpair or the unix socket: nbdws.ko or nbd.ko.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fallback.h"
#include "loop.h"
#include "tls.h"
#include "ws_accept.h"

#define HANDSHAKE_MS	60000

static void die(const char *what)
{
	fprintf(stderr, "ws_proxy: %s\n", what);
	exit(1);
}

static int listen_tcp(char *spec, const char *port_file)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE };
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char *colon = strrchr(spec, ':'), serv[16];
	struct addrinfo *ai;
	int fd, one = 1;

	if (!colon)
		die("--listen wants HOST:PORT");
	*colon = '\0';
	if (getaddrinfo(spec, colon + 1, &hints, &ai))
		die("cannot resolve the listen address");
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket failed");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 16))
		die("cannot listen on TCP");
	freeaddrinfo(ai);
	if (port_file) {
		FILE *f = fopen(port_file, "w");

		if (getsockname(fd, (struct sockaddr *)&ss, &sl) ||
		    getnameinfo((struct sockaddr *)&ss, sl, NULL, 0, serv,
				sizeof(serv), NI_NUMERICSERV) || !f)
			die("cannot write the port file");
		fprintf(f, "%s\n", serv);
		fclose(f);
	}
	return fd;
}

static int listen_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || strlen(path) >= sizeof(sa.sun_path))
		die("bad --unix path");
	memcpy(sa.sun_path, path, strlen(path) + 1);
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 4))
		die("cannot listen on the unix socket");
	return fd;
}

static void on_end(void *arg, u16 code, const char *reason)
{
	char text[128];
	size_t i;

	(void)arg;
	/* The reason may come from the client: printable only. */
	for (i = 0; reason[i] && i + 1 < sizeof(text); i++) {
		char c = reason[i];

		if (c < 0x20 || c >= 0x7f)
			c = '?';
		text[i] = c;
	}
	text[i] = '\0';
	fprintf(stderr, "ws_proxy: connection ended (%u %s)\n", code, text);
	loop_stop(0);
}

/* One browser and one nbd-client, pumped until either goes. */
static void serve_one(int lfd, int ufd, struct tls_server *srv)
{
	struct ws_accept_result res;
	struct nbdws_err err;
	struct tls_conn *t;
	struct ws_fd_io fio;
	struct ws_io io;
	struct fallback *f;
	int fd, kfd;

	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	/* The pump frees the session's struct with the session. */
	t = calloc(1, sizeof(*t));
	if (!t)
		die("out of memory");
	if (srv) {
		if (tls_accept(t, srv, fd, HANDSHAKE_MS, &err)) {
			fprintf(stderr, "ws_proxy: TLS: %s\n", err.msg);
			free(t);
			close(fd);
			return;
		}
		tls_io(t, &io);
	} else {
		ws_fd_io_init(&io, &fio, fd, HANDSHAKE_MS);
	}
	if (ws_accept(&io, NULL, &res, &err)) {
		fprintf(stderr, "ws_proxy: upgrade: %s\n", err.msg);
		goto out;
	}
	kfd = accept4(ufd, NULL, NULL, SOCK_CLOEXEC);
	if (kfd < 0) {
		ws_accept_result_free(&res);
		goto out;
	}
	if (loop_init())
		die("loop_init failed");
	f = fallback_start(fd, srv ? t : NULL, res.preread, res.preread_len,
			   kfd, on_end, NULL);
	if (!srv)
		free(t);
	ws_accept_result_free(&res);
	if (!f)
		die("out of memory");
	fprintf(stderr, "ws_proxy: pumping\n");
	loop_run();
	loop_fini();
	return;
out:
	tls_free(t);
	free(t);
	close(fd);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", 1, NULL, 'l' }, { "unix", 1, NULL, 'u' },
		{ "cert", 1, NULL, 'c' }, { "key", 1, NULL, 'k' },
		{ "ktls", 0, NULL, 'K' }, { "port-file", 1, NULL, 'p' },
		{ NULL, 0, NULL, 0 }
	};
	struct tls_server_opts so = { 0 };
	char *listen_spec = NULL, *unix_path = NULL, *port_file = NULL;
	struct tls_server *srv = NULL;
	struct nbdws_err err;
	int ch, lfd, ufd;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'l': listen_spec = optarg; break;
		case 'u': unix_path = optarg; break;
		case 'c': so.cert_file = optarg; break;
		case 'k': so.key_file = optarg; break;
		case 'K': so.want_ktls = true; break;
		case 'p': port_file = optarg; break;
		default: die("bad option (see the comment at the top of ws_proxy.c)");
		}
	}
	if (!listen_spec || !unix_path || !so.cert_file != !so.key_file)
		die("usage: ws_proxy --listen HOST:PORT --unix PATH [--cert PEM --key PEM [--ktls]]");
	signal(SIGPIPE, SIG_IGN);
	if (so.cert_file && tls_server_new(&srv, &so, &err)) {
		fprintf(stderr, "ws_proxy: %s\n", err.msg);
		return 1;
	}
	ufd = listen_unix(unix_path);
	lfd = listen_tcp(listen_spec, port_file);
	for (;;)
		serve_one(lfd, ufd, srv);
}
