// SPDX-License-Identifier: GPL-2.0
/*
 * nbdws-relay: the configuration file (JSON, read with json-c) and the
 * command line laid over it. The file is a superset of jsnbd nbd-proxy's
 * config.json: "timeout" and "configurations" mean what they mean there,
 * so an OpenBMC system switches by pointing the relay at its file.
 *
 * Every value is checked here, once, so the rest of the daemon trusts
 * relay_cfg. A key we do not know is an error (a typo must not pass
 * silently), except inside nbd-proxy's "configurations" entries, where
 * nbd-proxy itself ignores them: there it is a warning.
 *
 * Messages name the file and the key path ("config.json:
 * slots.disk0.hold: ..."); syntax errors name the line.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json.h>

#include "cli.h"
#include "config.h"

/* Largest configuration file read: far above any sane one. */
#define CONFIG_MAX_BYTES	(1024L * 1024)
/* Longest duration accepted anywhere: one day, as nbdctl. */
#define MAX_SECONDS		86400.0
/* The module's highest device index (kmod/genl.c). */
#define MAX_INDEX		((1 << 20) - 1)
/* Request size bounds the module accepts (kmod/genl.c, nbdctl). */
#define MIN_MAX_REQ		4096U
#define MAX_MAX_REQ		(32U << 20)
/* NBD strings (export names) are at most 4096 bytes. */
#define MAX_EXPORT_LEN		4096
#define MAX_SLOT_NAME		64
#define MAX_ORIGIN_LEN		255
#define MAX_LIMIT		65536U

/* Built-in defaults of the per-slot values (Documentation/relay.md). */
#define DEF_TIMEOUT_MS		NBDWS_DEFAULT_TIMEOUT_MS
#define DEF_MAX_REQ		NBDWS_DEFAULT_MAX_REQ_BYTES

struct loader {
	const char *file;		/* as given, for messages */
	struct relay_config *cfg;
	struct nbdws_err *err;
	struct relay_slot_cfg def;	/* "defaults" over the built-ins */
	bool default_key_seen;		/* some slot says "default" */
};

/* @key with anything but printable ASCII replaced, for a message. */
static void keypath(char *out, size_t size, const char *prefix,
		    const char *key)
{
	char clean[MAX_SLOT_NAME + 8];

	relay_printable(key, strnlen(key, sizeof(clean) - 1), clean,
			sizeof(clean));
	if (prefix && *prefix)
		snprintf(out, size, "%s.%s", prefix, clean);
	else
		snprintf(out, size, "%s", clean);
}

/*
 * Leave a message in ld->err and evaluate to @rc. Macros, not functions:
 * the static analyser does not follow variadic calls, and must see that
 * every "return err_at(...)" returns non-zero.
 */
#define err_at(ld, rc, ...) \
	(nbdws_err_set((ld)->err, 0, __VA_ARGS__), (rc))

/* "FILE: KEY.PATH: what is wrong with it", evaluating to -EINVAL. */
#define fail(ld, path, ...) \
	(fail_msg((ld), (path), __VA_ARGS__), -EINVAL)

