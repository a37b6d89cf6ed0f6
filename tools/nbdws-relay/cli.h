/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nbdws-relay: the command line as given, before it is laid over the
 * configuration file (config.c), and the listen address syntax both use.
 */
#ifndef _RELAY_CLI_H
#define _RELAY_CLI_H

#include <stdbool.h>

#include "relay.h"

struct relay_cli {
	const char *config_file;	/* --config, or NULL */
	const char *listen[RELAY_MAX_LISTEN];	/* --listen: replaces the file's */
	unsigned int n_listen;
	const char *web_dir;
	const char *state_hook;
	const char *tokens_file;
	const char *tls_cert;
	const char *tls_key;
	const char *tls_client_ca;
	const char *module_path;
	bool insecure;
	bool fallback;
	bool metadata;
	int verbose;
};

enum cli_result {
	CLI_OK,		/* go on and read the configuration */
	CLI_DONE,	/* --help or --version printed: exit 0 */
	CLI_USAGE,	/* a bad command line, message and usage printed: exit 2 */
};

enum cli_result cli_parse(struct relay_cli *cli, int argc, char **argv);

/*
 * Parse a listen address: HOST:PORT, [V6]:PORT, :PORT (any address) or
 * unix:PATH, into @l (strings allocated; free with cli_listen_free()).
 * Returns 0, -ENOMEM, or -EINVAL with *@why saying what is wrong.
 */
int cli_listen_parse(struct relay_listen *l, const char *spec,
		     const char **why);
void cli_listen_free(struct relay_listen *l);

#endif /* _RELAY_CLI_H */
