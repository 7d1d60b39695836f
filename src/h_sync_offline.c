/* h_sync_offline.c: POST /api/v1/quality/scanner/sync-offline.
 *
 * The batch is validated as a whole (400 and nothing done when it is invalid), then
 * its actions run oldest first, each as one call of a qa_sync_* SQL function: one
 * round trip and one transaction that applies the action and writes its
 * scanner_offline_queue row. A failing action never undoes another.
 *
 * The response never claims an action that did not commit. When the connection is
 * lost during a call, the outcome is unknown: the handler reconnects and asks the
 * database (qa_sync_record_failure with p_unless_synced), and reports "outcome
 * unknown" only when it cannot. Resending a batch is always safe: an action id the
 * organization already synced is a 'duplicate' and is not applied again. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "handlers.h"
#include "inspection_input.h"
#include "jsonx.h"
#include "log.h"
#include "sync_input.h"
#include "validate.h"

/* Actions not started within this time after the request began are answered "not
 * processed", so the answer reaches the client before nginx's fastcgi_read_timeout
 * (30 s), even when one more action takes a statement_timeout and a reconnect. */
#define SYNC_BUDGET_US (20 * INT64_C(1000000))
/* How long to try to reconnect after the connection was lost during an action. */
#define RECONNECT_WAIT_US (1500 * INT64_C(1000))
#define RECONNECT_POLL_NS (100 * 1000000L)

#define MSG_BUSY "Resource is busy, resend the batch"
#define MSG_NOT_SENT "Service unavailable: not processed, resend the batch"
#define MSG_NO_TIME "Timed out: not processed, resend the batch"
#define MSG_UNKNOWN "Service unavailable: outcome unknown, resend the batch"
#define MSG_LOST "Service unavailable: connection lost, not applied, resend the batch"

static struct db_stmt st_quick = {
	"sync_quick_inspection",
	"SELECT sync_status, error, detail "
	"FROM qa_sync_quick_inspection($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
	10, 0
};

static struct db_stmt st_test = {
	"sync_test_result",
	"SELECT sync_status, error, detail "
	"FROM qa_sync_test_result($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
	11, 0
};

static struct db_stmt st_fail = {
	"sync_record_failure",
	"SELECT qa_sync_record_failure($1, $2, $3, $4, $5, $6, $7)",
	7, 0
};

/* What became of one action. */
enum outcome {
	OUT_SUCCESS,  /* synced now, or earlier (duplicate) */
	OUT_FAILED,   /* known not applied */
	OUT_UNKNOWN,  /* sent, connection lost, could not find out */
	OUT_NOT_SENT, /* never reached the database */
};

/* Per action: its text parameters, built once. */
struct action_ctx {
	const struct sync_action *a;
	const char *json;      /* the stored action {id, type, payload, timestamp} */
	const char *device;    /* payload.scanner_device_id when a string */
	char local_us[24];
	char error[512];       /* the client's message when not OUT_SUCCESS */
};

/* Cuts a string that snprintf() may have truncated inside a UTF-8 sequence back to
 * whole characters: it goes into JSON and into a PostgreSQL text parameter. */
static void utf8_trim(char *s)
{
	size_t len = strlen(s);

	while (len > 0 && !utf8_valid(s, len))
		s[--len] = '\0';
}

static void sleep_poll(void)
{
	struct timespec ts = { 0, RECONNECT_POLL_NS };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* After a lost connection: tries to get a new one for a short while (db_ensure()
 * attempts at most one connect a second). */
static bool reconnect(void)
{
	int64_t until = now_mono_us() + RECONNECT_WAIT_US;

	for (;;) {
		if (db_ensure())
			return true;
		if (now_mono_us() >= until)
			return false;
		sleep_poll();
	}
}

/* Writes the 'failed' queue row of an action that was not applied. With
 * unless_synced (after a lost connection) it first asks whether the action is
 * synced by now. Returns the function's answer, "synced" or "failed", or NULL
 * when the database could not be asked. */
static const char *record_failure(struct request *req, struct action_ctx *c, const char *error,
				  bool unless_synced, char *buf, size_t len)
{
	const char *params[7] = {
		req->caller.org_id, req->caller.user_id, c->json, c->device, c->local_us, error,
		unless_synced ? "true" : "false",
	};
	PGresult *r = db_exec(&st_fail, params);
	const char *ret = NULL;

	if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
		snprintf(buf, len, "%s", PQgetvalue(r, 0, 0));
		ret = buf;
	} else {
		log_error("sync action %s: cannot record its failure (%s): %s", c->a->id, error,
			  r ? PQresultErrorMessage(r) : "connection lost");
	}
	PQclear(r);
	return ret;
}

