// SPDX-License-Identifier: GPL-2.0
/*
 * nbdctl connect URI [DEVICE]: handshake in userspace, then hand the
 * sockets and the negotiated export parameters to nbdws.ko. ws:// and
 * wss:// connections go over in the ws-client transport, with the bytes
 * read past the handshake.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <netlink/genl/genl.h>

#include "connect.h"
#include "conns.h"
#include "nbd_proto.h"
#include "nbdctl.h"
#include "output.h"
#include "params.h"
#include "wsopts.h"

struct connect_cfg {
	const char *uri_text;
	struct nbd_uri uri;
	struct wsopts ws;
	bool has_index;
	uint32_t index;
	uint32_t nconns;
	bool has_timeout, no_timeout, has_dead_timeout;
	uint32_t timeout_ms, dead_timeout_ms;
	uint32_t connect_timeout_ms;	/* 0: the defaults */
	uint32_t block_size;		/* 0: from the server */
	uint32_t max_req;		/* 0: default */
	uint32_t queue_depth;		/* 0: default */
	const char *backend;
	char *backend_buf;		/* the default: the URI made public */
	uint32_t client_flags;
	bool persist;
};

enum {
	OPT_DEAD_TIMEOUT = 256, OPT_MAX_REQUEST, OPT_QUEUE_DEPTH, OPT_BACKEND,
	OPT_PERSIST, OPT_KEEP, OPT_NO_TIMEOUT,
};

