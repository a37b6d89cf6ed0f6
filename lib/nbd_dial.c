// SPDX-License-Identifier: GPL-2.0
/*
 * Connect + handshake for NBD URIs (see nbd_dial.h).
 */
#include <errno.h>
#include <unistd.h>

#include "nbd_dial.h"
#include "nbd_sock.h"
#include "nbd_xport.h"

static int open_plain(const struct nbd_uri *uri, int timeout_ms,
		      struct nbdws_err *err)
{
	/* WebSocket URIs have their own dialer, ws_dial(). */
	if (uri->scheme == NBD_URI_WS || uri->scheme == NBD_URI_WSS)
		return nbdws_err_set(err, -EPROTONOSUPPORT,
				     "%s:// URIs need the WebSocket dialer (ws_dial)",
				     nbd_uri_scheme_name(uri->scheme));
	return nbd_sock_connect_uri(uri, timeout_ms, err);
}

int nbd_dial(const struct nbd_uri *uri, enum nbd_dial_mode mode,
	     int timeout_ms, struct nbd_export_info *info,
	     struct nbdws_err *err)
{
	long long start = nbd_now_ms();
	struct nbd_fd_xport fx;
	struct nbd_xport x;
	int fd, rc, left;

	fd = open_plain(uri, timeout_ms, err);
	if (fd < 0)
		return fd;
	/* One deadline covers connect and handshake together. */
	left = timeout_ms - (int)(nbd_now_ms() - start);
	nbd_fd_xport_init(&x, &fx, fd, left > 0 ? left : 1);
	if (mode == NBD_DIAL_GO)
		rc = nbd_handshake_go(&x, uri->export_name, info, err);
	else
		rc = nbd_handshake_info(&x, uri->export_name, info, err);
	if (rc || mode != NBD_DIAL_GO) {
		close(fd);
		return rc;
	}
	return fd;
}

int nbd_dial_list(const struct nbd_uri *uri, int timeout_ms,
		  struct nbd_export_list *list, struct nbdws_err *err)
{
	long long start = nbd_now_ms();
	struct nbd_fd_xport fx;
	struct nbd_xport x;
	int fd, rc, left;

	fd = open_plain(uri, timeout_ms, err);
	if (fd < 0)
		return fd;
	left = timeout_ms - (int)(nbd_now_ms() - start);
	nbd_fd_xport_init(&x, &fx, fd, left > 0 ? left : 1);
	rc = nbd_handshake_list(&x, list, err);
	close(fd);
	return rc;
}
