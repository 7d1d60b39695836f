/* jsonx_t.c: request bodies are read as JSON.parse would, and nothing PostgreSQL cannot store gets in. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsonx.h"
#include "tap.h"

/* Parses buf[0..len) and returns the error message, or NULL when it parsed. */
static const char *parse_error(const char *buf, size_t len)
{
	const char *err = "(unset)";
	struct json_object *o = jsonx_parse(buf, len, &err);

	if (o) {
		json_object_put(o);
		return NULL;
	}
	return err;
}

#define ERR(lit) parse_error((lit), sizeof(lit) - 1)

static struct json_object *parse(const char *s)
{
	const char *err = NULL;
	struct json_object *o = jsonx_parse(s, strlen(s), &err);

	if (!o)
		fprintf(stderr, "# parse of %s failed: %s\n", s, err);
	return o;
}

/* A rejected body always gets a message starting "Invalid JSON: ". */
static void rejected(const char *buf, size_t len, const char *what)
{
	const char *err = parse_error(buf, len);

	ok(err && strncmp(err, "Invalid JSON: ", 14) == 0, "rejects %s (%s)", what,
	   err ? err : "accepted");
}

#define REJECTS(lit, what) rejected((lit), sizeof(lit) - 1, (what))

static void test_accepts(void)
{
	struct json_object *o, *v;
	int64_t i = 0;

	o = parse("{\n  \"inspection_id\": \"550e8400-e29b-41d4-a716-446655440001\",\n"
		  "  \"result\": \"pass\",\n  \"inspection_method\": \"scanner\",\n"
		  "  \"scanner_device_id\": \"ZEBRA-TC52-001\"\n}\n");
	ok(o && json_object_is_type(o, json_type_object), "the spec's request example parses to an object");
	ok(o && json_object_object_get_ex(o, "result", &v) &&
		   strcmp(json_object_get_string(v), "pass") == 0,
	   "its fields are readable");
	json_object_put(o);

	o = parse("123");
	ok(o && jsonx_integer(o, &i) && i == 123, "a bare number at the very end of input parses");
	json_object_put(o);

	o = parse(" \t\r\n[1, 2.5, \"x\", true, false, null, {}, []] \t\r\n");
	ok(o && json_object_array_length(o) == 8, "all value kinds, with JSON whitespace around, parse");
	json_object_put(o);

	o = parse("{\"a\":1,\"a\":2}");
	ok(o && json_object_object_get_ex(o, "a", &v) && json_object_get_int(v) == 2,
	   "a duplicate key keeps the last value, like JSON.parse");
	json_object_put(o);

	o = parse("\"\\ud83d\\ude00 \xf0\x9f\x98\x80 \\u00e9\"");
	ok(o && strcmp(json_object_get_string(o), "\xf0\x9f\x98\x80 \xf0\x9f\x98\x80 \xc3\xa9") == 0,
	   "escaped surrogate pairs and raw UTF-8 decode to the same characters");
	json_object_put(o);

	o = parse("[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\", \"\x7f\"]");
	ok(o != NULL, "every JSON escape, and a raw DEL character, is accepted");
	json_object_put(o);

	o = parse("[-0, 0, 0.5, -1.25e+3, 1E2, 1e-400]");
	ok(o != NULL, "well-formed numbers, including an underflow to 0, are accepted");
	json_object_put(o);
}

