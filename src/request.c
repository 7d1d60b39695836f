/* request.c: FastCGI request I/O: params, the body read to its end with a limit, and
 * exactly one JSON response per request. */
#include "request.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jsonx.h"
#include "log.h"
#include "validate.h"

int64_t now_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t now_wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

const char *request_param(const struct request *req, const char *name)
{
	return FCGX_GetParam(name, req->fcgi->envp);
}

/* Accepts nginx's $request_id (hex) or any short token of safe characters; anything
 * else is replaced so a client cannot inject text into our logs. */
static void set_request_id(struct request *req)
{
	static unsigned long counter;
	const char *id = request_param(req, "REQUEST_ID");
	if (id && *id && strlen(id) < sizeof(req->request_id)) {
		bool ok = true;
		for (const char *p = id; *p; p++)
			if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
			      (*p >= 'A' && *p <= 'Z') || *p == '-' || *p == '_'))
				ok = false;
		if (ok) {
			memcpy(req->request_id, id, strlen(id) + 1);
			return;
		}
	}
	snprintf(req->request_id, sizeof(req->request_id), "%08x%08lx%06lx", (unsigned)getpid(),
		 (unsigned long)(now_wall_us() & 0xffffffffUL), ++counter & 0xffffffUL);
}

/* Reads stdin to EOF. Keeps at most limit bytes; the rest is read and discarded, so
 * the connection stays in step however large the body (libfcgi does not drain it). */
static void read_body(struct request *req, size_t limit)
{
	const char *cl = request_param(req, "CONTENT_LENGTH");
	size_t want = 4096, len = 0;
	unsigned long long declared = 0, received = 0;
	bool declared_ok = true;
	char scratch[16384];

	if (cl && *cl) {
		char *end;
		errno = 0;
		declared = strtoull(cl, &end, 10);
		/* strtoull would take "-1", " 5" or "+5"; only digits are a length. */
		declared_ok = *end == '\0' && errno == 0 && cl[0] >= '0' && cl[0] <= '9';
		if (declared_ok && declared > 0)
			want = declared > limit ? limit + 1 : (size_t)declared;
	}
	/* Room for limit + 1 bytes (one more than allowed shows the body is too large)
	 * and the NUL. */
	size_t cap = (want < limit + 1 ? want : limit + 1) + 1;
	char *buf = malloc(cap);
	if (!buf)
		req->body_too_large = true; /* out of memory: refuse rather than truncate */
	for (;;) {
		int n;
		if (req->body_too_large) {
			n = FCGX_GetStr(scratch, sizeof(scratch), req->fcgi->in);
			if (n <= 0)
				break;
			received += (unsigned long long)n;
			continue;
		}
		if (len == cap - 1) {
			size_t ncap = cap * 2 < limit + 2 ? cap * 2 : limit + 2;
			char *nb = ncap > cap ? realloc(buf, ncap) : NULL;
			if (!nb) {
				req->body_too_large = true;
				continue;
			}
			buf = nb;
			cap = ncap;
		}
		n = FCGX_GetStr(buf + len, (int)(cap - 1 - len), req->fcgi->in);
		if (n <= 0)
			break;
		len += (size_t)n;
		received += (unsigned long long)n;
		if (len > limit)
			req->body_too_large = true;
	}
	if (!declared_ok || declared != received)
		req->body_length_mismatch = true;
	if (req->body_too_large || len == 0) {
		free(buf);
		req->body = NULL;
		req->body_len = 0;
		return;
	}
	buf[len] = '\0';
	req->body = buf; /* ownership transferred */
	req->body_len = len;
}

void request_init(struct request *req, FCGX_Request *fcgi, size_t limit)
{
	memset(req, 0, sizeof(*req));
	req->fcgi = fcgi;
	req->start_us = now_mono_us();
	req->method = request_param(req, "REQUEST_METHOD");
	if (!req->method)
		req->method = "";
	req->head_only = strcmp(req->method, "HEAD") == 0;
	/* REQUEST_URI is the raw URI: the router percent-decodes each segment itself, so
	 * an encoded "/" or NUL can be refused instead of being normalised away. */
	const char *uri = request_param(req, "REQUEST_URI");
	if (!uri)
		uri = "";
	const char *q = strchr(uri, '?');
	if (q) {
		size_t n = (size_t)(q - uri);
		char *p = malloc(n + 1);
		if (p) {
			memcpy(p, uri, n);
			p[n] = '\0';
		}
		req->path = p ? p : "";
		req->path_owned = p != NULL;
		req->query = q + 1;
	} else {
		req->path = uri;
		req->query = "";
	}
	req->content_type = request_param(req, "CONTENT_TYPE");
	set_request_id(req);
	log_set_request_id(req->request_id);
	read_body(req, limit);
}

