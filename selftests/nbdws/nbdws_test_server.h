/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A scripted in-process NBD server for the selftests. It serves a memory
 * image correctly over up to TS_MAX_CONNS connections (one thread each)
 * and, when a request matches the trigger (command type and offset), does
 * one scripted wrong thing: a bad magic, an unknown cookie, a duplicate
 * reply, a reply on another connection, a truncated reply, too much data,
 * or it stops reading altogether. Everything else is served correctly so
 * that partition scans and unrelated I/O keep working and any failure the
 * test sees comes from the misbehaviour it asked for.
 *
 * It can also run the newstyle handshake as a server that only knows
 * NBD_OPT_EXPORT_NAME (every other option gets NBD_REP_ERR_UNSUP), which
 * is how browser-based servers behave.
 */
#ifndef _NBDWS_TEST_SERVER_H
#define _NBDWS_TEST_SERVER_H

#include <endian.h>
#include <pthread.h>
#include <stdatomic.h>

#include "nbd_proto.h"
#include "nbdws_test_util.h"

#define TS_MAX_CONNS	16
#define TS_MAX_PAYLOAD	(4 * 1024 * 1024)

enum ts_mode {
	TS_OK,
	TS_BAD_MAGIC,		/* reply header with a foreign magic */
	TS_UNKNOWN_COOKIE,	/* reply carrying a cookie never sent */
	TS_DUP_REPLY,		/* the right reply, then the same again */
	TS_WRONG_CONN,		/* reply sent on the next connection */
	TS_TRUNC_HEADER,	/* 8 bytes of header, then close */
	TS_TRUNC_DATA,		/* header and half the data, then close */
	TS_LONG_DATA,		/* data plus 512 bytes of garbage */
	TS_STOP_READING,	/* stop reading requests for good */
	TS_NO_REPLY,		/* swallow the request, keep serving */
	TS_ERR_REPLY,		/* an error reply carrying s->err */
};

struct ts_server;

struct ts_conn {
	struct ts_server *srv;
	int fd;
	int idx;
	bool started;
	pthread_t thr;
	pthread_mutex_t wlock;		/* replies are written whole */
	atomic_ullong reqs[8];		/* per NBDP_CMD_* */
};

struct ts_server {
	uint8_t *data;
	uint64_t size;
	pthread_mutex_t dlock;
	int nconns;
	struct ts_conn conns[TS_MAX_CONNS];
	/* The trigger: first request of @trig_type at @trig_off. */
	enum ts_mode mode;
	int trig_type;
	uint64_t trig_off;
	atomic_int triggered;
	atomic_int stop;
	uint32_t err;			/* TS_ERR_REPLY: the NBD error */
	/* Handshake parameters (ts_handshake_export_name). */
	uint16_t tx_flags;
	atomic_int opts_refused;
};

static inline int ts_read_full(struct ts_server *s, int fd, void *buf,
			       size_t len)
{
	size_t done = 0;

	while (done < len) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (atomic_load(&s->stop))
			return -1;
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		n = read(fd, (char *)buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += n;
	}
	return 0;
}

static inline int ts_write_full(int fd, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = send(fd, (const char *)buf + done, len - done,
				 MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += n;
	}
	return 0;
}

static inline void ts_put_reply(uint8_t *h, uint32_t magic, uint32_t err,
				uint64_t cookie)
{
	uint32_t m = htobe32(magic), e = htobe32(err);
	uint64_t c = htobe64(cookie);

	memcpy(h, &m, 4);
	memcpy(h + 4, &e, 4);
	memcpy(h + 8, &c, 8);
}

/* Send header + optional data atomically with respect to other replies. */
static inline int ts_send_reply(struct ts_conn *c, const uint8_t *hdr,
				size_t hlen, const void *data, size_t dlen)
{
	int ret;

	pthread_mutex_lock(&c->wlock);
	ret = ts_write_full(c->fd, hdr, hlen);
	if (!ret && dlen)
		ret = ts_write_full(c->fd, data, dlen);
	pthread_mutex_unlock(&c->wlock);
	return ret;
}

/*
 * Do the scripted wrong thing for a READ (data holds the right bytes).
 * Returns 1 to end this connection's thread, 0 to keep serving.
 */
