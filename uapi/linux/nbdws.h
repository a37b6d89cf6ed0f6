/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * nbdws: the generic netlink contract between nbdws.ko and userspace.
 *
 * This header is the only definition of the family; the module and every
 * tool include it. Attribute numbers are ABI: append, never renumber.
 */
#ifndef _UAPI_LINUX_NBDWS_H
#define _UAPI_LINUX_NBDWS_H

#include <linux/types.h>

#define NBDWS_GENL_NAME		"nbdws"
#define NBDWS_GENL_VERSION	1
#define NBDWS_GENL_MCGRP_EVENTS	"events"

/* Block device name prefix: /dev/nbdws0, /dev/nbdws1, ... */
#define NBDWS_DISK_NAME		"nbdws"

/* Defaults applied by the module when the attribute is absent. */
#define NBDWS_DEFAULT_TIMEOUT_MS	30000
#define NBDWS_DEFAULT_DEAD_TIMEOUT_MS	60000
#define NBDWS_DEFAULT_QUEUE_DEPTH	128
#define NBDWS_DEFAULT_MAX_REQ_BYTES	(1024U * 1024U)
#define NBDWS_MAX_CONNS			16
#define NBDWS_MAX_QUEUE_DEPTH		1024
/*
 * Most bytes NBDWS_CONN_A_PREREAD may carry: what userspace read from a
 * WebSocket connection past its handshake, consumed by the kernel first.
 */
#define NBDWS_PREREAD_MAX		4096

/* Bounds of NBDWS_CONN_A_PING_MS when it is not 0 (off). */
#define NBDWS_MIN_PING_MS		100
#define NBDWS_MAX_PING_MS		3600000

enum nbdws_cmd {
	NBDWS_CMD_UNSPEC,
	/* Create a device from connected sockets; replies with the device. */
	NBDWS_CMD_CONNECT,
	/*
	 * Tear down a device (NBDWS_A_INDEX). Optional NBDWS_A_WS_CLOSE_CODE
	 * and NBDWS_A_WS_CLOSE_REASON: the close frame its WebSocket
	 * connections end with, instead of 1000 without a reason.
	 */
	NBDWS_CMD_DISCONNECT,
	/* Add or replace connections, change timeouts of a live device. */
	NBDWS_CMD_RECONFIGURE,
	/* One device (NBDWS_A_INDEX) or, dumped, all of them. */
	NBDWS_CMD_STATUS,
	/* Multicast notification on NBDWS_GENL_MCGRP_EVENTS. */
	NBDWS_CMD_EVENT,

	__NBDWS_CMD_MAX,
};

#define NBDWS_CMD_MAX (__NBDWS_CMD_MAX - 1)

/* Top-level attributes. */
enum nbdws_attr {
	NBDWS_A_UNSPEC,
	NBDWS_A_PAD,
	NBDWS_A_INDEX,			/* u32: N of /dev/nbdwsN */
	NBDWS_A_SIZE_BYTES,		/* u64: export size from the handshake */
	NBDWS_A_BLOCK_SIZE_MIN,		/* u32: logical block size (power of 2) */
	NBDWS_A_BLOCK_SIZE_PREF,	/* u32: physical block size / io_opt */
	NBDWS_A_BLOCK_SIZE_MAX,		/* u32: server's maximum payload */
	NBDWS_A_MAX_REQ_BYTES,		/* u32: largest request sent */
	NBDWS_A_SERVER_FLAGS,		/* u32: NBD transmission flags */
	NBDWS_A_CLIENT_FLAGS,		/* u32: enum nbdws_client_flags */
	NBDWS_A_TIMEOUT_MS,		/* u32: per request; 0 = never */
	NBDWS_A_DEAD_TIMEOUT_MS,	/* u32: hold for RECONFIGURE */
	NBDWS_A_QUEUE_DEPTH,		/* u32: tags per hardware queue */
	NBDWS_A_BACKEND,		/* string: backend identifier */
	NBDWS_A_CONNS,			/* nest of NBDWS_A_CONN */
	NBDWS_A_CONN,			/* nest of enum nbdws_conn_attr */
	NBDWS_A_DEVICE,			/* nest of top-level attrs (STATUS) */
	NBDWS_A_EVENT,			/* u32: enum nbdws_event */
	NBDWS_A_REASON,			/* u32: enum nbdws_dead_reason */
	NBDWS_A_WS_CLOSE_CODE,		/* u16: RFC 6455 close code */
	NBDWS_A_WS_CLOSE_REASON,	/* string: close reason, <= 123 bytes */
	NBDWS_A_DISK_NAME,		/* string: "nbdws0" (replies only) */
	NBDWS_A_STATE,			/* u32: enum nbdws_dev_state */

	__NBDWS_A_MAX,
};

