// SPDX-License-Identifier: GPL-2.0
/*
 * Generic netlink plumbing for the nbdws family (see nbdws_nl.h). Requests
 * wait for the kernel's ACK so that every command knows whether it
 * worked, and error ACKs are parsed for the extack message the module
 * attaches to each rejection.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <linux/netlink.h>
#include <netlink/errno.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>

#include "nbdws_nl.h"
#include "peer_text.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

/* Large enough for a full STATUS dump message of one device. */
#define NL_BUF_SIZE	65536

struct req_ctx {
	struct nbdws_nl *nl;
	nbdws_nl_cb cb;
	void *arg;
	int err;
	bool done;
};

/* libnl's error numbers back to the errno a caller can act on. */
static int nle_errno(int nle)
{
	switch (nle < 0 ? -nle : nle) {
	case NLE_NOMEM:
		return -ENOMEM;
	case NLE_PERM:
		return -EPERM;
	case NLE_NOACCESS:
		return -EACCES;
	case NLE_AF_NOSUPPORT:
		return -EAFNOSUPPORT;
	case NLE_OBJ_NOTFOUND:
		return -ENOENT;
	case NLE_AGAIN:
		return -EAGAIN;
	default:
		return -EIO;
	}
}

static int resolve(struct nbdws_nl *nl)
{
	nl->family = genl_ctrl_resolve(nl->sk, NBDWS_GENL_NAME);
	return nl->family;
}

int nbdws_nl_open(struct nbdws_nl *nl, const char *module_path,
		  struct nbdws_err *err)
{
	struct nbdws_err why = { .msg = "" };
	int one = 1, rc;

	memset(nl, 0, sizeof(*nl));
	nl->events_grp = -1;
	nl->sk = nl_socket_alloc();
	if (!nl->sk)
		return nbdws_err_set(err, -ENOMEM, "out of memory");
	rc = genl_connect(nl->sk);
	if (rc < 0) {
		rc = nbdws_err_set(err, nle_errno(rc),
				   "cannot open a generic netlink socket: %s",
				   nl_geterror(rc));
		goto fail;
	}
	nl_socket_set_msg_buf_size(nl->sk, NL_BUF_SIZE);
	/* Ask for extack messages and for error ACKs without our request. */
	setsockopt(nl_socket_get_fd(nl->sk), SOL_NETLINK, NETLINK_EXT_ACK,
		   &one, sizeof(one));
	setsockopt(nl_socket_get_fd(nl->sk), SOL_NETLINK, NETLINK_CAP_ACK,
		   &one, sizeof(one));

	if (resolve(nl) >= 0)
		return 0;
	rc = nbdws_nl_load_module(module_path, &why);
	if (!rc && resolve(nl) >= 0)
		return 0;
	if (rc) {
		rc = nbdws_err_set(err, -NBDWS_NL_ENOMOD,
				   "the nbdws module is not loaded and could not be loaded: %s",
				   why.msg);
	} else {
		rc = nbdws_err_set(err, -NBDWS_NL_ENOFAMILY,
				   "the nbdws module was loaded but its netlink family '%s' is missing: check dmesg",
				   NBDWS_GENL_NAME);
	}
fail:
	nl_socket_free(nl->sk);
	nl->sk = NULL;
	return rc;
}

int nbdws_nl_subscribe(struct nbdws_nl *nl, struct nbdws_err *err)
{
	int rc;

	rc = genl_ctrl_resolve_grp(nl->sk, NBDWS_GENL_NAME,
				   NBDWS_GENL_MCGRP_EVENTS);
	if (rc < 0)
		return nbdws_err_set(err, nle_errno(rc),
				     "cannot find the '%s' multicast group of the nbdws family: %s",
				     NBDWS_GENL_MCGRP_EVENTS, nl_geterror(rc));
	nl->events_grp = rc;
	/* Events are unsolicited: no sequence numbers to check. */
	nl_socket_disable_seq_check(nl->sk);
	rc = nl_socket_add_membership(nl->sk, nl->events_grp);
	if (rc < 0)
		return nbdws_err_set(err, nle_errno(rc),
				     "cannot join the nbdws events group: %s",
				     nl_geterror(rc));
	return 0;
}

