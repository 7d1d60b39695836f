/* auth.h: the bearer token, as far as the daemon sees it: its syntax, and its
 * SHA-256, which goes into every endpoint's statement. PostgreSQL decides who the
 * caller is (qa_credential() in sql/008_credential_in_database.sql). */
#ifndef SCANQA_AUTH_H
#define SCANQA_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "request.h"

/* Reads the request's one "Authorization: Bearer <token>" header (RFC 6750) and
 * puts the token's SHA-256 into req->token_sha256. Returns false, filling
 * nothing, when there is no such header, more than one, or a malformed token:
 * the caller answers 401 Unauthorized. */
bool auth_bearer(struct request *req);
/* The credential check for a request answered before its endpoint's statement
 * (req->credential_check): one statement, api_credential(). Returns true when
 * PostgreSQL accepts the credential for the route, else answers 401, 403, 503 or
 * 500 and returns false. For routes that need a scanner role, and for any user. */
bool auth_confirm_scanner(struct request *req);
bool auth_confirm_user(struct request *req);
/* SHA-256 of a token as 64 lowercase hex chars plus NUL. */
void auth_hash_token(const char *token, size_t len, char out[65]);

#endif
