// SPDX-License-Identifier: GPL-2.0
/*
 * nbdws: the "nbdws" generic netlink family (see uapi/linux/nbdws.h).
 *
 * Every command validates strictly (policies, then semantic checks with an
 * extack message for each rejection) before it changes anything, so a
 * command either applies completely or not at all: in particular no socket
 * passed in is ever silently dropped.
 *
 * The family runs its commands in parallel (parallel_ops): they take the
 * lock of the device they work on (see dev.c), so a command on one device
 * never waits for another device, nor holds genl_mutex, which every other
 * generic netlink family without parallel_ops shares.
 */
#include <linux/log2.h>
#include <linux/mm.h>
#include <net/genetlink.h>
#include <linux/nbdws.h>

#include "compat.h"
#include "nbdws.h"

#define NBDWS_SLOT_ANY		U32_MAX
#define NBDWS_NL_DEV_SIZE	16384
#define NBDWS_MAX_REQ_LIMIT	(32U << 20)
/*
 * Highest index CONNECT may ask for: far beyond any real number of
 * devices, low enough that names stay short and the IDR stays small.
 */
#define NBDWS_MAX_INDEX		((1 << 20) - 1)
#define NBDWS_CF_ALL		(NBDWS_CF_READ_ONLY | NBDWS_CF_KEEP_DEVICE | \
				 NBDWS_CF_NO_TIMEOUT)

static const struct nla_policy nbdws_conn_policy[NBDWS_CONN_A_MAX + 1] = {
	[NBDWS_CONN_A_FD]		= NLA_POLICY_MIN(NLA_S32, 0),
	[NBDWS_CONN_A_ID]		= NLA_POLICY_MAX(NLA_U32, NBDWS_MAX_CONNS - 1),
	[NBDWS_CONN_A_TRANSPORT]	= NLA_POLICY_MAX(NLA_U32, NBDWS_TRANSPORT_MAX),
	[NBDWS_CONN_A_PREREAD]		= { .type = NLA_BINARY, .len = NBDWS_PREREAD_MAX },
	[NBDWS_CONN_A_PING_MS]		= { .type = NLA_U32 },
	[NBDWS_CONN_A_STATE]		= { .type = NLA_REJECT },
	[NBDWS_CONN_A_REASON]		= { .type = NLA_REJECT },
	[NBDWS_CONN_A_STATS]		= { .type = NLA_REJECT },
};

static const struct nla_policy nbdws_policy[NBDWS_A_MAX + 1] = {
	[NBDWS_A_INDEX]			= { .type = NLA_U32 },
	[NBDWS_A_SIZE_BYTES]		= { .type = NLA_U64 },
	[NBDWS_A_BLOCK_SIZE_MIN]	= { .type = NLA_U32 },
	[NBDWS_A_BLOCK_SIZE_PREF]	= { .type = NLA_U32 },
	[NBDWS_A_BLOCK_SIZE_MAX]	= { .type = NLA_U32 },
	[NBDWS_A_MAX_REQ_BYTES]		= { .type = NLA_U32 },
	[NBDWS_A_SERVER_FLAGS]		= NLA_POLICY_MASK(NLA_U32, 0xffff),
	[NBDWS_A_CLIENT_FLAGS]		= NLA_POLICY_MASK(NLA_U32, NBDWS_CF_ALL),
	[NBDWS_A_TIMEOUT_MS]		= { .type = NLA_U32 },
	[NBDWS_A_DEAD_TIMEOUT_MS]	= { .type = NLA_U32 },
	[NBDWS_A_QUEUE_DEPTH]		= NLA_POLICY_RANGE(NLA_U32, 1, NBDWS_MAX_QUEUE_DEPTH),
	[NBDWS_A_BACKEND]		= { .type = NLA_NUL_STRING, .len = NBDWS_BACKEND_MAX - 1 },
	[NBDWS_A_CONNS]			= NLA_POLICY_NESTED_ARRAY(nbdws_conn_policy),
	[NBDWS_A_CONN]			= { .type = NLA_REJECT },
	[NBDWS_A_DEVICE]		= { .type = NLA_REJECT },
	[NBDWS_A_EVENT]			= { .type = NLA_REJECT },
	[NBDWS_A_REASON]		= { .type = NLA_REJECT },
	[NBDWS_A_WS_CLOSE_CODE]		= { .type = NLA_REJECT },
	[NBDWS_A_WS_CLOSE_REASON]	= { .type = NLA_REJECT },
	[NBDWS_A_DISK_NAME]		= { .type = NLA_REJECT },
	[NBDWS_A_STATE]			= { .type = NLA_REJECT },
};

/*
 * DISCONNECT takes the device and, optionally, the close frame to end its
 * WebSocket connections with; nothing else.
 */
static const struct nla_policy nbdws_disc_policy[NBDWS_A_MAX + 1] = {
	[NBDWS_A_INDEX]			= { .type = NLA_U32 },
	[NBDWS_A_WS_CLOSE_CODE]		= NLA_POLICY_RANGE(NLA_U16, 1000, 4999),
	[NBDWS_A_WS_CLOSE_REASON]	= { .type = NLA_STRING,
					    .len = WS_MAX_CONTROL - 2 },
};

static struct genl_family nbdws_genl_family;

/* One connection of a CONNECT or RECONFIGURE request, validated. */
struct nbdws_nl_conn {
	struct nbdws_conn_params p;
	u32 slot;			/* NBDWS_SLOT_ANY if not given */
	const struct nlattr *attr;
};

static void nbdws_nl_put_conns(struct nbdws_nl_conn *nc, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		if (nc[i].p.sock)
			sockfd_put(nc[i].p.sock);
		nc[i].p.sock = NULL;
	}
}

