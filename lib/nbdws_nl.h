/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The client side of the "nbdws" generic netlink family (uapi/linux/nbdws.h),
 * shared by nbdctl and nbdws-relay, on top of libnl-genl-3.
 *
 * - nbdws_nl.c: socket, family resolution (loading nbdws.ko when the
 *   family is missing), requests that wait for their ACK and keep the
 *   kernel's extack text, attribute helpers.
 * - nbdws_nl_status.c: NBDWS_CMD_STATUS replies decoded into plain structs.
 * - nbdws_nl_event.c: NBDWS_CMD_EVENT multicast messages decoded.
 * - nbdws_nl_module.c: inserting nbdws.ko with libkmod.
 *
 * Nothing here prints: functions return 0 or a negative errno and leave a
 * sentence in a struct nbdws_err, or the kernel's own reason in
 * nl->extack. Strings that come from the kernel are copied with control
 * bytes replaced, so they are safe to print as they are.
 *
 * A struct nbdws_nl is used by one thread at a time.
 */
#ifndef _NBDWS_NL_H
#define _NBDWS_NL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/nbdws.h>
#include <netlink/attr.h>
#include <netlink/msg.h>

#include "nbdws_err.h"

struct nbdws_nl {
	struct nl_sock *sk;
	int family;
	int events_grp;			/* multicast group id, once resolved */
	char extack[256];		/* kernel's message for the last error */
};

/*
 * nbdws_nl_open() failures that mean "no usable module", as opposed to
 * any other failure (no netlink socket, no memory): callers tell the user
 * to install or load the module only for these two.
 *   NBDWS_NL_ENOMOD:    family missing and the module could not be loaded
 *   NBDWS_NL_ENOFAMILY: the module loaded but the family is still missing
 */
#define NBDWS_NL_ENOMOD		ENOPKG
#define NBDWS_NL_ENOFAMILY	ENOPROTOOPT

/*
 * Open a socket and resolve the family. When it is missing, load nbdws.ko
 * with libkmod: from @module_path if not NULL, else by name (modprobe
 * semantics). Returns 0, -NBDWS_NL_ENOMOD, -NBDWS_NL_ENOFAMILY or another
 * -errno, with @err filled.
 */
int nbdws_nl_open(struct nbdws_nl *nl, const char *module_path,
		  struct nbdws_err *err);
/*
 * Join the events multicast group (and stop checking sequence numbers:
 * events are unsolicited). 0 or -errno with @err filled.
 */
int nbdws_nl_subscribe(struct nbdws_nl *nl, struct nbdws_err *err);
/* Safe on a closed or zeroed struct. */
void nbdws_nl_close(struct nbdws_nl *nl);
/* The socket's fd, for poll()/epoll. */
int nbdws_nl_fd(const struct nbdws_nl *nl);
/*
 * Grow the socket's receive buffer to @bytes (as root beyond the rmem_max
 * sysctl) so that bursts of events or large dumps are not dropped. 0 or
 * -errno.
 */
int nbdws_nl_set_rcvbuf(struct nbdws_nl *nl, int bytes);

/* A new request for @cmd; @flags e.g. NLM_F_DUMP. NULL on ENOMEM. */
struct nl_msg *nbdws_nl_msg(struct nbdws_nl *nl, uint8_t cmd, int flags);

/* Called with the attribute stream of one reply; < 0 marks it bad. */
typedef int (*nbdws_nl_cb)(struct nlattr *attrs, int len, void *arg);

/*
 * Send @msg (consumed) and wait for its ACK or the end of its dump. @cb,
 * if set, runs for each reply message with its attribute stream.
 * Returns 0 or a negative errno; the kernel's extack text, if any, is in
 * nl->extack (sanitised).
 */
int nbdws_nl_request(struct nbdws_nl *nl, struct nl_msg *msg,
		     nbdws_nl_cb cb, void *arg);

/* Begin a nested attribute with NLA_F_NESTED set (strict kernels want it). */
struct nlattr *nbdws_nl_nest_start(struct nl_msg *msg, int type);

/*
 * Append one NBDWS_A_CONN nest: @fd, @transport, @preread if @preread_len,
 * @ping_ms if not 0, and NBDWS_CONN_A_ID if @id >= 0. 0 or -ENOMEM.
 */
int nbdws_nl_put_conn(struct nl_msg *msg, int fd, uint32_t transport,
		      const void *preread, size_t preread_len,
		      uint32_t ping_ms, int64_t id);

/* The device a CONNECT created, as its reply names it. */
struct nbdws_nl_connect_reply {
	bool has_index;
	uint32_t index;
	char disk[32];
};

