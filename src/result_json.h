/* result_json.h: columns of a PostgreSQL result as JSON values, and the spec's "lp"
 * and "inspection" objects that several endpoints answer with. */
#ifndef SCANQA_RESULT_JSON_H
#define SCANQA_RESULT_JSON_H

#include <stdint.h>
#include <json-c/json.h>
#include <libpq-fe.h>

/* The column as a decimal integer (0 when NULL or not a number). */
int64_t col_i64(const PGresult *r, int row, int col);
/* The column as a JSON string, or NULL (JSON null) when it is SQL NULL. */
struct json_object *col_str(const PGresult *r, int row, int col);
/* A column of epoch microseconds as ISO 8601 UTC with milliseconds, or NULL. */
struct json_object *col_time(const PGresult *r, int row, int col);
/* The spec's "lp" object from six columns of r starting at col: id, barcode,
 * product_id, batch_number, quantity (text), qa_status. */
struct json_object *lp_json(const PGresult *r, int row, int col);
/* The spec's "inspection" object from five columns starting at col: id,
 * inspection_number, status, result, created_at (epoch microseconds); NULL (JSON
 * null) when the id column is NULL. */
struct json_object *inspection_json(const PGresult *r, int row, int col, const char *lp_id);

#endif
