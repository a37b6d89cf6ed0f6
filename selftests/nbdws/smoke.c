// SPDX-License-Identifier: GPL-2.0
/*
 * Smoke test: the loaded module registered its generic netlink family with
 * the version and the event group of uapi/linux/nbdws.h.
 */
#include <errno.h>
#include <string.h>

#include <netlink/genl/ctrl.h>
#include <netlink/genl/family.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>

#include <linux/nbdws.h>

#include "kselftest_harness.h"
#include "nbdws_test_util.h"

FIXTURE(genl)
{
	struct nl_sock *sk;
};

FIXTURE_SETUP(genl)
{
	self->sk = nl_socket_alloc();
	ASSERT_NE(NULL, self->sk);
	ASSERT_EQ(0, genl_connect(self->sk));
}

FIXTURE_TEARDOWN(genl)
{
	nl_socket_free(self->sk);
}

TEST_F(genl, family_registered)
{
	EXPECT_LT(0, genl_ctrl_resolve(self->sk, NBDWS_GENL_NAME));
}

TEST_F(genl, family_version)
{
	struct nl_cache *cache;
	struct genl_family *fam;

	ASSERT_EQ(0, genl_ctrl_alloc_cache(self->sk, &cache));
	fam = genl_ctrl_search_by_name(cache, NBDWS_GENL_NAME);
	ASSERT_NE(NULL, fam);
	EXPECT_EQ(NBDWS_GENL_VERSION, genl_family_get_version(fam));
	genl_family_put(fam);
	nl_cache_free(cache);
}

TEST_F(genl, event_group_registered)
{
	EXPECT_LT(0, genl_ctrl_resolve_grp(self->sk, NBDWS_GENL_NAME,
					   NBDWS_GENL_MCGRP_EVENTS));
}

TEST_F(genl, unknown_group_absent)
{
	EXPECT_EQ(-NLE_OBJ_NOTFOUND,
		  genl_ctrl_resolve_grp(self->sk, NBDWS_GENL_NAME, "nope"));
}

TEST_HARNESS_MAIN
