/* migrate.c: "scanqa migrate": applies migrations_dir/NNN_*.sql in name order,
 * each once and in its own transaction, recorded in public.scanqa_migrations. */
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "admin.h"
#include "conf.h"
#include "log.h"
#include "migrate.h"

/* Serialises concurrent "scanqa migrate" runs against one database: the bytes
 * of "scanqa" followed by 1 (0x7363616e716101) as a pg_advisory_lock key, in
 * decimal because PostgreSQL 15 has no hexadecimal integer literals. */
#define MIGRATE_LOCK_KEY "32478892437627137"
/* A migration larger than this is surely not a hand-written SQL file. */
#define MIGRATE_MAX_FILE (16L * 1024 * 1024)

/* ---- PostgreSQL helpers ------------------------------------------------------ */

/* Runs one parameterless command and checks that it succeeded. */
static bool exec_ok(PGconn *conn, const char *sql)
{
	PGresult *r = PQexec(conn, sql);
	ExecStatusType st = PQresultStatus(r);
	bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;

	if (!ok)
		log_error("migrate: %s: %s", sql, r ? PQresultErrorMessage(r) : PQerrorMessage(conn));
	PQclear(r);
	return ok;
}

/* The 1-based line of the file that holds character number pos (1-based, counted
 * in characters as PostgreSQL reports it; the file is taken to be UTF-8). */
static int line_of_position(const char *sql, long pos)
{
	int line = 1;
	long chars = 0;

	for (const unsigned char *p = (const unsigned char *)sql; *p != '\0'; p++) {
		if ((*p & 0xC0) == 0x80)
			continue; /* UTF-8 continuation byte */
		if (++chars >= pos)
			break;
		if (*p == '\n')
			line++;
	}
	return line;
}

/* Logs a failed migration as one line: file (and line when PostgreSQL names a
 * position), SQLSTATE, message, and detail, hint and context when present. */
static void log_pg_failure(const char *file, const char *sql, const PGresult *r, PGconn *conn)
{
	const char *primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *sqlstate = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *detail = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL) : NULL;
	const char *hint = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_HINT) : NULL;
	const char *context = r ? PQresultErrorField(r, PG_DIAG_CONTEXT) : NULL;
	const char *position = r ? PQresultErrorField(r, PG_DIAG_STATEMENT_POSITION) : NULL;
	char where[32] = "";
	char ctx[256] = "";

	if (primary == NULL) {
		const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(conn);
		size_t len = strlen(msg);

		while (len > 0 && msg[len - 1] == '\n')
			len--;
		log_error("migration %s failed: %.*s", file, (int)len, msg);
		return;
	}
	if (position != NULL && sql != NULL)
		snprintf(where, sizeof where, ":%d", line_of_position(sql, atol(position)));
	if (context != NULL) {
		/* The context spans lines; keep it on the log line. */
		snprintf(ctx, sizeof ctx, "%s", context);
		for (char *p = ctx; *p != '\0'; p++)
			if (*p == '\n')
				*p = ' ';
	}
	log_error("migration %s%s failed: ERROR %s: %s%s%s%s%s%s%s", file, where,
		  sqlstate ? sqlstate : "?????", primary,
		  detail ? "; detail: " : "", detail ? detail : "",
		  hint ? "; hint: " : "", hint ? hint : "",
		  ctx[0] ? "; context: " : "", ctx);
}

/* ---- migration files --------------------------------------------------------- */

struct file_list {
	char **names;
	size_t n;
};

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void file_list_free(struct file_list *fl)
{
	for (size_t i = 0; i < fl->n; i++)
		free(fl->names[i]);
	free(fl->names);
	fl->names = NULL;
	fl->n = 0;
}

