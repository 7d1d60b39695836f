/* sync_input.h: the spec's syncOfflineSchema / offlineActionSchema for a batch of
 * offline actions, and the payload schema of a "test_result" action. */
#ifndef SCANQA_SYNC_INPUT_H
#define SCANQA_SYNC_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#include "validate.h"

#define SYNC_MAX_ACTIONS 100

enum sync_action_type {
	SYNC_QUICK_INSPECTION,
	SYNC_TEST_RESULT,
};

/* One validated action. Every pointer is borrowed from the request's json tree. */
struct sync_action {
	size_t index;                 /* position in the request's "actions" array */
	const char *id;               /* a UUID as Zod accepts it, as sent */
	enum sync_action_type type;
	const char *type_name;        /* "quick_inspection" or "test_result" */
	struct json_object *payload;  /* a JSON object (z.record(z.any())) */
	const char *timestamp;        /* as sent */
	int64_t local_us;             /* timestamp in microseconds since the Unix epoch */
};

struct sync_batch {
	size_t n;
	/* oldest first; equal timestamps keep array order */
	struct sync_action actions[SYNC_MAX_ACTIONS];
};

/* Validates body against syncOfflineSchema: {actions: 1..100 × {id: uuid, type:
 * enum, payload: object, timestamp: datetime}}. Every failing field goes to e, as
 * "actions.3.timestamp" etc., in Zod's order, except that an array longer than
 * 100 reports only its length (Zod would go on to check each element; a 1 MB body
 * could then yield a response of many megabytes). Returns true and fills out
 * when the whole batch is valid; out->n is 0 otherwise. */
bool sync_batch_parse(struct json_object *body, struct sync_batch *out, struct verrors *e);

/* The payload of a "test_result" action. */
struct test_result {
	const char *inspection_id;
	const char *test_name;
	const char *result;            /* "pass" or "fail" */
	bool has_measured;
	double measured_value;
	const char *unit;              /* NULL when absent */
	const char *notes;             /* NULL when absent */
	const char *scanner_device_id; /* NULL when absent */
};

/* Validates payload against testResultSchema (documented in the README):
 *   inspection_id:     z.string().uuid('Invalid inspection ID'),
 *   test_name:         z.string().min(1).max(100),
 *   result:            z.enum(['pass', 'fail']),
 *   measured_value:    z.number().optional(),
 *   unit:              z.string().max(20).optional(),
 *   notes:             z.string().max(2000).optional(),
 *   scanner_device_id: z.string().max(100).optional()
 * Errors go to e under prefix (e.g. "payload."); unknown keys are ignored.
 * Returns true when valid; strings in out stay owned by payload. */
bool test_result_parse(struct json_object *payload, const char *prefix, struct test_result *out,
		       struct verrors *e);

/* payload.scanner_device_id when it is a string (valid or not), else NULL: the
 * device the queue row names. */
const char *sync_device_id(struct json_object *payload);

#endif
