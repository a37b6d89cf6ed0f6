// SPDX-License-Identifier: GPL-2.0
/*
 * nbdws-relay: the tokens file, credentials in a request, origins
 * (see auth.h and Documentation/relay.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "auth.h"
#include "secret.h"

/* A tokens file larger than this is not a tokens file. */
#define AUTH_MAX_FILE	(1024L * 1024)

static struct auth_set auth_cur;

static bool token_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || strchr("._~+/=-", c);
}

static bool token_valid(const char *s, size_t len)
{
	size_t i;

	if (len < AUTH_TOKEN_MIN || len > AUTH_TOKEN_MAX)
		return false;
	for (i = 0; i < len; i++)
		if (!s[i] || !token_char(s[i]))
			return false;
	return true;
}

static int sha256(const void *data, size_t len, u8 out[32])
{
	unsigned int n = 0;

	if (!EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) || n != 32)
		return -EIO;
	return 0;
}

static int slot_by_name(const struct relay_config *cfg, const char *name,
			size_t len)
{
	unsigned int i;

	for (i = 0; i < cfg->n_slots; i++)
		if (strlen(cfg->slots[i].name) == len &&
		    !memcmp(cfg->slots[i].name, name, len))
			return (int)i;
	return -1;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* One non-comment line: TOKEN [SLOT ...]. */
static int parse_line(const char *path, unsigned int lineno, char *p,
		      const struct relay_config *cfg, struct auth_set *set,
		      struct nbdws_err *err)
{
	struct auth_entry *e = &set->v[set->n];
	char *tok = p, name[80];
	size_t len;
	unsigned int i;
	int s;

	while (*p && !is_space(*p))
		p++;
	len = (size_t)(p - tok);
	if (!token_valid(tok, len))
		return nbdws_err_set(err, -EINVAL,
				     "%s:%u: not a valid token (%d to %d characters of A-Z a-z 0-9 . _ ~ + / = -)",
				     path, lineno, AUTH_TOKEN_MIN,
				     AUTH_TOKEN_MAX);
	memset(e, 0, sizeof(*e));
	if (sha256(tok, len, e->sha))
		return nbdws_err_set(err, -EIO, "%s:%u: SHA-256 failed",
				     path, lineno);
	e->all_slots = true;
	for (;;) {
		while (is_space(*p))
			p++;
		if (!*p)
			break;
		tok = p;
		while (*p && !is_space(*p))
			p++;
		len = (size_t)(p - tok);
		s = slot_by_name(cfg, tok, len);
		if (s < 0) {
			relay_printable(tok, len, name, sizeof(name));
			return nbdws_err_set(err, -EINVAL,
					     "%s:%u: no slot named \"%s\"",
					     path, lineno, name);
		}
		e->all_slots = false;
		e->slots |= 1ULL << s;
	}
	for (i = 0; i < set->n; i++)
		if (!CRYPTO_memcmp(set->v[i].sha, e->sha, sizeof(e->sha)))
			return nbdws_err_set(err, -EINVAL,
					     "%s:%u: the same token is on an earlier line",
					     path, lineno);
	set->n++;
	return 0;
}

static int parse_text(const char *path, char *text,
		      const struct relay_config *cfg, struct auth_set *set,
		      struct nbdws_err *err)
{
	unsigned int lineno = 0;
	char *line = text, *nl;
	int rc;

	while (line && *line) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		lineno++;
		while (is_space(*line))
			line++;
		if (*line && *line != '#') {
			if (set->n == AUTH_MAX_TOKENS)
				return nbdws_err_set(err, -E2BIG,
						     "%s:%u: more than %d tokens",
						     path, lineno,
						     AUTH_MAX_TOKENS);
			rc = parse_line(path, lineno, line, cfg, set, err);
			if (rc)
				return rc;
		}
		line = nl ? nl + 1 : NULL;
	}
	return 0;
}

/* Read all of @fd (a regular file of @size bytes at most) into a string. */
static int read_all(int fd, size_t size, char **out)
{
	char *buf = malloc(size + 1);
	size_t have = 0;
	ssize_t n;

	if (!buf)
		return -ENOMEM;
	while (have < size) {
		n = read(fd, buf + have, size - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			n = -errno;
			secret_free(buf, have);
			return (int)n;
		}
		if (!n)
			break;
		have += (size_t)n;
	}
	buf[have] = '\0';
	*out = buf;
	return (int)have;
}

int auth_set_load(const char *path, uid_t uid, const struct relay_config *cfg,
		  struct auth_set *set, struct nbdws_err *err)
{
	char *text = NULL;
	struct stat st;
	size_t len;
	int fd, rc;