/* Lists the files of dir named NNN_*.sql, sorted by name. */
static bool list_migrations(const char *dir, struct file_list *out)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t cap = 0;

	out->names = NULL;
	out->n = 0;
	if (d == NULL) {
		log_error("migrate: cannot open migrations_dir %s: %s", dir, strerror(errno));
		return false;
	}
	while ((errno = 0, de = readdir(d)) != NULL) {
		if (fnmatch("[0-9][0-9][0-9]_*.sql", de->d_name, FNM_PERIOD) != 0)
			continue;
		if (out->n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			char **grown = realloc(out->names, ncap * sizeof *grown);

			if (grown == NULL)
				goto nomem;
			out->names = grown;
			cap = ncap;
		}
		if ((out->names[out->n] = strdup(de->d_name)) == NULL)
			goto nomem;
		out->n++;
	}
	if (errno != 0) {
		log_error("migrate: cannot read migrations_dir %s: %s", dir, strerror(errno));
		goto fail;
	}
	closedir(d);
	if (out->n > 0)
		qsort(out->names, out->n, sizeof *out->names, cmp_names);
	return true;
nomem:
	log_error("migrate: out of memory listing %s", dir);
fail:
	closedir(d);
	file_list_free(out);
	return false;
}

/* Reads a whole file into a NUL-terminated string the caller frees. */
static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long size;

	if (f == NULL) {
		log_error("migrate: cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
		log_error("migrate: cannot read %s: %s", path, strerror(errno));
		goto out;
	}
	if (size > MIGRATE_MAX_FILE) {
		log_error("migrate: %s is larger than %ld bytes", path, MIGRATE_MAX_FILE);
		goto out;
	}
	if ((buf = malloc((size_t)size + 1)) == NULL) {
		log_error("migrate: out of memory reading %s", path);
		goto out;
	}
	if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
		log_error("migrate: cannot read %s", path);
		goto drop;
	}
	buf[size] = '\0';
	if (strlen(buf) != (size_t)size) {
		log_error("migrate: %s contains a NUL byte", path);
		goto drop;
	}
	goto out;
drop:
	free(buf);
	buf = NULL;
out:
	fclose(f);
	return buf;
}

/* The version recorded for a file: its name without ".sql" ("001_core"). */
static void version_of(const char *file, char *out, size_t outlen)
{
	size_t len = strlen(file) - strlen(".sql");

	snprintf(out, outlen, "%.*s", (int)len, file);
}

static bool is_applied(const PGresult *applied, const char *version)
{
	for (int i = 0; i < PQntuples(applied); i++)
		if (strcmp(PQgetvalue(applied, i, 0), version) == 0)
			return true;
	return false;
}

static long elapsed_ms(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1000L + (t1.tv_nsec - t0->tv_nsec) / 1000000L;
}

/* Applies one file in its own transaction and records it. A file must not
 * contain BEGIN or COMMIT: it would escape the transaction, so that is refused. */
static bool apply_one(PGconn *conn, const char *dir, const char *file, const char *version)
{
	char path[4096];
	char *sql = NULL;
	PGresult *r = NULL;
	const char *params[1] = { version };
	struct timespec t0;
	bool ok = false;

	if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, file) >= sizeof path) {
		log_error("migrate: path too long: %s/%s", dir, file);
		return false;
	}
	if ((sql = read_file(path)) == NULL)
		return false;
	clock_gettime(CLOCK_MONOTONIC, &t0);

	if (!exec_ok(conn, "BEGIN"))
		goto out;
	r = PQexec(conn, sql);
	switch (PQresultStatus(r)) {
	case PGRES_COMMAND_OK:
	case PGRES_TUPLES_OK:
	case PGRES_EMPTY_QUERY:
		break;
	default:
		log_pg_failure(file, sql, r, conn);
		goto rollback;
	}
	PQclear(r);
	r = NULL;
	if (PQtransactionStatus(conn) != PQTRANS_INTRANS) {
		log_error("migration %s failed: it ended the transaction itself, so some of "
			  "it may be committed though it is not recorded as applied (remove its "
			  "BEGIN/COMMIT: each file already runs in one transaction)", file);
		goto rollback;
	}

	r = PQexecParams(conn, "INSERT INTO public.scanqa_migrations (version) VALUES ($1)",
			 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		log_pg_failure(file, NULL, r, conn);
		goto rollback;
	}
	PQclear(r);

	/* A COMMIT of a transaction that failed answers "ROLLBACK", not an error. */
	r = PQexec(conn, "COMMIT");
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		log_pg_failure(file, NULL, r, conn);
		goto out;
	}
	if (strcmp(PQcmdStatus(r), "COMMIT") != 0) {
		log_error("migration %s failed: its transaction was rolled back at COMMIT", file);
		goto out;
	}
	log_info("applied migration %s (%ld ms)", file, elapsed_ms(&t0));
	ok = true;
	goto out;

