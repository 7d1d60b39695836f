/* router.c: the route table and dispatch, in the order a request is checked: 404
 * (or 308 to the canonical path), OPTIONS, 405, 413, a body that does not match its
 * Content-Length (400), path parameters, the bearer token's syntax (401; PostgreSQL judges the
 * credential, 401/403, in the handler's statement), the body's coding and type (415),
 * then the handler. HEAD is served as GET without the body (RFC 9110 section 9.3.2).
 * Every request leaves here with exactly one response. */
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
/* Longest Location (path and query) a 308 redirects to; a longer one is answered 404. */
#define LOCATION_MAX 900

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
 * malformed, too long, or decodes to NUL or invalid UTF-8. An encoded "/" is data
 * (Code 128 barcodes contain it: PAL%2F2025%2F0001). */
static char *decode_segment(const char *seg, size_t len)
{
	size_t o;
	char *out;

	if (len > PARAM_MAX_BYTES * 3)
		return NULL;
	out = percent_decode(seg, len, false, &o);
	if (!out)
		return NULL;
	if (o == 0 || o > PARAM_MAX_BYTES || !utf8_valid(out, o)) {
		free(out);
		return NULL;
	}
	return out;
}

enum match { MATCH_NO, MATCH_YES, MATCH_BAD_PARAM };

static void free_params(struct route_params *params);

/* Matches path against pattern segment by segment. Only a path of the pattern's
 * shape matches; then each parameter is decoded, and one that cannot be gives
 * MATCH_BAD_PARAM (so /api/v1/scan-sessions/%FF/foo/bar is no match, a 404). On
 * MATCH_YES params holds decoded copies. */
static enum match match_route(const char *pattern, const char *path, struct route_params *params)
{
	const char *p = pattern, *s = path;
	const char *seg[ROUTE_MAX_PARAMS];
	size_t seglen[ROUTE_MAX_PARAMS];
	int n = 0;

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
			if (slen == 0 || n == ROUTE_MAX_PARAMS)
				return MATCH_NO;
			seg[n] = s;
			seglen[n++] = slen;
		} else if (plen != slen || memcmp(p, s, plen) != 0) {
			return MATCH_NO;
		}
		p += plen;
		s += slen;
	}
	if (*p != '\0' || *s != '\0')
		return MATCH_NO;
	for (int i = 0; i < n; i++) {
		char *v = decode_segment(seg[i], seglen[i]);
		if (!v) {
			free_params(params);
			return MATCH_BAD_PARAM;
		}
		params->v[params->n++] = v;
	}
	return MATCH_YES;
}

static void free_params(struct route_params *params)
{
	for (int i = 0; i < params->n; i++)
		free(params->v[i]);
	params->n = 0;
}

/* The reference reads every body with request.json(), whatever its Content-Type.
 * We take JSON as application/json, and also as text/plain or with no Content-Type,
 * which XMLHttpRequest.send(string) and fetch() with a string body send; a form,
 * multipart or any other type is refused (415). Parameters (charset) are ignored. */
