// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for lib/secret.c: a credential file is read only when
 * nobody but its owner (the user or root) may access it, the refusal
 * names the mode or owner and never the content, a read error is an
 * error rather than a short value, and the value is the file minus one
 * line end, within the size limit.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "secret.h"

#define SECRET	"Bearer s3cr3t-value"

FIXTURE(dir) {
	char path[64];
	char file[96];
};

FIXTURE_SETUP(dir)
{
	snprintf(self->path, sizeof(self->path), "/tmp/test_secret.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->path));
	snprintf(self->file, sizeof(self->file), "%s/cred", self->path);
}

FIXTURE_TEARDOWN(dir)
{
	unlink(self->file);
	rmdir(self->path);
}

/* Write @len bytes of @text to @path with @mode (umask ignored). */
static int put(const char *path, const char *text, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0)
		return -1;
	if (write(fd, text, len) != (ssize_t)len || fchmod(fd, mode)) {
		close(fd);
		return -1;
	}
	return close(fd);
}

static int read_it(const char *path, size_t max, char **out,
		   struct nbdws_err *err)
{
	memset(err, 0, sizeof(*err));
	return secret_file_read(path, max, out, err);
}

TEST_F(dir, private_file_is_read_without_its_line_end)
{
	struct nbdws_err err;
	char *v;

	ASSERT_EQ(0, put(self->file, SECRET "\n", strlen(SECRET) + 1, 0600));
	ASSERT_EQ(0, read_it(self->file, 4096, &v, &err)) TH_LOG("%s", err.msg);
	EXPECT_STREQ(SECRET, v);
	secret_free_str(v);

	ASSERT_EQ(0, put(self->file, SECRET "\r\n", strlen(SECRET) + 2, 0400));
	ASSERT_EQ(0, read_it(self->file, 4096, &v, &err)) TH_LOG("%s", err.msg);
	EXPECT_STREQ(SECRET, v);
	secret_free_str(v);

	/* Only one line end goes: a second line stays for the caller to see. */
	ASSERT_EQ(0, put(self->file, "a\nb\n", 4, 0600));
	ASSERT_EQ(0, read_it(self->file, 4096, &v, &err));
	EXPECT_STREQ("a\nb", v);
	secret_free_str(v);

	ASSERT_EQ(0, put(self->file, "", 0, 0600));
	ASSERT_EQ(0, read_it(self->file, 4096, &v, &err));
	EXPECT_STREQ("", v);
	secret_free_str(v);
}

TEST_F(dir, group_or_others_access_is_refused)
{
	static const mode_t modes[] = { 0644, 0640, 0604, 0602, 0620, 0601, 0610 };
	struct nbdws_err err;
	char want[16];
	char *v = (char *)1;
	size_t i;

	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		ASSERT_EQ(0, put(self->file, SECRET, strlen(SECRET), modes[i]));
		EXPECT_EQ(-EPERM, read_it(self->file, 4096, &v, &err));
		EXPECT_EQ(NULL, v);
		snprintf(want, sizeof(want), "mode %04o", (unsigned int)modes[i]);
		EXPECT_NE(NULL, strstr(err.msg, want)) TH_LOG("%s", err.msg);
		EXPECT_NE(NULL, strstr(err.msg, "chmod 600")) TH_LOG("%s", err.msg);
		EXPECT_NE(NULL, strstr(err.msg, self->file)) TH_LOG("%s", err.msg);
		EXPECT_EQ(NULL, strstr(err.msg, "s3cr3t")) TH_LOG("%s", err.msg);
	}
}

TEST_F(dir, someone_elses_file_is_refused)
{
	struct nbdws_err err;
	char *v;

	if (geteuid() != 0)
		SKIP(return, "chown to another user needs root");
	ASSERT_EQ(0, put(self->file, SECRET, strlen(SECRET), 0600));
	ASSERT_EQ(0, chown(self->file, 4242, 4242));
	EXPECT_EQ(-EPERM, read_it(self->file, 4096, &v, &err));
	EXPECT_NE(NULL, strstr(err.msg, "uid 4242")) TH_LOG("%s", err.msg);
	/* Root's own file is fine for anyone: only root can change it. */
	ASSERT_EQ(0, chown(self->file, 0, 0));
	EXPECT_EQ(0, read_it(self->file, 4096, &v, &err));
	secret_free_str(v);
}

TEST_F(dir, only_regular_files)
{
	struct nbdws_err err;
	char *v;

	EXPECT_EQ(-EINVAL, read_it(self->path, 4096, &v, &err));
	EXPECT_NE(NULL, strstr(err.msg, "not a regular file")) TH_LOG("%s", err.msg);
	EXPECT_EQ(-EINVAL, read_it("/dev/null", 4096, &v, &err));
	/* A FIFO without a writer: refused at once, not waited on. */
	ASSERT_EQ(0, mkfifo(self->file, 0600));
	EXPECT_EQ(-EINVAL, read_it(self->file, 4096, &v, &err));
	EXPECT_EQ(-ENOENT, read_it("/nonexistent/cred", 4096, &v, &err));
	EXPECT_NE(NULL, strstr(err.msg, "/nonexistent/cred")) TH_LOG("%s", err.msg);
}

/*
 * /proc/self/mem is a regular file of ours, mode 0600, and reading it at
 * offset 0 fails with EIO (nothing is mapped there): a real read error,
 * which must not come back as an empty value.
 */
TEST(read_error_is_an_error)
{
	struct nbdws_err err = { { 0 } };
	char *v = (char *)1;

	EXPECT_EQ(-EIO, secret_file_read("/proc/self/mem", 4096, &v, &err))
		TH_LOG("%s", err.msg);
	EXPECT_EQ(NULL, v);
	EXPECT_NE(NULL, strstr(err.msg, "cannot read")) TH_LOG("%s", err.msg);
}

TEST_F(dir, size_limit)
{
	struct nbdws_err err;
	char *v;

	/* 8 bytes and a line end fit a limit of 8; a ninth byte does not. */
	ASSERT_EQ(0, put(self->file, "12345678\r\n", 10, 0600));
	ASSERT_EQ(0, read_it(self->file, 8, &v, &err)) TH_LOG("%s", err.msg);
	EXPECT_STREQ("12345678", v);
	secret_free_str(v);
	ASSERT_EQ(0, put(self->file, "123456789", 9, 0600));
	EXPECT_EQ(-EFBIG, read_it(self->file, 8, &v, &err));
	ASSERT_EQ(0, put(self->file, "12345678\nX\n", 11, 0600));
	EXPECT_EQ(-EFBIG, read_it(self->file, 8, &v, &err));
	ASSERT_EQ(0, put(self->file, "12345678\n\n\n", 11, 0600));
	EXPECT_EQ(-EFBIG, read_it(self->file, 8, &v, &err));
}

TEST_F(dir, nul_byte_is_refused)
{
	struct nbdws_err err;
	char *v;

	ASSERT_EQ(0, put(self->file, "Bearer a\0b", 10, 0600));
	EXPECT_EQ(-EINVAL, read_it(self->file, 4096, &v, &err));
	EXPECT_NE(NULL, strstr(err.msg, "NUL")) TH_LOG("%s", err.msg);
}

TEST_HARNESS_MAIN
