/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nbdws-relay: the configuration: command line and JSON file. The file is
 * a superset of jsnbd nbd-proxy's config.json (Documentation/relay.md has
 * the reference); options given on the command line override the file.
 */
#ifndef _RELAY_CONFIG_H
#define _RELAY_CONFIG_H

#include <stdbool.h>
#include <stdio.h>

#include "nbdws_err.h"
#include "relay.h"

/* Used when --config is not given and the file exists. */
#define RELAY_DEFAULT_CONFIG	"/etc/nbdws-relay/config.json"

enum config_action {
	CONFIG_RUN,		/* serve */
	CONFIG_METADATA,	/* --metadata: print the slots and exit */
	CONFIG_HELP,		/* --help / --version printed: exit 0 */
};

/*
 * Parse @argv, read the configuration file, apply the command line over
 * it and check the result. On success fills @cfg (free with
 * config_free()) and *@action. Returns 0, 2 for a bad command line (a
 * usage line was printed), or 1 for a bad configuration (@err says what
 * and where: "config.json: slots.disk0.index: ...").
 */
int config_load(struct relay_config *cfg, int argc, char **argv,
		enum config_action *action, struct nbdws_err *err);

/*
 * As jsnbd's `nbd-proxy --metadata`: one JSON object, slot name to its
 * metadata object (null when none, as nbd-proxy prints it), one line on
 * @f, byte for byte nbd-proxy's format. 0, -ENOMEM or -EIO.
 */
int config_print_metadata(const struct relay_config *cfg, FILE *f);

void config_free(struct relay_config *cfg);

#endif /* _RELAY_CONFIG_H */