static inline int ts_misbehave(struct ts_conn *c, uint64_t cookie,
			       const uint8_t *data, uint32_t len)
{
	struct ts_server *s = c->srv;
	uint8_t h[16], junk[512];
	struct ts_conn *other;

	switch (s->mode) {
	case TS_BAD_MAGIC:
		ts_put_reply(h, 0xdeadbeef, 0, cookie);
		ts_send_reply(c, h, 16, data, len);
		return 0;
	case TS_UNKNOWN_COOKIE:
		ts_put_reply(h, NBDP_SIMPLE_REPLY_MAGIC, 0,
			     cookie ^ 0xa5a5a5a5a5a5a5a5ULL);
		ts_send_reply(c, h, 16, data, len);
		return 0;
	case TS_DUP_REPLY:
		ts_put_reply(h, NBDP_SIMPLE_REPLY_MAGIC, 0, cookie);
		ts_send_reply(c, h, 16, data, len);
		tu_msleep(200);
		ts_send_reply(c, h, 16, data, len);
		return 0;
	case TS_WRONG_CONN:
		other = &s->conns[(c->idx + 1) % s->nconns];
		ts_put_reply(h, NBDP_SIMPLE_REPLY_MAGIC, 0, cookie);
		ts_send_reply(other, h, 16, data, len);
		return 0;
	case TS_TRUNC_HEADER:
		ts_put_reply(h, NBDP_SIMPLE_REPLY_MAGIC, 0, cookie);
		ts_send_reply(c, h, 8, NULL, 0);
		tu_msleep(100);
		shutdown(c->fd, SHUT_RDWR);
		return 1;
	case TS_TRUNC_DATA:
		ts_put_reply(h, NBDP_SIMPLE_REPLY_MAGIC, 0, cookie);
		ts_send_reply(c, h, 16, data, len / 2);
		tu_msleep(100);
		shutdown(c->fd, SHUT_RDWR);
		return 1;
	case TS_LONG_DATA:
		/* Garbage that cannot be mistaken for a reply header. */
		memset(junk, 0x5c, sizeof(junk));
		ts_put_reply(h, NBDP_SIMPLE_REPLY_MAGIC, 0, cookie);
		pthread_mutex_lock(&c->wlock);
		ts_write_full(c->fd, h, 16);
		ts_write_full(c->fd, data, len);
		ts_write_full(c->fd, junk, sizeof(junk));
		pthread_mutex_unlock(&c->wlock);
		return 0;
	case TS_NO_REPLY:
		return 0;
	case TS_ERR_REPLY:
		ts_put_reply(h, NBDP_SIMPLE_REPLY_MAGIC, s->err, cookie);
		ts_send_reply(c, h, 16, NULL, 0);
		return 0;
	default:
		return 0;
	}
}

static inline bool ts_is_trigger(struct ts_server *s, int type, uint64_t off)
{
	int expected = 0;

	if (s->mode == TS_OK || type != s->trig_type || off != s->trig_off)
		return false;
	return atomic_compare_exchange_strong(&s->triggered, &expected, 1);
}

