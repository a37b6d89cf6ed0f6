// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for lib/nbdws_nl*.c without the module: messages are built
 * with libnl as the kernel would send them, then decoded. Covers event
 * decoding (nested connection ids, sanitised strings, messages that are
 * not events), STATUS decoding (top-level and NBDWS_A_DEVICE layouts,
 * short attributes ignored, the connection cap) and the connection nest
 * nbdctl and the relay put in CONNECT/RECONFIGURE.
 */
#include <errno.h>
#include <string.h>

#include "kselftest_harness.h"

#include <netlink/genl/genl.h>

#include "nbdws_nl.h"

#define FAKE_FAMILY 0x20

static struct nl_msg *new_msg(uint8_t cmd)
{
	struct nl_msg *msg = nlmsg_alloc();

	if (msg && !genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, FAKE_FAMILY, 0,
				0, cmd, NBDWS_GENL_VERSION)) {
		nlmsg_free(msg);
		return NULL;
	}
	return msg;
}

static struct nlattr *attrs_of(struct nl_msg *msg, int *len)
{
	struct genlmsghdr *g = nlmsg_data(nlmsg_hdr(msg));

	*len = genlmsg_attrlen(g, 0);
	return genlmsg_attrdata(g, 0);
}

TEST(event_dead_with_ws_close)
{
	static const char reason[] = "bye\x01\n\x7f.";
	struct nl_msg *msg = new_msg(NBDWS_CMD_EVENT);
	struct nbdws_nl_event ev;
	struct nlattr *conn;

	ASSERT_NE(NULL, msg);
	ASSERT_EQ(0, nla_put_u32(msg, NBDWS_A_INDEX, 3));
	ASSERT_EQ(0, nla_put_u32(msg, NBDWS_A_EVENT, NBDWS_EVENT_CONN_DEAD));
	ASSERT_EQ(0, nla_put_u32(msg, NBDWS_A_REASON, NBDWS_REASON_WS_CLOSE));
	ASSERT_EQ(0, nla_put_u16(msg, NBDWS_A_WS_CLOSE_CODE, 1000));
	ASSERT_EQ(0, nla_put_string(msg, NBDWS_A_WS_CLOSE_REASON, reason));
	conn = nbdws_nl_nest_start(msg, NBDWS_A_CONN);
	ASSERT_NE(NULL, conn);
	ASSERT_EQ(NLA_F_NESTED, conn->nla_type & NLA_F_NESTED);
	ASSERT_EQ(0, nla_put_u32(msg, NBDWS_CONN_A_ID, 2));
	nla_nest_end(msg, conn);

	ASSERT_EQ(0, nbdws_nl_event_from_msg(msg, &ev));
	EXPECT_EQ(3, ev.index);
	EXPECT_EQ(NBDWS_EVENT_CONN_DEAD, ev.event);
	EXPECT_TRUE(ev.has_reason);
	EXPECT_EQ(NBDWS_REASON_WS_CLOSE, ev.reason);
	EXPECT_TRUE(ev.has_ws_close);
	EXPECT_EQ(1000, ev.ws_close_code);
	/* Control bytes from the peer's close frame never reach a log. */
	EXPECT_STREQ("bye???.", ev.ws_close_reason);
	EXPECT_TRUE(ev.has_conn);
	EXPECT_EQ(2, ev.conn_id);
	EXPECT_STREQ("nbdws3", ev.disk);
	nlmsg_free(msg);
}

TEST(event_conn_id_in_conns_list_and_disk_name)
{
	struct nl_msg *msg = new_msg(NBDWS_CMD_EVENT);
	struct nbdws_nl_event ev;
	struct nlattr *conns, *conn;

	ASSERT_NE(NULL, msg);
	ASSERT_EQ(0, nla_put_u32(msg, NBDWS_A_INDEX, 7));
	ASSERT_EQ(0, nla_put_u32(msg, NBDWS_A_EVENT, NBDWS_EVENT_RECONNECTED));
	ASSERT_EQ(0, nla_put_string(msg, NBDWS_A_DISK_NAME, "nbdws7"));
	conns = nbdws_nl_nest_start(msg, NBDWS_A_CONNS);
	conn = nbdws_nl_nest_start(msg, NBDWS_A_CONN);
	ASSERT_EQ(0, nla_put_u32(msg, NBDWS_CONN_A_ID, 5));
	nla_nest_end(msg, conn);
	nla_nest_end(msg, conns);

	ASSERT_EQ(0, nbdws_nl_event_from_msg(msg, &ev));
	EXPECT_EQ(NBDWS_EVENT_RECONNECTED, ev.event);
	EXPECT_FALSE(ev.has_reason);
	EXPECT_FALSE(ev.has_ws_close);
	EXPECT_TRUE(ev.has_conn);
	EXPECT_EQ(5, ev.conn_id);
	EXPECT_STREQ("nbdws7", ev.disk);
	nlmsg_free(msg);
}

