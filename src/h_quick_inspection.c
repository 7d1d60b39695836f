/* h_quick_inspection.c: POST /api/v1/quality/scanner/quick-inspection.
 * Validation happens here; the credential check and the transaction (lock, complete,
 * LP status, audit row) are one call of api_quick_inspection(), so the request costs
 * one round trip. */
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
	"SELECT outcome, lp_id, completed_us, lp_new_status "
	"FROM api_quick_inspection(p_token_sha256 => $1, p_inspection => $2, p_result => $3, "
	"p_notes => $4, p_defects => $5, p_device => $6, p_location => $7)",
	7, 0
};

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

	const char *params[7] = {
		NULL, id, qi.result, qi.result_notes,
		qi.has_defects ? defects : NULL, qi.scanner_device_id, qi.scanner_location,
	};
	r = endpoint_exec(req, &st_complete, params, false);
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
