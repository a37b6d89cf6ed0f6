/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nbdws-relay: listening sockets (relay_cfg->listen) and accepting. Each
 * accepted socket gets TCP_NODELAY and keepalive (it may end up in the
 * kernel's fast path, which wants them as lib/nbd_sock.c sets them) and is
 * given to session_start(). Past relay_cfg->max_conns open client sockets
 * the listeners stop accepting until one closes (the backlog holds the
 * rest), so a flood cannot exhaust fds.
 */
#ifndef _RELAY_LISTEN_H
#define _RELAY_LISTEN_H

/* Bind every configured address; 0 or -errno after logging which. */
int listen_init(void);
void listen_fini(void);

/* A client socket was closed or handed to the kernel: may accept again. */
void listen_conn_closed(void);

/* Open client sockets now (for /status and tests). */
unsigned int listen_conns(void);

#endif /* _RELAY_LISTEN_H */
