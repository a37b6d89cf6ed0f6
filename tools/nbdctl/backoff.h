/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The reconnect timing of nbdctl connect --persist (the backoff between
 * attempts, and how long one attempt may take), on its own so that it can
 * be tested without a kernel.
 */
#ifndef NBDCTL_BACKOFF_H
#define NBDCTL_BACKOFF_H

#include <stdbool.h>
#include <stdint.h>

#define BACKOFF_MIN_MS		500
#define BACKOFF_MAX_MS		30000

/*
 * The delay before the next attempt after one that waited @cur ms failed.
 * It doubles up to 30 s, and never beyond a quarter of the device's
 * dead-connection timeout (@dead_timeout_ms, 0 = none): with the plain
 * doubling, attempts at 0.5, 1.5, 3.5 ... 31.5 and 61.5 s would leave a
 * server that is back at 32 s unseen until after a 60 s timeout had
 * failed every held request; a quarter leaves at least three attempts
 * inside the timeout whenever the server returns.
 */
static inline int persist_next_backoff(int cur, uint32_t dead_timeout_ms)
{
	int cap = BACKOFF_MAX_MS, next = cur * 2;

	if (dead_timeout_ms && dead_timeout_ms / 4 < (uint32_t)cap)
		cap = (int)(dead_timeout_ms / 4);
	if (cap < BACKOFF_MIN_MS)
		cap = BACKOFF_MIN_MS;
	if (next > cap)
		next = cap;
	return next < BACKOFF_MIN_MS ? BACKOFF_MIN_MS : next;
}

/* The shortest deadline a reconnection attempt is cut to. */
#define ATTEMPT_MIN_MS		500

/*
 * The deadline of one reconnection attempt: @want_ms (--connect-timeout,
 * else NBDCTL_RECONNECT_TIMEOUT_S), but while the device holds requests
 * for a reconnection (@holding: no connection alive and the dead timeout
 * @dead_timeout_ms not over yet), at most half that timeout. The attempts
 * run one after the other: one that stalls (a server that accepts and
 * then hangs, a DNS server that does not answer) with a deadline as long
 * as the hold would leave no time for the next attempt, and the held
 * requests would fail even though the server came back meanwhile. Half
 * the hold leaves the other half to a new attempt. Outside a hold there
 * is nothing to save and a slow path gets its whole deadline.
 */
static inline int persist_attempt_ms(int want_ms, uint32_t dead_timeout_ms,
				     bool holding)
{
	uint32_t cap = dead_timeout_ms / 2;

	if (!holding || !dead_timeout_ms)
		return want_ms;
	if (cap < ATTEMPT_MIN_MS)
		cap = ATTEMPT_MIN_MS;
	return (uint32_t)want_ms > cap ? (int)cap : want_ms;
}

#endif
