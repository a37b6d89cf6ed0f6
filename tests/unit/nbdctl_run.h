/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Running build/nbdctl from a unit test and capturing its exit status,
 * stdout and stderr. Everything is static: each test program includes
 * this header once.
 */
#ifndef _NBDCTL_RUN_H
#define _NBDCTL_RUN_H

#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

struct run {
	int status;		/* exit code, or -1 if killed */
	char out[8192];
	char err[8192];
};

/* build/unit/test_* -> build/nbdctl, unless $NBDCTL says. */
static const char *nbdctl_path(void)
{
	static char path[PATH_MAX];
	char self[PATH_MAX];
	ssize_t n;

	if (getenv("NBDCTL"))
		return getenv("NBDCTL");
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		return "build/nbdctl";
	self[n] = '\0';
	snprintf(path, sizeof(path), "%s/../nbdctl", dirname(self));
	return path;
}

static void run_slurp(int fd, char *buf, size_t len)
{
	size_t off = 0;
	ssize_t n;

	while (off + 1 < len && (n = read(fd, buf + off, len - off - 1)) > 0)
		off += (size_t)n;
	buf[off] = '\0';
}

/* Run nbdctl with @args (NULL-terminated, without argv[0]). */
static void run_nbdctl_argv(struct run *r, char *const *args)
{
	char *argv[64];
	int out[2], err[2], st, i;
	pid_t pid;

	argv[0] = (char *)nbdctl_path();
	for (i = 1; i < 63 && args[i - 1]; i++)
		argv[i] = args[i - 1];
	argv[i] = NULL;
	if (pipe(out) || pipe(err))
		abort();
	pid = fork();
	if (pid == 0) {
		dup2(out[1], 1);
		dup2(err[1], 2);
		close(out[0]);
		close(err[0]);
		unsetenv("NBDWS_MODULE_PATH");
		execv(argv[0], argv);
		_exit(127);
	}
	close(out[1]);
	close(err[1]);
	/* Outputs are small: reading one after the other cannot block. */
	run_slurp(out[0], r->out, sizeof(r->out));
	run_slurp(err[0], r->err, sizeof(r->err));
	close(out[0]);
	close(err[0]);
	waitpid(pid, &st, 0);
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Run nbdctl with a NULL-terminated argument list. */
static void run_nbdctl(struct run *r, ...)
{
	char *args[63];
	va_list ap;
	int i = 0;

	va_start(ap, r);
	while (i < 62 && (args[i] = va_arg(ap, char *)))
		i++;
	va_end(ap);
	args[i] = NULL;
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
