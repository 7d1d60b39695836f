/* h_lookup.c: GET /api/warehouse/license-plates/barcode/{barcode} and
 * GET /api/quality/inspections/by-lp/{lpId}, the look-ups a scanner makes before a
 * quick inspection. Both are one statement, credential check included, on indexes
 * that match them ((org_id, barcode) unique, open inspections by lp_id), and both
 * need a scanner role, like the scanner API they feed.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "handlers.h"
#include "jsonx.h"
#include "result_json.h"
#include "session.h"
#include "validate.h"

/* qa_lp_by_barcode's columns: the LP's six (see lp_json), then these. */
enum { BC_PENDING = 6, BC_CREATED_US, BC_UPDATED_US, BC_NCOLS };
/* qa_inspection_by_lp's columns: the LP's six, then the inspection's five. */
enum { BL_INSPECTION = 6, BL_NCOLS = BL_INSPECTION + 5 };

static struct db_stmt st_by_barcode = {
	"lp_by_barcode", "SELECT * FROM api_lp_by_barcode(p_token_sha256 => $1, p_barcode => $2)", 2, 0
};
static struct db_stmt st_by_lp = {
	"inspection_by_lp", "SELECT * FROM api_inspection_by_lp(p_token_sha256 => $1, p_lp => $2)", 2, 0
};

/* Answers 400 Validation failed with one detail. */
static void respond_invalid(struct request *req, const char *field, const char *msg)
{
	struct verrors e;
	verrors_init(&e);
	verrors_add(&e, field, "%s", msg);
	resp_json(req, 400, verrors_response(&e));
	verrors_free(&e);
}

void h_lp_by_barcode(struct request *req, const struct route_params *p)
{
	const char *barcode = p->v[0];
	const char *problem = barcode_problem(barcode, strlen(barcode));
	PGresult *r;

	if (problem) {
		respond_invalid(req, "barcode", problem);
		return;
	}
	const char *params[2] = { NULL, barcode };
	r = endpoint_exec(req, &st_by_barcode, params, true);
	if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 0) {
		resp_error(req, 404, "License plate not found");
	} else if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQnfields(r) != BC_NCOLS) {
		respond_db_failure(req, r, "Failed to look up license plate");
	} else {
		struct json_object *o = lp_json(r, 0, 0);
		json_object_object_add(o, "pending_inspection_count",
				       json_object_new_int64(strtoll(PQgetvalue(r, 0, BC_PENDING), NULL, 10)));
		json_object_object_add(o, "created_at", col_time(r, 0, BC_CREATED_US));
		json_object_object_add(o, "updated_at", col_time(r, 0, BC_UPDATED_US));
		resp_json(req, 200, o);
	}
	PQclear(r);
}

void h_inspection_by_lp(struct request *req, const struct route_params *p)
{
	char id[UUID_STR];
	PGresult *r;

	if (!zod_uuid(p->v[0])) {
		respond_invalid(req, "lpId", "Invalid LP ID");
		return;
	}
	snprintf(id, sizeof id, "%s", p->v[0]);
	for (char *c = id; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	const char *params[2] = { NULL, id };
	r = endpoint_exec(req, &st_by_lp, params, true);
	if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 0) {
		resp_error(req, 404, "License plate not found");
	} else if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQnfields(r) != BL_NCOLS) {
		respond_db_failure(req, r, "Failed to look up inspection");
	} else {
		struct json_object *o = json_object_new_object();
		struct json_object *ins = inspection_json(r, 0, BL_INSPECTION, PQgetvalue(r, 0, 0));
		json_object_object_add(o, "inspection", ins); /* ownership transferred */
		json_object_object_add(o, "lp", lp_json(r, 0, 0));
		json_object_object_add(o, "has_pending_inspection", json_object_new_boolean(ins != NULL));
		resp_json(req, 200, o);
	}
	PQclear(r);
}
