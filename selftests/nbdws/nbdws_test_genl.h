/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A small raw generic netlink client for the selftests, on libmnl. It is
 * deliberately independent of nbdctl's libnl code: the tests check the
 * contract in uapi/linux/nbdws.h byte by byte, so they build messages
 * themselves (including broken ones) and read the kernel's error and
 * extack message straight from the NLMSG_ERROR reply.
 */
#ifndef _NBDWS_TEST_GENL_H
#define _NBDWS_TEST_GENL_H

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/nbdws.h>

#include "nbd_proto.h"
#include "nbdws_test_util.h"

#define NL_BUF_SIZE	65536

struct nl {
	struct mnl_socket *sock;
	uint16_t family;
	uint32_t mcgrp_events;
	uint32_t seq;
	char *buf;			/* NL_BUF_SIZE, for replies */
	char extack[256];		/* NLMSGERR_ATTR_MSG of the last error */
	int miss_type;			/* NLMSGERR_ATTR_MISS_TYPE, or -1 */
	bool has_extack;		/* a message or a missing attribute */
	char events_seen[1024];		/* log of received events */
};

typedef int (*nl_msg_cb)(const struct nlmsghdr *nlh, void *data);

static inline void nl_close(struct nl *nl)
{
	if (nl->sock)
		mnl_socket_close(nl->sock);
	nl->sock = NULL;
	free(nl->buf);
	nl->buf = NULL;
}

static inline void nl_parse_extack(struct nl *nl, const struct nlmsghdr *nlh)
{
	const struct nlmsgerr *err = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *a, *attr;
	size_t off = sizeof(*err);
	const struct nlattr *tlvs;
	size_t len;

	nl->extack[0] = 0;
	nl->has_extack = false;
	nl->miss_type = -1;
	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		off += NLMSG_ALIGN(err->msg.nlmsg_len - sizeof(struct nlmsghdr));
	if (off >= mnl_nlmsg_get_payload_len(nlh))
		return;
	tlvs = (const struct nlattr *)((const char *)err + off);
	len = mnl_nlmsg_get_payload_len(nlh) - off;
	mnl_attr_for_each_payload(tlvs, len) {
		a = attr;
		if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG &&
		    mnl_attr_get_payload_len(a) > 1) {
			snprintf(nl->extack, sizeof(nl->extack), "%.*s",
				 (int)mnl_attr_get_payload_len(a),
				 (const char *)mnl_attr_get_payload(a));
			nl->has_extack |= nl->extack[0] != 0;
		}
		/* GENL_REQ_ATTR_CHECK() names the attribute, without text. */
		if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MISS_TYPE &&
		    mnl_attr_get_payload_len(a) == 4) {
			nl->miss_type = mnl_attr_get_u32(a);
			snprintf(nl->extack, sizeof(nl->extack),
				 "missing attribute %d", nl->miss_type);
			nl->has_extack = true;
		}
	}
}

/*
 * Read replies to sequence @seq until the ack (or NLMSG_DONE of a dump);
 * every other message of that sequence goes to @cb. Returns 0 or -errno
 * from the kernel's ack; -ETIMEDOUT if nothing arrives within the socket's
 * receive timeout.
 */
static inline int nl_recv_ack(struct nl *nl, uint32_t seq, nl_msg_cb cb,
			      void *data)
{
	for (;;) {
		int n = mnl_socket_recvfrom(nl->sock, nl->buf, NL_BUF_SIZE);
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)nl->buf;

		if (n < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		for (; mnl_nlmsg_ok(nlh, n); nlh = mnl_nlmsg_next(nlh, &n)) {
			if (nlh->nlmsg_seq != seq)
				continue;
			if (nlh->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e =
					mnl_nlmsg_get_payload(nlh);

				nl_parse_extack(nl, nlh);
				return e->error;
			}
			if (nlh->nlmsg_type == NLMSG_DONE) {
				const int *e = mnl_nlmsg_get_payload(nlh);

				if (mnl_nlmsg_get_payload_len(nlh) >= sizeof(int) &&
				    *e) {
					nl_parse_extack(nl, nlh);
					return *e;
				}
				return 0;
			}
			if (cb && cb(nlh, data) < 0)
				return -EPROTO;
		}
	}
}

