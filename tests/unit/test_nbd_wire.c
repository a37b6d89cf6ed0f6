// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for common/nbd_wire.c: request encoding byte for byte against
 * hand-written wire images, reply header parsing however the bytes are
 * split, bad and structured magics, and the NBD error to errno mapping.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kselftest_harness.h"
#include "nbd_wire.h"

/* A simple reply: magic 67446698, error 0x00000005, cookie 0x8877...00. */
static const u8 reply_eio[NBDP_SIMPLE_REPLY_SIZE] = {
	0x67, 0x44, 0x66, 0x98,
	0x00, 0x00, 0x00, 0x05,
	0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11,
};

TEST(encode_read_request)
{
	static const u8 want[NBDP_REQUEST_SIZE] = {
		0x25, 0x60, 0x95, 0x13,		/* magic */
		0x00, 0x00,			/* flags */
		0x00, 0x00,			/* type: read */
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, /* cookie */
		0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x02, 0x00, /* offset */
		0x00, 0x10, 0x00, 0x00,		/* length 1 MiB */
	};
	struct nbd_wire_request req = {
		.type = NBDP_CMD_READ,
		.cookie = 0x0102030405060708ULL,
		.offset = 0x100000200ULL,
		.length = 1 << 20,
	};
	u8 out[NBDP_REQUEST_SIZE];

	memset(out, 0xaa, sizeof(out));
	nbd_wire_encode_request(out, &req);
	ASSERT_EQ(0, memcmp(out, want, sizeof(want)));
}

TEST(encode_write_fua_high_bits)
{
	static const u8 want[NBDP_REQUEST_SIZE] = {
		0x25, 0x60, 0x95, 0x13,
		0x00, 0x01,			/* FUA */
		0x00, 0x01,			/* write */
		0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0x88,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf0, 0x00,
		0xff, 0xff, 0xff, 0xfe,
	};
	struct nbd_wire_request req = {
		.flags = NBDP_CMD_FLAG_FUA,
		.type = NBDP_CMD_WRITE,
		.cookie = 0xffeeddccbbaa9988ULL,
		.offset = 0xfffffffffffff000ULL,
		.length = 0xfffffffe,
	};
	u8 out[NBDP_REQUEST_SIZE];

	nbd_wire_encode_request(out, &req);
	ASSERT_EQ(0, memcmp(out, want, sizeof(want)));
}

TEST(encode_trim_and_disc)
{
	static const u8 want_trim[NBDP_REQUEST_SIZE] = {
		0x25, 0x60, 0x95, 0x13, 0x00, 0x00, 0x00, 0x04,
		0, 0, 0, 0, 0, 0, 0, 0x2a,
		0, 0, 0, 0, 0, 0, 0x10, 0x00,
		0, 0, 0x20, 0x00,
	};
	static const u8 want_disc[NBDP_REQUEST_SIZE] = {
		0x25, 0x60, 0x95, 0x13, 0x00, 0x00, 0x00, 0x02,
	};
	struct nbd_wire_request trim = {
		.type = NBDP_CMD_TRIM, .cookie = 42, .offset = 4096,
		.length = 8192,
	};
	struct nbd_wire_request disc = { .type = NBDP_CMD_DISC };
	u8 out[NBDP_REQUEST_SIZE];

	nbd_wire_encode_request(out, &trim);
	ASSERT_EQ(0, memcmp(out, want_trim, sizeof(out)));
	nbd_wire_encode_request(out, &disc);
	ASSERT_EQ(0, memcmp(out, want_disc, sizeof(out)));
}

TEST(reply_whole)
{
	struct nbd_reply_parser p;
	struct nbd_wire_reply r = { 0 };
	size_t used = 99;

	nbd_reply_parser_init(&p);
	ASSERT_EQ(NBD_REPLY_DONE,
		  nbd_reply_parse(&p, reply_eio, sizeof(reply_eio), &used, &r));
	ASSERT_EQ(16, used);
	ASSERT_EQ(5, r.error);
	ASSERT_EQ(0x8877665544332211ULL, r.cookie);
	ASSERT_EQ(0, p.have);
}

