/* validate.c: Zod 3-compatible field checks and the "Validation failed" error list. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jsonx.h"
#include "validate.h"

/* ---------------------------------------------------------------------------
 * Error list
 * ------------------------------------------------------------------------- */

void verrors_init(struct verrors *e)
{
	e->details = NULL;
}

void verrors_free(struct verrors *e)
{
	if (e->details)
		json_object_put(e->details);
	e->details = NULL;
}

bool verrors_any(const struct verrors *e)
{
	return e->details && json_object_array_length(e->details) > 0;
}

/* Returns a malloc'd formatted string, or NULL when out of memory. */
__attribute__((format(printf, 1, 0)))
static char *vformat(const char *fmt, va_list ap)
{
	va_list ap2;
	char *s;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return NULL;
	s = malloc((size_t)n + 1);
	if (s)
		vsnprintf(s, (size_t)n + 1, fmt, ap);
	return s;
}

/* Appends {field, message}. Allocation failures drop the entry: a request may then
 * miss one detail, but never crashes the worker. */
static void push(struct verrors *e, const char *prefix, const char *key, const char *msg)
{
	struct json_object *item = NULL, *field = NULL, *message = NULL;
	size_t plen = strlen(prefix), klen = strlen(key);
	char *name = malloc(plen + klen + 1);

	if (!name || !msg)
		goto fail;
	memcpy(name, prefix, plen);
	memcpy(name + plen, key, klen + 1);
	if (!e->details && !(e->details = json_object_new_array()))
		goto fail;
	item = json_object_new_object();
	field = json_object_new_string(name);
	message = json_object_new_string(msg);
	if (!item || !field || !message)
		goto fail;
	json_object_object_add(item, "field", field);     /* ownership transferred */
	json_object_object_add(item, "message", message); /* ownership transferred */
	field = message = NULL;
	if (json_object_array_add(e->details, item) != 0)
		goto fail;
	free(name);
	return;
fail:
	json_object_put(message);
	json_object_put(field);
	json_object_put(item);
	free(name);
}

void verrors_add(struct verrors *e, const char *field, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	msg = vformat(fmt, ap);
	va_end(ap);
	push(e, "", field ? field : "", msg);
	free(msg);
}

/* Like verrors_add() with the field named prefix+key. */
__attribute__((format(printf, 4, 5)))
static void add(struct verrors *e, const char *prefix, const char *key, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	msg = vformat(fmt, ap);
	va_end(ap);
	push(e, prefix ? prefix : "", key, msg);
	free(msg);
}

struct json_object *verrors_response(struct verrors *e)
{
	struct json_object *resp = json_object_new_object();
	struct json_object *details = e->details ? e->details : json_object_new_array();

	e->details = NULL;
	if (!resp || !details) {
		json_object_put(resp);
		json_object_put(details);
		return NULL;
	}
	json_object_object_add(resp, "error", json_object_new_string("Validation failed"));
	json_object_object_add(resp, "details", details); /* ownership transferred */
	return resp;
}

/* Returns buf, holding "field: message", just "message" for a root error, or "" when
 * there is no error. */
const char *verrors_first(const struct verrors *e, char *buf, size_t len)
{
	struct json_object *item, *field = NULL, *message = NULL;
	const char *f, *m;

	if (len == 0)
		return buf;
	buf[0] = '\0';
	if (!verrors_any(e))
		return buf;
	item = json_object_array_get_idx(e->details, 0);
	json_object_object_get_ex(item, "field", &field);
	json_object_object_get_ex(item, "message", &message);
	f = json_object_get_string(field);
	m = json_object_get_string(message);
	if (f && *f)
		snprintf(buf, len, "%s: %s", f, m ? m : "");
	else
		snprintf(buf, len, "%s", m ? m : "");
	return buf;
}

