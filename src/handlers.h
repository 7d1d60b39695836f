/* handlers.h: every endpoint handler, one file per endpoint group (h_*.c). */
#ifndef SCANQA_HANDLERS_H
#define SCANQA_HANDLERS_H

#include <libpq-fe.h>

#include "router.h"

/* Shared by handlers (h_quick_inspection.c). */
/* Parses the request body as strict JSON; on failure answers 400 and returns NULL. */
struct json_object *parse_json_body(struct request *req);
/* Answers a failed statement: 503 when the database is gone, busy or timed out (retry
 * is safe), otherwise 500 with the message what. r may be NULL (connection lost). */
void respond_db_failure(struct request *req, PGresult *r, const char *what);

/* h_health.c */
void h_health(struct request *req, const struct route_params *p);

/* h_status.c */
void h_status(struct request *req, const struct route_params *p);

/* h_quick_inspection.c */
void h_quick_inspection(struct request *req, const struct route_params *p);

/* h_sync_offline.c */
void h_sync_offline(struct request *req, const struct route_params *p);

/* h_scan_sessions.c */
void h_session_create(struct request *req, const struct route_params *p);
void h_session_get(struct request *req, const struct route_params *p);
void h_session_patch(struct request *req, const struct route_params *p);
void h_session_scan(struct request *req, const struct route_params *p);

/* h_lookup.c */
void h_lp_by_barcode(struct request *req, const struct route_params *p);
void h_inspection_by_lp(struct request *req, const struct route_params *p);
void h_open_inspections(struct request *req, const struct route_params *p);
/* The spec's "lp" object from six columns of r starting at col: id, barcode,
 * product_id, batch_number, quantity (text), qa_status. */
struct json_object *lp_json(const PGresult *r, int row, int col);
/* The spec's "inspection" object from five columns starting at col: id,
 * inspection_number, status, result, created_at (epoch microseconds); NULL (JSON
 * null) when the id column is NULL. */
struct json_object *inspection_json(const PGresult *r, int row, int col, const char *lp_id);

#endif
