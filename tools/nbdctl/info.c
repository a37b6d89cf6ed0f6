// SPDX-License-Identifier: GPL-2.0
/*
 * nbdctl info URI / list-exports URI: ask an NBD server about its exports
 * without creating a device (no kernel module needed). ws:// and wss://
 * stay in userspace here, so wss:// does not need kernel TLS.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "nbd_dial.h"
#include "nbdctl.h"
#include "output.h"
#include "wsopts.h"

static const struct option info_opts[] = {
	{ "json", no_argument, NULL, 'j' },
	{ "help", no_argument, NULL, 'h' },
	NBDCTL_CONNECT_TIMEOUT_OPTION,
	WSOPTS_LONG_OPTIONS,
	{},
};

/*
 * Parse "[-j] [--connect-timeout SEC] [WebSocket options] URI" for both
 * commands; returns 0 or an exit code. On success @uri and @ws are the
 * caller's to free.
 */
static int parse_uri_arg(int argc, char **argv, struct nbd_uri *uri,
			 struct wsopts *ws, int *timeout_ms)
{
	uint32_t ms = NBDCTL_CONNECT_TIMEOUT_S * 1000;
	struct nbdws_err err;
	int c, rc;

	memset(ws, 0, sizeof(*ws));
	memset(uri, 0, sizeof(*uri));
	*timeout_ms = (int)ms;
	while ((c = nbdctl_getopt(argc, argv, "jh", info_opts)) != -1) {
		rc = wsopts_handle(ws, argv[0], c, optarg);
		if (rc >= 0) {
			if (rc)
				return rc;
			continue;
		}
		switch (c) {
		case 'j':
			nbdctl_opts.json = true;
			break;
		case NBDCTL_OPT_CONNECT_TIMEOUT:
			if (parse_connect_timeout(argv[0], optarg, &ms))
				return NBDCTL_EXIT_USAGE;
			break;
		case 'h':
			nbdctl_usage(stdout, argv[0]);
			exit(NBDCTL_EXIT_OK);
		default:
			return nbdctl_usage_error(argv[0], NULL);
		}
	}
	if (argc - optind != 1)
		return nbdctl_usage_error(argv[0], "expected exactly one URI");
	*timeout_ms = (int)ms;	/* parse_seconds_ms(): at most a day */
	rc = nbd_uri_parse(argv[optind], uri, &err);
	if (rc == -EPROTONOSUPPORT) {
		nbdctl_err("%s", err.msg);
		return NBDCTL_EXIT_FAIL;
	}
	if (rc)
		return nbdctl_usage_error(argv[0], "%s", err.msg);
	rc = wsopts_finish(ws, argv[0], uri);
	if (rc) {
		nbd_uri_free(uri);
		wsopts_free(ws);
	}
	return rc;
}

static bool is_ws(const struct nbd_uri *uri)
{
	return uri->scheme == NBD_URI_WS || uri->scheme == NBD_URI_WSS;
}

static void print_info(const struct nbd_export_info *info)
{
	char size[32], flags[256];

	if (nbdctl_opts.json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "export", json_object_new_string(info->name));
		if (info->description)
			json_object_object_add(o, "description",
					       json_object_new_string(info->description));
		json_object_object_add(o, "size", json_u64(info->size));
		json_object_object_add(o, "flags", json_tflags(info->tflags));
		json_object_object_add(o, "flags_raw", json_object_new_int(info->tflags));
		json_object_object_add(o, "block_size_min", json_object_new_int64(info->block_min));
		json_object_object_add(o, "block_size_preferred", json_object_new_int64(info->block_pref));
		json_object_object_add(o, "block_size_max", json_object_new_int64(info->block_max));
		json_object_object_add(o, "block_size_from_server",
				       json_object_new_boolean(info->block_size_given));
		json_object_object_add(o, "negotiation",
				       json_object_new_string(info->used_export_name ?
							      "export-name" : "info"));
		json_print(o);
		return;
	}
	fmt_size(info->size, size, sizeof(size));
	fmt_tflags(info->tflags, flags, sizeof(flags));
	printf("export:       '%s'\n", info->name);
	if (info->description)
		printf("description:  %s\n", info->description);
	printf("size:         %" PRIu64 " bytes (%s)\n", info->size, size);
	printf("flags:        %s (0x%04x)\n", flags, info->tflags);
	printf("block sizes:  minimum %" PRIu32 ", preferred %" PRIu32 ", maximum %" PRIu32 "%s\n",
	       info->block_min, info->block_pref, info->block_max,
	       info->block_size_given ? "" : " (server gave none: protocol defaults)");
	printf("negotiation:  %s\n", info->used_export_name ?
	       "NBD_OPT_EXPORT_NAME (the server supports nothing newer)" :
	       "NBD_OPT_INFO");
}

int cmd_info(int argc, char **argv)
{
	int timeout_ms = 0;
	struct nbd_export_info info;
	struct nbd_uri uri;
	struct nbdws_err err;
	struct wsopts ws;
	struct ws_conn wc;
	int rc;

	rc = parse_uri_arg(argc, argv, &uri, &ws, &timeout_ms);
	if (rc)
		return rc;
	if (is_ws(&uri)) {
		rc = ws_dial(&uri, &ws.dial, NBD_DIAL_INFO, timeout_ms, &info,
			     &wc, &err);
		if (!rc && wc.tls_desc[0])
			nbdctl_verbose("%s: %s", uri.host, wc.tls_desc);
	} else {
		rc = nbd_dial(&uri, NBD_DIAL_INFO, timeout_ms, &info, &err);
	}
	if (rc)
		wsopts_report(&uri, rc, err.msg, NULL);
	nbd_uri_free(&uri);
	wsopts_free(&ws);
	if (rc)
		return NBDCTL_EXIT_FAIL;
	print_info(&info);
	nbd_export_info_free(&info);
	return NBDCTL_EXIT_OK;
}

int cmd_list_exports(int argc, char **argv)
{
	int timeout_ms = 0;
	struct nbd_export_list list;
	struct nbd_uri uri;
	struct nbdws_err err;
	struct wsopts ws;
	size_t i;
	int rc;

	rc = parse_uri_arg(argc, argv, &uri, &ws, &timeout_ms);
	if (rc)
		return rc;
	if (is_ws(&uri))
		rc = ws_dial_list(&uri, &ws.dial, timeout_ms, &list, &err);
	else
		rc = nbd_dial_list(&uri, timeout_ms, &list, &err);
	if (rc)
		wsopts_report(&uri, rc, err.msg, NULL);
	nbd_uri_free(&uri);
	wsopts_free(&ws);
	if (rc)
		return NBDCTL_EXIT_FAIL;
	if (nbdctl_opts.json) {
		json_object *a = json_object_new_array();

		for (i = 0; i < list.n; i++) {
			json_object *o = json_object_new_object();

			json_object_object_add(o, "name", json_object_new_string(list.v[i].name));
			json_object_object_add(o, "description",
					       json_object_new_string(list.v[i].description));
			json_object_array_add(a, o);
		}
		json_print(a);
	} else {
		for (i = 0; i < list.n; i++) {
			if (list.v[i].description[0])
				printf("'%s'\t%s\n", list.v[i].name,
				       list.v[i].description);
			else
				printf("'%s'\n", list.v[i].name);
		}
	}
	nbd_export_list_free(&list);
	return NBDCTL_EXIT_OK;
}
