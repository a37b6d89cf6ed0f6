/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Client side of the NBD handshake (newstyle negotiation), transport
 * agnostic: all I/O goes through a struct nbd_xport.
 *
 * - nbd_handshake_go():   NBD_OPT_GO (falling back to NBD_OPT_EXPORT_NAME
 *                         when the server answers NBD_REP_ERR_UNSUP); on
 *                         success the connection is in the transmission
 *                         phase, ready to be handed to nbdws.ko.
 * - nbd_handshake_info(): NBD_OPT_INFO, then NBD_OPT_ABORT (or, on servers
 *                         that only know EXPORT_NAME, EXPORT_NAME then
 *                         NBD_CMD_DISC); the connection is finished.
 * - nbd_handshake_list(): NBD_OPT_LIST, then NBD_OPT_ABORT.
 *
 * Oldstyle servers are refused. Every length the server sends is bounded
 * and every value checked before use; strings from the server have
 * control characters replaced so they are safe to print.
 */
#ifndef _NBDWS_NBD_HANDSHAKE_H
#define _NBDWS_NBD_HANDSHAKE_H

#include <stdbool.h>

#include "nbdws_types.h"
#include "nbd_xport.h"
#include "nbdws_err.h"

/* Block size constraints assumed when the server states none (NBD spec). */
#define NBD_DEFAULT_BLOCK_MIN	1U
#define NBD_DEFAULT_BLOCK_PREF	4096U
#define NBD_DEFAULT_BLOCK_MAX	(32U << 20)

/* Largest option reply payload accepted: two strings plus headers. */
#define NBD_MAX_OPT_REPLY	(2 * 4096 + 64)
/* Most NBD_REP_INFO / NBD_REP_SERVER replies accepted for one option. */
#define NBD_MAX_REPLIES		4096

struct nbd_export_info {
	u64 size;			/* bytes */
	u16 tflags;			/* NBDP_FLAG_* transmission flags */
	u16 hs_flags;			/* server handshake flags */
	u32 block_min;
	u32 block_pref;
	u32 block_max;
	bool block_size_given;		/* NBD_INFO_BLOCK_SIZE was received */
	bool used_export_name;		/* fell back to NBD_OPT_EXPORT_NAME */
	char *name;			/* canonical name if the server said */
	char *description;		/* NULL when none */
};

struct nbd_export_entry {
	char *name;
	char *description;		/* "" when none */
};

struct nbd_export_list {
	struct nbd_export_entry *v;
	size_t n;
};

/*
 * All return 0 or a negative errno with a message in @err:
 * -ENOENT export unknown, -EACCES refused by policy or TLS required,
 * -EOPNOTSUPP the server lacks what was asked, -EPROTO protocol violation,
 * -ECONNRESET server closed, -ETIMEDOUT, and transport errors.
 * @info / @list are filled only on success; free with the _free helpers.
 */
int nbd_handshake_go(const struct nbd_xport *x, const char *export_name,
		     struct nbd_export_info *info, struct nbdws_err *err);
int nbd_handshake_info(const struct nbd_xport *x, const char *export_name,
		       struct nbd_export_info *info, struct nbdws_err *err);
int nbd_handshake_list(const struct nbd_xport *x, struct nbd_export_list *list,
		       struct nbdws_err *err);

void nbd_export_info_free(struct nbd_export_info *info);
void nbd_export_list_free(struct nbd_export_list *list);

/* Short name of transmission flag bit @bit ("read-only", ...) or NULL. */
const char *nbd_tflag_name(unsigned int bit);

#endif /* _NBDWS_NBD_HANDSHAKE_H */
