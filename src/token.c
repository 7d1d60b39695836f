/* token.c: "scanqa issue-token": creates an API token for a user (creating the user
 * and its organization when asked), stores only the token's SHA-256 and prints the
 * token once.
 *
 * Usage:
 *   scanqa [-c FILE] issue-token --email EMAIL [--expires-days N] [--label TEXT]
 *          [--create-user --org NAME --role ROLE [--name DISPLAY]]
 *          [--qr] [--qr-png FILE]
 *
 *   --email EMAIL      the user the token authenticates as (case-insensitive)
 *   --expires-days N   the token expires N days from now (1..36500); default never
 *   --label TEXT       a note stored with the token, e.g. the device it is for
 *   --create-user      create the user if EMAIL is unknown, in organization NAME
 *                      (created too when no organization has that name) with ROLE:
 *                      qa_inspector, qa_manager, admin, owner, viewer or operator;
 *                      DISPLAY defaults to EMAIL. If the user already exists in
 *                      that organization with that role, it simply gets a token.
 *   --qr               after the token's line, print it as a QR code for a terminal
 *                      (qr.c), for a scanner to sign in by scanning the screen
 *   --qr-png FILE      also write the QR code as a PNG image to FILE (mode 0600)
 *
 * --help prints this usage. Options take their value as the next argument or
 * after "=". The token goes to stdout, alone on its line; what was done goes to
 * stderr. Connects with admin_conninfo. Exit status: 0 done, 1 failed, 2 bad
 * arguments. Writes audit rows for the user it creates and the token it issues.
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

#include "admin.h"
#include "conf.h"
#include "log.h"
#include "qr.h"
#include "token.h"

#define CMD "issue-token"

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
	const char *qr_png;       /* --qr-png FILE, or NULL */
	bool create_user;
	bool qr;                 /* --qr */
	bool help;               /* --help: print usage, do nothing else */
};

static void usage(FILE *to)
{
	fputs("usage: scanqa [-c FILE] issue-token --email EMAIL [--expires-days N] [--label TEXT]\n"
	      "                        [--create-user --org NAME --role ROLE [--name DISPLAY]]\n"
	      "                        [--qr] [--qr-png FILE]\n"
	      "  ROLE is one of " ADMIN_ROLES ".\n"
	      "  The token is printed once on stdout; only its SHA-256 is stored.\n",
	      to);
}

/* ---- arguments ---------------------------------------------------------------- */

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
		} else if (strcmp(argv[i], "--qr") == 0) {
			a->qr = true;
		} else if (!admin_take_value(argc, argv, &i, "--email", &a->email, &bad, CMD) &&
			 !admin_take_value(argc, argv, &i, "--expires-days", &days, &bad, CMD) &&
			 !admin_take_value(argc, argv, &i, "--label", &a->label, &bad, CMD) &&
			 !admin_take_value(argc, argv, &i, "--org", &a->org, &bad, CMD) &&
			 !admin_take_value(argc, argv, &i, "--role", &a->role, &bad, CMD) &&
			 !admin_take_value(argc, argv, &i, "--name", &a->name, &bad, CMD) &&
			 !admin_take_value(argc, argv, &i, "--qr-png", &a->qr_png, &bad, CMD)) {
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
		if (!admin_valid_role(a->role)) {
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

/* What the transaction found or made, for the description on stderr. */
struct issued {
	char user_id[64];
	char org_id[64];
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

/* Finds or (with --create-user) creates the user; fills out. */
static bool resolve_user(PGconn *conn, const struct token_args *a, struct issued *out)
{
	const char *p[1] = { a->email };
	PGresult *r;

	r = admin_query(conn, CMD, "looking up the user",
		  "SELECT u.id, o.name, u.role, u.active, o.id"
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
		copy_value(out->org_id, sizeof out->org_id, r, 4);
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

	if (!admin_find_org(conn, CMD, a->org, true, out->org_id, &out->org_created) ||
	    !admin_user_create(conn, CMD, a->email, out->org_id, a->name ? a->name : a->email,
			       a->role, out->user_id))
		return false;
	snprintf(out->org_name, sizeof out->org_name, "%s", a->org);
	snprintf(out->role, sizeof out->role, "%s", a->role);
	out->user_created = true;
	return true;
}

static bool store_token(PGconn *conn, const struct token_args *a, const char *hash_hex,
			struct issued *out)
{
	const char *p[4] = { out->user_id, hash_hex, a->label, a->expires_days };
	PGresult *r = admin_query(conn, CMD, "storing the token",
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

	const char *q[4] = { a->email, a->label, out->expires_at[0] ? out->expires_at : NULL, NULL };
	char *new_json = NULL;
	bool ok;

	r = admin_query(conn, CMD, "describing the token",
			"SELECT jsonb_build_object('user', $1::text, 'label', $2::text,"
			"                          'expires_at', $3::text)::text", 3, q);
	if (r == NULL)
		return false;
	new_json = PQgetvalue(r, 0, 0);
	ok = admin_audit(conn, CMD, out->org_id, "api_token", out->token_id, "token_issue",
			 NULL, new_json, "API token issued");
	PQclear(r);
	return ok;
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
	FILE *png = NULL;
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
	if ((conn = admin_connect(c, CMD)) == NULL)
		goto out;

	if (a.qr_png != NULL && (png = qr_png_open(a.qr_png)) == NULL)
		goto out;
	if (!admin_exec(conn, CMD, "BEGIN"))
		goto out;
	if ((r = admin_query(conn, CMD, "locking", "SELECT pg_advisory_xact_lock(" TOKEN_LOCK_KEY ")",
		       0, NULL)) == NULL)
		goto out;
	PQclear(r);
	if (!resolve_user(conn, &a, &out) || !store_token(conn, &a, hash_hex, &out))
		goto out;
	if (!admin_commit(conn, CMD))
		goto out;

	/* Only now is the token usable, so only now is it shown. */
	if (printf("%s\n", token) < 0 || fflush(stdout) != 0) {
		log_error("issue-token: cannot write the token to stdout: %s", strerror(errno));
		goto out;
	}
	fprintf(stderr, "issued token %s for %s%s (organization \"%s\"%s, role %s), %s%s.\n",
		out.token_id, a.email, out.user_created ? ", a new user" : "",
		out.org_name, out.org_created ? ", new" : "", out.role,
		out.expires_at[0] ? "expiring " : "never expiring", out.expires_at);
	if (a.qr && !qr_print_terminal(stdout, token))
		goto issued_unshown;
	if (png != NULL) {
		bool written = qr_png_write(png, token);

		png = NULL; /* closed by qr_png_write */
		if (!written)
			goto issued_unshown;
		fprintf(stderr, "wrote the token's QR code to %s\n", a.qr_png);
	}
	fputs("The token is shown only this once; only its SHA-256 is stored.\n", stderr);
	if (out.inactive)
		fprintf(stderr, "warning: user %s is inactive: the token answers \"User not found\" "
			"until the user is reactivated.\n", a.email);
	rc = 0;
	goto out;
issued_unshown:
	log_error(CMD ": token %s was issued but its QR code could not be written; revoke it "
		  "with \"scanqa token revoke %s\" if it is not used", out.token_id, out.token_id);
out:
	if (png != NULL)
		qr_png_discard(png, a.qr_png);
	/* Closing the connection rolls back a transaction left open by a failure. */
	if (conn != NULL)
		PQfinish(conn);
	OPENSSL_cleanse(token, sizeof token);
	OPENSSL_cleanse(hash_hex, sizeof hash_hex);
	return rc;
}
