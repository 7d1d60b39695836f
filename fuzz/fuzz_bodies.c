/* fuzz_bodies.c: libFuzzer target for request bodies. Each input goes through
 * jsonx_parse() exactly as a request body does, and a tree that comes out goes
 * through every endpoint's body validator (the table below). Besides crashes and
 * sanitizer reports, it traps when a contract breaks:
 *   - jsonx_parse() returns a tree, or NULL with a message;
 *   - what it accepts, it can write out and read back as the same tree;
 *   - a validator says "valid" exactly when it reported no error, its outputs obey
 *     the schema, and its error response can be written out.
 * The raw bytes also go through the string checks that see client text directly
 * (UTF-8, UUID, datetime, barcodes, session ids, If-Match).
 *
 * Build and run with script/fuzz. A new endpoint with a body adds one line to
 * body_checks[]. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "inspection_input.h"
#include "jsonx.h"
#include "session.h"
#include "sync_input.h"
#include "validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken contract: stop here, so libFuzzer saves the input. */
#define REQUIRE(cond)                                                                     \
	do {                                                                              \
		if (!(cond)) {                                                            \
			fprintf(stderr, "fuzz_bodies: contract broken: %s (%s:%d)\n", #cond, \
				__FILE__, __LINE__);                                      \
			abort();                                                          \
		}                                                                         \
	} while (0)

/* ---------------------------------------------------------------- helpers */

static bool valid_text(const char *s)
{
	return s && utf8_valid(s, strlen(s));
}

static bool optional_text(const char *s, size_t max_utf16)
{
	return !s || (valid_text(s) && utf16_len(s, strlen(s)) <= max_utf16);
}

/* Every "Validation failed" response must serialise; the daemon sends it. */
static void check_error_response(struct verrors *e)
{
	struct json_object *resp = verrors_response(e);
	size_t len = 0;

	REQUIRE(resp != NULL);
	REQUIRE(jsonx_dump(resp, &len) != NULL && len > 0);
	json_object_put(resp);
}

/* ---------------------------------------------------------------- endpoints */

/* POST /api/v1/quality/scanner/quick-inspection, and the payload of an offline
 * quick_inspection action (prefix "payload."). */
static void check_quick_inspection(struct json_object *body)
{
	static const char *const prefixes[] = { "", "payload." };

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		struct quick_inspection qi;
		struct verrors e;

		verrors_init(&e);
		bool ok = quick_inspection_parse(body, prefixes[i], &qi, &e);
		REQUIRE(ok == !verrors_any(&e));
		if (ok) {
			REQUIRE(qi.inspection_id && zod_uuid(qi.inspection_id));
			REQUIRE(qi.result && (strcmp(qi.result, "pass") == 0 || strcmp(qi.result, "fail") == 0));
			REQUIRE(!qi.has_defects || (qi.defects_found >= 0 && qi.defects_found <= 1000));
			REQUIRE(optional_text(qi.result_notes, 2000));
			REQUIRE(optional_text(qi.scanner_device_id, 100));
			REQUIRE(optional_text(qi.scanner_location, 100));
		}
		check_error_response(&e);
		verrors_free(&e);
	}
}

/* A test_result payload (offline sync), checked on its own as the handler does. */
static void check_test_result_payload(struct json_object *payload)
{
	struct test_result tr;
	struct verrors e;

	verrors_init(&e);
	bool ok = test_result_parse(payload, "payload.", &tr, &e);
	REQUIRE(ok == !verrors_any(&e));
	if (ok) {
		REQUIRE(tr.inspection_id && zod_uuid(tr.inspection_id));
		REQUIRE(tr.test_name && valid_text(tr.test_name));
		size_t n = utf16_len(tr.test_name, strlen(tr.test_name));
		REQUIRE(n >= 1 && n <= 100);
		REQUIRE(tr.result && (strcmp(tr.result, "pass") == 0 || strcmp(tr.result, "fail") == 0));
		REQUIRE(optional_text(tr.unit, 20));
		REQUIRE(optional_text(tr.notes, 2000));
		REQUIRE(optional_text(tr.scanner_device_id, 100));
	}
	check_error_response(&e);
	verrors_free(&e);
	const char *device = sync_device_id(payload);
	REQUIRE(!device || valid_text(device));
}

/* POST /api/v1/quality/scanner/sync-offline: the batch, then each action's payload
 * by its type, as the handler goes through them. Any JSON object is also tried as a
 * lone payload of both types. */
static void check_sync_offline(struct json_object *body)
{
	struct sync_batch *batch = malloc(sizeof *batch);
	struct verrors e;

	if (!batch)
		return;
	verrors_init(&e);
	bool ok = sync_batch_parse(body, batch, &e);
	REQUIRE(ok == !verrors_any(&e));
	REQUIRE(ok || batch->n == 0);
	if (ok) {
		REQUIRE(batch->n >= 1 && batch->n <= SYNC_MAX_ACTIONS);
		for (size_t i = 0; i < batch->n; i++) {
			const struct sync_action *a = &batch->actions[i];
			int64_t us;

			REQUIRE(a->id && zod_uuid(a->id));
			REQUIRE(a->payload && json_object_is_type(a->payload, json_type_object));
			REQUIRE(a->timestamp && zod_datetime(a->timestamp, &us) && us == a->local_us);
			/* oldest first; equal times keep the array order */
			REQUIRE(i == 0 || batch->actions[i - 1].local_us < a->local_us ||
				(batch->actions[i - 1].local_us == a->local_us && batch->actions[i - 1].index < a->index));
			if (a->type == SYNC_TEST_RESULT) {
				check_test_result_payload(a->payload);
			} else {
				struct quick_inspection qi;
				struct verrors pe;

				verrors_init(&pe);
				REQUIRE(quick_inspection_parse(a->payload, "payload.", &qi, &pe) == !verrors_any(&pe));
				verrors_free(&pe);
			}
		}
	}
	check_error_response(&e);
	verrors_free(&e);
	free(batch);
	if (json_object_is_type(body, json_type_object))
		check_test_result_payload(body);
}