static int nbdws_nl_parse_conn(struct genl_info *info, struct nlattr *c,
			       struct nbdws_nl_conn *nc)
{
	struct netlink_ext_ack *extack = info->extack;
	struct nlattr *tb[NBDWS_CONN_A_MAX + 1];
	int ret;

	ret = nla_parse_nested(tb, NBDWS_CONN_A_MAX, c, nbdws_conn_policy,
			       extack);
	if (ret)
		return ret;
	if (!tb[NBDWS_CONN_A_FD]) {
		NL_SET_ERR_ATTR_MISS(extack, c, NBDWS_CONN_A_FD);
		NL_SET_ERR_MSG(extack, "connection without a socket fd");
		return -EINVAL;
	}
	nc->p.transport = NBDWS_TRANSPORT_PLAIN;
	if (tb[NBDWS_CONN_A_TRANSPORT])
		nc->p.transport = nla_get_u32(tb[NBDWS_CONN_A_TRANSPORT]);
	nc->p.ping_ms = 0;
	if (tb[NBDWS_CONN_A_PING_MS])
		nc->p.ping_ms = nla_get_u32(tb[NBDWS_CONN_A_PING_MS]);
	if (nc->p.ping_ms && nc->p.transport == NBDWS_TRANSPORT_PLAIN) {
		NL_SET_ERR_MSG_ATTR(extack, tb[NBDWS_CONN_A_PING_MS],
				    "keepalive pings need a WebSocket transport");
		return -EINVAL;
	}
	if (nc->p.ping_ms && (nc->p.ping_ms < NBDWS_MIN_PING_MS ||
			      nc->p.ping_ms > NBDWS_MAX_PING_MS)) {
		NL_SET_ERR_MSG_ATTR(extack, tb[NBDWS_CONN_A_PING_MS],
				    "keepalive interval must be 100 ms to 1 hour");
		return -ERANGE;
	}
	nc->slot = NBDWS_SLOT_ANY;
	if (tb[NBDWS_CONN_A_ID])
		nc->slot = nla_get_u32(tb[NBDWS_CONN_A_ID]);
	if (tb[NBDWS_CONN_A_PREREAD]) {
		nc->p.preread = nla_data(tb[NBDWS_CONN_A_PREREAD]);
		nc->p.preread_len = nla_len(tb[NBDWS_CONN_A_PREREAD]);
	}
	nc->attr = c;
	return nbdws_sock_lookup(nla_get_s32(tb[NBDWS_CONN_A_FD]), &nc->p.sock,
				 extack, tb[NBDWS_CONN_A_FD]);
}

/*
 * Parse NBDWS_A_CONNS into @nc and take a reference on every socket. On
 * failure no reference is left behind.
 */
static int nbdws_nl_parse_conns(struct genl_info *info,
				struct nbdws_nl_conn *nc, unsigned int *nr)
{
	struct netlink_ext_ack *extack = info->extack;
	struct nlattr *conns = info->attrs[NBDWS_A_CONNS];
	unsigned int n = 0, i;
	struct nlattr *c;
	int rem, ret;

	nla_for_each_nested(c, conns, rem) {
		if (nla_type(c) != NBDWS_A_CONN) {
			NL_SET_ERR_MSG_ATTR(extack, c,
					    "NBDWS_A_CONNS may only hold NBDWS_A_CONN");
			ret = -EINVAL;
			goto fail;
		}
		if (n == NBDWS_MAX_CONNS) {
			NL_SET_ERR_MSG_ATTR(extack, c, "too many connections");
			ret = -E2BIG;
			goto fail;
		}
		memset(&nc[n], 0, sizeof(nc[n]));
		ret = nbdws_nl_parse_conn(info, c, &nc[n]);
		if (ret)
			goto fail;
		n++;
		for (i = 0; i + 1 < n; i++) {
			if (nc[i].p.sock == nc[n - 1].p.sock) {
				NL_SET_ERR_MSG_ATTR(extack, c,
						    "the same socket is given twice");
				ret = -EINVAL;
				goto fail;
			}
			if (nc[n - 1].slot != NBDWS_SLOT_ANY &&
			    nc[i].slot == nc[n - 1].slot) {
				NL_SET_ERR_MSG_ATTR(extack, c,
						    "the same connection id is given twice");
				ret = -EINVAL;
				goto fail;
			}
		}
	}
	if (!n) {
		NL_SET_ERR_MSG_ATTR(extack, conns, "no connection given");
		return -EINVAL;
	}
	*nr = n;
	return 0;

fail:
	nbdws_nl_put_conns(nc, n);
	return ret;
}

static u32 nbdws_nl_u32(struct genl_info *info, int attr, u32 def)
{
	return info->attrs[attr] ? nla_get_u32(info->attrs[attr]) : def;
}

static int nbdws_nl_check_pow2(struct genl_info *info, int attr)
{
	u32 v = nbdws_nl_u32(info, attr, 0);

	if (info->attrs[attr] && !is_power_of_2(v)) {
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[attr],
				    "block size must be a power of two");
		return -EINVAL;
	}
	return 0;
}

/* Work out the device configuration of a CONNECT from its attributes. */
static int nbdws_nl_parse_config(struct genl_info *info,
				 struct nbdws_dev_config *cfg)
{
	struct netlink_ext_ack *extack = info->extack;
	struct nlattr **a = info->attrs;
	u32 max_payload;
	int ret;

	memset(cfg, 0, sizeof(*cfg));
	ret = nbdws_nl_check_pow2(info, NBDWS_A_BLOCK_SIZE_MIN) ?:
	      nbdws_nl_check_pow2(info, NBDWS_A_BLOCK_SIZE_PREF);
	if (ret)
		return ret;

