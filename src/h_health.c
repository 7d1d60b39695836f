/* h_health.c: GET /api/v1/health, for load balancers and readiness checks. */
#include "db.h"
#include "handlers.h"

static struct db_stmt st_ping = { "health", "SELECT 1", 0, 0 };

/* 200 {"status":"ok"} when this worker can reach the database, else 503. */
void h_health(struct request *req, const struct route_params *p)
{
	PGresult *r = db_exec_read(&st_ping, NULL);
	bool ok = r && PQresultStatus(r) == PGRES_TUPLES_OK;
	PQclear(r);
	if (!ok) {
		resp_header(req, "Retry-After", "1");
		resp_error(req, 503, "Service unavailable");
		return;
	}
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "status", json_object_new_string("ok"));
	resp_json(req, 200, o);
}
