/* sync_input.c: offline sync input: the batch schema and the test_result payload schema. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonx.h"
#include "sync_input.h"

static size_t error_count(const struct verrors *e)
{
	return e->details ? json_object_array_length(e->details) : 0;
}

/* z.record(z.any()): a JSON object; arrays and null are not records. */
static bool v_record(struct json_object *obj, const char *prefix, const char *key,
		     struct verrors *e, struct json_object **out)
{
	struct json_object *v = NULL;
	char field[64];

	*out = NULL;
	snprintf(field, sizeof field, "%s%s", prefix, key);
	if (!json_object_object_get_ex(obj, key, &v)) {
		verrors_add(e, field, "Required");
		return false;
	}
	if (!json_object_is_type(v, json_type_object)) {
		verrors_add(e, field, "Expected object, received %s", jsonx_type_name(v));
		return false;
	}
	*out = v;
	return true;
}

/* z.string().datetime() */
static bool v_datetime(struct json_object *obj, const char *prefix, const char *key,
		       struct verrors *e, const char **out, int64_t *us)
{
	char field[64];

	if (!v_string(obj, prefix, key, true, 0, e, out))
		return false;
	if (zod_datetime(*out, us))
		return true;
	snprintf(field, sizeof field, "%s%s", prefix, key);
	verrors_add(e, field, "Invalid datetime");
	*out = NULL;
	return false;
}

/* offlineActionSchema for actions[i]; fills a when valid. */
static bool parse_action(struct json_object *v, size_t i, struct sync_action *a, struct verrors *e)
{
	static const char *const types[] = { "quick_inspection", "test_result", NULL };
	char prefix[48];
	size_t before = error_count(e);

	memset(a, 0, sizeof *a);
	a->index = i;
	if (!json_object_is_type(v, json_type_object)) {
		snprintf(prefix, sizeof prefix, "actions.%zu", i);
		verrors_add(e, prefix, "Expected object, received %s", jsonx_type_name(v));
		return false;
	}
	snprintf(prefix, sizeof prefix, "actions.%zu.", i);
	v_uuid(v, prefix, "id", true, NULL, e, &a->id);
	if (v_enum(v, prefix, "type", true, types, e, &a->type_name))
		a->type = strcmp(a->type_name, "test_result") == 0 ? SYNC_TEST_RESULT : SYNC_QUICK_INSPECTION;
	v_record(v, prefix, "payload", e, &a->payload);
	v_datetime(v, prefix, "timestamp", e, &a->timestamp, &a->local_us);
	return error_count(e) == before;
}

/* Oldest first; the array position breaks ties, which makes qsort stable. */
static int by_time(const void *pa, const void *pb)
{
	const struct sync_action *a = pa, *b = pb;

	if (a->local_us != b->local_us)
		return a->local_us < b->local_us ? -1 : 1;
	return a->index < b->index ? -1 : a->index > b->index;
}

bool sync_batch_parse(struct json_object *body, struct sync_batch *out, struct verrors *e)
{
	struct json_object *list = NULL;
	size_t n, before = error_count(e);

	out->n = 0;
	if (!json_object_is_type(body, json_type_object)) {
		verrors_add(e, "", "Expected object, received %s", jsonx_type_name(body));
		return false;
	}
	if (!json_object_object_get_ex(body, "actions", &list)) {
		verrors_add(e, "actions", "Required");
		return false;
	}
	if (!json_object_is_type(list, json_type_array)) {
		verrors_add(e, "actions", "Expected array, received %s", jsonx_type_name(list));
		return false;
	}
	n = json_object_array_length(list);
	if (n < 1) {
		verrors_add(e, "actions", "Array must contain at least 1 element(s)");
		return false;
	}
	if (n > SYNC_MAX_ACTIONS) {
		verrors_add(e, "actions", "Array must contain at most %d element(s)", SYNC_MAX_ACTIONS);
		return false;
	}
	for (size_t i = 0; i < n; i++)
		parse_action(json_object_array_get_idx(list, i), i, &out->actions[i], e);
	if (error_count(e) != before)
		return false;
	qsort(out->actions, n, sizeof out->actions[0], by_time);
	out->n = n;
	return true;
}

bool test_result_parse(struct json_object *payload, const char *prefix, struct test_result *out,
		       struct verrors *e)
{
	static const char *const results[] = { "pass", "fail", NULL };
	size_t before = error_count(e);
	char field[64];

	memset(out, 0, sizeof *out);
	if (!prefix)
		prefix = "";
	if (!json_object_is_type(payload, json_type_object)) {
		size_t n = strlen(prefix);
		if (n > 0 && prefix[n - 1] == '.')
			n--;
		snprintf(field, sizeof field, "%.*s", (int)n, prefix);
		verrors_add(e, field, "Expected object, received %s", jsonx_type_name(payload));
		return false;
	}
	v_uuid(payload, prefix, "inspection_id", true, "Invalid inspection ID", e, &out->inspection_id);
	if (v_string(payload, prefix, "test_name", true, 100, e, &out->test_name) &&
	    out->test_name[0] == '\0') {
		snprintf(field, sizeof field, "%stest_name", prefix);
		verrors_add(e, field, "String must contain at least 1 character(s)");
	}
	v_enum(payload, prefix, "result", true, results, e, &out->result);
	out->has_measured = v_number(payload, prefix, "measured_value", false, e, &out->measured_value);
	v_string(payload, prefix, "unit", false, 20, e, &out->unit);
	v_string(payload, prefix, "notes", false, 2000, e, &out->notes);
	v_string(payload, prefix, "scanner_device_id", false, 100, e, &out->scanner_device_id);
	return error_count(e) == before;
}

const char *sync_device_id(struct json_object *payload)
{
	struct json_object *v = NULL;

	if (json_object_object_get_ex(payload, "scanner_device_id", &v) &&
	    json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	return NULL;
}
