/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Running build/nbdctl from a unit test (tool_run.h does the work).
 * Everything is static: each test program includes this header once.
 */
#ifndef _NBDCTL_RUN_H
#define _NBDCTL_RUN_H

#include "tool_run.h"

/* build/unit/test_* -> build/nbdctl, unless $NBDCTL says. */
static const char *nbdctl_path(void)
{
	return tool_path("NBDCTL", "nbdctl", "build/nbdctl");
}

/* Run nbdctl with @args (NULL-terminated, without argv[0]). */
static void run_nbdctl_argv(struct run *r, char *const *args)
{
	run_tool_argv(r, nbdctl_path(), args);
}

/* Run nbdctl with a NULL-terminated argument list. */
static void run_nbdctl(struct run *r, ...)
{
	char *args[63];

	RUN_COLLECT_ARGS(args, r);
	run_nbdctl_argv(r, args);
}

/* Exit status 2, a usage line on stderr, nothing on stdout. */
#define EXPECT_USAGE(...) do { \
	struct run r_; \
	run_nbdctl(&r_, __VA_ARGS__, NULL); \
	EXPECT_EQ(2, r_.status) TH_LOG("stderr: %s", r_.err); \
	EXPECT_NE(NULL, strstr(r_.err, "usage")) TH_LOG("stderr: %s", r_.err); \
	EXPECT_STREQ("", r_.out); \
} while (0)

#endif /* _NBDCTL_RUN_H */
