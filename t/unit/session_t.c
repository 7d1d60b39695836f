/* session_t.c: scan-session inputs, If-Match, tokens and the completion percentage,
 * judged without a database. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsonx.h"
#include "session.h"
#include "tap.h"
#include "validate.h"

enum body_kind { CREATE, PATCH, SCAN };

/* Parses body with the chosen schema; returns the "details" as compact JSON ("[]"
 * when valid). */
static const char *details(enum body_kind kind, const char *body)
{
	static char buf[4096];
	const char *err = NULL;
	char barcode[BARCODE_BYTES_MAX + 1];
	struct json_object *o = jsonx_parse(body, strlen(body), &err), *resp, *d = NULL;
	struct session_create c;
	struct session_patch p;
	struct verrors e;

	if (!o) {
		snprintf(buf, sizeof buf, "unparsable: %s", err);
		return buf;
	}
	verrors_init(&e);
	switch (kind) {
	case CREATE: session_create_parse(o, &c, &e); break;
	case PATCH: session_patch_parse(o, &p, &e); break;
	case SCAN: scan_parse(o, barcode, &e); break;
	}
	resp = verrors_response(&e);
	json_object_object_get_ex(resp, "details", &d);
	snprintf(buf, sizeof buf, "%s", jsonx_dump(d, NULL));
	json_object_put(resp);
	json_object_put(o);
	verrors_free(&e);
	return buf;
}

static void test_patch_body(void)
{
	const char *err = NULL;
	struct json_object *o;
	struct session_patch p;
	struct verrors e;

	is_str(details(PATCH, "{\"status\":\"PAUSED\"}"), "[]", "a status alone is an update");
	is_str(details(PATCH, "{\"status\":\"ACTIVE\",\"location\":\"Dock 4\",\"notes\":\"\","
			      "\"items_scanned\":0,\"auto_commit\":true}"), "[]",
	       "every field of the spec's body at once is an update");
	is_str(details(PATCH, "{}"),
	       "[{\"field\":\"\",\"message\":\"At least one of status, location, notes, items_scanned "
	       "or auto_commit must be given\"}]", "an empty update is refused");
	is_str(details(PATCH, "{\"status\":\"DONE\"}"),
	       "[{\"field\":\"status\",\"message\":\"Expected 'ACTIVE' | 'PAUSED' | 'COMPLETED' | "
	       "'CANCELLED', received 'DONE'\"}]", "an unknown status is refused with the allowed values");
	is_str(details(PATCH, "{\"status\":\"paused\"}"),
	       "[{\"field\":\"status\",\"message\":\"Expected 'ACTIVE' | 'PAUSED' | 'COMPLETED' | "
	       "'CANCELLED', received 'paused'\"}]", "status is case-sensitive");
	is_str(details(PATCH, "{\"items_scanned\":-1}"),
	       "[{\"field\":\"items_scanned\",\"message\":\"Number must be greater than or equal to 0\"}]",
	       "a negative items_scanned is refused");
	is_str(details(PATCH, "{\"items_scanned\":2.5}"),
	       "[{\"field\":\"items_scanned\",\"message\":\"Expected integer, received float\"}]",
	       "a fractional items_scanned is refused");
	is_str(details(PATCH, "{\"items_scanned\":\"5\"}"),
	       "[{\"field\":\"items_scanned\",\"message\":\"Expected number, received string\"}]",
	       "items_scanned as a string is refused");
	is_str(details(PATCH, "{\"items_scanned\":2147483648}"),
	       "[{\"field\":\"items_scanned\",\"message\":\"Number must be less than or equal to 2147483647\"}]",
	       "items_scanned beyond a 32-bit integer is refused");
	is_str(details(PATCH, "{\"items_scanned\":2147483647}"), "[]", "the largest items_scanned is accepted");
	is_str(details(PATCH, "{\"auto_commit\":\"yes\"}"),
	       "[{\"field\":\"auto_commit\",\"message\":\"Expected boolean, received string\"}]",
	       "auto_commit must be a boolean");
	is_str(details(PATCH, "{\"notes\":null}"),
	       "[{\"field\":\"notes\",\"message\":\"Expected string, received null\"}]",
	       "null is not an absent field");
	is_str(details(PATCH, "{\"expected_items\":5,\"notes\":\"x\"}"),
	       "[{\"field\":\"\",\"message\":\"Unrecognized key(s) in object: 'expected_items'\"}]",
	       "a field the PATCH cannot change is refused, not ignored");
	is_str(details(PATCH, "{\"status\":1,\"foo\":1,\"bar\":2}"),
	       "[{\"field\":\"status\",\"message\":\"Expected 'ACTIVE' | 'PAUSED' | 'COMPLETED' | "
	       "'CANCELLED', received number\"},"
	       "{\"field\":\"\",\"message\":\"Unrecognized key(s) in object: 'foo', 'bar'\"}]",
	       "field errors come first, then the unknown keys");
	is_str(details(PATCH, "[]"), "[{\"field\":\"\",\"message\":\"Expected object, received array\"}]",
	       "an array body is refused at the root");

	o = jsonx_parse("{\"status\":\"COMPLETED\",\"items_scanned\":7}", 40, &err);
	verrors_init(&e);
	ok(session_patch_parse(o, &p, &e) && strcmp(p.status, "COMPLETED") == 0 && p.has_items &&
	   p.items_scanned == 7 && !p.location && !p.notes && !p.has_auto_commit,
	   "a parsed update says which fields were given");
	verrors_free(&e);
	json_object_put(o);
}

