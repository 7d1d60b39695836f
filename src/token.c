/* token.c: "scanqa issue-token": creates an API token for a user (creating the user
 * and its organization when asked), stores only the token's SHA-256 and prints the
 * token once.
 *
 * Usage:
 *   scanqa [-c FILE] issue-token --email EMAIL [--expires-days N] [--label TEXT]
 *          [--create-user --org NAME --role ROLE [--name DISPLAY]]
 *
 *   --email EMAIL      the user the token authenticates as (case-insensitive)
 *   --expires-days N   the token expires N days from now (1..36500); default never
 *   --label TEXT       a note stored with the token, e.g. the device it is for
 *   --create-user      create the user if EMAIL is unknown, in organization NAME
 *                      (created too when no organization has that name) with ROLE:
 *                      qa_inspector, qa_manager, admin, owner, viewer or operator;
 *                      DISPLAY defaults to EMAIL. If the user already exists in
 *                      that organization with that role, it simply gets a token.
 *
 * --help prints this usage. Options take their value as the next argument or
 * after "=". The token goes to stdout, alone on its line; what was done goes to
 * stderr. Connects with admin_conninfo. Exit status: 0 done, 1 failed, 2 bad
 * arguments.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "conf.h"
#include "log.h"
#include "token.h"

#define TOKEN_PREFIX "sqa_"
#define TOKEN_RANDOM_BYTES 32
/* "sqa_" + base64url of 32 bytes without padding (43 chars) + NUL */
#define TOKEN_LEN (sizeof TOKEN_PREFIX - 1 + 43)
#define EXPIRES_DAYS_MAX 36500
/* Serialises concurrent issue-token runs so that two of them cannot both create
 * an organization of the same name: the bytes of "scanqa" followed by 2. */
#define TOKEN_LOCK_KEY "32478892437627138"

struct token_args {
	const char *email;
	const char *label;
	const char *org;
	const char *role;
	const char *name;
	const char *expires_days; /* validated digits, or NULL */
	bool create_user;
	bool help;               /* --help: print usage, do nothing else */
};

static const char *const user_roles[] = {
	"qa_inspector", "qa_manager", "admin", "owner", "viewer", "operator", NULL
};

static void usage(FILE *to)
{
	fputs("usage: scanqa [-c FILE] issue-token --email EMAIL [--expires-days N] [--label TEXT]\n"
	      "                        [--create-user --org NAME --role ROLE [--name DISPLAY]]\n"
	      "  ROLE is one of qa_inspector, qa_manager, admin, owner, viewer, operator.\n"
	      "  The token is printed once on stdout; only its SHA-256 is stored.\n",
	      to);
}

/* ---- arguments ---------------------------------------------------------------- */

/* Matches argv[*i] against "--name VALUE" or "--name=VALUE". On a match stores the
 * value, advances *i past it and returns true; *bad is set when the value is missing. */
static bool take_value(int argc, char **argv, int *i, const char *name,
		       const char **value, bool *bad)
{
	const char *a = argv[*i];
	size_t n = strlen(name);

	if (strncmp(a, name, n) != 0)
		return false;
	if (a[n] == '=') {
		*value = a + n + 1;
		return true;
	}
	if (a[n] != '\0')
		return false;
	if (*i + 1 >= argc) {
		fprintf(stderr, "issue-token: %s needs a value\n", name);
		*bad = true;
		return true;
	}
	*value = argv[++*i];
	return true;
}

static bool valid_role(const char *role)
{
	for (const char *const *r = user_roles; *r != NULL; r++)
		if (strcmp(*r, role) == 0)
			return true;
	return false;
}

