/* request.h: one FastCGI request: its params, its body (read to the end, with a
 * limit), the bearer token's SHA-256, and exactly one JSON response. */
#ifndef SCANQA_REQUEST_H
#define SCANQA_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <fcgiapp.h>
#include <json-c/json.h>

#define UUID_STR 37 /* 36 chars + NUL */
/* A token's SHA-256 as a bytea literal in text form: "\\x" and 64 hex digits. */
#define TOKEN_SHA256_STR 67

struct request {
	FCGX_Request *fcgi;
	const char *method;
	const char *path;        /* path part of REQUEST_URI, still percent-encoded */
	bool path_owned;         /* path was copied and must be freed */
	const char *query;       /* may be "" */
	const char *content_type;/* may be NULL */
	char request_id[64];
	char *body;              /* NUL-terminated; body_len excludes the NUL; NULL when empty */
	size_t body_len;
	bool body_too_large;
	bool body_length_mismatch; /* the body is not CONTENT_LENGTH bytes long (or CONTENT_LENGTH is malformed) */
	/* The bearer token's SHA-256 (auth_bearer), the first argument of every
	 * endpoint's statement: PostgreSQL decides the caller from it. "" when none. */
	char token_sha256[TOKEN_SHA256_STR];
	/* Set while the credential has not been judged by PostgreSQL: a 4xx answer
	 * decided in C (415, 400, ...) first calls it, so that a bad credential is
	 * still answered 401/403, as the order of checks says. It returns false when
	 * it has answered in place of the 4xx. endpoint_exec() clears it. */
	bool (*credential_check)(struct request *req);
	int status;              /* status sent, 0 until the response is sent */
	bool responded;
	bool head_only;          /* HEAD: the response of GET, without its body */
	char extra_headers[1536]; /* "Name: value\r\n" lines added by handlers (Location up to 900) */
	size_t extra_len;
	int64_t start_us;        /* monotonic start, microseconds */
	const char *route_name;  /* for logs and status counters */
};

/* Fills req from the FastCGI params and reads the whole body. Bodies longer than limit
 * are still read to the end (libfcgi does not drain them) and flagged body_too_large.
 * A body whose length differs from CONTENT_LENGTH (absent or empty meaning 0), or a
 * CONTENT_LENGTH that is not a decimal number, is flagged body_length_mismatch: the
 * FastCGI specification has a responder refuse it rather than act on a truncated or
 * padded body. */
void request_init(struct request *req, FCGX_Request *fcgi, size_t limit);
/* Frees what request_init allocated. */
void request_free(struct request *req);
/* Returns a FastCGI param (HTTP_* headers, etc.) or NULL. */
const char *request_param(const struct request *req, const char *name);
/* Percent-decodes s[0..len) (RFC 3986 2.1; with plus_is_space, "+" is a space as in
 * application/x-www-form-urlencoded) into a new NUL-terminated string the caller
 * frees, its length in *out_len. Returns NULL on a malformed %XX, a decoded NUL, or
 * no memory. */
char *percent_decode(const char *s, size_t len, bool plus_is_space, size_t *out_len);
/* The first value of name in the query string (application/x-www-form-urlencoded,
 * as URLSearchParams.get reads it: "+" is a space, %XX a byte), percent-decoded,
 * in a new string the caller frees. Returns NULL when name is absent; sets *bad
 * (and returns NULL) when its value is malformed: a bad %XX, a NUL, invalid UTF-8,
 * or longer than max_bytes once decoded. */
char *request_query_value(const struct request *req, const char *name, size_t max_bytes, bool *bad);

/* Adds a response header; ignored if it does not fit. */
void resp_header(struct request *req, const char *name, const char *value);
/* Sends status and body; takes ownership of obj (json_object_put). Only the first
 * response of a request is sent; later calls are logged and dropped. */
void resp_json(struct request *req, int status, struct json_object *obj);
/* Sends body[0..len) as it is, e.g. the Prometheus text format; same rules as
 * resp_json. content_type is the whole header value. */
void resp_text(struct request *req, int status, const char *content_type, const char *body, size_t len);
/* Sends {"error": msg}. */
void resp_error(struct request *req, int status, const char *msg);
/* Sends a status without content (204): no Content-Type, Content-Length or body. */
void resp_empty(struct request *req, int status);

/* Current monotonic and wall-clock time in microseconds. */
int64_t now_mono_us(void);
int64_t now_wall_us(void);

#endif