rollback:
	PQclear(r);
	r = NULL;
	if (PQtransactionStatus(conn) != PQTRANS_IDLE)
		exec_ok(conn, "ROLLBACK");
out:
	PQclear(r);
	free(sql);
	return ok;
}

/* ---- role settings ------------------------------------------------------------ */

/* The ALTER ROLE statements that make the config's timeouts the daemon role's
 * defaults in the current database (who: a quoted role name, or CURRENT_USER).
 * Behind a transaction pooler the daemon sends no session SET (it would land on
 * one server connection and leak to other clients), so these are what bounds its
 * statements there; in session mode the daemon's own SET wins, and these still
 * bound a session opened by hand as the daemon's role. The values match the SET
 * the daemon sends (db.c send_setup). Returns false with nothing changed. */
static bool set_role_timeouts(PGconn *conn, const struct conf *c, const char *who, bool quiet)
{
	char sql[1024];
	int idle = 2 * (c->statement_timeout_ms > 0 ? c->statement_timeout_ms : 30000);
	PGresult *r = PQexec(conn, "SELECT quote_ident(current_database())");
	bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;

	if (ok)
		snprintf(sql, sizeof sql,
			 "ALTER ROLE %s IN DATABASE %s SET statement_timeout = %d; "
			 "ALTER ROLE %s IN DATABASE %s SET lock_timeout = %d; "
			 "ALTER ROLE %s IN DATABASE %s SET idle_in_transaction_session_timeout = %d",
			 who, PQgetvalue(r, 0, 0), c->statement_timeout_ms, who, PQgetvalue(r, 0, 0),
			 c->lock_timeout_ms, who, PQgetvalue(r, 0, 0), idle);
	PQclear(r);
	if (!ok)
		return false;
	/* One simple-protocol query: its statements commit or fail together. */
	r = PQexec(conn, sql);
	ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok && !quiet)
		log_msg(c->transaction_pooling ? LL_WARN : LL_INFO,"migrate: %s: %s", sql, PQresultErrorMessage(r));
	PQclear(r);
	if (ok)
		log_info("migrate: role settings of %s in this database: statement_timeout = %d ms, "
			 "lock_timeout = %d ms, idle_in_transaction_session_timeout = %d ms",
			 who, c->statement_timeout_ms, c->lock_timeout_ms, idle);
	return ok;
}

/* Makes the timeouts role settings of the daemon's role (conninfo's user). First as
 * the schema owner, which may do it when it is a superuser or has CREATEROLE; else
 * as the daemon's role itself, since "ordinary roles can only set defaults for
 * themselves" (PostgreSQL 15, ALTER ROLE); else says what a DBA runs. Never fails
 * the migration: in session mode the daemon's SET bounds its statements anyway. */