/*
 * nbdws_nl_request() callback for a CONNECT reply (@arg: a zeroed
 * struct nbdws_nl_connect_reply): the index and disk name, at top level
 * or inside an NBDWS_A_DEVICE nest.
 */
int nbdws_nl_connect_reply_cb(struct nlattr *attrs, int len, void *arg);

/* Safe attribute getters: false when absent or too short. */
bool nbdws_nl_get_u16(const struct nlattr *a, uint16_t *v);
bool nbdws_nl_get_u32(const struct nlattr *a, uint32_t *v);
bool nbdws_nl_get_u64(const struct nlattr *a, uint64_t *v);
bool nbdws_nl_get_s32(const struct nlattr *a, int32_t *v);
/*
 * Copy a string attribute into @buf, truncating, through peer_text():
 * controls and ill-formed UTF-8 become '?'. False when absent or @len
 * is 0.
 */
bool nbdws_nl_get_str(const struct nlattr *a, char *buf, size_t len);

/* ---- nbdws_nl_status.c: NBDWS_CMD_STATUS -------------------------------- */

struct nbdws_conn_status {
	uint32_t id;
	uint32_t transport;		/* enum nbdws_transport */
	uint32_t state;			/* enum nbdws_conn_state */
	uint32_t reason;		/* enum nbdws_dead_reason */
	bool has_stats;
	uint64_t stats[NBDWS_STAT_A_MAX + 1];	/* by enum nbdws_stat_attr */
};

struct nbdws_dev_status {
	uint64_t have;			/* bit per NBDWS_A_* present */
	uint32_t index;
	char disk[32];
	char backend[256];
	uint64_t size;
	uint32_t block_min, block_pref, block_max, max_req;
	uint32_t server_flags, client_flags;
	uint32_t timeout_ms, dead_timeout_ms, queue_depth, state;
	unsigned int nconns;
	struct nbdws_conn_status conns[NBDWS_MAX_CONNS];
};

/* Whether the kernel sent top-level attribute @attr for device @d. */
#define NBDWS_DEV_HAS(d, attr) (((d)->have >> (attr)) & 1)

struct nbdws_dev_list {
	struct nbdws_dev_status *v;
	unsigned int n;
};

/* STATUS of one device: 0 or -errno (-ENODEV/-ENOENT: no such device). */
int nbdws_dev_status_get(struct nbdws_nl *nl, uint32_t index,
			 struct nbdws_dev_status *d);
/* Dump all devices, sorted by index. */
int nbdws_dev_status_dump(struct nbdws_nl *nl, struct nbdws_dev_list *list);
void nbdws_dev_list_free(struct nbdws_dev_list *list);
/*
 * Append the devices of one STATUS reply message (its attribute stream)
 * to @list; what the two calls above do per message. 0 or -ENOMEM.
 */
int nbdws_dev_status_parse(struct nlattr *attrs, int len,
			   struct nbdws_dev_list *list);

/* ---- nbdws_nl_event.c: NBDWS_CMD_EVENT ---------------------------------- */

struct nbdws_nl_event {
	uint32_t index;
	uint32_t event;			/* enum nbdws_event */
	uint32_t reason;		/* enum nbdws_dead_reason */
	bool has_reason;
	bool has_conn;
	uint32_t conn_id;
	bool has_ws_close;
	uint16_t ws_close_code;
	char ws_close_reason[128];	/* sanitised */
	char disk[32];			/* "nbdwsN" */
};

/* 0 if @attrs hold an event (NBDWS_A_INDEX and NBDWS_A_EVENT), else -EINVAL. */
int nbdws_nl_event_parse(struct nlattr *attrs, int len,
			 struct nbdws_nl_event *ev);
/* 0 if @msg is a well-formed NBDWS_CMD_EVENT message, else -EINVAL. */
int nbdws_nl_event_from_msg(struct nl_msg *msg, struct nbdws_nl_event *ev);

/* ---- nbdws_nl_module.c -------------------------------------------------- */

/*
 * Insert nbdws.ko: from @path (a .ko file) if not NULL, else by name with
 * modprobe semantics (dependencies, options, blacklist). Already loaded
 * counts as success. 0 or -errno with the reason in @err.
 */
int nbdws_nl_load_module(const char *path, struct nbdws_err *err);

/*
 * libkmod's own log lines while loading: dropped by default (the error
 * in @err says what failed); with @on, printed to stderr as
 * "PROGRAM: libkmod: ..." (nbdctl -v).
 */
void nbdws_nl_kmod_log(bool on);

#endif /* _NBDWS_NL_H */
