/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nbdws-relay: the JSON documents of GET /status and GET /slots
 * (DESIGN "/status JSON", Documentation/relay.md).
 */
#ifndef _RELAY_STATUS_H
#define _RELAY_STATUS_H

/*
 * Inside a fiber (asks the kernel for each device): the /status document
 * as malloc'd text, or NULL on ENOMEM.
 */
char *status_json(void);

/* The /slots document: name, default, read_only, state, metadata. */
char *status_slots_json(void);

#endif /* _RELAY_STATUS_H */