/* POST /api/v1/scan-sessions, PATCH /api/v1/scan-sessions/{id} and
 * POST /api/v1/scan-sessions/{id}/scans. */
static void check_scan_sessions(struct json_object *body)
{
	struct session_create c;
	struct session_patch pa;
	char barcode[BARCODE_BYTES_MAX + 1];
	struct verrors e;

	verrors_init(&e);
	bool ok = session_create_parse(body, &c, &e);
	REQUIRE(ok == !verrors_any(&e));
	if (ok) {
		REQUIRE(optional_text(c.location, SESSION_LOCATION_MAX));
		REQUIRE(optional_text(c.notes, SESSION_NOTES_MAX));
		REQUIRE(!c.has_expected || (c.expected_items >= 1 && c.expected_items <= INT32_MAX));
	}
	check_error_response(&e);
	verrors_free(&e);

	verrors_init(&e);
	ok = session_patch_parse(body, &pa, &e);
	REQUIRE(ok == !verrors_any(&e));
	if (ok) {
		REQUIRE(pa.status || pa.location || pa.notes || pa.has_items || pa.has_auto_commit);
		REQUIRE(!pa.status || strcmp(pa.status, "ACTIVE") == 0 || strcmp(pa.status, "PAUSED") == 0 ||
			strcmp(pa.status, "COMPLETED") == 0 || strcmp(pa.status, "CANCELLED") == 0);
		REQUIRE(optional_text(pa.location, SESSION_LOCATION_MAX));
		REQUIRE(optional_text(pa.notes, SESSION_NOTES_MAX));
		REQUIRE(!pa.has_items || (pa.items_scanned >= 0 && pa.items_scanned <= INT32_MAX));
	}
	check_error_response(&e);
	verrors_free(&e);

	verrors_init(&e);
	ok = scan_parse(body, barcode, &e);
	REQUIRE(ok == !verrors_any(&e));
	REQUIRE(!ok || barcode_problem(barcode, strlen(barcode)) == NULL);
	check_error_response(&e);
	verrors_free(&e);
}

struct body_check {
	const char *name;
	void (*check)(struct json_object *body);
};

static const struct body_check body_checks[] = {
	{ "quick_inspection", check_quick_inspection },
	{ "sync_offline", check_sync_offline },
	{ "scan_sessions", check_scan_sessions },
};

/* ---------------------------------------------------------------- raw strings */

static void check_raw_strings(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	int64_t us;

	if (!s)
		return;
	memcpy(s, data, size);
	s[size] = '\0';
	(void)utf8_valid((const char *)data, size);
	(void)utf16_len((const char *)data, size);
	(void)zod_uuid(s);
	/* Path parameters and headers the session endpoints read as text. */
	{
		int32_t id;
		char versions[IF_MATCH_ARRAY_LEN];
		const char *problem = barcode_problem((const char *)data, size);
		char barcode[BARCODE_BYTES_MAX + 1];

		REQUIRE(!problem || *problem);
		/* A normalised barcode is a barcode, and normalising it again changes nothing. */
		if (!barcode_normalize((const char *)data, size, barcode)) {
			char again[BARCODE_BYTES_MAX + 1];
			REQUIRE(barcode_problem(barcode, strlen(barcode)) == NULL);
			/* Not when the rest starts with another AIM identifier: "]C1]C1x" gives
			 * "]C1x", then "x"; "]s1]s1" gives "]s1", then nothing (an error). */
			if (barcode[0] != ']') {
				REQUIRE(barcode_normalize(barcode, strlen(barcode), again) == NULL);
				REQUIRE(strcmp(again, barcode) == 0);
			}
		}
		if (session_parse_id(s, &id) == SESSION_ID_OK)
			REQUIRE(id >= 1);
		if (session_if_match(s, versions) == IF_MATCH_LIST)
			REQUIRE(versions[0] == '{' && memchr(versions, '}', sizeof versions) != NULL);
	}
	if (zod_datetime(s, &us)) {
		/* What we print as completed_at parses back to the same millisecond. */
		char iso[32];
		int64_t back;
		int64_t ms = us >= 0 ? us / 1000 : -((-us + 999) / 1000);

		iso8601_ms(us, iso);
		REQUIRE(zod_datetime(iso, &back));
		REQUIRE(back == ms * 1000);
	}
	free(s);
}

/* ---------------------------------------------------------------- entry point */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *err = NULL;
	struct json_object *root;

	check_raw_strings(data, size);

	/* The fuzzer's buffer has no NUL after it: an over-read is an ASan report. */
	root = jsonx_parse((const char *)data, size, &err);
	if (!root) {
		REQUIRE(err != NULL && strncmp(err, "Invalid JSON: ", 14) == 0);
		return 0;
	}
	REQUIRE(err == NULL);

	size_t len = 0;
	const char *text = jsonx_dump(root, &len);
	REQUIRE(text != NULL);
	struct json_object *again = jsonx_parse(text, len, &err);
	REQUIRE(again != NULL);
	REQUIRE(json_object_equal(root, again));
	json_object_put(again);

	for (size_t i = 0; i < sizeof(body_checks) / sizeof(body_checks[0]); i++)
		body_checks[i].check(root);
	json_object_put(root);
	return 0;
}