static inline void *ts_conn_thread(void *arg)
{
	struct ts_conn *c = arg;
	struct ts_server *s = c->srv;
	uint8_t *buf = malloc(TS_MAX_PAYLOAD);

	for (;;) {
		uint8_t req[NBDP_REQUEST_SIZE], h[16];
		uint32_t magic, len, err = 0;
		uint16_t flags, type;
		uint64_t cookie, off;

		if (ts_read_full(s, c->fd, req, sizeof(req)))
			break;
		memcpy(&magic, req, 4);
		memcpy(&flags, req + 4, 2);
		memcpy(&type, req + 6, 2);
		memcpy(&cookie, req + 8, 8);
		memcpy(&off, req + 16, 8);
		memcpy(&len, req + 24, 4);
		magic = be32toh(magic);
		flags = be16toh(flags);
		type = be16toh(type);
		cookie = be64toh(cookie);
		off = be64toh(off);
		len = be32toh(len);
		(void)flags;
		if (magic != NBDP_REQUEST_MAGIC || len > TS_MAX_PAYLOAD)
			break;
		if (type < 8)
			atomic_fetch_add(&c->reqs[type], 1);
		if (type == NBDP_CMD_DISC)
			break;
		if (type == NBDP_CMD_WRITE &&
		    ts_read_full(s, c->fd, buf, len))
			break;
		if (ts_is_trigger(s, type, off)) {
			if (s->mode == TS_STOP_READING) {
				while (!atomic_load(&s->stop))
					tu_msleep(50);
				break;
			}
			if (type == NBDP_CMD_READ && off + len <= s->size) {
				pthread_mutex_lock(&s->dlock);
				memcpy(buf, s->data + off, len);
				pthread_mutex_unlock(&s->dlock);
			}
			if (ts_misbehave(c, cookie, buf,
					 type == NBDP_CMD_READ ? len : 0))
				break;
			continue;
		}
		if (off + len > s->size || off + len < off) {
			err = NBDP_EINVAL;
		} else {
			pthread_mutex_lock(&s->dlock);
			switch (type) {
			case NBDP_CMD_READ:
				memcpy(buf, s->data + off, len);
				break;
			case NBDP_CMD_WRITE:
				memcpy(s->data + off, buf, len);
				break;
			case NBDP_CMD_TRIM:
			case NBDP_CMD_WRITE_ZEROES:
				memset(s->data + off, 0, len);
				break;
			case NBDP_CMD_FLUSH:
				break;
			default:
				err = NBDP_EINVAL;
			}
			pthread_mutex_unlock(&s->dlock);
		}
		ts_put_reply(h, NBDP_SIMPLE_REPLY_MAGIC, err, cookie);
		if (ts_send_reply(c, h, 16, buf,
				  type == NBDP_CMD_READ && !err ? len : 0))
			break;
	}
	/* Whatever ended the loop, the peer sees the connection end. */
	shutdown(c->fd, SHUT_RDWR);
	free(buf);
	return NULL;
}

static inline int ts_init(struct ts_server *s, uint64_t size, uint64_t seed)
{
	memset(s, 0, sizeof(*s));
	s->size = size;
	s->data = malloc(size);
	if (!s->data)
		return -ENOMEM;
	if (seed)
		tu_pattern(s->data, 0, size, seed);
	else
		memset(s->data, 0, size);
	pthread_mutex_init(&s->dlock, NULL);
	s->tx_flags = NBDP_FLAG_HAS_FLAGS | NBDP_FLAG_SEND_FLUSH |
		      NBDP_FLAG_SEND_FUA | NBDP_FLAG_SEND_TRIM |
		      NBDP_FLAG_SEND_WRITE_ZEROES | NBDP_FLAG_CAN_MULTI_CONN;
	return 0;
}

/* Serve the transmission phase on @fd (already past any handshake). */
static inline int ts_add_conn(struct ts_server *s, int fd)
{
	struct ts_conn *c;

	if (s->nconns >= TS_MAX_CONNS)
		return -ENOSPC;
	c = &s->conns[s->nconns];
	c->srv = s;
	c->fd = fd;
	c->idx = s->nconns;
	pthread_mutex_init(&c->wlock, NULL);
	s->nconns++;
	if (pthread_create(&c->thr, NULL, ts_conn_thread, c))
		return -EAGAIN;
	c->started = true;
	return 0;
}

/* Arm the misbehaviour for the first @type request at @off. */
static inline void ts_arm(struct ts_server *s, enum ts_mode mode, int type,
			  uint64_t off)
{
	s->trig_type = type;
	s->trig_off = off;
	atomic_store(&s->triggered, 0);
	s->mode = mode;
}

static inline void ts_stop(struct ts_server *s)
{
	int i;

	atomic_store(&s->stop, 1);
	for (i = 0; i < s->nconns; i++) {
		if (!s->conns[i].started)
			continue;
		shutdown(s->conns[i].fd, SHUT_RDWR);
		pthread_join(s->conns[i].thr, NULL);
		s->conns[i].started = false;
		close(s->conns[i].fd);
	}
	s->nconns = 0;
	free(s->data);
	s->data = NULL;
}

static inline uint64_t ts_count(struct ts_server *s, int type)
{
	uint64_t n = 0;
	int i;

	for (i = 0; i < s->nconns; i++)
		n += atomic_load(&s->conns[i].reqs[type]);
	return n;
}

/*
 * Server side of the fixed newstyle handshake, for a server that knows
 * only NBD_OPT_EXPORT_NAME. Returns 0 once in transmission, -1 otherwise.
 */