void nbdws_nl_close(struct nbdws_nl *nl)
{
	if (nl->sk)
		nl_socket_free(nl->sk);
	nl->sk = NULL;
}

int nbdws_nl_fd(const struct nbdws_nl *nl)
{
	return nl->sk ? nl_socket_get_fd(nl->sk) : -1;
}

int nbdws_nl_set_rcvbuf(struct nbdws_nl *nl, int bytes)
{
	int fd = nbdws_nl_fd(nl);

	if (fd < 0)
		return -EBADF;
	/* FORCE ignores net.core.rmem_max but needs CAP_NET_ADMIN. */
	if (!setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)))
		return 0;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes)))
		return -errno;
	return 0;
}

struct nl_msg *nbdws_nl_msg(struct nbdws_nl *nl, uint8_t cmd, int flags)
{
	struct nl_msg *msg = nlmsg_alloc();

	if (!msg)
		return NULL;
	if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, nl->family, 0, flags,
			 cmd, NBDWS_GENL_VERSION)) {
		nlmsg_free(msg);
		return NULL;
	}
	return msg;
}

struct nlattr *nbdws_nl_nest_start(struct nl_msg *msg, int type)
{
	struct nlattr *nest = nla_nest_start(msg, type);

	if (nest)
		nest->nla_type |= NLA_F_NESTED;
	return nest;
}

int nbdws_nl_put_conn(struct nl_msg *msg, int fd, uint32_t transport,
		      const void *preread, size_t preread_len,
		      uint32_t ping_ms, int64_t id)
{
	struct nlattr *conn = nbdws_nl_nest_start(msg, NBDWS_A_CONN);

	if (!conn || nla_put_s32(msg, NBDWS_CONN_A_FD, fd) < 0 ||
	    nla_put_u32(msg, NBDWS_CONN_A_TRANSPORT, transport) < 0 ||
	    (preread_len &&
	     nla_put(msg, NBDWS_CONN_A_PREREAD, (int)preread_len, preread) < 0) ||
	    (ping_ms && nla_put_u32(msg, NBDWS_CONN_A_PING_MS, ping_ms) < 0) ||
	    (id >= 0 && nla_put_u32(msg, NBDWS_CONN_A_ID, (uint32_t)id) < 0))
		return -ENOMEM;
	nla_nest_end(msg, conn);
	return 0;
}

static int valid_cb(struct nl_msg *msg, void *arg)
{
	struct req_ctx *ctx = arg;
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	struct genlmsghdr *gnlh;

	if (!ctx->cb)
		return NL_OK;
	if (!genlmsg_valid_hdr(nlh, 0)) {
		ctx->err = -EBADMSG;
		return NL_OK;
	}
	gnlh = nlmsg_data(nlh);
	if (ctx->cb(genlmsg_attrdata(gnlh, 0), genlmsg_attrlen(gnlh, 0),
		    ctx->arg) < 0 && !ctx->err)
		ctx->err = -EBADMSG;
	return NL_OK;
}

/* Pull NLMSGERR_ATTR_MSG out of an error ACK, if the kernel sent one. */
static void parse_extack(struct nbdws_nl *nl, struct nlmsgerr *e)
{
	struct nlmsghdr *nlh = (struct nlmsghdr *)((char *)e - NLMSG_HDRLEN);
	struct nlattr *tb[NLMSGERR_ATTR_MAX + 1];
	size_t off = sizeof(*e);
	struct nlattr *attrs;
	int len;

	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		off += e->msg.nlmsg_len - NLMSG_HDRLEN;
	len = (int)nlh->nlmsg_len - NLMSG_HDRLEN - (int)off;
	if (len <= 0)
		return;
	attrs = (struct nlattr *)((char *)e + off);
	if (nla_parse(tb, NLMSGERR_ATTR_MAX, attrs, len, NULL) < 0)
		return;
	nbdws_nl_get_str(tb[NLMSGERR_ATTR_MSG], nl->extack, sizeof(nl->extack));
}

static int error_cb(struct sockaddr_nl *nla, struct nlmsgerr *e, void *arg)
{
	struct req_ctx *ctx = arg;

	(void)nla;
	ctx->err = e->error;
	ctx->done = true;
	parse_extack(ctx->nl, e);
	return NL_STOP;
}