TEST(not_an_event)
{
	struct nbdws_nl_event ev;
	struct nl_msg *msg;

	/* Another command. */
	msg = new_msg(NBDWS_CMD_STATUS);
	ASSERT_NE(NULL, msg);
	ASSERT_EQ(0, nla_put_u32(msg, NBDWS_A_INDEX, 1));
	ASSERT_EQ(0, nla_put_u32(msg, NBDWS_A_EVENT, NBDWS_EVENT_CONNECTED));
	EXPECT_EQ(-EINVAL, nbdws_nl_event_from_msg(msg, &ev));
	nlmsg_free(msg);

	/* No NBDWS_A_EVENT. */
	msg = new_msg(NBDWS_CMD_EVENT);
	ASSERT_EQ(0, nla_put_u32(msg, NBDWS_A_INDEX, 1));
	EXPECT_EQ(-EINVAL, nbdws_nl_event_from_msg(msg, &ev));
	nlmsg_free(msg);

	/* An index too short to be a u32 counts as absent. */
	msg = new_msg(NBDWS_CMD_EVENT);
	ASSERT_EQ(0, nla_put_u16(msg, NBDWS_A_INDEX, 1));
	ASSERT_EQ(0, nla_put_u32(msg, NBDWS_A_EVENT, NBDWS_EVENT_CONNECTED));
	EXPECT_EQ(-EINVAL, nbdws_nl_event_from_msg(msg, &ev));
	nlmsg_free(msg);
}

static void put_conn_status(struct __test_metadata *_metadata,
			    struct nl_msg *msg, uint32_t id, uint32_t state,
			    uint64_t reads)
{
	struct nlattr *conn, *stats;

	conn = nbdws_nl_nest_start(msg, NBDWS_A_CONN);
	ASSERT_NE(NULL, conn);
	ASSERT_EQ(0, nla_put_u32(msg, NBDWS_CONN_A_ID, id));
	ASSERT_EQ(0, nla_put_u32(msg, NBDWS_CONN_A_TRANSPORT,
				 NBDWS_TRANSPORT_WS_SERVER));
	ASSERT_EQ(0, nla_put_u32(msg, NBDWS_CONN_A_STATE, state));
	ASSERT_EQ(0, nla_put_u32(msg, NBDWS_CONN_A_REASON,
				 state ? NBDWS_REASON_PEER_CLOSED : 0));
	stats = nbdws_nl_nest_start(msg, NBDWS_CONN_A_STATS);
	ASSERT_EQ(0, nla_put_u64(msg, NBDWS_STAT_A_READS, reads));
	ASSERT_EQ(0, nla_put_u64(msg, NBDWS_STAT_A_READ_BYTES, reads * 4096));
	nla_nest_end(msg, stats);
	nla_nest_end(msg, conn);
}

