// SPDX-License-Identifier: GPL-2.0
/*
 * nbdctl: opening connections and describing them to the kernel.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <unistd.h>

#include <linux/nbdws.h>

#include "conns.h"
#include "genl.h"
#include "nbd_dial.h"
#include "nbd_proto.h"
#include "nbdctl.h"
#include "wsopts.h"

void conns_close(struct nbdctl_conn *c, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		if (c[i].fd >= 0)
			close(c[i].fd);
		c[i].fd = -1;
		free(c[i].preread);
		c[i].preread = NULL;
		c[i].preread_len = 0;
	}
}

/* Without NBD_FLAG_HAS_FLAGS the other bits mean nothing (the kernel drops them). */
static uint32_t norm_flags(uint32_t flags)
{
	return flags & NBDP_FLAG_HAS_FLAGS ? flags : 0;
}

int conns_check_same(const struct nbd_export_info *info, uint64_t size,
		     uint32_t flags, uint32_t block)
{
	if (!block)
		block = 1;
	if (info->size - info->size % block != size - size % block) {
		nbdctl_err("the export's size changed from %" PRIu64 " to %" PRIu64
			   " bytes: refusing to mix them on one device", size, info->size);
		return -1;
	}
	if (norm_flags(info->tflags) != norm_flags(flags)) {
		nbdctl_err("the export's flags changed from 0x%04" PRIx32 " to 0x%04x:"
			   " refusing to mix them on one device", flags, info->tflags);
		return -1;
	}
	return 0;
}

/*
 * One connection through NBD_OPT_GO. WebSocket connections come with the
 * bytes read past the handshake, which the kernel must consume first and
 * takes only up to NBDWS_PREREAD_MAX.
 */
static int conn_open_one(const struct conn_target *t, int timeout_ms,
			 struct nbdctl_conn *c, struct nbd_export_info *info,
			 struct nbdws_err *err)
{
	static const struct ws_dial_opts no_opts;
	struct ws_conn wc;
	int fd;

	c->transport = NBDWS_TRANSPORT_PLAIN;
	if (t->uri->scheme != NBD_URI_WS && t->uri->scheme != NBD_URI_WSS) {
		fd = nbd_dial(t->uri, NBD_DIAL_GO, timeout_ms, info, err);
		if (fd >= 0)
			c->fd = fd;
		return fd < 0 ? fd : 0;
	}
	fd = ws_dial(t->uri, t->ws ? t->ws : &no_opts, NBD_DIAL_GO, timeout_ms,
		     info, &wc, err);
	if (fd < 0)
		return fd;
	if (wc.preread_len > NBDWS_PREREAD_MAX) {
		nbdws_err_set(err, -EMSGSIZE,
			      "the server sent %zu bytes after the NBD handshake, before any request; the kernel takes at most %d such bytes (NBDWS_PREREAD_MAX): this server does not behave like an NBD server",
			      wc.preread_len, NBDWS_PREREAD_MAX);
		close(fd);
		ws_conn_free(&wc);
		nbd_export_info_free(info);
		return -EMSGSIZE;
	}
	if (wc.tls_desc[0])
		nbdctl_verbose("%s: %s, kernel TLS", t->uri->host,
			       wc.tls_desc);
	c->fd = fd;
	c->transport = NBDWS_TRANSPORT_WS_CLIENT;
	c->preread = wc.preread;
	c->preread_len = wc.preread_len;
	wc.preread = NULL;
	wc.preread_len = 0;
	ws_conn_free(&wc);
	return 0;
}

int conns_open(const struct conn_target *t, unsigned int n, int timeout_ms,
	       struct nbdctl_conn *c, struct nbd_export_info *info)
{
	struct nbdws_err err;
	unsigned int i;

	for (i = 0; i < n; i++)
		c[i] = (struct nbdctl_conn){ .fd = -1 };
	for (i = 0; i < n; i++) {
		struct nbd_export_info more;
		char prefix[48];
		int rc;

		rc = conn_open_one(t, timeout_ms, &c[i], i ? &more : info, &err);
		if (rc < 0) {
			snprintf(prefix, sizeof(prefix), "connection %u of %u",
				 i + 1, n);
			wsopts_report(t->uri, rc, err.msg, n > 1 ? prefix : NULL);
			goto fail;
		}
		if (!i)
			continue;
		if (conns_check_same(&more, info->size, info->tflags, 1)) {
			nbd_export_info_free(&more);
			goto fail;
		}
		nbd_export_info_free(&more);
	}
	return 0;
fail:
	if (i)
		nbd_export_info_free(info);
	conns_close(c, n);
	return -1;
}

int conns_put(struct nl_msg *msg, const struct nbdctl_conn *c,
	      uint32_t ping_ms, int64_t id)
{
	/* Keepalive pings exist only on WebSocket transports. */
	if (c->transport == NBDWS_TRANSPORT_PLAIN)
		ping_ms = 0;
	return nbdws_nl_put_conn(msg, c->fd, c->transport, c->preread,
				 c->preread_len, ping_ms, id) ? -1 : 0;
}
