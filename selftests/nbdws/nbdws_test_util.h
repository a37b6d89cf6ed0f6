/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the nbdws VM selftests: running programs with a bound
 * on their run time, data patterns that can be checked at any offset, and
 * device-node plumbing. Every wait here has a deadline, because a test
 * that hangs hides the bug it was written to find.
 *
 * Header-only (static inline) because the build makes one program per
 * selftests/nbdws C file and links no per-test objects.
 */
#ifndef _NBDWS_TEST_UTIL_H
#define _NBDWS_TEST_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <linux/nbdws.h>

#define TU_MIB (1024ULL * 1024ULL)

static inline long long tu_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/*
 * The factor every time limit is multiplied by: NBDWS_TIMEOUT_SCALE, set by
 * scripts/check.sh for the debug kernel (KASAN and lockdep on top of TCG
 * make everything several times slower); 1 on the target kernels, so
 * their limits stay as tight as written.
 */
static inline int tu_timeout_scale(void)
{
	const char *s = getenv("NBDWS_TIMEOUT_SCALE");
	int v = s ? atoi(s) : 1;

	return v >= 1 && v <= 100 ? v : 1;
}

/* The monotonic time at which a wait of @timeout_ms (scaled) ends. */
static inline long long tu_deadline(int timeout_ms)
{
	return tu_now_ms() + (long long)timeout_ms * tu_timeout_scale();
}

#ifdef TEST_HARNESS_MAIN
/*
 * The harness's per-test limits (TEST_F_TIMEOUT, 30 s by default) are
 * scaled the same way, before the first test runs; the harness's own
 * main() is otherwise unchanged (its constructor-order detection kept).
 */
static inline void tu_scale_harness_timeouts(void)
{
	struct __fixture_metadata *f;
	struct __test_metadata *t;
	int scale = tu_timeout_scale();

	for (f = __fixture_list; f; f = f->next)
		for (t = f->tests; t; t = t->next)
			t->timeout *= scale;
}

#undef TEST_HARNESS_MAIN
#define TEST_HARNESS_MAIN \
	static void __attribute__((constructor)) \
	__constructor_order_last(void) \
	{ \
		if (!__constructor_order) \
			__constructor_order = _CONSTRUCTOR_ORDER_BACKWARD; \
	} \
	int main(int argc, char **argv) { \
		tu_scale_harness_timeouts(); \
		return test_harness_run(argc, argv); \
	}
#endif

