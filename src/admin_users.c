/* admin_users.c: "scanqa user add|deactivate|activate|set-role|list".
 *
 *   user add --email E --org NAME --role ROLE [--name DISPLAY] [--create-org]
 *   user deactivate --email E      every token of E stops working at once: the
 *                                  daemon answers 401 "User not found"
 *   user activate --email E        undoes deactivate
 *   user set-role --email E --role ROLE
 *   user list [--org NAME] [--json]
 *
 * E may also be given as the one positional argument. Emails match regardless of
 * case. Users are deactivated, never deleted: inspections keep naming who did them.
 * Each change runs in one transaction with its quality_audit_log row (admin_audit).
 * Exit status: 0 done, 1 failed (nothing changed), 2 bad arguments.
 */
#include <stdio.h>
#include <string.h>

#include "admin.h"
#include "log.h"

struct user_args {
	const char *email;
	const char *org;
	const char *role;
	const char *name;
	bool create_org;
	bool json;
};

static int usage(void)
{
	fprintf(stderr,
		"usage: scanqa user add --email E --org NAME --role ROLE [--name DISPLAY] [--create-org]\n"
		"       scanqa user deactivate|activate --email E\n"
		"       scanqa user set-role --email E --role ROLE\n"
		"       scanqa user list [--org NAME] [--json]\n"
		"  ROLE is one of " ADMIN_ROLES ".\n");
	return ADMIN_USAGE;
}

/* Fills a from argv and checks what verb needs; false after saying why on stderr. */
static bool parse_args(const char *verb, int argc, char **argv, struct user_args *a)
{
	bool bad = false;
	bool is_add = strcmp(verb, "add") == 0, is_list = strcmp(verb, "list") == 0;

	memset(a, 0, sizeof *a);
	for (int i = 0; i < argc && !bad; i++) {
		if (strcmp(argv[i], "--create-org") == 0 && is_add) {
			a->create_org = true;
		} else if (strcmp(argv[i], "--json") == 0 && is_list) {
			a->json = true;
		} else if (argv[i][0] != '-' && a->email == NULL && !is_list) {
			a->email = argv[i];
		} else if (!admin_take_value(argc, argv, &i, "--email", &a->email, &bad, "user") &&
			   !admin_take_value(argc, argv, &i, "--org", &a->org, &bad, "user") &&
			   !admin_take_value(argc, argv, &i, "--role", &a->role, &bad, "user") &&
			   !admin_take_value(argc, argv, &i, "--name", &a->name, &bad, "user")) {
			fprintf(stderr, "user %s: unknown argument \"%s\"\n", verb, argv[i]);
			bad = true;
		}
	}
	if (bad)
		return false;
	if (is_list) {
		if (a->email || a->role || a->name) {
			fputs("user list: only --org and --json go with list\n", stderr);
			return false;
		}
		return true;
	}
	if (a->email == NULL || strchr(a->email, '@') == NULL) {
		fprintf(stderr, "user %s: --email EMAIL (an email address) is required\n", verb);
		return false;
	}
	if (is_add && (a->org == NULL || a->org[0] == '\0' || a->role == NULL)) {
		fputs("user add: --org NAME and --role ROLE are required\n", stderr);
		return false;
	}
	if (strcmp(verb, "set-role") == 0 && a->role == NULL) {
		fputs("user set-role: --role ROLE is required\n", stderr);
		return false;
	}
	if (a->role != NULL && !admin_valid_role(a->role)) {
		fprintf(stderr, "user %s: unknown role \"%s\" (one of " ADMIN_ROLES ")\n", verb, a->role);
		return false;
	}
	if (!is_add && (a->org || a->name || (a->role && strcmp(verb, "set-role") != 0))) {
		fprintf(stderr, "user %s: takes --email%s only\n", verb,
			strcmp(verb, "set-role") == 0 ? " and --role" : "");
		return false;
	}
	if (a->name != NULL && a->name[0] == '\0') {
		fputs("user add: --name must not be empty\n", stderr);
		return false;
	}
	return true;
}

bool admin_user_create(PGconn *conn, const char *cmd, const char *email, const char *org_id,
		       const char *name, const char *role, char user_id[64])
{
	const char *p[4] = { email, org_id, name, role };
	PGresult *r = admin_query(conn, cmd, "looking up the email",
				  "SELECT 1 FROM users WHERE lower(email) = lower($1)", 1, p);
	bool ok;

	if (r == NULL)
		return false;
	if (PQntuples(r) > 0) {
		log_error("%s: a user with email %s exists already", cmd, email);
		PQclear(r);
		return false;
	}
	PQclear(r);
	r = admin_query(conn, cmd, "creating the user",
			"INSERT INTO users (email, org_id, display_name, role)"
			" VALUES ($1, $2::uuid, $3, $4)"
			" RETURNING id, jsonb_build_object('email', email, 'display_name', display_name,"
			"                                  'role', role, 'active', active)::text",
			4, p);
	if (r == NULL)
		return false;
	snprintf(user_id, 64, "%s", PQgetvalue(r, 0, 0));
	ok = admin_audit(conn, cmd, org_id, "user", user_id, "user_add", NULL,
			 PQgetvalue(r, 0, 1), "User added");
	PQclear(r);
	return ok;
}

/* ---- the verbs --------------------------------------------------------------------- */

