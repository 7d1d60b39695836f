/* router.h: a static table of (method, path pattern, handler, access rule). */
#ifndef SCANQA_ROUTER_H
#define SCANQA_ROUTER_H

#include "request.h"

#define ROUTE_MAX_PARAMS 4

/* Path parameters, percent-decoded. A parameter that contains NUL, '/' after decoding,
 * or is longer than 256 bytes makes the router answer 400 before the handler runs. */
struct route_params {
	int n;
	char *v[ROUTE_MAX_PARAMS];
};

typedef void (*handler_fn)(struct request *req, const struct route_params *params);

enum route_access {
	ACCESS_PUBLIC = 0,   /* no token needed */
	ACCESS_USER,         /* any active user with a valid token */
	ACCESS_SCANNER,      /* a scanner role, qa_role_scans() in the SQL; else 403 */
};

struct route {
	const char *method;
	const char *pattern;  /* literal segments and "{name}" segments */
	handler_fn handler;
	enum route_access access;
	const char *name;     /* short name for logs and counters */
};

/* Routes one request: 404/405/413/400, the bearer token's syntax (401), 415, then the
 * handler, whose statement lets PostgreSQL judge the credential. Sends exactly one
 * response. */
void router_dispatch(struct request *req);

/* The route table, for the status page. */
extern const struct route routes[];
extern const int n_routes;

/* Endpoints, as counted on the status page: route i is endpoint i, then come
 * "not_found", "method_not_allowed" and "other". router_endpoint() returns the index
 * of a route name (the first route of that name), or that of "other". */
int router_endpoint(const char *route_name);
int router_n_endpoints(void);
const char *router_endpoint_name(int i);

#endif
