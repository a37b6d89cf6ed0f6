// SPDX-License-Identifier: GPL-2.0
/*
 * Name resolution under the dial's deadline (lib/nbd_resolve.c, through
 * nbd_sock_connect_tcp()).
 *
 * A DNS server that never answers is made for real: the test enters new
 * user, mount and network namespaces, binds a UDP socket on
 * 127.0.0.1:53 that reads nothing, and bind-mounts a resolv.conf naming
 * it over /etc/resolv.conf. glibc's resolver then waits its full
 * "timeout:3 attempts:1" for each name, as it would for an unreachable
 * server; a plain getaddrinfo() would hold the connect that long,
 * whatever its deadline. Where namespaces are not allowed the test is
 * skipped.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "nbd_resolve.h"
#include "nbd_sock.h"
#include "nbd_test_servers.h"

/* How long the blackholed resolver waits for one name (see below). */
#define RESOLVER_WAIT_MS	3000

static bool write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	bool ok;

	if (fd < 0)
		return false;
	ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
	close(fd);
	return ok;
}

/* Root in a new user namespace, with mount and network namespaces. */
static bool enter_namespaces(void)
{
	char map[64];
	unsigned int uid = getuid(), gid = getgid();

	if (unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET))
		return false;
	snprintf(map, sizeof(map), "0 %u 1", uid);
	if (!write_file("/proc/self/uid_map", map))
		return false;
	/* gid_map may only be written once setgroups() is denied. */
	write_file("/proc/self/setgroups", "deny");
	snprintf(map, sizeof(map), "0 %u 1", gid);
	if (!write_file("/proc/self/gid_map", map))
		return false;
	/* Keep the resolv.conf bind mount to this namespace. */
	return mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0;
}

static bool loopback_up(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	bool ok;

	if (fd < 0)
		return false;
	ok = !ioctl(fd, SIOCGIFFLAGS, &ifr);
	ifr.ifr_flags |= IFF_UP;
	ok = ok && !ioctl(fd, SIOCSIFFLAGS, &ifr);
	close(fd);
	return ok;
}

/* A DNS server that takes queries and never answers: returns its fd. */
static int silent_dns(void)
{
	struct sockaddr_in sin = {
		.sin_family = AF_INET,
		.sin_port = htons(53),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof(sin))) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/*
 * /etc/resolv.conf names the silent server, with one 3 s try per query
 * (A and AAAA go out together): a lookup ends after RESOLVER_WAIT_MS.
 */
static bool use_silent_dns(char *path, size_t len)
{
	static const char conf[] =
		"nameserver 127.0.0.1\noptions timeout:3 attempts:1\n";
	int fd;

	snprintf(path, len, "/tmp/nbdws-resolv.XXXXXX");
	fd = mkstemp(path);
	if (fd < 0)
		return false;
	if (write(fd, conf, strlen(conf)) != (ssize_t)strlen(conf)) {
		close(fd);
		return false;
	}
	close(fd);
	return mount(path, "/etc/resolv.conf", NULL, MS_BIND, NULL) == 0;
}

/*
 * The connect timeout bounds the lookup: 300 ms, not the resolver's 3 s.
 * The request given up on is freed once its resolver thread is done.
 */
TEST(silent_dns_ends_at_the_deadline)
{
	struct nbdws_err err = { "" };
	char conf[64];
	long long t0, ms;
	int dns, rc;

	if (!enter_namespaces())
		SKIP(return, "no user namespaces here: %s", strerror(errno));
	ASSERT_TRUE(loopback_up());
	dns = silent_dns();
	ASSERT_LE(0, dns);
	ASSERT_TRUE(use_silent_dns(conf, sizeof(conf)));
	unlink(conf);	/* the mount keeps it */

	t0 = nbd_now_ms();
	rc = nbd_sock_connect_tcp("blackhole.nbdws.test", "10809", 300, &err);
	ms = nbd_now_ms() - t0;
	EXPECT_EQ(-ETIMEDOUT, rc) TH_LOG("%s", err.msg);
	EXPECT_NE(NULL, strstr(err.msg, "cannot resolve 'blackhole.nbdws.test'"))
		TH_LOG("%s", err.msg);
	EXPECT_LE(250, ms);
	EXPECT_GT(RESOLVER_WAIT_MS / 2, ms) TH_LOG("took %lld ms", ms);

	/* Its resolver thread still runs: the request is kept for it... */
	EXPECT_EQ(1, nbd_resolve_pending());
	/* ...and freed when the resolver gives up on the silent server. */
	for (t0 = nbd_now_ms(); nbd_now_ms() - t0 < 4 * RESOLVER_WAIT_MS;)
		if (!nbd_resolve_pending())
			break;
		else
			usleep(50000);
	EXPECT_EQ(0, nbd_resolve_pending());
	close(dns);
}

/* A name (from /etc/hosts) goes through the lookup and connects. */
TEST(name_connects)
{
	struct nbdws_err err = { "" };
	unsigned short port;
	char port_text[8];
	int lfd, fd;

	lfd = listen_loopback(&port);
	snprintf(port_text, sizeof(port_text), "%u", port);
	fd = nbd_sock_connect_tcp("localhost", port_text, 5000, &err);
	ASSERT_LE(0, fd) TH_LOG("%s", err.msg);
	close(fd);
	close(lfd);
	EXPECT_EQ(0, nbd_resolve_pending());
}

/* An address literal needs no resolver thread. */
TEST(literal)
{
	struct nbdws_err err = { "" };
	struct addrinfo *res = NULL;

	ASSERT_EQ(0, nbd_resolve("::1", "10809", nbd_now_ms() + 1000, &res, &err))
		TH_LOG("%s", err.msg);
	ASSERT_NE(NULL, res);
	EXPECT_EQ(AF_INET6, res->ai_family);
	EXPECT_EQ(NULL, res->ai_next);
	freeaddrinfo(res);
}

TEST_HARNESS_MAIN
