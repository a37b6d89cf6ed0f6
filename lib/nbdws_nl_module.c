// SPDX-License-Identifier: GPL-2.0
/*
 * Loading nbdws.ko with libkmod when the netlink family is absent (see
 * nbdws_nl.h), either by name (modprobe semantics: dependencies, options,
 * blacklist) or from an explicit .ko file (nbdctl --module,
 * $NBDWS_MODULE_PATH, the relay's "module"), which is how the VM
 * selftests load a freshly built module.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <libkmod.h>

#include "nbdws_nl.h"

static int insert_path(struct kmod_ctx *ctx, const char *path,
		       struct kmod_module **mod, struct nbdws_err *err)
{
	int rc;

	rc = kmod_module_new_from_path(ctx, path, mod);
	if (!rc) {
		rc = kmod_module_insert_module(*mod, 0, NULL);
		if (rc == -EEXIST)
			rc = 0;
	}
	if (rc)
		nbdws_err_set(err, rc, "inserting %s failed: %s", path,
			      strerror(-rc));
	return rc;
}

static int probe_name(struct kmod_ctx *ctx, struct kmod_module **mod,
		      struct nbdws_err *err)
{
	int rc;

	rc = kmod_module_new_from_name(ctx, "nbdws", mod);
	if (!rc)
		rc = kmod_module_probe_insert_module(*mod, 0, NULL, NULL, NULL,
						     NULL);
	if (rc == -ENOENT)
		return nbdws_err_set(err, rc,
				     "nbdws.ko is not installed for this kernel (make install, or DKMS)");
	/* > 0: refused by modprobe configuration (blacklist...). */
	if (rc > 0)
		return nbdws_err_set(err, -EPERM,
				     "modprobe configuration refused it");
	if (rc)
		return nbdws_err_set(err, rc, "%s", strerror(-rc));
	return 0;
}

static bool kmod_log_on;

void nbdws_nl_kmod_log(bool on)
{
	kmod_log_on = on;
}

/*
 * libkmod logs to stderr by default, in its own words and without our
 * program's name: our caller words the failure instead, and libkmod's
 * lines are only shown on request, prefixed so they can be told apart.
 */
static void kmod_log(void *data, int priority, const char *file, int line,
		     const char *fn, const char *format, va_list args)
{
	(void)data;
	(void)priority;
	(void)file;
	(void)line;
	(void)fn;
	if (!kmod_log_on)
		return;
	fprintf(stderr, "%s: libkmod: ", program_invocation_short_name);
	vfprintf(stderr, format, args);
	/* libkmod's formats end with a newline; be sure one is there. */
	if (!*format || format[strlen(format) - 1] != '\n')
		fputc('\n', stderr);
}

int nbdws_nl_load_module(const char *path, struct nbdws_err *err)
{
	struct kmod_module *mod = NULL;
	struct kmod_ctx *ctx;
	int rc;

	ctx = kmod_new(NULL, NULL);
	if (!ctx)
		return nbdws_err_set(err, -ENOMEM,
				     "libkmod could not be initialised");
	kmod_set_log_fn(ctx, kmod_log, NULL);
	if (path)
		rc = insert_path(ctx, path, &mod, err);
	else
		rc = probe_name(ctx, &mod, err);
	kmod_module_unref(mod);
	kmod_unref(ctx);
	return rc;
}