/* The connection was lost while the action's call ran: it may or may not have
 * committed. Reconnects and lets the database settle it. */
static enum outcome settle_lost(struct request *req, struct action_ctx *c)
{
	char answer[16];
	const char *got;

	log_warn("sync action %s: database connection lost during the call", c->a->id);
	if (!reconnect()) {
		snprintf(c->error, sizeof c->error, "%s", MSG_UNKNOWN);
		return OUT_UNKNOWN;
	}
	got = record_failure(req, c, MSG_LOST, true, answer, sizeof answer);
	if (!got) {
		snprintf(c->error, sizeof c->error, "%s", MSG_UNKNOWN);
		return OUT_UNKNOWN;
	}
	if (strcmp(got, "synced") == 0)
		return OUT_SUCCESS;
	snprintf(c->error, sizeof c->error, "%s", MSG_LOST);
	return OUT_FAILED;
}

/* Runs the action's qa_sync_* call (params already validated) and interprets it. */
static enum outcome run_call(struct request *req, struct action_ctx *c, struct db_stmt *st,
			     const char *const *params, const char *what)
{
	char answer[16];
	enum outcome out;

	/* Knowing that nothing was sent keeps "not processed" apart from "unknown". */
	if (!db_ensure()) {
		log_warn("sync action %s: not processed, the database is unavailable", c->a->id);
		snprintf(c->error, sizeof c->error, "%s", MSG_NOT_SENT);
		return OUT_NOT_SENT;
	}
	PGresult *r = db_exec(st, params);
	if (!r)
		return settle_lost(req, c);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		/* The statement failed as a whole, so its transaction rolled back. */
		const char *state = db_sqlstate(r);
		const char *primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
		bool busy = strcmp(state, "55P03") == 0 || strcmp(state, "57014") == 0 ||
			    strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0;
		char queued[sizeof c->error + 256];

		log_error("sync action %s: %s: %s", c->a->id, what, PQresultErrorMessage(r));
		snprintf(c->error, sizeof c->error, "%s", busy ? MSG_BUSY : what);
		/* The queue row keeps the database's reason, as the SQL functions do. */
		snprintf(queued, sizeof queued, "%s (%s: %.200s", c->error, state, primary ? primary : "");
		utf8_trim(queued);
		strcat(queued, ")");
		PQclear(r);
		record_failure(req, c, queued, false, answer, sizeof answer);
		return OUT_FAILED;
	}
	const char *status = PQgetvalue(r, 0, 0);
	if (strcmp(status, "synced") == 0 || strcmp(status, "duplicate") == 0) {
		out = OUT_SUCCESS;
	} else {
		snprintf(c->error, sizeof c->error, "%s",
			 PQgetisnull(r, 0, 1) ? what : PQgetvalue(r, 0, 1));
		if (!PQgetisnull(r, 0, 2))
			log_error("sync action %s: %s: %s", c->a->id, what, PQgetvalue(r, 0, 2));
		out = OUT_FAILED;
	}
	PQclear(r);
	return out;
}

/* A payload that fails its schema: the action fails with the first error, and its
 * queue row is written (when the database is there). */
static enum outcome reject_payload(struct request *req, struct action_ctx *c, struct verrors *e)
{
	char first[400], answer[16];

	snprintf(c->error, sizeof c->error, "Validation failed: %s",
		 verrors_first(e, first, sizeof first));
	utf8_trim(c->error);
	if (db_ensure())
		record_failure(req, c, c->error, false, answer, sizeof answer);
	else
		log_warn("sync action %s: database unavailable, its rejection is not queued", c->a->id);
	return OUT_FAILED;
}

static enum outcome run_quick_inspection(struct request *req, struct action_ctx *c)
{
	struct quick_inspection qi;
	struct verrors e;
	char defects[24];
	enum outcome out;

	verrors_init(&e);
	if (!quick_inspection_parse(c->a->payload, "payload.", &qi, &e)) {
		out = reject_payload(req, c, &e);
		verrors_free(&e);
		return out;
	}
	verrors_free(&e);
	if (qi.has_defects)
		snprintf(defects, sizeof defects, "%" PRId64, qi.defects_found);
	const char *params[10] = {
		req->caller.org_id, req->caller.user_id, c->json, qi.scanner_device_id, c->local_us,
		qi.inspection_id, qi.result, qi.result_notes, qi.has_defects ? defects : NULL,
		qi.scanner_location,
	};
	return run_call(req, c, &st_quick, params, "Failed to update inspection");
}

