// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for tools/nbdctl/params.c, linked in on its own: what
 * nbdctl connect derives from the server's block sizes, and the exports
 * it refuses with a message of its own before the kernel sees a CONNECT
 * (a maximum payload under a page, which nbdws.ko would refuse; a minimum
 * block size above 4096). nbdctl_err() and nbdctl_warn() are replaced by
 * recorders here.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "nbdctl.h"
#include "params.h"

static char last_err[512], last_warn[512];

void nbdctl_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_err, sizeof(last_err), fmt, ap);
	va_end(ap);
}

void nbdctl_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_warn, sizeof(last_warn), fmt, ap);
	va_end(ap);
}

static struct nbd_export_info export(u64 size, u32 min, u32 pref, u32 max)
{
	struct nbd_export_info i = {
		.size = size, .block_min = min, .block_pref = pref,
		.block_max = max,
	};

	last_err[0] = last_warn[0] = '\0';
	return i;
}

TEST(defaults_from_the_protocol)
{
	struct nbd_export_info i = export(1 << 20, 1, 4096, 32 << 20);
	struct dev_params p;

	ASSERT_EQ(0, derive_params(0, 0, &i, &p));
	EXPECT_EQ(512, p.lbs);
	EXPECT_EQ(4096, p.pref);
	EXPECT_EQ(NBDWS_DEFAULT_MAX_REQ_BYTES, p.max_req);
	EXPECT_EQ(0, p.lost_tail);
	EXPECT_STREQ("", last_err);
}

/*
 * nbdws.ko refuses a maximum payload under a page ("maximum payload
 * below the page size is not supported"): nbdctl says so first, naming
 * the server's figure.
 */
TEST(max_payload_under_a_page_is_refused_here)
{
	long page = sysconf(_SC_PAGESIZE);
	struct nbd_export_info i;
	struct dev_params p;
	char want[64];

	ASSERT_GE(page, 4096);
	i = export(1 << 20, 512, 512, (u32)page / 2);
	EXPECT_EQ(-1, derive_params(0, 0, &i, &p));
	snprintf(want, sizeof(want), "maximum payload (%ld bytes)", page / 2);
	EXPECT_NE(NULL, strstr(last_err, want)) TH_LOG("%s", last_err);
	EXPECT_NE(NULL, strstr(last_err, "smallest request size nbdws.ko")) TH_LOG("%s", last_err);
	i = export(1 << 20, 1, 4096, (u32)page - 1);
	EXPECT_EQ(-1, derive_params(0, 0, &i, &p));
	/* Exactly a page is enough. */
	i = export(1 << 20, 512, 512, (u32)page);
	EXPECT_EQ(0, derive_params(0, 0, &i, &p)) TH_LOG("%s", last_err);
	EXPECT_EQ((u32)page, p.max_req);
}

TEST(max_request_clamped_to_the_server)
{
	struct nbd_export_info i = export(1 << 20, 512, 4096, 65536);
	struct dev_params p;

	ASSERT_EQ(0, derive_params(0, 1 << 20, &i, &p));
	EXPECT_EQ(65536, p.max_req);
	EXPECT_NE(NULL, strstr(last_warn, "exceeds the server's maximum")) TH_LOG("%s", last_warn);
	/* Not asked for: clamped without a word. */
	i = export(1 << 20, 512, 4096, 65536);
	ASSERT_EQ(0, derive_params(0, 0, &i, &p));
	EXPECT_STREQ("", last_warn);
	/* A maximum that is no multiple of the block: whole blocks only. */
	i = export(1 << 20, 4096, 4096, 12288 + 512);
	ASSERT_EQ(0, derive_params(0, 0, &i, &p));
	EXPECT_EQ(12288, p.max_req);
}

TEST(block_sizes)
{
	struct nbd_export_info i = export(1 << 20, 8192, 8192, 1 << 20);
	struct dev_params p;

	EXPECT_EQ(-1, derive_params(0, 0, &i, &p));
	EXPECT_NE(NULL, strstr(last_err, "minimum block size (8192)")) TH_LOG("%s", last_err);
	i = export(1 << 20, 1024, 4096, 1 << 20);
	EXPECT_EQ(-1, derive_params(512, 0, &i, &p));
	EXPECT_NE(NULL, strstr(last_err, "--block-size 512")) TH_LOG("%s", last_err);
	i = export((1 << 20) + 100, 1, 4096, 1 << 20);
	ASSERT_EQ(0, derive_params(4096, 0, &i, &p));
	EXPECT_EQ(4096, p.lbs);
	EXPECT_EQ(100, p.lost_tail);
}

TEST_HARNESS_MAIN
