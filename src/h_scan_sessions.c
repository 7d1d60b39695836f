/* h_scan_sessions.c: POST /api/v1/scan-sessions, GET and PATCH
 * /api/v1/scan-sessions/{session_id}, POST /api/v1/scan-sessions/{session_id}/scans.
 *
 * Inputs are checked here (session.c); each request's transaction is one call of a
 * SQL function (sql/003_scan_sessions.sql, called through its api_* function of
 * sql/008_credential_in_database.sql), so it costs one round trip, credential
 * check included. The state machine, the lock that serialises concurrent PATCHes,
 * the If-Match comparison and the audit entry all happen inside that call.
 *
 * Access: any active user of the organization may create a session and read any of
 * its sessions; only the session's owner, or a manager role (qa_role_manages() in
 * the SQL: qa_manager, admin, owner), may change it or scan into it.
 *
 * The seed frontend (scan-session-manager.js) maps onto PATCH like this:
 *   updateScanSession(id, changes)  PATCH {only the changed fields}, If-Match: last ETag
 *   pauseSession(id)                PATCH {"status":"PAUSED"}
 *   resumeSession(id)               PATCH {"status":"ACTIVE"}
 * Repeating a status the session already has is a 200 no-op, so retries are safe. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "handlers.h"
#include "jsonx.h"
#include "log.h"
#include "result_json.h"
#include "session.h"
#include "validate.h"

/* Columns of scan_session_view, in its order; every statement below starts with them. */
enum {
	SC_ID, SC_TOKEN, SC_STATUS, SC_LOCATION, SC_NOTES, SC_AUTO_COMMIT, SC_EXPECTED,
	SC_ITEMS, SC_SUCCESSFUL, SC_FAILED, SC_STARTED_US, SC_LAST_ACTIVITY_US, SC_UPDATED_US,
	SC_DURATION, SC_VERSION, SC_ORG,
	SC_NCOLS,
	SC_OUTCOME = SC_NCOLS,  /* qa_session_update and qa_session_scan */
};

/* qa_session_scan's columns after the outcome */
enum {
	SCAN_ID = SC_OUTCOME + 1, SCAN_AT_US, SCAN_LP, /* LP: 6 columns, then inspection: 5 */
	SCAN_INSPECTION = SCAN_LP + 6,
	SCAN_NCOLS = SCAN_INSPECTION + 5,
};

static struct db_stmt st_create = {
	"session_create",
	"SELECT * FROM api_session_create(p_token_sha256 => $1, p_session_token => $2, "
	"p_location => $3, p_notes => $4, p_expected => $5, p_auto_commit => $6)",
	6, 0
};
static struct db_stmt st_get = {
	"session_get", "SELECT * FROM api_session_get(p_token_sha256 => $1, p_id => $2)", 2, 0
};
static struct db_stmt st_update = {
	"session_update",
	"SELECT (f.session).*, f.outcome "
	"FROM api_session_update(p_token_sha256 => $1, p_id => $2, p_if_match => $3, "
	"p_status => $4, p_location => $5, p_notes => $6, p_items => $7, p_auto_commit => $8) f",
	8, 0
};
static struct db_stmt st_scan = {
	"session_scan",
	"SELECT (f.session).*, f.outcome, f.scan_id, f.scanned_us, "
	"f.lp_id, f.lp_barcode, f.product_id, f.batch_number, f.quantity, f.qa_status, "
	"f.inspection_id, f.inspection_number, f.inspection_status, f.inspection_result, "
	"f.inspection_created_us "
	"FROM api_session_scan(p_token_sha256 => $1, p_id => $2, p_barcode => $3) f",
	3, 0
};

/* ---- the session as JSON ----------------------------------------------------- */

/* The spec's PATCH response shape, plus location, notes, auto_commit and expected_items. */
static struct json_object *session_json(const PGresult *r, int row)
{
	struct json_object *o = json_object_new_object(), *progress, *duration;
	const char *status = PQgetvalue(r, row, SC_STATUS);
	int64_t expected = PQgetisnull(r, row, SC_EXPECTED) ? 0 : col_i64(r, row, SC_EXPECTED);
	int64_t pct = session_completion(status, col_i64(r, row, SC_ITEMS), expected);

