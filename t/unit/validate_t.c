/* validate_t.c: inputs are judged exactly as the spec's Zod 3 schemas would judge them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inspection_input.h"
#include "jsonx.h"
#include "tap.h"
#include "validate.h"

static struct json_object *parse(const char *s)
{
	const char *err = NULL;
	struct json_object *o = jsonx_parse(s, strlen(s), &err);

	if (!o)
		fprintf(stderr, "# parse of %.60s failed: %s\n", s, err);
	return o;
}

/* Runs quick_inspection_parse on body and returns the "details" array as compact JSON
 * ("[]" when valid). *valid gets the function's result. */
static const char *qi_details(const char *body, const char *prefix, bool *valid)
{
	static char buf[8192];
	struct json_object *o = parse(body), *resp, *details = NULL;
	struct quick_inspection qi;
	struct verrors e;

	verrors_init(&e);
	*valid = quick_inspection_parse(o, prefix, &qi, &e);
	resp = verrors_response(&e);
	json_object_object_get_ex(resp, "details", &details);
	snprintf(buf, sizeof buf, "%s", jsonx_dump(details, NULL));
	json_object_put(resp);
	json_object_put(o);
	verrors_free(&e);
	return buf;
}

/* The single detail message for a body that should fail on one field only. */
static const char *qi_one(const char *body)
{
	bool valid;
	return qi_details(body, "", &valid);
}

/* ---------------------------------------------------------------------------- */

static void test_uuid(void)
{
	ok(zod_uuid("550e8400-e29b-41d4-a716-446655440001"), "the spec's inspection ID is a uuid");
	ok(zod_uuid("550E8400-E29B-41D4-A716-446655440001"), "upper-case hex is a uuid");
	ok(zod_uuid("550e8400-E29B-41d4-A716-446655440001"), "mixed-case hex is a uuid");
	ok(zod_uuid("00000000-0000-0000-0000-000000000000"), "the nil uuid is a uuid (Zod 3 checks shape only)");
	ok(zod_uuid("ffffffff-ffff-ffff-ffff-ffffffffffff"), "the max uuid is a uuid");
	ok(zod_uuid("550e8400-e29b-01d4-0716-446655440001"), "any version and variant digits are accepted");
	ok(!zod_uuid("{550e8400-e29b-41d4-a716-446655440001}"), "a braced uuid is rejected");
	ok(!zod_uuid("urn:uuid:550e8400-e29b-41d4-a716-446655440001"), "a urn: prefix is rejected");
	ok(!zod_uuid("550e8400e29b-41d4-a716-446655440001"), "a missing dash is rejected");
	ok(!zod_uuid("550e8400e29b41d4a716446655440001"), "32 hex digits without dashes are rejected");
	ok(!zod_uuid("550e840-0e29b-41d4-a716-446655440001"), "a dash in the wrong place is rejected");
	ok(!zod_uuid("550e8400-e29b-41d4-a716-44665544000g"), "a non-hex digit is rejected");
	ok(!zod_uuid("550e8400-e29b-41d4-a716-44665544000"), "35 characters are rejected");
	ok(!zod_uuid("550e8400-e29b-41d4-a716-4466554400011"), "37 characters are rejected");
	ok(!zod_uuid("550e8400-e29b-41d4-a716-446655440001\n"), "a trailing newline is rejected");
	ok(!zod_uuid(" 550e8400-e29b-41d4-a716-446655440001"), "a leading space is rejected");
	ok(!zod_uuid(""), "an empty string is rejected");
	ok(!zod_uuid("local-uuid-001"), "the spec's offline action id \"local-uuid-001\" is not a uuid");
}

