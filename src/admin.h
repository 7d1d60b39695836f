/* admin.h: what the operator's commands (migrate, issue-token, token, user, import,
 * export) share: the schema owner's connection, "--name VALUE" arguments, checked
 * queries and transactions, organization look-up, and the audit row every change
 * writes. Each command's own work lives in its file (admin_tokens.c, admin_users.c,
 * import.c, export.c, token.c, migrate.c). */
#ifndef SCANQA_ADMIN_H
#define SCANQA_ADMIN_H

#include <stdbool.h>
#include <stdio.h>

#include <libpq-fe.h>

#include "conf.h"

/* The roles a user may have (the users.role check of sql/001_core.sql). */
#define ADMIN_ROLES "qa_inspector, qa_manager, admin, owner, viewer, operator"

/* Exit codes of every admin command. */
enum { ADMIN_OK = 0, ADMIN_FAILED = 1, ADMIN_USAGE = 2 };

/* Runs "token", "user", "import" and "export" (cmd is argv's command word, argv the
 * arguments after it). Returns false when cmd is none of them; otherwise true with
 * the exit code in *rc. */
bool admin_dispatch(const struct conf *c, const char *cmd, int argc, char **argv, int *rc);

/* Connects with admin_conninfo (conninfo when unset, after a warning), application
 * name "scanqa-NAME", client_encoding UTF8 and TimeZone UTC; libpq notices go to the
 * log. Returns NULL after logging why. The caller PQfinish()es it. */
PGconn *admin_connect(const struct conf *c, const char *name);

/* Matches argv[*i] against "--name VALUE" or "--name=VALUE". On a match stores the
 * value, advances *i past it and returns true; a missing value sets *bad and says so
 * on stderr, prefixed with cmd. */
bool admin_take_value(int argc, char **argv, int *i, const char *name, const char **value,
		      bool *bad, const char *cmd);

/* True for a canonical 8-4-4-4-12 hexadecimal UUID. */
bool admin_is_uuid(const char *s);

/* Runs a parameterised statement (text parameters, text results); returns its
 * result, or NULL after logging "CMD: WHAT failed: message". */
PGresult *admin_query(PGconn *conn, const char *cmd, const char *what, const char *sql,
		      int n, const char *const *params);
/* Runs a parameterless statement; false after logging. */
bool admin_exec(PGconn *conn, const char *cmd, const char *sql);
/* COMMIT, and false unless it really committed (a failed transaction answers ROLLBACK). */
bool admin_commit(PGconn *conn, const char *cmd);

/* Finds the organization named name (out: its id). With create, makes it when none
 * has that name and sets *created. Returns false after logging when there is none
 * (and !create), or when two share the name. */
bool admin_find_org(PGconn *conn, const char *cmd, const char *name, bool create,
		    char org_id[64], bool *created);

/* Points row level security at org_id for the rest of the transaction
 * (set_config('scanqa.org_id', org, true), as the daemon does). */
bool admin_set_org(PGconn *conn, const char *cmd, const char *org_id);

/* Appends one quality_audit_log row in the open transaction: organization, entity
 * (type and id), action, old and new value (JSON text or NULL) and a reason; its
 * metadata names the OS user who ran the command (and SUDO_USER when set) and the
 * command. The connection's scanqa.org_id is set to org_id for the transaction. */
bool admin_audit(PGconn *conn, const char *cmd, const char *org_id, const char *entity_type,
		 const char *entity_id, const char *action, const char *old_json,
		 const char *new_json, const char *reason);

/* The OS user running this process (login name of the real uid, or "uid N"). */
const char *admin_os_user(void);

/* Prints a result as an aligned text table with a header row; NULLs print as "-". */
void admin_print_table(FILE *out, const PGresult *r);

/* True when role is one of ADMIN_ROLES. */
bool admin_valid_role(const char *role);

/* Inserts an active user (email, organization id, display name, role) and its
 * audit row in the open transaction; out: the new id. False after logging, also
 * when the email is taken (case-insensitively). In admin_users.c. */
bool admin_user_create(PGconn *conn, const char *cmd, const char *email, const char *org_id,
		       const char *name, const char *role, char user_id[64]);

/* ---- the commands: argv holds the arguments after the command's words; each
 * returns an exit code (ADMIN_OK, ADMIN_FAILED, ADMIN_USAGE) ---- */
int admin_token_list(const struct conf *c, int argc, char **argv);   /* admin_tokens.c */
int admin_token_revoke(const struct conf *c, int argc, char **argv);
int admin_user(const struct conf *c, const char *verb, int argc, char **argv); /* admin_users.c */
int admin_import(const struct conf *c, const char *kind, int argc, char **argv); /* import.c */
int admin_export(const struct conf *c, const char *kind, int argc, char **argv); /* export.c */

#endif
