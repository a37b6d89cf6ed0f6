// SPDX-License-Identifier: GPL-2.0
/*
 * Bytes userspace read past the handshake (PREREAD) are parsed when the
 * connection is attached, before anything is read from the socket (issue
 * 17, "Receive layering"). No request has been sent then, but the peer
 * may already be talking: a browser in the ws-server role, or a server
 * pinging right after the upgrade. Here PREREAD holds a complete ping and
 * the first byte of a close frame whose rest the test then writes to the
 * socket. The kernel must answer the ping with a pong carrying its
 * payload once the connection is live (masked in the ws-client role, not
 * in the ws-server role), join the close frame across the two sources,
 * and end the connection as a WebSocket close with the peer's code and
 * reason. Both roles, a TCP pair, the test is the peer.
 */
#include "kselftest_harness.h"
#include "ws_util.h"

#define IMG_SIZE	(16 * TU_MIB)
#define WAIT_MS		30000
#define PING_DATA	"rx-preread"
#define CLOSE_CODE	4321
#define CLOSE_REASON	"bye"

FIXTURE(preread) {
	struct nl nl, ev;
	uint32_t index;
	bool connected;
	int cfd, sfd;
};

FIXTURE_VARIANT(preread) {
	uint32_t transport;
	bool kernel_masks;	/* the kernel masks what it sends */
};

FIXTURE_VARIANT_ADD(preread, kclient) {
	.transport = NBDWS_TRANSPORT_WS_CLIENT, .kernel_masks = true,
};

FIXTURE_VARIANT_ADD(preread, kserver) {
	.transport = NBDWS_TRANSPORT_WS_SERVER, .kernel_masks = false,
};

FIXTURE_SETUP(preread)
{
	self->cfd = -1;
	self->sfd = -1;
	ASSERT_EQ(0, nl_open(&self->nl));
	ASSERT_EQ(0, nl_open_events(&self->ev));
	ASSERT_EQ(0, tu_tcp_pair(&self->cfd, &self->sfd));
}

FIXTURE_TEARDOWN(preread)
{
	if (self->connected)
		nbdws_teardown_dev(&self->nl, self->index);
	if (self->cfd >= 0)
		close(self->cfd);
	if (self->sfd >= 0)
		close(self->sfd);
	nl_close(&self->ev);
	nl_close(&self->nl);
}

/*
 * One frame header and payload of @op with @len bytes at @p into @out,
 * masked (with a fixed key) when the peer's frames must be: the kernel
 * in the ws-server role gets masked frames. Returns its length.
 */
static size_t put_frame(u8 *out, u8 op, const void *p, size_t len,
			bool masked)
{
	static const u8 key[4] = { 0x5a, 0xc3, 0x0f, 0x96 };
	size_t n = 0, i;

	out[n++] = 0x80 | op;
	out[n++] = (masked ? 0x80 : 0) | (u8)len;
	if (masked) {
		memcpy(out + n, key, 4);
		n += 4;
	}
	for (i = 0; i < len; i++)
		out[n + i] = ((const u8 *)p)[i] ^ (masked ? key[i & 3] : 0);
	return n + len;
}

/* Read exactly @len bytes from @fd within @timeout_ms. */
static int read_exact(int fd, void *buf, size_t len, int timeout_ms)
{
	long long end = tu_deadline(timeout_ms);
	size_t done = 0;

	while (done < len) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long long left = end - tu_now_ms();
		ssize_t n;

		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(&pfd, 1, (int)left) <= 0)
			continue;
		n = read(fd, (u8 *)buf + done, len - done);
		if (n <= 0)
			return n ? -errno : -ECONNRESET;
		done += (size_t)n;
	}
	return 0;
}

/*
 * Read the kernel's frames until a pong: NBD requests (the partition
 * scan's reads) go unanswered. Returns 0 with its payload in @out.
 */