	memset(set, 0, sizeof(*set));
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return nbdws_err_set(err, -errno, "%s: %s", path,
				     strerror(errno));
	/* Anyone who can write it can let himself in. */
	rc = secret_file_check(fd, path, uid, &st, err);
	if (rc)
		goto out;
	if (st.st_size > AUTH_MAX_FILE) {
		rc = nbdws_err_set(err, -EFBIG, "%s: larger than %ld bytes",
				   path, AUTH_MAX_FILE);
		goto out;
	}
	rc = read_all(fd, (size_t)st.st_size, &text);
	if (rc < 0) {
		rc = nbdws_err_set(err, rc, "%s: %s", path, strerror(-rc));
		goto out;
	}
	/* parse_text() cuts lines with NULs: strlen() would stop at the first. */
	len = (size_t)rc + 1;
	set->v = calloc(AUTH_MAX_TOKENS, sizeof(*set->v));
	rc = set->v ? parse_text(path, text, cfg, set, err) :
		      nbdws_err_set(err, -ENOMEM, "out of memory");
	secret_free(text, len);
	if (rc)
		auth_set_free(set);
out:
	close(fd);
	return rc;
}

void auth_set_free(struct auth_set *set)
{
	secret_free(set->v, sizeof(*set->v) * AUTH_MAX_TOKENS);
	set->v = NULL;
	set->n = 0;
}

int auth_init(void)
{
	struct nbdws_err err = { { 0 } };
	int rc;

	if (relay_cfg->insecure)
		relay_log(RELAY_LOG_WARN,
			  "--insecure: clients without a credential are served");
	if (!relay_cfg->tokens_file) {
		if (!relay_cfg->insecure && !relay_cfg->tls.client_ca_file) {
			relay_log(RELAY_LOG_ERR,
				  "no way to authenticate clients: give a tokens file (--tokens), tls.client-ca, or --insecure");
			return -EINVAL;
		}
		return 0;
	}
	rc = auth_set_load(relay_cfg->tokens_file, geteuid(), relay_cfg,
			   &auth_cur, &err);
	if (rc) {
		relay_log(RELAY_LOG_ERR, "%s", err.msg);
		return rc;
	}
	relay_log(RELAY_LOG_INFO, "%u token(s) loaded from %s", auth_cur.n,
		  relay_cfg->tokens_file);
	return 0;
}

void auth_fini(void)
{
	auth_set_free(&auth_cur);
}

int auth_reload(void)
{
	struct nbdws_err err = { { 0 } };
	struct auth_set set;
	int rc;

	if (!relay_cfg->tokens_file)
		return 0;
	rc = auth_set_load(relay_cfg->tokens_file, geteuid(), relay_cfg,
			   &set, &err);
	if (rc) {
		relay_log(RELAY_LOG_WARN, "reload: %s; keeping the %u token(s) loaded before",
			  err.msg, auth_cur.n);
		return rc;
	}
	auth_set_free(&auth_cur);
	auth_cur = set;
	relay_log(RELAY_LOG_INFO, "reload: %u token(s) loaded from %s",
		  auth_cur.n, relay_cfg->tokens_file);
	return 0;
}

/*
 * The entry for @token, or NULL. Every entry is compared, match or not,
 * so the time taken does not say how many entries come before a match.
 */
static const struct auth_entry *lookup(const struct auth_set *set,
				       const char *token, u8 sha[32])
{
	const struct auth_entry *found = NULL;
	unsigned int i;

	if (!set->n || sha256(token, strlen(token), sha))
		return NULL;
	for (i = 0; i < set->n; i++)
		if (!CRYPTO_memcmp(set->v[i].sha, sha, 32))
			found = &set->v[i];
	return found;
}

static void refuse(struct auth_result *res, int status, const char *why)
{
	res->status = status;
	res->why = why;
}

/* "Bearer TOKEN" from Authorization: 1 found, 0 none, -1 refused. */
static int get_bearer(const struct http_request *req, char *out, size_t size,
		      struct auth_result *res)
{
	const char *v;
	size_t len;

	switch (http_count(req, "Authorization")) {
	case 0:
		return 0;
	case 1:
		break;
	default:
		refuse(res, 400, "more than one Authorization header");
		return -1;
	}
	v = http_get(req, "Authorization");
	if (strncasecmp(v, "Bearer", 6) != 0 || !is_space(v[6])) {
		refuse(res, 401, "Authorization is not a Bearer token");
		return -1;
	}
	v += 6;
	while (is_space(*v))
		v++;
	len = strlen(v);
	while (len && is_space(v[len - 1]))
		len--;
	if (!token_valid(v, len) || len >= size) {
		refuse(res, 401, "invalid credential");
		return -1;
	}
	memcpy(out, v, len);
	out[len] = '\0';
	return 1;
}

/*
 * The offered subprotocols: one that is a known token goes to @out (two
 * different known tokens: refused), and *@binary says if "binary" was
 * offered. Tokens are looked up because a subprotocol that is not a
 * token is an ordinary subprotocol name, not a wrong credential. The
 * first offered one that is shaped like a token but unknown goes to
 * @unknown: an anonymous admission echoes it (see auth_check()).
 */
static int get_subprotocol(const struct auth_set *set,
			   const struct http_request *req, char *out,
			   char *unknown, size_t size, bool *binary,
			   struct auth_result *res)
{
	char v[AUTH_TOKEN_MAX + 2];
	const char *cursor = NULL;
	unsigned int field = 0;
	int found = 0;
	u8 sha[32];