#define NBDWS_A_MAX (__NBDWS_A_MAX - 1)

/* Attributes inside NBDWS_A_CONN. */
enum nbdws_conn_attr {
	NBDWS_CONN_A_UNSPEC,
	NBDWS_CONN_A_PAD,
	NBDWS_CONN_A_FD,		/* s32: connected stream socket */
	NBDWS_CONN_A_ID,		/* u32: connection slot in the device */
	NBDWS_CONN_A_TRANSPORT,		/* u32: enum nbdws_transport */
	NBDWS_CONN_A_PREREAD,		/* binary: bytes read past handshake */
	NBDWS_CONN_A_PING_MS,		/* u32: WebSocket keepalive; 0 = off */
	NBDWS_CONN_A_STATE,		/* u32: enum nbdws_conn_state */
	NBDWS_CONN_A_REASON,		/* u32: enum nbdws_dead_reason */
	NBDWS_CONN_A_STATS,		/* nest of enum nbdws_stat_attr */

	__NBDWS_CONN_A_MAX,
};

#define NBDWS_CONN_A_MAX (__NBDWS_CONN_A_MAX - 1)

/* Counters inside NBDWS_CONN_A_STATS, all u64. */
enum nbdws_stat_attr {
	NBDWS_STAT_A_UNSPEC,
	NBDWS_STAT_A_PAD,
	NBDWS_STAT_A_READS,
	NBDWS_STAT_A_WRITES,
	NBDWS_STAT_A_FLUSHES,
	NBDWS_STAT_A_TRIMS,
	NBDWS_STAT_A_WRITE_ZEROES,
	NBDWS_STAT_A_READ_BYTES,
	NBDWS_STAT_A_WRITE_BYTES,
	NBDWS_STAT_A_INFLIGHT,
	NBDWS_STAT_A_INFLIGHT_PEAK,
	NBDWS_STAT_A_ERRORS,
	NBDWS_STAT_A_TIMEOUTS,
	NBDWS_STAT_A_RECONNECTS,

	__NBDWS_STAT_A_MAX,
};

#define NBDWS_STAT_A_MAX (__NBDWS_STAT_A_MAX - 1)

enum nbdws_client_flags {
	NBDWS_CF_READ_ONLY	= 1 << 0,	/* refuse writes locally */
	NBDWS_CF_KEEP_DEVICE	= 1 << 1,	/* keep disk after DISCONNECT */
	NBDWS_CF_NO_TIMEOUT	= 1 << 2,	/* explicit: wait forever */
};

enum nbdws_transport {
	NBDWS_TRANSPORT_PLAIN,		/* NBD bytes on a stream socket */
	NBDWS_TRANSPORT_WS_SERVER,	/* peer connected to us: rx masked */
	NBDWS_TRANSPORT_WS_CLIENT,	/* we connected: tx masked */

	__NBDWS_TRANSPORT_MAX,
};

#define NBDWS_TRANSPORT_MAX (__NBDWS_TRANSPORT_MAX - 1)

enum nbdws_dev_state {
	NBDWS_DEV_RUNNING,		/* at least one connection alive */
	NBDWS_DEV_DEAD_WAIT,		/* none alive: holding for RECONFIGURE */
	NBDWS_DEV_DISCONNECTED,		/* kept (NBDWS_CF_KEEP_DEVICE), idle */
};

enum nbdws_conn_state {
	NBDWS_CONN_ALIVE,
	NBDWS_CONN_DEAD,
};

enum nbdws_event {
	NBDWS_EVENT_CONNECTED,		/* device created */
	NBDWS_EVENT_CONN_DEAD,		/* a connection died: NBDWS_A_REASON */
	NBDWS_EVENT_RECONNECTED,	/* RECONFIGURE brought a connection */
	NBDWS_EVENT_DISCONNECTED,	/* device torn down */
	NBDWS_EVENT_DEAD_TIMEOUT,	/* no connection came back in time */
};

enum nbdws_dead_reason {
	NBDWS_REASON_NONE,
	NBDWS_REASON_TIMEOUT,		/* a request exceeded its timeout */
	NBDWS_REASON_PEER_CLOSED,	/* orderly EOF from the peer */
	NBDWS_REASON_SOCKET_ERROR,	/* send or receive error */
	NBDWS_REASON_PROTOCOL,		/* invalid NBD reply */
	NBDWS_REASON_WS_CLOSE,		/* WebSocket close frame received */
	NBDWS_REASON_WS_PROTOCOL,	/* WebSocket framing violation */
	NBDWS_REASON_WS_PING_TIMEOUT,	/* keepalive pong missing */
	NBDWS_REASON_USER,		/* replaced or removed by RECONFIGURE */
};

#endif /* _UAPI_LINUX_NBDWS_H */
