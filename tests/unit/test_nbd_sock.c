// SPDX-License-Identifier: GPL-2.0
/*
 * TCP connect over several addresses (lib/nbd_sock.c), on loopback only:
 * the order addresses are tried in (families interleaved, RFC 8305), a
 * blackholed first address that must cost the attempt delay and not the
 * deadline, refusals that move on at once, and the error that names
 * every address tried when none answers.
 *
 * A blackholed address is a listener whose accept queue is full: Linux
 * drops the SYNs it cannot queue, without an answer, as a firewall that
 * drops packets would.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "nbd_sock.h"
#include "nbd_test_servers.h"

struct addr {
	struct addrinfo ai;
	struct sockaddr_storage ss;
};

/* Chain @n entries of @a into a getaddrinfo()-like list. */
static const struct addrinfo *chain(struct addr *a, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		a[i].ai.ai_next = i + 1 < n ? &a[i + 1].ai : NULL;
	return &a[0].ai;
}

static void addr_v4(struct addr *a, unsigned short port)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;

	memset(a, 0, sizeof(*a));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a->ai.ai_family = AF_INET;
	a->ai.ai_socktype = SOCK_STREAM;
	a->ai.ai_addr = (struct sockaddr *)sin;
	a->ai.ai_addrlen = sizeof(*sin);
}

static void addr_v6(struct addr *a, unsigned short port)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;

	memset(a, 0, sizeof(*a));
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(port);
	sin6->sin6_addr = in6addr_loopback;
	a->ai.ai_family = AF_INET6;
	a->ai.ai_socktype = SOCK_STREAM;
	a->ai.ai_addr = (struct sockaddr *)sin6;
	a->ai.ai_addrlen = sizeof(*sin6);
}

/* True once a non-blocking connect on @fd completed within @ms. */
static bool connects_within(int fd, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	socklen_t len = sizeof(int);
	int soerr = -1;

	if (poll(&pfd, 1, ms) != 1 ||
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len))
		return false;
	return soerr == 0;
}

static int nb_connect(unsigned short port)
{
	struct sockaddr_in sin = {
		.sin_family = AF_INET,
		.sin_port = htons(port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	if (fd >= 0 && connect(fd, (struct sockaddr *)&sin, sizeof(sin)) &&
	    errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * A listener that never answers a new SYN: backlog 0 takes one
 * connection (@filler, never accepted) and drops every later SYN. The
 * probe shows it really does.
 */
struct blackhole {
	int lfd, filler;
	unsigned short port;
};

static bool blackhole_open(struct blackhole *b)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	bool ok;
	int probe;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	b->lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (b->lfd < 0 || bind(b->lfd, (struct sockaddr *)&sin, sizeof(sin)) ||
	    listen(b->lfd, 0) ||
	    getsockname(b->lfd, (struct sockaddr *)&sin, &len))
		return false;
	b->port = ntohs(sin.sin_port);
	b->filler = nb_connect(b->port);
	if (b->filler < 0 || !connects_within(b->filler, 2000))
		return false;
	probe = nb_connect(b->port);
	ok = probe >= 0 && !connects_within(probe, 300);
	if (probe >= 0)
		close(probe);
	return ok;
}

static void blackhole_close(struct blackhole *b)
{
	close(b->filler);
	close(b->lfd);
}

/* A port on 127.0.0.1 that refuses: bound (so kept) but not listening. */
static int refusing_port(unsigned short *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) ||
	    getsockname(fd, (struct sockaddr *)&sin, &len))
		return -1;
	*port = ntohs(sin.sin_port);
	return fd;
}

static unsigned short peer_port(int fd)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	if (getpeername(fd, (struct sockaddr *)&sin, &len))
		return 0;
	return ntohs(sin.sin_port);
}

TEST(order_interleaves_families)
{
	struct addr a[6];
	const struct addrinfo *out[NBD_SOCK_MAX_ADDRS];
	size_t n;

	/* The resolver's order: v6 1, v6 2, v4 3, v4 4, v6 5, v4 6. */
	addr_v6(&a[0], 1);
	addr_v6(&a[1], 2);
	addr_v4(&a[2], 3);
	addr_v4(&a[3], 4);
	addr_v6(&a[4], 5);
	addr_v4(&a[5], 6);
	n = nbd_sock_order(chain(a, 6), out, NBD_SOCK_MAX_ADDRS);
	ASSERT_EQ(6, n);
	EXPECT_EQ(&a[0].ai, out[0]);
	EXPECT_EQ(&a[2].ai, out[1]);
	EXPECT_EQ(&a[1].ai, out[2]);
	EXPECT_EQ(&a[3].ai, out[3]);
	EXPECT_EQ(&a[4].ai, out[4]);
	EXPECT_EQ(&a[5].ai, out[5]);

	/* IPv4 first when the resolver says so; @max is respected. */
	n = nbd_sock_order(chain(&a[2], 4), out, 3);
	ASSERT_EQ(3, n);
	EXPECT_EQ(&a[2].ai, out[0]);
	EXPECT_EQ(&a[4].ai, out[1]);
	EXPECT_EQ(&a[3].ai, out[2]);

	/* One family: the resolver's order as it is. */
	n = nbd_sock_order(chain(a, 2), out, NBD_SOCK_MAX_ADDRS);
	ASSERT_EQ(2, n);
	EXPECT_EQ(&a[0].ai, out[0]);
	EXPECT_EQ(&a[1].ai, out[1]);
	EXPECT_EQ(0, nbd_sock_order(NULL, out, NBD_SOCK_MAX_ADDRS));
}