static bool add(PGconn *conn, const struct user_args *a)
{
	char org_id[64], user_id[64];
	bool org_created;

	if (!admin_find_org(conn, "user add", a->org, a->create_org, org_id, &org_created))
		return false;
	if (!admin_user_create(conn, "user add", a->email, org_id, a->name ? a->name : a->email,
			       a->role, user_id))
		return false;
	fprintf(stderr, "added user %s (%s) to organization \"%s\"%s with role %s; give them a "
		"token with: scanqa issue-token --email %s\n", a->email, user_id, a->org,
		org_created ? " (new)" : "", a->role, a->email);
	return true;
}

/* deactivate, activate and set-role: one UPDATE of the user's row, locked first so
 * the audit row's old value is the one replaced. */
static bool change(PGconn *conn, const char *verb, const struct user_args *a)
{
	char cmd[32];
	const char *p[2] = { a->email, a->role };
	const char *set, *action, *reason;
	PGresult *r;
	bool ok;

	snprintf(cmd, sizeof cmd, "user %s", verb);
	if (strcmp(verb, "deactivate") == 0) {
		set = "active = false";
		action = "user_deactivate";
		reason = "User deactivated: every token stops working";
	} else if (strcmp(verb, "activate") == 0) {
		set = "active = true";
		action = "user_activate";
		reason = "User reactivated";
	} else {
		set = "role = $2";
		action = "user_set_role";
		reason = "User role changed";
	}
	r = admin_query(conn, cmd, "looking up the user",
			"SELECT id, org_id, jsonb_build_object('role', role, 'active', active)::text"
			"  FROM users WHERE lower(email) = lower($1) FOR UPDATE",
			1, p);
	if (r == NULL)
		return false;
	if (PQntuples(r) == 0) {
		log_error("%s: no user with email %s", cmd, a->email);
		PQclear(r);
		return false;
	}

	char user_id[64], org_id[64], old_json[256], sql[512];

	snprintf(user_id, sizeof user_id, "%s", PQgetvalue(r, 0, 0));
	snprintf(org_id, sizeof org_id, "%s", PQgetvalue(r, 0, 1));
	snprintf(old_json, sizeof old_json, "%s", PQgetvalue(r, 0, 2));
	PQclear(r);

	const char *q[2] = { user_id, a->role };

	snprintf(sql, sizeof sql,
		 "UPDATE users SET %s WHERE id = $1::uuid"
		 " RETURNING jsonb_build_object('role', role, 'active', active)::text,"
		 " (SELECT count(*) FROM api_tokens t WHERE t.user_id = users.id"
		 "   AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now()))",
		 set);
	r = admin_query(conn, cmd, "updating the user", sql, a->role && strcmp(verb, "set-role") == 0 ? 2 : 1, q);
	if (r == NULL)
		return false;
	if (strcmp(old_json, PQgetvalue(r, 0, 0)) == 0) {
		fprintf(stderr, "user %s: nothing to change (%s)\n", a->email, old_json);
		PQclear(r);
		return true;
	}
	ok = admin_audit(conn, cmd, org_id, "user", user_id, action, old_json, PQgetvalue(r, 0, 0),
			 reason);
	if (ok)
		fprintf(stderr, "user %s: %s -> %s (%s unrevoked token(s))\n", a->email, old_json,
			PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
	PQclear(r);
	return ok;
}

static bool list(PGconn *conn, const struct user_args *a)
{
	const char *p[1] = { a->org };
	char org_id[64];
	PGresult *r;

	if (a->org != NULL && !admin_find_org(conn, "user list", a->org, false, org_id, NULL))
		return false;
	r = admin_query(conn, "user list", "listing the users",
			a->json ?
			"SELECT coalesce(jsonb_pretty(jsonb_agg(u ORDER BY organization, email)), '[]')"
			"  FROM (SELECT u.id, u.email, u.display_name, o.name AS organization, u.role,"
			"               u.active, to_char(u.created_at AT TIME ZONE 'UTC',"
			"                 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS created_at"
			"          FROM users u JOIN organizations o ON o.id = u.org_id"
			"         WHERE $1::text IS NULL OR o.name = $1) u"
			:
			"SELECT u.email, u.display_name AS name, o.name AS organization, u.role,"
			"       CASE WHEN u.active THEN 'active' ELSE 'deactivated' END AS status,"
			"       to_char(u.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS created,"
			"       u.id"
			"  FROM users u JOIN organizations o ON o.id = u.org_id"
			" WHERE $1::text IS NULL OR o.name = $1"
			" ORDER BY o.name, u.email",
			1, p);
	if (r == NULL)
		return false;
	if (a->json)
		printf("%s\n", PQgetvalue(r, 0, 0));
	else
		admin_print_table(stdout, r);
	PQclear(r);
	return fflush(stdout) == 0;
}

int admin_user(const struct conf *c, const char *verb, int argc, char **argv)
{
	struct user_args a;
	PGconn *conn;
	bool ok;

	if (!parse_args(verb, argc, argv, &a))
		return usage();
	if ((conn = admin_connect(c, "user")) == NULL)
		return ADMIN_FAILED;
	if (strcmp(verb, "list") == 0)
		ok = list(conn, &a);
	else
		ok = admin_exec(conn, "user", "BEGIN") &&
		     (strcmp(verb, "add") == 0 ? add(conn, &a) : change(conn, verb, &a)) &&
		     admin_commit(conn, "user");
	PQfinish(conn); /* rolls back what a failure left open */
	return ok ? ADMIN_OK : ADMIN_FAILED;
}
