/* db.h: this worker's one PostgreSQL connection, lazily prepared statements, and the
 * distinction between "the database said no" and "the database is gone". */
#ifndef SCANQA_DB_H
#define SCANQA_DB_H

#include <stdbool.h>
#include <libpq-fe.h>

#include "conf.h"

/* A statement prepared once per connection, on first use. Declare it static in the
 * handler file: static struct db_stmt st = { "name", "SELECT ...", 2 }; */
struct db_stmt {
	const char *name;
	const char *sql;
	int nparams;
	unsigned prepared_gen; /* connection generation it was prepared on; 0 = never */
};

/* Remembers the settings; connects lazily. Must be called after fork. */
void db_init(const struct conf *c);
/* Makes sure there is a usable connection, reconnecting at most once a second.
 * Returns false when the database is unreachable (answer 503). */
bool db_ensure(void);
/* Runs a prepared statement with text params (NULL = SQL NULL). Returns the result,
 * which the caller PQclear()s, or NULL when the connection failed (answer 503; the
 * connection is dropped and re-established by a later db_ensure()). A result with an
 * error status means the database refused the statement. */
PGresult *db_exec(struct db_stmt *st, const char *const *params);
/* Like db_exec, for statements that change nothing: when the connection turns out to
 * have died while idle, reconnects at once and retries one time. */
PGresult *db_exec_read(struct db_stmt *st, const char *const *params);
/* After a db_exec with an error result: the SQLSTATE, or "" */
const char *db_sqlstate(const PGresult *r);
/* True when the last connect attempt was refused for good (unknown role or database,
 * failed authentication), as opposed to the server being unreachable. */
bool db_config_error(void);
void db_close(void);

#endif