	cfg->block_size = max_t(u32, NBDWS_MIN_BLOCK_SIZE,
				nbdws_nl_u32(info, NBDWS_A_BLOCK_SIZE_MIN, 0));
	if (cfg->block_size > PAGE_SIZE) {
		NL_SET_ERR_MSG_ATTR(extack, a[NBDWS_A_BLOCK_SIZE_MIN],
				    "minimum block size above the page size is not supported");
		return -EINVAL;
	}
	cfg->block_pref = max(cfg->block_size,
			      nbdws_nl_u32(info, NBDWS_A_BLOCK_SIZE_PREF, 0));
	/* Physical block size and io_opt: no larger than a request. */
	if (cfg->block_pref > NBDWS_MAX_REQ_LIMIT) {
		NL_SET_ERR_MSG_ATTR(extack, a[NBDWS_A_BLOCK_SIZE_PREF],
				    "preferred block size above 32 MiB");
		return -ERANGE;
	}
	cfg->block_max = nbdws_nl_u32(info, NBDWS_A_BLOCK_SIZE_MAX, 0);
	max_payload = cfg->block_max ? cfg->block_max : NBDWS_MAX_REQ_LIMIT;
	if (max_payload < PAGE_SIZE || max_payload < cfg->block_size) {
		NL_SET_ERR_MSG_ATTR(extack, a[NBDWS_A_BLOCK_SIZE_MAX],
				    "maximum payload below the page size is not supported");
		return -EINVAL;
	}
	cfg->max_req = nbdws_nl_u32(info, NBDWS_A_MAX_REQ_BYTES,
				    NBDWS_DEFAULT_MAX_REQ_BYTES);
	if (cfg->max_req < PAGE_SIZE || cfg->max_req > NBDWS_MAX_REQ_LIMIT) {
		NL_SET_ERR_MSG_ATTR(extack, a[NBDWS_A_MAX_REQ_BYTES],
				    "maximum request size must be between 4 KiB and 32 MiB");
		return -ERANGE;
	}
	cfg->max_req = round_down(min(cfg->max_req, max_payload),
				  cfg->block_size);
	if (cfg->max_req < PAGE_SIZE) {
		NL_SET_ERR_MSG_ATTR(extack, a[NBDWS_A_MAX_REQ_BYTES],
				    "maximum request size below the page size");
		return -EINVAL;
	}

	cfg->size = round_down(nla_get_u64(a[NBDWS_A_SIZE_BYTES]),
			       (u64)cfg->block_size);
	if (!cfg->size) {
		NL_SET_ERR_MSG_ATTR(extack, a[NBDWS_A_SIZE_BYTES],
				    "export is smaller than one block");
		return -EINVAL;
	}

	cfg->server_flags = nbdws_nl_u32(info, NBDWS_A_SERVER_FLAGS, 0);
	/* Without HAS_FLAGS, the other flag bits carry no meaning. */
	if (!(cfg->server_flags & NBDP_FLAG_HAS_FLAGS))
		cfg->server_flags = 0;
	cfg->client_flags = nbdws_nl_u32(info, NBDWS_A_CLIENT_FLAGS, 0);

	cfg->timeout_ms = nbdws_nl_u32(info, NBDWS_A_TIMEOUT_MS,
				       NBDWS_DEFAULT_TIMEOUT_MS);
	if (cfg->client_flags & NBDWS_CF_NO_TIMEOUT) {
		if (a[NBDWS_A_TIMEOUT_MS] && cfg->timeout_ms) {
			NL_SET_ERR_MSG_ATTR(extack, a[NBDWS_A_TIMEOUT_MS],
					    "a timeout together with NBDWS_CF_NO_TIMEOUT");
			return -EINVAL;
		}
		cfg->timeout_ms = 0;
	} else if (!cfg->timeout_ms) {
		NL_SET_ERR_MSG_ATTR(extack, a[NBDWS_A_TIMEOUT_MS],
				    "timeout 0 waits forever: set NBDWS_CF_NO_TIMEOUT to ask for that");
		return -EINVAL;
	}
	cfg->dead_timeout_ms = nbdws_nl_u32(info, NBDWS_A_DEAD_TIMEOUT_MS,
					    NBDWS_DEFAULT_DEAD_TIMEOUT_MS);
	cfg->depth = nbdws_nl_u32(info, NBDWS_A_QUEUE_DEPTH,
				  NBDWS_DEFAULT_QUEUE_DEPTH);
	if (a[NBDWS_A_BACKEND])
		cfg->backend = nla_data(a[NBDWS_A_BACKEND]);
	return 0;
}

/*
 * Creating, changing and removing block devices is block device
 * administration: CAP_SYS_ADMIN, as for the ioctls of other block
 * drivers, not the CAP_NET_ADMIN that GENL_ADMIN_PERM would check.
 */
static int nbdws_nl_check_admin(struct sk_buff *skb, struct genl_info *info)
{
	if (netlink_capable(skb, CAP_SYS_ADMIN))
		return 0;
	NL_SET_ERR_MSG(info->extack, "nbdws configuration needs CAP_SYS_ADMIN");
	return -EPERM;
}

/* Give the first @n prepared sockets back unused. */
static void nbdws_nl_unprepare_conns(struct nbdws_dev *dev,
				     struct nbdws_nl_conn *nc, unsigned int n)
{
	while (n--)
		nbdws_conn_unprepare(dev->conns[n], &nc[n].p);
}

/*
 * Everything that can fail in attaching @n sockets to the first @n slots
 * of @dev, for all of them before any starts: a CONNECT that fails leaves
 * every socket as it came (not shut down) and sends no event.
 */