static void test_datetime(void)
{
	int64_t us = -1;

	ok(zod_datetime("2025-01-23T10:30:00Z", &us) && us == INT64_C(1737628200000000),
	   "the spec's offline timestamp is accepted and read as the right instant");
	ok(zod_datetime("2025-01-23T10:30:00.1Z", &us) && us == INT64_C(1737628200100000),
	   "one fraction digit is accepted");
	ok(zod_datetime("2025-01-23T10:30:00.123Z", &us) && us == INT64_C(1737628200123000),
	   "milliseconds are accepted");
	ok(zod_datetime("2025-01-23T10:30:00.123456789Z", &us) && us == INT64_C(1737628200123456),
	   "nanoseconds are accepted and truncated to microseconds");
	ok(zod_datetime("2025-01-23T10:30:00.00000000000000000000000000000000000001Z", &us) &&
		   us == INT64_C(1737628200000000),
	   "a fraction of any length is accepted");
	ok(zod_datetime("1969-12-31T23:59:59.5Z", &us) && us == -500000, "an instant before 1970 is negative");
	ok(zod_datetime("2025-01-23T10:30:00Z", NULL), "the instant may be ignored");
	ok(!zod_datetime("2025-01-23T10:30:00.Z", &us), "a dot without fraction digits is rejected");
	ok(!zod_datetime("2025-01-23T10:30:00", &us), "a missing Z is rejected");
	ok(!zod_datetime("2025-01-23T10:30:00z", &us), "a lower-case z is rejected");
	ok(!zod_datetime("2025-01-23t10:30:00Z", &us), "a lower-case t is rejected");
	ok(!zod_datetime("2025-01-23 10:30:00Z", &us), "a space instead of T is rejected");
	ok(!zod_datetime("2025-01-23T10:30:00+00:00", &us), "an offset +00:00 is rejected");
	ok(!zod_datetime("2025-01-23T10:30:00-05:00", &us), "an offset -05:00 is rejected");
	ok(!zod_datetime("2025-01-23T10:30:00+0000", &us), "an offset +0000 is rejected");
	ok(!zod_datetime("2025-01-23T10:30:00Z ", &us), "trailing text is rejected");
	ok(zod_datetime("2025-01-23T10:30Z", &us) && us == INT64_C(1737628200000000),
	   "seconds are optional (Zod 3.24.4 and later)");
	ok(!zod_datetime("2025-01-23T10:30.5Z", &us), "a fraction without seconds is rejected");
	ok(!zod_datetime("2025-01-23T10:30:Z", &us), "a colon without seconds is rejected");
	ok(!zod_datetime("2025-01-23T10Z", &us), "minutes are required");
	ok(!zod_datetime("2025-01-23T10:60Z", &us), "minute 60 is rejected");
	ok(!zod_datetime("2025-01-23", &us), "a date alone is rejected");
	ok(zod_datetime("2024-02-29T00:00:00Z", &us), "Feb 29 of a leap year is accepted");
	ok(!zod_datetime("2023-02-29T00:00:00Z", &us), "Feb 29 of a common year is rejected");
	ok(zod_datetime("2000-02-29T00:00:00Z", &us), "Feb 29 2000 (divisible by 400) is accepted");
	ok(!zod_datetime("1900-02-29T00:00:00Z", &us), "Feb 29 1900 (divisible by 100) is rejected");
	ok(!zod_datetime("2100-02-29T00:00:00Z", &us), "Feb 29 2100 is rejected");
	ok(zod_datetime("0000-02-29T00:00:00Z", &us), "Feb 29 of year 0000 is accepted, as Zod's regex does");
	ok(zod_datetime("0000-01-01T00:00:00Z", &us) && us == INT64_C(-62167219200000000),
	   "year 0000 maps to the proleptic Gregorian instant");
	ok(!zod_datetime("2024-02-30T00:00:00Z", &us), "Feb 30 is rejected");
	ok(!zod_datetime("2025-04-31T00:00:00Z", &us), "Apr 31 is rejected");
	ok(zod_datetime("2025-06-30T00:00:00Z", &us), "Jun 30 is accepted");
	ok(zod_datetime("2025-12-31T23:59:59.999Z", &us), "the last moment of a year is accepted");
	ok(!zod_datetime("2025-13-01T00:00:00Z", &us), "month 13 is rejected");
	ok(!zod_datetime("2025-00-01T00:00:00Z", &us), "month 00 is rejected");
	ok(!zod_datetime("2025-01-00T00:00:00Z", &us), "day 00 is rejected");
	ok(!zod_datetime("2025-01-32T00:00:00Z", &us), "day 32 is rejected");
	ok(!zod_datetime("2025-01-23T24:00:00Z", &us), "24:00:00 is rejected");
	ok(!zod_datetime("2025-01-23T23:60:00Z", &us), "minute 60 is rejected");
	ok(!zod_datetime("2025-01-23T23:59:60Z", &us), "a leap second is rejected");
	ok(!zod_datetime("+02025-01-23T10:30:00Z", &us), "an expanded year is rejected");
	ok(!zod_datetime("25-01-23T10:30:00Z", &us), "a two-digit year is rejected");
	ok(!zod_datetime("2025-1-23T10:30:00Z", &us), "a one-digit month is rejected");
	ok(!zod_datetime("", &us), "an empty string is rejected");
}