/* Fills a from argv; returns false (having said why on stderr) on bad arguments. */
static bool parse_args(int argc, char **argv, struct token_args *a)
{
	const char *days = NULL;
	bool bad = false;
	int i = 0;

	memset(a, 0, sizeof *a);
	/* Callers that hand over their argv from the subcommand name on are accepted too. */
	if (argc > 0 && strcmp(argv[0], "issue-token") == 0)
		i = 1;
	for (; i < argc && !bad; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			a->help = true;
			return true;
		} else if (strcmp(argv[i], "--create-user") == 0) {
			a->create_user = true;
		} else if (!take_value(argc, argv, &i, "--email", &a->email, &bad) &&
			 !take_value(argc, argv, &i, "--expires-days", &days, &bad) &&
			 !take_value(argc, argv, &i, "--label", &a->label, &bad) &&
			 !take_value(argc, argv, &i, "--org", &a->org, &bad) &&
			 !take_value(argc, argv, &i, "--role", &a->role, &bad) &&
			 !take_value(argc, argv, &i, "--name", &a->name, &bad)) {
			fprintf(stderr, "issue-token: unknown argument \"%s\"\n", argv[i]);
			bad = true;
		}
	}
	if (bad)
		return false;

	if (a->email == NULL || a->email[0] == '\0') {
		fputs("issue-token: --email EMAIL is required\n", stderr);
		return false;
	}
	if (strchr(a->email, '@') == NULL) {
		fprintf(stderr, "issue-token: \"%s\" is not an email address\n", a->email);
		return false;
	}
	if (days != NULL) {
		char *end;
		long n;

		errno = 0;
		n = strtol(days, &end, 10);
		if (errno != 0 || end == days || *end != '\0' || n < 1 || n > EXPIRES_DAYS_MAX) {
			fprintf(stderr, "issue-token: --expires-days must be a whole number "
				"from 1 to %d\n", EXPIRES_DAYS_MAX);
			return false;
		}
		a->expires_days = days;
	}
	if (a->create_user) {
		if (a->org == NULL || a->org[0] == '\0' || a->role == NULL) {
			fputs("issue-token: --create-user needs --org NAME and --role ROLE\n", stderr);
			return false;
		}
		if (!valid_role(a->role)) {
			fprintf(stderr, "issue-token: unknown role \"%s\"\n", a->role);
			return false;
		}
		if (a->name != NULL && a->name[0] == '\0') {
			fputs("issue-token: --name must not be empty\n", stderr);
			return false;
		}
	} else if (a->org != NULL || a->role != NULL || a->name != NULL) {
		fputs("issue-token: --org, --role and --name only go with --create-user\n", stderr);
		return false;
	}
	return true;
}

/* ---- the token ----------------------------------------------------------------- */

