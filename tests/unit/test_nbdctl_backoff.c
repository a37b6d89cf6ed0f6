// SPDX-License-Identifier: GPL-2.0
/*
 * nbdctl connect --persist's reconnect timing: the backoff doubles from
 * 0.5 s to 30 s, and never so long that a returning server is first
 * tried after the device's dead-connection timeout has failed the held
 * requests; during that hold no attempt's deadline is so long that one
 * stalled attempt leaves no time for the next.
 */
#include "kselftest_harness.h"

#include "../../tools/nbdctl/backoff.h"

/* Times (ms after the death) of the attempts made before @horizon_ms. */
static int attempts(uint32_t dead_ms, int horizon_ms, int *at, int max)
{
	int t = 0, delay = BACKOFF_MIN_MS, n = 0;

	while (n < max) {
		t += delay;
		if (t >= horizon_ms)
			break;
		at[n++] = t;
		delay = persist_next_backoff(delay, dead_ms);
	}
	return n;
}

TEST(doubles_up_to_thirty_seconds)
{
	int d = BACKOFF_MIN_MS, seen[16], i;

	for (i = 0; i < 16; i++) {
		seen[i] = d;
		d = persist_next_backoff(d, 0);
	}
	EXPECT_EQ(500, seen[0]);
	EXPECT_EQ(1000, seen[1]);
	EXPECT_EQ(16000, seen[5]);
	EXPECT_EQ(30000, seen[6]);
	EXPECT_EQ(30000, seen[15]);
}

/*
 * For dead timeouts from 2 s to an hour, and a server back at any
 * second inside the timeout but its last quarter, an attempt falls
 * between the server's return and the timeout.
 */
TEST(an_attempt_follows_any_return_inside_the_dead_timeout)
{
	static const uint32_t dead[] = { 2000, 10000, 30000, 60000, 120000,
					 3600000 };
	int at[4096];
	size_t k;

	for (k = 0; k < sizeof(dead) / sizeof(dead[0]); k++) {
		int n = attempts(dead[k], (int)dead[k], at, 4096);
		int back, i;

		for (back = 0; back < (int)dead[k] * 3 / 4; back += 1000) {
			for (i = 0; i < n && at[i] < back; i++)
				;
			EXPECT_LT(i, n) TH_LOG("dead %u ms, server back at %d ms: no attempt before the timeout",
					       dead[k], back);
		}
	}
}

/* The plain doubling missed this case: 60 s timeout, server back at 32 s. */
TEST(sixty_second_timeout_server_back_at_32s)
{
	int at[64], n = attempts(60000, 60000, at, 64), i;

	for (i = 0; i < n && at[i] < 32000; i++)
		;
	ASSERT_LT(i, n);
	EXPECT_LT(at[i], 60000);
}

TEST(tiny_dead_timeout_keeps_the_minimum)
{
	EXPECT_EQ(BACKOFF_MIN_MS, persist_next_backoff(500, 1000));
	EXPECT_EQ(BACKOFF_MIN_MS, persist_next_backoff(4000, 100));
}

/*
 * When the connection is back (ms after the death), or -1 if not within
 * ten dead timeouts, in the worst case for sequential attempts: every
 * attempt started before the server returns at @return_ms stalls for its
 * whole deadline (a hung server, a silent DNS server), the first one
 * started after it connects at once.
 */
static int back_at(int want_ms, uint32_t dead_ms, int return_ms)
{
	int t = 0, delay = BACKOFF_MIN_MS;

	while (t < (int)dead_ms * 10) {
		if (t >= return_ms)
			return t;
		t += persist_attempt_ms(want_ms, dead_ms, t < (int)dead_ms);
		t += delay;
		delay = persist_next_backoff(delay, dead_ms);
	}
	return -1;
}

/*
 * A server back in the first half of the hold is reconnected before the
 * dead timeout fails the held requests, even though the attempt running
 * when it came back stalls: with --connect-timeout 30 (or the default
 * 10 s, or a day) and --dead-timeout 10, an attempt with its full
 * deadline would still be dialing at the timeout.
 */
TEST(a_stalled_attempt_leaves_time_for_another)
{
	static const uint32_t dead[] = { 2000, 10000, 30000, 60000, 120000 };
	static const int want[] = { 10000, 30000, 86400000 };
	size_t k, w;

	for (k = 0; k < sizeof(dead) / sizeof(dead[0]); k++) {
		for (w = 0; w < sizeof(want) / sizeof(want[0]); w++) {
			int r, at;

			for (r = 0; r < (int)dead[k] / 2; r += 250) {
				at = back_at(want[w], dead[k], r);
				EXPECT_TRUE(at >= 0 && at < (int)dead[k])
					TH_LOG("dead %u ms, connect timeout %d ms, server back at %d ms: connected at %d ms",
					       dead[k], want[w], r, at);
			}
		}
	}
}

TEST(attempt_deadline)
{
	/* During the hold: half the dead timeout, or what was asked if less. */
	EXPECT_EQ(5000, persist_attempt_ms(30000, 10000, true));
	EXPECT_EQ(5000, persist_attempt_ms(10000, 10000, true));
	EXPECT_EQ(3000, persist_attempt_ms(3000, 60000, true));
	EXPECT_EQ(200, persist_attempt_ms(200, 60000, true));
	/* Not under the minimum, whatever the dead timeout. */
	EXPECT_EQ(ATTEMPT_MIN_MS, persist_attempt_ms(10000, 600, true));
	/* Nothing held: the whole deadline, for a slow path. */
	EXPECT_EQ(30000, persist_attempt_ms(30000, 10000, false));
	EXPECT_EQ(30000, persist_attempt_ms(30000, 0, true));
}

TEST_HARNESS_MAIN
