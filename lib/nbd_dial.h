/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Connect to an NBD URI and run the handshake in one call: what a client
 * tool does before it hands a socket to nbdws.ko or prints export details.
 */
#ifndef _NBDWS_NBD_DIAL_H
#define _NBDWS_NBD_DIAL_H

#include "nbd_handshake.h"
#include "nbd_uri.h"
#include "nbdws_err.h"

enum nbd_dial_mode {
	NBD_DIAL_GO,		/* end in transmission: the fd is returned */
	NBD_DIAL_INFO,		/* query and close */
};

/*
 * Open a connection to @uri (nbd:// or nbd+unix://; see nbd_sock.h for
 * how addresses are tried) and negotiate its export, connect and
 * handshake together within one deadline of @timeout_ms. NBD_DIAL_GO
 * returns the connected fd (>= 0), in transmission, for the kernel;
 * NBD_DIAL_INFO returns 0 and closes it. Failures return a negative
 * errno with @err set. ws:// and wss:// URIs have their own dialer,
 * ws_dial() (ws_dial.h): here they fail with -EPROTONOSUPPORT.
 */
int nbd_dial(const struct nbd_uri *uri, enum nbd_dial_mode mode,
	     int timeout_ms, struct nbd_export_info *info,
	     struct nbdws_err *err);

/*
 * Connect to @uri and list its exports with NBD_OPT_LIST, within
 * @timeout_ms; the same URIs and errors as nbd_dial().
 */
int nbd_dial_list(const struct nbd_uri *uri, int timeout_ms,
		  struct nbd_export_list *list, struct nbdws_err *err);

#endif /* _NBDWS_NBD_DIAL_H */
