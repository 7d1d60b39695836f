/* admin.c: the schema owner's connection, arguments, checked queries, organization
 * look-up and audit rows that every operator command shares (see admin.h). */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"
#include "log.h"

/* ---- dispatch -------------------------------------------------------------------- */

#define ADMIN_USAGE_TEXT \
	"usage: scanqa [-c FILE] token list [--org NAME] [--email E] [--all] [--json]\n" \
	"       scanqa [-c FILE] token revoke (ID | --email E [--label L] | --label L [--org NAME])\n" \
	"       scanqa [-c FILE] user add --email E --org NAME --role ROLE [--name DISPLAY] [--create-org]\n" \
	"       scanqa [-c FILE] user deactivate|activate --email E\n" \
	"       scanqa [-c FILE] user set-role --email E --role ROLE\n" \
	"       scanqa [-c FILE] user list [--org NAME] [--json]\n" \
	"       scanqa [-c FILE] import lps|inspections FILE --org NAME [--dry-run]\n" \
	"       scanqa [-c FILE] export inspections|audit --org NAME --since WHEN [--until WHEN]\n" \
	"                        [--format csv|jsonl] [--output FILE]\n" \
	"  ROLE is one of " ADMIN_ROLES "; \"man 8 scanqa\" explains every option.\n"

static int usage_of(const char *cmd, const char *verbs)
{
	fprintf(stderr, "usage: scanqa %s %s ... (see scanqa(8))\n", cmd, verbs);
	return ADMIN_USAGE;
}

bool admin_dispatch(const struct conf *c, const char *cmd, int argc, char **argv, int *rc)
{
	const char *verb = argc > 0 ? argv[0] : "";

	if (strcmp(cmd, "token") != 0 && strcmp(cmd, "user") != 0 &&
	    strcmp(cmd, "import") != 0 && strcmp(cmd, "export") != 0)
		return false;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(ADMIN_USAGE_TEXT, stdout);
			*rc = ADMIN_OK;
			return true;
		}
	}
	if (strcmp(cmd, "token") == 0) {
		if (strcmp(verb, "list") == 0)
			*rc = admin_token_list(c, argc - 1, argv + 1);
		else if (strcmp(verb, "revoke") == 0)
			*rc = admin_token_revoke(c, argc - 1, argv + 1);
		else
			*rc = usage_of(cmd, "list|revoke");
	} else if (strcmp(cmd, "user") == 0) {
		if (strcmp(verb, "add") == 0 || strcmp(verb, "deactivate") == 0 ||
		    strcmp(verb, "activate") == 0 || strcmp(verb, "set-role") == 0 ||
		    strcmp(verb, "list") == 0)
			*rc = admin_user(c, verb, argc - 1, argv + 1);
		else
			*rc = usage_of(cmd, "add|deactivate|activate|set-role|list");
	} else if (strcmp(cmd, "import") == 0) {
		if (strcmp(verb, "lps") == 0 || strcmp(verb, "inspections") == 0)
			*rc = admin_import(c, verb, argc - 1, argv + 1);
		else
			*rc = usage_of(cmd, "lps|inspections");
	} else if (strcmp(cmd, "export") == 0) {
		if (strcmp(verb, "inspections") == 0 || strcmp(verb, "audit") == 0)
			*rc = admin_export(c, verb, argc - 1, argv + 1);
		else
			*rc = usage_of(cmd, "inspections|audit");
	}
	return true;
}

/* ---- connection ------------------------------------------------------------------- */

/* libpq notices (WARNING and above, see client_min_messages) go to the log as one
 * line each instead of raw to stderr. */
static void notice_to_log(void *arg, const char *message)
{
	size_t len = strlen(message);

	(void)arg;
	while (len > 0 && message[len - 1] == '\n')
		len--;
	log_warn("postgres: %.*s", (int)len, message);
}

PGconn *admin_connect(const struct conf *c, const char *name)
{
	const char *conninfo = c->admin_conninfo;
	char timeout[16];
	char appname[64];
	PGconn *conn;

	if (conninfo == NULL || conninfo[0] == '\0') {
		log_warn("admin_conninfo is not set; %s connects with conninfo", name);
		conninfo = c->conninfo ? c->conninfo : "";
	}
	snprintf(timeout, sizeof timeout, "%d", c->connect_timeout_s > 0 ? c->connect_timeout_s : 10);
	snprintf(appname, sizeof appname, "scanqa-%s", name);
	{
		/* Entries before "dbname" are defaults the conninfo string may override;
		 * client_encoding and options come after it, so they always hold. */
		const char *keys[] = { "connect_timeout", "application_name", "dbname",
				       "client_encoding", "options", NULL };
		const char *vals[] = { timeout, appname, conninfo,
				       "UTF8", "-c TimeZone=UTC -c client_min_messages=warning", NULL };

		conn = PQconnectdbParams(keys, vals, 1);
	}
	if (conn == NULL) {
		log_error("%s: out of memory connecting to PostgreSQL", name);
		return NULL;
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		log_error("%s: cannot connect to PostgreSQL: %s", name, PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	PQsetNoticeProcessor(conn, notice_to_log, NULL);
	return conn;
}

/* ---- arguments -------------------------------------------------------------------- */

bool admin_take_value(int argc, char **argv, int *i, const char *name, const char **value,
		      bool *bad, const char *cmd)
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
		fprintf(stderr, "%s: %s needs a value\n", cmd, name);
		*bad = true;
		return true;
	}
	*value = argv[++*i];
	return true;
}

bool admin_valid_role(const char *role)
{
	static const char *const roles[] = {
		"qa_inspector", "qa_manager", "admin", "owner", "viewer", "operator", NULL
	};

	for (const char *const *r = roles; *r != NULL; r++)
		if (strcmp(*r, role) == 0)
			return true;
	return false;
}

