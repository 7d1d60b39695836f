/* h_quick_inspection.c: POST /api/v1/quality/scanner/quick-inspection.
 * Validation happens here; the transaction (lock, complete, LP status, audit row) is one
 * call of qa_complete_inspection(), so the whole write costs one round trip. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "handlers.h"
#include "inspection_input.h"
#include "jsonx.h"
#include "log.h"
#include "validate.h"

static struct db_stmt st_complete = {
	"quick_inspection",
	"SELECT outcome, lp_id, (extract(epoch FROM completed_at) * 1000000)::bigint, lp_new_status "
	"FROM qa_complete_inspection($1, $2, $3, $4, $5, $6, $7, $8, NULL, false, 0)",
	8, 0
};

/* Parses the body as JSON; on failure answers 400 and returns NULL. Like the
 * reference's request.json() (WHATWG "UTF-8 decode"), one leading UTF-8 byte-order
 * mark is dropped first. */
struct json_object *parse_json_body(struct request *req)
{
	static const char bom[] = "\xEF\xBB\xBF";
	const char *err = NULL, *text = req->body ? req->body : "";
	size_t len = req->body_len;

	if (len >= 3 && memcmp(text, bom, 3) == 0) {
		text += 3;
		len -= 3;
	}
	struct json_object *body = jsonx_parse(text, len, &err);
	if (!body) {
		struct verrors e;
		verrors_init(&e);
		verrors_add(&e, "", "%s", err);
		resp_json(req, 400, verrors_response(&e));
		verrors_free(&e);
	}
	return body;
}

/* Answers for a failed statement: 503 when the database is gone or busy (the client
 * may retry), otherwise 500 with the endpoint's message. */
void respond_db_failure(struct request *req, PGresult *r, const char *what)
{
	if (!r) {
		resp_header(req, "Retry-After", "1");
		resp_error(req, 503, "Service unavailable");
		return;
	}
	const char *state = db_sqlstate(r);
	if (strcmp(state, "55P03") == 0 || strcmp(state, "57014") == 0 || strcmp(state, "40001") == 0 ||
	    strcmp(state, "40P01") == 0) {
		log_warn("%s: %s", what, PQresultErrorMessage(r));
		resp_header(req, "Retry-After", "1");
		resp_error(req, 503, "Resource is busy, retry the request");
		return;
	}
	log_error("%s: %s", what, PQresultErrorMessage(r));
	resp_error(req, 500, what);
}

void h_quick_inspection(struct request *req, const struct route_params *p)
{
	struct json_object *body = parse_json_body(req);
	struct verrors e;
	struct quick_inspection qi;
	char id[UUID_STR], defects[24];
	PGresult *r = NULL;

	if (!body)
		return;
	verrors_init(&e);
	if (!quick_inspection_parse(body, "", &qi, &e)) {
		resp_json(req, 400, verrors_response(&e));
		goto out;
	}
	snprintf(id, sizeof(id), "%s", qi.inspection_id);
	for (char *c = id; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	if (qi.has_defects)
		snprintf(defects, sizeof(defects), "%lld", (long long)qi.defects_found);

	const char *params[8] = {
		req->caller.org_id, req->caller.user_id, id, qi.result, qi.result_notes,
		qi.has_defects ? defects : NULL, qi.scanner_device_id, qi.scanner_location,
	};
	r = db_exec(&st_complete, params);
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		respond_db_failure(req, r, "Failed to update inspection");
		goto out;
	}
	const char *outcome = PQgetvalue(r, 0, 0);
	if (strcmp(outcome, "not_found") == 0) {
		resp_error(req, 404, "Inspection not found");
		goto out;
	}
	if (strcmp(outcome, "already_completed") == 0) {
		resp_error(req, 400, "Inspection already completed");
		goto out;
	}
	if (strcmp(outcome, "ok") != 0) {
		log_error("qa_complete_inspection returned unknown outcome \"%s\"", outcome);
		resp_error(req, 500, "Failed to update inspection");
		goto out;
	}

	char completed[32];
	iso8601_ms(strtoll(PQgetvalue(r, 0, 2), NULL, 10), completed);
	struct json_object *insp = json_object_new_object();
	json_object_object_add(insp, "id", json_object_new_string(id));
	json_object_object_add(insp, "lp_id", json_object_new_string(PQgetvalue(r, 0, 1)));
	json_object_object_add(insp, "status", json_object_new_string("completed"));
	json_object_object_add(insp, "result", json_object_new_string(qi.result));
	json_object_object_add(insp, "inspection_method", json_object_new_string("scanner"));
	json_object_object_add(insp, "completed_at", json_object_new_string(completed));
	if (qi.result_notes)
		json_object_object_add(insp, "result_notes", json_object_new_string(qi.result_notes));
	if (qi.has_defects)
		json_object_object_add(insp, "defects_found", json_object_new_int64(qi.defects_found));
	if (qi.scanner_device_id)
		json_object_object_add(insp, "scanner_device_id", json_object_new_string(qi.scanner_device_id));
	if (qi.scanner_location)
		json_object_object_add(insp, "scanner_location", json_object_new_string(qi.scanner_location));

	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "inspection", insp); /* ownership transferred */
	json_object_object_add(o, "lp_status_updated", json_object_new_boolean(1));
	json_object_object_add(o, "lp_new_status", json_object_new_string(PQgetvalue(r, 0, 3)));
	resp_json(req, 200, o);
out:
	PQclear(r);
	verrors_free(&e);
	json_object_put(body);
}
