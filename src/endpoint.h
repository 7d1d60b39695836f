/* endpoint.h: what every endpoint handler shares: the strict JSON body (400), the
 * endpoint's one statement run with the caller's credential, and the answer to a
 * failed statement, from one table of SQLSTATEs. */
#ifndef SCANQA_ENDPOINT_H
#define SCANQA_ENDPOINT_H

#include <stdbool.h>
#include <libpq-fe.h>

#include "db.h"
#include "request.h"

/* Parses the request body as strict JSON; on failure answers 400 and returns NULL. */
struct json_object *parse_json_body(struct request *req);

/* Runs the endpoint's statement, whose first parameter is the caller's credential
 * (p_token_sha256 => $1: the router put it in req->token_sha256; params[0] is
 * ignored and replaced). read: the statement changes nothing the client asked
 * for, so a connection found dead while idle is retried once (db_exec_read).
 * Returns what db_exec returns: NULL when the database is gone, else a result the
 * caller PQclear()s, which may be an error (respond_db_failure answers it). Once
 * a result came back the credential has been judged, so a later 4xx answer needs
 * no separate check (see auth_confirm). */
PGresult *endpoint_exec(struct request *req, struct db_stmt *st, const char **params, bool read);

/* Answers a failed statement from the SQLSTATE table: the credential's 401s and
 * 403 (raised by qa_credential() in PostgreSQL), 503 + Retry-After when the
 * database is gone, busy or timed out (a retry is safe), otherwise 500 with the
 * message what. r may be NULL (connection lost). */
void respond_db_failure(struct request *req, PGresult *r, const char *what);

/* True when SQLSTATE state means "busy, retry": a lock or statement timeout, a
 * serialization failure or a deadlock. qa_sync_busy_state() in the SQL holds the
 * same list for failures caught inside a statement. */
bool sqlstate_is_busy(const char *state);

#endif
