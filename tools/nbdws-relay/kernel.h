/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nbdws-relay: the module's generic netlink family.
 *
 * Commands (CONNECT, RECONFIGURE, DISCONNECT, STATUS) can block in the
 * kernel for as long as a disk takes to appear or to go away, so they run
 * on one worker thread with a netlink socket of its own; a fiber hands a
 * command over and waits on its fiber_cond, and the loop carries on. The
 * worker never touches relay state: it takes a struct kernel_op, fills
 * its results and signals completion through an eventfd the loop watches.
 *
 * Events (NBDWS_GENL_MCGRP_EVENTS) arrive on a second socket watched by
 * the loop and are handed to slot.c.
 *
 * The netlink plumbing itself (family, extack, STATUS decoding) is the
 * shared client library that nbdctl uses, lib/nbdws_nl.h.
 */
#ifndef _RELAY_KERNEL_H
#define _RELAY_KERNEL_H

#include <stdbool.h>
#include <stddef.h>

#include "fiber.h"
#include "nbdws_nl.h"
#include "nbdws_types.h"

enum kernel_cmd {
	KERNEL_CONNECT,
	KERNEL_RECONFIGURE,	/* add/replace the one connection */
	KERNEL_DISCONNECT,
	KERNEL_STATUS,		/* one device */
};

struct kernel_op {
	enum kernel_cmd cmd;

	/* CONNECT: everything; RECONFIGURE: index + conn; others: index */
	int index;		/* -1: lowest free (CONNECT only) */
	u64 size;
	u32 block_min, block_pref, block_max, max_req;
	u32 server_flags, client_flags;
	u32 timeout_ms, dead_timeout_ms, queue_depth;	/* 0: default */
	const char *backend;
	int fd;			/* connection handed over (a dup is sent) */
	u32 transport;		/* enum nbdws_transport */
	const u8 *preread;
	size_t preread_len;
	u32 ping_ms;
	/* DISCONNECT of a WebSocket connection: close code to send, 0: none */
	u16 close_code;
	const char *close_reason;

	/* results */
	int rc;			/* 0 or -errno */
	char extack[256];	/* the kernel's reason, sanitised */
	u32 out_index;		/* CONNECT: N of /dev/nbdwsN */
	char disk[32];		/* CONNECT: "nbdwsN" */
	struct nbdws_dev_status status;		/* STATUS */

	/* private to kernel.c */
	struct fiber_cond done;
	void (*fn)(struct kernel_op *op, void *arg);
	void *arg;
	struct kernel_op *next;
};

/* What slot.c gets for each multicast event. */
struct kernel_event {
	u32 index;
	u32 event;		/* enum nbdws_event */
	u32 reason;		/* enum nbdws_dead_reason, NONE if absent */
	bool has_ws_close;
	u16 ws_close_code;
	char ws_close_reason[128];	/* sanitised */
};

typedef void (*kernel_event_fn)(const struct kernel_event *ev);

/*
 * Resolve the family (loading nbdws.ko with libkmod when it is missing,
 * from relay_cfg->module_path if set), join the events group, start the
 * worker. 0 or -errno after logging what to do.
 */
int kernel_init(kernel_event_fn on_event);
void kernel_fini(void);

/*
 * Inside a fiber: run @op on the worker and wait for it (no deadline: the
 * kernel bounds its own commands). Returns op->rc.
 */
int kernel_call(struct kernel_op *op);

/*
 * From the loop, not a fiber: queue @op and call @fn(@op, @arg) from the
 * loop when it is done (shutdown, hold expiry).
 */
void kernel_submit(struct kernel_op *op, void (*fn)(struct kernel_op *op,
						    void *arg), void *arg);

/*
 * Whether multicast events were lost (receive buffer overrun) since the
 * last call; clears the flag. Events missed are not replayed: the caller
 * re-checks its devices with KERNEL_STATUS.
 */
bool kernel_events_lost(void);

#endif /* _RELAY_KERNEL_H */
