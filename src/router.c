/* router.c: the route table and dispatch: 404/405, 413, a body that does not match
 * its Content-Length (400), path parameters, the bearer token (401), 415, then the handler; PostgreSQL
 * judges the credential (401/403) in the handler's statement. Every request leaves here with exactly one response. */
#include "router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "handlers.h"
#include "log.h"
#include "scoreboard.h"
#include "validate.h"

const struct route routes[] = {
	{ "GET", "/api/v1/health", h_health, ACCESS_PUBLIC, "health" },
	/* Reached only through nginx's loopback-only location; see h_status.c. */
	{ "GET", "/scanqa/status", h_status, ACCESS_PUBLIC, "status" },
	{ "POST", "/api/v1/quality/scanner/quick-inspection", h_quick_inspection, ACCESS_SCANNER, "quick_inspection" },
	{ "POST", "/api/v1/quality/scanner/sync-offline", h_sync_offline, ACCESS_SCANNER, "sync_offline" },
	{ "POST", "/api/v1/scan-sessions", h_session_create, ACCESS_USER, "session_create" },
	{ "GET", "/api/v1/scan-sessions/{session_id}", h_session_get, ACCESS_USER, "session_get" },
	{ "PATCH", "/api/v1/scan-sessions/{session_id}", h_session_patch, ACCESS_USER, "session_patch" },
	{ "POST", "/api/v1/scan-sessions/{session_id}/scans", h_session_scan, ACCESS_USER, "session_scan" },
	{ "GET", "/api/warehouse/license-plates/barcode/{barcode}", h_lp_by_barcode, ACCESS_SCANNER, "lp_by_barcode" },
	{ "GET", "/api/quality/inspections/by-lp/{lpId}", h_inspection_by_lp, ACCESS_SCANNER, "inspection_by_lp" },
	{ "GET", "/api/quality/inspections/open", h_open_inspections, ACCESS_SCANNER, "open_inspections" },
};
const int n_routes = (int)(sizeof(routes) / sizeof(routes[0]));

#define PARAM_MAX_BYTES 256

/* The names router_dispatch() gives requests that match no route, then a catch-all. */
static const char *const pseudo_endpoints[] = { "not_found", "method_not_allowed", "other" };
#define N_PSEUDO ((int)(sizeof(pseudo_endpoints) / sizeof(pseudo_endpoints[0])))
_Static_assert(sizeof(routes) / sizeof(routes[0]) + N_PSEUDO <= SB_MAX_ENDPOINTS,
	       "more endpoints than the scoreboard counts: raise SB_MAX_ENDPOINTS");

int router_n_endpoints(void) { return n_routes + N_PSEUDO; }

const char *router_endpoint_name(int i)
{
	if (i >= 0 && i < n_routes)
		return routes[i].name;
	if (i >= n_routes && i < n_routes + N_PSEUDO)
		return pseudo_endpoints[i - n_routes];
	return "other";
}

int router_endpoint(const char *route_name)
{
	int n = router_n_endpoints();
	for (int i = 0; route_name && i < n - 1; i++)
		if (strcmp(router_endpoint_name(i), route_name) == 0)
			return i;
	return n - 1;
}

/* Percent-decodes seg[0..len) into a new string. Returns NULL when the segment is
 * malformed, too long, or decodes to NUL, "/" or invalid UTF-8. */
static char *decode_segment(const char *seg, size_t len)
{
	size_t o;
	char *out;

	if (len > PARAM_MAX_BYTES * 3)
		return NULL;
	out = percent_decode(seg, len, false, &o);
	if (!out)
		return NULL;
	if (o == 0 || o > PARAM_MAX_BYTES || memchr(out, '/', o) || !utf8_valid(out, o)) {
		free(out);
		return NULL;
	}
	return out;
}

enum match { MATCH_NO, MATCH_YES, MATCH_BAD_PARAM };

