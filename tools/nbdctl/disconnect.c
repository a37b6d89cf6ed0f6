// SPDX-License-Identifier: GPL-2.0
/*
 * nbdctl disconnect DEVICE... | --all
 */
#include <getopt.h>
#include <stdlib.h>

#include <netlink/genl/genl.h>

#include "genl.h"
#include "nbdctl.h"

static int disconnect_one(struct nbdws_nl *nl, uint32_t index)
{
	struct nl_msg *msg = nbdws_nl_msg(nl, NBDWS_CMD_DISCONNECT, 0);
	char what[64];
	int rc;

	if (!msg || nla_put_u32(msg, NBDWS_A_INDEX, index) < 0) {
		nlmsg_free(msg);
		nbdctl_err("out of memory");
		return -1;
	}
	rc = nbdws_nl_request(nl, msg, NULL, NULL);
	if (rc) {
		snprintf(what, sizeof(what), "cannot disconnect %s%u",
			 NBDWS_DISK_NAME, index);
		nbdctl_nl_perror(nl, rc, what);
		return -1;
	}
	return 0;
}

int cmd_disconnect(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "all", no_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct nbdws_nl nl;
	bool all = false;
	int c, i, rc, failed = 0;
	uint32_t index;

	while ((c = nbdctl_getopt(argc, argv, "ajh", opts)) != -1) {
		switch (c) {
		case 'a':
			all = true;
			break;
		case 'j':
			nbdctl_opts.json = true;
			break;
		case 'h':
			nbdctl_usage(stdout, argv[0]);
			return NBDCTL_EXIT_OK;
		default:
			return nbdctl_usage_error(argv[0], NULL);
		}
	}
	if (all == (optind < argc))
		return nbdctl_usage_error(argv[0], "give either devices or --all");
	for (i = optind; i < argc; i++)
		if (parse_device(argv[i], &index))
			return nbdctl_usage_error(argv[0], "bad device '%s'", argv[i]);

	rc = nbdctl_nl_open(&nl);
	if (rc)
		return rc;
	if (all) {
		struct nbdws_dev_list list;
		unsigned int k;

		rc = nbdws_dev_status_dump(&nl, &list);
		if (rc) {
			nbdctl_nl_perror(&nl, rc, "cannot list devices");
			nbdws_nl_close(&nl);
			return NBDCTL_EXIT_FAIL;
		}
		for (k = 0; k < list.n; k++)
			failed |= disconnect_one(&nl, list.v[k].index);
		nbdws_dev_list_free(&list);
	} else {
		for (i = optind; i < argc; i++) {
			parse_device(argv[i], &index);
			failed |= disconnect_one(&nl, index);
		}
	}
	nbdws_nl_close(&nl);
	return failed ? NBDCTL_EXIT_FAIL : NBDCTL_EXIT_OK;
}
