/* inspection_input.h: the spec's quickInspectionSchema, shared by the online endpoint
 * and offline sync. */
#ifndef SCANQA_INSPECTION_INPUT_H
#define SCANQA_INSPECTION_INPUT_H

#include <stdbool.h>
#include <stdint.h>
#include <json-c/json.h>

#include "validate.h"

struct quick_inspection {
	const char *inspection_id;     /* points into the json tree */
	const char *result;            /* "pass" or "fail" */
	const char *result_notes;      /* NULL when absent */
	bool has_defects;
	int64_t defects_found;
	const char *scanner_device_id; /* NULL when absent */
	const char *scanner_location;  /* NULL when absent */
};

/* Validates body against quickInspectionSchema. Errors go to e under prefix (e.g.
 * "" online, or "payload." in sync). Unknown keys are ignored. Returns true when valid;
 * strings in out stay owned by body. */
bool quick_inspection_parse(struct json_object *body, const char *prefix,
			    struct quick_inspection *out, struct verrors *e);

#endif