static void test_create_body(void)
{
	is_str(details(CREATE, "{}"), "[]", "a session needs no fields");
	is_str(details(CREATE, "{\"location\":\"Dock 4\",\"notes\":\"night\",\"expected_items\":40,"
			       "\"auto_commit\":false}"), "[]", "all four fields are accepted");
	is_str(details(CREATE, "{\"expected_items\":0}"),
	       "[{\"field\":\"expected_items\",\"message\":\"Number must be greater than or equal to 1\"}]",
	       "expected_items must be positive");
	is_str(details(CREATE, "{\"status\":\"PAUSED\"}"),
	       "[{\"field\":\"\",\"message\":\"Unrecognized key(s) in object: 'status'\"}]",
	       "a new session cannot choose its status");
}

static void test_scan_body(void)
{
	char body[400];

	is_str(details(SCAN, "{\"barcode\":\"LP00000001\"}"), "[]", "a barcode is a scan");
	is_str(details(SCAN, "{}"), "[{\"field\":\"barcode\",\"message\":\"Required\"}]",
	       "a scan needs a barcode");
	is_str(details(SCAN, "{\"barcode\":\"\"}"),
	       "[{\"field\":\"barcode\",\"message\":\"String must contain at least 1 character(s)\"}]",
	       "an empty barcode is refused");
	is_str(details(SCAN, "{\"barcode\":\"LP\\t1\"}"),
	       "[{\"field\":\"barcode\",\"message\":\"Barcode must not contain control characters\"}]",
	       "a barcode with a tab is refused");
	snprintf(body, sizeof body, "{\"barcode\":\"%0257d\"}", 0);
	is_str(details(SCAN, body),
	       "[{\"field\":\"barcode\",\"message\":\"String must contain at most 256 character(s)\"}]",
	       "a barcode of 257 characters is refused");
	ok(barcode_problem("LP 0001/é", strlen("LP 0001/é")) == NULL,
	   "spaces, slashes and non-ASCII letters are barcode characters");
	ok(barcode_problem("\x7f", 1) != NULL, "DEL is a control character");
	ok(barcode_problem("\xff", 1) != NULL, "invalid UTF-8 is refused");
	ok(barcode_problem("0101234567890128\x1d" "10ABC", 21) == NULL,
	   "the GS1 group separator (FNC1) is barcode data");
	is_str(details(SCAN, "{\"barcode\":\"LP\\u00011\"}"),
	       "[{\"field\":\"barcode\",\"message\":\"Barcode must not contain control characters\"}]",
	       "other control characters are still refused");
	is_str(details(SCAN, "{\"barcode\":\" \\r\\n\\t\"}"),
	       "[{\"field\":\"barcode\",\"message\":\"String must contain at least 1 character(s)\"}]",
	       "a scan of only wedge whitespace is empty");
}

