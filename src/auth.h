/* auth.h: bearer token to caller, checked against PostgreSQL on every request. */
#ifndef SCANQA_AUTH_H
#define SCANQA_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "request.h"

enum auth_result {
	AUTH_OK = 0,
	AUTH_UNAUTHORIZED,   /* 401 Unauthorized: no/malformed header, unknown/expired/revoked token */
	AUTH_NO_USER,        /* 401 User not found: profile missing or inactive */
	AUTH_DB_DOWN,        /* 503 Service unavailable */
	AUTH_DB_ERROR,       /* 500 Internal server error */
};

/* Authenticates the request's Authorization header and fills req->caller. */
enum auth_result auth_check(struct request *req);
/* True for qa_inspector, qa_manager, admin and owner. */
bool auth_is_scanner_role(const char *role);
/* True for qa_manager, admin and owner. */
bool auth_is_manager_role(const char *role);
/* SHA-256 of a token as 64 lowercase hex chars plus NUL. */
void auth_hash_token(const char *token, size_t len, char out[65]);

#endif
