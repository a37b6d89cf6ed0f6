// SPDX-License-Identifier: GPL-2.0
/*
 * nbdctl: loading nbdws.ko with libkmod when the netlink family is absent,
 * either by name (modprobe semantics: dependencies, options, blacklist)
 * or from an explicit .ko file (--module / $NBDWS_MODULE_PATH), which is
 * how the VM selftests load a freshly built module.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <libkmod.h>

#include "genl.h"

int nbdctl_load_module(const char *path, char *why, size_t len)
{
	struct kmod_module *mod = NULL;
	struct kmod_ctx *ctx;
	int rc;

	ctx = kmod_new(NULL, NULL);
	if (!ctx) {
		snprintf(why, len, "libkmod could not be initialised");
		return -ENOMEM;
	}
	if (path) {
		rc = kmod_module_new_from_path(ctx, path, &mod);
		if (!rc) {
			rc = kmod_module_insert_module(mod, 0, NULL);
			if (rc == -EEXIST)
				rc = 0;
		}
		if (rc)
			snprintf(why, len, "inserting %s failed: %s", path,
				 strerror(-rc));
	} else {
		rc = kmod_module_new_from_name(ctx, "nbdws", &mod);
		if (!rc)
			rc = kmod_module_probe_insert_module(mod, 0, NULL, NULL,
							     NULL, NULL);
		if (rc == -ENOENT) {
			snprintf(why, len,
				 "nbdws.ko is not installed for this kernel (make install, or DKMS)");
		} else if (rc > 0) {
			/* Refused by modprobe configuration (blacklist...). */
			rc = -EPERM;
			snprintf(why, len, "modprobe configuration refused it");
		} else if (rc) {
			snprintf(why, len, "%s", strerror(-rc));
		}
	}
	kmod_module_unref(mod);
	kmod_unref(ctx);
	return rc;
}