	*binary = false;
	unknown[0] = '\0';
	while (http_next_token(req, "Sec-WebSocket-Protocol", &field, &cursor,
			       v, sizeof(v))) {
		if (!strcmp(v, "binary")) {
			*binary = true;
			continue;
		}
		if (!token_valid(v, strlen(v)))
			continue;
		if (!lookup(set, v, sha)) {
			if (!unknown[0])
				snprintf(unknown, size, "%s", v);
			continue;
		}
		if (found && strcmp(out, v) != 0) {
			refuse(res, 400, "two different tokens offered as subprotocols");
			found = -1;
			break;
		}
		snprintf(out, size, "%s", v);
		found = 1;
	}
	OPENSSL_cleanse(v, sizeof(v));
	return found;
}

void auth_check(const struct auth_set *set, const struct relay_config *cfg,
		const struct http_request *req, const u8 *cert_sha, int slot,
		struct auth_result *res)
{
	char bearer[AUTH_TOKEN_MAX + 1], query[AUTH_TOKEN_MAX + 1];
	char sp[AUTH_TOKEN_MAX + 1], sp_unknown[AUTH_TOKEN_MAX + 1];
	const struct auth_entry *e;
	const char *token = NULL;
	int has_bearer, has_sp;
	bool has_query, binary;

	memset(res, 0, sizeof(*res));
	res->id.anonymous = true;
	has_bearer = get_bearer(req, bearer, sizeof(bearer), res);
	if (has_bearer < 0)
		return;
	has_query = req->query &&
		    http_query_param(req->query, "token", query,
				     sizeof(query));
	has_sp = get_subprotocol(set, req, sp, sp_unknown, sizeof(sp), &binary,
				 res);
	if (has_sp < 0)
		goto out;
	if (has_bearer)
		token = bearer;
	if (has_query) {
		if (token && strcmp(token, query) != 0) {
			refuse(res, 400, "the token in the query differs from the Authorization header");
			goto out;
		}
		token = query;
	}
	if (has_sp) {
		if (token && strcmp(token, sp) != 0) {
			refuse(res, 400, "the token offered as subprotocol differs from the other one");
			goto out;
		}
		token = sp;
		snprintf(res->protocol, sizeof(res->protocol), "%s", sp);
	} else if (binary) {
		strcpy(res->protocol, "binary");
	}

	/* --insecure without a tokens file: nothing to check tokens against. */
	if (token && (set->n || !cfg->insecure)) {
		e = lookup(set, token, res->id.sha);
		if (!e) {
			refuse(res, 401, "invalid credential");
			goto out;
		}
		if (slot >= 0 && !e->all_slots && !(e->slots >> slot & 1)) {
			refuse(res, 403, "the token is not valid for this slot");
			goto out;
		}
		res->id.anonymous = false;
		res->why = "token";
	} else if (cert_sha) {
		memcpy(res->id.sha, cert_sha, 32);
		res->id.anonymous = false;
		res->why = "client certificate";
	} else if (cfg->insecure) {
		res->why = "anonymous";
		/*
		 * A page that sends its session token as the subprotocol
		 * (webui-vue) offers nothing else, and a browser fails a
		 * handshake that answers an offer with no subprotocol
		 * (WHATWG WebSocket; RFC 6455 lets a server pick none, but
		 * no browser accepts that). Nothing checks the token here,
		 * so answer with it, as bmcweb does with CSRF checks off:
		 * the credential-as-subprotocol convention, unverified.
		 */
		if (!res->protocol[0] && sp_unknown[0])
			snprintf(res->protocol, sizeof(res->protocol), "%s",
				 sp_unknown);
	} else {
		refuse(res, 401, "no credential");
	}
out:
	OPENSSL_cleanse(bearer, sizeof(bearer));
	OPENSSL_cleanse(query, sizeof(query));
	OPENSSL_cleanse(sp, sizeof(sp));
	OPENSSL_cleanse(sp_unknown, sizeof(sp_unknown));
	if (res->status)
		memset(res->protocol, 0, sizeof(res->protocol));
}

void auth_check_request(const struct http_request *req, const u8 *cert_sha,
			int slot, struct auth_result *res)
{
	auth_check(&auth_cur, relay_cfg, req, cert_sha, slot, res);
}

bool auth_origin_ok(const struct relay_slot_cfg *sc,
		    const struct http_request *req)
{
	const char *origin;
	unsigned int i;

	if (!sc->n_origins)
		return true;
	switch (http_count(req, "Origin")) {
	case 0:
		return true;
	case 1:
		break;
	default:
		return false;
	}
	origin = http_get(req, "Origin");
	/*
	 * An origin is scheme://host[:port], nothing else: comparing it
	 * whole without case is comparing scheme and host without case.
	 */
	for (i = 0; i < sc->n_origins; i++)
		if (!strcasecmp(origin, sc->origins[i]))
			return true;
	return false;
}

bool auth_id_equal(const struct auth_id *a, const struct auth_id *b)
{
	if (a->anonymous || b->anonymous)
		return a->anonymous == b->anonymous;
	return !CRYPTO_memcmp(a->sha, b->sha, sizeof(a->sha));
}