/* What a keyboard-wedge scanner types, and the barcode it read. */
static void test_barcode_normalize(void)
{
	static const struct {
		const char *sent, *barcode, *why;
	} cases[] = {
		{ "LP00000001", "LP00000001", "a bare barcode is kept" },
		{ "LP00000001\r", "LP00000001", "a trailing CR (Enter) is stripped" },
		{ "LP00000001\r\n", "LP00000001", "a trailing CR LF is stripped" },
		{ "LP00000001\n", "LP00000001", "a trailing LF is stripped" },
		{ "LP00000001\t", "LP00000001", "a trailing Tab is stripped" },
		{ "  LP00000001  \r", "LP00000001", "surrounding spaces are stripped" },
		{ "]C1LP00000001", "LP00000001", "an AIM identifier ]C1 is stripped" },
		{ "]Q3LP00000001\r\n", "LP00000001", "an AIM identifier and the suffix are stripped" },
		{ "]e0" "0101234567890128\x1d" "10ABC", "0101234567890128\x1d" "10ABC",
		  "GS1 data keeps its group separator" },
		{ "LP 0001", "LP 0001", "a space inside is data" },
		{ "PAL/2025/0001", "PAL/2025/0001", "a slash is data" },
		{ "]CC1", "]CC1", "] letter letter is not an AIM identifier" },
		{ "]1LP", "]1LP", "] digit is not an AIM identifier" },
		{ "x]C1", "x]C1", "an AIM identifier is only stripped at the start" },
	};
	char out[BARCODE_BYTES_MAX + 1];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *problem = barcode_normalize(cases[i].sent, strlen(cases[i].sent), out);
		ok(problem == NULL && strcmp(out, cases[i].barcode) == 0, "%s", cases[i].why);
	}
	ok(barcode_normalize("]C1", 3, out) != NULL && out[0] == '\0',
	   "an AIM identifier alone is an empty barcode");
	ok(barcode_normalize("LP\x01", 3, out) != NULL, "a SOH is refused");
	ok(barcode_normalize("LP\x7f", 3, out) != NULL, "a DEL is refused");
	ok(barcode_normalize("LP\r1", 4, out) != NULL, "a CR inside the barcode is refused");
}

static void test_id(void)
{
	int32_t id = -1;

	ok(session_parse_id("42", &id) == SESSION_ID_OK && id == 42, "42 names session 42");
	ok(session_parse_id("007", &id) == SESSION_ID_OK && id == 7, "leading zeros are still an integer");
	ok(session_parse_id("2147483647", &id) == SESSION_ID_OK && id == INT32_MAX, "the largest id parses");
	is_int(session_parse_id("2147483648", &id), SESSION_ID_NO_SUCH, "an id beyond 32 bits names no session");
	is_int(session_parse_id("99999999999999999999999", &id), SESSION_ID_NO_SUCH,
	       "a huge integer names no session and does not overflow");
	is_int(session_parse_id("0", &id), SESSION_ID_NO_SUCH, "0 names no session");
	is_int(session_parse_id("-3", &id), SESSION_ID_NO_SUCH, "a negative integer names no session");
	is_int(session_parse_id("abc", &id), SESSION_ID_NOT_INTEGER, "letters are not an id");
	is_int(session_parse_id("1.5", &id), SESSION_ID_NOT_INTEGER, "a fraction is not an id");
	is_int(session_parse_id("1e3", &id), SESSION_ID_NOT_INTEGER, "an exponent is not an id");
	is_int(session_parse_id("+1", &id), SESSION_ID_NOT_INTEGER, "a plus sign is not an id");
	is_int(session_parse_id(" 1", &id), SESSION_ID_NOT_INTEGER, "a space is not an id");
	is_int(session_parse_id("-", &id), SESSION_ID_NOT_INTEGER, "a lone minus is not an id");
	is_int(session_parse_id("", &id), SESSION_ID_NOT_INTEGER, "nothing is not an id");
}

