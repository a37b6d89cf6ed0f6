// SPDX-License-Identifier: GPL-2.0
/*
 * nbdws-relay: static files (see webfiles.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http_req.h"
#include "relay.h"
#include "webfiles.h"
#include "pct.h"

#define WEBFILES_CHUNK	((size_t)64 * 1024)

static int web_fd = -1;

int webfiles_init(void)
{
	if (!relay_cfg->web_dir)
		return 0;
	web_fd = open(relay_cfg->web_dir,
		      O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (web_fd < 0) {
		int rc = -errno;

		relay_log(RELAY_LOG_ERR, "--web %s: %s", relay_cfg->web_dir,
			  strerror(-rc));
		return rc;
	}
	return 0;
}

void webfiles_fini(void)
{
	if (web_fd >= 0)
		close(web_fd);
	web_fd = -1;
}

int webfiles_name(const char *path, char *out, size_t size)
{
	size_t o = 0, comp = 0;
	const char *p;
	int hi, lo;
	char c;

	if (path[0] != '/' || size < sizeof("index.html"))
		return 404;
	for (p = path + 1; *p; p++) {
		c = *p;
		if (c == '%') {
			hi = pct_hex_digit(p[1]);
			lo = hi < 0 ? -1 : pct_hex_digit(p[2]);
			if (lo < 0)
				return 400;
			c = (char)(hi << 4 | lo);
			p += 2;
			if (!c)
				return 400;
		}
		if (c == '/') {
			/* "//" or a component ending in nothing */
			if (o == comp)
				return 404;
			comp = o + 1;
		} else if ((o == comp && c == '.') || c == '\\') {
			/* ".", ".." and dotfiles alike; no DOS separators */
			return 404;
		}
		if (o + 1 >= size)
			return 404;
		out[o++] = c;
	}
	out[o] = '\0';
	if (o == comp) {
		if (o + sizeof("index.html") > size)
			return 404;
		memcpy(out + o, "index.html", sizeof("index.html"));
	}
	return 0;
}

const char *webfiles_type(const char *name)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
		{ "html", "text/html; charset=utf-8" },
		{ "css", "text/css; charset=utf-8" },
		{ "js", "text/javascript; charset=utf-8" },
		{ "mjs", "text/javascript; charset=utf-8" },
		{ "json", "application/json" },
		{ "png", "image/png" },
		{ "svg", "image/svg+xml" },
		{ "ico", "image/x-icon" },
		{ "txt", "text/plain; charset=utf-8" },
		{ "wasm", "application/wasm" },
	};
	const char *dot = strrchr(name, '.');
	size_t i;

	if (dot && !strchr(dot, '/'))
		for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
			if (!strcasecmp(dot + 1, types[i].ext))
				return types[i].type;
	return "application/octet-stream";
}

int webfiles_open(int dirfd, const char *name, long long *size)
{
	char comp[WEBFILES_MAX_NAME + 1];
	const char *p = name, *slash;
	int cur = dirfd, fd, rc;
	struct stat st;
	size_t len;

	/* Every directory on the way, without following links. */
	while ((slash = strchr(p, '/'))) {
		len = (size_t)(slash - p);
		if (!len || len > WEBFILES_MAX_NAME) {
			rc = -ENOENT;
			goto out;
		}
		memcpy(comp, p, len);
		comp[len] = '\0';
		fd = openat(cur, comp,
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			rc = -errno;
			goto out;
		}
		if (cur != dirfd)
			close(cur);
		cur = fd;
		p = slash + 1;
	}
	/* O_NONBLOCK: a FIFO put there must not hang the relay. */
	fd = openat(cur, p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	if (fstat(fd, &st)) {
		rc = -errno;
	} else if (S_ISDIR(st.st_mode)) {
		rc = -EISDIR;
	} else if (!S_ISREG(st.st_mode)) {
		rc = -EACCES;
	} else if (st.st_size > WEBFILES_MAX_SIZE) {
		rc = -EFBIG;
	} else {
		*size = st.st_size;
		rc = fd;
	}
	if (rc != fd)
		close(fd);
out:
	if (cur != dirfd)
		close(cur);
	return rc;
}

static int send_file(const struct ws_io *io, int fd, long long size)
{
	long long left = size;
	ssize_t n;
	char *buf;
	int rc = 0;

	buf = malloc(WEBFILES_CHUNK);
	if (!buf)
		return -ENOMEM;
	while (left > 0) {
		n = read(fd, buf, left < (long long)WEBFILES_CHUNK ?
			 (size_t)left : WEBFILES_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		/* The file shrank under us: the length sent is now a lie. */
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			break;
		}
		rc = io->write(io->ctx, buf, (size_t)n);
		if (rc)
			break;
		left -= n;
	}
	free(buf);
	return rc;
}

int webfiles_serve(const struct ws_io *io, const char *path, bool head)
{
	char name[WEBFILES_MAX_NAME + 1], hdr[512];
	long long size = 0;
	int fd, rc, n;

	if (web_fd < 0)
		return 404;
	rc = webfiles_name(path, name, sizeof(name));
	if (rc)
		return rc;
	fd = webfiles_open(web_fd, name, &size);
	if (fd == -EFBIG)
		return 403;
	if (fd < 0)
		return 404;
	/*
	 * http_build_response() wants the body in its buffer; a file is
	 * streamed, so its header is written here with the same fields.
	 */
	n = snprintf(hdr, sizeof(hdr),
		     "HTTP/1.1 200 OK\r\n"
		     "Content-Type: %s\r\n"
		     "Content-Length: %lld\r\n"
		     "X-Content-Type-Options: nosniff\r\n"
		     "Cache-Control: no-cache\r\n"
		     "Connection: close\r\n\r\n",
		     webfiles_type(name), size);
	rc = io->write(io->ctx, hdr, (size_t)n);
	if (!rc && !head)
		rc = send_file(io, fd, size);
	close(fd);
	return rc;
}