/* Every two-piece split, then byte by byte, then all 3-piece splits. */
TEST(reply_every_split)
{
	struct nbd_reply_parser p;
	struct nbd_wire_reply r;
	size_t used, a, b;

	for (a = 0; a <= 16; a++) {
		nbd_reply_parser_init(&p);
		memset(&r, 0, sizeof(r));
		ASSERT_EQ(a == 16 ? NBD_REPLY_DONE : NBD_REPLY_MORE,
			  nbd_reply_parse(&p, reply_eio, a, &used, &r));
		ASSERT_EQ(a, used);
		if (a < 16) {
			ASSERT_EQ(NBD_REPLY_DONE,
				  nbd_reply_parse(&p, reply_eio + a, 16 - a,
						  &used, &r));
			ASSERT_EQ(16 - a, used);
		}
		ASSERT_EQ(5, r.error);
		ASSERT_EQ(0x8877665544332211ULL, r.cookie);
	}

	for (a = 0; a <= 16; a++) {
		for (b = a; b <= 16; b++) {
			int rc;

			nbd_reply_parser_init(&p);
			memset(&r, 0, sizeof(r));
			rc = nbd_reply_parse(&p, reply_eio, a, &used, &r);
			ASSERT_EQ(a == 16, rc == NBD_REPLY_DONE);
			if (a == 16)
				continue;
			rc = nbd_reply_parse(&p, reply_eio + a, b - a, &used, &r);
			ASSERT_EQ(b - a, used);
			if (b < 16) {
				ASSERT_EQ(NBD_REPLY_MORE, rc);
				rc = nbd_reply_parse(&p, reply_eio + b, 16 - b,
						     &used, &r);
				ASSERT_EQ(16 - b, used);
			}
			ASSERT_EQ(NBD_REPLY_DONE, rc);
			ASSERT_EQ(5, r.error);
			ASSERT_EQ(0x8877665544332211ULL, r.cookie);
		}
	}
}

/* Three replies back to back: the parser stops after each header. */
TEST(reply_stops_at_header_end)
{
	struct nbd_reply_parser p;
	struct nbd_wire_reply r;
	u8 buf[3 * 16 + 5];
	size_t used, off = 0;
	int i;

	for (i = 0; i < 3; i++) {
		memcpy(buf + 16 * i, reply_eio, 16);
		buf[16 * i + 15] = (u8)i;	/* cookie low byte = index */
		buf[16 * i + 7] = 0;		/* success */
	}
	memset(buf + 48, 0xee, 5);		/* payload that follows */

	nbd_reply_parser_init(&p);
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(NBD_REPLY_DONE,
			  nbd_reply_parse(&p, buf + off, sizeof(buf) - off,
					  &used, &r));
		ASSERT_EQ(16, used);
		ASSERT_EQ(0, r.error);
		ASSERT_EQ(0x8877665544332200ULL | i, r.cookie);
		off += used;
	}
	ASSERT_EQ(48, off);
}

TEST(reply_zero_length_feed)
{
	struct nbd_reply_parser p;
	struct nbd_wire_reply r;
	size_t used = 7;

	nbd_reply_parser_init(&p);
	ASSERT_EQ(NBD_REPLY_MORE, nbd_reply_parse(&p, reply_eio, 0, &used, &r));
	ASSERT_EQ(0, used);
	ASSERT_EQ(0, p.have);
}

TEST(reply_bad_magic)
{
	static const u8 bad[16] = { 0x67, 0x44, 0x66, 0x99, 0, 0, 0, 0 };
	struct nbd_reply_parser p;
	struct nbd_wire_reply r;
	size_t used;
	size_t a;

	nbd_reply_parser_init(&p);
	ASSERT_EQ(NBD_REPLY_BAD_MAGIC,
		  nbd_reply_parse(&p, bad, sizeof(bad), &used, &r));
	/* Caught on the magic itself, nothing past it consumed. */
	ASSERT_EQ(4, used);
	ASSERT_EQ(0x67446699U, nbd_reply_parser_magic(&p));
	/* Sticky: the rest of the bad header is never taken for a reply. */
	ASSERT_EQ(NBD_REPLY_BAD_MAGIC,
		  nbd_reply_parse(&p, bad + 4, 12, &used, &r));
	ASSERT_EQ(0, used);
	ASSERT_EQ(NBD_REPLY_BAD_MAGIC,
		  nbd_reply_parse(&p, bad + 4, 12, &used, &r));
	nbd_reply_parser_init(&p);
	ASSERT_EQ(NBD_REPLY_DONE,
		  nbd_reply_parse(&p, reply_eio, 16, &used, &r));

	/* Split inside the magic: still caught when byte 4 arrives. */
	for (a = 1; a < 4; a++) {
		nbd_reply_parser_init(&p);
		ASSERT_EQ(NBD_REPLY_MORE,
			  nbd_reply_parse(&p, bad, a, &used, &r));
		ASSERT_EQ(a, used);
		ASSERT_EQ(NBD_REPLY_BAD_MAGIC,
			  nbd_reply_parse(&p, bad + a, 16 - a, &used, &r));
		ASSERT_EQ(4 - a, used);
	}

	/* Magic that is fine so far must not fail before it is complete. */
	nbd_reply_parser_init(&p);
	ASSERT_EQ(NBD_REPLY_MORE, nbd_reply_parse(&p, bad, 3, &used, &r));
}

