/* h_sync_offline.c: POST /api/v1/quality/scanner/sync-offline.
 *
 * The batch is validated as a whole (400 and nothing done when it is invalid); each
 * action's payload is validated by its type's schema. Then the whole batch, oldest
 * action first, is one statement, api_sync_offline(): one round trip and one
 * transaction. Inside it each action's work runs in its own sub-transaction, with
 * its scanner_offline_queue row, so a failing action never undoes another.
 *
 * The response never claims an action that did not commit: it is built from the
 * statement's rows, which exist only when the transaction committed. When the
 * connection is lost during the statement the outcome of the whole batch is
 * unknown: 503 + Retry-After, and resending is safe, because an action id the
 * organization already synced is a 'duplicate' and is not applied again. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "handlers.h"
#include "inspection_input.h"
#include "jsonx.h"
#include "log.h"
#include "sync_input.h"
#include "validate.h"

static struct db_stmt st_sync = {
	"sync_offline",
	"SELECT action_id, sync_status, error, detail "
	"FROM api_sync_offline(p_token_sha256 => $1, p_actions => $2)",
	2, 0
};

/* api_sync_offline's columns */
enum { SY_ACTION_ID, SY_STATUS, SY_ERROR, SY_DETAIL, SY_NCOLS };

/* Cuts a string that snprintf() may have truncated inside a UTF-8 sequence back to
 * whole characters: it goes into JSON and into a PostgreSQL text parameter. */
static void utf8_trim(char *s)
{
	size_t len = strlen(s);

	while (len > 0 && !utf8_valid(s, len))
		s[--len] = '\0';
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

static void add_str(struct json_object *o, const char *key, const char *v)
{
	json_object_object_add(o, key, v ? json_object_new_string(v) : NULL);
}

/* The payload's fields for api_sync_offline, or "reject" with the first schema
 * error: a payload that fails its schema fails that action only. */
static void add_payload(struct json_object *o, const struct sync_action *a)
{
	struct verrors e;
	char num[40], first[400], reject[512];
	bool ok;

	verrors_init(&e);
	if (a->type == SYNC_TEST_RESULT) {
		struct test_result tr;
		ok = test_result_parse(a->payload, "payload.", &tr, &e);
		if (ok) {
			add_str(o, "inspection_id", tr.inspection_id);
			add_str(o, "test_name", tr.test_name);
			add_str(o, "result", tr.result);
			/* 17 significant digits give back the same double. */
			snprintf(num, sizeof num, "%.17g", tr.measured_value);
			add_str(o, "measured_value", tr.has_measured ? num : NULL);
			add_str(o, "unit", tr.unit);
			add_str(o, "notes", tr.notes);
		}
	} else {
		struct quick_inspection qi;
		ok = quick_inspection_parse(a->payload, "payload.", &qi, &e);
		if (ok) {
			add_str(o, "inspection_id", qi.inspection_id);
			add_str(o, "result", qi.result);
			add_str(o, "notes", qi.result_notes);
			snprintf(num, sizeof num, "%" PRId64, qi.defects_found);
			add_str(o, "defects", qi.has_defects ? num : NULL);
			add_str(o, "location", qi.scanner_location);
		}
	}
	if (!ok) {
		snprintf(reject, sizeof reject, "Validation failed: %s", verrors_first(&e, first, sizeof first));
		utf8_trim(reject);
		add_str(o, "reject", reject);
	}
	verrors_free(&e);
}

/* One element of api_sync_offline's p_actions (see its comment in the SQL). */
static struct json_object *action_element(const struct sync_action *a)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "action", stored_action(a));
	add_str(o, "device", sync_device_id(a->payload));
	json_object_object_add(o, "local_us", json_object_new_int64(a->local_us));
	add_payload(o, a);
	return o;
}

void h_sync_offline(struct request *req, const struct route_params *p)
{
	struct json_object *body = parse_json_body(req);
	struct json_object *actions = NULL, *errors = NULL;
	struct sync_batch *batch = NULL;
	struct verrors e;
	PGresult *r = NULL;
	int success = 0, failed = 0;

	(void)p;
	if (!body)
		return;
	verrors_init(&e);
	batch = malloc(sizeof *batch);
	actions = json_object_new_array();
	errors = json_object_new_array();
	if (!batch || !actions || !errors) {
		resp_error(req, 500, "Internal server error");
		goto out;
	}
	if (!sync_batch_parse(body, batch, &e)) {
		resp_json(req, 400, verrors_response(&e));
		goto out;
	}
	for (size_t i = 0; i < batch->n; i++)
		json_object_array_add(actions, action_element(&batch->actions[i])); /* ownership transferred */
	const char *json = jsonx_dump(actions, NULL);
	if (!json) {
		resp_error(req, 500, "Internal server error");
		goto out;
	}

	const char *params[2] = { NULL, json };
	r = endpoint_exec(req, &st_sync, params, false);
	if (!r) {
		/* Lost with the statement on its way or running: it committed or not. */
		log_warn("sync: database connection lost, the batch's outcome is unknown");
		resp_header(req, "Retry-After", "1");
		resp_error(req, 503, "Service unavailable");
		goto out;
	}
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQnfields(r) != SY_NCOLS ||
	    PQntuples(r) != (int)batch->n) {
		respond_db_failure(req, r, "Failed to sync offline actions");
		goto out;
	}
	for (size_t i = 0; i < batch->n; i++) {
		const struct sync_action *a = &batch->actions[i];
		const char *status = PQgetvalue(r, (int)i, SY_STATUS);

		if (!PQgetisnull(r, (int)i, SY_DETAIL))
			log_error("sync action %s: %s", a->id, PQgetvalue(r, (int)i, SY_DETAIL));
		if (strcmp(status, "synced") == 0 || strcmp(status, "duplicate") == 0) {
			success++;
			continue;
		}
		failed++;
		struct json_object *item = json_object_new_object();
		json_object_object_add(item, "action_id", json_object_new_string(a->id));
		add_str(item, "error", PQgetisnull(r, (int)i, SY_ERROR) ? "Failed to sync action"
								    : PQgetvalue(r, (int)i, SY_ERROR));
		json_object_array_add(errors, item); /* ownership transferred */
	}

	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "success", json_object_new_int(success));
	json_object_object_add(o, "failed", json_object_new_int(failed));
	json_object_object_add(o, "errors", errors); /* ownership transferred */
	errors = NULL;
	resp_json(req, 200, o);
out:
	PQclear(r);
	json_object_put(actions);
	json_object_put(errors);
	free(batch);
	verrors_free(&e);
	json_object_put(body);
}
