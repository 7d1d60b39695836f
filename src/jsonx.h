/* jsonx.h: strict JSON parsing on top of json-c 0.16, and small builders.
 *
 * json-c's strict mode still lets through things the spec's clients (JavaScript,
 * JSON.parse + Zod) would never produce or that PostgreSQL cannot store, so
 * jsonx_parse() adds: a raw-byte pre-scan (no control characters inside strings,
 * valid UTF-8), a nesting limit, and a post-walk of the tree (no NaN/Infinity, no
 * numbers out of double range such as 1e400, no "\u0000", no lone surrogates). */
#ifndef SCANQA_JSONX_H
#define SCANQA_JSONX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#define JSONX_MAX_DEPTH 32

/* Parses exactly one JSON value filling buf[0..len) (surrounding whitespace allowed).
 * Returns the root (caller owns it) or NULL with *err set to a static, user-facing
 * message such as "Invalid JSON: unexpected end of input". */
struct json_object *jsonx_parse(const char *buf, size_t len, const char **err);

/* JavaScript's typeof-style name of a value for Zod messages: "string", "number",
 * "boolean", "object", "array", "null". */
const char *jsonx_type_name(struct json_object *v);

/* True if v is a JSON number (int or double) with an integral value, like
 * Number.isInteger(). On true, *out holds it (values beyond int64 saturate, which
 * every caller's range check then rejects). */
bool jsonx_integer(struct json_object *v, int64_t *out);
/* True if v is a JSON number (finite); *out holds it. */
bool jsonx_number(struct json_object *v, double *out);

/* Serialises compactly (no spaces, "/" not escaped). The string belongs to obj. */
const char *jsonx_dump(struct json_object *obj, size_t *len);

/* The value 0..15 of the hexadecimal digit c (either case), or -1. */
int hex_digit(int c);

/* Builders that accept NULL for JSON null. */
struct json_object *jsonx_str_or_null(const char *s);

#endif