static inline void tu_msleep(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Scratch directory: $TMPDIR (the guest's tmpfs) or /tmp. */
static inline const char *tu_tmpdir(void)
{
	const char *t = getenv("TMPDIR");

	return t && *t ? t : "/tmp";
}

static inline const char *tu_nbdctl(void)
{
	const char *p = getenv("NBDCTL");

	return p && *p ? p : "build/nbdctl";
}

/*
 * Fork and exec @argv. The child dies with the test process (PDEATHSIG)
 * so that a test killed by the harness timeout leaves no server behind;
 * it stays in the test's process group for the same reason. stdin is
 * /dev/null; stdout and stderr go to @out_fd, or /dev/null if it is -1.
 */
static inline pid_t tu_spawn(char *const argv[], int out_fd)
{
	pid_t parent = getpid();
	pid_t pid = fork();

	if (pid)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	int null = open("/dev/null", O_RDWR);

	dup2(null, 0);
	dup2(out_fd >= 0 ? out_fd : null, 1);
	dup2(out_fd >= 0 ? out_fd : null, 2);
	execvp(argv[0], argv);
	dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/* Wait up to @timeout_ms for @pid; 0 with *status on exit, else -ETIMEDOUT. */
static inline int tu_wait_pid(pid_t pid, int timeout_ms, int *status)
{
	long long end = tu_deadline(timeout_ms);
	int st;

	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid) {
			if (status)
				*status = st;
			return 0;
		}
		if (r < 0)
			return -errno;
		if (tu_now_ms() >= end)
			return -ETIMEDOUT;
		tu_msleep(10);
	}
}

/* Ask politely, then insist; reap either way (bounded). */
static inline void tu_kill_reap(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	if (tu_wait_pid(pid, 3000, NULL) == 0)
		return;
	kill(pid, SIGKILL);
	tu_wait_pid(pid, 3000, NULL);
}

/*
 * Run @argv to completion within @timeout_ms, capturing stdout and stderr
 * together into @out (always NUL-terminated). Returns the exit code, 128+N
 * for death by signal N, or -ETIMEDOUT after killing it.
 */
static inline int tu_run(char *const argv[], int timeout_ms, char *out,
			 size_t outlen)
{
	long long end = tu_deadline(timeout_ms);
	size_t have = 0;
	int p[2], st = 0, ret;
	bool exited = false;
	pid_t pid;

	if (outlen)
		out[0] = 0;
	if (pipe2(p, O_CLOEXEC))
		return -errno;
	pid = tu_spawn(argv, p[1]);
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		return -errno;
	}
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	for (;;) {
		struct pollfd pfd = { .fd = p[0], .events = POLLIN };
		char tmp[4096];
		ssize_t n;

		poll(&pfd, 1, exited ? 0 : 50);
		n = read(p[0], tmp, sizeof(tmp));
		if (n > 0) {
			size_t c = outlen > have + 1 ? outlen - have - 1 : 0;

			if ((size_t)n < c)
				c = n;
			memcpy(out + have, tmp, c);
			have += c;
			if (outlen)
				out[have] = 0;
			continue;
		}
		/*
		 * Done at EOF, or once the child is gone and the pipe is
		 * drained: a daemon it left behind may hold the pipe open.
		 */
		if (exited)
			break;
		if (n == 0) {
			if (tu_wait_pid(pid, end - tu_now_ms() > 0 ?
					end - tu_now_ms() : 0, &st)) {
				kill(pid, SIGKILL);
				tu_wait_pid(pid, 3000, NULL);
				close(p[0]);
				return -ETIMEDOUT;
			}
			break;
		}
		if (waitpid(pid, &st, WNOHANG) == pid) {
			exited = true;
			continue;
		}
		if (tu_now_ms() >= end) {
			kill(pid, SIGKILL);
			tu_wait_pid(pid, 3000, NULL);
			close(p[0]);
			return -ETIMEDOUT;
		}
	}
	close(p[0]);
	if (WIFEXITED(st))
		ret = WEXITSTATUS(st);
	else
		ret = 128 + WTERMSIG(st);
	return ret;
}

/* tu_run() on "/bin/sh -c FORMATTED". */
static inline int __attribute__((format(printf, 4, 5)))
tu_sh(int timeout_ms, char *out, size_t outlen, const char *fmt, ...)
{
	char cmd[4096];
	char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return tu_run(argv, timeout_ms, out, outlen);
}

/*
 * Run @fn(@arg) in a forked child and wait at most @timeout_ms. Device I/O
 * goes through here: a process stuck in the block layer cannot be killed,
 * and the test itself must still be able to report and clean up. @fn
 * returns 0 or a positive errno, which becomes *result. Returns 0, or
 * -ETIMEDOUT (the child is killed and left to whatever state it is in).
 */
static inline int tu_child_run(int (*fn)(void *), void *arg, int timeout_ms,
			       int *result)
{
	int st;
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (!pid) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		_exit(fn(arg) & 0xff);
	}
	if (tu_wait_pid(pid, timeout_ms, &st)) {
		kill(pid, SIGKILL);
		tu_wait_pid(pid, 1000, NULL);
		return -ETIMEDOUT;
	}
	*result = WIFEXITED(st) ? WEXITSTATUS(st) : 200 + WTERMSIG(st);
	return 0;
}

/* Start @fn in a child without waiting; collect with tu_child_wait(). */
static inline pid_t tu_child_start(int (*fn)(void *), void *arg)
{
	pid_t pid = fork();

	if (!pid) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		_exit(fn(arg) & 0xff);
	}
	return pid;
}

static inline int tu_child_wait(pid_t pid, int timeout_ms, int *result)
{
	int st;

	if (tu_wait_pid(pid, timeout_ms, &st)) {
		kill(pid, SIGKILL);
		tu_wait_pid(pid, 1000, NULL);
		return -ETIMEDOUT;
	}
	*result = WIFEXITED(st) ? WEXITSTATUS(st) : 200 + WTERMSIG(st);
	return 0;
}

/*
 * Deterministic data: the 8-byte word at absolute offset @off (a multiple
 * of 8) depends only on @seed and @off, so any region can be regenerated
 * and checked without keeping the whole image in memory.
 */
