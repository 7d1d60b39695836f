/* session.h: the rules of scan sessions that need no database: request bodies, the
 * path id, If-Match and ETags, the session token and the completion
 * percentage. The handlers (h_scan_sessions.c, h_lookup.c) and t/unit/session_t.c
 * use them; the state machine itself lives in SQL (qa_session_update). */
#ifndef SCANQA_SESSION_H
#define SCANQA_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#include "barcode.h"
#include "validate.h"

#define SESSION_LOCATION_MAX 255
#define SESSION_NOTES_MAX 2000
/* 32 random bytes as base64url without padding */
#define SESSION_TOKEN_LEN 43
/* Versions named by one If-Match header that are looked at; more is a 400. */
#define IF_MATCH_MAX_TAGS 32
/* "{" + 32 * "2147483647," + "}" + NUL, rounded up */
#define IF_MATCH_ARRAY_LEN 384

/* POST /api/v1/scan-sessions. Strings point into the parsed body. */
struct session_create {
	const char *location;     /* NULL when absent */
	const char *notes;        /* NULL when absent */
	bool has_expected;
	int64_t expected_items;
	bool has_auto_commit;
	bool auto_commit;
};

/* PATCH /api/v1/scan-sessions/{id}: each field may be absent. */
struct session_patch {
	const char *status;       /* ACTIVE, PAUSED, COMPLETED, CANCELLED or NULL */
	const char *location;
	const char *notes;
	bool has_items;
	int64_t items_scanned;
	bool has_auto_commit;
	bool auto_commit;
};

/* Bodies are checked like Zod 3 .strict() objects: every failing field is reported
 * in e, then unknown keys ("Unrecognized key(s) in object: 'a', 'b'" on the root).
 * Each returns true when the body is valid. */
bool session_create_parse(struct json_object *body, struct session_create *out, struct verrors *e);
/* Also fails, on the root, when no field is given at all. */
bool session_patch_parse(struct json_object *body, struct session_patch *out, struct verrors *e);
/* POST /api/v1/scan-sessions/{id}/scans: {"barcode": "..."}. On true, barcode holds
 * the barcode normalised by barcode_normalize() (wedge suffixes, AIM identifier). */
bool scan_parse(struct json_object *body, char barcode[BARCODE_BYTES_MAX + 1], struct verrors *e);

enum session_id {
	SESSION_ID_OK,
	SESSION_ID_NOT_INTEGER,  /* 400 */
	SESSION_ID_NO_SUCH,      /* an integer no session can have (< 1 or > INT32_MAX): 404 */
};
/* Reads a decoded path segment as a session id: an optional "-" and decimal digits,
 * nothing else. */
enum session_id session_parse_id(const char *s, int32_t *out);

enum if_match {
	IF_MATCH_ABSENT,   /* no header: no precondition */
	IF_MATCH_ANY,      /* "*": any current version */
	IF_MATCH_LIST,     /* out holds the versions it names, e.g. "{3,4}" or "{}" */
	IF_MATCH_INVALID,  /* not an RFC 9110 If-Match value, or too many tags: 400 */
};
/* Parses an If-Match header (NULL when absent). Our ETags are "v<version>"; other
 * well-formed tags are kept out of the list and so never match. A weak tag
 * W/"v3" counts as "v3": the version is what identifies the state, and a
 * compressing proxy may have weakened the ETag the client saw. */
enum if_match session_if_match(const char *header, char out[IF_MATCH_ARRAY_LEN]);
/* The ETag of a version: "v3" with its quotes. */
void session_etag(int64_t version, char out[32]);

/* Fills out with a new session token from OpenSSL's CSPRNG. Returns false when the
 * generator fails. */
bool session_token_new(char out[SESSION_TOKEN_LEN + 1]);

/* completion_percentage in hundredths (0..10000): 10000 once COMPLETED, otherwise
 * min(100, items * 100 / expected) rounded half up to 2 decimals; -1 (JSON null)
 * when expected is unknown (expected <= 0). */
int64_t session_completion(const char *status, int64_t items, int64_t expected);
/* Hundredths as a JSON number's text, without trailing zeros: 3333 -> "33.33",
 * 5050 -> "50.5", 10000 -> "100". */
void session_format_hundredths(int64_t h, char out[24]);

#endif