/* Send a message built by the caller; seq is taken from the header. */
static inline int nl_send(struct nl *nl, const void *msg, size_t len)
{
	nl->extack[0] = 0;
	nl->has_extack = false;
	nl->miss_type = -1;
	if (mnl_socket_sendto(nl->sock, msg, len) < 0)
		return -errno;
	return 0;
}

static inline int nl_transact(struct nl *nl, struct nlmsghdr *nlh,
			      nl_msg_cb cb, void *data)
{
	int ret = nl_send(nl, nlh, nlh->nlmsg_len);

	return ret ? ret : nl_recv_ack(nl, nlh->nlmsg_seq, cb, data);
}

/* Start a generic netlink request for @family/@cmd in @buf. */
static inline struct nlmsghdr *nl_msg_start(struct nl *nl, char *buf,
					    uint16_t family, uint8_t cmd,
					    uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct genlmsghdr *g;

	nlh->nlmsg_type = family;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	nlh->nlmsg_seq = ++nl->seq;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->cmd = cmd;
	g->version = family == GENL_ID_CTRL ? 1 : NBDWS_GENL_VERSION;
	return nlh;
}

static inline struct nlmsghdr *nl_cmd(struct nl *nl, char *buf, uint8_t cmd)
{
	return nl_msg_start(nl, buf, nl->family, cmd, 0);
}

struct nl_family_info {
	uint16_t id;
	uint32_t mcgrp;
};

static inline int nl_family_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nl_family_info *fi = data;
	const struct nlattr *a, *g, *ga;

	mnl_attr_for_each(a, nlh, sizeof(struct genlmsghdr)) {
		if (mnl_attr_get_type(a) == CTRL_ATTR_FAMILY_ID)
			fi->id = mnl_attr_get_u16(a);
		if (mnl_attr_get_type(a) != CTRL_ATTR_MCAST_GROUPS)
			continue;
		mnl_attr_for_each_nested(g, a) {
			const char *name = NULL;
			uint32_t id = 0;

			mnl_attr_for_each_nested(ga, g) {
				if (mnl_attr_get_type(ga) == CTRL_ATTR_MCAST_GRP_NAME)
					name = mnl_attr_get_str(ga);
				if (mnl_attr_get_type(ga) == CTRL_ATTR_MCAST_GRP_ID)
					id = mnl_attr_get_u32(ga);
			}
			if (name && !strcmp(name, NBDWS_GENL_MCGRP_EVENTS))
				fi->mcgrp = id;
		}
	}
	return MNL_CB_OK;
}

/*
 * Open a generic netlink socket with extended acks, resolve the "nbdws"
 * family and its events group. Returns 0 or -errno (-ENOENT: family not
 * registered, i.e. the module is not loaded).
 */
static inline int nl_open(struct nl *nl)
{
	struct timeval tv = { .tv_sec = 90 };	/* CONNECT is slow under TCG */
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nl_family_info fi = { 0 };
	struct nlmsghdr *nlh;
	int one = 1, ret;

	memset(nl, 0, sizeof(*nl));
	nl->buf = malloc(NL_BUF_SIZE);
	nl->sock = mnl_socket_open(NETLINK_GENERIC);
	if (!nl->sock || !nl->buf) {
		ret = -errno;
		nl_close(nl);
		return ret ? ret : -ENOMEM;
	}
	if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID)) {
		ret = -errno;
		nl_close(nl);
		return ret ? ret : -EIO;
	}
	mnl_socket_setsockopt(nl->sock, NETLINK_EXT_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(nl->sock, NETLINK_CAP_ACK, &one, sizeof(one));
	setsockopt(mnl_socket_get_fd(nl->sock), SOL_SOCKET, SO_RCVTIMEO,
		   &tv, sizeof(tv));
	nl->seq = time(NULL);

	nlh = nl_msg_start(nl, buf, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 0);
	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, NBDWS_GENL_NAME);
	ret = nl_transact(nl, nlh, nl_family_cb, &fi);
	if (ret) {
		nl_close(nl);
		return ret;
	}
	nl->family = fi.id;
	nl->mcgrp_events = fi.mcgrp;
	return fi.id ? 0 : -ENOENT;
}

