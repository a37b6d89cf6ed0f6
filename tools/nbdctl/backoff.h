/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The reconnect backoff of nbdctl connect --persist, on its own so that it
 * can be tested without a kernel.
 */
#ifndef NBDCTL_BACKOFF_H
#define NBDCTL_BACKOFF_H

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

#endif
