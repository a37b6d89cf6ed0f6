/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nbdctl: talking to the "nbdws" generic netlink family with libnl-genl-3.
 */
#ifndef _NBDCTL_GENL_H
#define _NBDCTL_GENL_H

#include <stdbool.h>
#include <stdint.h>

#include <netlink/attr.h>
#include <netlink/msg.h>

struct nbdctl_nl {
	struct nl_sock *sk;
	int family;
	int events_grp;			/* multicast group id, once resolved */
	char extack[256];		/* kernel's message for the last error */
};

/*
 * Open a socket and resolve the family, loading nbdws.ko with libkmod
 * when the family is missing (see module.c). Returns 0, or an exit code
 * (NBDCTL_EXIT_NOMOD / _FAIL) after printing what to do.
 */
int nbdctl_nl_open(struct nbdctl_nl *nl);
/* Also join the events multicast group (for monitor and --persist). */
int nbdctl_nl_subscribe(struct nbdctl_nl *nl);
void nbdctl_nl_close(struct nbdctl_nl *nl);

/* A new request for @cmd; @flags e.g. NLM_F_DUMP. NULL on ENOMEM. */
struct nl_msg *nbdctl_nl_msg(struct nbdctl_nl *nl, uint8_t cmd, int flags);

/* Called with the attribute stream of one reply; < 0 marks it bad. */
typedef int (*nbdctl_nl_cb)(struct nlattr *attrs, int len, void *arg);

/*
 * Send @msg (consumed) and wait for its ACK or the end of its dump. @cb,
 * if set, runs for each reply message with its attribute stream.
 * Returns 0 or a negative errno; the kernel's extack text, if any, is in
 * nl->extack.
 */
int nbdctl_nl_request(struct nbdctl_nl *nl, struct nl_msg *msg,
		      nbdctl_nl_cb cb, void *arg);

/*
 * Print "nbdctl: WHAT: strerror (kernel: extack)" plus a hint for common
 * errnos (EPERM: needs CAP_SYS_ADMIN, ENODEV: no such device).
 */
void nbdctl_nl_perror(struct nbdctl_nl *nl, int rc, const char *what);

/* Begin a nested attribute with NLA_F_NESTED set (strict kernels want it). */
struct nlattr *nbdctl_nest_start(struct nl_msg *msg, int type);

/* Safe attribute getters: false when absent or too short. */
bool nbdctl_get_u16(const struct nlattr *a, uint16_t *v);
bool nbdctl_get_u32(const struct nlattr *a, uint32_t *v);
bool nbdctl_get_u64(const struct nlattr *a, uint64_t *v);
bool nbdctl_get_s32(const struct nlattr *a, int32_t *v);
/* Copy a string attribute into @buf, truncating and sanitising. */
bool nbdctl_get_str(const struct nlattr *a, char *buf, size_t len);

/* module.c: insert nbdws.ko; 0 or -errno with a reason in @why. */
int nbdctl_load_module(const char *path, char *why, size_t len);

#endif /* _NBDCTL_GENL_H */
