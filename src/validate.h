/* validate.h: Zod-compatible checks and the {field, message} error list that the
 * spec's "Validation failed" responses carry. Messages follow Zod 3's wording. */
#ifndef SCANQA_VALIDATE_H
#define SCANQA_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

/* The list of failing fields, in the order found. */
struct verrors {
	struct json_object *details; /* array of {field, message} */
};

void verrors_init(struct verrors *e);
void verrors_free(struct verrors *e);
bool verrors_any(const struct verrors *e);
/* field may be "" for the root. The message is formatted printf-style. */
void verrors_add(struct verrors *e, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Builds {"error":"Validation failed","details":[...]} and empties e. */
struct json_object *verrors_response(struct verrors *e);
/* "field: message" of the first error, e.g. for "Validation failed: result: ..." */
const char *verrors_first(const struct verrors *e, char *buf, size_t len);

/* Zod 3.25 z.string().uuid(): 8-4-4-4-12 hex digits, any case, any version. */
bool zod_uuid(const char *s);
/* Zod 3.25 z.string().datetime() with default options: YYYY-MM-DDTHH:MM[:SS[.fraction]]Z,
 * calendar-valid date, no offset. On true, *epoch_us is the instant (fraction beyond
 * microseconds truncated). */
bool zod_datetime(const char *s, int64_t *epoch_us);
/* Length of a valid UTF-8 string in UTF-16 code units, as JavaScript's .length. */
size_t utf16_len(const char *s, size_t bytes);
/* True if s[0..len) is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
bool utf8_valid(const char *s, size_t len);
/* Formats an instant as ISO 8601 UTC with milliseconds: 2025-01-23T14:30:00.000Z */
void iso8601_ms(int64_t epoch_us, char out[32]);

/* Field helpers: each checks obj[key] by Zod's rules and adds an error under
 * prefix+key when it fails. "optional" fields may be absent but not null.
 * Returns true when the field is present and valid. */
bool v_string(struct json_object *obj, const char *prefix, const char *key, bool required,
	      size_t max_utf16, struct verrors *e, const char **out);
bool v_enum(struct json_object *obj, const char *prefix, const char *key, bool required,
	    const char *const *allowed, struct verrors *e, const char **out);
bool v_int(struct json_object *obj, const char *prefix, const char *key, bool required,
	   int64_t min, int64_t max, struct verrors *e, int64_t *out);
bool v_number(struct json_object *obj, const char *prefix, const char *key, bool required,
	      struct verrors *e, double *out);
bool v_bool(struct json_object *obj, const char *prefix, const char *key, bool required,
	    struct verrors *e, bool *out);
bool v_uuid(struct json_object *obj, const char *prefix, const char *key, bool required,
	    const char *message, struct verrors *e, const char **out);

#endif
