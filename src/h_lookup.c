/* h_lookup.c: GET /api/warehouse/license-plates/barcode/{barcode} and
 * GET /api/quality/inspections/by-lp/{lpId}, the look-ups a scanner makes before a
 * quick inspection, and GET /api/quality/inspections/open, the listing from which
 * the scanner app keeps its offline copy of them. Each is one statement, credential
 * check included (sql/008_credential_in_database.sql), on indexes that match it
 * ((org_id, barcode) unique, open inspections by lp_id, inspections by (org_id,
 * changed_at, id)), and each needs a scanner role, like the scanner API they feed. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "barcode.h"
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

static struct db_stmt st_open = {
	"open_inspections",
	/* The outer row gives the refresh point even when the page is empty. */
	"SELECT h.now_us, o.* FROM (SELECT (extract(epoch FROM now()) * 1000000)::bigint) h(now_us)"
	" LEFT JOIN LATERAL api_open_inspections(p_token_sha256 => $1, p_since => $2, p_after_us => $3,"
	" p_after_id => $4, p_limit => $5) o ON true",
	5, 0
};
/* st_open's columns: now_us, the LP's six, the inspection's five, changed_us. */
enum { OP_NOW_US, OP_LP, OP_INSPECTION = OP_LP + 6, OP_CHANGED_US = OP_INSPECTION + 5, OP_NCOLS };

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

/* ---- the offline copy's listing ------------------------------------------------ */

#define OPEN_LIMIT_DEFAULT 500
#define OPEN_LIMIT_MAX 1000
/* How far before the reader's transaction start refresh_since points: longer than
 * any write transaction of an inspection (see sql/005_open_inspections.sql). */
#define OPEN_REFRESH_OVERLAP_US (60LL * 1000000)

/* Parses a cursor "<changed_us>_<uuid>" as this handler writes it into us and id
 * (lowercased). Returns false when it is anything else. */
static bool parse_cursor(const char *s, char us[24], char id[UUID_STR])
{
	const char *sep = strchr(s, '_');
	size_t n = sep ? (size_t)(sep - s) : 0;
	if (n == 0 || n > 19)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	if (!zod_uuid(sep + 1))
		return false;
	memcpy(us, s, n);
	us[n] = '\0';
	snprintf(id, UUID_STR, "%s", sep + 1);
	for (char *c = id; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	return true;
}

/* Parses limit: a decimal integer 1..OPEN_LIMIT_MAX without sign or spaces. */
static bool parse_limit(const char *s, int *limit)
{
	long v = 0;
	if (!*s || strlen(s) > 4)
		return false;
	for (const char *c = s; *c; c++) {
		if (*c < '0' || *c > '9')
			return false;
		v = v * 10 + (*c - '0');
	}
	if (v < 1 || v > OPEN_LIMIT_MAX)
		return false;
	*limit = (int)v;
	return true;
}

void h_open_inspections(struct request *req, const struct route_params *p)
{
	(void)p;
	struct verrors e;
	bool bad;
	char after_us[24] = "", after_id[UUID_STR] = "", limit_s[8], cursor[64], iso[32];
	int64_t since_us = 0;
	int limit = OPEN_LIMIT_DEFAULT;
	char *since = NULL, *after = NULL, *limit_v = NULL;
	PGresult *r = NULL;

	verrors_init(&e);
	since = request_query_value(req, "since", 64, &bad);
	if (bad || (since && !zod_datetime(since, &since_us)))
		verrors_add(&e, "since", "Invalid datetime");
	after = request_query_value(req, "after", 64, &bad);
	if (bad || (after && !parse_cursor(after, after_us, after_id)))
		verrors_add(&e, "after", "Invalid cursor");
	limit_v = request_query_value(req, "limit", 16, &bad);
	if (bad || (limit_v && !parse_limit(limit_v, &limit)))
		verrors_add(&e, "limit", "Expected an integer from 1 to %d", OPEN_LIMIT_MAX);
	if (verrors_any(&e)) {
		resp_json(req, 400, verrors_response(&e));
		goto out;
	}

	/* One row more than the page, to know whether another page follows. */
	snprintf(limit_s, sizeof limit_s, "%d", limit + 1);
	const char *params[5] = { NULL, since, after ? after_us : NULL,
				  after ? after_id : NULL, limit_s };
	r = endpoint_exec(req, &st_open, params, true);
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQnfields(r) != OP_NCOLS || PQntuples(r) < 1) {
		respond_db_failure(req, r, "Failed to list open inspections");
		goto out;
	}

	struct json_object *o = json_object_new_object();
	struct json_object *list = json_object_new_array();
	int rows = PQgetisnull(r, 0, OP_LP) ? 0 : PQntuples(r);
	int shown = rows > limit ? limit : rows;
	for (int i = 0; i < shown; i++) {
		struct json_object *ins = inspection_json(r, i, OP_INSPECTION, PQgetvalue(r, i, OP_LP));
		json_object_object_add(ins, "changed_at", col_time(r, i, OP_CHANGED_US));
		json_object_object_add(ins, "lp", lp_json(r, i, OP_LP));
		json_object_array_add(list, ins); /* ownership transferred */
	}
	json_object_object_add(o, "inspections", list);
	if (rows > limit) {
		snprintf(cursor, sizeof cursor, "%s_%s", PQgetvalue(r, shown - 1, OP_CHANGED_US),
			 PQgetvalue(r, shown - 1, OP_INSPECTION));
		json_object_object_add(o, "next_cursor", json_object_new_string(cursor));
	} else {
		json_object_object_add(o, "next_cursor", NULL);
	}
	iso8601_ms(strtoll(PQgetvalue(r, 0, OP_NOW_US), NULL, 10) - OPEN_REFRESH_OVERLAP_US, iso);
	json_object_object_add(o, "refresh_since", json_object_new_string(iso));
	resp_json(req, 200, o);
out:
	verrors_free(&e);
	free(since);
	free(after);
	free(limit_v);
	PQclear(r);
}
