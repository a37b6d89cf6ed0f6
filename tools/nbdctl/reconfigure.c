// SPDX-License-Identifier: GPL-2.0
/*
 * nbdctl reconfigure DEVICE [-t SEC] [--dead-timeout SEC] [--add URI]...:
 * change timeouts of a live device and add connections to it.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include <netlink/genl/genl.h>

#include "conns.h"
#include "genl.h"
#include "nbd_proto.h"
#include "nbdctl.h"
#include "wsopts.h"

enum { OPT_DEAD_TIMEOUT = 256, OPT_ADD };

struct reconf {
	uint32_t index;
	bool has_timeout, has_dead_timeout;
	uint32_t timeout_ms, dead_timeout_ms;
	uint32_t connect_timeout_ms;	/* each --add connection's dial */
	const char *add[NBDWS_MAX_CONNS];
	unsigned int nadd;
};

static int parse_args(int argc, char **argv, struct reconf *r)
{
	static const struct option opts[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "dead-timeout", required_argument, NULL, OPT_DEAD_TIMEOUT },
		{ "add", required_argument, NULL, OPT_ADD },
		NBDCTL_CONNECT_TIMEOUT_OPTION,
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	const char *cmd = argv[0];
	int c;

	memset(r, 0, sizeof(*r));
	r->connect_timeout_ms = NBDCTL_CONNECT_TIMEOUT_S * 1000;
	while ((c = nbdctl_getopt(argc, argv, "t:jh", opts)) != -1) {
		switch (c) {
		case 't':
			if (parse_seconds_ms(optarg, &r->timeout_ms))
				return nbdctl_usage_error(cmd, "--timeout must be a positive number of seconds");
			r->has_timeout = true;
			break;
		case OPT_DEAD_TIMEOUT:
			if (!strcmp(optarg, "0"))
				r->dead_timeout_ms = 0;
			else if (parse_seconds_ms(optarg, &r->dead_timeout_ms))
				return nbdctl_usage_error(cmd, "--dead-timeout must be a number of seconds");
			r->has_dead_timeout = true;
			break;
		case NBDCTL_OPT_CONNECT_TIMEOUT:
			if (parse_connect_timeout(cmd, optarg,
						  &r->connect_timeout_ms))
				return NBDCTL_EXIT_USAGE;
			break;
		case OPT_ADD:
			if (r->nadd == NBDWS_MAX_CONNS)
				return nbdctl_usage_error(cmd, "at most %d --add", NBDWS_MAX_CONNS);
			r->add[r->nadd++] = optarg;
			break;
		case 'j':
			nbdctl_opts.json = true;
			break;
		case 'h':
			nbdctl_usage(stdout, cmd);
			exit(NBDCTL_EXIT_OK);
		default:
			return nbdctl_usage_error(cmd, NULL);
		}
	}
	if (argc - optind != 1)
		return nbdctl_usage_error(cmd, "expected one DEVICE");
	if (parse_device(argv[optind], &r->index))
		return nbdctl_usage_error(cmd, "bad device '%s'", argv[optind]);
	if (!r->has_timeout && !r->has_dead_timeout && !r->nadd)
		return nbdctl_usage_error(cmd, "nothing to change");
	return 0;
}

static unsigned int alive_conns(const struct nbdws_dev_status *d)
{
	unsigned int i, n = 0;

	for (i = 0; i < d->nconns; i++)
		n += d->conns[i].state == NBDWS_CONN_ALIVE;
	return n;
}

/*
 * Open the --add connections, checking each against the device. Without
 * CAN_MULTI_CONN a new connection may only stand in for dead ones.
 */
static int open_added(const struct reconf *r, const struct nbdws_dev_status *d,
		      struct nbdctl_conn *c)
{
	unsigned int i;

	for (i = 0; i < r->nadd; i++)
		c[i] = (struct nbdctl_conn){ .fd = -1 };
	for (i = 0; i < r->nadd; i++) {
		struct nbd_export_info info;
		struct nbdws_err err;
		struct conn_target t = { 0 };
		struct nbd_uri uri;
		int rc;

		if (nbd_uri_parse(r->add[i], &uri, &err)) {
			nbdctl_err("%s: %s", r->add[i], err.msg);
			goto fail;
		}
		wsopts_warn_uri(&uri);
		/* ws:// and wss:// with default WebSocket options. */
		t.uri = &uri;
		rc = conns_open(&t, 1, (int)r->connect_timeout_ms, &c[i], &info);
		nbd_uri_free(&uri);
		if (rc)
			goto fail;
		rc = conns_check_same(&info, d->size, d->server_flags, d->block_min);
		if (!rc && alive_conns(d) && !(info.tflags & NBDP_FLAG_CAN_MULTI_CONN)) {
			nbdctl_err("%s: the server does not advertise multi-connection support (NBD_FLAG_CAN_MULTI_CONN): cannot add a connection",
				   r->add[i]);
			rc = -1;
		}
		nbd_export_info_free(&info);
		if (rc)
			goto fail;
	}
	return 0;
fail:
	conns_close(c, r->nadd);
	return -1;
}

int cmd_reconfigure(int argc, char **argv)
{
	struct nbdctl_conn c[NBDWS_MAX_CONNS];
	struct nbdws_nl nl;
	struct nbdws_dev_status d;
	struct nl_msg *msg;
	struct reconf r;
	unsigned int i;
	int rc, ret = NBDCTL_EXIT_FAIL;
	char what[64];

	rc = parse_args(argc, argv, &r);
	if (rc)
		return rc;
	rc = nbdctl_nl_open(&nl);
	if (rc)
		return rc;
	snprintf(what, sizeof(what), "%s%u", NBDWS_DISK_NAME, r.index);
	rc = nbdws_dev_status_get(&nl, r.index, &d);
	if (rc) {
		nbdctl_nl_perror(&nl, rc, what);
		goto out;
	}
	if (r.nadd && open_added(&r, &d, c))
		goto out;
	msg = nbdws_nl_msg(&nl, NBDWS_CMD_RECONFIGURE, 0);
	if (!msg || nla_put_u32(msg, NBDWS_A_INDEX, r.index) < 0 ||
	    (r.has_timeout && nla_put_u32(msg, NBDWS_A_TIMEOUT_MS, r.timeout_ms) < 0) ||
	    (r.has_dead_timeout &&
	     nla_put_u32(msg, NBDWS_A_DEAD_TIMEOUT_MS, r.dead_timeout_ms) < 0))
		goto nomem;
	if (r.nadd) {
		struct nlattr *conns = nbdws_nl_nest_start(msg, NBDWS_A_CONNS);

		if (!conns)
			goto nomem;
		for (i = 0; i < r.nadd; i++)
			if (conns_put(msg, &c[i], 0, -1))
				goto nomem;
		nla_nest_end(msg, conns);
	}
	rc = nbdws_nl_request(&nl, msg, NULL, NULL);
	if (rc)
		nbdctl_nl_perror(&nl, rc, "the kernel refused the reconfiguration");
	else
		ret = NBDCTL_EXIT_OK;
	goto out_fds;
nomem:
	nlmsg_free(msg);
	nbdctl_err("out of memory");
out_fds:
	if (r.nadd)
		conns_close(c, r.nadd);
out:
	nbdws_nl_close(&nl);
	return ret;
}