TEST(status_top_level_device)
{
	struct nl_msg *msg = new_msg(NBDWS_CMD_STATUS);
	struct nbdws_dev_list list = { 0 };
	const struct nbdws_dev_status *d;
	struct nlattr *conns, *attrs;
	uint32_t short_size = 1;
	int len;

	ASSERT_NE(NULL, msg);
	ASSERT_EQ(0, nla_put_u32(msg, NBDWS_A_INDEX, 4));
	/* A u64 sent as 4 bytes must not be read past its end. */
	ASSERT_EQ(0, nla_put(msg, NBDWS_A_SIZE_BYTES, sizeof(short_size),
			     &short_size));
	ASSERT_EQ(0, nla_put_u32(msg, NBDWS_A_STATE, NBDWS_DEV_DEAD_WAIT));
	ASSERT_EQ(0, nla_put_u32(msg, NBDWS_A_DEAD_TIMEOUT_MS, 60000));
	ASSERT_EQ(0, nla_put_string(msg, NBDWS_A_BACKEND, "relay\tdisk0"));
	conns = nbdws_nl_nest_start(msg, NBDWS_A_CONNS);
	put_conn_status(_metadata, msg, 0, NBDWS_CONN_DEAD, 5);
	nla_nest_end(msg, conns);

	attrs = attrs_of(msg, &len);
	ASSERT_EQ(0, nbdws_dev_status_parse(attrs, len, &list));
	ASSERT_EQ(1, list.n);
	d = &list.v[0];
	EXPECT_EQ(4, d->index);
	EXPECT_STREQ("nbdws4", d->disk);
	EXPECT_FALSE(NBDWS_DEV_HAS(d, NBDWS_A_SIZE_BYTES));
	EXPECT_EQ(0, d->size);
	EXPECT_TRUE(NBDWS_DEV_HAS(d, NBDWS_A_STATE));
	EXPECT_EQ(NBDWS_DEV_DEAD_WAIT, d->state);
	EXPECT_EQ(60000, d->dead_timeout_ms);
	EXPECT_FALSE(NBDWS_DEV_HAS(d, NBDWS_A_TIMEOUT_MS));
	EXPECT_STREQ("relay?disk0", d->backend);
	ASSERT_EQ(1, d->nconns);
	EXPECT_EQ(NBDWS_TRANSPORT_WS_SERVER, d->conns[0].transport);
	EXPECT_EQ(NBDWS_CONN_DEAD, d->conns[0].state);
	EXPECT_EQ(NBDWS_REASON_PEER_CLOSED, d->conns[0].reason);
	EXPECT_TRUE(d->conns[0].has_stats);
	EXPECT_EQ(5, d->conns[0].stats[NBDWS_STAT_A_READS]);
	EXPECT_EQ(5 * 4096, d->conns[0].stats[NBDWS_STAT_A_READ_BYTES]);
	EXPECT_EQ(0, d->conns[0].stats[NBDWS_STAT_A_WRITES]);
	nbdws_dev_list_free(&list);
	EXPECT_EQ(NULL, list.v);
	nlmsg_free(msg);
}

TEST(status_device_nests_and_conn_cap)
{
	struct nl_msg *msg = new_msg(NBDWS_CMD_STATUS);
	struct nbdws_dev_list list = { 0 };
	struct nlattr *dev, *attrs;
	unsigned int i;
	int len;

	ASSERT_NE(NULL, msg);
	dev = nbdws_nl_nest_start(msg, NBDWS_A_DEVICE);
	ASSERT_EQ(0, nla_put_u32(msg, NBDWS_A_INDEX, 9));
	ASSERT_EQ(0, nla_put_u64(msg, NBDWS_A_SIZE_BYTES, 1ULL << 40));
	ASSERT_EQ(0, nla_put_string(msg, NBDWS_A_DISK_NAME, "nbdws9"));
	/* More top-level NBDWS_A_CONN than a device can have. */
	for (i = 0; i < NBDWS_MAX_CONNS + 3; i++)
		put_conn_status(_metadata, msg, i, NBDWS_CONN_ALIVE, i);
	nla_nest_end(msg, dev);
	/* A nest without an index is not a device. */
	dev = nbdws_nl_nest_start(msg, NBDWS_A_DEVICE);
	ASSERT_EQ(0, nla_put_u32(msg, NBDWS_A_STATE, NBDWS_DEV_RUNNING));
	nla_nest_end(msg, dev);
	dev = nbdws_nl_nest_start(msg, NBDWS_A_DEVICE);
	ASSERT_EQ(0, nla_put_u32(msg, NBDWS_A_INDEX, 1));
	nla_nest_end(msg, dev);

	attrs = attrs_of(msg, &len);
	ASSERT_EQ(0, nbdws_dev_status_parse(attrs, len, &list));
	ASSERT_EQ(2, list.n);
	EXPECT_EQ(9, list.v[0].index);
	EXPECT_EQ(1ULL << 40, list.v[0].size);
	EXPECT_TRUE(NBDWS_DEV_HAS(&list.v[0], NBDWS_A_SIZE_BYTES));
	EXPECT_EQ(NBDWS_MAX_CONNS, list.v[0].nconns);
	EXPECT_EQ(NBDWS_MAX_CONNS - 1,
		  list.v[0].conns[NBDWS_MAX_CONNS - 1].id);
	EXPECT_EQ(1, list.v[1].index);
	EXPECT_EQ(0, list.v[1].nconns);
	nbdws_dev_list_free(&list);
	nlmsg_free(msg);
}

