/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Running one of the built programs (nbdctl, nbdws-relay) from a unit
 * test and capturing its exit status, stdout and stderr. Everything is
 * static: each test program includes this header once.
 */
#ifndef _TOOL_RUN_H
#define _TOOL_RUN_H

#include <fcntl.h>
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
	char err[16384];
};

/*
 * $ENV if set, else @rel relative to build/ as seen from this test's
 * binary (build/unit/test_*), else @fallback (relative to the source
 * tree, for a test run by hand from there).
 */
static const char *tool_path(const char *env, const char *rel,
			     const char *fallback)
{
	static char path[PATH_MAX];
	char self[PATH_MAX];
	ssize_t n;

	if (getenv(env))
		return getenv(env);
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		return fallback;
	self[n] = '\0';
	snprintf(path, sizeof(path), "%s/../%s", dirname(self), rel);
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

/*
 * Run @path with @args (NULL-terminated, without argv[0]), stdin from
 * /dev/null so that nothing waits for a terminal, and killed after 20 s
 * so that a hang fails the test instead of stalling the suite.
 */
static void run_tool_argv(struct run *r, const char *path, char *const *args)
{
	char *argv[64];
	int out[2], err[2], st, i;
	pid_t pid;

	argv[0] = (char *)path;
	for (i = 1; i < 63 && args[i - 1]; i++)
		argv[i] = args[i - 1];
	argv[i] = NULL;
	if (pipe(out) || pipe(err))
		abort();
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		dup2(null, 0);
		dup2(out[1], 1);
		dup2(err[1], 2);
		close(out[0]);
		close(err[0]);
		unsetenv("NBDWS_MODULE_PATH");
		alarm(20);
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

/* Gather a NULL-terminated variadic list into @args (63 at most). */
#define RUN_COLLECT_ARGS(args, last) do { \
	va_list ap_; \
	int i_ = 0; \
	va_start(ap_, last); \
	while (i_ < 62 && ((args)[i_] = va_arg(ap_, char *))) \
		i_++; \
	va_end(ap_); \
	(args)[i_] = NULL; \
} while (0)

#endif /* _TOOL_RUN_H */
