/* db.c: this worker's PostgreSQL connection. Connects lazily after fork, prepares each
 * statement once per connection, and tells "the database refused" (an error result)
 * apart from "the database is gone" (NULL: answer 503, reconnect later). */
#include "db.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "request.h"
#include "scoreboard.h"

static const struct conf *cfg;
static PGconn *conn;
static unsigned generation;      /* bumped on every successful connect */
static int64_t last_attempt_us;  /* monotonic time of the last failed connect attempt, 0 after a success */
static bool config_error;    /* the last connect failed for a reason retrying cannot fix */

#define RECONNECT_INTERVAL_US 1000000

void db_init(const struct conf *c)
{
	cfg = c;
}

bool db_config_error(void) { return config_error; }

/* The server answered and refused: a missing role or database, or failed
 * authentication. Refused-while-starting-up or too-many-clients are transient. */
static bool is_permanent_refusal(const char *msg)
{
	return strstr(msg, "FATAL") &&
	       (strstr(msg, "does not exist") || strstr(msg, "authentication failed") ||
		strstr(msg, "no pg_hba.conf entry") || strstr(msg, "not permitted to log in"));
}

void db_close(void)
{
	if (conn)
		PQfinish(conn);
	conn = NULL;
}

static bool connect_now(void)
{
	char timeout[16], appname[32];
	const char *keys[] = { "dbname", "connect_timeout", "application_name", NULL };
	const char *vals[] = { cfg->conninfo, timeout, appname, NULL };
	char setup[256];

	last_attempt_us = now_mono_us();
	db_close();
	snprintf(timeout, sizeof(timeout), "%d", cfg->connect_timeout_s);
	/* pg_stat_activity then tells which worker a session (a lock wait, a long
	 * query) belongs to, to match with the status page and the log's [pid]. */
	snprintf(appname, sizeof(appname), "scanqa worker %d", (int)getpid());
	conn = PQconnectdbParams(keys, vals, 1);
	if (!conn || PQstatus(conn) != CONNECTION_OK) {
		const char *msg = conn ? PQerrorMessage(conn) : "out of memory";
		char one_line[512];
		snprintf(one_line, sizeof(one_line), "%s", msg);
		config_error = is_permanent_refusal(one_line);
		log_warn("database connection failed: %s", one_line);
		db_close();
		return false;
	}
	/* Timeouts are session settings so that every statement, prepared or not, is bounded. */
	snprintf(setup, sizeof(setup),
		 "SET statement_timeout = %d; SET lock_timeout = %d; "
		 "SET idle_in_transaction_session_timeout = %d",
		 cfg->statement_timeout_ms, cfg->lock_timeout_ms,
		 cfg->statement_timeout_ms > 0 ? cfg->statement_timeout_ms * 2 : 60000);
	PGresult *r = PQexec(conn, setup);
	bool ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		log_warn("database session setup failed: %s", PQerrorMessage(conn));
	PQclear(r);
	if (!ok) {
		db_close();
		return false;
	}
	generation++;
	/* Only failed attempts are spaced out: a connection lost after this one
	 * reconnects at once on the next request. */
	last_attempt_us = 0;
	config_error = false;
	log_info("connected to the database");
	return true;
}

bool db_ensure(void)
{
	if (conn && PQstatus(conn) == CONNECTION_OK)
		return true;
	/* While the database is down every request would otherwise pay for a connect
	 * attempt; one try a second keeps the 503s fast. */
	if (last_attempt_us && now_mono_us() - last_attempt_us < RECONNECT_INTERVAL_US)
		return false;
	return connect_now();
}

/* SQLSTATEs that mean the session is gone even though a result came back. */
static bool is_connection_error(const char *state)
{
	return strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 ||
	       strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0;
}

static PGresult *check(PGresult *r)
{
	if (!r || PQstatus(conn) != CONNECTION_OK ||
	    (PQresultStatus(r) == PGRES_FATAL_ERROR && is_connection_error(db_sqlstate(r)))) {
		log_warn("database connection lost: %s", PQerrorMessage(conn));
		PQclear(r);
		db_close();
		return NULL;
	}
	return r;
}

PGresult *db_exec(struct db_stmt *st, const char *const *params)
{
	if (!db_ensure())
		return NULL;
	if (st->prepared_gen != generation) {
		PGresult *r = check(PQprepare(conn, st->name, st->sql, st->nparams, NULL));
		if (!r)
			return NULL;
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			log_error("cannot prepare %s: %s", st->name, PQresultErrorMessage(r));
			return r;
		}
		PQclear(r);
		st->prepared_gen = generation;
	}
	scoreboard_sql_begin(st->name);
	PGresult *r = PQexecPrepared(conn, st->name, st->nparams, params, NULL, NULL, 0);
	scoreboard_sql_end();
	return check(r);
}

PGresult *db_exec_read(struct db_stmt *st, const char *const *params)
{
	bool had_conn = conn != NULL;
	PGresult *r = db_exec(st, params);
	if (r || !had_conn)
		return r;
	/* The connection died while idle (e.g. PostgreSQL restarted): a read is safe to retry. */
	if (!connect_now())
		return NULL;
	return db_exec(st, params);
}

const char *db_sqlstate(const PGresult *r)
{
	const char *s = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	return s ? s : "";
}
