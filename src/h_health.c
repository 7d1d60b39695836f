/* h_health.c: GET /api/v1/health, for load balancers and readiness checks. */
#include <string.h>

#include "db.h"
#include "handlers.h"

static struct db_stmt st_ping = { "health", "SELECT pg_is_in_recovery()", 0, 0 };

/* 200 {"status":"ok"} when this worker's connection answers and leads to a writable
 * server; else 503 + Retry-After: 1. A server in recovery (a hot standby, e.g. the
 * old primary after a failover) answers reads but no write, and every endpoint may
 * write: the load balancer must take this host out, and the worker reconnects. */
void h_health(struct request *req, const struct route_params *p)
{
	PGresult *r = db_exec_read(&st_ping, NULL);
	bool ok = r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
	if (ok && strcmp(PQgetvalue(r, 0, 0), "f") != 0) {
		db_drop_read_only();
		ok = false;
	}
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