/* Join the events multicast group (use a socket of its own for this). */
static inline int nl_join_events(struct nl *nl)
{
	int g = nl->mcgrp_events;

	if (!g)
		return -ENOENT;
	if (mnl_socket_setsockopt(nl->sock, NETLINK_ADD_MEMBERSHIP, &g,
				  sizeof(g)))
		return -errno;
	return 0;
}

/* ---- nbdws commands ---------------------------------------------------- */

struct nbdws_connect_args {
	uint64_t size;
	uint32_t bs_min, bs_pref, bs_max, max_req;
	uint32_t server_flags, client_flags;
	uint32_t timeout_ms, dead_timeout_ms, queue_depth;
	const char *backend;
	int nfds;
	int fds[NBDWS_MAX_CONNS + 2];
};

/* Attributes that are 0 are left out; the module applies its defaults. */
static inline void nbdws_put_connect_attrs(struct nlmsghdr *nlh,
					   const struct nbdws_connect_args *a)
{
	struct nlattr *conns, *c;
	int i;

	if (a->size)
		mnl_attr_put_u64(nlh, NBDWS_A_SIZE_BYTES, a->size);
	if (a->bs_min)
		mnl_attr_put_u32(nlh, NBDWS_A_BLOCK_SIZE_MIN, a->bs_min);
	if (a->bs_pref)
		mnl_attr_put_u32(nlh, NBDWS_A_BLOCK_SIZE_PREF, a->bs_pref);
	if (a->bs_max)
		mnl_attr_put_u32(nlh, NBDWS_A_BLOCK_SIZE_MAX, a->bs_max);
	if (a->max_req)
		mnl_attr_put_u32(nlh, NBDWS_A_MAX_REQ_BYTES, a->max_req);
	if (a->server_flags)
		mnl_attr_put_u32(nlh, NBDWS_A_SERVER_FLAGS, a->server_flags);
	if (a->client_flags)
		mnl_attr_put_u32(nlh, NBDWS_A_CLIENT_FLAGS, a->client_flags);
	if (a->timeout_ms)
		mnl_attr_put_u32(nlh, NBDWS_A_TIMEOUT_MS, a->timeout_ms);
	if (a->dead_timeout_ms)
		mnl_attr_put_u32(nlh, NBDWS_A_DEAD_TIMEOUT_MS,
				 a->dead_timeout_ms);
	if (a->queue_depth)
		mnl_attr_put_u32(nlh, NBDWS_A_QUEUE_DEPTH, a->queue_depth);
	if (a->backend)
		mnl_attr_put_strz(nlh, NBDWS_A_BACKEND, a->backend);
	if (!a->nfds)
		return;
	conns = mnl_attr_nest_start(nlh, NBDWS_A_CONNS);
	for (i = 0; i < a->nfds; i++) {
		c = mnl_attr_nest_start(nlh, NBDWS_A_CONN);
		mnl_attr_put_u32(nlh, NBDWS_CONN_A_FD, (uint32_t)a->fds[i]);
		mnl_attr_put_u32(nlh, NBDWS_CONN_A_TRANSPORT,
				 NBDWS_TRANSPORT_PLAIN);
		mnl_attr_nest_end(nlh, c);
	}
	mnl_attr_nest_end(nlh, conns);
}

