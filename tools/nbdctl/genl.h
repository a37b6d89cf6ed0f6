/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nbdctl: the nbdws netlink client library (lib/nbdws_nl.h) plus what
 * nbdctl adds to it: messages for the user and exit codes.
 */
#ifndef _NBDCTL_GENL_H
#define _NBDCTL_GENL_H

#include "nbdws_nl.h"

/*
 * Open a socket and resolve the family, loading nbdws.ko (--module or
 * $NBDWS_MODULE_PATH, else by name) when the family is missing. Returns
 * 0, or an exit code (NBDCTL_EXIT_NOMOD / _FAIL) after printing what to do.
 */
int nbdctl_nl_open(struct nbdws_nl *nl);
/* Also join the events multicast group (for monitor and --persist). */
int nbdctl_nl_subscribe(struct nbdws_nl *nl);

/*
 * Print "nbdctl: WHAT: strerror: extack" plus a hint for common errnos
 * (EPERM: needs CAP_SYS_ADMIN, ENODEV: no such device).
 */
void nbdctl_nl_perror(struct nbdws_nl *nl, int rc, const char *what);

#endif /* _NBDCTL_GENL_H */