bool admin_is_uuid(const char *s)
{
	for (int i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? s[i] != '-' : !strchr("0123456789abcdefABCDEF", s[i]) || s[i] == '\0')
			return false;
	}
	return s[36] == '\0';
}

/* ---- queries ------------------------------------------------------------------------ */

PGresult *admin_query(PGconn *conn, const char *cmd, const char *what, const char *sql,
		      int n, const char *const *params)
{
	PGresult *r = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return r;
	log_error("%s: %s failed: %s", cmd, what,
		  r ? PQresultErrorMessage(r) : PQerrorMessage(conn));
	PQclear(r);
	return NULL;
}

bool admin_exec(PGconn *conn, const char *cmd, const char *sql)
{
	PGresult *r = admin_query(conn, cmd, sql, sql, 0, NULL);

	PQclear(r);
	return r != NULL;
}

bool admin_commit(PGconn *conn, const char *cmd)
{
	PGresult *r = PQexec(conn, "COMMIT");
	bool ok = PQresultStatus(r) == PGRES_COMMAND_OK && strcmp(PQcmdStatus(r), "COMMIT") == 0;

	if (!ok)
		log_error("%s: COMMIT failed, nothing was changed: %s", cmd, PQerrorMessage(conn));
	PQclear(r);
	return ok;
}

bool admin_find_org(PGconn *conn, const char *cmd, const char *name, bool create,
		    char org_id[64], bool *created)
{
	const char *p[1] = { name };
	PGresult *r = admin_query(conn, cmd, "looking up the organization",
				  "SELECT id FROM organizations WHERE name = $1 ORDER BY created_at LIMIT 2",
				  1, p);

	if (created)
		*created = false;
	if (r == NULL)
		return false;
	if (PQntuples(r) > 1) {
		log_error("%s: more than one organization is named \"%s\"", cmd, name);
		PQclear(r);
		return false;
	}
	if (PQntuples(r) == 0) {
		PQclear(r);
		if (!create) {
			log_error("%s: no organization is named \"%s\"", cmd, name);
			return false;
		}
		r = admin_query(conn, cmd, "creating the organization",
				"INSERT INTO organizations (name) VALUES ($1) RETURNING id", 1, p);
		if (r == NULL)
			return false;
		if (created)
			*created = true;
	}
	snprintf(org_id, 64, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return true;
}

bool admin_set_org(PGconn *conn, const char *cmd, const char *org_id)
{
	const char *p[1] = { org_id };
	PGresult *r = admin_query(conn, cmd, "setting the organization",
				  "SELECT set_config('scanqa.org_id', $1, true)", 1, p);

	PQclear(r);
	return r != NULL;
}

const char *admin_os_user(void)
{
	static char name[64];
	struct passwd *pw;

	if (name[0] != '\0')
		return name;
	pw = getpwuid(getuid());
	if (pw != NULL && pw->pw_name != NULL)
		snprintf(name, sizeof name, "%s", pw->pw_name);
	else
		snprintf(name, sizeof name, "uid %u", (unsigned)getuid());
	return name;
}

bool admin_audit(PGconn *conn, const char *cmd, const char *org_id, const char *entity_type,
		 const char *entity_id, const char *action, const char *old_json,
		 const char *new_json, const char *reason)
{
	const char *sudo_user = getenv("SUDO_USER");
	char command[128];
	const char *p[10];
	PGresult *r;

	snprintf(command, sizeof command, "scanqa %s", cmd);
	p[0] = org_id;
	p[1] = entity_type;
	p[2] = entity_id;
	p[3] = action;
	p[4] = old_json;
	p[5] = new_json;
	p[6] = reason;
	p[7] = admin_os_user();
	p[8] = sudo_user && sudo_user[0] ? sudo_user : NULL;
	p[9] = command;
	if (!admin_set_org(conn, cmd, org_id))
		return false;
	r = admin_query(conn, cmd, "writing the audit log",
			"INSERT INTO quality_audit_log"
			"   (org_id, entity_type, entity_id, action, user_id, old_value, new_value,"
			"    change_reason, metadata)"
			" VALUES ($1::uuid, $2, $3, $4, NULL, $5::jsonb, $6::jsonb, $7,"
			"         jsonb_strip_nulls(jsonb_build_object('os_user', $8::text,"
			"                           'sudo_user', $9::text, 'command', $10::text)))",
			10, p);
	PQclear(r);
	return r != NULL;
}

/* ---- output ------------------------------------------------------------------------- */

/* Display width of UTF-8 text, counting each code point as one column. */
static int text_width(const char *s)
{
	int w = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			w++;
	return w;
}

void admin_print_table(FILE *out, const PGresult *r)
{
	int nf = PQnfields(r), nt = PQntuples(r);
	int width[32];

	if (nf > 32)
		nf = 32;
	for (int f = 0; f < nf; f++) {
		width[f] = text_width(PQfname(r, f));
		for (int t = 0; t < nt; t++) {
			int w = PQgetisnull(r, t, f) ? 1 : text_width(PQgetvalue(r, t, f));

			if (w > width[f])
				width[f] = w;
		}
	}
	for (int t = -1; t < nt; t++) {
		for (int f = 0; f < nf; f++) {
			const char *v = t < 0 ? PQfname(r, f)
				      : PQgetisnull(r, t, f) ? "-" : PQgetvalue(r, t, f);

			if (f == nf - 1)
				fprintf(out, "%s\n", v);
			else
				fprintf(out, "%s%*s  ", v, width[f] - text_width(v), "");
		}
	}
}
