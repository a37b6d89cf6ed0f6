// SPDX-License-Identifier: GPL-2.0
/*
 * NBDWS_CMD_STATUS replies decoded (see nbdws_nl.h).
 *
 * The decoder accepts the device either as top-level attributes or
 * wrapped in NBDWS_A_DEVICE nests (several per message allowed), and
 * connections either inside NBDWS_A_CONNS or as top-level NBDWS_A_CONN:
 * the layout can evolve without breaking older tools. Lengths are checked
 * on every attribute.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netlink/genl/genl.h>

#include "nbdws_nl.h"

static void parse_stats(const struct nlattr *nest,
			struct nbdws_conn_status *c)
{
	struct nlattr *a;
	int rem;

	nla_for_each_nested(a, nest, rem) {
		int t = nla_type(a);

		if (t > NBDWS_STAT_A_PAD && t <= NBDWS_STAT_A_MAX &&
		    nbdws_nl_get_u64(a, &c->stats[t]))
			c->has_stats = true;
	}
}

static void parse_conn(const struct nlattr *nest, struct nbdws_dev_status *d)
{
	struct nbdws_conn_status *c;
	struct nlattr *a;
	int rem;

	if (d->nconns >= NBDWS_MAX_CONNS)
		return;
	c = &d->conns[d->nconns++];
	memset(c, 0, sizeof(*c));
	c->id = d->nconns - 1;
	nla_for_each_nested(a, nest, rem) {
		switch (nla_type(a)) {
		case NBDWS_CONN_A_ID:
			nbdws_nl_get_u32(a, &c->id);
			break;
		case NBDWS_CONN_A_TRANSPORT:
			nbdws_nl_get_u32(a, &c->transport);
			break;
		case NBDWS_CONN_A_STATE:
			nbdws_nl_get_u32(a, &c->state);
			break;
		case NBDWS_CONN_A_REASON:
			nbdws_nl_get_u32(a, &c->reason);
			break;
		case NBDWS_CONN_A_STATS:
			parse_stats(a, c);
			break;
		}
	}
}

/* Decode one device from a stream of top-level-style attributes. */
static void parse_device(const struct nlattr *head, int len,
			 struct nbdws_dev_status *d)
{
	const struct nlattr *a;
	int rem;

	memset(d, 0, sizeof(*d));
	nla_for_each_attr(a, head, len, rem) {
		int t = nla_type(a);
		bool ok = false;

		switch (t) {
		case NBDWS_A_INDEX:
			ok = nbdws_nl_get_u32(a, &d->index);
			break;
		case NBDWS_A_DISK_NAME:
			ok = nbdws_nl_get_str(a, d->disk, sizeof(d->disk));
			break;
		case NBDWS_A_BACKEND:
			ok = nbdws_nl_get_str(a, d->backend, sizeof(d->backend));
			break;
		case NBDWS_A_SIZE_BYTES:
			ok = nbdws_nl_get_u64(a, &d->size);
			break;
		case NBDWS_A_BLOCK_SIZE_MIN:
			ok = nbdws_nl_get_u32(a, &d->block_min);
			break;
		case NBDWS_A_BLOCK_SIZE_PREF:
			ok = nbdws_nl_get_u32(a, &d->block_pref);
			break;
		case NBDWS_A_BLOCK_SIZE_MAX:
			ok = nbdws_nl_get_u32(a, &d->block_max);
			break;
		case NBDWS_A_MAX_REQ_BYTES:
			ok = nbdws_nl_get_u32(a, &d->max_req);
			break;
		case NBDWS_A_SERVER_FLAGS:
			ok = nbdws_nl_get_u32(a, &d->server_flags);
			break;
		case NBDWS_A_CLIENT_FLAGS:
			ok = nbdws_nl_get_u32(a, &d->client_flags);
			break;
		case NBDWS_A_TIMEOUT_MS:
			ok = nbdws_nl_get_u32(a, &d->timeout_ms);
			break;
		case NBDWS_A_DEAD_TIMEOUT_MS:
			ok = nbdws_nl_get_u32(a, &d->dead_timeout_ms);
			break;
		case NBDWS_A_QUEUE_DEPTH:
			ok = nbdws_nl_get_u32(a, &d->queue_depth);
			break;
		case NBDWS_A_STATE:
			ok = nbdws_nl_get_u32(a, &d->state);
			break;
		case NBDWS_A_CONNS: {
			const struct nlattr *c;
			int crem;

			nla_for_each_nested(c, a, crem)
				if (nla_type(c) == NBDWS_A_CONN)
					parse_conn(c, d);
			ok = true;
			break;
		}
		case NBDWS_A_CONN:
			parse_conn(a, d);
			ok = true;
			break;
		}
		if (ok && t < 64)
			d->have |= 1ULL << t;
	}
	if (!d->disk[0] && NBDWS_DEV_HAS(d, NBDWS_A_INDEX))
		snprintf(d->disk, sizeof(d->disk), NBDWS_DISK_NAME "%u", d->index);
}

