// SPDX-License-Identifier: GPL-2.0
/*
 * nbdws-relay: WebSocket framing in userspace between a client and the
 * relay's end of the kernel's socketpair (see fallback.h).
 *
 * Two directions, independent and each bounded:
 *  - client to kernel: raw bytes from the client land in @in; the shared
 *    decoder (ws_frame.h, server role) parses frame headers and control
 *    frames there, and data payload is unmasked while it is copied into
 *    the ring @tok, which goes to the kernel with sendmsg(). The client is
 *    not read while @tok is full.
 *  - kernel to client: one read from the kernel into @toc becomes one
 *    unmasked binary frame whose header is written right in front of the
 *    payload, so header and payload leave in one send() (or SSL_write()).
 *    The kernel is not read while that frame waits.
 * Control frames (pong, close) go out between data frames, never inside
 * one. Nothing is allocated after fallback_start().
 *
 * Readiness is kept per operation, not per fd: an operation is tried until
 * it would block and then waits for the event it blocked on (with TLS a
 * read can block on EPOLLOUT and a write on EPOLLIN, during a key update).
 * The epoll interest of each fd is exactly what the wanted operations wait
 * for, so a level-triggered loop never wakes us for nothing; and because a
 * TLS session can hold decrypted bytes the fd no longer shows, a read is
 * retried whenever buffer space frees up, not only on EPOLLIN.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <fcntl.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "fallback.h"
#include "loop.h"
#include "nbd_sock.h"
#include "ws_frame.h"

/*
 * Buffer sizes: big enough that one syscall moves a 1 MiB NBD reply in a
 * handful of steps, small enough that a stalled peer pins little memory.
 */
#define FB_IN_BUF	((size_t)128 * 1024)	/* raw bytes from the client */
#define FB_TOK_BUF	((size_t)256 * 1024)	/* unmasked payload for the kernel */
#define FB_TOC_BUF	((size_t)256 * 1024)	/* one frame for the client */
#define FB_TOC_HDR	10		/* unmasked header, 64-bit length */

/* After our close frame, how long the client may take to hang up. */
#define FB_LINGER_MS	1000
/* fallback_stop(): how long it may try to get the close frame out. */
#define FB_STOP_FLUSH_MS 100

#define FB_GONE_REASON	"the NBD device's connection ended"
#define FB_LOST_REASON	"the client's connection ended"
#define FB_CLOSE_ABNORMAL 1006	/* ended without a close frame */

enum fb_state {
	FB_RUN,		/* pumping both ways */
	FB_CLOSING,	/* kernel side closed; close frame out, then hang up */
};

enum fb_out {
	FB_OUT_NONE,
	FB_OUT_DATA,	/* the frame in @toc */
	FB_OUT_CTRL,	/* the frame in @ctrl */
};

struct fallback {
	int cfd;			/* client socket */
	int kfd;			/* our end of the socketpair, -1 closed */
	struct tls_conn *tls;		/* client session, or NULL */
	fallback_end_fn end;
	void *arg;
	enum fb_state state;
	bool finish;			/* pump ends us when it returns */
	bool close_sent;		/* our close frame is out */
	bool peer_closed;		/* the client's close frame came */

	struct loop_watch cw, kw;
	u32 cw_ev, kw_ev;		/* epoll interest as set now */
	struct loop_defer kick;
	struct loop_timer linger;

	/* What each operation waits for; 0: try it now. */
	u32 c_rd_wait, c_wr_wait, k_rd_wait, k_wr_wait;

	struct ws_dec dec;

	u8 *in;				/* raw client bytes [in_start, in_end) */
	size_t in_start, in_end, in_size;

	u8 *tok;			/* ring of payload for the kernel */
	size_t tok_head, tok_len;

	u8 *toc;			/* FB_TOC_HDR + payload */
	size_t toc_hlen, toc_len;	/* header, payload; toc_len 0: empty */

	u8 ctrl[WS_MAX_HEADER + WS_MAX_CONTROL];

	enum fb_out out;		/* frame being sent to the client */
	bool out_close;			/* ... and it is our close frame */
	const u8 *out_p;
	size_t out_len, out_sent;