static void test_rejects(void)
{
	char *deep;
	size_t n = 10000;

	is_str(ERR(""), "Invalid JSON: empty body", "an empty body is rejected");
	is_str(ERR(" \r\n\t "), "Invalid JSON: empty body", "a whitespace-only body is rejected");
	is_str(parse_error(NULL, 0), "Invalid JSON: empty body", "a missing body is rejected");

	REJECTS("NaN", "NaN");
	REJECTS("Infinity", "Infinity");
	REJECTS("-Infinity", "-Infinity");
	REJECTS("{\"defects_found\":NaN}", "NaN as a field value");
	REJECTS("[Infinity]", "Infinity inside an array");
	is_str(ERR("1e400"), "Invalid JSON: number out of range", "1e400 is rejected as out of range");
	is_str(ERR("{\"a\":-1e400}"), "Invalid JSON: number out of range", "-1e400 is rejected as out of range");

	is_str(ERR("\"a\tb\""), "Invalid JSON: control character in string",
	       "a raw tab inside a string is rejected");
	is_str(ERR("{\"k\":\"line\nbreak\"}"), "Invalid JSON: control character in string",
	       "a raw newline inside a string is rejected");
	REJECTS("[\"\x01\"]", "a raw U+0001 in a string");
	REJECTS("[1]\0", "a trailing NUL byte");
	REJECTS("[\"a\0b\"]", "a raw NUL byte inside a string");

	REJECTS("\"\\u0000\"", "\\u0000 in a string value");
	REJECTS("{\"a\":\"x\\u0000y\"}", "\\u0000 in a nested string value");
	REJECTS("{\"a\\u0000b\":1}", "\\u0000 in an object key");
	REJECTS("\"\\ud800\"", "a lone high surrogate");
	REJECTS("\"\\udc00\"", "a lone low surrogate");
	REJECTS("\"\\ud800x\"", "a high surrogate followed by a plain character");
	REJECTS("\"\\ud800\\u0041\"", "a high surrogate followed by a non-surrogate escape");
	REJECTS("{\"\\udfff\":1}", "a lone surrogate in a key");

	REJECTS("\"\xc0\x80\"", "overlong UTF-8 (C0 80)");
	REJECTS("\"\xe0\x80\x80\"", "overlong UTF-8 (E0 80 80)");
	REJECTS("\"\xed\xa0\x80\"", "UTF-8-encoded surrogate (ED A0 80)");
	REJECTS("\"\xf4\x90\x80\x80\"", "UTF-8 beyond U+10FFFF (F4 90 80 80)");
	REJECTS("\"\xe2\x82\"", "truncated UTF-8");
	REJECTS("\"\xff\"", "an FF byte");

	deep = malloc(2 * n);
	memset(deep, '[', n);
	memset(deep + n, ']', n);
	is_str(parse_error(deep, 2 * n), "Invalid JSON: nesting too deep",
	       "10000 nested arrays are rejected without crashing");
	for (size_t i = 0; i < n; i++)
		deep[i] = (i % 5 == 0) ? '{' : (i % 5 == 1) ? '"' : (i % 5 == 2) ? 'a' : (i % 5 == 3) ? '"' : ':';
	is_str(parse_error(deep, n), "Invalid JSON: nesting too deep",
	       "2000 nested objects are rejected without crashing");
	memset(deep, '[', JSONX_MAX_DEPTH);
	memset(deep + JSONX_MAX_DEPTH, ']', JSONX_MAX_DEPTH);
	ok(parse_error(deep, 2 * JSONX_MAX_DEPTH) == NULL, "nesting exactly %d deep is accepted",
	   JSONX_MAX_DEPTH);
	memset(deep, '[', JSONX_MAX_DEPTH + 1);
	memset(deep + JSONX_MAX_DEPTH + 1, ']', JSONX_MAX_DEPTH + 1);
	is_str(parse_error(deep, 2 * (JSONX_MAX_DEPTH + 1)), "Invalid JSON: nesting too deep",
	       "nesting %d deep is rejected", JSONX_MAX_DEPTH + 1);
	free(deep);

	REJECTS("{} x", "trailing garbage after an object");
	REJECTS("{}{}", "two concatenated objects");
	REJECTS("1 2", "two numbers");
	REJECTS("[1]]", "an extra closing bracket");
	is_str(ERR("{\"a\":"), "Invalid JSON: unexpected end of input", "a truncated body is rejected");
	REJECTS("{\"a\":1", "an unclosed object");
	REJECTS("\"abc", "an unterminated string");

	/* Things json-c 0.16 would take even in strict mode, but JSON.parse refuses. */
	REJECTS("-01", "a number with a leading zero (-01)");
	REJECTS("[01]", "a number with a leading zero (01)");
	REJECTS("1.", "a number ending in a dot");
	REJECTS("[1.]", "a number ending in a dot inside an array");
	REJECTS(".5", "a number starting with a dot");
	REJECTS("+1", "a number with a plus sign");
	REJECTS("1e", "an exponent without digits");
	REJECTS("0x10", "a hex number");
	REJECTS("[1,]", "a trailing comma in an array");
	REJECTS("{\"a\":1,}", "a trailing comma in an object");
	REJECTS("{a:1}", "an unquoted key");
	REJECTS("'a'", "a single-quoted string");
	REJECTS("/*c*/1", "a comment");
	REJECTS("\f1", "a form feed as whitespace");
	REJECTS("TRUE", "an upper-case literal");
	REJECTS("nan", "lower-case nan");
	REJECTS("\"\\x41\"", "a \\x escape");
	REJECTS("\"\\u12\"", "a short \\u escape");
	REJECTS("\xef\xbb\xbf{}", "a byte order mark");
	REJECTS("null", "a top-level null");
}

