/* inspection_input.c: the spec's quickInspectionSchema, checked field by field. */
#include <stdio.h>
#include <string.h>

#include "inspection_input.h"
#include "jsonx.h"

static size_t error_count(const struct verrors *e)
{
	return e->details ? json_object_array_length(e->details) : 0;
}

/* z.literal(value): anything else, including an absent key, is Zod 3's invalid_literal
 * (ZodLiteral compares before any "Required" check). */
static bool v_literal(struct json_object *obj, const char *prefix, const char *key,
		      const char *value, struct verrors *e)
{
	struct json_object *v = NULL;
	char field[256];

	if (json_object_object_get_ex(obj, key, &v) && json_object_is_type(v, json_type_string) &&
	    strcmp(json_object_get_string(v), value) == 0)
		return true;
	snprintf(field, sizeof field, "%s%s", prefix, key);
	verrors_add(e, field, "Invalid literal value, expected \"%s\"", value);
	return false;
}

/* The object-level error goes under the prefix itself: "" online, "payload" in sync. */
static void add_root_error(struct json_object *body, const char *prefix, struct verrors *e)
{
	char field[256];
	size_t n = strlen(prefix);

	if (n > 0 && prefix[n - 1] == '.')
		n--;
	snprintf(field, sizeof field, "%.*s", (int)n, prefix);
	verrors_add(e, field, "Expected object, received %s", jsonx_type_name(body));
}

/* Every failing field is reported, in schema order, as Zod's object parser does. */
bool quick_inspection_parse(struct json_object *body, const char *prefix,
			    struct quick_inspection *out, struct verrors *e)
{
	static const char *const results[] = { "pass", "fail", NULL };
	size_t before = error_count(e);

	memset(out, 0, sizeof *out);
	if (!prefix)
		prefix = "";
	if (!json_object_is_type(body, json_type_object)) {
		add_root_error(body, prefix, e);
		return false;
	}
	v_uuid(body, prefix, "inspection_id", true, "Invalid inspection ID", e, &out->inspection_id);
	v_enum(body, prefix, "result", true, results, e, &out->result);
	v_string(body, prefix, "result_notes", false, 2000, e, &out->result_notes);
	out->has_defects = v_int(body, prefix, "defects_found", false, 0, 1000, e,
				 &out->defects_found);
	v_literal(body, prefix, "inspection_method", "scanner", e);
	v_string(body, prefix, "scanner_device_id", false, 100, e, &out->scanner_device_id);
	v_string(body, prefix, "scanner_location", false, 100, e, &out->scanner_location);
	return error_count(e) == before;
}