/* ---------------------------------------------------------------------------
 * Formats, hand-translated from Zod 3.25 (zod@3.25.76, v3/types.js; "npm install
 * zod@3" gives it, and t/zod_differential.t runs that very code against the daemon):
 *
 *   uuidRegex = /^[0-9a-fA-F]{8}\b-[0-9a-fA-F]{4}\b-[0-9a-fA-F]{4}\b-[0-9a-fA-F]{4}\b-
 *                [0-9a-fA-F]{12}$/i
 *   (each \b sits between a hex digit and '-', so it always holds; the nil UUID and
 *   any version or variant digit pass, JavaScript's $ matches only at the very end)
 *
 *   datetime(), i.e. precision null, offset false, local false:
 *   ^<date>T([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d+)?)?(Z)$ where <date> is
 *   ((\d\d[2468][048]|\d\d[13579][26]|\d\d0[48]|[02468][048]00|[13579][26]00)-02-29|
 *    \d{4}-((0[13578]|1[02])-(0[1-9]|[12]\d|3[01])|(0[469]|11)-(0[1-9]|[12]\d|30)|
 *    (02)-(0[1-9]|1\d|2[0-8])))
 *   The leap-year alternatives are exactly the Gregorian rule (year 0000 is leap).
 *   Seconds are optional since Zod 3.24.4 ("2025-01-23T10:30Z"); a fraction needs
 *   seconds ("10:30.5Z" is refused); any number of fraction digits; no offset.
 * ------------------------------------------------------------------------- */

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_dig(char c)
{
	return c >= '0' && c <= '9';
}

bool zod_uuid(const char *s)
{
	if (!s)
		return false;
	for (int i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? s[i] != '-' : !is_hex(s[i]))
			return false; /* also stops at the NUL of a short string */
	}
	return s[36] == '\0';
}

/* Reads n ASCII digits at s into *out. */
static bool digits(const char *s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!is_dig(s[i]))
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

static bool leap_year(int y)
{
	return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

bool zod_datetime(const char *s, int64_t *epoch_us)
{
	static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y, mo, d, h, mi, sec, us = 0, scale = 100000;
	const char *p;

	if (!s)
		return false;
	if (!digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
	    !digits(s + 8, 2, &d) || s[10] != 'T')
		return false;
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1])
		return false;
	if (mo == 2 && d == 29 && !leap_year(y))
		return false;
	if (!digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi))
		return false;
	p = s + 16;
	sec = 0;
	if (*p == ':') { /* seconds are optional, a fraction only follows them */
		if (!digits(p + 1, 2, &sec))
			return false;
		p += 3;
	}
	if (h > 23 || mi > 59 || sec > 59)
		return false;
	if (p > s + 16 && *p == '.') {
		p++;
		if (!is_dig(*p))
			return false;
		for (; is_dig(*p); p++) {
			us += (*p - '0') * scale; /* digits past microseconds add 0 */
			scale /= 10;
		}
	}
	if (p[0] != 'Z' || p[1] != '\0')
		return false;
	if (epoch_us)
		*epoch_us = (days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec) *
				    INT64_C(1000000) + us;
	return true;
}

/* ---------------------------------------------------------------------------
 * Text
 * ------------------------------------------------------------------------- */

/* Counts code points, and one more for each 4-byte sequence (a surrogate pair in
 * UTF-16). Bytes of a malformed string are counted without crashing. */
size_t utf16_len(const char *s, size_t bytes)
{
	size_t n = 0;

	for (size_t i = 0; i < bytes; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c & 0xC0) != 0x80)
			n++;
		if (c >= 0xF0)
			n++;
	}
	return n;
}

/* Unicode Table 3-7 (well-formed byte sequences). */
bool utf8_valid(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		unsigned char lo = 0x80, hi = 0xBF;
		size_t n;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF)
			n = 2;
		else if (c >= 0xE0 && c <= 0xEF) {
			n = 3;
			if (c == 0xE0)
				lo = 0xA0;
			else if (c == 0xED)
				hi = 0x9F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			n = 4;
			if (c == 0xF0)
				lo = 0x90;
			else if (c == 0xF4)
				hi = 0x8F;
		} else
			return false;
		if (len - i < n || s[i + 1] < lo || s[i + 1] > hi)
			return false;
		for (size_t k = 2; k < n; k++)
			if (s[i + k] < 0x80 || s[i + k] > 0xBF)
				return false;
		i += n;
	}
	return true;
}

