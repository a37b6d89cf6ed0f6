/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Opening the stream sockets an NBD connection runs on: TCP (any address
 * getaddrinfo() gives, tried in order) or a unix socket, with a deadline.
 * The sockets come back blocking, close-on-exec, and for TCP with
 * TCP_NODELAY and keepalive set, ready to be handed to nbdws.ko.
 */
#ifndef _NBDWS_NBD_SOCK_H
#define _NBDWS_NBD_SOCK_H

#include "nbd_uri.h"
#include "nbdws_err.h"

/* Returns a connected fd or a negative errno with a message in @err. */
int nbd_sock_connect_tcp(const char *host, const char *port, int timeout_ms,
			 struct nbdws_err *err);
int nbd_sock_connect_unix(const char *path, int timeout_ms,
			  struct nbdws_err *err);

/*
 * Connect to where @uri points: unix socket for nbd+unix, TCP otherwise
 * (for ws/wss only the TCP part; the upgrade is the caller's job).
 */
int nbd_sock_connect_uri(const struct nbd_uri *uri, int timeout_ms,
			 struct nbdws_err *err);

/* Milliseconds on CLOCK_MONOTONIC, for deadlines. */
long long nbd_now_ms(void);

#endif /* _NBDWS_NBD_SOCK_H */
