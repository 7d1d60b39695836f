/* jsonx.c: strict JSON parsing (JSON.parse-compatible grammar) over json-c 0.16. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "jsonx.h"
#include "validate.h"

/* ---------------------------------------------------------------------------
 * Pre-scan
 *
 * json-c 0.16's strict mode is looser than JSON.parse: it takes NaN, Infinity and
 * -Infinity, numbers such as "-01" and "1.", raw control characters inside strings,
 * overlong and surrogate UTF-8 (its VALIDATE_UTF8 only checks byte shapes), turns a
 * lone "\ud800" into U+FFFD, and cuts object keys at "\u0000". So before json-c sees
 * the body, this scanner checks the whole RFC 8259 grammar byte by byte. Containers
 * recurse, but never deeper than JSONX_MAX_DEPTH, so a hostile "[[[[..." cannot
 * exhaust the stack. It also finds the integer literals json-c would saturate
 * (beyond 64 bits), which are then read as doubles, as JSON.parse reads them.
 * ------------------------------------------------------------------------- */

struct scan {
	const unsigned char *start;
	const unsigned char *p;
	const unsigned char *end;
	int depth;
	const char *err;
	/* End offsets of integer literals beyond 64 bits (see wide_integer()). */
	size_t *wide;
	size_t n_wide, cap_wide;
};

static bool scan_value(struct scan *s);

static bool scan_fail(struct scan *s, const char *msg)
{
	if (!s->err)
		s->err = msg;
	return false;
}