static int nbdws_nl_prepare_conns(struct genl_info *info,
				  struct nbdws_dev *dev,
				  struct nbdws_nl_conn *nc, unsigned int n)
{
	unsigned int i;
	int ret;

	for (i = 0; i < n; i++) {
		ret = nbdws_conn_prepare(dev->conns[i], &nc[i].p);
		if (ret) {
			NL_SET_ERR_MSG_ATTR(info->extack, nc[i].attr,
					    "cannot attach the socket");
			nbdws_nl_unprepare_conns(dev, nc, i);
			return ret;
		}
	}
	return 0;
}

/* Second half: the prepared slots go live and own their sockets. */
static void nbdws_nl_start_conns(struct nbdws_dev *dev,
				 struct nbdws_nl_conn *nc, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		nbdws_conn_start(dev->conns[i], &nc[i].p);
		nc[i].p.sock = NULL;
	}
}

/*
 * CONNECT asked for the index of an existing device: only a device kept
 * after DISCONNECT (NBDWS_CF_KEEP_DEVICE) is free to serve a new export.
 */
static int nbdws_nl_connect_kept(struct genl_info *info, struct nbdws_dev *dev,
				 const struct nbdws_dev_config *cfg,
				 struct nbdws_nl_conn *nc, unsigned int n)
{
	struct netlink_ext_ack *extack = info->extack;
	int ret;

	NL_SET_BAD_ATTR(extack, info->attrs[NBDWS_A_INDEX]);
	if (dev->gone || dev->state != NBDWS_DEV_DISCONNECTED ||
	    !dev->disk_added) {
		NBDWS_ERR_MSG_FMT(extack, "the device at this index is in use",
				  "nbdws%d is in use", dev->index);
		return -EBUSY;
	}
	ret = nbdws_dev_reuse_check(dev, cfg, extack);
	if (ret)
		return ret;
	/* Both can fail; neither changes anything then. */
	ret = nbdws_nl_prepare_conns(info, dev, nc, n);
	if (ret)
		return ret;
	ret = nbdws_dev_reuse(dev, cfg, extack);
	if (ret) {
		nbdws_nl_unprepare_conns(dev, nc, n);
		return ret;
	}
	nbdws_nl_start_conns(dev, nc, n);
	nbdws_dev_restart(dev);
	return 0;
}

static int nbdws_nl_connect(struct sk_buff *skb, struct genl_info *info)
{
	struct netlink_ext_ack *extack = info->extack;
	struct nbdws_nl_conn nc[NBDWS_MAX_CONNS];
	struct nbdws_dev_config cfg;
	struct nbdws_dev *dev;
	struct sk_buff *reply;
	unsigned int n, i;
	int index = -1;
	void *hdr;
	int ret;

	ret = nbdws_nl_check_admin(skb, info);
	if (ret)
		return ret;
	if (GENL_REQ_ATTR_CHECK(info, NBDWS_A_SIZE_BYTES) ||
	    GENL_REQ_ATTR_CHECK(info, NBDWS_A_CONNS))
		return -EINVAL;
	if (info->attrs[NBDWS_A_INDEX]) {
		u32 want = nla_get_u32(info->attrs[NBDWS_A_INDEX]);

		if (want > NBDWS_MAX_INDEX) {
			NL_SET_ERR_MSG_ATTR(extack, info->attrs[NBDWS_A_INDEX],
					    "device index above 1048575");
			return -ERANGE;
		}
		index = want;
	}
	ret = nbdws_nl_parse_config(info, &cfg);
	if (ret)
		return ret;
	ret = nbdws_nl_parse_conns(info, nc, &n);
	if (ret)
		return ret;
	for (i = 0; i < n; i++) {
		if (nc[i].slot != NBDWS_SLOT_ANY && nc[i].slot != i) {
			NL_SET_ERR_MSG_ATTR(extack, nc[i].attr,
					    "CONNECT numbers connections in order from 0");
			ret = -EINVAL;
			goto out_put;
		}
	}
	if (n > 1 && !(cfg.server_flags & NBDP_FLAG_CAN_MULTI_CONN)) {
		NL_SET_ERR_MSG_ATTR(extack, info->attrs[NBDWS_A_CONNS],
				    "several connections need a server that advertises CAN_MULTI_CONN");
		ret = -EINVAL;
		goto out_put;
	}
	cfg.nr_conns = n;

	reply = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!reply) {
		ret = -ENOMEM;
		goto out_put;
	}

	dev = nbdws_dev_get(index);
	if (dev) {
		mutex_lock(&dev->lock);
		ret = nbdws_nl_connect_kept(info, dev, &cfg, nc, n);
		if (ret)
			goto out_unlock;
	} else {
		dev = nbdws_dev_create(&cfg, index);
		if (IS_ERR(dev)) {
			ret = PTR_ERR(dev);
			if (ret == -ENOSPC && index >= 0) {
				/* Another CONNECT took the index meanwhile. */
				NL_SET_ERR_MSG_ATTR(extack,
						    info->attrs[NBDWS_A_INDEX],
						    "the device at this index is in use");
				ret = -EBUSY;
			} else {
				NL_SET_ERR_MSG(extack,
					       "cannot create the block device");
			}
			goto out_free;
		}
		ret = nbdws_nl_prepare_conns(info, dev, nc, n);
		if (ret)
			goto out_destroy;
		ret = nbdws_dev_add(dev);
		if (ret) {
			NL_SET_ERR_MSG(extack, "cannot add the disk");
			nbdws_nl_unprepare_conns(dev, nc, n);
			goto out_destroy;
		}
		nbdws_nl_start_conns(dev, nc, n);
		nbdws_dev_start(dev);
	}

	hdr = genlmsg_put_reply(reply, info, &nbdws_genl_family, 0,
				NBDWS_CMD_CONNECT);
	if (!hdr || nla_put_u32(reply, NBDWS_A_INDEX, dev->index) ||
	    nla_put_string(reply, NBDWS_A_DISK_NAME, dev->disk->disk_name)) {
		/* The device exists; say so in an event even if this fails. */
		nlmsg_free(reply);
		reply = NULL;
	} else {
		genlmsg_end(reply, hdr);
	}
	nbdws_event(dev, NBDWS_EVENT_CONNECTED, -1, NBDWS_REASON_NONE);
	mutex_unlock(&dev->lock);
	nbdws_dev_put(dev);
	return reply ? genlmsg_reply(reply, info) : -EMSGSIZE;

