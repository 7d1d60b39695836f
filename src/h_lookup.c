/* h_lookup.c: GET /api/warehouse/license-plates/barcode/{barcode} and
 * GET /api/quality/inspections/by-lp/{lpId}, the look-ups a scanner makes before a
 * quick inspection. Both are one prepared call after authentication, on indexes
 * that match them ((org_id, barcode) unique, open inspections by lp_id), and both
 * need a scanner role, like the scanner API they feed.
 *
 * Also the JSON of an LP and of an inspection, shared with the scans of a session. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "barcode.h"
#include "db.h"
#include "handlers.h"
#include "jsonx.h"
#include "session.h"
#include "validate.h"

/* qa_lp_by_barcode's columns: the LP's six (see lp_json), then these. */
enum { BC_PENDING = 6, BC_CREATED_US, BC_UPDATED_US, BC_NCOLS };
/* qa_inspection_by_lp's columns: the LP's six, then the inspection's five. */
enum { BL_INSPECTION = 6, BL_NCOLS = BL_INSPECTION + 5 };

static struct db_stmt st_by_barcode = {
	"lp_by_barcode", "SELECT * FROM qa_lp_by_barcode($1, $2)", 2, 0
};
static struct db_stmt st_by_lp = {
	"inspection_by_lp", "SELECT * FROM qa_inspection_by_lp($1, $2)", 2, 0
};

static struct json_object *col_str(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : json_object_new_string(PQgetvalue(r, row, col));
}

static struct json_object *col_time(const PGresult *r, int row, int col)
{
	char iso[32];
	if (PQgetisnull(r, row, col))
		return NULL;
	iso8601_ms(strtoll(PQgetvalue(r, row, col), NULL, 10), iso);
	return json_object_new_string(iso);
}

struct json_object *lp_json(const PGresult *r, int row, int col)
{
	struct json_object *o = json_object_new_object();
	const char *qty = PQgetvalue(r, row, col + 4);

	json_object_object_add(o, "id", col_str(r, row, col));
	json_object_object_add(o, "barcode", col_str(r, row, col + 1));
	json_object_object_add(o, "product_id", col_str(r, row, col + 2));
	json_object_object_add(o, "batch_number", col_str(r, row, col + 3));
	/* numeric without trailing zeros (trim_scale), kept as PostgreSQL wrote it */
	json_object_object_add(o, "quantity", json_object_new_double_s(strtod(qty, NULL), qty));
	json_object_object_add(o, "qa_status", col_str(r, row, col + 5));
	return o;
}

struct json_object *inspection_json(const PGresult *r, int row, int col, const char *lp_id)
{
	if (PQgetisnull(r, row, col))
		return NULL;
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "id", col_str(r, row, col));
	json_object_object_add(o, "lp_id", json_object_new_string(lp_id));
	json_object_object_add(o, "inspection_number", col_str(r, row, col + 1));
	json_object_object_add(o, "status", col_str(r, row, col + 2));
	json_object_object_add(o, "result", col_str(r, row, col + 3));
	json_object_object_add(o, "created_at", col_time(r, row, col + 4));
	return o;
}

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
	char barcode[BARCODE_BYTES_MAX + 1];
	const char *problem = barcode_normalize(p->v[0], strlen(p->v[0]), barcode);
	PGresult *r;

	if (problem) {
		respond_invalid(req, "barcode", problem);
		return;
	}
	const char *params[2] = { req->caller.org_id, barcode };
	r = db_exec_read(&st_by_barcode, params);
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
	const char *params[2] = { req->caller.org_id, id };
	r = db_exec_read(&st_by_lp, params);
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