char *percent_decode(const char *s, size_t len, bool plus_is_space, size_t *out_len)
{
	char *out = malloc(len + 1);
	size_t o = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		int c = (unsigned char)s[i];
		if (c == '+' && plus_is_space) {
			c = ' ';
		} else if (c == '%') {
			int h = i + 2 < len ? hex_digit((unsigned char)s[i + 1]) : -1;
			int l = i + 2 < len ? hex_digit((unsigned char)s[i + 2]) : -1;
			if (h < 0 || l < 0)
				goto malformed;
			c = h * 16 + l;
			i += 2;
		}
		if (c == 0)
			goto malformed;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	*out_len = o;
	return out;
malformed:
	free(out);
	return NULL;
}

char *request_query_value(const struct request *req, const char *name, size_t max_bytes, bool *bad)
{
	size_t nlen = strlen(name);
	const char *q = req->query ? req->query : "";

	*bad = false;
	while (*q) {
		const char *end = strchr(q, '&');
		size_t len = end ? (size_t)(end - q) : strlen(q);
		if (len > nlen && strncmp(q, name, nlen) == 0 && q[nlen] == '=') {
			size_t olen;
			char *out = percent_decode(q + nlen + 1, len - nlen - 1, true, &olen);
			if (!out || olen > max_bytes || !utf8_valid(out, olen)) {
				free(out);
				*bad = true;
				return NULL;
			}
			return out;
		}
		q += len;
		if (*q == '&')
			q++;
	}
	return NULL;
}

void request_free(struct request *req)
{
	free(req->body);
	if (req->path_owned)
		free((char *)req->path);
	req->body = NULL;
	log_set_request_id(NULL);
}

void resp_header(struct request *req, const char *name, const char *value)
{
	int n = snprintf(req->extra_headers + req->extra_len, sizeof(req->extra_headers) - req->extra_len,
			 "%s: %s\r\n", name, value);
	if (n > 0 && req->extra_len + (size_t)n < sizeof(req->extra_headers))
		req->extra_len += (size_t)n;
	else
		req->extra_headers[req->extra_len] = '\0';
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 304: return "Not Modified";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 412: return "Precondition Failed";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Status";
	}
}

/* Sends the head and body of the one response of a request. Returns false (and sends
 * nothing) when a response was already sent. */
static bool send_response(struct request *req, int status, const char *content_type, const char *body,
			  size_t len)
{
	if (req->responded) {
		log_error("second response for one request dropped (status %d)", status);
		return false;
	}
	/* libfcgi's own FCGX_FPrintF knows no %zu: format with the C library instead. */
	char head[2048];
	int hl;
	if (!content_type) /* 204: neither Content-Type nor Content-Length (RFC 9110 8.6) */
		hl = snprintf(head, sizeof(head),
			      "Status: %d %s\r\n"
			      "Cache-Control: no-store\r\n"
			      "X-Request-Id: %s\r\n"
			      "%s\r\n",
			      status, reason(status), req->request_id, req->extra_headers);
	else
		hl = snprintf(head, sizeof(head),
			      "Status: %d %s\r\n"
			      "Content-Type: %s\r\n"
			      "Cache-Control: no-store\r\n"
			      "X-Request-Id: %s\r\n"
			      "%s"
			      "Content-Length: %zu\r\n\r\n",
			      status, reason(status), content_type, req->request_id, req->extra_headers, len);
	if (hl < 0 || (size_t)hl >= sizeof(head)) {
		hl = snprintf(head, sizeof(head), "Status: 500 Internal Server Error\r\n\r\n");
		len = 0;
	}
	FCGX_PutStr(head, hl, req->fcgi->out);
	/* HEAD: the same head, Content-Length included, and no body (RFC 9110 9.3.2). */
	if (!req->head_only && len > 0)
		FCGX_PutStr(body, (int)len, req->fcgi->out);
	req->responded = true;
	req->status = status;
	return true;
}

void resp_json(struct request *req, int status, struct json_object *obj)
{
	size_t len = 2;

	if (req->credential_check && status >= 400 && status < 500 && !req->responded) {
		bool (*check)(struct request *) = req->credential_check;
		req->credential_check = NULL;
		if (!check(req)) {
			json_object_put(obj);
			return;
		}
	}
	const char *body = obj ? jsonx_dump(obj, &len) : "{}";
	send_response(req, status, "application/json", body, len);
	json_object_put(obj);
}

void resp_text(struct request *req, int status, const char *content_type, const char *body, size_t len)
{
	send_response(req, status, content_type, body, len);
}

void resp_empty(struct request *req, int status)
{
	send_response(req, status, NULL, "", 0);
}

void resp_error(struct request *req, int status, const char *msg)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "error", json_object_new_string(msg));
	resp_json(req, status, o);
}
