/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nbdws-relay: one client connection from accept to hand-over, as one
 * fiber of sequential code: [TLS accept] -> HTTP request -> route ->
 * plain answer (/status, /slots, files) or WebSocket upgrade ->
 * authentication, origin, slot claim -> 101 -> NBD handshake as the
 * client over WebSocket frames -> CONNECT/RECONFIGURE with the socket in
 * the ws-server role (fast path) or a socketpair and the userspace pump
 * (fallback) -> start hook. Everything before hand-over is bounded by
 * relay_cfg->handshake_ms from accept.
 */
#ifndef _RELAY_SESSION_H
#define _RELAY_SESSION_H

#include <stdbool.h>
#include <sys/socket.h>

/* TLS server context, tokens (auth_init()), --web; 0 or -errno (logged). */
int session_init(void);
void session_fini(void);

/*
 * Take @fd (accepted by listen.c) and run its session on a fiber. @tls:
 * the listener does TLS. listen_conn_closed() is called when the socket
 * is closed or handed over.
 */
void session_start(int fd, const struct sockaddr *peer, socklen_t peer_len,
		   bool tls);

/* Sessions not yet handed over. */
unsigned int session_handshakes(void);

/* Shutdown: cancel every session still running. */
void session_cancel_all(void);

#endif /* _RELAY_SESSION_H */