static int parse_args(int argc, char **argv, struct connect_cfg *cfg)
{
	static const struct option opts[] = {
		{ "connections", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 't' },
		{ "dead-timeout", required_argument, NULL, OPT_DEAD_TIMEOUT },
		{ "read-only", no_argument, NULL, 'r' },
		{ "block-size", required_argument, NULL, 'b' },
		{ "max-request", required_argument, NULL, OPT_MAX_REQUEST },
		{ "queue-depth", required_argument, NULL, OPT_QUEUE_DEPTH },
		{ "backend", required_argument, NULL, OPT_BACKEND },
		{ "persist", no_argument, NULL, OPT_PERSIST },
		{ "keep", no_argument, NULL, OPT_KEEP },
		{ "no-timeout", no_argument, NULL, OPT_NO_TIMEOUT },
		NBDCTL_CONNECT_TIMEOUT_OPTION,
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		WSOPTS_LONG_OPTIONS,
		WSOPTS_PING_OPTION,
		{},
	};
	const char *cmd = argv[0];
	struct nbdws_err err;
	int c, rc;

	memset(cfg, 0, sizeof(*cfg));
	cfg->nconns = 1;
	while ((c = nbdctl_getopt(argc, argv, "c:t:rb:jh", opts)) != -1) {
		rc = wsopts_handle(&cfg->ws, cmd, c, optarg);
		if (rc >= 0) {
			if (rc)
				return rc;
			continue;
		}
		switch (c) {
		case 'c':
			if (parse_uint(optarg, 1, NBDWS_MAX_CONNS, &cfg->nconns))
				return nbdctl_usage_error(cmd, "--connections must be 1..%d",
							  NBDWS_MAX_CONNS);
			break;
		case 't':
			if (parse_seconds_ms(optarg, &cfg->timeout_ms))
				return nbdctl_usage_error(cmd, "--timeout must be a positive number of seconds (use --no-timeout to wait forever)");
			cfg->has_timeout = true;
			break;
		case NBDCTL_OPT_CONNECT_TIMEOUT:
			if (parse_connect_timeout(cmd, optarg,
						  &cfg->connect_timeout_ms))
				return NBDCTL_EXIT_USAGE;
			break;
		case OPT_DEAD_TIMEOUT:
			if (!strcmp(optarg, "0"))
				cfg->dead_timeout_ms = 0;
			else if (parse_seconds_ms(optarg, &cfg->dead_timeout_ms))
				return nbdctl_usage_error(cmd, "--dead-timeout must be a number of seconds");
			cfg->has_dead_timeout = true;
			break;
		case 'r':
			cfg->client_flags |= NBDWS_CF_READ_ONLY;
			break;
		case 'b':
			if (parse_bytes(optarg, &cfg->block_size) ||
			    cfg->block_size < MIN_LBS || cfg->block_size > MAX_LBS ||
			    (cfg->block_size & (cfg->block_size - 1)))
				return nbdctl_usage_error(cmd, "--block-size must be a power of two from %u to %u",
							  MIN_LBS, MAX_LBS);
			break;
		case OPT_MAX_REQUEST:
			if (parse_bytes(optarg, &cfg->max_req) ||
			    cfg->max_req < MIN_MAX_REQ || cfg->max_req > MAX_MAX_REQ)
				return nbdctl_usage_error(cmd, "--max-request must be a size from 4K to 32M");
			break;
		case OPT_QUEUE_DEPTH:
			if (parse_uint(optarg, 1, NBDWS_MAX_QUEUE_DEPTH, &cfg->queue_depth))
				return nbdctl_usage_error(cmd, "--queue-depth must be 1..%d",
							  NBDWS_MAX_QUEUE_DEPTH);
			break;
		case OPT_BACKEND:
			if (!*optarg || strlen(optarg) > 255)
				return nbdctl_usage_error(cmd, "--backend must be 1..255 characters");
			cfg->backend = optarg;
			break;
		case OPT_PERSIST:
			cfg->persist = true;
			break;
		case OPT_KEEP:
			cfg->client_flags |= NBDWS_CF_KEEP_DEVICE;
			break;
		case OPT_NO_TIMEOUT:
			cfg->no_timeout = true;
			cfg->client_flags |= NBDWS_CF_NO_TIMEOUT;
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
	if (cfg->no_timeout && cfg->has_timeout)
		return nbdctl_usage_error(cmd, "--timeout and --no-timeout exclude each other");
	if (argc - optind < 1 || argc - optind > 2)
		return nbdctl_usage_error(cmd, "expected URI [DEVICE]");
	cfg->uri_text = argv[optind];
	if (argc - optind == 2) {
		if (parse_device(argv[optind + 1], &cfg->index))
			return nbdctl_usage_error(cmd, "bad device '%s': use /dev/nbdwsN, nbdwsN or N",
						  argv[optind + 1]);
		cfg->has_index = true;
	}
	rc = nbd_uri_parse(cfg->uri_text, &cfg->uri, &err);
	if (rc == -EPROTONOSUPPORT) {
		nbdctl_err("%s", err.msg);
		return NBDCTL_EXIT_FAIL;
	}
	if (rc)
		return nbdctl_usage_error(cmd, "%s", err.msg);
	rc = wsopts_finish(&cfg->ws, cmd, &cfg->uri);
	if (rc) {
		nbd_uri_free(&cfg->uri);
		wsopts_free(&cfg->ws);
		return rc;
	}
	if (!cfg->backend) {
		/* Public (sysfs, STATUS): a ws query may carry a token. */
		cfg->backend_buf = nbd_uri_public(cfg->uri_text, &cfg->uri);
		if (!cfg->backend_buf) {
			nbd_uri_free(&cfg->uri);
			wsopts_free(&cfg->ws);
			nbdctl_err("out of memory");
			return NBDCTL_EXIT_FAIL;
		}
		cfg->backend = cfg->backend_buf;
	}
	return 0;
}

static struct nl_msg *build_connect(struct nbdws_nl *nl,
				    const struct connect_cfg *cfg,
				    const struct nbd_export_info *info,
				    const struct dev_params *p,
				    const struct nbdctl_conn *c)
{
	struct nl_msg *msg = nbdws_nl_msg(nl, NBDWS_CMD_CONNECT, 0);
	struct nlattr *conns;
	uint32_t i;

	if (!msg)
		return NULL;
	if ((cfg->has_index && nla_put_u32(msg, NBDWS_A_INDEX, cfg->index) < 0) ||
	    nla_put_u64(msg, NBDWS_A_SIZE_BYTES, info->size) < 0 ||
	    nla_put_u32(msg, NBDWS_A_BLOCK_SIZE_MIN, p->lbs) < 0 ||
	    nla_put_u32(msg, NBDWS_A_BLOCK_SIZE_PREF, p->pref) < 0 ||
	    nla_put_u32(msg, NBDWS_A_BLOCK_SIZE_MAX, info->block_max) < 0 ||
	    nla_put_u32(msg, NBDWS_A_MAX_REQ_BYTES, p->max_req) < 0 ||
	    nla_put_u32(msg, NBDWS_A_SERVER_FLAGS, info->tflags) < 0 ||
	    nla_put_u32(msg, NBDWS_A_CLIENT_FLAGS, cfg->client_flags) < 0 ||
	    ((cfg->has_timeout || cfg->no_timeout) &&
	     nla_put_u32(msg, NBDWS_A_TIMEOUT_MS, cfg->timeout_ms) < 0) ||
	    (cfg->has_dead_timeout &&
	     nla_put_u32(msg, NBDWS_A_DEAD_TIMEOUT_MS, cfg->dead_timeout_ms) < 0) ||
	    (cfg->queue_depth &&
	     nla_put_u32(msg, NBDWS_A_QUEUE_DEPTH, cfg->queue_depth) < 0) ||
	    nla_put_string(msg, NBDWS_A_BACKEND, cfg->backend) < 0)
		goto fail;
	conns = nbdws_nl_nest_start(msg, NBDWS_A_CONNS);
	if (!conns)
		goto fail;
	for (i = 0; i < cfg->nconns; i++)
		if (conns_put(msg, &c[i], cfg->ws.ping_ms, -1))
			goto fail;
	nla_nest_end(msg, conns);
	return msg;
fail:
	nlmsg_free(msg);
	return NULL;
}

static void print_result(const struct connect_cfg *cfg,
			 const struct nbd_export_info *info,
			 const struct dev_params *p,
			 const struct nbdws_nl_connect_reply *r)
{
	char dev[64];

	snprintf(dev, sizeof(dev), "/dev/%s", r->disk);
	if (nbdctl_opts.json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "device", json_object_new_string(dev));
		json_object_object_add(o, "index", json_object_new_int64(r->index));
		json_object_object_add(o, "size", json_u64(info->size - p->lost_tail));
		json_object_object_add(o, "export_size", json_u64(info->size));
		json_object_object_add(o, "lost_tail_bytes", json_u64(p->lost_tail));
		json_object_object_add(o, "block_size", json_object_new_int64(p->lbs));
		json_object_object_add(o, "max_request_bytes", json_object_new_int64(p->max_req));
		json_object_object_add(o, "connections", json_object_new_int64(cfg->nconns));
		json_object_object_add(o, "flags", json_tflags(info->tflags));
		json_object_object_add(o, "negotiation",
				       json_object_new_string(info->used_export_name ?
							      "export-name" : "go"));
		json_print(o);
	} else {
		printf("%s\n", dev);
		fflush(stdout);
	}
}

static int do_connect(struct connect_cfg *cfg)
{
	struct nbdws_nl nl, events = { 0 };
	struct nbdws_nl_connect_reply reply = { 0 };
	struct conn_target target = {
		.uri = &cfg->uri,
		.ws = &cfg->ws.dial,
		.ping_ms = cfg->ws.ping_ms,
	};
	struct nbdctl_conn c[NBDWS_MAX_CONNS];
	struct nbd_export_info info;
	struct dev_params p;
	struct nl_msg *msg;
	int rc, ret = NBDCTL_EXIT_FAIL;

	/* Netlink first: no point in a handshake without the module. */
	rc = nbdctl_nl_open(&nl);
	if (rc)
		return rc;
	if (cfg->persist) {
		rc = nbdctl_nl_open(&events);
		if (!rc)
			rc = nbdctl_nl_subscribe(&events);
		if (rc) {
			nbdws_nl_close(&nl);
			nbdws_nl_close(&events);
			return rc;
		}
	}
	if (conns_open(&target, cfg->nconns,
		       cfg->connect_timeout_ms ? (int)cfg->connect_timeout_ms :
		       NBDCTL_CONNECT_TIMEOUT_S * 1000, c, &info))
		goto out_nl;
	/*
	 * Several connections to a server that does not promise consistency
	 * between them (CAN_MULTI_CONN) could return stale data: refuse
	 * rather than silently dropping to one.
	 */
	if (cfg->nconns > 1 && !(info.tflags & NBDP_FLAG_CAN_MULTI_CONN)) {
		nbdctl_err("the server does not advertise multi-connection support (NBD_FLAG_CAN_MULTI_CONN): use -c 1");
		goto out_conns;
	}
	if (derive_params(cfg->block_size, cfg->max_req, &info, &p))
		goto out_conns;
	if (p.lost_tail)
		nbdctl_warn("the export's size (%" PRIu64 " bytes) is not a multiple of the block size (%" PRIu32 "): the last %" PRIu64 " bytes are not accessible",
			    info.size, p.lbs, p.lost_tail);
	if (info.size < p.lbs) {
		nbdctl_err("the export is smaller than one block (%" PRIu64 " bytes)", info.size);
		goto out_conns;
	}
	msg = build_connect(&nl, cfg, &info, &p, c);
	if (!msg) {
		nbdctl_err("out of memory building the request");
		goto out_conns;
	}
	rc = nbdws_nl_request(&nl, msg, nbdws_nl_connect_reply_cb, &reply);
	if (rc) {
		nbdctl_nl_perror(&nl, rc, "the kernel refused the device");
		goto out_conns;
	}
	if (!reply.has_index) {
		if (!cfg->has_index) {
			nbdctl_err("the kernel created a device but did not say which (no NBDWS_A_INDEX in its reply)");
			goto out_conns;
		}
		reply.index = cfg->index;
	}
	if (!reply.disk[0])
		snprintf(reply.disk, sizeof(reply.disk), NBDWS_DISK_NAME "%u", reply.index);
	print_result(cfg, &info, &p, &reply);
	ret = NBDCTL_EXIT_OK;
	/* The kernel holds its own references to the sockets now. */
	conns_close(c, cfg->nconns);
	if (cfg->persist) {
		struct persist_target t = {
			.conn = &target,
			.index = reply.index,
			.size = info.size,
			.flags = info.tflags,
			/* A stalled server must not delay the next attempt long. */
			.timeout_ms = cfg->connect_timeout_ms ?
				      (int)cfg->connect_timeout_ms :
				      NBDCTL_RECONNECT_TIMEOUT_S * 1000,
		};

		ret = persist_run(&nl, &events, &t);
	}
	nbd_export_info_free(&info);
	goto out_nl;
out_conns:
	conns_close(c, cfg->nconns);
	nbd_export_info_free(&info);
out_nl:
	nbdws_nl_close(&nl);
	nbdws_nl_close(&events);
	return ret;
}

int cmd_connect(int argc, char **argv)
{
	struct connect_cfg cfg;
	int rc;

	rc = parse_args(argc, argv, &cfg);
	if (rc)
		return rc;
	rc = do_connect(&cfg);
	nbd_uri_free(&cfg.uri);
	wsopts_free(&cfg.ws);
	free(cfg.backend_buf);
	return rc;
}
