/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nbdws-relay: userspace framing, for when the kernel cannot take the
 * client's socket (kTLS unavailable for the session, or --fallback for
 * comparison). The kernel gets one end of a socketpair as a PLAIN
 * connection; the relay pumps between the other end and the client's
 * WebSocket: NBD requests from the kernel go out as unmasked binary
 * messages, masked frames from the client are unmasked into the
 * socketpair, pings are answered, a close ends the pump. This is the shape
 * of nbd-proxy and the benchmark's baseline; it is event-driven like the
 * rest of the relay, with bounded buffers and back-pressure both ways.
 */
#ifndef _RELAY_FALLBACK_H
#define _RELAY_FALLBACK_H

#include <stddef.h>

#include "nbdws_types.h"
#include "tls.h"

struct fallback;

/*
 * Called from the loop once, when the pump has ended: the client closed
 * (@code is its close code, 1005 if none, 1006 if the TCP connection
 * ended without a close), a framing error (the close code we sent), or
 * the kernel side went away. Every fd is closed by then.
 */
typedef void (*fallback_end_fn)(void *arg, u16 code, const char *reason);

/*
 * Start pumping. Takes ownership of @client_fd, of @tls (NULL for a plain
 * connection; the session stays in userspace) and of @kernel_fd (the
 * relay's end of the socketpair). @preread (copied) are the raw bytes read
 * past the NBD handshake, frame bytes the decoder must see first. NULL on
 * ENOMEM (nothing taken then).
 *
 * Owning @tls means ending the session (tls_free()) and freeing the
 * struct, which must therefore come from malloc(); OpenSSL's callbacks
 * point at it, so it lives exactly as long as the pump. If SIGPIPE is still at its default,
 * starting a TLS pump ignores it: SSL_write() cannot take MSG_NOSIGNAL.
 * The reason given to @end may come from the client: sanitise it before
 * printing it.
 */
struct fallback *fallback_start(int client_fd, struct tls_conn *tls,
				const u8 *preread, size_t preread_len,
				int kernel_fd, fallback_end_fn end, void *arg);

/*
 * Send a close frame with @code and @reason (best effort) and end the
 * pump; @end is not called. Frees @f.
 */
void fallback_stop(struct fallback *f, u16 code, const char *reason);

/* Payload bytes moved: client to kernel, kernel to client. */
void fallback_stats(const struct fallback *f, u64 *to_kernel,
		    u64 *to_client);

#endif /* _RELAY_FALLBACK_H */