out_destroy:
	nbdws_dev_destroy(dev);
out_unlock:
	mutex_unlock(&dev->lock);
	nbdws_dev_put(dev);
out_free:
	nlmsg_free(reply);
out_put:
	nbdws_nl_put_conns(nc, n);
	return ret;
}

/*
 * The device NBDWS_A_INDEX names, locked and with a reference, or an
 * ERR_PTR with the extack filled in. nbdws_nl_put_dev_locked() undoes it.
 */
static struct nbdws_dev *nbdws_nl_lock_dev(struct genl_info *info)
{
	struct nlattr *a = info->attrs[NBDWS_A_INDEX];
	struct nbdws_dev *dev;
	u32 index;

	if (GENL_REQ_ATTR_CHECK(info, NBDWS_A_INDEX))
		return ERR_PTR(-EINVAL);
	index = nla_get_u32(a);
	dev = index <= NBDWS_MAX_INDEX ? nbdws_dev_get(index) : NULL;
	if (dev) {
		mutex_lock(&dev->lock);
		if (!dev->gone)
			return dev;
		mutex_unlock(&dev->lock);
		nbdws_dev_put(dev);
	}
	NL_SET_ERR_MSG_ATTR(info->extack, a, "no such nbdws device");
	return ERR_PTR(-ENODEV);
}

static void nbdws_nl_unlock_dev(struct nbdws_dev *dev)
{
	mutex_unlock(&dev->lock);
	nbdws_dev_put(dev);
}

/*
 * The close frame DISCONNECT asks for: a code a WebSocket endpoint may
 * send, and a reason (only with a code) of UTF-8 text, as RFC 6455 7.4
 * and 5.5.1 require. The policy has checked the ranges already.
 */
static int nbdws_nl_parse_close(struct genl_info *info, u16 *code,
				char *text, size_t size)
{
	struct nlattr *c = info->attrs[NBDWS_A_WS_CLOSE_CODE];
	struct nlattr *r = info->attrs[NBDWS_A_WS_CLOSE_REASON];
	struct netlink_ext_ack *extack = info->extack;
	size_t len = 0;

	*code = 0;
	text[0] = 0;
	if (c) {
		*code = nla_get_u16(c);
		if (!ws_valid_close_code(*code)) {
			NL_SET_ERR_MSG_ATTR(extack, c,
					    "reserved WebSocket close code: use 1000-1003, 1007-1014 or 3000-4999");
			return -EINVAL;
		}
	}
	if (!r)
		return 0;
	if (!c) {
		NL_SET_ERR_MSG_ATTR(extack, r,
				    "a close reason needs a close code");
		return -EINVAL;
	}
	len = nla_len(r);
	/* NLA_STRING: a terminating NUL is allowed, not counted. */
	if (len && !((const char *)nla_data(r))[len - 1])
		len--;
	if (memchr(nla_data(r), 0, len) ||
	    !ws_valid_utf8(nla_data(r), len)) {
		NL_SET_ERR_MSG_ATTR(extack, r,
				    "close reason is not UTF-8 text");
		return -EINVAL;
	}
	if (WARN_ON_ONCE(len >= size))
		return -EINVAL;
	memcpy(text, nla_data(r), len);
	text[len] = 0;
	return 0;
}

static int nbdws_nl_disconnect(struct sk_buff *skb, struct genl_info *info)
{
	char text[WS_MAX_CONTROL - 1];
	struct nbdws_dev *dev;
	u16 code;
	int ret = 0;

	ret = nbdws_nl_check_admin(skb, info);
	if (ret)
		return ret;
	ret = nbdws_nl_parse_close(info, &code, text, sizeof(text));
	if (ret)
		return ret;
	dev = nbdws_nl_lock_dev(info);
	if (IS_ERR(dev))
		return PTR_ERR(dev);
	/* A kept device goes away on the DISCONNECT after the first one. */
	if (dev->state == NBDWS_DEV_DISCONNECTED) {
		nbdws_dev_destroy(dev);
	} else {
		dev->disc_code = code;
		strscpy(dev->disc_text, text, sizeof(dev->disc_text));
		nbdws_dev_disconnect(dev);
		if (!(dev->client_flags & NBDWS_CF_KEEP_DEVICE))
			nbdws_dev_destroy(dev);
	}
	nbdws_nl_unlock_dev(dev);
	return 0;
}

/* Attributes that describe the export and cannot change on a live device. */
static const int nbdws_fixed_attrs[] = {
	NBDWS_A_SIZE_BYTES, NBDWS_A_BLOCK_SIZE_MIN, NBDWS_A_BLOCK_SIZE_PREF,
	NBDWS_A_BLOCK_SIZE_MAX, NBDWS_A_MAX_REQ_BYTES, NBDWS_A_SERVER_FLAGS,
	NBDWS_A_CLIENT_FLAGS, NBDWS_A_QUEUE_DEPTH, NBDWS_A_BACKEND,
};

