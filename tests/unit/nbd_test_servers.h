/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers for host unit tests that talk to real NBD servers (nbdkit,
 * nbd-server, qemu-nbd) and to small scripted servers written here:
 * temp directories, starting and stopping daemons, waiting for sockets,
 * and the server side of the NBD handshake in plain blocking C.
 *
 * Everything is static: each test program includes this header once.
 */
#ifndef _NBD_TEST_SERVERS_H
#define _NBD_TEST_SERVERS_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nbd_be.h"
#include "nbd_proto.h"

/* True if @prog is an executable on PATH (or an absolute path). */
static inline bool have_prog(const char *prog)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", prog);
	return system(cmd) == 0;
}

static inline void make_tmpdir(char *dir, size_t len)
{
	snprintf(dir, len, "/tmp/nbdws-test.XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		abort();
	}
}

static inline void remove_tree(const char *dir)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

/* Create @path of @size bytes filled with a pattern derived from @seed. */
static inline int make_file(const char *path, size_t size, unsigned int seed)
{
	FILE *f = fopen(path, "w");
	size_t i;

	if (!f)
		return -1;
	for (i = 0; i < size; i++)
		fputc((int)((i * 31 + seed) & 0xff), f);
	return fclose(f);
}

/*
 * fork+exec @argv with stdout/stderr to @log. The child dies with us
 * (PR_SET_PDEATHSIG) so a crashed test leaves no server behind.
 */
static inline pid_t spawn(char *const argv[], const char *log)
{
	pid_t pid = fork();

	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	return pid;
}

/* Wait up to @ms for @path to exist; true when it does. */
static inline bool wait_path(const char *path, int ms)
{
	struct stat st;

	for (; ms > 0; ms -= 20) {
		if (!stat(path, &st))
			return true;
		usleep(20000);
	}
	return false;
}

/* Wait until something accepts connections on unix socket @path. */
static inline bool wait_unix_listener(const char *path, int ms)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	if (strlen(path) >= sizeof(sun.sun_path))
		return false;
	memcpy(sun.sun_path, path, strlen(path));
	for (; ms > 0; ms -= 20) {
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);

		if (!connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
			close(fd);
			return true;
		}
		close(fd);
		usleep(20000);
	}
	return false;
}

static inline void stop_pid(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

/* Kill the daemon whose pid is in @pidfile (nbd-server forks away). */
static inline void stop_pidfile(const char *pidfile)
{
	FILE *f = fopen(pidfile, "r");
	int pid = 0;

	if (!f)
		return;
	if (fscanf(f, "%d", &pid) == 1 && pid > 0)
		kill(pid, SIGTERM);
	fclose(f);
}

/* A TCP listener on 127.0.0.1 with a kernel-chosen port. */
static inline int listen_loopback(unsigned short *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) ||
	    listen(fd, 16) || getsockname(fd, (struct sockaddr *)&sin, &len)) {
		perror("listen_loopback");
		abort();
	}
	*port = ntohs(sin.sin_port);
	return fd;
}

/* A free TCP port on loopback for servers that want a number. */
static inline unsigned short free_port(void)
{
	unsigned short port;
	int fd = listen_loopback(&port);

	close(fd);
	return port;
}

/* ---- server side of the handshake, for scripted servers ----------- */

static inline bool srv_read(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

static inline bool srv_write(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/* Send the newstyle greeting with @flags; read the client's flags. */
static inline bool srv_greet(int fd, u16 flags, u32 *cflags)
{
	u8 buf[18];

	put_be64(buf, NBDP_INIT_PASSWD);
	put_be64(buf + 8, NBDP_IHAVEOPT);
	put_be16(buf + 16, flags);
	if (!srv_write(fd, buf, sizeof(buf)) || !srv_read(fd, buf, 4))
		return false;
	*cflags = get_be32(buf);
	return true;
}

/* Read one option request; *data (malloc'd, may be NULL) holds *len bytes. */
static inline bool srv_read_option(int fd, u32 *opt, u8 **data, u32 *len)
{
	u8 hdr[16];

	*data = NULL;
	if (!srv_read(fd, hdr, sizeof(hdr)) || get_be64(hdr) != NBDP_IHAVEOPT)
		return false;
	*opt = get_be32(hdr + 8);
	*len = get_be32(hdr + 12);
	if (*len > 65536)
		return false;
	if (!*len)
		return true;
	*data = malloc(*len);
	return *data && srv_read(fd, *data, *len);
}

static inline bool srv_reply(int fd, u32 opt, u32 type, const void *data, u32 len)
{
	u8 hdr[20];

	put_be64(hdr, NBDP_OPT_REPLY_MAGIC);
	put_be32(hdr + 8, opt);
	put_be32(hdr + 12, type);
	put_be32(hdr + 16, len);
	return srv_write(fd, hdr, sizeof(hdr)) && (!len || srv_write(fd, data, len));
}

#endif /* _NBD_TEST_SERVERS_H */