static inline uint64_t tu_mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static inline void tu_pattern(void *buf, uint64_t off, size_t len,
			      uint64_t seed)
{
	uint64_t *w = buf;
	size_t i;

	for (i = 0; i < len / 8; i++)
		w[i] = tu_mix64(seed ^ ((off / 8 + i) * 0x100000001b3ULL));
}

/* Offset of the first byte where @buf differs from the pattern, or -1. */
static inline long long tu_pattern_check(const void *buf, uint64_t off,
					 size_t len, uint64_t seed)
{
	const uint64_t *w = buf;
	size_t i;

	for (i = 0; i < len / 8; i++)
		if (w[i] != tu_mix64(seed ^ ((off / 8 + i) * 0x100000001b3ULL)))
			return off + i * 8;
	return -1;
}

static inline bool tu_all_zero(const void *buf, size_t len)
{
	const unsigned char *b = buf;
	size_t i;

	for (i = 0; i < len; i++)
		if (b[i])
			return false;
	return true;
}

static inline int tu_pread_full(int fd, void *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done,
				  off + done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno;
		if (n == 0)
			return EIO;
		done += n;
	}
	return 0;
}

static inline int tu_pwrite_full(int fd, const void *buf, size_t len,
				 off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done,
				   off + done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno;
		done += n;
	}
	return 0;
}

/* Create @path of @size bytes filled with pattern @seed (0: sparse zeroes). */
static inline int tu_make_image(const char *path, uint64_t size, uint64_t seed)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644), ret = 0;
	size_t chunk = TU_MIB;
	char *buf;
	uint64_t off;

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, size)) {
		ret = -errno;
		goto out;
	}
	if (seed) {
		buf = malloc(chunk);
		for (off = 0; off < size && !ret; off += chunk) {
			tu_pattern(buf, off, chunk, seed);
			ret = -tu_pwrite_full(fd, buf, chunk, off);
		}
		free(buf);
	}
out:
	close(fd);
	return ret;
}

static inline bool tu_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

static inline int tu_wait_path(const char *path, bool present, int timeout_ms)
{
	long long end = tu_deadline(timeout_ms);

	while (tu_exists(path) != present) {
		if (tu_now_ms() >= end)
			return -ETIMEDOUT;
		tu_msleep(20);
	}
	return 0;
}

/* A TCP port on 127.0.0.1 that was free a moment ago. */
static inline int tu_free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t l = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -1;
	if (!bind(fd, (struct sockaddr *)&a, sizeof(a)) &&
	    !getsockname(fd, (struct sockaddr *)&a, &l))
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static inline int tu_tcp_connect(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

static inline int tu_unix_connect(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (strlen(path) >= sizeof(a.sun_path)) {
		close(fd);
		return -ENAMETOOLONG;
	}
	memcpy(a.sun_path, path, strlen(path) + 1);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

/*
 * Poll /proc/net/tcp until 127.0.0.1:@port is listening. Unlike a probe
 * connection this leaves the server alone (nbd-server, for one, reacts
 * to a client that connects and leaves).
 */
static inline int tu_wait_listen(int port, int timeout_ms)
{
	long long end = tu_deadline(timeout_ms);
	char want[32], line[512];

	snprintf(want, sizeof(want), "0100007F:%04X", port);
	for (;;) {
		FILE *f = fopen("/proc/net/tcp", "r");
		bool found = false;

		while (f && fgets(line, sizeof(line), f)) {
			char local[64], remote[64];
			unsigned int st;

			if (sscanf(line, "%*d: %63s %63s %x", local, remote,
				   &st) == 3 && !strcmp(local, want) &&
			    st == 0x0A)
				found = true;
		}
		if (f)
			fclose(f);
		if (found)
			return 0;
		if (tu_now_ms() >= end)
			return -ETIMEDOUT;
		tu_msleep(50);
	}
}

/* Poll until something accepts connections on @port / @path. */
static inline int tu_wait_tcp(int port, int timeout_ms)
{
	long long end = tu_deadline(timeout_ms);

	for (;;) {
		int fd = tu_tcp_connect(port);

		if (fd >= 0) {
			close(fd);
			return 0;
		}
		if (tu_now_ms() >= end)
			return -ETIMEDOUT;
		tu_msleep(50);
	}
}

static inline int tu_wait_unix(const char *path, int timeout_ms)
{
	long long end = tu_deadline(timeout_ms);

	for (;;) {
		int fd = tu_unix_connect(path);

		if (fd >= 0) {
			close(fd);
			return 0;
		}
		if (tu_now_ms() >= end)
			return -ETIMEDOUT;
		tu_msleep(50);
	}
}

/*
 * The second half of a connected pair: @cfd (or the negative errno of its
 * connect) has connected to the listener @lfd; accept it. 0 with both
 * ends set, or a negative errno with neither open.
 */
static inline int tu_pair_accept(int lfd, int cfd, int *client, int *server)
{
	int ret;

	if (cfd < 0)
		return cfd;
	*server = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (*server < 0) {
		ret = -errno;
		close(cfd);
		return ret;
	}
	*client = cfd;
	return 0;
}

/*
 * A connected TCP pair on 127.0.0.1: *client goes to the kernel, *server
 * stays with the test's scripted server.
 */
static inline int tu_tcp_pair(int *client, int *server)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t l = sizeof(a);
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ret = 0;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (lfd < 0)
		return -errno;
	if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockname(lfd, (struct sockaddr *)&a, &l) || listen(lfd, 1)) {
		ret = -errno;
		goto out;
	}
	ret = tu_pair_accept(lfd, tu_tcp_connect(ntohs(a.sin_port)), client,
			     server);
out:
	close(lfd);
	return ret;
}