/* base64url (RFC 4648 section 5) without padding; out has room for 4*ceil(n/3)+1. */
static void base64url(const unsigned char *in, size_t n, char *out)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t i = 0;

	for (; i + 2 < n; i += 3) {
		unsigned long v = (unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8 | in[i + 2];

		*out++ = alphabet[v >> 18 & 63];
		*out++ = alphabet[v >> 12 & 63];
		*out++ = alphabet[v >> 6 & 63];
		*out++ = alphabet[v & 63];
	}
	if (n - i == 1) {
		unsigned long v = (unsigned long)in[i] << 16;

		*out++ = alphabet[v >> 18 & 63];
		*out++ = alphabet[v >> 12 & 63];
	} else if (n - i == 2) {
		unsigned long v = (unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8;

		*out++ = alphabet[v >> 18 & 63];
		*out++ = alphabet[v >> 12 & 63];
		*out++ = alphabet[v >> 6 & 63];
	}
	*out = '\0';
}

/* Makes a new token and the lowercase hex of its SHA-256 (the hash of the whole
 * string, prefix included, as the daemon hashes a presented bearer token). */
static bool make_token(char token[TOKEN_LEN + 1], char hash_hex[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[TOKEN_RANDOM_BYTES];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (RAND_bytes(raw, sizeof raw) != 1) {
		log_error("issue-token: the random number generator failed");
		return false;
	}
	memcpy(token, TOKEN_PREFIX, sizeof TOKEN_PREFIX - 1);
	base64url(raw, sizeof raw, token + sizeof TOKEN_PREFIX - 1);
	OPENSSL_cleanse(raw, sizeof raw);

	if (EVP_Digest(token, strlen(token), md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
		log_error("issue-token: SHA-256 failed");
		return false;
	}
	for (unsigned i = 0; i < mdlen; i++) {
		hash_hex[2 * i] = hex[md[i] >> 4];
		hash_hex[2 * i + 1] = hex[md[i] & 15];
	}
	hash_hex[64] = '\0';
	return true;
}

/* ---- PostgreSQL ---------------------------------------------------------------- */

static PGconn *connect_owner(const struct conf *c)
{
	const char *conninfo = c->admin_conninfo;
	char timeout[16];
	PGconn *conn;

	if (conninfo == NULL || conninfo[0] == '\0') {
		log_warn("admin_conninfo is not set; issuing the token through conninfo");
		conninfo = c->conninfo ? c->conninfo : "";
	}
	snprintf(timeout, sizeof timeout, "%d", c->connect_timeout_s > 0 ? c->connect_timeout_s : 10);
	{
		/* Entries before "dbname" are defaults the conninfo string may override. */
		const char *keys[] = { "connect_timeout", "application_name", "dbname", NULL };
		const char *vals[] = { timeout, "scanqa-issue-token", conninfo, NULL };

		conn = PQconnectdbParams(keys, vals, 1);
	}
	if (conn == NULL) {
		log_error("issue-token: out of memory connecting to PostgreSQL");
		return NULL;
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		log_error("issue-token: cannot connect to PostgreSQL: %s", PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

/* Runs a parameterised statement; returns its result, or NULL after logging the
 * failure (what names the step). */
static PGresult *query(PGconn *conn, const char *what, const char *sql, int n,
		       const char *const *params)
{
	PGresult *r = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return r;
	log_error("issue-token: %s failed: %s", what,
		  r ? PQresultErrorMessage(r) : PQerrorMessage(conn));
	PQclear(r);
	return NULL;
}

/* What the transaction found or made, for the description on stderr. */
struct issued {
	char user_id[64];
	char token_id[64];
	char org_name[256];
	char role[32];
	char expires_at[64];
	bool user_created;
	bool org_created;
	bool inactive;
};

static void copy_value(char *dst, size_t len, const PGresult *r, int col)
{
	snprintf(dst, len, "%s", PQgetisnull(r, 0, col) ? "" : PQgetvalue(r, 0, col));
}

/* Finds the organization named a->org, creating it when there is none. */
static bool find_or_create_org(PGconn *conn, const struct token_args *a,
			       char org_id[64], struct issued *out)
{
	const char *p[1] = { a->org };
	PGresult *r = query(conn, "looking up the organization",
			    "SELECT id FROM organizations WHERE name = $1 ORDER BY created_at LIMIT 2",
			    1, p);

	if (r == NULL)
		return false;
	if (PQntuples(r) > 1) {
		log_error("issue-token: more than one organization is named \"%s\"", a->org);
		PQclear(r);
		return false;
	}
	if (PQntuples(r) == 0) {
		PQclear(r);
		r = query(conn, "creating the organization",
			  "INSERT INTO organizations (name) VALUES ($1) RETURNING id", 1, p);
		if (r == NULL)
			return false;
		out->org_created = true;
	}
	copy_value(org_id, 64, r, 0);
	PQclear(r);
	return true;
}

/* Finds or (with --create-user) creates the user; fills out. */
static bool resolve_user(PGconn *conn, const struct token_args *a, struct issued *out)
{
	const char *p[4] = { a->email, NULL, NULL, NULL };
	char org_id[64];
	PGresult *r;

	r = query(conn, "looking up the user",
		  "SELECT u.id, o.name, u.role, u.active"
		  "  FROM users u JOIN organizations o ON o.id = u.org_id"
		  " WHERE lower(u.email) = lower($1)",
		  1, p);
	if (r == NULL)
		return false;
	if (PQntuples(r) == 1) {
		copy_value(out->user_id, sizeof out->user_id, r, 0);
		copy_value(out->org_name, sizeof out->org_name, r, 1);
		copy_value(out->role, sizeof out->role, r, 2);
		out->inactive = strcmp(PQgetvalue(r, 0, 3), "t") != 0;
		PQclear(r);
		if (a->create_user &&
		    (strcmp(out->org_name, a->org) != 0 || strcmp(out->role, a->role) != 0)) {
			log_error("issue-token: user %s already exists, in organization \"%s\" with "
				  "role %s; not changing it (drop --create-user to issue a token)",
				  a->email, out->org_name, out->role);
			return false;
		}
		return true;
	}
	PQclear(r);
	if (!a->create_user) {
		log_error("issue-token: no user with email %s (add --create-user --org NAME "
			  "--role ROLE to create one)", a->email);
		return false;
	}

	if (!find_or_create_org(conn, a, org_id, out))
		return false;
	p[1] = org_id;
	p[2] = a->name ? a->name : a->email;
	p[3] = a->role;
	r = query(conn, "creating the user",
		  "INSERT INTO users (email, org_id, display_name, role)"
		  " VALUES ($1, $2::uuid, $3, $4) RETURNING id",
		  4, p);
	if (r == NULL)
		return false;
	copy_value(out->user_id, sizeof out->user_id, r, 0);
	PQclear(r);
	snprintf(out->org_name, sizeof out->org_name, "%s", a->org);
	snprintf(out->role, sizeof out->role, "%s", a->role);
	out->user_created = true;
	return true;
}

static bool store_token(PGconn *conn, const struct token_args *a, const char *hash_hex,
			struct issued *out)
{
	const char *p[4] = { out->user_id, hash_hex, a->label, a->expires_days };
	PGresult *r = query(conn, "storing the token",
			    "INSERT INTO api_tokens (user_id, token_sha256, label, expires_at)"
			    " VALUES ($1::uuid, decode($2, 'hex'), $3,"
			    "         now() + make_interval(days => $4::int))"
			    " RETURNING id, to_char(expires_at AT TIME ZONE 'UTC',"
			    "                       'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
			    4, p);

	if (r == NULL)
		return false;
	copy_value(out->token_id, sizeof out->token_id, r, 0);
	copy_value(out->expires_at, sizeof out->expires_at, r, 1);
	PQclear(r);
	return true;
}

/* ---- entry point --------------------------------------------------------------- */

int token_issue_main(const struct conf *c, int argc, char **argv)
{
	struct token_args a;
	struct issued out;
	char token[TOKEN_LEN + 1];
	char hash_hex[65];
	PGconn *conn = NULL;
	PGresult *r;
	int rc = 1;

	if (!parse_args(argc, argv, &a)) {
		usage(stderr);
		return 2;
	}
	if (a.help) {
		usage(stdout);
		return 0;
	}
	memset(&out, 0, sizeof out);
	if (!make_token(token, hash_hex))
		goto out;
	if ((conn = connect_owner(c)) == NULL)
		goto out;

	r = PQexec(conn, "BEGIN");
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		log_error("issue-token: BEGIN failed: %s", PQerrorMessage(conn));
		PQclear(r);
		goto out;
	}
	PQclear(r);
	if ((r = query(conn, "locking", "SELECT pg_advisory_xact_lock(" TOKEN_LOCK_KEY ")",
		       0, NULL)) == NULL)
		goto out;
	PQclear(r);
	if (!resolve_user(conn, &a, &out) || !store_token(conn, &a, hash_hex, &out))
		goto out;
	/* A failed transaction's COMMIT answers "ROLLBACK" rather than an error. */
	r = PQexec(conn, "COMMIT");
	if (PQresultStatus(r) != PGRES_COMMAND_OK || strcmp(PQcmdStatus(r), "COMMIT") != 0) {
		log_error("issue-token: COMMIT failed: %s", PQerrorMessage(conn));
		PQclear(r);
		goto out;
	}
	PQclear(r);

	/* Only now is the token usable, so only now is it shown. */
	if (printf("%s\n", token) < 0 || fflush(stdout) != 0) {
		log_error("issue-token: cannot write the token to stdout: %s", strerror(errno));
		goto out;
	}
	fprintf(stderr, "issued token %s for %s%s (organization \"%s\"%s, role %s), %s%s.\n",
		out.token_id, a.email, out.user_created ? ", a new user" : "",
		out.org_name, out.org_created ? ", new" : "", out.role,
		out.expires_at[0] ? "expiring " : "never expiring", out.expires_at);
	fputs("The token is shown only this once; only its SHA-256 is stored.\n", stderr);
	if (out.inactive)
		fprintf(stderr, "warning: user %s is inactive: the token answers \"User not found\" "
			"until the user is reactivated.\n", a.email);
	rc = 0;
out:
	/* Closing the connection rolls back a transaction left open by a failure. */
	if (conn != NULL)
		PQfinish(conn);
	OPENSSL_cleanse(token, sizeof token);
	OPENSSL_cleanse(hash_hex, sizeof hash_hex);
	return rc;
}
