/* admin_tokens.c: "scanqa token list|revoke". (Tokens are made by issue-token, token.c.)
 *
 *   token list [--org NAME] [--email E] [--all] [--json]
 *       id, user, organization, label, created, last used, expiry, revocation and a
 *       status (active, expired, revoked, user deactivated), newest first; revoked
 *       and expired tokens only with --all (always in --json). Never the hash.
 *   token revoke (ID | --email E [--label L] | --label L [--org NAME])
 *       revokes the matching unrevoked tokens; the daemon refuses them (401) from
 *       its next request on, since it asks PostgreSQL on every request.
 *
 * Revocations run in one transaction with one quality_audit_log row per token.
 * Exit status: 0 done, 1 failed or nothing matched, 2 bad arguments.
 */
#include <stdio.h>
#include <string.h>

#include "admin.h"
#include "log.h"

/* Every column a list shows; $1 organization name, $2 email, $3 all (boolean). */
#define TOKEN_ROWS \
	" FROM api_tokens t" \
	" JOIN users u ON u.id = t.user_id" \
	" JOIN organizations o ON o.id = u.org_id" \
	" CROSS JOIN LATERAL (SELECT CASE" \
	"     WHEN t.revoked_at IS NOT NULL THEN 'revoked'" \
	"     WHEN t.expires_at <= now() THEN 'expired'" \
	"     WHEN NOT u.active THEN 'user deactivated'" \
	"     ELSE 'active' END AS status) s" \
	" WHERE ($1::text IS NULL OR o.name = $1)" \
	"   AND ($2::text IS NULL OR lower(u.email) = lower($2))" \
	"   AND ($3::boolean OR s.status IN ('active', 'user deactivated'))"

#define ISO(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
#define SHORT(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')"

int admin_token_list(const struct conf *c, int argc, char **argv)
{
	const char *org = NULL, *email = NULL;
	bool json = false, all = false, bad = false;
	PGconn *conn;
	PGresult *r;

	for (int i = 0; i < argc && !bad; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			json = true;
		} else if (strcmp(argv[i], "--all") == 0) {
			all = true;
		} else if (!admin_take_value(argc, argv, &i, "--org", &org, &bad, "token list") &&
			   !admin_take_value(argc, argv, &i, "--email", &email, &bad, "token list")) {
			fprintf(stderr, "token list: unknown argument \"%s\"\n", argv[i]);
			bad = true;
		}
	}
	if (bad) {
		fputs("usage: scanqa token list [--org NAME] [--email E] [--all] [--json]\n", stderr);
		return ADMIN_USAGE;
	}
	if ((conn = admin_connect(c, "token")) == NULL)
		return ADMIN_FAILED;

	const char *p[3] = { org, email, json || all ? "true" : "false" };

	r = admin_query(conn, "token list", "listing the tokens",
			json ?
			"SELECT coalesce(jsonb_pretty(jsonb_agg(x ORDER BY x.created_at DESC, x.id)), '[]')"
			"  FROM (SELECT t.id, u.email AS user, o.name AS organization, t.label,"
			"               " ISO("t.created_at") " AS created_at,"
			"               " ISO("t.last_used_at") " AS last_used_at,"
			"               " ISO("t.expires_at") " AS expires_at,"
			"               " ISO("t.revoked_at") " AS revoked_at,"
			"               s.status" TOKEN_ROWS ") x"
			:
			"SELECT t.id, u.email AS user, o.name AS organization, t.label,"
			"       " SHORT("t.created_at") " AS created,"
			"       " SHORT("t.last_used_at") " AS last_used,"
			"       " SHORT("t.expires_at") " AS expires,"
			"       " SHORT("t.revoked_at") " AS revoked,"
			"       s.status" TOKEN_ROWS
			" ORDER BY t.created_at DESC, t.id",
			3, p);
	PQfinish(conn);
	if (r == NULL)
		return ADMIN_FAILED;
	if (json)
		printf("%s\n", PQgetvalue(r, 0, 0));
	else if (PQntuples(r) == 0)
		fputs("no tokens\n", stderr);
	else
		admin_print_table(stdout, r);
	PQclear(r);
	return fflush(stdout) == 0 ? ADMIN_OK : ADMIN_FAILED;
}