	json_object_object_add(o, "id", json_object_new_int64(col_i64(r, row, SC_ID)));
	json_object_object_add(o, "session_token", col_str(r, row, SC_TOKEN));
	json_object_object_add(o, "status", json_object_new_string(status));

	progress = json_object_new_object();
	json_object_object_add(progress, "items_scanned", json_object_new_int64(col_i64(r, row, SC_ITEMS)));
	json_object_object_add(progress, "successful_scans",
			       json_object_new_int64(col_i64(r, row, SC_SUCCESSFUL)));
	json_object_object_add(progress, "failed_scans", json_object_new_int64(col_i64(r, row, SC_FAILED)));
	if (pct < 0) {
		json_object_object_add(progress, "completion_percentage", NULL);
	} else {
		char text[24];
		session_format_hundredths(pct, text);
		json_object_object_add(progress, "completion_percentage",
				       json_object_new_double_s((double)pct / 100.0, text));
	}
	json_object_object_add(o, "progress_summary", progress); /* ownership transferred */

	duration = json_object_new_object();
	json_object_object_add(duration, "started_at", col_time(r, row, SC_STARTED_US));
	json_object_object_add(duration, "last_activity", col_time(r, row, SC_LAST_ACTIVITY_US));
	json_object_object_add(duration, "duration_minutes",
			       json_object_new_int64(col_i64(r, row, SC_DURATION)));
	json_object_object_add(o, "session_duration", duration); /* ownership transferred */

	json_object_object_add(o, "updated_at", col_time(r, row, SC_UPDATED_US));
	json_object_object_add(o, "location", col_str(r, row, SC_LOCATION));
	json_object_object_add(o, "notes", col_str(r, row, SC_NOTES));
	json_object_object_add(o, "auto_commit",
			       json_object_new_boolean(strcmp(PQgetvalue(r, row, SC_AUTO_COMMIT), "t") == 0));
	json_object_object_add(o, "expected_items",
			       expected > 0 ? json_object_new_int64(expected) : NULL);
	return o;
}

/* True when r is one row of the expected width: a function whose columns no longer
 * match the enums above must give a 500, not a crash. */
static bool one_row(const PGresult *r, int ncols)
{
	return r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && PQnfields(r) == ncols;
}

static void add_etag(struct request *req, const PGresult *r)
{
	char etag[32];
	session_etag(col_i64(r, 0, SC_VERSION), etag);
	resp_header(req, "ETag", etag);
}

/* ---- shared steps -------------------------------------------------------------- */

/* Reads {session_id}; answers 400 or 404 and returns false when it cannot name a session. */
static bool path_session_id(struct request *req, const struct route_params *p, char out[16])
{
	int32_t id;

	switch (session_parse_id(p->v[0], &id)) {
	case SESSION_ID_OK:
		snprintf(out, 16, "%d", (int)id);
		return true;
	case SESSION_ID_NO_SUCH:
		resp_error(req, 404, "Scan session not found");
		return false;
	case SESSION_ID_NOT_INTEGER:
		break;
	}
	struct verrors e;
	verrors_init(&e);
	verrors_add(&e, "session_id", "Expected integer, received string");
	resp_json(req, 400, verrors_response(&e));
	verrors_free(&e);
	return false;
}

/* 409 for a session in a final state, or (scans only) a paused one. */
static void respond_not_open(struct request *req, const PGresult *r)
{
	const char *status = PQgetvalue(r, 0, SC_STATUS);
	const char *msg = strcmp(status, "COMPLETED") == 0 ? "Session is completed"
			: strcmp(status, "CANCELLED") == 0 ? "Session is cancelled"
			: strcmp(status, "PAUSED") == 0 ? "Session is paused"
			: "Session is not active";
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "error", json_object_new_string(msg));
	json_object_object_add(o, "status", json_object_new_string(status));
	add_etag(req, r);
	resp_json(req, 409, o);
}

