/* endpoint.c: the parts of an endpoint call that every handler shares: the JSON
 * body, the one statement with the caller's credential, and the SQLSTATE table. */
#include "endpoint.h"

#include <string.h>

#include "jsonx.h"
#include "log.h"
#include "validate.h"

/* Every SQLSTATE with its own answer. The SQ class is scanqa's: qa_credential()
 * (sql/008_credential_in_database.sql) raises it, in the order of checks of the
 * README (token, then user, then role). */
static const struct sqlstate_answer {
	const char *state;
	int status;
	const char *error;
	bool retry;      /* 503 + Retry-After: the same request may succeed later */
	bool busy;       /* counts as "busy" for the offline sync's per-action errors */
} answers[] = {
	{ "SQ401", 401, "Unauthorized", false, false },
	{ "SQ404", 401, "User not found", false, false },
	{ "SQ403", 403, "Scanner access requires QA Inspector role", false, false },
	{ "55P03", 503, "Resource is busy, retry the request", true, true },  /* lock_not_available */
	{ "57014", 503, "Resource is busy, retry the request", true, true },  /* query_canceled: statement_timeout */
	{ "40001", 503, "Resource is busy, retry the request", true, true },  /* serialization_failure */
	{ "40P01", 503, "Resource is busy, retry the request", true, true },  /* deadlock_detected */
};

static const struct sqlstate_answer *answer_for(const char *state)
{
	for (size_t i = 0; i < sizeof answers / sizeof answers[0]; i++)
		if (strcmp(answers[i].state, state) == 0)
			return &answers[i];
	return NULL;
}

bool sqlstate_is_busy(const char *state)
{
	const struct sqlstate_answer *a = answer_for(state);
	return a && a->busy;
}

/* Like the reference's request.json() (WHATWG "UTF-8 decode"), one leading UTF-8
 * byte-order mark is dropped first. */
struct json_object *parse_json_body(struct request *req)
{
	static const char bom[] = "\xEF\xBB\xBF";
	const char *err = NULL, *text = req->body ? req->body : "";
	size_t len = req->body_len;

	if (len >= 3 && memcmp(text, bom, 3) == 0) {
		text += 3;
		len -= 3;
	}
	struct json_object *body = jsonx_parse(text, len, &err);
	if (!body) {
		struct verrors e;
		verrors_init(&e);
		verrors_add(&e, "", "%s", err);
		resp_json(req, 400, verrors_response(&e));
		verrors_free(&e);
	}
	return body;
}

PGresult *endpoint_exec(struct request *req, struct db_stmt *st, const char **params, bool read)
{
	params[0] = req->token_sha256;
	PGresult *r = read ? db_exec_read(st, params) : db_exec(st, params);
	if (r)
		req->credential_check = NULL;
	return r;
}

void respond_db_failure(struct request *req, PGresult *r, const char *what)
{
	if (!r) {
		resp_header(req, "Retry-After", "1");
		resp_error(req, 503, "Service unavailable");
		return;
	}
	const struct sqlstate_answer *a = answer_for(db_sqlstate(r));
	if (a && a->status < 500) {
		resp_error(req, a->status, a->error);
		return;
	}
	if (a) {
		log_warn("%s: %s", what, PQresultErrorMessage(r));
		if (a->retry)
			resp_header(req, "Retry-After", "1");
		resp_error(req, a->status, a->error);
		return;
	}
	log_error("%s: %s", what, PQresultErrorMessage(r));
	resp_error(req, 500, what);
}
