// SPDX-License-Identifier: GPL-2.0
/*
 * nbdctl: printing on top of the netlink client library (see genl.h).
 */
#include <errno.h>
#include <string.h>

#include "genl.h"
#include "nbdctl.h"

int nbdctl_nl_open(struct nbdws_nl *nl)
{
	const char *path = nbdctl_opts.module_path;
	struct nbdws_err err;
	int rc;

	rc = nbdws_nl_open(nl, path, &err);
	if (!rc)
		return 0;
	if (rc == -NBDWS_NL_ENOMOD) {
		nbdctl_err("%s; try 'modprobe nbdws'%s", err.msg,
			   path ? "" : " or --module PATH/nbdws.ko");
		return NBDCTL_EXIT_NOMOD;
	}
	nbdctl_err("%s", err.msg);
	return rc == -NBDWS_NL_ENOFAMILY ? NBDCTL_EXIT_NOMOD : NBDCTL_EXIT_FAIL;
}

int nbdctl_nl_subscribe(struct nbdws_nl *nl)
{
	struct nbdws_err err;

	if (nbdws_nl_subscribe(nl, &err)) {
		nbdctl_err("%s", err.msg);
		return NBDCTL_EXIT_FAIL;
	}
	return 0;
}

void nbdctl_nl_perror(struct nbdws_nl *nl, int rc, const char *what)
{
	const char *hint = "";

	if (rc == -EPERM || rc == -EACCES)
		hint = " (this needs CAP_SYS_ADMIN: run as root)";
	else if (rc == -ENODEV || rc == -ENOENT)
		hint = " (see 'nbdctl list' for the devices that exist)";
	if (nl->extack[0])
		nbdctl_err("%s: %s: %s%s", what, strerror(-rc), nl->extack, hint);
	else
		nbdctl_err("%s: %s%s", what, strerror(-rc), hint);
}