	bool pong_pending;		/* answer to the latest ping */
	u8 pong_len;
	u8 pong[WS_MAX_CONTROL];
	bool close_pending;
	u8 close_len;
	u8 close_payload[WS_MAX_CONTROL];

	u16 end_code;			/* for end() */
	char end_reason[WS_MAX_CONTROL + 1];

	u64 to_kernel, to_client;
};

static void fb_pump(struct fallback *f, u32 cev, u32 kev);

/* ---- I/O on each side: >0 bytes, 0 end of stream, -EAGAIN, -errno ---- */

static ssize_t client_read(struct fallback *f, u8 *buf, size_t len)
{
	ssize_t n;

	if (f->tls) {
		size_t got = 0;
		int rc, e;

		ERR_clear_error();
		rc = SSL_read_ex(f->tls->ssl, buf, len, &got);
		if (rc == 1)
			return (ssize_t)got;
		e = SSL_get_error(f->tls->ssl, rc);
		ERR_clear_error();
		if (e == SSL_ERROR_WANT_READ) {
			f->c_rd_wait = EPOLLIN;
			return -EAGAIN;
		}
		if (e == SSL_ERROR_WANT_WRITE) {
			f->c_rd_wait = EPOLLOUT;
			return -EAGAIN;
		}
		/* close_notify, or the TCP end without one */
		return e == SSL_ERROR_ZERO_RETURN ? 0 : -ECONNRESET;
	}
	do {
		n = read(f->cfd, buf, len);
	} while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		f->c_rd_wait = EPOLLIN;
		return -EAGAIN;
	}
	return n < 0 ? -errno : n;
}

static ssize_t client_write(struct fallback *f, const u8 *buf, size_t len)
{
	ssize_t n;

	if (f->tls) {
		size_t done = 0;
		int rc, e;

		ERR_clear_error();
		rc = SSL_write_ex(f->tls->ssl, buf, len, &done);
		if (rc == 1)
			return (ssize_t)done;
		e = SSL_get_error(f->tls->ssl, rc);
		ERR_clear_error();
		if (e == SSL_ERROR_WANT_WRITE) {
			f->c_wr_wait = EPOLLOUT;
			return -EAGAIN;
		}
		if (e == SSL_ERROR_WANT_READ) {
			f->c_wr_wait = EPOLLIN;
			return -EAGAIN;
		}
		return -EPIPE;
	}
	do {
		n = send(f->cfd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		f->c_wr_wait = EPOLLOUT;
		return -EAGAIN;
	}
	return n < 0 ? -errno : n;
}

static ssize_t kernel_read(struct fallback *f, u8 *buf, size_t len)
{
	ssize_t n;

	do {
		n = read(f->kfd, buf, len);
	} while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		f->k_rd_wait = EPOLLIN;
		return -EAGAIN;
	}
	return n < 0 ? -errno : n;
}

