/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Starting and stopping the helper servers of the unit tests (websockify,
 * nbdkit): each runs in a process group of its own because websockify
 * forks a child per client, and dies with the test.
 */
#ifndef _NBDWS_TEST_SPAWN_UTIL_H
#define _NBDWS_TEST_SPAWN_UTIL_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* Start @argv in its own process group, output appended to @log. */
static inline pid_t spawn_group(char *const argv[], const char *log)
{
	pid_t pid = fork();

	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	if (pid > 0)
		setpgid(pid, pid);
	return pid;
}

/* Stop the group started by spawn_group(), children included. */
static inline void stop_group(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(-pid, SIGTERM);
	waitpid(pid, NULL, 0);
	kill(-pid, SIGKILL);
}

/* Wait up to @ms for a listener on 127.0.0.1:@port. */
static inline bool wait_tcp(unsigned short port, int ms)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };

	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (; ms > 0; ms -= 50) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		bool up = !connect(fd, (struct sockaddr *)&sin, sizeof(sin));

		close(fd);
		if (up)
			return true;
		usleep(50000);
	}
	return false;
}

/*
 * A throwaway self-signed certificate for localhost and 127.0.0.1 in
 * @dir (cert.pem, key.pem), made at test time so no key is committed.
 */
static inline int make_test_cert(const char *dir, char *cert, size_t certlen,
				 char *key, size_t keylen)
{
	char cmd[2048];

	snprintf(cert, certlen, "%s/cert.pem", dir);
	snprintf(key, keylen, "%s/key.pem", dir);
	snprintf(cmd, sizeof(cmd),
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout %s -out %s >%s/openssl.log 2>&1",
		 key, cert, dir);
	return system(cmd) ? -1 : 0;
}

#endif /* _NBDWS_TEST_SPAWN_UTIL_H */