static void test_numbers(void)
{
	struct json_object *o = parse("[3, 3.0, 3.5, \"3\", true, null, 1e2, 99999999999999999999,"
				      " -99999999999999999999, 1e300, -0.0, 9007199254740993]");
	int64_t i = 0;
	double d = 0;

	ok(jsonx_integer(json_object_array_get_idx(o, 0), &i) && i == 3, "3 is an integer");
	i = 0;
	ok(jsonx_integer(json_object_array_get_idx(o, 1), &i) && i == 3, "3.0 is an integer, as in Number.isInteger");
	ok(!jsonx_integer(json_object_array_get_idx(o, 2), &i), "3.5 is not an integer");
	ok(!jsonx_integer(json_object_array_get_idx(o, 3), &i), "the string \"3\" is not coerced to an integer");
	ok(!jsonx_integer(json_object_array_get_idx(o, 4), &i), "true is not coerced to an integer");
	ok(!jsonx_integer(json_object_array_get_idx(o, 5), &i), "null is not an integer");
	ok(jsonx_integer(json_object_array_get_idx(o, 6), &i) && i == 100, "1e2 is the integer 100");
	ok(jsonx_integer(json_object_array_get_idx(o, 7), &i) && i == INT64_MAX,
	   "an integer beyond int64 saturates to INT64_MAX");
	ok(jsonx_integer(json_object_array_get_idx(o, 8), &i) && i == INT64_MIN,
	   "a negative integer beyond int64 saturates to INT64_MIN");
	ok(jsonx_integer(json_object_array_get_idx(o, 9), &i) && i == INT64_MAX,
	   "1e300 is an integer that saturates to INT64_MAX");
	ok(jsonx_integer(json_object_array_get_idx(o, 10), &i) && i == 0, "-0.0 is the integer 0");
	ok(jsonx_integer(json_object_array_get_idx(o, 11), &i), "a large odd integer is an integer");

	ok(jsonx_number(json_object_array_get_idx(o, 2), &d) && d == 3.5, "3.5 is a number");
	ok(!jsonx_number(json_object_array_get_idx(o, 3), &d), "the string \"3\" is not coerced to a number");
	ok(!jsonx_number(json_object_array_get_idx(o, 4), &d), "true is not coerced to a number");
	json_object_put(o);
}

/* json-c saturates integer literals beyond 64 bits; jsonx reads them as doubles, as
 * JSON.parse does, so a stored action (offline sync) keeps the number as sent. */
static void test_wide_integers(void)
{
	static const char *const exact[] = {
		"[18446744073709551616,-9223372036854775809]",
		"{\"a\":100000000000000000000000000000000000000,\"b\":[-99999999999999999999]}",
		"[18446744073709551615,-9223372036854775808,9223372036854775808]",
	};
	char zeros[402];
	int64_t i = 0;

	for (size_t k = 0; k < sizeof exact / sizeof exact[0]; k++) {
		struct json_object *o = parse(exact[k]);
		size_t len = 0;
		const char *text = o ? jsonx_dump(o, &len) : "";
		is_str(text, exact[k], "an integer beyond 64 bits is written back as it was sent");
		json_object_put(o);
	}
	struct json_object *o = parse("[18446744073709551616,-18446744073709551616]");
	ok(jsonx_integer(json_object_array_get_idx(o, 0), &i) && i == INT64_MAX,
	   "2^64 is still an integer beyond any range (INT64_MAX)");
	ok(jsonx_integer(json_object_array_get_idx(o, 1), &i) && i == INT64_MIN,
	   "-2^64 is still an integer beyond any range (INT64_MIN)");
	json_object_put(o);

	zeros[0] = '1';
	memset(zeros + 1, '0', 400);
	zeros[401] = '\0';
	is_str(ERR(zeros), "Invalid JSON: number out of range", "a 401-digit integer is out of range, like 1e400");
}

static void test_types_and_dump(void)
{
	struct json_object *o = parse("{\"s\":\"x\",\"i\":1,\"d\":1.5,\"b\":false,\"n\":null,\"a\":[],\"o\":{}}");
	struct json_object *v;
	const char *s;
	size_t len = 0;

	json_object_object_get_ex(o, "s", &v);
	is_str(jsonx_type_name(v), "string", "a string is named \"string\"");
	json_object_object_get_ex(o, "i", &v);
	is_str(jsonx_type_name(v), "number", "an integer is named \"number\"");
	json_object_object_get_ex(o, "d", &v);
	is_str(jsonx_type_name(v), "number", "a fraction is named \"number\"");
	json_object_object_get_ex(o, "b", &v);
	is_str(jsonx_type_name(v), "boolean", "a boolean is named \"boolean\"");
	json_object_object_get_ex(o, "n", &v);
	is_str(jsonx_type_name(v), "null", "null is named \"null\"");
	json_object_object_get_ex(o, "a", &v);
	is_str(jsonx_type_name(v), "array", "an array is named \"array\", not \"object\"");
	json_object_object_get_ex(o, "o", &v);
	is_str(jsonx_type_name(v), "object", "an object is named \"object\"");
	json_object_put(o);

	o = parse("{ \"path\" : \"a/b\", \"list\" : [ 1, 2 ], \"none\" : null }");
	s = jsonx_dump(o, &len);
	is_str(s, "{\"path\":\"a/b\",\"list\":[1,2],\"none\":null}", "dump is compact and leaves '/' unescaped");
	is_int((long long)len, (long long)strlen(s), "dump reports its length");
	json_object_put(o);

	o = jsonx_str_or_null(NULL);
	ok(o == NULL, "jsonx_str_or_null(NULL) is JSON null");
	o = jsonx_str_or_null("ZEBRA-TC52-001");
	is_str(jsonx_dump(o, NULL), "\"ZEBRA-TC52-001\"", "jsonx_str_or_null(s) is the string s");
	json_object_put(o);
}

int main(void)
{
	test_accepts();
	test_rejects();
	test_numbers();
	test_wide_integers();
	test_types_and_dump();
	return done_testing();
}