static enum outcome run_test_result(struct request *req, struct action_ctx *c)
{
	struct test_result tr;
	struct verrors e;
	char measured[40];
	enum outcome out;

	verrors_init(&e);
	if (!test_result_parse(c->a->payload, "payload.", &tr, &e)) {
		out = reject_payload(req, c, &e);
		verrors_free(&e);
		return out;
	}
	verrors_free(&e);
	/* 17 significant digits give back the same double. */
	if (tr.has_measured)
		snprintf(measured, sizeof measured, "%.17g", tr.measured_value);
	const char *params[11] = {
		req->caller.org_id, req->caller.user_id, c->json, tr.scanner_device_id, c->local_us,
		tr.inspection_id, tr.test_name, tr.result, tr.has_measured ? measured : NULL, tr.unit,
		tr.notes,
	};
	return run_call(req, c, &st_test, params, "Failed to record test result");
}

/* The stored form of an action: exactly the schema's four keys, payload as sent. */
static struct json_object *stored_action(const struct sync_action *a)
{
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "id", json_object_new_string(a->id));
	json_object_object_add(o, "type", json_object_new_string(a->type_name));
	/* shared with the request's tree; only roots are put */
	json_object_object_add(o, "payload", json_object_get(a->payload));
	json_object_object_add(o, "timestamp", json_object_new_string(a->timestamp));
	return o;
}

void h_sync_offline(struct request *req, const struct route_params *p)
{
	struct json_object *body = parse_json_body(req);
	struct json_object *errors = NULL, *stored = NULL;
	struct sync_batch *batch = NULL;
	struct verrors e;
	int success = 0, failed = 0;
	bool any_sent = false;

	(void)p;
	if (!body)
		return;
	verrors_init(&e);
	batch = malloc(sizeof *batch);
	errors = json_object_new_array();
	if (!batch || !errors) {
		resp_error(req, 500, "Internal server error");
		goto out;
	}
	if (!sync_batch_parse(body, batch, &e)) {
		resp_json(req, 400, verrors_response(&e));
		goto out;
	}

	for (size_t i = 0; i < batch->n; i++) {
		struct action_ctx c = { .a = &batch->actions[i] };
		enum outcome out;

		json_object_put(stored);
		stored = stored_action(c.a);
		c.json = stored ? jsonx_dump(stored, NULL) : NULL;
		c.device = sync_device_id(c.a->payload);
		snprintf(c.local_us, sizeof c.local_us, "%" PRId64, c.a->local_us);

		if (!c.json) {
			snprintf(c.error, sizeof c.error, "Internal server error");
			out = OUT_FAILED;
		} else if (now_mono_us() - req->start_us > SYNC_BUDGET_US) {
			log_warn("sync action %s: not processed, the batch is out of time", c.a->id);
			snprintf(c.error, sizeof c.error, "%s", MSG_NO_TIME);
			out = OUT_NOT_SENT;
		} else if (c.a->type == SYNC_TEST_RESULT) {
			out = run_test_result(req, &c);
		} else {
			out = run_quick_inspection(req, &c);
		}

		if (out != OUT_NOT_SENT)
			any_sent = true;
		if (out == OUT_SUCCESS) {
			success++;
			continue;
		}
		failed++;
		struct json_object *item = json_object_new_object();
		json_object_object_add(item, "action_id", json_object_new_string(c.a->id));
		json_object_object_add(item, "error", json_object_new_string(c.error));
		json_object_array_add(errors, item); /* ownership transferred */
	}

	if (!any_sent) {
		/* Nothing reached the database: the batch as a whole can simply be resent. */
		resp_header(req, "Retry-After", "1");
		resp_error(req, 503, "Service unavailable");
		goto out;
	}
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "success", json_object_new_int(success));
	json_object_object_add(o, "failed", json_object_new_int(failed));
	json_object_object_add(o, "errors", errors); /* ownership transferred */
	errors = NULL;
	resp_json(req, 200, o);
out:
	json_object_put(stored);
	json_object_put(errors);
	free(batch);
	verrors_free(&e);
	json_object_put(body);
}