static void test_if_match(void)
{
	char v[IF_MATCH_ARRAY_LEN], big[2048];

	is_int(session_if_match(NULL, v), IF_MATCH_ABSENT, "no header means no precondition");
	is_int(session_if_match("*", v), IF_MATCH_ANY, "* matches any version");
	is_int(session_if_match(" * ", v), IF_MATCH_ANY, "* may have blanks around it");
	ok(session_if_match("\"v3\"", v) == IF_MATCH_LIST && strcmp(v, "{3}") == 0, "\"v3\" names version 3");
	ok(session_if_match("W/\"v3\"", v) == IF_MATCH_LIST && strcmp(v, "{3}") == 0,
	   "a weakened tag names the same version");
	ok(session_if_match("\"v3\", \"v12\" ,\"x\"", v) == IF_MATCH_LIST && strcmp(v, "{3,12}") == 0,
	   "a list names each of its versions and skips foreign tags");
	ok(session_if_match("\"abc\"", v) == IF_MATCH_LIST && strcmp(v, "{}") == 0,
	   "a foreign tag is well-formed but matches nothing");
	ok(session_if_match("\"v0\"", v) == IF_MATCH_LIST && strcmp(v, "{}") == 0, "v0 is no version");
	ok(session_if_match("\"v03\"", v) == IF_MATCH_LIST && strcmp(v, "{}") == 0,
	   "a version with a leading zero is not ours");
	ok(session_if_match("\"v99999999999\"", v) == IF_MATCH_LIST && strcmp(v, "{}") == 0,
	   "a version beyond 32 bits matches nothing");
	ok(session_if_match("", v) == IF_MATCH_LIST && strcmp(v, "{}") == 0, "an empty list matches nothing");
	is_int(session_if_match("v3", v), IF_MATCH_INVALID, "an unquoted tag is malformed");
	is_int(session_if_match("3", v), IF_MATCH_INVALID, "a bare number is malformed");
	is_int(session_if_match("\"v3", v), IF_MATCH_INVALID, "an unterminated tag is malformed");
	is_int(session_if_match("\"v3\" \"v4\"", v), IF_MATCH_INVALID, "tags must be separated by commas");
	is_int(session_if_match("*, \"v3\"", v), IF_MATCH_INVALID, "* cannot be part of a list");
	is_int(session_if_match("\"v 3\"", v), IF_MATCH_INVALID, "a space inside a tag is malformed");

	size_t len = 0;
	for (int i = 1; i <= IF_MATCH_MAX_TAGS; i++)
		len += (size_t)snprintf(big + len, sizeof big - len, "%s\"v%d\"", i > 1 ? "," : "", 2147483600 + i);
	ok(session_if_match(big, v) == IF_MATCH_LIST && strlen(v) == 1 + 32 * 11 - 1 + 1,
	   "32 ten-digit versions fit");
	snprintf(big + len, sizeof big - len, ",\"v1\"");
	is_int(session_if_match(big, v), IF_MATCH_INVALID, "a 33rd tag is too many");

	session_etag(7, v);
	is_str(v, "\"v7\"", "the ETag of version 7 is \"v7\"");
}

static void test_token(void)
{
	char a[SESSION_TOKEN_LEN + 1], b[SESSION_TOKEN_LEN + 1];
	bool url_safe = true;

	ok(session_token_new(a) && session_token_new(b), "tokens are made");
	is_int((long long)strlen(a), 43, "a token is 43 characters (32 bytes, base64url, no padding)");
	for (size_t i = 0; a[i]; i++)
		url_safe = url_safe && strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", a[i]);
	ok(url_safe, "a token uses only the URL-safe alphabet");
	ok(strcmp(a, b) != 0, "two tokens differ");
}

static void test_completion(void)
{
	char s[24];

	is_int(session_completion("ACTIVE", 5, 0), -1, "unknown without expected_items");
	is_int(session_completion("ACTIVE", 0, 10), 0, "nothing scanned is 0");
	is_int(session_completion("ACTIVE", 1, 3), 3333, "1 of 3 is 33.33");
	is_int(session_completion("ACTIVE", 2, 3), 6667, "2 of 3 rounds up to 66.67");
	is_int(session_completion("ACTIVE", 1, 8), 1250, "1 of 8 is 12.5");
	is_int(session_completion("PAUSED", 1, 20000), 1, "1 of 20000 (0.005) rounds half up to 0.01");
	is_int(session_completion("ACTIVE", 1, 30000), 0, "1 of 30000 (0.0033) rounds down to 0");
	is_int(session_completion("ACTIVE", 12, 10), 10000, "more than expected is capped at 100");
	is_int(session_completion("ACTIVE", INT32_MAX - 1, INT32_MAX), 10000, "2147483646 of 2147483647 rounds to 100");
	is_int(session_completion("COMPLETED", 0, 0), 10000, "a completed session is 100 even when unknown");
	is_int(session_completion("COMPLETED", 3, 10), 10000, "a completed session is 100 whatever was scanned");
	is_int(session_completion("CANCELLED", 3, 10), 3000, "a cancelled session keeps its progress");

	session_format_hundredths(3333, s);
	is_str(s, "33.33", "33.33 prints with two decimals");
	session_format_hundredths(1250, s);
	is_str(s, "12.5", "12.50 prints as 12.5");
	session_format_hundredths(10000, s);
	is_str(s, "100", "100.00 prints as 100");
	session_format_hundredths(5, s);
	is_str(s, "0.05", "0.05 keeps its leading zero");
	session_format_hundredths(0, s);
	is_str(s, "0", "0 prints as 0");
}

int main(void)
{
	test_patch_body();
	test_create_body();
	test_scan_body();
	test_barcode_normalize();
	test_id();
	test_if_match();
	test_token();
	test_completion();
	return done_testing();
}