static void apply_role_timeouts(PGconn *owner, const struct conf *c)
{
	PQconninfoOption *opts = PQconninfoParse(c->conninfo, NULL);
	char *role = NULL;
	for (PQconninfoOption *o = opts; o && o->keyword; o++)
		if (strcmp(o->keyword, "user") == 0 && o->val)
			role = PQescapeIdentifier(owner, o->val, strlen(o->val));
	PQconninfoFree(opts);
	if (role && set_role_timeouts(owner, c, role, true))
		goto out;

	char timeout[16];
	snprintf(timeout, sizeof timeout, "%d", c->connect_timeout_s);
	const char *keys[] = { "dbname", "connect_timeout", NULL }, *vals[] = { c->conninfo, timeout, NULL };
	PGconn *self = PQconnectdbParams(keys, vals, 1);
	if (PQstatus(self) == CONNECTION_OK && set_role_timeouts(self, c, "CURRENT_USER", false)) {
		PQfinish(self);
		goto out;
	}
	/* In session mode the daemon's own SET bounds its statements: no warning. */
	log_msg(c->transaction_pooling ? LL_WARN : LL_INFO,
		 "migrate: could not make the timeouts role settings of the daemon's role (%s); "
		 "behind a pooler in transaction mode its statements are then unbounded. As that "
		 "role itself (e.g. sudo -u scanqa_app psql) or a superuser run: ALTER ROLE %s IN "
		 "DATABASE <db> SET statement_timeout = %d (likewise lock_timeout = %d, "
		 "idle_in_transaction_session_timeout = %d)",
		 PQstatus(self) == CONNECTION_OK ? "see above" : PQerrorMessage(self),
		 role ? role : "<conninfo's user>", c->statement_timeout_ms, c->lock_timeout_ms,
		 2 * (c->statement_timeout_ms > 0 ? c->statement_timeout_ms : 30000));
	PQfinish(self);
out:
	PQfreemem(role);
}

/* ---- entry point ------------------------------------------------------------- */

int migrate_run(const struct conf *c)
{
	PGconn *conn = NULL;
	PGresult *applied = NULL;
	struct file_list files = { NULL, 0 };
	int n_applied = 0;
	int rc = 1;

	if (c->migrations_dir == NULL || c->migrations_dir[0] == '\0') {
		log_error("migrate: migrations_dir is not set in %s", c->path ? c->path : "the config");
		return 1;
	}
	if (!list_migrations(c->migrations_dir, &files))
		return 1;
	if ((conn = admin_connect(c, "migrate")) == NULL)
		goto out;
	/* Held until the connection closes; a second run waits here, then finds
	 * everything applied. */
	if (!exec_ok(conn, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")"))
		goto out;
	if (!exec_ok(conn, "CREATE TABLE IF NOT EXISTS public.scanqa_migrations ("
			   " version text PRIMARY KEY,"
			   " applied_at timestamptz NOT NULL DEFAULT now())"))
		goto out;

	applied = PQexec(conn, "SELECT version FROM public.scanqa_migrations");
	if (PQresultStatus(applied) != PGRES_TUPLES_OK) {
		log_error("migrate: cannot read scanqa_migrations: %s",
			  applied ? PQresultErrorMessage(applied) : PQerrorMessage(conn));
		goto out;
	}

	for (size_t i = 0; i < files.n; i++) {
		char version[256];

		version_of(files.names[i], version, sizeof version);
		if (is_applied(applied, version))
			continue;
		if (!apply_one(conn, c->migrations_dir, files.names[i], version)) {
			log_error("migrate: stopped at %s; %d migration(s) applied before it",
				  files.names[i], n_applied);
			goto out;
		}
		n_applied++;
	}
	apply_role_timeouts(conn, c);
	if (n_applied == 0)
		log_info("migrate: nothing to apply (%zu migration(s) in %s, all applied)",
			 files.n, c->migrations_dir);
	else
		log_info("migrate: %d migration(s) applied", n_applied);
	rc = 0;
out:
	PQclear(applied);
	if (conn != NULL)
		PQfinish(conn); /* also releases the advisory lock */
	file_list_free(&files);
	return rc;
}