static void fail_msg(struct loader *ld, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail_msg(struct loader *ld, const char *path, const char *fmt, ...)
{
	char msg[384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	nbdws_err_set(ld->err, -EINVAL, "%s: %s: %s", ld->file, path, msg);
}

/* ---- typed values ------------------------------------------------------ */

static int get_bool(struct loader *ld, json_object *v, const char *path,
		    bool *out)
{
	if (!json_object_is_type(v, json_type_boolean))
		return fail(ld, path, "must be true or false");
	*out = json_object_get_boolean(v);
	return 0;
}

/*
 * A string, copied. @max: longest length; @empty_ok for the export name
 * (the default export is ""); paths and names are never empty.
 */
static int get_string(struct loader *ld, json_object *v, const char *path,
		      size_t max, bool empty_ok, char **out)
{
	const char *s;
	size_t len;
	char *copy;

	if (!json_object_is_type(v, json_type_string))
		return fail(ld, path, "must be a string");
	s = json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	if (strlen(s) != len)
		return fail(ld, path, "must not contain a NUL character");
	if (!len && !empty_ok)
		return fail(ld, path, "must not be empty");
	if (len > max)
		return fail(ld, path, "is longer than %zu bytes", max);
	copy = strdup(s);
	if (!copy)
		return err_at(ld, -ENOMEM, "out of memory");
	free(*out);
	*out = copy;
	return 0;
}

static int get_path(struct loader *ld, json_object *v, const char *path,
		    char **out)
{
	return get_string(ld, v, path, PATH_MAX - 1, false, out);
}

/*
 * Seconds, a JSON number that may be fractional, to milliseconds.
 * 0 passes only when @zero_ok (then meaning "off" or "module default");
 * otherwise @min_s..@max_s.
 */
static int get_seconds_max(struct loader *ld, json_object *v, const char *path,
			   double min_s, double max_s, bool zero_ok, u32 *ms)
{
	double s;

	if (!json_object_is_type(v, json_type_int) &&
	    !json_object_is_type(v, json_type_double))
		goto bad;
	s = json_object_get_double(v);
	if (!isfinite(s))
		goto bad;
	if (s == 0 && zero_ok) {
		*ms = 0;
		return 0;
	}
	if (s < min_s || s > max_s)
		goto bad;
	*ms = (u32)(s * 1000.0 + 0.5);
	return 0;
bad:
	if (zero_ok)
		return fail(ld, path, "must be 0 or a number of seconds from %g to %g",
			    min_s, max_s);
	return fail(ld, path, "must be a number of seconds from %g to %g",
		    min_s, max_s);
}

static int get_seconds(struct loader *ld, json_object *v, const char *path,
		       double min_s, bool zero_ok, u32 *ms)
{
	return get_seconds_max(ld, v, path, min_s, MAX_SECONDS, zero_ok, ms);
}

/* A whole number @min..@max, or 0 when @zero_ok. */
static int get_uint(struct loader *ld, json_object *v, const char *path,
		    u32 min, u32 max, bool zero_ok, u32 *out)
{
	int64_t x;

	if (!json_object_is_type(v, json_type_int))
		goto bad;
	errno = 0;
	x = json_object_get_int64(v);
	if (errno)
		goto bad;
	if (x == 0 && zero_ok) {
		*out = 0;
		return 0;
	}
	if (x < min || x > max)
		goto bad;
	*out = (u32)x;
	return 0;
bad:
	if (zero_ok)
		return fail(ld, path, "must be 0 or a whole number from %u to %u",
			    min, max);
	return fail(ld, path, "must be a whole number from %u to %u", min, max);
}

static bool in_list(const char *key, const char *const *list)
{
	for (; *list; list++)
		if (!strcmp(key, *list))
			return true;
	return false;
}

/* Refuse keys not in @allowed: "tls.certificate: unknown key". */
static int check_keys(struct loader *ld, json_object *obj, const char *prefix,
		      const char *const *allowed)
{
	char path[256];

	json_object_object_foreach(obj, key, val) {
		(void)val;
		if (in_list(key, allowed))
			continue;
		keypath(path, sizeof(path), prefix, key);
		return fail(ld, path, "unknown key");
	}
	return 0;
}

static int get_object(struct loader *ld, json_object *v, const char *path)
{
	if (!json_object_is_type(v, json_type_object))
		return fail(ld, path, "must be an object");
	return 0;
}

/* ---- per-slot values ---------------------------------------------------- */

/* scheme://host[:port] with scheme http or https, no path: what browsers send. */
static bool valid_origin(const char *o)
{
	const char *host;
	size_t i;

	if (!strncasecmp(o, "https://", 8))
		host = o + 8;
	else if (!strncasecmp(o, "http://", 7))
		host = o + 7;
	else
		return false;
	if (!*host || *host == ':')
		return false;
	for (i = 0; host[i]; i++) {
		char c = host[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		      c == ':' || c == '[' || c == ']'))
			return false;
	}
	return true;
}

static void free_origins(struct relay_slot_cfg *s)
{
	unsigned int i;

	for (i = 0; i < s->n_origins; i++) {
		free(s->origins[i]);
		s->origins[i] = NULL;
	}
	s->n_origins = 0;
}

static int copy_origins(struct loader *ld, struct relay_slot_cfg *to,
			const struct relay_slot_cfg *from)
{
	unsigned int i;

	free_origins(to);
	for (i = 0; i < from->n_origins; i++) {
		to->origins[i] = strdup(from->origins[i]);
		if (!to->origins[i])
			return err_at(ld, -ENOMEM, "out of memory");
		to->n_origins = i + 1;
	}
	return 0;
}

static int get_origins(struct loader *ld, json_object *v, const char *path,
		       struct relay_slot_cfg *s)
{
	char ipath[300];
	size_t i, n;
	int rc;

	if (!json_object_is_type(v, json_type_array))
		return fail(ld, path, "must be an array of origins such as \"https://bmc.example\"");
	n = json_object_array_length(v);
	if (n > RELAY_MAX_ORIGINS)
		return fail(ld, path, "at most %d origins", RELAY_MAX_ORIGINS);
	free_origins(s);
	for (i = 0; i < n; i++) {
		json_object *o = json_object_array_get_idx(v, i);
		char shown[80];

		snprintf(ipath, sizeof(ipath), "%s[%zu]", path, i);
		if (!json_object_is_type(o, json_type_string))
			return fail(ld, ipath, "must be a string");
		if (!valid_origin(json_object_get_string(o))) {
			relay_printable(json_object_get_string(o),
					(size_t)json_object_get_string_len(o),
					shown, sizeof(shown));
			return fail(ld, ipath, "\"%s\" is not an origin: write scheme://host[:port] with http or https and no path",
				    shown);
		}
		rc = get_string(ld, o, ipath, MAX_ORIGIN_LEN, false,
				&s->origins[i]);
		if (rc)
			return rc;
		s->n_origins = (unsigned int)i + 1;
	}
	return 0;
}

static const char *const slot_common_keys[] = {
	"hold", "read-only", "timeout", "max-request-size", "queue-depth",
	"ping", "origins", NULL,
};

static const char *const slot_keys[] = {
	"hold", "read-only", "timeout", "max-request-size", "queue-depth",
	"ping", "origins", "index", "default", "export", "metadata", NULL,
};

/* One of the keys "defaults" and a slot share, already known to be one. */
static int slot_common(struct loader *ld, struct relay_slot_cfg *s,
		       const char *key, json_object *v, const char *path)
{
	if (!strcmp(key, "hold"))
		return get_seconds(ld, v, path, 1, false, &s->hold_ms);
	if (!strcmp(key, "read-only"))
		return get_bool(ld, v, path, &s->read_only);
	if (!strcmp(key, "timeout"))
		return get_seconds(ld, v, path, 0.001, true, &s->timeout_ms);
	if (!strcmp(key, "max-request-size"))
		return get_uint(ld, v, path, MIN_MAX_REQ, MAX_MAX_REQ, false,
				&s->max_req_bytes);
	if (!strcmp(key, "queue-depth"))
		return get_uint(ld, v, path, 1, NBDWS_MAX_QUEUE_DEPTH, true,
				&s->queue_depth);
	if (!strcmp(key, "ping"))
		return get_seconds_max(ld, v, path, NBDWS_MIN_PING_MS / 1000.0,
				       NBDWS_MAX_PING_MS / 1000.0, true,
				       &s->ping_ms);
	return get_origins(ld, v, path, s);
}

static int load_defaults(struct loader *ld, json_object *obj)
{
	char path[256];
	int rc;

	rc = get_object(ld, obj, "defaults") ?:
	     check_keys(ld, obj, "defaults", slot_common_keys);
	if (rc)
		return rc;
	json_object_object_foreach(obj, key, val) {
		keypath(path, sizeof(path), "defaults", key);
		rc = slot_common(ld, &ld->def, key, val, path);
		if (rc)
			return rc;
	}
	return 0;
}

/* [A-Za-z0-9._-]{1,64}, and not "." or "..": it is a URL path segment. */
static bool valid_slot_name(const char *name)
{
	size_t len = strlen(name), i;

	if (!len || len > MAX_SLOT_NAME || !strcmp(name, ".") ||
	    !strcmp(name, ".."))
		return false;
	for (i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return false;
	}
	return true;
}

/* A new slot named @name with the defaults, or NULL (@err set). */
static struct relay_slot_cfg *new_slot(struct loader *ld, const char *section,
				       const char *name)
{
	struct relay_config *cfg = ld->cfg;
	struct relay_slot_cfg *s;
	char path[256];
	unsigned int i;

	keypath(path, sizeof(path), section, name);
	if (!valid_slot_name(name)) {
		fail_msg(ld, path, "a slot name is 1 to 64 of A-Z a-z 0-9 . _ - (and not . or ..)");
		return NULL;
	}
	for (i = 0; i < cfg->n_slots; i++) {
		if (!strcmp(cfg->slots[i].name, name)) {
			fail_msg(ld, path, "slot \"%s\" is already defined", name);
			return NULL;
		}
	}
	if (cfg->n_slots == RELAY_MAX_SLOTS) {
		fail_msg(ld, path, "at most %d slots", RELAY_MAX_SLOTS);
		return NULL;
	}
	s = &cfg->slots[cfg->n_slots++];
	*s = ld->def;
	s->n_origins = 0;
	memset(s->origins, 0, sizeof(s->origins));
	s->name = strdup(name);
	s->export_name = strdup("");
	s->index = -1;
	if (!s->name || !s->export_name ||
	    copy_origins(ld, s, &ld->def)) {
		nbdws_err_set(ld->err, -ENOMEM, "out of memory");
		return NULL;
	}
	return s;
}

/* The "metadata" object kept as compact JSON text (status.c, --metadata). */
static int keep_metadata(struct loader *ld, struct relay_slot_cfg *s,
			 json_object *v)
{
	const char *text;

	text = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
	free(s->metadata_json);
	s->metadata_json = text ? strdup(text) : NULL;
	if (!s->metadata_json)
		return err_at(ld, -ENOMEM, "out of memory");
	return 0;
}

/* Device indexes are the slots' identity in the kernel: no two alike. */
static int set_index(struct loader *ld, struct relay_slot_cfg *s, int index,
		     const char *path)
{
	unsigned int i;

	for (i = 0; index >= 0 && i < ld->cfg->n_slots; i++) {
		if (&ld->cfg->slots[i] != s && ld->cfg->slots[i].index == index)
			return fail(ld, path, "device index %d is already slot \"%s\"'s",
				    index, ld->cfg->slots[i].name);
	}
	s->index = index;
	return 0;
}

static int set_default(struct loader *ld, struct relay_slot_cfg *s,
		       bool is_default, const char *path)
{
	unsigned int i;

	ld->default_key_seen = true;
	if (!is_default)
		return 0;
	for (i = 0; i < ld->cfg->n_slots; i++) {
		if (ld->cfg->slots[i].is_default)
			return fail(ld, path, "slot \"%s\" is the default already: only one may be",
				    ld->cfg->slots[i].name);
	}
	s->is_default = true;
	return 0;
}

static int load_slot(struct loader *ld, const char *name, json_object *obj)
{
	struct relay_slot_cfg *s;
	char base[128], path[256];
	int rc;

	keypath(base, sizeof(base), "slots", name);
	s = new_slot(ld, "slots", name);
	if (!s)
		return -EINVAL;
	rc = get_object(ld, obj, base) ?:
	     check_keys(ld, obj, base, slot_keys);
	if (rc)
		return rc;
	json_object_object_foreach(obj, key, val) {
		keypath(path, sizeof(path), base, key);
		if (!strcmp(key, "index")) {
			u32 idx = 0;

			rc = get_uint(ld, val, path, 0, MAX_INDEX, true, &idx) ?:
			     set_index(ld, s, (int)idx, path);
		} else if (!strcmp(key, "default")) {
			bool d = false;

			rc = get_bool(ld, val, path, &d) ?:
			     set_default(ld, s, d, path);
		} else if (!strcmp(key, "export")) {
			rc = get_string(ld, val, path, MAX_EXPORT_LEN, true,
					&s->export_name);
		} else if (!strcmp(key, "metadata")) {
			rc = get_object(ld, val, path) ?:
			     keep_metadata(ld, s, val);
		} else {
			rc = slot_common(ld, s, key, val, path);
		}
		if (rc)
			return rc;
	}
	return 0;
}

/* "/dev/nbdN" (nbd-proxy's nbd.ko device), or "/dev/nbdwsN": N. */
static int nbd_device_index(const char *dev)
{
	const char *p;
	unsigned long n;
	char *end;

	if (!strncmp(dev, "/dev/nbdws", 10))
		p = dev + 10;
	else if (!strncmp(dev, "/dev/nbd", 8))
		p = dev + 8;
	else
		return -1;
	if (*p < '0' || *p > '9' || (*p == '0' && p[1]))
		return -1;
	errno = 0;
	n = strtoul(p, &end, 10);
	if (errno || *end || n > MAX_INDEX)
		return -1;
	return (int)n;
}

/*
 * One entry of nbd-proxy's "configurations", read as nbd-proxy reads it:
 * "nbd-device" is required, "default" is taken for its truth value,
 * "metadata" that is not an object counts as none. The per-request
 * timeout is the top-level "timeout", already in ld->def.
 */
static int load_configuration(struct loader *ld, const char *name,
			      json_object *obj)
{
	struct relay_slot_cfg *s;
	char base[128], path[256], shown[80];
	json_object *v;
	int idx, rc;

	keypath(base, sizeof(base), "configurations", name);
	s = new_slot(ld, "configurations", name);
	if (!s)
		return -EINVAL;
	rc = get_object(ld, obj, base);
	if (rc)
		return rc;

	keypath(path, sizeof(path), base, "nbd-device");
	if (!json_object_object_get_ex(obj, "nbd-device", &v))
		return fail(ld, path, "missing: give the device as \"/dev/nbdN\"");
	if (!json_object_is_type(v, json_type_string))
		return fail(ld, path, "must be a string such as \"/dev/nbd0\"");
	idx = nbd_device_index(json_object_get_string(v));
	if (idx < 0) {
		relay_printable(json_object_get_string(v),
				strlen(json_object_get_string(v)), shown,
				sizeof(shown));
		return fail(ld, path, "\"%s\" is not /dev/nbdN (N from 0 to %d)",
			    shown, MAX_INDEX);
	}
	rc = set_index(ld, s, idx, path);
	if (rc)
		return rc;

	json_object_object_foreach(obj, key, val) {
		keypath(path, sizeof(path), base, key);
		if (!strcmp(key, "nbd-device"))
			continue;
		if (!strcmp(key, "default")) {
			if (!json_object_is_type(val, json_type_boolean))
				relay_log(RELAY_LOG_WARN, "%s: %s: not true or false; taken as %s, as nbd-proxy does",
					  ld->file, path,
					  json_object_get_boolean(val) ? "true" : "false");
			rc = set_default(ld, s, json_object_get_boolean(val),
					 path);
			if (rc)
				return rc;
		} else if (!strcmp(key, "metadata")) {
			if (!json_object_is_type(val, json_type_object)) {
				relay_log(RELAY_LOG_WARN, "%s: %s: not an object; ignored, as nbd-proxy does",
					  ld->file, path);
				continue;
			}
			rc = keep_metadata(ld, s, val);
			if (rc)
				return rc;
		} else {
			relay_log(RELAY_LOG_WARN, "%s: %s: unknown key in an nbd-proxy configuration; ignored",
				  ld->file, path);
		}
	}
	return 0;
}

static int load_slot_section(struct loader *ld, json_object *obj,
			     const char *section)
{
	bool nbd_proxy = !strcmp(section, "configurations");
	int rc;

	rc = get_object(ld, obj, section);
	if (rc)
		return rc;
	json_object_object_foreach(obj, name, val) {
		rc = nbd_proxy ? load_configuration(ld, name, val) :
				 load_slot(ld, name, val);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- daemon-wide values -------------------------------------------------- */

static int load_listen(struct loader *ld, json_object *v)
{
	struct relay_config *cfg = ld->cfg;
	char path[64], shown[80];
	const char *why;
	size_t i, n;
	unsigned int j;
	int rc;

	if (!json_object_is_type(v, json_type_array))
		return fail(ld, "listen", "must be an array of addresses such as [\"127.0.0.1:8080\", \"unix:/run/nbdws-relay.sock\"]");
	n = json_object_array_length(v);
	if (n > RELAY_MAX_LISTEN)
		return fail(ld, "listen", "at most %d addresses",
			    RELAY_MAX_LISTEN);
	for (i = 0; i < n; i++) {
		json_object *a = json_object_array_get_idx(v, i);
		const char *spec;

		snprintf(path, sizeof(path), "listen[%zu]", i);
		if (!json_object_is_type(a, json_type_string))
			return fail(ld, path, "must be a string");
		spec = json_object_get_string(a);
		relay_printable(spec, strlen(spec), shown, sizeof(shown));
		rc = cli_listen_parse(&cfg->listen[cfg->n_listen], spec, &why);
		if (rc == -ENOMEM)
			return err_at(ld, -ENOMEM, "out of memory");
		if (rc)
			return fail(ld, path, "\"%s\": %s", shown, why);
		cfg->n_listen++;
		for (j = 0; j + 1 < cfg->n_listen; j++) {
			if (!strcmp(cfg->listen[j].spec, spec))
				return fail(ld, path, "\"%s\" is listed twice",
					    shown);
		}
	}
	return 0;
}

static const char *const tls_keys[] = {
	"cert", "key", "client-ca", "require-client-cert", NULL,
};

static int load_tls(struct loader *ld, json_object *obj)
{
	struct relay_tls_cfg *t = &ld->cfg->tls;
	char path[64];
	int rc;

	rc = get_object(ld, obj, "tls") ?: check_keys(ld, obj, "tls", tls_keys);
	if (rc)
		return rc;
	json_object_object_foreach(obj, key, val) {
		snprintf(path, sizeof(path), "tls.%s", key);
		if (!strcmp(key, "cert"))
			rc = get_path(ld, val, path, &t->cert_file);
		else if (!strcmp(key, "key"))
			rc = get_path(ld, val, path, &t->key_file);
		else if (!strcmp(key, "client-ca"))
			rc = get_path(ld, val, path, &t->client_ca_file);
		else
			rc = get_bool(ld, val, path, &t->require_client_cert);
		if (rc)
			return rc;
	}
	return 0;
}

static const char *const auth_keys[] = { "tokens-file", NULL };

static int load_auth(struct loader *ld, json_object *obj)
{
	json_object *v;
	int rc;

	rc = get_object(ld, obj, "auth") ?:
	     check_keys(ld, obj, "auth", auth_keys);
	if (rc)
		return rc;
	if (json_object_object_get_ex(obj, "tokens-file", &v))
		return get_path(ld, v, "auth.tokens-file",
				&ld->cfg->tokens_file);
	return 0;
}

static const char *const limits_keys[] = {
	"connections", "handshakes", "handshake-timeout", "hook-timeout", NULL,
};

static int load_limits(struct loader *ld, json_object *obj)
{
	struct relay_config *cfg = ld->cfg;
	char path[64];
	u32 n = 0;
	int rc;

	rc = get_object(ld, obj, "limits") ?:
	     check_keys(ld, obj, "limits", limits_keys);
	if (rc)
		return rc;
	json_object_object_foreach(obj, key, val) {
		snprintf(path, sizeof(path), "limits.%s", key);
		if (!strcmp(key, "connections")) {
			rc = get_uint(ld, val, path, 1, MAX_LIMIT, false, &n);
			cfg->max_conns = n;
		} else if (!strcmp(key, "handshakes")) {
			rc = get_uint(ld, val, path, 1, MAX_LIMIT, false, &n);
			cfg->max_handshakes = n;
		} else if (!strcmp(key, "handshake-timeout")) {
			rc = get_seconds(ld, val, path, 0.1, false,
					 &cfg->handshake_ms);
		} else {
			rc = get_seconds(ld, val, path, 0.1, false,
					 &cfg->hook_ms);
		}
		if (rc)
			return rc;
	}
	return 0;
}

static const char *const top_keys[] = {
	"timeout", "configurations", "listen", "web", "state-hook",
	"insecure", "fallback", "module", "tls", "auth", "limits",
	"defaults", "slots", NULL,
};

static int load_top(struct loader *ld, json_object *top)
{
	struct relay_config *cfg = ld->cfg;
	json_object *v;
	int rc;

	if (!json_object_is_type(top, json_type_object))
		return err_at(ld, -EINVAL,
				     "%s: the configuration must be a JSON object",
				     ld->file);
	rc = check_keys(ld, top, "", top_keys);
	if (rc)
		return rc;

	/* nbd-proxy's timeout first: "defaults" and slots may override it. */
	if (json_object_object_get_ex(top, "timeout", &v)) {
		rc = get_seconds(ld, v, "timeout", 0.001, true,
				 &ld->def.timeout_ms);
		if (rc)
			return rc;
	}
	if (json_object_object_get_ex(top, "defaults", &v)) {
		rc = load_defaults(ld, v);
		if (rc)
			return rc;
	}

	json_object_object_foreach(top, key, val) {
		if (!strcmp(key, "listen"))
			rc = load_listen(ld, val);
		else if (!strcmp(key, "web"))
			rc = get_path(ld, val, "web", &cfg->web_dir);
		else if (!strcmp(key, "state-hook"))
			rc = get_path(ld, val, "state-hook", &cfg->state_hook);
		else if (!strcmp(key, "module"))
			rc = get_path(ld, val, "module", &cfg->module_path);
		else if (!strcmp(key, "insecure"))
			rc = get_bool(ld, val, "insecure", &cfg->insecure);
		else if (!strcmp(key, "fallback"))
			rc = get_bool(ld, val, "fallback", &cfg->fallback);
		else if (!strcmp(key, "tls"))
			rc = load_tls(ld, val);
		else if (!strcmp(key, "auth"))
			rc = load_auth(ld, val);
		else if (!strcmp(key, "limits"))
			rc = load_limits(ld, val);
		else if (!strcmp(key, "configurations") ||
			 !strcmp(key, "slots"))
			rc = load_slot_section(ld, val, key);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- the file ------------------------------------------------------------ */

static unsigned int line_of(const char *buf, size_t off)
{
	unsigned int line = 1;
	size_t i;

	for (i = 0; i < off; i++)
		if (buf[i] == '\n')
			line++;
	return line;
}

/* The whole file, NUL-terminated, or NULL with ld->err set. */
static char *read_file(struct loader *ld, size_t *len)
{
	struct stat st;
	size_t have = 0;
	char *buf;
	ssize_t n;
	int fd;

	fd = open(ld->file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		nbdws_err_set(ld->err, -errno, "%s: %s", ld->file,
			      strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		nbdws_err_set(ld->err, -EINVAL, "%s: not a regular file",
			      ld->file);
		return NULL;
	}
	if (st.st_size > CONFIG_MAX_BYTES) {
		close(fd);
		nbdws_err_set(ld->err, -EFBIG, "%s: larger than %ld bytes",
			      ld->file, CONFIG_MAX_BYTES);
		return NULL;
	}
	buf = calloc(1, (size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		nbdws_err_set(ld->err, -ENOMEM, "out of memory");
		return NULL;
	}
	while (have < (size_t)st.st_size &&
	       (n = read(fd, buf + have, (size_t)st.st_size - have)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			nbdws_err_set(ld->err, -errno, "%s: %s", ld->file,
				      strerror(errno));
			close(fd);
			free(buf);
			return NULL;
		}
		have += (size_t)n;
	}
	close(fd);
	*len = have;
	return buf;
}

/* Parse with json-c's tokener so that a syntax error can name its line. */
static int parse_file(struct loader *ld, json_object **top)
{
	enum json_tokener_error jerr;
	struct json_tokener *tok;
	json_object *obj;
	size_t len = 0, end;
	char *buf = NULL;
	int rc = 0;

	buf = read_file(ld, &len);
	if (!buf)
		return -EINVAL;
	if (strlen(buf) != len) {
		free(buf);
		return err_at(ld, -EINVAL,
				     "%s: contains a NUL byte: not JSON text",
				     ld->file);
	}
	tok = json_tokener_new();
	if (!tok) {
		free(buf);
		return err_at(ld, -ENOMEM, "out of memory");
	}
	obj = json_tokener_parse_ex(tok, buf, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	if (!obj && jerr == json_tokener_continue) {
		/* The text stopped inside a value (or was empty). */
		rc = err_at(ld, -EINVAL,
				   "%s: line %u: unexpected end of file",
				   ld->file, line_of(buf, len));
	} else if (!obj) {
		rc = err_at(ld, -EINVAL, "%s: line %u: %s",
				   ld->file, line_of(buf, end),
				   json_tokener_error_desc(jerr));
	} else {
		/* One value only: text after it is a mistake, not a comment. */
		size_t i = end;

		while (i < len && strchr(" \t\r\n", buf[i]))
			i++;
		if (i < len) {
			rc = err_at(ld, -EINVAL,
					   "%s: line %u: text after the end of the configuration",
					   ld->file, line_of(buf, i));
			json_object_put(obj);
			obj = NULL;
		}
	}
	json_tokener_free(tok);
	free(buf);
	*top = obj;
	return rc;
}

/* ---- command line over the file ----------------------------------------- */

static int override(struct loader *ld, char **field, const char *value)
{
	char *copy;

	if (!value)
		return 0;
	copy = strdup(value);
	if (!copy)
		return err_at(ld, -ENOMEM, "out of memory");
	free(*field);
	*field = copy;
	return 0;
}

static int apply_cli(struct loader *ld, const struct relay_cli *cli)
{
	struct relay_config *cfg = ld->cfg;
	const char *why;
	unsigned int i;
	int rc;

	if (cli->n_listen) {
		/* --listen replaces the file's list, it does not add to it. */
		for (i = 0; i < cfg->n_listen; i++)
			cli_listen_free(&cfg->listen[i]);
		cfg->n_listen = 0;
		for (i = 0; i < cli->n_listen; i++) {
			rc = cli_listen_parse(&cfg->listen[i], cli->listen[i],
					      &why);
			if (rc == -ENOMEM)
				return err_at(ld, -ENOMEM, "out of memory");
			if (rc)
				return err_at(ld, -EINVAL, "--listen %s: %s",
					      cli->listen[i], why);
			cfg->n_listen++;
		}
	}
	rc = override(ld, &cfg->web_dir, cli->web_dir) ?:
	     override(ld, &cfg->state_hook, cli->state_hook) ?:
	     override(ld, &cfg->tokens_file, cli->tokens_file) ?:
	     override(ld, &cfg->module_path, cli->module_path) ?:
	     override(ld, &cfg->tls.cert_file, cli->tls_cert) ?:
	     override(ld, &cfg->tls.key_file, cli->tls_key) ?:
	     override(ld, &cfg->tls.client_ca_file, cli->tls_client_ca);
	if (rc)
		return rc;
	cfg->insecure |= cli->insecure;
	cfg->fallback |= cli->fallback;
	cfg->verbose = cli->verbose;
	return 0;
}

/* ---- the whole, checked -------------------------------------------------- */

static int check_slots(struct loader *ld)
{
	struct relay_config *cfg = ld->cfg;

	if (!cfg->n_slots)
		return err_at(ld, -EINVAL, "no slots configured");
	/* As nbd-proxy: a lone slot is the default unless it says otherwise. */
	if (cfg->n_slots == 1 && !ld->default_key_seen)
		cfg->slots[0].is_default = true;
	return 0;
}

static int check_tls(struct loader *ld)
{
	const struct relay_tls_cfg *t = &ld->cfg->tls;

	if (t->cert_file && !t->key_file)
		return err_at(ld, -EINVAL,
				     "TLS: a certificate needs its key: give tls.key or --tls-key");
	if (t->key_file && !t->cert_file)
		return err_at(ld, -EINVAL,
				     "TLS: a key needs its certificate: give tls.cert or --tls-cert");
	if (t->client_ca_file && !t->cert_file)
		return err_at(ld, -EINVAL,
				     "TLS: client certificates need TLS: give tls.cert and tls.key (or --tls-cert and --tls-key) with the client CA");
	if (t->require_client_cert && !t->client_ca_file)
		return err_at(ld, -EINVAL,
				     "TLS: tls.require-client-cert needs tls.client-ca (or --tls-client-ca) to verify them against");
	return 0;
}

/*
 * Files the daemon would otherwise find missing only when the first
 * client arrives (the hook) or never say clearly (the web root).
 */
static int check_files(struct loader *ld)
{
	const struct relay_config *cfg = ld->cfg;
	struct stat st;

	if (cfg->state_hook &&
	    (stat(cfg->state_hook, &st) || !S_ISREG(st.st_mode) ||
	     access(cfg->state_hook, X_OK)))
		return err_at(ld, -EINVAL,
				     "state hook %s: not an executable file",
				     cfg->state_hook);
	if (cfg->web_dir && (stat(cfg->web_dir, &st) || !S_ISDIR(st.st_mode)))
		return err_at(ld, -EINVAL,
				     "web root %s: not a directory",
				     cfg->web_dir);
	if (cfg->module_path &&
	    (stat(cfg->module_path, &st) || !S_ISREG(st.st_mode)))
		return err_at(ld, -EINVAL,
				     "module %s: not a file", cfg->module_path);
	return 0;
}

static void warn_auth(const struct relay_config *cfg)
{
	/* main.c warns about --insecure itself. */
	if (!cfg->insecure && !cfg->tokens_file && !cfg->tls.client_ca_file)
		relay_log(RELAY_LOG_WARN, "no tokens file and no client CA: every client will be refused (give --tokens, tls.client-ca or --insecure)");
}

/* "60 s", "1.5 s", or @zero ("off", "module default") for 0. */
static const char *secs(char *buf, size_t size, u32 ms, const char *zero)
{
	if (!ms)
		return zero;
	snprintf(buf, size, "%g s", ms / 1000.0);
	return buf;
}

/*
 * With -v: the configuration in force, after the command line, one line
 * for the daemon and one per slot, so an operator sees what the file and
 * the options came to. No credential is in it (the tokens file's path
 * is not one).
 */
static void config_log(const struct relay_config *cfg)
{
	char line[768], t1[32], t2[32], t3[32], idx[16], shown[80];
	unsigned int i, j;
	size_t off = 0;

	for (i = 0; i < cfg->n_listen && off < sizeof(line); i++)
		off += (size_t)snprintf(line + off, sizeof(line) - off, "%s%s",
					i ? " " : "", cfg->listen[i].spec);
	relay_log(RELAY_LOG_INFO, "config: listen %s; tls %s; tokens %s; client CA %s%s; web %s; state hook %s; insecure %s; fallback %s",
		  line, cfg->tls.cert_file ? "on (TCP)" : "off",
		  cfg->tokens_file ?: "none", cfg->tls.client_ca_file ?: "none",
		  cfg->tls.require_client_cert ? " (required)" : "",
		  cfg->web_dir ?: "none", cfg->state_hook ?: "none",
		  cfg->insecure ? "yes" : "no", cfg->fallback ? "yes" : "no");
	relay_log(RELAY_LOG_INFO, "config: limits: %u connections, %u handshakes, handshake timeout %s, hook timeout %s",
		  cfg->max_conns, cfg->max_handshakes,
		  secs(t1, sizeof(t1), cfg->handshake_ms, "?"),
		  secs(t2, sizeof(t2), cfg->hook_ms, "?"));
	for (i = 0; i < cfg->n_slots; i++) {
		const struct relay_slot_cfg *s = &cfg->slots[i];

		off = 0;
		line[0] = '\0';
		for (j = 0; j < s->n_origins && off < sizeof(line); j++)
			off += (size_t)snprintf(line + off, sizeof(line) - off,
						" %s", s->origins[j]);
		relay_printable(s->export_name, strlen(s->export_name), shown,
				sizeof(shown));
		snprintf(idx, sizeof(idx), "%d", s->index);
		relay_log(RELAY_LOG_INFO, "config: slot %s: index %s%s%s, export \"%s\", hold %s, timeout %s, max-request-size %u, queue-depth %u, ping %s, origins%s",
			  s->name, s->index < 0 ? "any" : idx,
			  s->is_default ? ", default" : "",
			  s->read_only ? ", read-only" : "", shown,
			  secs(t1, sizeof(t1), s->hold_ms, "?"),
			  secs(t2, sizeof(t2), s->timeout_ms, "module default"),
			  s->max_req_bytes, s->queue_depth,
			  secs(t3, sizeof(t3), s->ping_ms, "off"),
			  s->n_origins ? line : " any");
	}
}

static void set_builtin(struct loader *ld)
{
	struct relay_config *cfg = ld->cfg;

	cfg->max_conns = RELAY_DEF_MAX_CONNS;
	cfg->max_handshakes = RELAY_DEF_MAX_HANDSHAKES;
	cfg->handshake_ms = RELAY_DEF_HANDSHAKE_MS;
	cfg->hook_ms = RELAY_DEF_HOOK_MS;
	ld->def.hold_ms = RELAY_DEF_HOLD_MS;
	ld->def.timeout_ms = DEF_TIMEOUT_MS;
	ld->def.max_req_bytes = DEF_MAX_REQ;
	ld->def.index = -1;
}

int config_load(struct relay_config *cfg, int argc, char **argv,
		enum config_action *action, struct nbdws_err *err)
{
	struct loader ld = { .cfg = cfg, .err = err };
	json_object *top = NULL;
	struct relay_cli cli;
	int rc = 0;

	memset(cfg, 0, sizeof(*cfg));
	*action = CONFIG_RUN;
	switch (cli_parse(&cli, argc, argv)) {
	case CLI_DONE:
		*action = CONFIG_HELP;
		return 0;
	case CLI_USAGE:
		return 2;
	case CLI_OK:
		break;
	}
	if (cli.metadata)
		*action = CONFIG_METADATA;

	set_builtin(&ld);
	ld.file = cli.config_file;
	if (!ld.file && !access(RELAY_DEFAULT_CONFIG, F_OK))
		ld.file = RELAY_DEFAULT_CONFIG;
	if (ld.file)
		rc = parse_file(&ld, &top) ?: load_top(&ld, top);
	json_object_put(top);
	if (!rc)
		rc = apply_cli(&ld, &cli) ?: check_slots(&ld) ?: check_tls(&ld);
	/* --metadata needs only the slots, as nbd-proxy's file has them. */
	if (!rc && *action == CONFIG_RUN) {
		if (!cfg->n_listen)
			rc = err_at(&ld, -EINVAL,
				    "no listen address: give --listen or \"listen\" in the configuration");
		else
			rc = check_files(&ld);
	}
	free_origins(&ld.def);
	if (rc) {
		config_free(cfg);
		return 1;
	}
	if (cfg->max_handshakes > cfg->max_conns)
		cfg->max_handshakes = cfg->max_conns;
	if (*action == CONFIG_RUN) {
		warn_auth(cfg);
		if (cfg->verbose)
			config_log(cfg);
	}
	return 0;
}

/*
 * nbd-proxy prints json-c's default rendering of { NAME: metadata, ... }
 * with puts(); the same here, byte for byte, so scripts that read its
 * output read ours. A slot without metadata is null there, and here.
 */
int config_print_metadata(const struct relay_config *cfg, FILE *f)
{
	json_object *all, *md;
	unsigned int i;
	int rc = 0;

	all = json_object_new_object();
	if (!all)
		return -ENOMEM;
	for (i = 0; i < cfg->n_slots; i++) {
		const struct relay_slot_cfg *s = &cfg->slots[i];

		md = s->metadata_json ? json_tokener_parse(s->metadata_json) :
					NULL;
		if (json_object_object_add(all, s->name, md)) {
			json_object_put(md);
			rc = -ENOMEM;
			break;
		}
	}
	if (!rc && (fprintf(f, "%s\n", json_object_to_json_string_ext(all,
					JSON_C_TO_STRING_SPACED)) < 0 ||
		    fflush(f)))
		rc = -EIO;
	json_object_put(all);
	return rc;
}

void config_free(struct relay_config *cfg)
{
	unsigned int i;

	for (i = 0; i < cfg->n_listen; i++)
		cli_listen_free(&cfg->listen[i]);
	for (i = 0; i < cfg->n_slots; i++) {
		struct relay_slot_cfg *s = &cfg->slots[i];

		free(s->name);
		free(s->export_name);
		free(s->metadata_json);
		free_origins(s);
	}
	free(cfg->web_dir);
	free(cfg->state_hook);
	free(cfg->tokens_file);
	free(cfg->module_path);
	free(cfg->tls.cert_file);
	free(cfg->tls.key_file);
	free(cfg->tls.client_ca_file);
	memset(cfg, 0, sizeof(*cfg));
}