/* Empty bodies are the empty object: every field of a new session is optional. */
static struct json_object *body_or_empty_object(struct request *req)
{
	if (req->body_len == 0)
		return json_object_new_object();
	return parse_json_body(req);
}

/* ---- handlers ------------------------------------------------------------------- */

void h_session_create(struct request *req, const struct route_params *p)
{
	struct json_object *body = body_or_empty_object(req);
	struct session_create in;
	struct verrors e;
	char token[SESSION_TOKEN_LEN + 1], expected[16], location_hdr[64];
	PGresult *r = NULL;

	if (!body)
		return;
	verrors_init(&e);
	if (!session_create_parse(body, &in, &e)) {
		resp_json(req, 400, verrors_response(&e));
		goto out;
	}
	if (!session_token_new(token)) {
		log_error("RAND_bytes failed: cannot make a session token");
		resp_error(req, 500, "Failed to create scan session");
		goto out;
	}
	if (in.has_expected)
		snprintf(expected, sizeof expected, "%lld", (long long)in.expected_items);
	const char *params[6] = {
		NULL, token, in.location, in.notes,
		in.has_expected ? expected : NULL,
		in.has_auto_commit ? (in.auto_commit ? "true" : "false") : NULL,
	};
	r = endpoint_exec(req, &st_create, params, false);
	if (!one_row(r, SC_NCOLS)) {
		respond_db_failure(req, r, "Failed to create scan session");
		goto out;
	}
	snprintf(location_hdr, sizeof location_hdr, "/api/v1/scan-sessions/%s", PQgetvalue(r, 0, SC_ID));
	resp_header(req, "Location", location_hdr);
	add_etag(req, r);
	resp_json(req, 201, session_json(r, 0));
out:
	PQclear(r);
	verrors_free(&e);
	json_object_put(body);
}

void h_session_get(struct request *req, const struct route_params *p)
{
	char id[16];
	PGresult *r;

	if (!path_session_id(req, p, id))
		return;
	const char *params[2] = { NULL, id };
	r = endpoint_exec(req, &st_get, params, true);
	if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 0) {
		resp_error(req, 404, "Scan session not found");
	} else if (!one_row(r, SC_NCOLS)) {
		respond_db_failure(req, r, "Failed to read scan session");
	} else {
		add_etag(req, r);
		resp_json(req, 200, session_json(r, 0));
	}
	PQclear(r);
}

void h_session_patch(struct request *req, const struct route_params *p)
{
	struct json_object *body = NULL;
	struct session_patch in;
	struct verrors e;
	char id[16], items[16], versions[IF_MATCH_ARRAY_LEN];
	PGresult *r = NULL;

	verrors_init(&e);
	if (!path_session_id(req, p, id))
		goto out;
	enum if_match im = session_if_match(request_param(req, "HTTP_IF_MATCH"), versions);
	if (im == IF_MATCH_INVALID) {
		resp_error(req, 400, "Invalid If-Match header");
		goto out;
	}
	body = parse_json_body(req);
	if (!body)
		goto out;
	if (!session_patch_parse(body, &in, &e)) {
		resp_json(req, 400, verrors_response(&e));
		goto out;
	}
	if (in.has_items)
		snprintf(items, sizeof items, "%lld", (long long)in.items_scanned);
	const char *params[8] = {
		NULL, id, im == IF_MATCH_LIST ? versions : NULL,
		in.status, in.location, in.notes,
		in.has_items ? items : NULL,
		in.has_auto_commit ? (in.auto_commit ? "true" : "false") : NULL,
	};
	r = endpoint_exec(req, &st_update, params, false);
	if (!one_row(r, SC_NCOLS + 1)) {
		respond_db_failure(req, r, "Failed to update scan session");
		goto out;
	}
	const char *outcome = PQgetvalue(r, 0, SC_OUTCOME);
	if (strcmp(outcome, "ok") == 0 || strcmp(outcome, "unchanged") == 0) {
		add_etag(req, r);
		resp_json(req, 200, session_json(r, 0));
	} else if (strcmp(outcome, "not_found") == 0) {
		resp_error(req, 404, "Scan session not found");
	} else if (strcmp(outcome, "forbidden") == 0) {
		resp_error(req, 403, "Only the session's owner or a QA manager may change it");
	} else if (strcmp(outcome, "stale") == 0) {
		add_etag(req, r);
		resp_error(req, 412, "Session was modified by another request");
	} else if (strcmp(outcome, "final") == 0) {
		respond_not_open(req, r);
	} else if (strcmp(outcome, "items_decrease") == 0) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "error",
				       json_object_new_string("items_scanned cannot go below the current count"));
		json_object_object_add(o, "current_items_scanned",
				       json_object_new_int64(col_i64(r, 0, SC_ITEMS)));
		add_etag(req, r);
		resp_json(req, 409, o);
	} else {
		log_error("qa_session_update returned unknown outcome \"%s\"", outcome);
		resp_error(req, 500, "Failed to update scan session");
	}