struct collect {
	struct nbdws_dev_list *list;
	int err;
};

static int add_dev(struct collect *col, const struct nlattr *head, int len)
{
	struct nbdws_dev_status *v;

	v = realloc(col->list->v, (col->list->n + 1) * sizeof(*v));
	if (!v) {
		col->err = -ENOMEM;
		return -1;
	}
	col->list->v = v;
	parse_device(head, len, &v[col->list->n]);
	if (!NBDWS_DEV_HAS(&v[col->list->n], NBDWS_A_INDEX))
		return 0;	/* not a device: ignore */
	col->list->n++;
	return 0;
}

static int collect_cb(struct nlattr *attrs, int len, void *arg)
{
	struct collect *col = arg;
	struct nlattr *a;
	bool nested = false;
	int rem;

	nla_for_each_attr(a, attrs, len, rem) {
		if (nla_type(a) != NBDWS_A_DEVICE)
			continue;
		nested = true;
		if (add_dev(col, nla_data(a), nla_len(a)))
			return -1;
	}
	/* No NBDWS_A_DEVICE nest: the message itself is the device. */
	return nested ? 0 : add_dev(col, attrs, len);
}

int nbdws_dev_status_parse(struct nlattr *attrs, int len,
			   struct nbdws_dev_list *list)
{
	struct collect col = { .list = list };

	if (collect_cb(attrs, len, &col) < 0)
		return col.err ? col.err : -ENOMEM;
	return 0;
}

static int cmp_index(const void *a, const void *b)
{
	const struct nbdws_dev_status *x = a, *y = b;

	return x->index < y->index ? -1 : x->index > y->index;
}

static int run(struct nbdws_nl *nl, struct nl_msg *msg,
	       struct nbdws_dev_list *list)
{
	struct collect col = { .list = list };
	int rc;

	list->v = NULL;
	list->n = 0;
	rc = nbdws_nl_request(nl, msg, collect_cb, &col);
	if (!rc)
		rc = col.err;
	if (rc) {
		nbdws_dev_list_free(list);
		return rc;
	}
	if (list->n > 1)
		qsort(list->v, list->n, sizeof(*list->v), cmp_index);
	return 0;
}

int nbdws_dev_status_get(struct nbdws_nl *nl, uint32_t index,
			 struct nbdws_dev_status *d)
{
	struct nl_msg *msg = nbdws_nl_msg(nl, NBDWS_CMD_STATUS, 0);
	struct nbdws_dev_list list;
	unsigned int i;
	int rc;

	if (!msg || nla_put_u32(msg, NBDWS_A_INDEX, index) < 0) {
		nlmsg_free(msg);
		return -ENOMEM;
	}
	rc = run(nl, msg, &list);
	if (rc)
		return rc;
	rc = -ENODEV;
	for (i = 0; i < list.n; i++) {
		if (list.v[i].index == index) {
			*d = list.v[i];
			rc = 0;
			break;
		}
	}
	nbdws_dev_list_free(&list);
	return rc;
}

int nbdws_dev_status_dump(struct nbdws_nl *nl, struct nbdws_dev_list *list)
{
	struct nl_msg *msg = nbdws_nl_msg(nl, NBDWS_CMD_STATUS, NLM_F_DUMP);

	if (!msg)
		return -ENOMEM;
	return run(nl, msg, list);
}

void nbdws_dev_list_free(struct nbdws_dev_list *list)
{
	free(list->v);
	list->v = NULL;
	list->n = 0;
}