TEST(put_conn_round_trip)
{
	static const uint8_t pre[] = { 0x82, 0x84, 1, 2, 3, 4, 5 };
	struct nlattr *tb[NBDWS_CONN_A_MAX + 1], *conn, *attrs;
	struct nl_msg *msg = new_msg(NBDWS_CMD_CONNECT);
	int32_t fd;
	int len;

	ASSERT_NE(NULL, msg);
	ASSERT_EQ(0, nbdws_nl_put_conn(msg, 11, NBDWS_TRANSPORT_WS_SERVER,
				       pre, sizeof(pre), 0, -1));
	ASSERT_EQ(0, nbdws_nl_put_conn(msg, 12, NBDWS_TRANSPORT_PLAIN,
				       NULL, 0, 500, 0));
	attrs = attrs_of(msg, &len);

	conn = nla_find(attrs, len, NBDWS_A_CONN);
	ASSERT_NE(NULL, conn);
	ASSERT_EQ(0, nla_parse_nested(tb, NBDWS_CONN_A_MAX, conn, NULL));
	ASSERT_TRUE(nbdws_nl_get_s32(tb[NBDWS_CONN_A_FD], &fd));
	EXPECT_EQ(11, fd);
	EXPECT_EQ(NBDWS_TRANSPORT_WS_SERVER,
		  nla_get_u32(tb[NBDWS_CONN_A_TRANSPORT]));
	ASSERT_NE(NULL, tb[NBDWS_CONN_A_PREREAD]);
	ASSERT_EQ(sizeof(pre), nla_len(tb[NBDWS_CONN_A_PREREAD]));
	EXPECT_EQ(0, memcmp(pre, nla_data(tb[NBDWS_CONN_A_PREREAD]),
			    sizeof(pre)));
	/* Ping 0 and id -1 mean "not sent", not "sent as 0". */
	EXPECT_EQ(NULL, tb[NBDWS_CONN_A_PING_MS]);
	EXPECT_EQ(NULL, tb[NBDWS_CONN_A_ID]);

	/* The second nest. */
	conn = nla_next(conn, &len);
	ASSERT_TRUE(nla_ok(conn, len));
	ASSERT_EQ(0, nla_parse_nested(tb, NBDWS_CONN_A_MAX, conn, NULL));
	ASSERT_TRUE(nbdws_nl_get_s32(tb[NBDWS_CONN_A_FD], &fd));
	EXPECT_EQ(12, fd);
	EXPECT_EQ(NULL, tb[NBDWS_CONN_A_PREREAD]);
	ASSERT_NE(NULL, tb[NBDWS_CONN_A_PING_MS]);
	EXPECT_EQ(500, nla_get_u32(tb[NBDWS_CONN_A_PING_MS]));
	ASSERT_NE(NULL, tb[NBDWS_CONN_A_ID]);
	EXPECT_EQ(0, nla_get_u32(tb[NBDWS_CONN_A_ID]));
	nlmsg_free(msg);
}

TEST(get_str_truncates_and_sanitises)
{
	struct nl_msg *msg = new_msg(NBDWS_CMD_STATUS);
	struct nlattr *a, *attrs;
	char buf[6];
	int len;

	ASSERT_NE(NULL, msg);
	ASSERT_EQ(0, nla_put_string(msg, NBDWS_A_BACKEND, "a\x1b[2Jbcdefgh"));
	attrs = attrs_of(msg, &len);
	a = nla_find(attrs, len, NBDWS_A_BACKEND);
	ASSERT_TRUE(nbdws_nl_get_str(a, buf, sizeof(buf)));
	EXPECT_STREQ("a?[2J", buf);
	EXPECT_FALSE(nbdws_nl_get_str(NULL, buf, sizeof(buf)));
	EXPECT_FALSE(nbdws_nl_get_str(a, buf, 0));
	nlmsg_free(msg);
}

/* What the kernel hands back may come from a peer: C1 and bad UTF-8 too. */
TEST(get_str_keeps_utf8_and_drops_c1)
{
	struct nl_msg *msg = new_msg(NBDWS_CMD_STATUS);
	struct nlattr *a, *attrs;
	char buf[64];
	int len;

	ASSERT_NE(NULL, msg);
	ASSERT_EQ(0, nla_put_string(msg, NBDWS_A_BACKEND,
				    "\xe6\x97\xa5\xc2\x9b" "2J\xed\xa0\x80\xc0\xaf"));
	attrs = attrs_of(msg, &len);
	a = nla_find(attrs, len, NBDWS_A_BACKEND);
	ASSERT_TRUE(nbdws_nl_get_str(a, buf, sizeof(buf)));
	EXPECT_STREQ("\xe6\x97\xa5?2J?????", buf);
	/* Truncation never leaves half a character: 4 bytes hold "日" only. */
	ASSERT_TRUE(nbdws_nl_get_str(a, buf, 5));
	EXPECT_STREQ("\xe6\x97\xa5?", buf);
	ASSERT_TRUE(nbdws_nl_get_str(a, buf, 3));
	EXPECT_STREQ("", buf);
	nlmsg_free(msg);
}

TEST_HARNESS_MAIN