/* Typical parameters for a 64 MiB export served by a test server. */
static inline void nbdws_connect_defaults(struct nbdws_connect_args *a,
					  uint64_t size)
{
	memset(a, 0, sizeof(*a));
	a->size = size;
	a->bs_min = 512;
	a->bs_pref = 4096;
	a->bs_max = 4 * 1024 * 1024;
	a->server_flags = NBDP_FLAG_HAS_FLAGS | NBDP_FLAG_SEND_FLUSH |
			  NBDP_FLAG_SEND_FUA | NBDP_FLAG_SEND_TRIM |
			  NBDP_FLAG_SEND_WRITE_ZEROES |
			  NBDP_FLAG_CAN_MULTI_CONN;
	a->timeout_ms = 5000;
	a->dead_timeout_ms = 2000;
	a->backend = "selftest";
}

struct nbdws_reply_index {
	bool has_index;
	uint32_t index;
	char disk[32];
};

static inline int nbdws_index_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nbdws_reply_index *r = data;
	const struct nlattr *a;

	mnl_attr_for_each(a, nlh, sizeof(struct genlmsghdr)) {
		if (mnl_attr_get_type(a) == NBDWS_A_INDEX &&
		    mnl_attr_get_payload_len(a) == 4) {
			r->index = mnl_attr_get_u32(a);
			r->has_index = true;
		}
		if (mnl_attr_get_type(a) == NBDWS_A_DISK_NAME)
			snprintf(r->disk, sizeof(r->disk), "%.*s",
				 (int)mnl_attr_get_payload_len(a),
				 (const char *)mnl_attr_get_payload(a));
	}
	return MNL_CB_OK;
}

/*
 * CONNECT, at index @want (a kept device's, or one to create) unless it
 * is negative; on success *index is the device's index (the contract:
 * the reply names the device). -EBADMSG if the reply lacks NBDWS_A_INDEX.
 */
static inline int nbdws_connect_at(struct nl *nl,
				   const struct nbdws_connect_args *a,
				   int64_t want, uint32_t *index)
{
	char *buf = calloc(1, 8192);
	struct nbdws_reply_index r = { 0 };
	struct nlmsghdr *nlh;
	int ret;

	if (!buf)
		return -ENOMEM;
	nlh = nl_cmd(nl, buf, NBDWS_CMD_CONNECT);
	nbdws_put_connect_attrs(nlh, a);
	if (want >= 0)
		mnl_attr_put_u32(nlh, NBDWS_A_INDEX, (uint32_t)want);
	ret = nl_transact(nl, nlh, nbdws_index_cb, &r);
	free(buf);
	if (ret)
		return ret;
	if (!r.has_index)
		return -EBADMSG;
	*index = r.index;
	return 0;
}

/* CONNECT a new device at an index the kernel picks. */
static inline int nbdws_connect(struct nl *nl,
				const struct nbdws_connect_args *a,
				uint32_t *index)
{
	return nbdws_connect_at(nl, a, -1, index);
}

static inline int nbdws_disconnect(struct nl *nl, uint32_t index)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = nl_cmd(nl, buf, NBDWS_CMD_DISCONNECT);

	mnl_attr_put_u32(nlh, NBDWS_A_INDEX, index);
	return nl_transact(nl, nlh, NULL, NULL);
}

/*
 * DISCONNECT with a close frame for WebSocket connections: @code (0: no
 * NBDWS_A_WS_CLOSE_CODE) and @reason_len bytes of @reason, sent as they
 * are (NULL: no NBDWS_A_WS_CLOSE_REASON). @extra_attr, if not 0, adds a
 * u32 attribute DISCONNECT does not take.
 */