/*
 * Pick the slot each socket goes to: a dead slot (given by id, or the first
 * free one), or a new slot after the last one when the server allows
 * several connections. New slots must continue the numbering without gaps.
 * *new_nr is the number of slots afterwards.
 */
static int nbdws_nl_assign_slots(struct genl_info *info, struct nbdws_dev *dev,
				 struct nbdws_nl_conn *nc, unsigned int n,
				 unsigned int *new_nr)
{
	bool multi = dev->server_flags & NBDP_FLAG_CAN_MULTI_CONN;
	struct netlink_ext_ack *extack = info->extack;
	unsigned int nr = dev->nr_conns, top = nr;
	unsigned long taken = 0;
	unsigned int i, s;

	for (i = 0; i < n; i++) {
		s = nc[i].slot;
		if (s == NBDWS_SLOT_ANY)
			continue;
		if (s < nr && !nbdws_conn_dead(dev->conns[s])) {
			NL_SET_ERR_MSG_ATTR(extack, nc[i].attr,
					    "connection is alive: only dead connections can be replaced");
			return -EBUSY;
		}
		taken |= BIT(s);
	}
	for (i = 0; i < n; i++) {
		if (nc[i].slot != NBDWS_SLOT_ANY)
			continue;
		for (s = 0; s < NBDWS_MAX_CONNS; s++) {
			if (taken & BIT(s))
				continue;
			if (s >= nr || nbdws_conn_dead(dev->conns[s]))
				break;
		}
		if (s == NBDWS_MAX_CONNS) {
			NL_SET_ERR_MSG_ATTR(extack, nc[i].attr, "too many connections");
			return -E2BIG;
		}
		nc[i].slot = s;
		taken |= BIT(s);
	}
	for (i = 0; i < n; i++)
		top = max(top, nc[i].slot + 1);
	for (s = nr; s < top; s++) {
		if (!(taken & BIT(s))) {
			NL_SET_ERR_MSG(extack,
				       "new connection ids must follow the existing ones without gaps");
			return -EINVAL;
		}
	}
	if (top > nr && !multi) {
		NL_SET_ERR_MSG(extack,
			       "adding connections needs a server that advertises CAN_MULTI_CONN");
		return -EINVAL;
	}
	*new_nr = top;
	return 0;
}

static int nbdws_nl_reconfigure(struct sk_buff *skb, struct genl_info *info)
{
	struct netlink_ext_ack *extack = info->extack;
	struct nbdws_nl_conn nc[NBDWS_MAX_CONNS];
	struct nlattr **a = info->attrs;
	unsigned int n = 0, i, new_nr = 0;
	struct nbdws_dev *dev;
	int ret = 0;

	ret = nbdws_nl_check_admin(skb, info);
	if (ret)
		return ret;
	for (i = 0; i < ARRAY_SIZE(nbdws_fixed_attrs); i++) {
		if (a[nbdws_fixed_attrs[i]]) {
			NL_SET_ERR_MSG_ATTR(extack, a[nbdws_fixed_attrs[i]],
					    "cannot be changed on a connected device");
			return -EINVAL;
		}
	}
	if (a[NBDWS_A_CONNS]) {
		ret = nbdws_nl_parse_conns(info, nc, &n);
		if (ret)
			return ret;
	}

	dev = nbdws_nl_lock_dev(info);
	if (IS_ERR(dev)) {
		ret = PTR_ERR(dev);
		goto out_put;
	}
	if (dev->state == NBDWS_DEV_DISCONNECTED || dev->disconnecting) {
		NL_SET_ERR_MSG_ATTR(extack, a[NBDWS_A_INDEX],
				    "device is disconnected");
		ret = -ENOTCONN;
		goto out;
	}
	if (a[NBDWS_A_TIMEOUT_MS] && !nla_get_u32(a[NBDWS_A_TIMEOUT_MS]) &&
	    !(dev->client_flags & NBDWS_CF_NO_TIMEOUT)) {
		NL_SET_ERR_MSG_ATTR(extack, a[NBDWS_A_TIMEOUT_MS],
				    "timeout 0 needs a device connected with NBDWS_CF_NO_TIMEOUT");
		ret = -EINVAL;
		goto out;
	}
	if (n) {
		ret = nbdws_nl_assign_slots(info, dev, nc, n, &new_nr);
		if (ret)
			goto out;
	}
	for (i = dev->nr_conns; i < new_nr; i++) {
		dev->conns[i] = nbdws_conn_alloc(dev, i);
		if (!dev->conns[i]) {
			ret = -ENOMEM;
			goto out_free;
		}
	}

	/*
	 * Everything that can fail for a connection first, for all of them
	 * (a slot being replaced is dead: dropping its old socket changes
	 * nothing anyone sees), so that nothing applies if one fails.
	 */
	for (i = 0; i < n; i++) {
		struct nbdws_conn *conn = dev->conns[nc[i].slot];

		if (nc[i].slot < dev->nr_conns) {
			flush_work(&conn->dead_work);
			nbdws_conn_release_sock(conn);
		}
		ret = nbdws_conn_prepare(conn, &nc[i].p);
		if (ret) {
			NL_SET_ERR_MSG_ATTR(extack, nc[i].attr,
					    "cannot attach the socket");
			while (i--)
				nbdws_conn_unprepare(dev->conns[nc[i].slot],
						     &nc[i].p);
			goto out_free;
		}
	}

	/* From here on everything applies. */
	if (a[NBDWS_A_TIMEOUT_MS])
		nbdws_dev_set_timeout(dev, nla_get_u32(a[NBDWS_A_TIMEOUT_MS]));
	if (a[NBDWS_A_DEAD_TIMEOUT_MS])
		WRITE_ONCE(dev->dead_timeout_ms,
			   nla_get_u32(a[NBDWS_A_DEAD_TIMEOUT_MS]));
	for (i = 0; i < n; i++) {
		struct nbdws_conn *conn = dev->conns[nc[i].slot];

		nbdws_conn_start(conn, &nc[i].p);
		nc[i].p.sock = NULL;	/* owned by the connection now */
		if (nc[i].slot < dev->nr_conns)
			nbdws_stat_add(conn, NBDWS_CTR_RECONNECTS, 1);
		nbdws_event(dev, NBDWS_EVENT_RECONNECTED, conn->id,
			    NBDWS_REASON_NONE);
	}
	if (new_nr > dev->nr_conns) {
		nbdws_dev_grow(dev, new_nr);
	} else {
		if (i)
			nbdws_release_held(dev);
		/* An earlier RECONFIGURE may have found the queue busy. */
		nbdws_dev_update_hw_queues(dev);
	}
	if (i)
		kobject_uevent(&disk_to_dev(dev->disk)->kobj, KOBJ_CHANGE);
	goto out;

out_free:
	/* New slots were never published (nr_conns): just free them. */
	for (i = dev->nr_conns; i < new_nr; i++) {
		nbdws_conn_free(dev->conns[i]);
		dev->conns[i] = NULL;
	}
out:
	nbdws_nl_unlock_dev(dev);
out_put:
	nbdws_nl_put_conns(nc, n);
	return ret;
}