/* Like JavaScript's Date.prototype.toISOString() for years 0000-9999; the instant is
 * floored to the millisecond. An instant gmtime_r() cannot represent prints as the
 * epoch rather than failing. */
void iso8601_ms(int64_t epoch_us, char out[32])
{
	int64_t secs = epoch_us / 1000000, rem = epoch_us % 1000000;
	time_t t;
	struct tm tm;

	if (rem < 0) {
		rem += 1000000;
		secs--;
	}
	t = (time_t)secs;
	if (!gmtime_r(&t, &tm)) {
		memset(&tm, 0, sizeof tm);
		tm.tm_year = 70;
		tm.tm_mday = 1;
		rem = 0;
	}
	/* The modulos cost nothing on gmtime_r()'s output and let the compiler prove the
	 * text fits in 32 bytes. */
	snprintf(out, 32, "%04d-%02u-%02uT%02u:%02u:%02u.%03uZ", tm.tm_year + 1900,
		 (unsigned)tm.tm_mon % 12u + 1, (unsigned)tm.tm_mday % 32u,
		 (unsigned)tm.tm_hour % 24u, (unsigned)tm.tm_min % 60u,
		 (unsigned)tm.tm_sec % 61u, (unsigned)(rem / 1000) % 1000u);
}

/* ---------------------------------------------------------------------------
 * Field helpers
 *
 * Each mirrors one Zod 3.25 schema, as zod@3.25.76's v3/types.js implements it: a
 * wrong JSON type yields only Zod's invalid_type message; otherwise every failing
 * check is reported, in Zod's order. ZodString's min/max compare .length (UTF-16
 * code units); ZodNumber takes every number JSON can carry, .int() is
 * Number.isInteger (1.0, 1e3, -0 and 2^64 are integers), min/max compare the value
 * as a double; ZodEnum and ZodLiteral compare strings exactly (case matters);
 * ZodObject (not .strict()) ignores unknown keys. An absent key
 * is "Required" unless optional. JSON null is a value, so it fails the type check
 * even for optional fields, as with z.string().optional().
 * ------------------------------------------------------------------------- */

/* True when obj has key; *v is then its value (NULL for JSON null). When it does not
 * and the field is required, records "Required". */
static bool present(struct json_object *obj, const char *prefix, const char *key,
		    bool required, struct verrors *e, struct json_object **v)
{
	*v = NULL;
	if (json_object_is_type(obj, json_type_object) && json_object_object_get_ex(obj, key, v))
		return true;
	if (required)
		add(e, prefix, key, "Required");
	return false;
}

/* max_utf16 of 0 or SIZE_MAX means no maximum. */
bool v_string(struct json_object *obj, const char *prefix, const char *key, bool required,
	      size_t max_utf16, struct verrors *e, const char **out)
{
	struct json_object *v;
	const char *s;
	size_t n;

	if (out)
		*out = NULL;
	if (!present(obj, prefix, key, required, e, &v))
		return false;
	if (!json_object_is_type(v, json_type_string)) {
		add(e, prefix, key, "Expected string, received %s", jsonx_type_name(v));
		return false;
	}
	s = json_object_get_string(v);
	n = (size_t)json_object_get_string_len(v);
	if (max_utf16 != 0 && utf16_len(s, n) > max_utf16) {
		add(e, prefix, key, "String must contain at most %zu character(s)", max_utf16);
		return false;
	}
	if (out)
		*out = s;
	return true;
}

/* Zod's util.joinValues for strings: 'a' | 'b'. Returns a malloc'd string or NULL. */
static char *join_values(const char *const *allowed)
{
	size_t len = 1;
	char *s, *p;

	for (size_t i = 0; allowed[i]; i++)
		len += strlen(allowed[i]) + 5;
	s = p = malloc(len);
	if (!s)
		return NULL;
	*p = '\0';
	for (size_t i = 0; allowed[i]; i++)
		p += sprintf(p, "%s'%s'", i ? " | " : "", allowed[i]);
	return s;
}

