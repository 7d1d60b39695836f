/* result_json.c: PostgreSQL result columns to JSON values; the "lp" and
 * "inspection" objects shared by the look-ups and the scans of a session. */
#include "result_json.h"

#include <stdlib.h>

#include "validate.h"

int64_t col_i64(const PGresult *r, int row, int col)
{
	return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

struct json_object *col_str(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : json_object_new_string(PQgetvalue(r, row, col));
}

struct json_object *col_time(const PGresult *r, int row, int col)
{
	char iso[32];
	if (PQgetisnull(r, row, col))
		return NULL;
	iso8601_ms(col_i64(r, row, col), iso);
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