static inline int nbdws_disconnect_close(struct nl *nl, uint32_t index,
					 uint16_t code, const void *reason,
					 size_t reason_len, int extra_attr)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = nl_cmd(nl, buf, NBDWS_CMD_DISCONNECT);

	mnl_attr_put_u32(nlh, NBDWS_A_INDEX, index);
	if (code)
		mnl_attr_put_u16(nlh, NBDWS_A_WS_CLOSE_CODE, code);
	if (reason)
		mnl_attr_put(nlh, NBDWS_A_WS_CLOSE_REASON, reason_len, reason);
	if (extra_attr)
		mnl_attr_put_u32(nlh, extra_attr, 1);
	return nl_transact(nl, nlh, NULL, NULL);
}

/*
 * RECONFIGURE: add connections (@ids NULL or an id of -1) or replace the
 * connection in slot @ids[i] with @fds[i]; @timeout_ms 0 leaves it alone.
 */
static inline int nbdws_reconfigure(struct nl *nl, uint32_t index, int nfds,
				    const int *fds, const int *ids,
				    uint32_t timeout_ms)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = nl_cmd(nl, buf, NBDWS_CMD_RECONFIGURE);
	struct nlattr *conns, *c;
	int i;

	mnl_attr_put_u32(nlh, NBDWS_A_INDEX, index);
	if (timeout_ms)
		mnl_attr_put_u32(nlh, NBDWS_A_TIMEOUT_MS, timeout_ms);
	if (nfds) {
		conns = mnl_attr_nest_start(nlh, NBDWS_A_CONNS);
		for (i = 0; i < nfds; i++) {
			c = mnl_attr_nest_start(nlh, NBDWS_A_CONN);
			mnl_attr_put_u32(nlh, NBDWS_CONN_A_FD, fds[i]);
			if (ids && ids[i] >= 0)
				mnl_attr_put_u32(nlh, NBDWS_CONN_A_ID, ids[i]);
			mnl_attr_nest_end(nlh, c);
		}
		mnl_attr_nest_end(nlh, conns);
	}
	return nl_transact(nl, nlh, NULL, NULL);
}

struct nbdws_conn_status {
	uint32_t id, state, reason;
	uint64_t stat[NBDWS_STAT_A_MAX + 1];
	bool has_stats;
};

struct nbdws_dev_status {
	bool has_index;
	uint32_t index, state, server_flags, client_flags, timeout_ms;
	uint64_t size;
	char disk[32];
	int nconns;
	struct nbdws_conn_status conns[NBDWS_MAX_CONNS];
	int ndevices;		/* messages seen (dump) */
	uint32_t indices[64];	/* NBDWS_A_INDEX of each (dump) */
};

static inline void nbdws_parse_conn(const struct nlattr *conn,
				    struct nbdws_conn_status *c)
{
	const struct nlattr *a, *s;

	mnl_attr_for_each_nested(a, conn) {
		switch (mnl_attr_get_type(a)) {
		case NBDWS_CONN_A_ID:
			c->id = mnl_attr_get_u32(a);
			break;
		case NBDWS_CONN_A_STATE:
			c->state = mnl_attr_get_u32(a);
			break;
		case NBDWS_CONN_A_REASON:
			c->reason = mnl_attr_get_u32(a);
			break;
		case NBDWS_CONN_A_STATS:
			c->has_stats = true;
			mnl_attr_for_each_nested(s, a) {
				unsigned int t = mnl_attr_get_type(s);

				if (t <= NBDWS_STAT_A_MAX &&
				    mnl_attr_get_payload_len(s) == 8)
					c->stat[t] = mnl_attr_get_u64(s);
			}
			break;
		}
	}
}

/* Device attributes, either top-level or inside NBDWS_A_DEVICE. */
static inline void nbdws_parse_dev(const struct nlattr *first, size_t len,
				   struct nbdws_dev_status *st)
{
	const struct nlattr *a, *c, *attr;