/* allowed is NULL-terminated. A string outside it gets the spec's wording,
 * "Expected 'pass' | 'fail', received 'maybe'" (Zod 3 itself prefixes
 * "Invalid enum value. "); another type gets Zod's "... received number". */
bool v_enum(struct json_object *obj, const char *prefix, const char *key, bool required,
	    const char *const *allowed, struct verrors *e, const char **out)
{
	struct json_object *v;
	const char *s;
	char *expected;

	if (out)
		*out = NULL;
	if (!present(obj, prefix, key, required, e, &v))
		return false;
	if (json_object_is_type(v, json_type_string)) {
		s = json_object_get_string(v);
		for (size_t i = 0; allowed[i]; i++) {
			if (strcmp(s, allowed[i]) == 0) {
				if (out)
					*out = s;
				return true;
			}
		}
	}
	expected = join_values(allowed);
	if (json_object_is_type(v, json_type_string))
		add(e, prefix, key, "Expected %s, received '%s'", expected ? expected : "",
		    json_object_get_string(v));
	else
		add(e, prefix, key, "Expected %s, received %s", expected ? expected : "",
		    jsonx_type_name(v));
	free(expected);
	return false;
}

/* z.number().int().min(min).max(max). A fraction fails .int() and is still compared
 * with the bounds, so -0.5 reports two errors as Zod does. */
bool v_int(struct json_object *obj, const char *prefix, const char *key, bool required,
	   int64_t min, int64_t max, struct verrors *e, int64_t *out)
{
	struct json_object *v;
	double d;
	int64_t i = 0;
	bool integral, ok = true, below, above;

	if (!present(obj, prefix, key, required, e, &v))
		return false;
	if (!jsonx_number(v, &d)) {
		add(e, prefix, key, "Expected number, received %s", jsonx_type_name(v));
		return false;
	}
	integral = jsonx_integer(v, &i);
	if (!integral) {
		add(e, prefix, key, "Expected integer, received float");
		ok = false;
	}
	below = integral ? i < min : d < (double)min;
	above = integral ? i > max : d > (double)max;
	if (below) {
		add(e, prefix, key, "Number must be greater than or equal to %" PRId64, min);
		ok = false;
	}
	if (above) {
		add(e, prefix, key, "Number must be less than or equal to %" PRId64, max);
		ok = false;
	}
	if (ok && out)
		*out = i;
	return ok;
}

bool v_number(struct json_object *obj, const char *prefix, const char *key, bool required,
	      struct verrors *e, double *out)
{
	struct json_object *v;
	double d;

	if (!present(obj, prefix, key, required, e, &v))
		return false;
	if (!jsonx_number(v, &d)) {
		add(e, prefix, key, "Expected number, received %s", jsonx_type_name(v));
		return false;
	}
	if (out)
		*out = d;
	return true;
}

bool v_bool(struct json_object *obj, const char *prefix, const char *key, bool required,
	    struct verrors *e, bool *out)
{
	struct json_object *v;

	if (!present(obj, prefix, key, required, e, &v))
		return false;
	if (!json_object_is_type(v, json_type_boolean)) {
		add(e, prefix, key, "Expected boolean, received %s", jsonx_type_name(v));
		return false;
	}
	if (out)
		*out = json_object_get_boolean(v);
	return true;
}

/* z.string().uuid(message): message NULL gives Zod's default "Invalid uuid". */
bool v_uuid(struct json_object *obj, const char *prefix, const char *key, bool required,
	    const char *message, struct verrors *e, const char **out)
{
	struct json_object *v;
	const char *s;

	if (out)
		*out = NULL;
	if (!present(obj, prefix, key, required, e, &v))
		return false;
	if (!json_object_is_type(v, json_type_string)) {
		add(e, prefix, key, "Expected string, received %s", jsonx_type_name(v));
		return false;
	}
	s = json_object_get_string(v);
	if (!zod_uuid(s)) {
		add(e, prefix, key, "%s", message ? message : "Invalid uuid");
		return false;
	}
	if (out)
		*out = s;
	return true;
}