static int nbdws_nl_put_stats(struct sk_buff *skb, struct nbdws_conn *conn)
{
	u64 v[__NBDWS_STAT_A_MAX] = { 0 };
	struct nlattr *nest;
	int s;

	nest = nla_nest_start(skb, NBDWS_CONN_A_STATS);
	if (!nest)
		return -EMSGSIZE;
	nbdws_stats_read(conn, v);
	for (s = NBDWS_STAT_A_READS; s <= NBDWS_STAT_A_MAX; s++) {
		if (nla_put_u64_64bit(skb, s, v[s], NBDWS_STAT_A_PAD))
			return -EMSGSIZE;
	}
	nla_nest_end(skb, nest);
	return 0;
}

static int nbdws_nl_put_conn(struct sk_buff *skb, struct nbdws_conn *conn)
{
	struct nlattr *nest;
	bool dead = nbdws_conn_dead(conn);

	nest = nla_nest_start(skb, NBDWS_A_CONN);
	if (!nest)
		return -EMSGSIZE;
	if (nla_put_u32(skb, NBDWS_CONN_A_ID, conn->id) ||
	    nla_put_u32(skb, NBDWS_CONN_A_TRANSPORT, conn->transport) ||
	    nla_put_u32(skb, NBDWS_CONN_A_PING_MS, conn->ws.ping_ms) ||
	    nla_put_u32(skb, NBDWS_CONN_A_STATE,
			dead ? NBDWS_CONN_DEAD : NBDWS_CONN_ALIVE) ||
	    nla_put_u32(skb, NBDWS_CONN_A_REASON, READ_ONCE(conn->reason)) ||
	    nbdws_nl_put_stats(skb, conn))
		return -EMSGSIZE;
	nla_nest_end(skb, nest);
	return 0;
}

static int nbdws_nl_put_dev(struct sk_buff *skb, struct nbdws_dev *dev)
{
	struct nlattr *nest, *conns;
	unsigned int i;

	nest = nla_nest_start(skb, NBDWS_A_DEVICE);
	if (!nest)
		return -EMSGSIZE;
	if (nla_put_u32(skb, NBDWS_A_INDEX, dev->index) ||
	    nla_put_string(skb, NBDWS_A_DISK_NAME, dev->disk->disk_name) ||
	    nla_put_u64_64bit(skb, NBDWS_A_SIZE_BYTES, dev->size, NBDWS_A_PAD) ||
	    nla_put_u32(skb, NBDWS_A_BLOCK_SIZE_MIN, dev->block_size) ||
	    nla_put_u32(skb, NBDWS_A_BLOCK_SIZE_PREF, dev->block_pref) ||
	    nla_put_u32(skb, NBDWS_A_BLOCK_SIZE_MAX, dev->block_max) ||
	    nla_put_u32(skb, NBDWS_A_MAX_REQ_BYTES, dev->max_req) ||
	    nla_put_u32(skb, NBDWS_A_SERVER_FLAGS, dev->server_flags) ||
	    nla_put_u32(skb, NBDWS_A_CLIENT_FLAGS, dev->client_flags) ||
	    nla_put_u32(skb, NBDWS_A_TIMEOUT_MS, READ_ONCE(dev->timeout_ms)) ||
	    nla_put_u32(skb, NBDWS_A_DEAD_TIMEOUT_MS,
			READ_ONCE(dev->dead_timeout_ms)) ||
	    nla_put_u32(skb, NBDWS_A_QUEUE_DEPTH, dev->depth) ||
	    nla_put_string(skb, NBDWS_A_BACKEND, dev->backend) ||
	    nla_put_u32(skb, NBDWS_A_STATE, READ_ONCE(dev->state)))
		return -EMSGSIZE;
	conns = nla_nest_start(skb, NBDWS_A_CONNS);
	if (!conns)
		return -EMSGSIZE;
	for (i = 0; i < dev->nr_conns; i++) {
		if (nbdws_nl_put_conn(skb, dev->conns[i]))
			return -EMSGSIZE;
	}
	nla_nest_end(skb, conns);
	nla_nest_end(skb, nest);
	return 0;
}