out:
	PQclear(r);
	verrors_free(&e);
	json_object_put(body);
}

/* The scan itself: id, barcode, success, scanned_at. */
static struct json_object *scan_json(const PGresult *r, const char *barcode, bool success)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_int64(col_i64(r, 0, SCAN_ID)));
	json_object_object_add(o, "barcode", json_object_new_string(barcode));
	json_object_object_add(o, "success", json_object_new_boolean(success));
	json_object_object_add(o, "scanned_at", col_time(r, 0, SCAN_AT_US));
	return o;
}

void h_session_scan(struct request *req, const struct route_params *p)
{
	struct json_object *body = NULL, *o;
	char barcode[BARCODE_BYTES_MAX + 1];
	struct verrors e;
	char id[16];
	PGresult *r = NULL;

	verrors_init(&e);
	if (!path_session_id(req, p, id))
		goto out;
	body = parse_json_body(req);
	if (!body)
		goto out;
	if (!scan_parse(body, barcode, &e)) {
		resp_json(req, 400, verrors_response(&e));
		goto out;
	}
	const char *params[3] = { NULL, id, barcode };
	r = endpoint_exec(req, &st_scan, params, false);
	if (!one_row(r, SCAN_NCOLS)) {
		respond_db_failure(req, r, "Failed to record scan");
		goto out;
	}
	const char *outcome = PQgetvalue(r, 0, SC_OUTCOME);
	if (strcmp(outcome, "not_found") == 0) {
		resp_error(req, 404, "Scan session not found");
	} else if (strcmp(outcome, "forbidden") == 0) {
		resp_error(req, 403, "Only the session's owner or a QA manager may change it");
	} else if (strcmp(outcome, "not_active") == 0) {
		respond_not_open(req, r);
	} else if (strcmp(outcome, "lp_not_found") == 0) {
		/* The failed scan is recorded and counted all the same. */
		o = json_object_new_object();
		json_object_object_add(o, "error", json_object_new_string("License plate not found"));
		json_object_object_add(o, "scan", scan_json(r, barcode, false));
		json_object_object_add(o, "session", session_json(r, 0));
		add_etag(req, r);
		resp_json(req, 404, o);
	} else if (strcmp(outcome, "ok") == 0) {
		struct json_object *ins = inspection_json(r, 0, SCAN_INSPECTION, PQgetvalue(r, 0, SCAN_LP));
		o = json_object_new_object();
		json_object_object_add(o, "scan", scan_json(r, barcode, true));
		json_object_object_add(o, "lp", lp_json(r, 0, SCAN_LP));
		json_object_object_add(o, "has_pending_inspection", json_object_new_boolean(ins != NULL));
		json_object_object_add(o, "inspection", ins); /* ownership transferred */
		json_object_object_add(o, "session", session_json(r, 0));
		add_etag(req, r);
		resp_json(req, 201, o);
	} else {
		log_error("qa_session_scan returned unknown outcome \"%s\"", outcome);
		resp_error(req, 500, "Failed to record scan");
	}
out:
	PQclear(r);
	verrors_free(&e);
	json_object_put(body);
}
