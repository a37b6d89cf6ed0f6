// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for the time-limit factor of the VM selftests
 * (selftests/nbdws/nbdws_test_util.h): NBDWS_TIMEOUT_SCALE stretches every
 * wait and every harness limit on the debug kernel, and anything but a
 * sane integer leaves the limits as written.
 */
#include <stdlib.h>

#include "kselftest_harness.h"

#include "../../selftests/nbdws/nbdws_test_util.h"

TEST(scale_from_environment)
{
	ASSERT_EQ(0, unsetenv("NBDWS_TIMEOUT_SCALE"));
	EXPECT_EQ(1, tu_timeout_scale());
	ASSERT_EQ(0, setenv("NBDWS_TIMEOUT_SCALE", "4", 1));
	EXPECT_EQ(4, tu_timeout_scale());
	/* Garbage, zero, negative and absurd factors are ignored. */
	ASSERT_EQ(0, setenv("NBDWS_TIMEOUT_SCALE", "x", 1));
	EXPECT_EQ(1, tu_timeout_scale());
	ASSERT_EQ(0, setenv("NBDWS_TIMEOUT_SCALE", "0", 1));
	EXPECT_EQ(1, tu_timeout_scale());
	ASSERT_EQ(0, setenv("NBDWS_TIMEOUT_SCALE", "-3", 1));
	EXPECT_EQ(1, tu_timeout_scale());
	ASSERT_EQ(0, setenv("NBDWS_TIMEOUT_SCALE", "1000", 1));
	EXPECT_EQ(1, tu_timeout_scale());
	unsetenv("NBDWS_TIMEOUT_SCALE");
}

TEST(deadline_is_scaled)
{
	long long now, end;

	ASSERT_EQ(0, setenv("NBDWS_TIMEOUT_SCALE", "3", 1));
	now = tu_now_ms();
	end = tu_deadline(1000);
	/* 3000 ms from now, give or take the time between the two calls. */
	EXPECT_LE(now + 3000, end);
	EXPECT_GT(now + 3500, end);
	unsetenv("NBDWS_TIMEOUT_SCALE");
	now = tu_now_ms();
	end = tu_deadline(1000);
	EXPECT_LE(now + 1000, end);
	EXPECT_GT(now + 1500, end);
}

FIXTURE(limits) {};
FIXTURE_SETUP(limits) {}
FIXTURE_TEARDOWN(limits) {}

/*
 * The harness's limits: main() scaled this test's declared 7 s by the
 * factor in the environment when the program started (1 under make
 * unit), and scaling again finds this test's entry and multiplies it.
 */
TEST_F_TIMEOUT(limits, harness_limits_are_scaled, 7)
{
	int before = _metadata->timeout;

	EXPECT_EQ(7 * tu_timeout_scale(), before);
	ASSERT_EQ(0, setenv("NBDWS_TIMEOUT_SCALE", "5", 1));
	tu_scale_harness_timeouts();
	unsetenv("NBDWS_TIMEOUT_SCALE");
	EXPECT_EQ(5 * before, _metadata->timeout);
}

TEST_HARNESS_MAIN