static void skip_ws(struct scan *s)
{
	while (s->p < s->end &&
	       (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

int hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Reads the 4 hex digits after "\u" at s->p (which points at the 'u'). Returns the
 * code unit, or -1 when the escape is malformed. On success s->p is past the digits. */
static long scan_u_escape(struct scan *s)
{
	long v = 0;

	if (s->end - s->p < 5)
		return -1;
	for (int i = 1; i <= 4; i++) {
		int h = hex_digit((unsigned char)s->p[i]);
		if (h < 0)
			return -1;
		v = v * 16 + h;
	}
	s->p += 5;
	return v;
}

/* Length of the well-formed UTF-8 sequence starting at p, or 0 when it is not one. */
static size_t utf8_seq_len(const unsigned char *p, const unsigned char *end)
{
	unsigned char c = p[0];
	size_t n;
	unsigned char lo = 0x80, hi = 0xBF;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		n = 2;
	else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		if (c == 0xE0)
			lo = 0xA0; /* no overlongs */
		else if (c == 0xED)
			hi = 0x9F; /* no surrogates */
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		if (c == 0xF0)
			lo = 0x90; /* no overlongs */
		else if (c == 0xF4)
			hi = 0x8F; /* nothing above U+10FFFF */
	} else
		return 0;
	if ((size_t)(end - p) < n)
		return 0;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xBF)
			return 0;
	return n;
}

/* s->p is at the opening quote. */
static bool scan_string(struct scan *s)
{
	s->p++;
	while (s->p < s->end) {
		unsigned char c = *s->p;

		if (c == '"') {
			s->p++;
			return true;
		}
		if (c < 0x20)
			return scan_fail(s, "Invalid JSON: control character in string");
		if (c == '\\') {
			long u;

			if (++s->p >= s->end)
				break;
			switch (*s->p) {
			case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
				s->p++;
				continue;
			case 'u':
				break;
			default:
				return scan_fail(s, "Invalid JSON: bad escape in string");
			}
			u = scan_u_escape(s);
			if (u < 0)
				return scan_fail(s, "Invalid JSON: bad \\u escape in string");
			if (u == 0)
				return scan_fail(s, "Invalid JSON: \\u0000 is not allowed in strings");
			if (u >= 0xDC00 && u <= 0xDFFF)
				return scan_fail(s, "Invalid JSON: lone surrogate in string");
			if (u >= 0xD800 && u <= 0xDBFF) {
				long lo;

				if (s->end - s->p < 2 || s->p[0] != '\\' || s->p[1] != 'u')
					return scan_fail(s, "Invalid JSON: lone surrogate in string");
				s->p++;
				lo = scan_u_escape(s);
				if (lo < 0)
					return scan_fail(s, "Invalid JSON: bad \\u escape in string");
				if (lo < 0xDC00 || lo > 0xDFFF)
					return scan_fail(s, "Invalid JSON: lone surrogate in string");
			}
			continue;
		}
		{
			size_t n = utf8_seq_len(s->p, s->end);
			if (n == 0)
				return scan_fail(s, "Invalid JSON: invalid UTF-8");
			s->p += n;
		}
	}
	return scan_fail(s, "Invalid JSON: unexpected end of input");
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* True when the integer literal digits[0..n) (no sign, no leading zero) is beyond
 * what json-c reads exactly: below INT64_MIN when negative, above UINT64_MAX when not.
 * json-c would saturate it, so the value written back out (an offline action's queue
 * row keeps the action as sent) would differ from the one the client sent. */
static bool wide_integer(const unsigned char *digits, size_t n, bool negative)
{
	const char *limit = negative ? "9223372036854775808" : "18446744073709551615";
	size_t ln = strlen(limit);

	if (n != ln)
		return n > ln;
	return memcmp(digits, limit, n) > 0;
}

/* Remembers that the number ending at s->p must be read as a double. */
static bool note_wide(struct scan *s)
{
	if (s->n_wide == s->cap_wide) {
		size_t cap = s->cap_wide ? s->cap_wide * 2 : 8;
		size_t *w = realloc(s->wide, cap * sizeof *w);
		if (!w)
			return scan_fail(s, "Invalid JSON: out of memory");
		s->wide = w;
		s->cap_wide = cap;
	}
	s->wide[s->n_wide++] = (size_t)(s->p - s->start);
	return true;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool scan_number(struct scan *s)
{
	const char *bad = "Invalid JSON: malformed number";
	bool negative = false, integer = true;
	const unsigned char *digits;

	if (s->p < s->end && *s->p == '-') {
		s->p++;
		negative = true;
	}
	digits = s->p;
	if (s->p >= s->end)
		return scan_fail(s, "Invalid JSON: unexpected end of input");
	if (*s->p == '0') {
		s->p++;
		if (s->p < s->end && is_digit(*s->p))
			return scan_fail(s, bad);
	} else if (is_digit(*s->p)) {
		while (s->p < s->end && is_digit(*s->p))
			s->p++;
	} else if (*s->p == 'I') {
		return scan_fail(s, "Invalid JSON: NaN and Infinity are not allowed");
	} else
		return scan_fail(s, bad);
	size_t n_digits = (size_t)(s->p - digits);
	if (s->p < s->end && *s->p == '.') {
		integer = false;
		s->p++;
		if (s->p >= s->end || !is_digit(*s->p))
			return scan_fail(s, bad);
		while (s->p < s->end && is_digit(*s->p))
			s->p++;
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		integer = false;
		s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			s->p++;
		if (s->p >= s->end || !is_digit(*s->p))
			return scan_fail(s, bad);
		while (s->p < s->end && is_digit(*s->p))
			s->p++;
	}
	if (integer && wide_integer(digits, n_digits, negative))
		return note_wide(s);
	return true;
}

static bool scan_word(struct scan *s, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
		return scan_fail(s, "Invalid JSON: unexpected token");
	s->p += n;
	return true;
}

/* s->p is at '{' or '['. */
static bool scan_container(struct scan *s)
{
	unsigned char close = *s->p == '{' ? '}' : ']';
	bool object = close == '}';

	if (++s->depth > JSONX_MAX_DEPTH)
		return scan_fail(s, "Invalid JSON: nesting too deep");
	s->p++;
	skip_ws(s);
	if (s->p < s->end && *s->p == close) {
		s->p++;
		s->depth--;
		return true;
	}
	for (;;) {
		if (object) {
			skip_ws(s);
			if (s->p >= s->end)
				return scan_fail(s, "Invalid JSON: unexpected end of input");
			if (*s->p != '"')
				return scan_fail(s, "Invalid JSON: expected a quoted property name");
			if (!scan_string(s))
				return false;
			skip_ws(s);
			if (s->p >= s->end)
				return scan_fail(s, "Invalid JSON: unexpected end of input");
			if (*s->p != ':')
				return scan_fail(s, "Invalid JSON: expected ':'");
			s->p++;
		}
		if (!scan_value(s))
			return false;
		skip_ws(s);
		if (s->p >= s->end)
			return scan_fail(s, "Invalid JSON: unexpected end of input");
		if (*s->p == close) {
			s->p++;
			s->depth--;
			return true;
		}
		if (*s->p != ',')
			return scan_fail(s, object ? "Invalid JSON: expected ',' or '}'"
						   : "Invalid JSON: expected ',' or ']'");
		s->p++;
	}
}

static bool scan_value(struct scan *s)
{
	skip_ws(s);
	if (s->p >= s->end)
		return scan_fail(s, "Invalid JSON: unexpected end of input");
	switch (*s->p) {
	case '{':
	case '[':
		return scan_container(s);
	case '"':
		return scan_string(s);
	case 't':
		return scan_word(s, "true");
	case 'f':
		return scan_word(s, "false");
	case 'n':
		return scan_word(s, "null");
	case 'N':
	case 'I':
		return scan_fail(s, "Invalid JSON: NaN and Infinity are not allowed");
	default:
		if (*s->p == '-' || is_digit(*s->p))
			return scan_number(s);
		return scan_fail(s, "Invalid JSON: unexpected character");
	}
}

/* Returns NULL when buf[0..len) is one well-formed JSON value with optional
 * surrounding whitespace, otherwise the user-facing reason. s->wide lists the
 * integer literals json-c cannot read exactly; the caller frees it. */
static const char *prescan(const char *buf, size_t len, struct scan *s)
{
	memset(s, 0, sizeof *s);
	s->start = s->p = (const unsigned char *)buf;
	s->end = s->p + len;
	skip_ws(s);
	if (s->p == s->end)
		return "Invalid JSON: empty body";
	if (!scan_value(s))
		return s->err;
	skip_ws(s);
	if (s->p != s->end)
		return "Invalid JSON: unexpected data after the JSON value";
	return NULL;
}

/* A copy of buf with "e0" after each integer literal beyond 64 bits, so that json-c
 * reads it as a double, as JavaScript does, and keeps its text for writing it back
 * (json-c writes a double as the text it was parsed from). Sets *out_len; NULL when
 * out of memory. */
static char *widen_integers(const char *buf, size_t len, const struct scan *s, size_t *out_len)
{
	size_t n = len + 2 * s->n_wide, from = 0, o = 0;
	char *copy = malloc(n + 1);

	if (!copy)
		return NULL;
	for (size_t i = 0; i < s->n_wide; i++) {
		memcpy(copy + o, buf + from, s->wide[i] - from);
		o += s->wide[i] - from;
		from = s->wide[i];
		copy[o++] = 'e';
		copy[o++] = '0';
	}
	memcpy(copy + o, buf + from, len - from);
	copy[n] = '\0';
	*out_len = n;
	return copy;
}

/* ---------------------------------------------------------------------------
 * Post-walk: what only the built tree can show. The pre-scan already rules out the
 * string problems; checking the decoded strings again keeps the guarantee true even
 * if json-c's decoding ever differs from the scanner's reading.
 * ------------------------------------------------------------------------- */

/* Returns NULL when the tree is acceptable, otherwise the reason. Recursion is bounded
 * by the parse depth limit. */
static const char *postwalk(struct json_object *v)
{
	const char *err = NULL;

	switch (json_object_get_type(v)) {
	case json_type_double:
		if (!isfinite(json_object_get_double(v)))
			return "Invalid JSON: number out of range";
		return NULL;
	case json_type_string: {
		const char *str = json_object_get_string(v);
		size_t n = (size_t)json_object_get_string_len(v);

		if (strlen(str) != n)
			return "Invalid JSON: \\u0000 is not allowed in strings";
		if (!utf8_valid(str, n))
			return "Invalid JSON: invalid UTF-8";
		return NULL;
	}
	case json_type_array: {
		size_t n = json_object_array_length(v);

		for (size_t i = 0; i < n && !err; i++)
			err = postwalk(json_object_array_get_idx(v, i));
		return err;
	}
	case json_type_object: {
		json_object_object_foreach(v, key, child) {
			if (!utf8_valid(key, strlen(key)))
				return "Invalid JSON: invalid UTF-8";
			err = postwalk(child);
			if (err)
				return err;
		}
		return NULL;
	}
	default:
		return NULL;
	}
}

/* After widen_integers(): json-c kept each widened literal's text, "e0" included, to
 * write it back. Gives those doubles their text as sent. A client's own
 * "<integer beyond 64 bits>e0" loses its "e0" too, which changes no value. Recursion
 * is bounded by the parse depth limit. Returns false when out of memory. */
static bool unwiden(struct json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_double: {
		const char *text = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
		size_t n = strlen(text);
		bool negative = text[0] == '-';
		const unsigned char *digits = (const unsigned char *)text + negative;

		if (n < 3 + (size_t)negative || strcmp(text + n - 2, "e0") != 0)
			return true;
		size_t nd = n - (size_t)negative - 2;
		if (!wide_integer(digits, nd, negative))
			return true;
		for (size_t i = 0; i < nd; i++)
			if (!is_digit(digits[i]))
				return true;
		char *sent = strndup(text, n - 2);
		if (!sent)
			return false;
		/* ownership of sent transferred */
		json_object_set_serializer(v, json_object_userdata_to_json_string, sent, json_object_free_userdata);
		return true;
	}
	case json_type_array: {
		size_t n = json_object_array_length(v);

		for (size_t i = 0; i < n; i++)
			if (!unwiden(json_object_array_get_idx(v, i)))
				return false;
		return true;
	}
	case json_type_object: {
		json_object_object_foreach(v, key, child) {
			(void)key;
			if (!unwiden(child))
				return false;
		}
		return true;
	}
	default:
		return true;
	}
}

static const char *tokener_message(enum json_tokener_error jerr)
{
	switch (jerr) {
	case json_tokener_error_depth:
		return "Invalid JSON: nesting too deep";
	case json_tokener_continue:
		return "Invalid JSON: unexpected end of input";
	case json_tokener_error_parse_number:
		/* The pre-scan has checked the number's grammar, so json-c can only be
		 * refusing its magnitude (as later json-c versions may for 1e400). */
		return "Invalid JSON: number out of range";
	case json_tokener_error_parse_utf8_string:
		return "Invalid JSON: invalid UTF-8";
	default:
		return "Invalid JSON: unexpected character";
	}
}

/* ---------------------------------------------------------------------------
 * Public API
 * ------------------------------------------------------------------------- */

/* A top-level `null` is valid JSON but has no json-c object, so it is reported as an
 * error: no endpoint accepts a null body (Express's strict body parser refuses it too). */
struct json_object *jsonx_parse(const char *buf, size_t len, const char **err)
{
	struct json_tokener *tok = NULL;
	struct json_object *root = NULL;
	enum json_tokener_error jerr;
	struct scan sc;
	char *widened = NULL;
	const char *msg;
	size_t end;

	memset(&sc, 0, sizeof sc);
	if (!buf)
		len = 0;
	if (len > INT_MAX) {
		msg = "Invalid JSON: body too large";
		goto fail;
	}
	msg = prescan(buf, len, &sc);
	if (msg)
		goto fail;
	if (sc.n_wide > 0) {
		widened = widen_integers(buf, len, &sc, &len);
		if (!widened) {
			msg = "Invalid JSON: out of memory";
			goto fail;
		}
		if (len > INT_MAX) {
			msg = "Invalid JSON: body too large";
			goto fail;
		}
		buf = widened;
	}

	tok = json_tokener_new_ex(JSONX_MAX_DEPTH);
	if (!tok) {
		msg = "Invalid JSON: out of memory";
		goto fail;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	root = json_tokener_parse_ex(tok, buf, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	if (!root && jerr == json_tokener_continue && end == len) {
		/* A bare number at the end of input may still be growing; the NUL
		 * terminator tells json-c it is complete. */
		root = json_tokener_parse_ex(tok, "", 1);
		jerr = json_tokener_get_error(tok);
		end = len;
	}
	if (jerr != json_tokener_success) {
		msg = tokener_message(jerr);
		goto fail;
	}
	if (!root) {
		msg = "Invalid JSON: top-level null is not accepted";
		goto fail;
	}
	for (; end < len; end++) {
		char c = buf[end];
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
			msg = "Invalid JSON: unexpected data after the JSON value";
			goto fail;
		}
	}
	msg = postwalk(root);
	if (msg)
		goto fail;
	if (widened && !unwiden(root)) {
		msg = "Invalid JSON: out of memory";
		goto fail;
	}

	json_tokener_free(tok);
	free(widened);
	free(sc.wide);
	if (err)
		*err = NULL;
	return root;
fail:
	if (root)
		json_object_put(root);
	if (tok)
		json_tokener_free(tok);
	free(widened);
	free(sc.wide);
	if (err)
		*err = msg;
	return NULL;
}

const char *jsonx_type_name(struct json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null:
		return "null";
	case json_type_boolean:
		return "boolean";
	case json_type_double:
	case json_type_int:
		return "number";
	case json_type_object:
		return "object";
	case json_type_array:
		return "array";
	case json_type_string:
		return "string";
	}
	return "unknown";
}

/* Doubles outside int64 clamp to INT64_MIN/INT64_MAX. Integer literals beyond 64
 * bits are read as doubles (see widen_integers), so a huge value always lands
 * outside any range a caller checks, as the equally huge JavaScript number would. */
bool jsonx_integer(struct json_object *v, int64_t *out)
{
	double d;

	switch (json_object_get_type(v)) {
	case json_type_int:
		*out = json_object_get_int64(v);
		return true;
	case json_type_double:
		d = json_object_get_double(v);
		if (!isfinite(d) || floor(d) != d)
			return false;
		if (d >= 9223372036854775808.0)
			*out = INT64_MAX;
		else if (d < -9223372036854775808.0)
			*out = INT64_MIN;
		else
			*out = (int64_t)d;
		return true;
	default:
		return false;
	}
}

bool jsonx_number(struct json_object *v, double *out)
{
	double d;

	switch (json_object_get_type(v)) {
	case json_type_int:
	case json_type_double:
		d = json_object_get_double(v);
		if (!isfinite(d))
			return false;
		*out = d;
		return true;
	default:
		return false;
	}
}

const char *jsonx_dump(struct json_object *obj, size_t *len)
{
	size_t n = 0;
	const char *s = json_object_to_json_string_length(
		obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);

	if (len)
		*len = n;
	return s;
}

struct json_object *jsonx_str_or_null(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}
