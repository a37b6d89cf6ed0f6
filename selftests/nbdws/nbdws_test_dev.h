/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Device steps shared by the nbdctl-driven selftests, written as harness
 * assertions: include after kselftest_harness.h, nbdws_test_genl.h and
 * nbdws_test_peers.h.
 */
#ifndef _NBDWS_TEST_DEV_H
#define _NBDWS_TEST_DEV_H

/* nbdctl connect; *index gets the device, its node must show up. */
static inline int connect_dev(struct __test_metadata *_metadata,
			      const char *const opts[], const char *uri,
			      int *index)
{
	char out[4096], path[64];
	int rc = nbdctl_connect(opts, uri, index, out, sizeof(out));

	EXPECT_EQ(0, rc) TH_LOG("nbdctl connect %s: rc %d: %s", uri, rc, out);
	if (rc)
		return -1;
	nbdws_dev_path(*index, path, sizeof(path));
	EXPECT_EQ(0, tu_wait_path(path, true, 10000))
		TH_LOG("%s did not appear", path);
	return 0;
}

/* nbdctl disconnect must succeed and the disk must go away. */
static inline void disconnect_dev(struct __test_metadata *_metadata,
				  int *index)
{
	char out[4096];
	int rc;

	if (*index < 0)
		return;
	rc = nbdctl_disconnect(*index, out, sizeof(out));
	EXPECT_EQ(0, rc) TH_LOG("nbdctl disconnect: rc %d: %s", rc, out);
	EXPECT_EQ(0, nbdws_wait_gone(*index, 30000));
	if (!rc)
		*index = -1;
}

/* Last resort in teardowns: raw DISCONNECT. */
static inline void force_disconnect(int *index)
{
	struct nl nl;

	if (*index < 0)
		return;
	if (!nl_open(&nl)) {
		nbdws_teardown_dev(&nl, *index);
		nl_close(&nl);
	}
	*index = -1;
}

/* First offset where the file at @path differs from @buf, or -1. */
static inline long long file_vs_buf(const char *path, const uint8_t *buf,
				    uint64_t len)
{
	uint8_t *tmp = malloc(TU_MIB);
	long long ret = -1;
	uint64_t off, i;
	int fd = open(path, O_RDONLY);

	if (fd < 0 || !tmp) {
		free(tmp);
		return -2;
	}
	for (off = 0; off < len && ret == -1; off += TU_MIB) {
		if (tu_pread_full(fd, tmp, TU_MIB, off)) {
			ret = -2;
			break;
		}
		if (memcmp(tmp, buf + off, TU_MIB))
			for (i = 0; i < TU_MIB; i++)
				if (tmp[i] != buf[off + i]) {
					ret = off + i;
					break;
				}
	}
	close(fd);
	free(tmp);
	return ret;
}

#endif /* _NBDWS_TEST_DEV_H */