int admin_token_revoke(const struct conf *c, int argc, char **argv)
{
	const char *id = NULL, *email = NULL, *label = NULL, *org = NULL;
	bool bad = false, ok = false;
	PGconn *conn;
	PGresult *r = NULL;
	int n;

	for (int i = 0; i < argc && !bad; i++) {
		if (argv[i][0] != '-' && id == NULL) {
			id = argv[i];
		} else if (!admin_take_value(argc, argv, &i, "--email", &email, &bad, "token revoke") &&
			   !admin_take_value(argc, argv, &i, "--label", &label, &bad, "token revoke") &&
			   !admin_take_value(argc, argv, &i, "--org", &org, &bad, "token revoke")) {
			fprintf(stderr, "token revoke: unknown argument \"%s\"\n", argv[i]);
			bad = true;
		}
	}
	if (!bad && id != NULL && (email || label || org)) {
		fputs("token revoke: give a token ID, or --email/--label, not both\n", stderr);
		bad = true;
	} else if (!bad && id == NULL && email == NULL && label == NULL) {
		fputs("token revoke: which token? give its ID (see scanqa token list), --email or --label\n",
		      stderr);
		bad = true;
	} else if (!bad && id != NULL && !admin_is_uuid(id)) {
		fprintf(stderr, "token revoke: \"%s\" is not a token id (a UUID, see scanqa token list)\n", id);
		bad = true;
	}
	if (bad) {
		fputs("usage: scanqa token revoke (ID | --email E [--label L] | --label L [--org NAME])\n",
		      stderr);
		return ADMIN_USAGE;
	}
	if ((conn = admin_connect(c, "token")) == NULL)
		return ADMIN_FAILED;
	if (!admin_exec(conn, "token revoke", "BEGIN"))
		goto out;

	const char *p[4] = { id, email, label, org };

	r = admin_query(conn, "token revoke", "revoking",
			"UPDATE api_tokens t SET revoked_at = now()"
			"  FROM users u JOIN organizations o ON o.id = u.org_id"
			" WHERE u.id = t.user_id AND t.revoked_at IS NULL"
			"   AND ($1::uuid IS NULL OR t.id = $1::uuid)"
			"   AND ($2::text IS NULL OR lower(u.email) = lower($2))"
			"   AND ($3::text IS NULL OR t.label = $3)"
			"   AND ($4::text IS NULL OR o.name = $4)"
			" RETURNING t.id, u.org_id, u.email, t.label,"
			"   jsonb_build_object('user', u.email, 'label', t.label,"
			"                      'revoked_at', " ISO("t.revoked_at") ")::text",
			4, p);
	if (r == NULL)
		goto out;
	if ((n = PQntuples(r)) == 0) {
		log_error("token revoke: no unrevoked token matches (see scanqa token list --all)");
		goto out;
	}
	for (int i = 0; i < n; i++)
		if (!admin_audit(conn, "token revoke", PQgetvalue(r, i, 1), "api_token",
				 PQgetvalue(r, i, 0), "token_revoke", "{\"revoked_at\": null}",
				 PQgetvalue(r, i, 4), "API token revoked"))
			goto out;
	if (!admin_commit(conn, "token revoke"))
		goto out;
	for (int i = 0; i < n; i++)
		fprintf(stderr, "revoked token %s of %s%s%s%s\n", PQgetvalue(r, i, 0),
			PQgetvalue(r, i, 2), PQgetisnull(r, i, 3) ? "" : " (label \"",
			PQgetisnull(r, i, 3) ? "" : PQgetvalue(r, i, 3), PQgetisnull(r, i, 3) ? "" : "\")");
	fprintf(stderr, "%d token(s) revoked; the daemon refuses them from the next request on.\n", n);
	ok = true;
out:
	PQclear(r);
	PQfinish(conn);
	return ok ? ADMIN_OK : ADMIN_FAILED;
}