static int nbdws_nl_status(struct sk_buff *skb, struct genl_info *info)
{
	struct nbdws_dev *dev;
	struct sk_buff *reply;
	void *hdr;
	int ret;

	reply = genlmsg_new(NBDWS_NL_DEV_SIZE, GFP_KERNEL);
	if (!reply)
		return -ENOMEM;
	dev = nbdws_nl_lock_dev(info);
	if (IS_ERR(dev)) {
		nlmsg_free(reply);
		return PTR_ERR(dev);
	}
	ret = -EMSGSIZE;
	hdr = genlmsg_put_reply(reply, info, &nbdws_genl_family, 0,
				NBDWS_CMD_STATUS);
	if (hdr && !nbdws_nl_put_dev(reply, dev))
		ret = 0;
	nbdws_nl_unlock_dev(dev);
	if (ret) {
		nlmsg_free(reply);
		return ret;
	}
	genlmsg_end(reply, hdr);
	return genlmsg_reply(reply, info);
}

static int nbdws_nl_status_dump(struct sk_buff *skb,
				struct netlink_callback *cb)
{
	int index = cb->args[0];
	struct nbdws_dev *dev;

	while ((dev = nbdws_dev_get_next(&index))) {
		void *hdr = NULL;
		bool full = false;

		mutex_lock(&dev->lock);
		if (!dev->gone) {
			hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid,
					  cb->nlh->nlmsg_seq,
					  &nbdws_genl_family, NLM_F_MULTI,
					  NBDWS_CMD_STATUS);
			full = !hdr;
		}
		if (hdr && nbdws_nl_put_dev(skb, dev)) {
			genlmsg_cancel(skb, hdr);
			full = true;
		} else if (hdr) {
			genlmsg_end(skb, hdr);
		}
		nbdws_nl_unlock_dev(dev);
		if (full)
			break;
		index++;
	}
	cb->args[0] = index;
	return skb->len;
}

/*
 * Multicast an event. Called from teardown work on the block I/O path too,
 * hence GFP_NOIO; an event lost to memory pressure is acceptable, STATUS
 * tells the truth.
 */
void nbdws_event(struct nbdws_dev *dev, u32 event, int conn_id, u32 reason)
{
	nbdws_event_ws(dev, event, conn_id, reason, 0, NULL);
}

/*
 * An event; @ws_code (0: none) and @ws_reason say how a WebSocket
 * connection ended: the peer's close frame or the violation we closed for.
 */
void nbdws_event_ws(struct nbdws_dev *dev, u32 event, int conn_id, u32 reason,
		    u16 ws_code, const char *ws_reason)
{
	struct sk_buff *skb;
	struct nlattr *nest;
	void *hdr;

	skb = genlmsg_new(NLMSG_GOODSIZE, GFP_NOIO);
	if (!skb)
		return;
	hdr = genlmsg_put(skb, 0, 0, &nbdws_genl_family, 0, NBDWS_CMD_EVENT);
	if (!hdr)
		goto fail;
	if (nla_put_u32(skb, NBDWS_A_INDEX, dev->index) ||
	    nla_put_string(skb, NBDWS_A_DISK_NAME, dev->disk->disk_name) ||
	    nla_put_u32(skb, NBDWS_A_EVENT, event) ||
	    nla_put_u32(skb, NBDWS_A_REASON, reason))
		goto fail;
	if (ws_code && (nla_put_u16(skb, NBDWS_A_WS_CLOSE_CODE, ws_code) ||
			nla_put_string(skb, NBDWS_A_WS_CLOSE_REASON, ws_reason)))
		goto fail;
	if (conn_id >= 0) {
		nest = nla_nest_start(skb, NBDWS_A_CONN);
		if (!nest || nla_put_u32(skb, NBDWS_CONN_A_ID, conn_id))
			goto fail;
		nla_nest_end(skb, nest);
	}
	genlmsg_end(skb, hdr);
	genlmsg_multicast(&nbdws_genl_family, skb, 0, 0, GFP_NOIO);
	return;

fail:
	nlmsg_free(skb);
}

static const struct genl_ops nbdws_genl_ops[] = {
	{
		.cmd		= NBDWS_CMD_CONNECT,
		.doit		= nbdws_nl_connect,
		.policy		= nbdws_policy,
		.maxattr	= NBDWS_A_MAX,
	},
	{
		.cmd		= NBDWS_CMD_DISCONNECT,
		.doit		= nbdws_nl_disconnect,
		.policy		= nbdws_disc_policy,
		.maxattr	= NBDWS_A_MAX,
	},
	{
		.cmd		= NBDWS_CMD_RECONFIGURE,
		.doit		= nbdws_nl_reconfigure,
		.policy		= nbdws_policy,
		.maxattr	= NBDWS_A_MAX,
	},
	{
		.cmd		= NBDWS_CMD_STATUS,
		.doit		= nbdws_nl_status,
		.dumpit		= nbdws_nl_status_dump,
		.policy		= nbdws_policy,
		.maxattr	= NBDWS_A_MAX,
	},
};

static const struct genl_multicast_group nbdws_mcgrps[] = {
	{ .name = NBDWS_GENL_MCGRP_EVENTS, },
};

static struct genl_family nbdws_genl_family = {
	.name		= NBDWS_GENL_NAME,
	.version	= NBDWS_GENL_VERSION,
	.maxattr	= NBDWS_A_MAX,
	.netnsok	= false,
	.parallel_ops	= true,
	.module		= THIS_MODULE,
	.ops		= nbdws_genl_ops,
	.n_ops		= ARRAY_SIZE(nbdws_genl_ops),
	.mcgrps		= nbdws_mcgrps,
	.n_mcgrps	= ARRAY_SIZE(nbdws_mcgrps),
};

int __init nbdws_genl_init(void)
{
	return genl_register_family(&nbdws_genl_family);
}

void nbdws_genl_exit(void)
{
	genl_unregister_family(&nbdws_genl_family);
}