static bool is_json_content_type(const char *ct)
{
	static const char *const types[] = { "application/json", "text/plain" };

	if (!ct)
		return true;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	if (*ct == '\0')
		return true;
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
		size_t n = strlen(types[i]);
		if (strncasecmp(ct, types[i], n) == 0 &&
		    (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t'))
			return true;
	}
	return false;
}

/* True when the body carries no content coding (none, or "identity"). */
static bool is_identity_coding(const char *ce)
{
	if (!ce)
		return true;
	while (*ce == ' ' || *ce == '\t')
		ce++;
	size_t n = strlen(ce);
	while (n > 0 && (ce[n - 1] == ' ' || ce[n - 1] == '\t'))
		n--;
	return n == 0 || (n == 8 && strncasecmp(ce, "identity", 8) == 0);
}

/* Appends method to the comma-separated list allow (of size len) unless it is there. */
static void allow_add(char *allow, size_t len, const char *method)
{
	size_t al = strlen(allow), ml = strlen(method);

	for (const char *p = allow; (p = strstr(p, method)); p += ml)
		if ((p == allow || p[-1] == ' ') && (p[ml] == ',' || p[ml] == '\0'))
			return;
	snprintf(allow + al, len - al, "%s%s", al ? ", " : "", method);
}

/* The path with runs of "/" made one and a trailing "/" dropped, as the reference's
 * router redirects them; NULL when that is the path itself, out of memory, or too
 * long for a Location header. The caller frees it. */
static char *canonical_path(const char *path)
{
	size_t len = strlen(path), o = 0;
	char *c;

	if (len == 0 || len > LOCATION_MAX || !(c = malloc(len + 1)))
		return NULL;
	for (size_t i = 0; i < len; i++)
		if (path[i] != '/' || o == 0 || c[o - 1] != '/')
			c[o++] = path[i];
	if (o > 1 && c[o - 1] == '/')
		o--;
	c[o] = '\0';
	if (o == len) {
		free(c);
		return NULL;
	}
	return c;
}

/* Looks path up in the table for method (HEAD looks up GET). *found is the route of
 * that method, if any; allow collects the methods the path has (with HEAD next to
 * GET, and OPTIONS). Returns MATCH_NO when no route has this path. */
static enum match lookup(const char *method, const char *path, const struct route **found,
			 struct route_params *params, char *allow, size_t allow_len)
{
	const char *want = strcmp(method, "HEAD") == 0 ? "GET" : method;
	enum match result = MATCH_NO;

	*found = NULL;
	allow[0] = '\0';
	for (int i = 0; i < n_routes; i++) {
		struct route_params tmp = { 0 };
		enum match m = match_route(routes[i].pattern, path, &tmp);
		if (m == MATCH_NO)
			continue;
		allow_add(allow, allow_len, routes[i].method);
		if (strcmp(routes[i].method, "GET") == 0)
			allow_add(allow, allow_len, "HEAD");
		if (*found || strcmp(routes[i].method, want) != 0) {
			free_params(&tmp);
			if (result == MATCH_NO)
				result = m;
			continue;
		}
		*found = &routes[i];
		*params = tmp;
		result = m;
	}
	if (result != MATCH_NO)
		allow_add(allow, allow_len, "OPTIONS");
	return result;
}

void router_dispatch(struct request *req)
{
	const struct route *found = NULL;
	struct route_params params = { 0 };
	char allow[128];
	enum match m = lookup(req->method, req->path, &found, &params, allow, sizeof allow);

	if (m == MATCH_NO) {
		const struct route *other;
		struct route_params unused = { 0 };
		char other_allow[128];
		char *canon = canonical_path(req->path);

		char location[LOCATION_MAX + 1];
		int n = canon ? snprintf(location, sizeof location, "%s%s%s", canon,
					 req->query[0] ? "?" : "", req->query) : -1;

		if (n > 0 && (size_t)n < sizeof location &&
		    lookup(req->method, canon, &other, &unused, other_allow, sizeof other_allow) != MATCH_NO) {
			/* 308 keeps the method and the body (RFC 9110 section 15.4.9). */
			struct json_object *o = json_object_new_object();
			json_object_object_add(o, "location", json_object_new_string(location));
			req->route_name = "other";
			resp_header(req, "Location", location);
			resp_json(req, 308, o);
		} else {
			req->route_name = "not_found";
			resp_error(req, 404, "Not found");
		}
		free_params(&unused);
		free(canon);
		return;
	}
	if (strcmp(req->method, "OPTIONS") == 0) {
		/* Any route's methods, before authentication: nothing is disclosed that a 405
		 * would not tell. */
		req->route_name = found ? found->name : "other";
		resp_header(req, "Allow", allow);
		resp_empty(req, 204);
		goto out;
	}
	if (!found) {
		req->route_name = "method_not_allowed";
		resp_header(req, "Allow", allow);
		resp_error(req, 405, "Method not allowed");
		goto out;
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
	if (m == MATCH_BAD_PARAM) {
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
	if (req->body_len > 0 && !is_identity_coding(request_param(req, "HTTP_CONTENT_ENCODING"))) {
		/* RFC 9110 section 15.5.16: name the coding we accept. */
		resp_header(req, "Accept-Encoding", "identity");
		resp_error(req, 415, "Content-Encoding is not supported: send the body uncompressed");
		goto out;
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