/*
 * The first line of /sys/block/@disk/@attr (e.g. "queue/rotational") into
 * @text without its newline. Returns 0 or -errno.
 */
static inline int tu_disk_attr(const char *disk, const char *attr, char *text,
			       size_t len)
{
	char p[160];
	FILE *f;
	int ret = 0;

	snprintf(p, sizeof(p), "/sys/block/%s/%s", disk, attr);
	f = fopen(p, "r");
	if (!f)
		return -errno;
	if (!fgets(text, (int)len, f))
		ret = -EIO;
	fclose(f);
	text[strcspn(text, "\n")] = 0;
	return ret;
}

/* The same attribute as a non-negative number, or -1. */
static inline long long tu_disk_attr_num(const char *disk, const char *attr)
{
	char text[64], *end;
	long long v;

	if (tu_disk_attr(disk, attr, text, sizeof(text)))
		return -1;
	errno = 0;
	v = strtoll(text, &end, 10);
	if (errno || end == text || *end || v < 0)
		return -1;
	return v;
}

/* Size of a block device in bytes, from sysfs (no open() needed). */
static inline long long tu_sysfs_size(const char *disk)
{
	long long sectors = tu_disk_attr_num(disk, "size");

	return sectors < 0 ? -1 : sectors * 512;
}

static inline bool tu_disk_exists(const char *disk)
{
	char p[128];

	snprintf(p, sizeof(p), "/sys/block/%s", disk);
	return tu_exists(p);
}

/* "nbdws3" -> 3, from any text that names the disk (e.g. nbdctl output). */
static inline int tu_find_disk_index(const char *text)
{
	const char *p = text;

	while ((p = strstr(p, NBDWS_DISK_NAME))) {
		p += strlen(NBDWS_DISK_NAME);
		if (*p >= '0' && *p <= '9')
			return atoi(p);
	}
	return -1;
}

/* Compare @len bytes of two files from offset 0; -1 if equal. */
static inline long long tu_file_cmp(const char *a, const char *b, uint64_t len)
{
	int fa = open(a, O_RDONLY), fb = open(b, O_RDONLY);
	char *ba = malloc(TU_MIB), *bb = malloc(TU_MIB);
	long long ret = -1;
	uint64_t off;

	if (fa < 0 || fb < 0) {
		ret = -2;
		goto out;
	}
	for (off = 0; off < len && ret == -1; off += TU_MIB) {
		size_t n = len - off < TU_MIB ? len - off : TU_MIB, i;

		if (tu_pread_full(fa, ba, n, off) ||
		    tu_pread_full(fb, bb, n, off)) {
			ret = -2;
			break;
		}
		if (memcmp(ba, bb, n))
			for (i = 0; i < n; i++)
				if (ba[i] != bb[i]) {
					ret = off + i;
					break;
				}
	}
out:
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	free(ba);
	free(bb);
	return ret;
}

#endif /* _NBDWS_TEST_UTIL_H */
