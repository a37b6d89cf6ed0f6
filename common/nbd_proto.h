/* SPDX-License-Identifier: GPL-2.0 */
/*
 * NBD wire protocol constants (newstyle negotiation and transmission), as
 * specified in the NBD protocol document. Shared by nbdws.ko and userspace.
 * The NBDP_ prefix keeps them apart from <linux/nbd.h>.
 */
#ifndef _NBDWS_NBD_PROTO_H
#define _NBDWS_NBD_PROTO_H

/* Negotiation */
#define NBDP_INIT_PASSWD		0x4e42444d41474943ULL /* "NBDMAGIC" */
#define NBDP_IHAVEOPT			0x49484156454f5054ULL /* "IHAVEOPT" */
#define NBDP_OPT_REPLY_MAGIC		0x0003e889045565a9ULL
#define NBDP_OLDSTYLE_MAGIC		0x00420281861253ULL

/* Handshake flags (server) and client flags */
#define NBDP_FLAG_FIXED_NEWSTYLE	0x1
#define NBDP_FLAG_NO_ZEROES		0x2
#define NBDP_FLAG_C_FIXED_NEWSTYLE	0x1
#define NBDP_FLAG_C_NO_ZEROES		0x2

/* Options */
#define NBDP_OPT_EXPORT_NAME		1
#define NBDP_OPT_ABORT			2
#define NBDP_OPT_LIST			3
#define NBDP_OPT_STARTTLS		5
#define NBDP_OPT_INFO			6
#define NBDP_OPT_GO			7
#define NBDP_OPT_STRUCTURED_REPLY	8

/* Option replies */
#define NBDP_REP_ACK			1
#define NBDP_REP_SERVER			2
#define NBDP_REP_INFO			3
#define NBDP_REP_FLAG_ERROR		0x80000000U
#define NBDP_REP_ERR_UNSUP		(NBDP_REP_FLAG_ERROR | 1)
#define NBDP_REP_ERR_POLICY		(NBDP_REP_FLAG_ERROR | 2)
#define NBDP_REP_ERR_INVALID		(NBDP_REP_FLAG_ERROR | 3)
#define NBDP_REP_ERR_PLATFORM		(NBDP_REP_FLAG_ERROR | 4)
#define NBDP_REP_ERR_TLS_REQD		(NBDP_REP_FLAG_ERROR | 5)
#define NBDP_REP_ERR_UNKNOWN		(NBDP_REP_FLAG_ERROR | 6)
#define NBDP_REP_ERR_SHUTDOWN		(NBDP_REP_FLAG_ERROR | 7)
#define NBDP_REP_ERR_BLOCK_SIZE_REQD	(NBDP_REP_FLAG_ERROR | 8)
#define NBDP_REP_ERR_TOO_BIG		(NBDP_REP_FLAG_ERROR | 9)

/* NBD_REP_INFO types */
#define NBDP_INFO_EXPORT		0
#define NBDP_INFO_NAME			1
#define NBDP_INFO_DESCRIPTION		2
#define NBDP_INFO_BLOCK_SIZE		3

/* Transmission flags (16 bits on the wire) */
#define NBDP_FLAG_HAS_FLAGS		0x1
#define NBDP_FLAG_READ_ONLY		0x2
#define NBDP_FLAG_SEND_FLUSH		0x4
#define NBDP_FLAG_SEND_FUA		0x8
#define NBDP_FLAG_ROTATIONAL		0x10
#define NBDP_FLAG_SEND_TRIM		0x20
#define NBDP_FLAG_SEND_WRITE_ZEROES	0x40
#define NBDP_FLAG_SEND_DF		0x80
#define NBDP_FLAG_CAN_MULTI_CONN	0x100
#define NBDP_FLAG_SEND_RESIZE		0x200
#define NBDP_FLAG_SEND_CACHE		0x400
#define NBDP_FLAG_SEND_FAST_ZERO	0x800

/* Transmission */
#define NBDP_REQUEST_MAGIC		0x25609513U
#define NBDP_SIMPLE_REPLY_MAGIC		0x67446698U
#define NBDP_STRUCTURED_REPLY_MAGIC	0x668e33efU

#define NBDP_REQUEST_SIZE		28
#define NBDP_SIMPLE_REPLY_SIZE		16

#define NBDP_CMD_READ			0
#define NBDP_CMD_WRITE			1
#define NBDP_CMD_DISC			2
#define NBDP_CMD_FLUSH			3
#define NBDP_CMD_TRIM			4
#define NBDP_CMD_CACHE			5
#define NBDP_CMD_WRITE_ZEROES		6

#define NBDP_CMD_FLAG_FUA		0x1
#define NBDP_CMD_FLAG_NO_HOLE		0x2

/* Error values in replies (NBD numbering, not the host's errno) */
#define NBDP_EPERM			1
#define NBDP_EIO			5
#define NBDP_ENOMEM			12
#define NBDP_EINVAL			22
#define NBDP_ENOSPC			28
#define NBDP_EOVERFLOW			75
#define NBDP_ENOTSUP			95
#define NBDP_ESHUTDOWN			108

#endif /* _NBDWS_NBD_PROTO_H */
