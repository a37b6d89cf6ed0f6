/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Real NBD servers (nbdkit, nbd-server, qemu-nbd) started and stopped by
 * the selftests, and nbdctl driven the way a user drives it. Servers
 * listen on a unix socket in a private scratch directory or on a free
 * port of 127.0.0.1, and die with the test (PDEATHSIG, --exit-with-parent)
 * even when the test itself is killed.
 */
#ifndef _NBDWS_TEST_PEERS_H
#define _NBDWS_TEST_PEERS_H

#include "nbdws_test_util.h"

enum peer_kind {
	PEER_NBDKIT_MEMORY,	/* unix socket */
	PEER_NBDKIT_FILE,	/* TCP, backing file */
	PEER_NBD_SERVER,	/* TCP, backing file, one client (-d) */
	PEER_QEMU_NBD,		/* unix socket, backing file */
};

struct peer {
	enum peer_kind kind;
	char dir[256];		/* scratch directory, removed at stop */
	char sock[300];
	char image[300];	/* backing file ("" for memory) */
	char log[300];		/* nbdkit --filter=log output */
	char uri[400];
	char out[300];		/* server's stdout/stderr */
	int port;
	pid_t pid;
};

static inline int peer_scratch(struct peer *p)
{
	snprintf(p->dir, sizeof(p->dir), "%s/nbdws-test.XXXXXX", tu_tmpdir());
	if (!mkdtemp(p->dir))
		return -errno;
	snprintf(p->sock, sizeof(p->sock), "%s/nbd.sock", p->dir);
	snprintf(p->image, sizeof(p->image), "%s/disk.img", p->dir);
	snprintf(p->log, sizeof(p->log), "%s/nbdkit.log", p->dir);
	snprintf(p->out, sizeof(p->out), "%s/server.out", p->dir);
	return 0;
}