static int finish_cb(struct nl_msg *msg, void *arg)
{
	struct req_ctx *ctx = arg;

	(void)msg;
	ctx->done = true;
	return NL_STOP;
}

int nbdws_nl_request(struct nbdws_nl *nl, struct nl_msg *msg,
		     nbdws_nl_cb cb, void *arg)
{
	struct req_ctx ctx = { .nl = nl, .cb = cb, .arg = arg };
	bool dump = nlmsg_hdr(msg)->nlmsg_flags & NLM_F_DUMP;
	struct nl_cb *nlcb;
	int rc;

	nl->extack[0] = '\0';
	if (!dump)
		nlmsg_hdr(msg)->nlmsg_flags |= NLM_F_ACK;
	rc = nl_send_auto(nl->sk, msg);
	nlmsg_free(msg);
	if (rc < 0) {
		snprintf(nl->extack, sizeof(nl->extack), "send failed: %s",
			 nl_geterror(rc));
		return -EIO;
	}
	nlcb = nl_cb_alloc(NL_CB_DEFAULT);
	if (!nlcb)
		return -ENOMEM;
	nl_cb_set(nlcb, NL_CB_VALID, NL_CB_CUSTOM, valid_cb, &ctx);
	nl_cb_set(nlcb, NL_CB_ACK, NL_CB_CUSTOM, finish_cb, &ctx);
	nl_cb_set(nlcb, NL_CB_FINISH, NL_CB_CUSTOM, finish_cb, &ctx);
	nl_cb_err(nlcb, NL_CB_CUSTOM, error_cb, &ctx);
	while (!ctx.done) {
		rc = nl_recvmsgs(nl->sk, nlcb);
		if (rc < 0 && !ctx.done) {
			ctx.err = rc == -NLE_NOMEM ? -ENOMEM : -EIO;
			break;
		}
	}
	nl_cb_put(nlcb);
	return ctx.err;
}

bool nbdws_nl_get_u16(const struct nlattr *a, uint16_t *v)
{
	if (!a || nla_len(a) < (int)sizeof(*v))
		return false;
	memcpy(v, nla_data(a), sizeof(*v));
	return true;
}

bool nbdws_nl_get_u32(const struct nlattr *a, uint32_t *v)
{
	if (!a || nla_len(a) < (int)sizeof(*v))
		return false;
	memcpy(v, nla_data(a), sizeof(*v));
	return true;
}

bool nbdws_nl_get_s32(const struct nlattr *a, int32_t *v)
{
	if (!a || nla_len(a) < (int)sizeof(*v))
		return false;
	memcpy(v, nla_data(a), sizeof(*v));
	return true;
}

bool nbdws_nl_get_u64(const struct nlattr *a, uint64_t *v)
{
	if (!a || nla_len(a) < (int)sizeof(*v))
		return false;
	memcpy(v, nla_data(a), sizeof(*v));
	return true;
}

bool nbdws_nl_get_str(const struct nlattr *a, char *buf, size_t len)
{
	const char *s;

	if (!a || !len)
		return false;
	s = nla_data(a);
	/* The kernel's strings may carry a peer's text: a close reason. */
	peer_text(buf, len, s, strnlen(s, (size_t)nla_len(a)));
	return true;
}

static void connect_reply_attr(const struct nlattr *a,
			       struct nbdws_nl_connect_reply *r)
{
	if (nla_type(a) == NBDWS_A_INDEX)
		r->has_index = nbdws_nl_get_u32(a, &r->index);
	else if (nla_type(a) == NBDWS_A_DISK_NAME)
		nbdws_nl_get_str(a, r->disk, sizeof(r->disk));
}

int nbdws_nl_connect_reply_cb(struct nlattr *attrs, int len, void *arg)
{
	struct nbdws_nl_connect_reply *r = arg;
	struct nlattr *a, *d;
	int rem, drem;

	nla_for_each_attr(a, attrs, len, rem) {
		if (nla_type(a) == NBDWS_A_DEVICE)
			nla_for_each_nested(d, a, drem)
				connect_reply_attr(d, r);
		else
			connect_reply_attr(a, r);
	}
	return 0;
}
