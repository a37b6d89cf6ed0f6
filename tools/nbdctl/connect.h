/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nbdctl: what connect hands to --persist.
 */
#ifndef _NBDCTL_CONNECT_H
#define _NBDCTL_CONNECT_H

#include <stdint.h>

#include "conns.h"
#include "genl.h"

struct persist_target {
	const struct conn_target *conn;	/* URI and WebSocket options */
	uint32_t index;
	uint64_t size;			/* export size and flags at connect */
	uint16_t flags;
	int timeout_ms;			/* per reconnect attempt */
};

/*
 * Stay running and re-establish dead connections of device @t->index
 * through RECONFIGURE, with exponential backoff. @events must be
 * subscribed to the events group, @req is for requests. Returns an exit
 * code once the device is gone or on a fatal error.
 */
int persist_run(struct nbdws_nl *req, struct nbdws_nl *events,
		const struct persist_target *t);

#endif /* _NBDCTL_CONNECT_H */