/* The first address never answers: the second is used, soon. */
TEST(blackholed_first_address)
{
	struct blackhole b;
	struct nbdws_err err = { "" };
	struct addr a[2];
	unsigned short good;
	long long t0, ms;
	int lfd, fd;

	ASSERT_TRUE(blackhole_open(&b));
	lfd = listen_loopback(&good);
	addr_v4(&a[0], b.port);
	addr_v4(&a[1], good);
	t0 = nbd_now_ms();
	fd = nbd_sock_connect_addrs(chain(a, 2), "test", 10000, &err);
	ms = nbd_now_ms() - t0;
	ASSERT_LE(0, fd) TH_LOG("%s", err.msg);
	EXPECT_EQ(good, peer_port(fd));
	/* 250 ms of attempt delay, not the 10 s deadline. */
	EXPECT_LE(200, ms);
	EXPECT_GT(2000, ms) TH_LOG("took %lld ms", ms);
	close(fd);
	close(lfd);
	blackhole_close(&b);
}

/* A refusal starts the next address at once, without the delay. */
TEST(refused_moves_on_at_once)
{
	struct nbdws_err err = { "" };
	struct addr a[2];
	unsigned short bad, good;
	long long t0, ms;
	int bfd, lfd, fd;

	bfd = refusing_port(&bad);
	ASSERT_LE(0, bfd);
	lfd = listen_loopback(&good);
	addr_v4(&a[0], bad);
	addr_v4(&a[1], good);
	t0 = nbd_now_ms();
	fd = nbd_sock_connect_addrs(chain(a, 2), "test", 10000, &err);
	ms = nbd_now_ms() - t0;
	ASSERT_LE(0, fd) TH_LOG("%s", err.msg);
	EXPECT_EQ(good, peer_port(fd));
	EXPECT_GT(200, ms) TH_LOG("took %lld ms", ms);
	close(fd);
	close(lfd);
	close(bfd);
}

/* None answers: the deadline holds and the error names each address. */
TEST(all_fail_names_each_address)
{
	char want[64];
	struct blackhole b;
	struct nbdws_err err = { "" };
	struct addr a[2];
	unsigned short bad;
	long long t0, ms;
	int bfd, rc;

	ASSERT_TRUE(blackhole_open(&b));
	bfd = refusing_port(&bad);
	ASSERT_LE(0, bfd);
	addr_v4(&a[0], b.port);
	addr_v4(&a[1], bad);
	t0 = nbd_now_ms();
	rc = nbd_sock_connect_addrs(chain(a, 2), "multi.test", 1000, &err);
	ms = nbd_now_ms() - t0;
	EXPECT_EQ(-ETIMEDOUT, rc);
	EXPECT_LE(950, ms);
	EXPECT_GT(2000, ms) TH_LOG("took %lld ms", ms);
	EXPECT_NE(NULL, strstr(err.msg, "cannot connect to multi.test: "))
		TH_LOG("%s", err.msg);
	snprintf(want, sizeof(want), "127.0.0.1:%u timed out after 1.", b.port);
	EXPECT_NE(NULL, strstr(err.msg, want)) TH_LOG("%s", err.msg);
	snprintf(want, sizeof(want), "127.0.0.1:%u %s", bad,
		 strerror(ECONNREFUSED));
	EXPECT_NE(NULL, strstr(err.msg, want)) TH_LOG("%s", err.msg);
	close(bfd);
	blackhole_close(&b);
}

/* Only refusals: their errno, and no wait for the deadline. */
TEST(all_refused)
{
	struct nbdws_err err = { "" };
	struct addr a[2];
	unsigned short p1, p2;
	long long t0;
	int f1, f2;

	f1 = refusing_port(&p1);
	f2 = refusing_port(&p2);
	ASSERT_LE(0, f1);
	ASSERT_LE(0, f2);
	addr_v4(&a[0], p1);
	addr_v4(&a[1], p2);
	t0 = nbd_now_ms();
	EXPECT_EQ(-ECONNREFUSED,
		  nbd_sock_connect_addrs(chain(a, 2), "h", 10000, &err));
	EXPECT_GT(1000, nbd_now_ms() - t0);
	close(f1);
	close(f2);
}

/* A deadline shorter than the attempts: the rest are reported untried. */
TEST(deadline_before_every_address_is_tried)
{
	struct blackhole b;
	struct nbdws_err err = { "" };
	struct addr a[4];
	int i, rc;

	ASSERT_TRUE(blackhole_open(&b));
	for (i = 0; i < 4; i++)
		addr_v4(&a[i], b.port);
	rc = nbd_sock_connect_addrs(chain(a, 4), "h", 400, &err);
	EXPECT_EQ(-ETIMEDOUT, rc);
	EXPECT_NE(NULL, strstr(err.msg, "; 2 more addresses not tried before the deadline"))
		TH_LOG("%s", err.msg);
	blackhole_close(&b);
}

TEST_HARNESS_MAIN