static int wait_pong(int fd, bool masked, u8 *out, size_t *out_len)
{
	long long end = tu_deadline(WAIT_MS);

	for (;;) {
		u8 h[2], key[4] = { 0 }, ext[8];
		u64 len;
		u8 *p;
		size_t i;
		int ret;

		ret = read_exact(fd, h, 2, (int)(end - tu_now_ms()));
		if (ret)
			return ret;
		len = h[1] & 0x7f;
		if (len == 126 || len == 127) {
			size_t el = len == 126 ? 2 : 8;

			ret = read_exact(fd, ext, el, WAIT_MS);
			if (ret)
				return ret;
			for (len = 0, i = 0; i < el; i++)
				len = len << 8 | ext[i];
		}
		if (!!(h[1] & 0x80) != masked)
			return -EPROTO;
		if (masked) {
			ret = read_exact(fd, key, 4, WAIT_MS);
			if (ret)
				return ret;
		}
		if (len > (1 << 24))
			return -EMSGSIZE;
		p = malloc(len ? len : 1);
		if (!p)
			return -ENOMEM;
		ret = read_exact(fd, p, len, WAIT_MS);
		for (i = 0; !ret && i < len; i++)
			p[i] ^= key[i & 3];
		if (!ret && (h[0] & 0x0f) == WS_OP_PONG && len <= 125) {
			memcpy(out, p, len);
			*out_len = len;
		}
		free(p);
		if (ret || (h[0] & 0x0f) == WS_OP_PONG)
			return ret;
	}
}

TEST_F_TIMEOUT(preread, ping_and_split_close, 180)
{
	struct nbdws_connect_args base;
	struct ws_handover h = { .fd = self->cfd };
	struct ws_dead_event w;
	u8 pre[64], close_frame[16], body[2 + sizeof(CLOSE_REASON) - 1];
	u8 pong[125];
	size_t pong_len = 0, n, cl;
	bool peer_masks = !variant->kernel_masks;
	int rc;

	/* A ping, then the first byte of a close frame. */
	body[0] = CLOSE_CODE >> 8;
	body[1] = CLOSE_CODE & 0xff;
	memcpy(body + 2, CLOSE_REASON, sizeof(CLOSE_REASON) - 1);
	n = put_frame(pre, WS_OP_PING, PING_DATA, sizeof(PING_DATA) - 1,
		      peer_masks);
	cl = put_frame(close_frame, WS_OP_CLOSE, body, sizeof(body),
		       peer_masks);
	pre[n++] = close_frame[0];
	h.preread = pre;
	h.preread_len = n;
	h.info.size = IMG_SIZE;

	nbdws_connect_defaults(&base, IMG_SIZE);
	base.timeout_ms = WAIT_MS;
	base.dead_timeout_ms = 1000;
	rc = ws_connect_dev(&self->nl, &h, variant->transport, 0, &base,
			    &self->index);
	ASSERT_EQ(0, rc) TH_LOG("CONNECT: %s", self->nl.extack);
	self->connected = true;
	close(self->cfd);
	self->cfd = -1;

	/* The ping from PREREAD is answered on the socket. */
	rc = wait_pong(self->sfd, variant->kernel_masks, pong, &pong_len);
	ASSERT_EQ(0, rc) TH_LOG("no pong: %s", strerror(-rc));
	ASSERT_EQ(sizeof(PING_DATA) - 1, pong_len);
	EXPECT_EQ(0, memcmp(pong, PING_DATA, pong_len));

	/* The device is still up: the close frame is not complete yet. */
	EXPECT_EQ(-ETIMEDOUT, nl_wait_event(&self->ev, self->index,
					    NBDWS_EVENT_CONN_DEAD, 500, NULL))
		TH_LOG("events: %s", self->ev.events_seen);

	/* Its rest comes on the socket. */
	ASSERT_EQ((ssize_t)(cl - 1), write(self->sfd, close_frame + 1, cl - 1));
	ASSERT_EQ(0, ws_wait_event(&self->ev, self->index,
				   NBDWS_EVENT_CONN_DEAD, WAIT_MS, &w))
		TH_LOG("events: %s", self->ev.events_seen);
	EXPECT_EQ(NBDWS_REASON_WS_CLOSE, w.ev.reason);
	EXPECT_TRUE(w.has_close_code);
	EXPECT_EQ(CLOSE_CODE, w.close_code);
	EXPECT_STREQ(CLOSE_REASON, w.close_reason);
}

TEST_HARNESS_MAIN
