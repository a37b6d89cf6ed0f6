// SPDX-License-Identifier: GPL-2.0
/*
 * nbdctl list / status DEVICE: show devices, their configuration and,
 * per connection, state, requests in flight and counters.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "genl.h"
#include "nbdctl.h"
#include "output.h"

static const char *const stat_names[NBDWS_STAT_A_MAX + 1] = {
	[NBDWS_STAT_A_READS] = "reads",
	[NBDWS_STAT_A_WRITES] = "writes",
	[NBDWS_STAT_A_FLUSHES] = "flushes",
	[NBDWS_STAT_A_TRIMS] = "trims",
	[NBDWS_STAT_A_WRITE_ZEROES] = "write_zeroes",
	[NBDWS_STAT_A_READ_BYTES] = "read_bytes",
	[NBDWS_STAT_A_WRITE_BYTES] = "write_bytes",
	[NBDWS_STAT_A_INFLIGHT] = "inflight",
	[NBDWS_STAT_A_INFLIGHT_PEAK] = "inflight_peak",
	[NBDWS_STAT_A_ERRORS] = "errors",
	[NBDWS_STAT_A_TIMEOUTS] = "timeouts",
	[NBDWS_STAT_A_RECONNECTS] = "reconnects",
};

static json_object *conn_json(const struct nbdws_conn_status *c)
{
	json_object *o = json_object_new_object();
	json_object *s;
	int i;

	json_object_object_add(o, "id", json_object_new_int64(c->id));
	json_object_object_add(o, "state", json_object_new_string(conn_state_name(c->state)));
	json_object_object_add(o, "transport",
			       json_object_new_string(transport_name(c->transport)));
	if (c->state != NBDWS_CONN_ALIVE)
		json_object_object_add(o, "reason",
				       json_object_new_string(reason_name(c->reason)));
	if (c->has_stats) {
		s = json_object_new_object();
		for (i = 0; i <= NBDWS_STAT_A_MAX; i++)
			if (stat_names[i])
				json_object_object_add(s, stat_names[i],
						       json_u64(c->stats[i]));
		json_object_object_add(o, "stats", s);
	}
	return o;
}

static json_object *dev_json(const struct nbdws_dev_status *d, bool full)
{
	json_object *o = json_object_new_object();
	json_object *conns;
	unsigned int i;

	json_object_object_add(o, "device", json_object_new_string(d->disk));
	json_object_object_add(o, "index", json_object_new_int64(d->index));
	if (NBDWS_DEV_HAS(d, NBDWS_A_STATE))
		json_object_object_add(o, "state",
				       json_object_new_string(dev_state_name(d->state)));
	if (NBDWS_DEV_HAS(d, NBDWS_A_SIZE_BYTES))
		json_object_object_add(o, "size", json_u64(d->size));
	if (NBDWS_DEV_HAS(d, NBDWS_A_BACKEND))
		json_object_object_add(o, "backend", json_object_new_string(d->backend));
	json_object_object_add(o, "connections", json_object_new_int64(d->nconns));
	if (!full)
		return o;
#define ADD_U32(attr, key, field) \
	do { \
		if (NBDWS_DEV_HAS(d, attr)) \
			json_object_object_add(o, key, json_object_new_int64(d->field)); \
	} while (0)
	ADD_U32(NBDWS_A_BLOCK_SIZE_MIN, "block_size", block_min);
	ADD_U32(NBDWS_A_BLOCK_SIZE_PREF, "block_size_preferred", block_pref);
	ADD_U32(NBDWS_A_BLOCK_SIZE_MAX, "block_size_max", block_max);
	ADD_U32(NBDWS_A_MAX_REQ_BYTES, "max_request_bytes", max_req);
	ADD_U32(NBDWS_A_TIMEOUT_MS, "timeout_ms", timeout_ms);
	ADD_U32(NBDWS_A_DEAD_TIMEOUT_MS, "dead_timeout_ms", dead_timeout_ms);
	ADD_U32(NBDWS_A_QUEUE_DEPTH, "queue_depth", queue_depth);
#undef ADD_U32
	if (NBDWS_DEV_HAS(d, NBDWS_A_SERVER_FLAGS))
		json_object_object_add(o, "server_flags",
				       json_tflags((uint16_t)d->server_flags));
	if (NBDWS_DEV_HAS(d, NBDWS_A_CLIENT_FLAGS))
		json_object_object_add(o, "client_flags", json_cflags(d->client_flags));
	conns = json_object_new_array();
	for (i = 0; i < d->nconns; i++)
		json_object_array_add(conns, conn_json(&d->conns[i]));
	json_object_object_add(o, "conns", conns);
	return o;
}

static unsigned int alive_conns(const struct nbdws_dev_status *d)
{
	unsigned int i, n = 0;

	for (i = 0; i < d->nconns; i++)
		n += d->conns[i].state == NBDWS_CONN_ALIVE;
	return n;
}

int cmd_list(int argc, char **argv)
{
	struct nbdws_nl nl;
	struct nbdws_dev_list list;
	unsigned int i;
	int rc;

	rc = nbdctl_parse_json_only(argc, argv, 0, 0,
				    "wrong number of arguments");
	if (rc)
		return rc;
	rc = nbdctl_nl_open(&nl);
	if (rc)
		return rc;
	rc = nbdws_dev_status_dump(&nl, &list);
	if (rc) {
		nbdctl_nl_perror(&nl, rc, "cannot list devices");
		nbdws_nl_close(&nl);
		return NBDCTL_EXIT_FAIL;
	}
	if (nbdctl_opts.json) {
		json_object *a = json_object_new_array();

		for (i = 0; i < list.n; i++)
			json_object_array_add(a, dev_json(&list.v[i], false));
		json_print(a);
	} else if (list.n) {
		printf("%-10s %-10s %-6s %-13s %s\n", "DEVICE", "SIZE", "CONNS",
		       "STATE", "BACKEND");
		for (i = 0; i < list.n; i++) {
			const struct nbdws_dev_status *d = &list.v[i];
			char size[32], conns[16];

			fmt_size(d->size, size, sizeof(size));
			snprintf(conns, sizeof(conns), "%u/%u", alive_conns(d),
				 d->nconns);
			printf("%-10s %-10s %-6s %-13s %s\n", d->disk, size, conns,
			       NBDWS_DEV_HAS(d, NBDWS_A_STATE) ? dev_state_name(d->state) : "-",
			       d->backend[0] ? d->backend : "-");
		}
	}
	nbdws_dev_list_free(&list);
	nbdws_nl_close(&nl);
	return NBDCTL_EXIT_OK;
}

static void print_ms(const char *label, uint32_t ms)
{
	if (ms)
		printf("  %-14s %" PRIu32 ".%03" PRIu32 " s\n", label, ms / 1000, ms % 1000);
	else
		printf("  %-14s none\n", label);
}

static void print_status(const struct nbdws_dev_status *d)
{
	char size[32], flags[256];
	unsigned int i;

	fmt_size(d->size, size, sizeof(size));
	printf("%s: %s\n", d->disk,
	       NBDWS_DEV_HAS(d, NBDWS_A_STATE) ? dev_state_name(d->state) :
						 "unknown state");
	printf("  %-14s %s\n", "backend", d->backend[0] ? d->backend : "-");
	printf("  %-14s %" PRIu64 " bytes (%s)\n", "size", d->size, size);
	printf("  %-14s logical %" PRIu32 ", preferred %" PRIu32 ", server max %" PRIu32 "\n",
	       "block sizes", d->block_min, d->block_pref, d->block_max);
	printf("  %-14s %" PRIu32 " bytes\n", "max request", d->max_req);
	printf("  %-14s %" PRIu32 "\n", "queue depth", d->queue_depth);
	print_ms("timeout", d->timeout_ms);
	print_ms("dead timeout", d->dead_timeout_ms);
	fmt_tflags((uint16_t)d->server_flags, flags, sizeof(flags));
	printf("  %-14s %s\n", "server flags", flags);
	fmt_cflags(d->client_flags, flags, sizeof(flags));
	printf("  %-14s %s\n", "client flags", flags);
	printf("  %-4s %-6s %-9s %-9s %-9s %-11s %-11s %-9s %-12s %-12s %-7s %-8s %s\n",
	       "CONN", "STATE", "TRANSPORT", "INFLIGHT", "PEAK", "READS", "WRITES",
	       "FLUSHES", "READ_BYTES", "WRITE_BYTES", "ERRORS", "TIMEOUTS",
	       "RECONNECTS");
	for (i = 0; i < d->nconns; i++) {
		const struct nbdws_conn_status *c = &d->conns[i];
		const uint64_t *s = c->stats;
		char state[32];

		if (c->state == NBDWS_CONN_ALIVE)
			snprintf(state, sizeof(state), "%s", conn_state_name(c->state));
		else
			snprintf(state, sizeof(state), "%s(%s)",
				 conn_state_name(c->state), reason_name(c->reason));
		printf("  %-4" PRIu32 " %-6s %-9s %-9" PRIu64 " %-9" PRIu64 " %-11" PRIu64
		       " %-11" PRIu64 " %-9" PRIu64 " %-12" PRIu64 " %-12" PRIu64
		       " %-7" PRIu64 " %-8" PRIu64 " %" PRIu64 "\n",
		       c->id, state, transport_name(c->transport),
		       s[NBDWS_STAT_A_INFLIGHT], s[NBDWS_STAT_A_INFLIGHT_PEAK],
		       s[NBDWS_STAT_A_READS], s[NBDWS_STAT_A_WRITES],
		       s[NBDWS_STAT_A_FLUSHES], s[NBDWS_STAT_A_READ_BYTES],
		       s[NBDWS_STAT_A_WRITE_BYTES], s[NBDWS_STAT_A_ERRORS],
		       s[NBDWS_STAT_A_TIMEOUTS], s[NBDWS_STAT_A_RECONNECTS]);
	}
}

int cmd_status(int argc, char **argv)
{
	struct nbdws_dev_status d;
	struct nbdws_nl nl;
	uint32_t index;
	int rc;

	rc = nbdctl_parse_json_only(argc, argv, 1, 1,
				    "wrong number of arguments");
	if (rc)
		return rc;
	if (parse_device(argv[optind], &index))
		return nbdctl_usage_error(argv[0], "bad device '%s'", argv[optind]);
	rc = nbdctl_nl_open(&nl);
	if (rc)
		return rc;
	rc = nbdws_dev_status_get(&nl, index, &d);
	if (rc) {
		char what[64];

		snprintf(what, sizeof(what), "status of %s%u", NBDWS_DISK_NAME, index);
		nbdctl_nl_perror(&nl, rc, what);
		nbdws_nl_close(&nl);
		return NBDCTL_EXIT_FAIL;
	}
	if (nbdctl_opts.json)
		json_print(dev_json(&d, true));
	else
		print_status(&d);
	nbdws_nl_close(&nl);
	return NBDCTL_EXIT_OK;
}