/* The ring @tok out in (at most) two pieces. */
static ssize_t kernel_write(struct fallback *f)
{
	struct iovec iov[2];
	struct msghdr msg = { .msg_iov = iov };
	size_t first = FB_TOK_BUF - f->tok_head;
	ssize_t n;

	if (first > f->tok_len)
		first = f->tok_len;
	iov[0].iov_base = f->tok + f->tok_head;
	iov[0].iov_len = first;
	iov[1].iov_base = f->tok;
	iov[1].iov_len = f->tok_len - first;
	msg.msg_iovlen = iov[1].iov_len ? 2 : 1;
	do {
		n = sendmsg(f->kfd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		f->k_wr_wait = EPOLLOUT;
		return -EAGAIN;
	}
	return n < 0 ? -errno : n;
}

/* ---- ending ---- */

static void close_kernel(struct fallback *f)
{
	if (f->kfd < 0)
		return;
	loop_watch_del(&f->kw);
	/* EOF now, even if the kernel still holds a reference. */
	shutdown(f->kfd, SHUT_RDWR);
	close(f->kfd);
	f->kfd = -1;
	f->kw_ev = 0;
}

static void set_end(struct fallback *f, u16 code, const char *reason,
		    size_t reason_len)
{
	if (reason_len > sizeof(f->end_reason) - 1)
		reason_len = sizeof(f->end_reason) - 1;
	f->end_code = code;
	memcpy(f->end_reason, reason, reason_len);
	f->end_reason[reason_len] = '\0';
}

static void on_linger(void *arg)
{
	struct fallback *f = arg;

	/* The client did not hang up in time: we do. */
	f->finish = true;
	fb_pump(f, 0, 0);
}

/*
 * Stop pumping data: the kernel side is closed at once (the kernel sees
 * EOF and holds the device for a reconnect), then the close frame goes to
 * the client after whatever frame is half sent. @send_code 0 sends a close
 * frame without a status (the echo of one that had none).
 */
static void begin_close(struct fallback *f, u16 send_code,
			const char *send_reason)
{
	size_t rlen = send_reason ? strlen(send_reason) : 0;

	if (f->state == FB_CLOSING)
		return;
	f->state = FB_CLOSING;
	close_kernel(f);
	f->pong_pending = false;
	if (f->out == FB_OUT_DATA && !f->out_sent)
		f->out = FB_OUT_NONE;	/* not started: dropped */
	f->toc_len = 0;
	f->close_pending = true;
	f->close_len = 0;
	if (send_code) {
		if (rlen > WS_MAX_CONTROL - 2)
			rlen = WS_MAX_CONTROL - 2;
		f->close_len = (u8)ws_close_payload(f->close_payload, send_code);
		if (rlen)
			memcpy(f->close_payload + 2, send_reason, rlen);
		f->close_len += (u8)rlen;
	}
	loop_timer_arm(&f->linger, nbd_now_ms() + FB_LINGER_MS, on_linger, f);
}

/* The client's TCP connection ended or failed: nothing more to say. */
static void client_gone(struct fallback *f)
{
	if (f->state == FB_RUN)
		set_end(f, FB_CLOSE_ABNORMAL, FB_LOST_REASON,
			sizeof(FB_LOST_REASON) - 1);
	f->finish = true;
}

static void kernel_gone(struct fallback *f)
{
	set_end(f, WS_CLOSE_GOING_AWAY, FB_GONE_REASON,
		sizeof(FB_GONE_REASON) - 1);
	begin_close(f, WS_CLOSE_GOING_AWAY, FB_GONE_REASON);
}

static void fb_free(struct fallback *f)
{
	loop_defer_cancel(&f->kick);
	loop_timer_cancel(&f->linger);
	close_kernel(f);
	loop_watch_del(&f->cw);
	if (f->tls) {
		tls_free(f->tls);	/* close_notify, best effort */
		free(f->tls);
	}
	close(f->cfd);
	free(f->in);
	free(f->tok);
	free(f->toc);
	free(f);
}

static void fb_finish(struct fallback *f)
{
	fallback_end_fn end = f->end;
	void *arg = f->arg;
	char reason[sizeof(f->end_reason)];
	u16 code = f->end_code;

	memcpy(reason, f->end_reason, sizeof(reason));
	fb_free(f);
	if (end)
		end(arg, code, reason);
}

/* ---- client to kernel ---- */

/* Contiguous free space at the ring's tail. */
static size_t tok_space(struct fallback *f, u8 **dst)
{
	size_t tail;

	if (!f->tok_len)
		f->tok_head = 0;
	tail = f->tok_head + f->tok_len;
	if (tail >= FB_TOK_BUF) {
		tail -= FB_TOK_BUF;
		*dst = f->tok + tail;
		return f->tok_head - tail;
	}
	*dst = f->tok + tail;
	return FB_TOK_BUF - tail;
}

static void on_ping(struct fallback *f, const struct ws_event *ev)
{
	/* Only the latest ping needs its pong (RFC 6455 5.5.3). */
	memcpy(f->pong, ev->payload, ev->payload_len);
	f->pong_len = ev->payload_len;
	f->pong_pending = true;
}

/* Run the decoder over @in; returns true if anything was consumed. */
static bool decode(struct fallback *f)
{
	bool moved = false;

	while (f->state == FB_RUN) {
		u64 left = ws_dec_data_left(&f->dec);
		size_t avail = f->in_end - f->in_start;
		struct ws_event ev;
		size_t used;

		if (left) {
			u8 *dst;
			size_t n = tok_space(f, &dst);

			if (!avail || !n)
				break;
			if (n > avail)
				n = avail;
			if (n > left)
				n = (size_t)left;
			ws_dec_data_copy(&f->dec, dst, f->in + f->in_start, n);
			f->in_start += n;
			f->tok_len += n;
			moved = true;
			continue;
		}
		used = ws_dec_parse(&f->dec, f->in + f->in_start, avail, &ev);
		f->in_start += used;
		moved |= used > 0;
		switch (ev.type) {
		case WS_EV_NEED_MORE:
			goto out;
		case WS_EV_DATA:
		case WS_EV_PONG:
			break;
		case WS_EV_PING:
			on_ping(f, &ev);
			break;
		case WS_EV_CLOSE:
			/* Echo the code (none if none came) and hang up. */
			f->peer_closed = true;
			set_end(f, ev.close_code, ev.reason, ev.reason_len);
			begin_close(f, ev.close_code == WS_CLOSE_NO_STATUS ?
				    0 : ev.close_code, NULL);
			break;
		case WS_EV_ERROR:
			set_end(f, ev.close_code, ev.reason, ev.reason_len);
			begin_close(f, ev.close_code, ev.reason);
			break;
		}
	}
out:
	if (f->in_start == f->in_end)
		f->in_start = f->in_end = 0;
	return moved;
}

static bool want_client_read(struct fallback *f)
{
	if (f->state == FB_CLOSING)
		return f->close_sent && !f->peer_closed;
	return f->tok_len < FB_TOK_BUF &&
	       (f->in_start || f->in_end < f->in_size);
}

static bool step_client_read(struct fallback *f)
{
	ssize_t n;

	if (!want_client_read(f) || f->c_rd_wait)
		return false;
	if (f->state == FB_CLOSING) {
		/* Lingering: drop what still comes until the client hangs up. */
		n = client_read(f, f->in, f->in_size);
		if (n == -EAGAIN)
			return false;
		if (n <= 0)
			f->finish = true;
		return true;
	}
	if (f->in_start) {
		memmove(f->in, f->in + f->in_start, f->in_end - f->in_start);
		f->in_end -= f->in_start;
		f->in_start = 0;
	}
	n = client_read(f, f->in + f->in_end, f->in_size - f->in_end);
	if (n == -EAGAIN)
		return false;
	if (n <= 0) {
		client_gone(f);
		return true;
	}
	f->in_end += (size_t)n;
	decode(f);
	return true;
}

static bool step_kernel_write(struct fallback *f)
{
	ssize_t n;

	if (f->state != FB_RUN || !f->tok_len || f->k_wr_wait)
		return false;
	n = kernel_write(f);
	if (n == -EAGAIN)
		return false;
	if (n < 0) {
		kernel_gone(f);
		return true;
	}
	f->to_kernel += (u64)n;
	f->tok_len -= (size_t)n;
	f->tok_head = (f->tok_head + (size_t)n) % FB_TOK_BUF;
	/* Room again: payload waiting in @in can move on. */
	if (f->in_end > f->in_start)
		decode(f);
	return true;
}

/* ---- kernel to client ---- */

static bool step_kernel_read(struct fallback *f)
{
	u8 *payload = f->toc + FB_TOC_HDR;
	u8 hdr[WS_MAX_HEADER];
	ssize_t n;

	if (f->state != FB_RUN || f->toc_len || f->k_rd_wait)
		return false;
	n = kernel_read(f, payload, FB_TOC_BUF - FB_TOC_HDR);
	if (n == -EAGAIN)
		return false;
	if (n <= 0) {
		kernel_gone(f);
		return true;
	}
	/* The header goes right in front of the payload: one send. */
	f->toc_hlen = ws_frame_header(hdr, WS_OP_BINARY, true, (u64)n, NULL);
	memcpy(payload - f->toc_hlen, hdr, f->toc_hlen);
	f->toc_len = (size_t)n;
	f->to_client += (u64)n;
	return true;
}

static void start_ctrl(struct fallback *f, u8 op, const u8 *payload,
		       size_t len)
{
	size_t hlen = ws_frame_header(f->ctrl, op, true, len, NULL);

	memcpy(f->ctrl + hlen, payload, len);
	f->out = FB_OUT_CTRL;
	f->out_close = op == WS_OP_CLOSE;
	f->out_p = f->ctrl;
	f->out_len = hlen + len;
	f->out_sent = 0;
}

/* Choose the next frame for the client; false if there is none. */
static bool next_out(struct fallback *f)
{
	if (f->out != FB_OUT_NONE)
		return true;
	if (f->pong_pending) {
		f->pong_pending = false;
		start_ctrl(f, WS_OP_PONG, f->pong, f->pong_len);
	} else if (f->close_pending) {
		f->close_pending = false;
		start_ctrl(f, WS_OP_CLOSE, f->close_payload, f->close_len);
	} else if (f->toc_len && f->state == FB_RUN) {
		f->out = FB_OUT_DATA;
		f->out_close = false;
		f->out_p = f->toc + FB_TOC_HDR - f->toc_hlen;
		f->out_len = f->toc_hlen + f->toc_len;
		f->out_sent = 0;
	}
	return f->out != FB_OUT_NONE;
}

/* Our close frame is out: hang up, or wait for the client to. */
static void after_close_sent(struct fallback *f)
{
	f->close_sent = true;
	if (f->peer_closed) {
		/* RFC 6455 7.1.1: the server closes the TCP connection first. */
		f->finish = true;
		return;
	}
	/*
	 * We closed first: tell the client we are done writing and drain
	 * what it still sends, so that closing with unread bytes does not
	 * turn into a reset that could destroy our close frame in flight.
	 */
	if (f->tls) {
		ERR_clear_error();
		SSL_shutdown(f->tls->ssl);
		ERR_clear_error();
	}
	shutdown(f->cfd, SHUT_WR);
	f->c_rd_wait = 0;
}

static bool step_client_write(struct fallback *f)
{
	ssize_t n;

	if (f->close_sent || f->c_wr_wait || !next_out(f))
		return false;
	n = client_write(f, f->out_p + f->out_sent, f->out_len - f->out_sent);
	if (n == -EAGAIN)
		return false;
	if (n < 0) {
		client_gone(f);
		return true;
	}
	f->out_sent += (size_t)n;
	if (f->out_sent < f->out_len)
		return true;
	if (f->out == FB_OUT_DATA)
		f->toc_len = 0;
	f->out = FB_OUT_NONE;
	if (f->out_close)
		after_close_sent(f);
	return true;
}

/* ---- the pump ---- */

static u32 client_interest(struct fallback *f)
{
	u32 ev = 0;

	if (want_client_read(f))
		ev |= f->c_rd_wait;
	if (!f->close_sent && (f->out != FB_OUT_NONE || f->pong_pending ||
			       f->close_pending ||
			       (f->toc_len && f->state == FB_RUN)))
		ev |= f->c_wr_wait;
	return ev;
}

static u32 kernel_interest(struct fallback *f)
{
	u32 ev = 0;

	if (f->state != FB_RUN)
		return 0;
	if (!f->toc_len)
		ev |= f->k_rd_wait;
	if (f->tok_len)
		ev |= f->k_wr_wait;
	return ev;
}

/*
 * Move what can be moved. @cev and @kev are the events just reported for
 * the client and the kernel fd: they release the operations waiting for
 * them. An error or hang-up that no operation turns into progress ends
 * that side (an fd we are not reading would otherwise report it forever).
 */
static void fb_pump(struct fallback *f, u32 cev, u32 kev)
{
	bool any = false, progress;
	u32 ev;

	if (cev & (EPOLLERR | EPOLLHUP))
		cev |= EPOLLIN | EPOLLOUT;
	if (kev & (EPOLLERR | EPOLLHUP))
		kev |= EPOLLIN | EPOLLOUT;
	f->c_rd_wait &= ~cev;
	f->c_wr_wait &= ~cev;
	f->k_rd_wait &= ~kev;
	f->k_wr_wait &= ~kev;

	while (!f->finish) {
		progress = false;
		if (f->in_end > f->in_start && decode(f))
			progress = true;
		progress |= step_client_read(f);
		progress |= step_kernel_write(f);
		progress |= step_kernel_read(f);
		progress |= step_client_write(f);
		if (!progress)
			break;
		any = true;
	}

	if (!any && !f->finish) {
		if ((kev & (EPOLLERR | EPOLLHUP)) && f->state == FB_RUN)
			kernel_gone(f);
		else if (cev & (EPOLLERR | EPOLLHUP))
			client_gone(f);
	}
	if (f->finish) {
		fb_finish(f);
		return;
	}

	ev = client_interest(f);
	if (ev != f->cw_ev && !loop_watch_mod(&f->cw, ev))
		f->cw_ev = ev;
	if (f->kfd >= 0) {
		ev = kernel_interest(f);
		if (ev != f->kw_ev && !loop_watch_mod(&f->kw, ev))
			f->kw_ev = ev;
	}
}

static void on_client(void *arg, uint32_t events)
{
	fb_pump(arg, events, 0);
}

static void on_kernel(void *arg, uint32_t events)
{
	fb_pump(arg, 0, events);
}

static void on_kick(void *arg)
{
	fb_pump(arg, 0, 0);
}

/* ---- API ---- */

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/*
 * SSL_write() cannot be given MSG_NOSIGNAL: a browser that goes away must
 * not kill the relay with SIGPIPE. A daemon ignores it anyway; make sure.
 */
static void ignore_sigpipe(void)
{
	struct sigaction sa;

	if (!sigaction(SIGPIPE, NULL, &sa) && sa.sa_handler == SIG_DFL)
		signal(SIGPIPE, SIG_IGN);
}

struct fallback *fallback_start(int client_fd, struct tls_conn *tls,
				const u8 *preread, size_t preread_len,
				int kernel_fd, fallback_end_fn end, void *arg)
{
	struct fallback *f = calloc(1, sizeof(*f));
	int one = 1;

	if (!f)
		return NULL;
	f->in_size = preread_len > FB_IN_BUF ? preread_len : FB_IN_BUF;
	f->in = malloc(f->in_size);
	f->tok = malloc(FB_TOK_BUF);
	f->toc = malloc(FB_TOC_BUF);
	if (!f->in || !f->tok || !f->toc)
		goto fail;
	f->cfd = client_fd;
	f->kfd = kernel_fd;
	f->tls = tls;
	f->end = end;
	f->arg = arg;
	ws_dec_init(&f->dec, true);
	if (preread_len)
		memcpy(f->in, preread, preread_len);
	f->in_end = preread_len;

	if (tls) {
		ignore_sigpipe();
		/* Frames stay put until written: partial writes are fine. */
		SSL_set_mode(tls->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE |
			     SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	}
	if (set_nonblock(client_fd) || set_nonblock(kernel_fd))
		goto fail;
	/*
	 * NBD requests are small frames that must leave now, not when the
	 * previous one is acknowledged (Nagle). Not a TCP socket: no-op.
	 */
	(void)setsockopt(client_fd, IPPROTO_TCP, TCP_NODELAY, &one,
			 sizeof(one));
	if (loop_watch_add(&f->cw, client_fd, 0, on_client, f))
		goto fail;
	if (loop_watch_add(&f->kw, kernel_fd, 0, on_kernel, f)) {
		loop_watch_del(&f->cw);
		goto fail;
	}
	/* Not from here: end() must never run before we have returned. */
	loop_defer(&f->kick, on_kick, f);
	return f;
fail:
	free(f->in);
	free(f->tok);
	free(f->toc);
	free(f);
	return NULL;
}

/* Get the close frame out without the loop, for at most @ms. */
static void flush_close(struct fallback *f, int ms)
{
	long long deadline = nbd_now_ms() + ms;

	while (!f->close_sent && !f->finish) {
		struct pollfd p = { .fd = f->cfd };
		long long left;

		if (step_client_write(f))
			continue;
		left = deadline - nbd_now_ms();
		if (left <= 0 || !f->c_wr_wait)
			break;
		p.events = f->c_wr_wait & EPOLLIN ? POLLIN : POLLOUT;
		if (poll(&p, 1, (int)left) <= 0)
			break;
		f->c_wr_wait = 0;
	}
}

void fallback_stop(struct fallback *f, u16 code, const char *reason)
{
	if (!f)
		return;
	begin_close(f, code, reason);
	flush_close(f, FB_STOP_FLUSH_MS);
	f->end = NULL;
	fb_free(f);
}

void fallback_stats(const struct fallback *f, u64 *to_kernel,
		    u64 *to_client)
{
	*to_kernel = f->to_kernel;
	*to_client = f->to_client;
}