	mnl_attr_for_each_payload(first, len) {
		a = attr;
		switch (mnl_attr_get_type(a)) {
		case NBDWS_A_DEVICE:
			nbdws_parse_dev(mnl_attr_get_payload(a),
					mnl_attr_get_payload_len(a), st);
			break;
		case NBDWS_A_INDEX:
			st->index = mnl_attr_get_u32(a);
			st->has_index = true;
			break;
		case NBDWS_A_STATE:
			st->state = mnl_attr_get_u32(a);
			break;
		case NBDWS_A_SIZE_BYTES:
			st->size = mnl_attr_get_u64(a);
			break;
		case NBDWS_A_SERVER_FLAGS:
			st->server_flags = mnl_attr_get_u32(a);
			break;
		case NBDWS_A_CLIENT_FLAGS:
			st->client_flags = mnl_attr_get_u32(a);
			break;
		case NBDWS_A_TIMEOUT_MS:
			st->timeout_ms = mnl_attr_get_u32(a);
			break;
		case NBDWS_A_DISK_NAME:
			snprintf(st->disk, sizeof(st->disk), "%.*s",
				 (int)mnl_attr_get_payload_len(a),
				 (const char *)mnl_attr_get_payload(a));
			break;
		case NBDWS_A_CONNS:
			mnl_attr_for_each_nested(c, a)
				if (st->nconns < NBDWS_MAX_CONNS)
					nbdws_parse_conn(c,
						&st->conns[st->nconns++]);
			break;
		}
	}
}

static inline int nbdws_status_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nbdws_dev_status *st = data, tmp;

	memset(&tmp, 0, sizeof(tmp));
	nbdws_parse_dev(mnl_nlmsg_get_payload_offset(nlh,
						     sizeof(struct genlmsghdr)),
			mnl_nlmsg_get_payload_len(nlh) -
				sizeof(struct genlmsghdr), &tmp);
	/* A dump: keep the first device in full, the index of each. */
	if (!st->ndevices)
		*st = tmp;
	if (st->ndevices < 64)
		st->indices[st->ndevices] = tmp.index;
	st->ndevices++;
	return MNL_CB_OK;
}

static inline int nbdws_status(struct nl *nl, uint32_t index,
			       struct nbdws_dev_status *st)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = nl_cmd(nl, buf, NBDWS_CMD_STATUS);

	memset(st, 0, sizeof(*st));
	mnl_attr_put_u32(nlh, NBDWS_A_INDEX, index);
	return nl_transact(nl, nlh, nbdws_status_cb, st);
}

/* STATUS dump of all devices; st->ndevices counts them. */
static inline int nbdws_status_all(struct nl *nl, struct nbdws_dev_status *st)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = nl_msg_start(nl, buf, nl->family,
					    NBDWS_CMD_STATUS, NLM_F_DUMP);

	memset(st, 0, sizeof(*st));
	return nl_transact(nl, nlh, nbdws_status_cb, st);
}

/* ---- events ------------------------------------------------------------ */

struct nbdws_event_info {
	uint32_t event, index, reason, conn_id;
	bool has_index, has_reason, has_conn_id;
};

static inline void nbdws_event_conn(const struct nlattr *conn,
				    struct nbdws_event_info *ev)
{
	const struct nlattr *a;

	mnl_attr_for_each_nested(a, conn) {
		if (mnl_attr_get_type(a) == NBDWS_CONN_A_REASON &&
		    !ev->has_reason) {
			ev->reason = mnl_attr_get_u32(a);
			ev->has_reason = true;
		}
		if (mnl_attr_get_type(a) == NBDWS_CONN_A_ID) {
			ev->conn_id = mnl_attr_get_u32(a);
			ev->has_conn_id = true;
		}
	}
}

/* Reason and connection may be top-level or inside NBDWS_A_CONN(S). */
static inline void nbdws_parse_event(const struct nlmsghdr *nlh,
				     struct nbdws_event_info *ev)
{
	const struct nlattr *a, *c;