TEST(reply_structured_magic_is_bad)
{
	static const u8 sr[20] = {
		0x66, 0x8e, 0x33, 0xef,	/* structured reply magic */
		0x00, 0x01,		/* flags: done */
		0x00, 0x01,		/* type: offset data */
		1, 2, 3, 4, 5, 6, 7, 8,	/* cookie */
		0, 0, 0, 8,		/* length */
	};
	struct nbd_reply_parser p;
	struct nbd_wire_reply r;
	size_t used;

	nbd_reply_parser_init(&p);
	ASSERT_EQ(NBD_REPLY_BAD_MAGIC,
		  nbd_reply_parse(&p, sr, sizeof(sr), &used, &r));
	ASSERT_EQ(4, used);
	ASSERT_EQ(NBDP_STRUCTURED_REPLY_MAGIC, nbd_reply_parser_magic(&p));
}

/* A request header is not a reply: its magic must be refused. */
TEST(reply_request_magic_is_bad)
{
	struct nbd_wire_request req = { .type = NBDP_CMD_READ, .length = 1 };
	struct nbd_reply_parser p;
	struct nbd_wire_reply r;
	u8 out[NBDP_REQUEST_SIZE];
	size_t used;

	nbd_wire_encode_request(out, &req);
	nbd_reply_parser_init(&p);
	ASSERT_EQ(NBD_REPLY_BAD_MAGIC,
		  nbd_reply_parse(&p, out, sizeof(out), &used, &r));
}

TEST(errno_mapping)
{
	ASSERT_EQ(0, nbd_wire_errno(0));
	ASSERT_EQ(-EPERM, nbd_wire_errno(NBDP_EPERM));
	ASSERT_EQ(-EIO, nbd_wire_errno(NBDP_EIO));
	ASSERT_EQ(-ENOMEM, nbd_wire_errno(NBDP_ENOMEM));
	ASSERT_EQ(-EINVAL, nbd_wire_errno(NBDP_EINVAL));
	ASSERT_EQ(-ENOSPC, nbd_wire_errno(NBDP_ENOSPC));
	ASSERT_EQ(-EOVERFLOW, nbd_wire_errno(NBDP_EOVERFLOW));
	ASSERT_EQ(-EOPNOTSUPP, nbd_wire_errno(NBDP_ENOTSUP));
	ASSERT_EQ(-ENOTSUP, nbd_wire_errno(NBDP_ENOTSUP));
	ASSERT_EQ(-ESHUTDOWN, nbd_wire_errno(NBDP_ESHUTDOWN));
	/* Undefined values: an I/O error, never success or a positive. */
	ASSERT_EQ(-EIO, nbd_wire_errno(2));
	ASSERT_EQ(-EIO, nbd_wire_errno(1000));
	ASSERT_EQ(-EIO, nbd_wire_errno(0x80000000U));
	ASSERT_EQ(-EIO, nbd_wire_errno(0xffffffffU));
}

/* Pseudo-random headers: decode(encode-as-reply) returns the fields. */
TEST(reply_random_fields)
{
	struct nbd_reply_parser p;
	struct nbd_wire_reply r;
	unsigned int seed = 1;
	size_t used;
	int i, k;

	for (i = 0; i < 1000; i++) {
		u32 err = (u32)rand_r(&seed) ^ ((u32)rand_r(&seed) << 16);
		u64 cookie = 0;
		u8 buf[16] = { 0x67, 0x44, 0x66, 0x98 };

		for (k = 0; k < 8; k++)
			cookie = cookie << 8 | (u8)rand_r(&seed);
		for (k = 0; k < 4; k++)
			buf[4 + k] = (u8)(err >> (24 - 8 * k));
		for (k = 0; k < 8; k++)
			buf[8 + k] = (u8)(cookie >> (56 - 8 * k));
		nbd_reply_parser_init(&p);
		ASSERT_EQ(NBD_REPLY_DONE,
			  nbd_reply_parse(&p, buf, 16, &used, &r));
		ASSERT_EQ(err, r.error);
		ASSERT_EQ(cookie, r.cookie);
	}
}

TEST_HARNESS_MAIN