static inline int ts_handshake_export_name(struct ts_server *s, int fd)
{
	uint8_t hello[18], zeroes[124] = { 0 };
	uint64_t v64;
	uint32_t cflags;
	uint16_t v16;
	bool no_zeroes;

	v64 = htobe64(NBDP_INIT_PASSWD);
	memcpy(hello, &v64, 8);
	v64 = htobe64(NBDP_IHAVEOPT);
	memcpy(hello + 8, &v64, 8);
	v16 = htobe16(NBDP_FLAG_FIXED_NEWSTYLE | NBDP_FLAG_NO_ZEROES);
	memcpy(hello + 16, &v16, 2);
	if (ts_write_full(fd, hello, sizeof(hello)) ||
	    ts_read_full(s, fd, &cflags, 4))
		return -1;
	no_zeroes = be32toh(cflags) & NBDP_FLAG_C_NO_ZEROES;
	for (;;) {
		uint8_t opt[16], rep[20];
		uint32_t option, len, v32;
		char name[4096];

		if (ts_read_full(s, fd, opt, sizeof(opt)))
			return -1;
		memcpy(&v64, opt, 8);
		memcpy(&option, opt + 8, 4);
		memcpy(&len, opt + 12, 4);
		option = be32toh(option);
		len = be32toh(len);
		if (be64toh(v64) != NBDP_IHAVEOPT || len > sizeof(name))
			return -1;
		if (len && ts_read_full(s, fd, name, len))
			return -1;
		if (option == NBDP_OPT_EXPORT_NAME) {
			uint8_t tail[10];

			v64 = htobe64(s->size);
			memcpy(tail, &v64, 8);
			v16 = htobe16(s->tx_flags);
			memcpy(tail + 8, &v16, 2);
			if (ts_write_full(fd, tail, sizeof(tail)))
				return -1;
			if (!no_zeroes &&
			    ts_write_full(fd, zeroes, sizeof(zeroes)))
				return -1;
			return 0;
		}
		if (option == NBDP_OPT_ABORT)
			return -1;
		atomic_fetch_add(&s->opts_refused, 1);
		v64 = htobe64(NBDP_OPT_REPLY_MAGIC);
		memcpy(rep, &v64, 8);
		v32 = htobe32(option);
		memcpy(rep + 8, &v32, 4);
		v32 = htobe32(NBDP_REP_ERR_UNSUP);
		memcpy(rep + 12, &v32, 4);
		v32 = 0;
		memcpy(rep + 16, &v32, 4);
		if (ts_write_full(fd, rep, sizeof(rep)))
			return -1;
	}
}

/*
 * A listener thread: accepts on a unix socket, runs the EXPORT_NAME-only
 * handshake and then serves each connection.
 */
struct ts_listener {
	struct ts_server *srv;
	int lfd;
	pthread_t thr;
	bool started;
	atomic_int accepted, handshakes;
};

static inline void *ts_listener_thread(void *arg)
{
	struct ts_listener *l = arg;

	while (!atomic_load(&l->srv->stop)) {
		struct pollfd pfd = { .fd = l->lfd, .events = POLLIN };
		int fd;

		if (poll(&pfd, 1, 100) <= 0)
			continue;
		fd = accept4(l->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		atomic_fetch_add(&l->accepted, 1);
		if (ts_handshake_export_name(l->srv, fd) ||
		    l->srv->nconns >= TS_MAX_CONNS) {
			close(fd);
			continue;
		}
		atomic_fetch_add(&l->handshakes, 1);
		if (ts_add_conn(l->srv, fd))
			close(fd);
	}
	return NULL;
}

static inline int ts_listen_unix(struct ts_listener *l, struct ts_server *s,
				 const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };

	memset(l, 0, sizeof(*l));
	l->srv = s;
	if (strlen(path) >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	memcpy(a.sun_path, path, strlen(path) + 1);
	unlink(path);
	l->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l->lfd < 0)
		return -errno;
	if (bind(l->lfd, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(l->lfd, 8)) {
		close(l->lfd);
		return -errno;
	}
	if (pthread_create(&l->thr, NULL, ts_listener_thread, l))
		return -EAGAIN;
	l->started = true;
	return 0;
}

/* Stop accepting (the server's stop flag must be set first, or is set). */
static inline void ts_listener_stop(struct ts_listener *l)
{
	if (!l->started)
		return;
	atomic_store(&l->srv->stop, 1);
	pthread_join(l->thr, NULL);
	close(l->lfd);
	l->started = false;
}

#endif /* _NBDWS_TEST_SERVER_H */
