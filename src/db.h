/* db.h: this worker's one PostgreSQL connection: connected without blocking, every
 * statement bounded by a deadline, lazily prepared statements (or unnamed ones behind
 * a transaction pooler), and the distinction between "the database said no" and "the
 * database is gone, silent, or the wrong (read-only) server". */
#ifndef SCANQA_DB_H
#define SCANQA_DB_H

#include <stdbool.h>
#include <libpq-fe.h>

#include "conf.h"

/* A statement prepared once per connection, on first use (or sent unnamed each time
 * when conf.prepared is false). Declare it static in the handler file:
 * static struct db_stmt st = { "name", "SELECT ...", 2 }; */
struct db_stmt {
	const char *name;
	const char *sql;
	int nparams;
	unsigned prepared_gen; /* connection generation it was prepared on; 0 = never */
};

/* Remembers the settings; connects lazily. Must be called after fork. */
void db_init(const struct conf *c);
/* At worker start: starts a connect attempt and waits for it up to connect_timeout
 * per host in conninfo. Returns true when connected. */
bool db_connect_first(void);
/* Makes sure there is a usable connection. A request waits at most 500 ms for an
 * attempt in progress (which goes on afterwards); failed attempts are spaced a second
 * apart. Returns false when there is none now (answer 503). */
bool db_ensure(void);
/* For the worker's idle loop: advances a connect attempt without waiting, or starts
 * one when the connection is gone. Returns the epoll timeout (ms) the loop should
 * use at most, or -1 when connected. */
int db_idle(void);
/* For the worker's idle loop: the connection's socket to watch for input while no
 * request runs (-1 when there is no usable connection), and in *gen the connection's
 * generation, which changes with every new connection (register the socket again). */
int db_idle_socket(unsigned *gen);
/* The idle connection's socket is readable: reads what came. A connection the server
 * closed (a restart, pg_terminate_backend, an idle timeout) or one that turned into a
 * hot standby is dropped, so that db_idle() reconnects before the next request needs
 * it, instead of that request (a write cannot be retried) answering 503. */
void db_idle_input(void);
/* How long (ms) a statement's answer is awaited: statement_timeout + 2000 (30000 +
 * 2000 when statement_timeout is 0). */
int db_answer_wait_ms(void);
/* Runs a statement with text params (NULL = SQL NULL). Returns the result, which the
 * caller PQclear()s, or NULL (answer 503 + Retry-After): the connection failed, gave no
 * answer within db_answer_wait_ms(), or is to a read-only server (SQLSTATE 25006,
 * in_hot_standby); the connection is then dropped and re-established. A result with
 * an error status means the database refused the statement. */
PGresult *db_exec(struct db_stmt *st, const char *const *params);
/* Like db_exec, for statements that change nothing: when the connection turns out to
 * have died while idle, or to lead to a read-only server, reconnects at once and
 * retries one time. Never after a missed deadline (that would double the wait). */
PGresult *db_exec_read(struct db_stmt *st, const char *const *params);
/* Drops the connection because the server turned out to be in recovery (health's
 * probe). Returns false when there was none. */
bool db_drop_read_only(void);
/* After a db_exec with an error result: the SQLSTATE, or "" */
const char *db_sqlstate(const PGresult *r);
/* True when the last connect attempt was refused for good (unknown role or database,
 * failed authentication), as opposed to the server being unreachable. */
bool db_config_error(void);
void db_close(void);

#endif