static inline pid_t peer_spawn_logged(struct peer *p, char *const argv[])
{
	int fd = open(p->out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	pid_t pid = tu_spawn(argv, fd);

	if (fd >= 0)
		close(fd);
	return pid;
}

/*
 * Start an nbdkit with @plugin_args (NULL-terminated, after the listen
 * options) in the scratch dir of @p; @tcp picks 127.0.0.1 over unix.
 * Extra options (filters, -r) go in @pre_args before the plugin.
 */
static inline int peer_start_nbdkit(struct peer *p, bool tcp,
				    const char *const pre_args[],
				    const char *const plugin_args[])
{
	char port[16];
	char *argv[40];
	int n = 0, i, ret;

	argv[n++] = "nbdkit";
	argv[n++] = "-f";
	argv[n++] = "--exit-with-parent";
	if (tcp) {
		p->port = tu_free_port();
		snprintf(port, sizeof(port), "%d", p->port);
		argv[n++] = "-i";
		argv[n++] = "127.0.0.1";
		argv[n++] = "-p";
		argv[n++] = port;
	} else {
		argv[n++] = "-U";
		argv[n++] = p->sock;
	}
	for (i = 0; pre_args && pre_args[i] && n < 30; i++)
		argv[n++] = (char *)pre_args[i];
	for (i = 0; plugin_args[i] && n < 38; i++)
		argv[n++] = (char *)plugin_args[i];
	argv[n] = NULL;
	p->pid = peer_spawn_logged(p, argv);
	if (p->pid < 0)
		return -errno;
	if (tcp) {
		snprintf(p->uri, sizeof(p->uri), "nbd://127.0.0.1:%d/",
			 p->port);
		ret = tu_wait_listen(p->port, 30000);
	} else {
		snprintf(p->uri, sizeof(p->uri),
			 "nbd+unix:///?socket=%s", p->sock);
		ret = tu_wait_unix(p->sock, 30000);
	}
	return ret;
}

static inline int peer_start_nbd_server(struct peer *p)
{
	char conf[320], text[1024], cmd[1024];
	char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	int fd;

	snprintf(conf, sizeof(conf), "%s/nbd-server.conf", p->dir);
	p->port = tu_free_port();
	snprintf(text, sizeof(text),
		 "[generic]\n\tlistenaddr = 127.0.0.1\n\tport = %d\n"
		 "[export]\n\texportname = %s\n\tflush = true\n"
		 "\tfua = true\n\ttrim = true\n",
		 p->port, p->image);
	fd = open(conf, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -errno;
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		close(fd);
		return -EIO;
	}
	close(fd);
	/*
	 * -d keeps it in the foreground, our child, so it dies with the
	 * test. It then serves exactly one client and exits, which is all
	 * a test needs: readiness is checked in /proc/net/tcp, not with a
	 * probe connection that would use up that one client.
	 */
	snprintf(cmd, sizeof(cmd), "exec nbd-server -d -C %s", conf);
	p->pid = peer_spawn_logged(p, argv);
	if (p->pid < 0)
		return -errno;
	snprintf(p->uri, sizeof(p->uri), "nbd://127.0.0.1:%d/export",
		 p->port);
	return tu_wait_listen(p->port, 30000);
}

static inline int peer_start_qemu_nbd(struct peer *p, bool read_only)
{
	char *argv[] = { "qemu-nbd", "-f", "raw", "-k", p->sock, "-t",
			 "-e", "8", "--cache=writeback", p->image,
			 read_only ? "-r" : NULL, NULL };

	p->pid = peer_spawn_logged(p, argv);
	if (p->pid < 0)
		return -errno;
	snprintf(p->uri, sizeof(p->uri), "nbd+unix:///?socket=%s", p->sock);
	return tu_wait_unix(p->sock, 30000);
}

/* Start @kind on a fresh @size image filled with pattern @seed. */
static inline int peer_start(struct peer *p, enum peer_kind kind,
			     uint64_t size, uint64_t seed)
{
	char sz[32], file[320];
	int ret;

	memset(p, 0, sizeof(*p));
	p->kind = kind;
	ret = peer_scratch(p);
	if (ret)
		return ret;
	snprintf(sz, sizeof(sz), "%llu", (unsigned long long)size);
	if (kind != PEER_NBDKIT_MEMORY) {
		ret = tu_make_image(p->image, size, seed);
		if (ret)
			return ret;
	}
	switch (kind) {
	case PEER_NBDKIT_MEMORY: {
		const char *args[] = { "memory", sz, NULL };
		char out[1024];

		p->image[0] = 0;
		ret = peer_start_nbdkit(p, false, NULL, args);
		if (ret || !seed)
			return ret;
		/* Fill it through another client so reads have known data. */
		snprintf(file, sizeof(file), "%s/seed.img", p->dir);
		ret = tu_make_image(file, size, seed);
		if (ret)
			return ret;
		ret = tu_sh(120000, out, sizeof(out), "nbdcopy '%s' '%s'",
			    file, p->uri);
		unlink(file);
		return ret ? -EIO : 0;
	}
	case PEER_NBDKIT_FILE: {
		const char *args[] = { "file", p->image, NULL };

		return peer_start_nbdkit(p, true, NULL, args);
	}
	case PEER_NBD_SERVER:
		return peer_start_nbd_server(p);
	case PEER_QEMU_NBD:
		return peer_start_qemu_nbd(p, false);
	}
	return -EINVAL;
}

/*
 * The export's current contents as a file: the backing file itself, or
 * for nbdkit memory a copy read through another client (nbdcopy).
 */
static inline int peer_snapshot(struct peer *p, char *path, size_t len)
{
	char out[1024];

	if (p->image[0]) {
		snprintf(path, len, "%s", p->image);
		return 0;
	}
	snprintf(path, len, "%s/snapshot.img", p->dir);
	return tu_sh(120000, out, sizeof(out), "nbdcopy '%s' '%s'", p->uri,
		     path) ? -EIO : 0;
}

static inline void peer_stop(struct peer *p)
{
	char cmd[700], out[256];

	if (p->pid > 0)
		tu_kill_reap(p->pid);
	p->pid = 0;
	if (p->dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", p->dir);
		tu_sh(10000, out, sizeof(out), "%s", cmd);
	}
	p->dir[0] = 0;
}

/* ---- nbdctl ---------------------------------------------------------------- */

/*
 * nbdctl connect [@opts...] URI: returns nbdctl's exit code; on success
 * *index is the device it printed (/dev/nbdwsN). Output lands in @out.
 */
static inline int nbdctl_connect(const char *const opts[], const char *uri,
				 int *index, char *out, size_t outlen)
{
	char *argv[32];
	int n = 0, i, ret;

	argv[n++] = (char *)tu_nbdctl();
	argv[n++] = "connect";
	for (i = 0; opts && opts[i] && n < 29; i++)
		argv[n++] = (char *)opts[i];
	argv[n++] = (char *)uri;
	argv[n] = NULL;
	*index = -1;
	ret = tu_run(argv, 120000, out, outlen);
	if (!ret) {
		*index = tu_find_disk_index(out);
		if (*index < 0)
			return -EBADMSG;
	}
	return ret;
}

static inline int nbdctl_disconnect(int index, char *out, size_t outlen)
{
	char dev[64];
	char *argv[] = { (char *)tu_nbdctl(), "disconnect", dev, NULL };

	snprintf(dev, sizeof(dev), "/dev/%s%d", NBDWS_DISK_NAME, index);
	return tu_run(argv, 60000, out, outlen);
}

#endif /* _NBDWS_TEST_PEERS_H */