/* Matches path against pattern; on MATCH_YES params holds decoded copies. */
static enum match match_route(const char *pattern, const char *path, struct route_params *params)
{
	const char *p = pattern, *s = path;
	params->n = 0;
	while (*p && *s) {
		if (*p != '/' || *s != '/')
			return MATCH_NO;
		p++;
		s++;
		const char *pe = strchr(p, '/'), *se = strchr(s, '/');
		size_t plen = pe ? (size_t)(pe - p) : strlen(p);
		size_t slen = se ? (size_t)(se - s) : strlen(s);
		if (plen >= 2 && p[0] == '{' && p[plen - 1] == '}') {
			if (slen == 0 || params->n == ROUTE_MAX_PARAMS)
				return MATCH_NO;
			char *v = decode_segment(s, slen);
			if (!v)
				return MATCH_BAD_PARAM;
			params->v[params->n++] = v;
		} else if (plen != slen || memcmp(p, s, plen) != 0) {
			return MATCH_NO;
		}
		p += plen;
		s += slen;
	}
	return (*p == '\0' && *s == '\0') ? MATCH_YES : MATCH_NO;
}

static void free_params(struct route_params *params)
{
	for (int i = 0; i < params->n; i++)
		free(params->v[i]);
	params->n = 0;
}

static bool is_json_content_type(const char *ct)
{
	if (!ct)
		return false;
	size_t n = strlen("application/json");
	if (strncasecmp(ct, "application/json", n) != 0)
		return false;
	return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

void router_dispatch(struct request *req)
{
	const struct route *found = NULL;
	struct route_params params = { 0 };
	char allow[128] = "";
	bool bad_param = false;

	for (int i = 0; i < n_routes; i++) {
		struct route_params tmp = { 0 };
		enum match m = match_route(routes[i].pattern, req->path, &tmp);
		if (m == MATCH_NO) {
			free_params(&tmp);
			continue;
		}
		if (strcmp(routes[i].method, req->method) != 0) {
			if (!strstr(allow, routes[i].method)) {
				size_t al = strlen(allow);
				snprintf(allow + al, sizeof(allow) - al, "%s%s", al ? ", " : "", routes[i].method);
			}
			free_params(&tmp);
			continue;
		}
		if (m == MATCH_BAD_PARAM) {
			bad_param = true;
			found = &routes[i];
			free_params(&tmp);
			break;
		}
		found = &routes[i];
		params = tmp;
		break;
	}

	if (!found) {
		if (allow[0]) {
			req->route_name = "method_not_allowed";
			resp_header(req, "Allow", allow);
			resp_error(req, 405, "Method not allowed");
		} else {
			req->route_name = "not_found";
			resp_error(req, 404, "Not found");
		}
		return;
	}
	req->route_name = found->name;
	scoreboard_set_route(found->name);
	if (req->body_too_large) {
		resp_error(req, 413, "Request body too large");
		goto out;
	}
	if (req->body_length_mismatch) {
		resp_error(req, 400, "Content-Length does not match the request body");
		goto out;
	}
	if (bad_param) {
		resp_error(req, 400, "Invalid path parameter");
		goto out;
	}
	if (found->access != ACCESS_PUBLIC) {
		/* Only the header's syntax is judged here; PostgreSQL judges the token
		 * itself, the user and the role in the endpoint's statement, or first
		 * thing when C refuses the request before that (credential_check). */
		if (!auth_bearer(req)) {
			resp_error(req, 401, "Unauthorized");
			goto out;
		}
		req->credential_check = found->access == ACCESS_SCANNER ? auth_confirm_scanner
									: auth_confirm_user;
	}
	if (req->body_len > 0 && !is_json_content_type(req->content_type)) {
		resp_error(req, 415, "Content-Type must be application/json");
		goto out;
	}
	found->handler(req, &params);
	if (!req->responded) {
		log_error("handler %s sent no response", found->name);
		resp_error(req, 500, "Internal server error");
	}
out:
	free_params(&params);
}