static void test_text(void)
{
	is_int((long long)utf16_len("", 0), 0, "the empty string has length 0");
	is_int((long long)utf16_len("ZEBRA-TC52-001", 14), 14, "ASCII counts one unit per byte");
	is_int((long long)utf16_len("\xc3\xa9", 2), 1, "a 2-byte character (U+00E9) is one unit");
	is_int((long long)utf16_len("\xe2\x82\xac", 3), 1, "a 3-byte BMP character (U+20AC) is one unit");
	is_int((long long)utf16_len("\xf0\x9f\x98\x80", 4), 2, "an astral character (U+1F600) is two units");
	is_int((long long)utf16_len("a\xf0\x9f\x98\x80\xc3\xa9", 7), 4, "a mixed string counts like JavaScript's .length");

	ok(utf8_valid("", 0), "the empty string is valid UTF-8");
	ok(utf8_valid("plain ascii", 11), "ASCII is valid UTF-8");
	ok(utf8_valid("a\0b", 3), "a NUL byte is valid UTF-8 (the JSON layer rejects it)");
	ok(utf8_valid("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9), "2-, 3- and 4-byte characters are valid");
	ok(utf8_valid("\xed\x9f\xbf", 3), "U+D7FF, just below the surrogates, is valid");
	ok(utf8_valid("\xee\x80\x80", 3), "U+E000, just above the surrogates, is valid");
	ok(utf8_valid("\xf4\x8f\xbf\xbf", 4), "U+10FFFF is valid");
	ok(!utf8_valid("\xc0\x80", 2), "overlong NUL C0 80 is invalid");
	ok(!utf8_valid("\xc1\xbf", 2), "overlong C1 BF is invalid");
	ok(!utf8_valid("\xe0\x80\x80", 3), "overlong E0 80 80 is invalid");
	ok(!utf8_valid("\xe0\x9f\xbf", 3), "overlong E0 9F BF is invalid");
	ok(!utf8_valid("\xf0\x8f\xbf\xbf", 4), "overlong F0 8F BF BF is invalid");
	ok(!utf8_valid("\xed\xa0\x80", 3), "a high surrogate ED A0 80 is invalid");
	ok(!utf8_valid("\xed\xbf\xbf", 3), "a low surrogate ED BF BF is invalid");
	ok(!utf8_valid("\xf4\x90\x80\x80", 4), "F4 90 80 80 (above U+10FFFF) is invalid");
	ok(!utf8_valid("\xf5\x80\x80\x80", 4), "an F5 lead byte is invalid");
	ok(!utf8_valid("\xff", 1), "an FF byte is invalid");
	ok(!utf8_valid("\x80", 1), "a lone continuation byte is invalid");
	ok(!utf8_valid("\xc3", 1), "a truncated 2-byte sequence is invalid");
	ok(!utf8_valid("\xe2\x82", 2), "a truncated 3-byte sequence is invalid");
	ok(!utf8_valid("\xf0\x9f\x98", 3), "a truncated 4-byte sequence is invalid");
	ok(!utf8_valid("\xc3\x41", 2), "a lead byte followed by ASCII is invalid");
	ok(!utf8_valid("\xe2\x82\xac", 2), "a sequence cut by the length is invalid");
}

static void test_iso8601(void)
{
	char out[32];
	int64_t us = 0;

	iso8601_ms(0, out);
	is_str(out, "1970-01-01T00:00:00.000Z", "the epoch formats with milliseconds");
	iso8601_ms(INT64_C(1737642600000000), out);
	is_str(out, "2025-01-23T14:30:00.000Z", "the spec's completed_at formats exactly");
	iso8601_ms(INT64_C(1737642600123999), out);
	is_str(out, "2025-01-23T14:30:00.123Z", "microseconds are truncated to milliseconds");
	iso8601_ms(-1, out);
	is_str(out, "1969-12-31T23:59:59.999Z", "one microsecond before the epoch floors correctly");
	zod_datetime("2024-02-29T12:00:00.999999Z", &us);
	iso8601_ms(us, out);
	is_str(out, "2024-02-29T12:00:00.999Z", "a parsed leap-day instant formats back");
	iso8601_ms(INT64_MIN, out);
	ok(strlen(out) > 0 && out[strlen(out) - 1] == 'Z', "the most negative instant does not crash");
	iso8601_ms(INT64_MAX, out);
	ok(strlen(out) > 0 && out[strlen(out) - 1] == 'Z', "the largest instant does not crash");
}

static void test_verrors(void)
{
	struct verrors e;
	struct json_object *resp;
	char buf[128];

	verrors_init(&e);
	ok(!verrors_any(&e), "a fresh error list is empty");
	is_str(verrors_first(&e, buf, sizeof buf), "", "an empty list has no first error");
	resp = verrors_response(&e);
	is_str(jsonx_dump(resp, NULL), "{\"error\":\"Validation failed\",\"details\":[]}",
	       "an empty list still makes a well-formed response");
	json_object_put(resp);

	verrors_add(&e, "result", "Expected %s, received '%s'", "'pass' | 'fail'", "maybe");
	verrors_add(&e, "", "Expected object, received %s", "array");
	ok(verrors_any(&e), "added errors are seen");
	is_str(verrors_first(&e, buf, sizeof buf), "result: Expected 'pass' | 'fail', received 'maybe'",
	       "the first error reads \"field: message\"");
	resp = verrors_response(&e);
	is_str(jsonx_dump(resp, NULL),
	       "{\"error\":\"Validation failed\",\"details\":[{\"field\":\"result\",\"message\":"
	       "\"Expected 'pass' | 'fail', received 'maybe'\"},{\"field\":\"\",\"message\":"
	       "\"Expected object, received array\"}]}",
	       "the response lists every {field, message} in order");
	json_object_put(resp);
	ok(!verrors_any(&e), "building the response empties the list");

	verrors_add(&e, "", "Expected object, received %s", "null");
	is_str(verrors_first(&e, buf, sizeof buf), "Expected object, received null",
	       "a root error reads as just its message");
	verrors_free(&e);
	verrors_free(&e);
	ok(!verrors_any(&e), "freeing twice is harmless");
}

static void test_field_helpers(void)
{
	static const char *const results[] = { "pass", "fail", NULL };
	struct json_object *o = parse("{\"s\":\"abc\",\"n\":3,\"f\":3.5,\"neg\":-0.5,\"z\":null,\"b\":true,"
				      "\"a\":[],\"str3\":\"3\",\"e\":\"maybe\",\"p\":\"fail\",\"big\":1e300,"
				      "\"huge\":99999999999999999999,\"u\":\"not-a-uuid\"}");
	struct verrors e;
	const char *s = "unset";
	int64_t i = -1;
	double d = 0;
	bool b = false;
	char buf[256];

	verrors_init(&e);
	ok(v_string(o, "payload.", "s", true, 100, &e, &s) && strcmp(s, "abc") == 0, "a string field is read");
	ok(v_string(o, "payload.", "s", true, 0, &e, &s), "a maximum of 0 means no maximum");
	ok(!v_string(o, "payload.", "missing", false, 100, &e, &s) && s == NULL && !verrors_any(&e),
	   "an absent optional field is no error");
	ok(!v_string(o, "payload.", "missing", true, 100, &e, &s), "an absent required field fails");
	is_str(verrors_first(&e, buf, sizeof buf), "payload.missing: Required",
	       "an absent required field is \"Required\" under prefix+key");
	verrors_free(&e);

#define FIRST_ERROR(call, want, what)                                   \
	do {                                                            \
		verrors_init(&e);                                       \
		ok(!(call), "%s fails", what);                          \
		is_str(verrors_first(&e, buf, sizeof buf), want, "%s: message", what); \
		verrors_free(&e);                                       \
	} while (0)

	FIRST_ERROR(v_string(o, "", "n", true, 100, &e, &s), "n: Expected string, received number",
		    "a number for a string");
	FIRST_ERROR(v_string(o, "", "z", false, 100, &e, &s), "z: Expected string, received null",
		    "null for an optional string");
	FIRST_ERROR(v_string(o, "", "a", true, 100, &e, &s), "a: Expected string, received array",
		    "an array for a string");
	FIRST_ERROR(v_string(o, "", "b", true, 100, &e, &s), "b: Expected string, received boolean",
		    "a boolean for a string");
	FIRST_ERROR(v_string(o, "", "s", true, 2, &e, &s), "s: String must contain at most 2 character(s)",
		    "a string over its maximum");

	verrors_init(&e);
	ok(v_enum(o, "", "p", true, results, &e, &s) && strcmp(s, "fail") == 0, "an allowed enum value is read");
	verrors_free(&e);
	FIRST_ERROR(v_enum(o, "", "e", true, results, &e, &s), "e: Expected 'pass' | 'fail', received 'maybe'",
		    "a string outside the enum");
	FIRST_ERROR(v_enum(o, "", "n", true, results, &e, &s), "n: Expected 'pass' | 'fail', received number",
		    "a number for an enum");
	FIRST_ERROR(v_enum(o, "", "z", true, results, &e, &s), "z: Expected 'pass' | 'fail', received null",
		    "null for an enum");
	FIRST_ERROR(v_enum(o, "", "missing", true, results, &e, &s), "missing: Required", "an absent enum");

	verrors_init(&e);
	ok(v_int(o, "", "n", true, 0, 1000, &e, &i) && i == 3, "an integer field is read");
	verrors_free(&e);
	FIRST_ERROR(v_int(o, "", "str3", true, 0, 1000, &e, &i), "str3: Expected number, received string",
		    "the string \"3\" for an integer");
	FIRST_ERROR(v_int(o, "", "f", true, 0, 1000, &e, &i), "f: Expected integer, received float",
		    "3.5 for an integer");
	FIRST_ERROR(v_int(o, "", "n", true, 4, 1000, &e, &i), "n: Number must be greater than or equal to 4",
		    "an integer below its minimum");
	FIRST_ERROR(v_int(o, "", "n", true, 0, 2, &e, &i), "n: Number must be less than or equal to 2",
		    "an integer above its maximum");
	FIRST_ERROR(v_int(o, "", "big", true, 0, 1000, &e, &i), "big: Number must be less than or equal to 1000",
		    "1e300 for an integer");
	FIRST_ERROR(v_int(o, "", "huge", true, 0, 1000, &e, &i), "huge: Number must be less than or equal to 1000",
		    "an integer beyond int64");
	FIRST_ERROR(v_int(o, "", "z", false, 0, 1000, &e, &i), "z: Expected number, received null",
		    "null for an optional integer");
	verrors_init(&e);
	v_int(o, "", "neg", true, 0, 1000, &e, &i);
	{
		struct json_object *resp = verrors_response(&e);
		struct json_object *details = NULL;

		json_object_object_get_ex(resp, "details", &details);
		is_str(jsonx_dump(details, NULL),
		       "[{\"field\":\"neg\",\"message\":\"Expected integer, received float\"},"
		       "{\"field\":\"neg\",\"message\":\"Number must be greater than or equal to 0\"}]",
		       "-0.5 fails both .int() and .min(0), as in Zod");
		json_object_put(resp);
	}
	verrors_free(&e);

	verrors_init(&e);
	ok(v_number(o, "", "f", true, &e, &d) && d == 3.5, "a number field is read");
	ok(v_bool(o, "", "b", true, &e, &b) && b, "a boolean field is read");
	verrors_free(&e);
	FIRST_ERROR(v_number(o, "", "str3", true, &e, &d), "str3: Expected number, received string",
		    "the string \"3\" for a number");
	FIRST_ERROR(v_bool(o, "", "n", true, &e, &b), "n: Expected boolean, received number",
		    "a number for a boolean");

	FIRST_ERROR(v_uuid(o, "", "u", true, NULL, &e, &s), "u: Invalid uuid", "a malformed uuid");
	FIRST_ERROR(v_uuid(o, "", "u", true, "Invalid inspection ID", &e, &s), "u: Invalid inspection ID",
		    "a malformed uuid with a custom message");
	FIRST_ERROR(v_uuid(o, "", "n", true, "Invalid inspection ID", &e, &s), "n: Expected string, received number",
		    "a number for a uuid");
#undef FIRST_ERROR
	json_object_put(o);
}

static void test_quick_inspection(void)
{
	struct json_object *o;
	struct quick_inspection qi;
	struct verrors e;
	bool valid = false;
	char *body;
	size_t n;

	o = parse("{\"inspection_id\":\"550e8400-e29b-41d4-a716-446655440001\",\"result\":\"pass\","
		  "\"inspection_method\":\"scanner\",\"scanner_device_id\":\"ZEBRA-TC52-001\"}");
	verrors_init(&e);
	ok(quick_inspection_parse(o, "", &qi, &e) && !verrors_any(&e), "the spec's pass request is valid");
	is_str(qi.inspection_id, "550e8400-e29b-41d4-a716-446655440001", "its inspection_id is read");
	is_str(qi.result, "pass", "its result is read");
	is_str(qi.scanner_device_id, "ZEBRA-TC52-001", "its scanner_device_id is read");
	ok(qi.result_notes == NULL && !qi.has_defects && qi.scanner_location == NULL,
	   "its absent optional fields read as absent");
	json_object_put(o);
	verrors_free(&e);

	o = parse("{\"inspection_id\":\"550e8400-e29b-41d4-a716-446655440002\",\"result\":\"fail\","
		  "\"result_notes\":\"Damaged packaging, product exposed\",\"defects_found\":3,"
		  "\"inspection_method\":\"scanner\",\"scanner_device_id\":\"ZEBRA-TC52-001\"}");
	verrors_init(&e);
	ok(quick_inspection_parse(o, "", &qi, &e), "the spec's fail request is valid");
	is_str(qi.result_notes, "Damaged packaging, product exposed", "its result_notes is read");
	ok(qi.has_defects && qi.defects_found == 3, "its defects_found is read");
	json_object_put(o);
	verrors_free(&e);

	qi_details("{\"inspection_id\":\"550e8400-e29b-41d4-a716-446655440002\",\"result\":\"fail\","
		   "\"result_notes\":\"Contamination detected\",\"defects_found\":1,"
		   "\"inspection_method\":\"scanner\"}", "payload.", &valid);
	ok(valid, "the spec's offline sync payload is valid");

	is_str(qi_details("{\"inspection_id\":\"not-a-uuid\",\"result\":\"maybe\",\"inspection_method\":\"scanner\"}",
			  "", &valid),
	       "[{\"field\":\"inspection_id\",\"message\":\"Invalid inspection ID\"},"
	       "{\"field\":\"result\",\"message\":\"Expected 'pass' | 'fail', received 'maybe'\"}]",
	       "a bad ID and result give the spec's validation error example");
	ok(!valid, "that body is invalid");
	is_str(qi_one("{\"result\":\"maybe\"}"),
	       "[{\"field\":\"inspection_id\",\"message\":\"Required\"},"
	       "{\"field\":\"result\",\"message\":\"Expected 'pass' | 'fail', received 'maybe'\"},"
	       "{\"field\":\"inspection_method\",\"message\":\"Invalid literal value, expected \\\"scanner\\\"\"}]",
	       "{\"result\":\"maybe\"} reports every failing field in schema order");
	is_str(qi_one("{}"),
	       "[{\"field\":\"inspection_id\",\"message\":\"Required\"},"
	       "{\"field\":\"result\",\"message\":\"Required\"},"
	       "{\"field\":\"inspection_method\",\"message\":\"Invalid literal value, expected \\\"scanner\\\"\"}]",
	       "an empty object misses the three required fields (a missing literal is Zod's invalid_literal)");
	is_str(qi_details("{\"inspection_id\":7,\"result\":1,\"result_notes\":false,\"defects_found\":\"3\","
			  "\"inspection_method\":\"Scanner\",\"scanner_device_id\":[],\"scanner_location\":{}}",
			  "payload.", &valid),
	       "[{\"field\":\"payload.inspection_id\",\"message\":\"Expected string, received number\"},"
	       "{\"field\":\"payload.result\",\"message\":\"Expected 'pass' | 'fail', received number\"},"
	       "{\"field\":\"payload.result_notes\",\"message\":\"Expected string, received boolean\"},"
	       "{\"field\":\"payload.defects_found\",\"message\":\"Expected number, received string\"},"
	       "{\"field\":\"payload.inspection_method\",\"message\":\"Invalid literal value, expected \\\"scanner\\\"\"},"
	       "{\"field\":\"payload.scanner_device_id\",\"message\":\"Expected string, received array\"},"
	       "{\"field\":\"payload.scanner_location\",\"message\":\"Expected string, received object\"}]",
	       "every field wrong at once is reported under the sync prefix, in schema order");

#define BODY(extra) "{\"inspection_id\":\"550e8400-e29b-41d4-a716-446655440001\",\"result\":\"pass\"," \
		    "\"inspection_method\":\"scanner\"" extra "}"
	is_str(qi_one(BODY(",\"result_notes\":null")),
	       "[{\"field\":\"result_notes\",\"message\":\"Expected string, received null\"}]",
	       "null in an optional field is rejected, not treated as absent");
	is_str(qi_one(BODY(",\"defects_found\":\"3\"")),
	       "[{\"field\":\"defects_found\",\"message\":\"Expected number, received string\"}]",
	       "defects_found \"3\" is not coerced");
	is_str(qi_one(BODY(",\"defects_found\":3.5")),
	       "[{\"field\":\"defects_found\",\"message\":\"Expected integer, received float\"}]",
	       "defects_found 3.5 is rejected");
	is_str(qi_one(BODY(",\"defects_found\":-1")),
	       "[{\"field\":\"defects_found\",\"message\":\"Number must be greater than or equal to 0\"}]",
	       "defects_found -1 is rejected");
	is_str(qi_one(BODY(",\"defects_found\":1001")),
	       "[{\"field\":\"defects_found\",\"message\":\"Number must be less than or equal to 1000\"}]",
	       "defects_found 1001 is rejected");
	is_str(qi_one(BODY(",\"defects_found\":1000")), "[]", "defects_found 1000 is accepted");
	is_str(qi_one(BODY(",\"defects_found\":0")), "[]", "defects_found 0 is accepted");

	o = parse(BODY(",\"defects_found\":3.0"));
	verrors_init(&e);
	ok(quick_inspection_parse(o, "", &qi, &e) && qi.has_defects && qi.defects_found == 3,
	   "defects_found 3.0 is accepted as 3");
	json_object_put(o);
	verrors_free(&e);

	is_str(qi_one(BODY(",\"result\":\"PASS\"")),
	       "[{\"field\":\"result\",\"message\":\"Expected 'pass' | 'fail', received 'PASS'\"}]",
	       "the result enum is case-sensitive (and a duplicate key's last value counts)");
	is_str(qi_one("{\"inspection_id\":\"550e8400-e29b-41d4-a716-446655440001\",\"result\":\"pass\"}"),
	       "[{\"field\":\"inspection_method\",\"message\":\"Invalid literal value, expected \\\"scanner\\\"\"}]",
	       "a missing inspection_method is rejected");
	is_str(qi_one(BODY(",\"inspection_method\":\"manual\"")),
	       "[{\"field\":\"inspection_method\",\"message\":\"Invalid literal value, expected \\\"scanner\\\"\"}]",
	       "inspection_method other than scanner is rejected");
	is_str(qi_one(BODY(",\"lp_id\":5,\"extra\":{\"nested\":[1,2]},\"status\":null")), "[]",
	       "unknown keys are ignored");
	is_str(qi_one("{\"inspection_id\":\"550E8400-E29B-41D4-A716-446655440001\",\"result\":\"fail\","
		      "\"inspection_method\":\"scanner\"}"), "[]", "an upper-case inspection ID is accepted");

	/* 1998 ASCII + one astral character: 2002 bytes but 2000 UTF-16 units. */
	n = 1998;
	body = malloc(256 + 2 * 2100);
	memcpy(body, BODY(",\"result_notes\":\""), sizeof(BODY(",\"result_notes\":\"")) - 2);
	{
		size_t off = sizeof(BODY(",\"result_notes\":\"")) - 2;
		char *p = body + off;

		memset(p, 'a', n);
		memcpy(p + n, "\xf0\x9f\x98\x80\"}", 7);
		is_str(qi_one(body), "[]", "result_notes of 2000 UTF-16 units (an emoji counts 2) is accepted");
		memset(p, 'a', n + 1);
		memcpy(p + n + 1, "\xf0\x9f\x98\x80\"}", 7);
		is_str(qi_one(body),
		       "[{\"field\":\"result_notes\",\"message\":\"String must contain at most 2000 character(s)\"}]",
		       "result_notes of 2001 UTF-16 units is rejected");
		for (size_t k = 0; k < 2000; k++)
			memcpy(p + 2 * k, "\xc3\xa9", 2);
		memcpy(p + 4000, "\"}", 3);
		is_str(qi_one(body), "[]", "result_notes of 2000 two-byte characters (4000 bytes) is accepted");
	}
	free(body);
	is_str(qi_one(BODY(",\"scanner_device_id\":\"12345678901234567890123456789012345678901234567890"
			   "123456789012345678901234567890123456789012345678901\"")),
	       "[{\"field\":\"scanner_device_id\",\"message\":\"String must contain at most 100 character(s)\"}]",
	       "a scanner_device_id of 101 characters is rejected");
#undef BODY

	is_str(qi_details("[]", "", &valid), "[{\"field\":\"\",\"message\":\"Expected object, received array\"}]",
	       "an array body is rejected at the root");
	is_str(qi_details("\"x\"", "payload.", &valid),
	       "[{\"field\":\"payload\",\"message\":\"Expected object, received string\"}]",
	       "a non-object sync payload is reported under \"payload\"");
	verrors_init(&e);
	ok(!quick_inspection_parse(NULL, "", &qi, &e), "a JSON null body is rejected");
	verrors_free(&e);
}

int main(void)
{
	test_uuid();
	test_datetime();
	test_text();
	test_iso8601();
	test_verrors();
	test_field_helpers();
	test_quick_inspection();
	return done_testing();
}
