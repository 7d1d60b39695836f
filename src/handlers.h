/* handlers.h: every endpoint handler, one file per endpoint group (h_*.c). */
#ifndef SCANQA_HANDLERS_H
#define SCANQA_HANDLERS_H

#include <libpq-fe.h>

#include "endpoint.h"
#include "router.h"


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

#endif