	memset(ev, 0, sizeof(*ev));
	ev->event = ~0U;
	mnl_attr_for_each(a, nlh, sizeof(struct genlmsghdr)) {
		switch (mnl_attr_get_type(a)) {
		case NBDWS_A_EVENT:
			ev->event = mnl_attr_get_u32(a);
			break;
		case NBDWS_A_INDEX:
			ev->index = mnl_attr_get_u32(a);
			ev->has_index = true;
			break;
		case NBDWS_A_REASON:
			ev->reason = mnl_attr_get_u32(a);
			ev->has_reason = true;
			break;
		case NBDWS_A_CONN:
			nbdws_event_conn(a, ev);
			break;
		case NBDWS_A_CONNS:
			mnl_attr_for_each_nested(c, a)
				nbdws_event_conn(c, ev);
			break;
		}
	}
}

/* Open a socket subscribed to the events group. */
static inline int nl_open_events(struct nl *nl)
{
	int ret = nl_open(nl);

	if (ret)
		return ret;
	ret = nl_join_events(nl);
	if (ret)
		nl_close(nl);
	return ret;
}

/*
 * Wait up to @timeout_ms for event @event about device @index; every event
 * read on the way is appended to nl->events_seen for diagnostics.
 */
static inline int nl_wait_event(struct nl *nl, uint32_t index, uint32_t event,
				int timeout_ms, struct nbdws_event_info *out)
{
	long long end = tu_deadline(timeout_ms);
	int fd = mnl_socket_get_fd(nl->sock);

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long long left = end - tu_now_ms();
		const struct nlmsghdr *nlh;
		int n;

		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(&pfd, 1, left) <= 0)
			continue;
		n = recv(fd, nl->buf, NL_BUF_SIZE, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			if (errno == ENOBUFS)	/* overrun: keep going */
				continue;
			return -errno;
		}
		nlh = (const struct nlmsghdr *)nl->buf;
		for (; mnl_nlmsg_ok(nlh, n); nlh = mnl_nlmsg_next(nlh, &n)) {
			const struct genlmsghdr *g;
			struct nbdws_event_info ev;
			size_t l = strlen(nl->events_seen);

			if (nlh->nlmsg_type != nl->family)
				continue;
			g = mnl_nlmsg_get_payload(nlh);
			if (g->cmd != NBDWS_CMD_EVENT)
				continue;
			nbdws_parse_event(nlh, &ev);
			snprintf(nl->events_seen + l,
				 sizeof(nl->events_seen) - l,
				 "[dev %u ev %u reason %u] ", ev.index,
				 ev.event, ev.reason);
			if (ev.event == event && ev.has_index &&
			    ev.index == index) {
				if (out)
					*out = ev;
				return 0;
			}
		}
	}
}

/* ---- device plumbing ------------------------------------------------------ */

static inline void nbdws_dev_path(uint32_t index, char *path, size_t len)
{
	snprintf(path, len, "/dev/%s%u", NBDWS_DISK_NAME, index);
}

static inline void nbdws_disk_name(uint32_t index, char *name, size_t len)
{
	snprintf(name, len, "%s%u", NBDWS_DISK_NAME, index);
}

/* Wait (bounded) until /sys/block/nbdwsN is gone. */
static inline int nbdws_wait_gone(uint32_t index, int timeout_ms)
{
	char p[64];

	snprintf(p, sizeof(p), "/sys/block/%s%u", NBDWS_DISK_NAME, index);
	return tu_wait_path(p, false, timeout_ms);
}

/* DISCONNECT (ignoring "already gone") and wait for the disk to vanish. */
static inline int nbdws_teardown_dev(struct nl *nl, uint32_t index)
{
	char disk[32];
	int ret = nbdws_disconnect(nl, index);

	nbdws_disk_name(index, disk, sizeof(disk));
	if (ret && ret != -ENODEV && ret != -ENOENT)
		return ret;
	return nbdws_wait_gone(index, 30000);
}

#endif /* _NBDWS_TEST_GENL_H */
