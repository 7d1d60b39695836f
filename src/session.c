/* session.c: scan-session rules that need no database (see session.h). */
#include "session.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "jsonx.h"

/* ---- request bodies ---------------------------------------------------------- */

static size_t error_count(const struct verrors *e)
{
	return e->details ? json_object_array_length(e->details) : 0;
}

static bool is_root_object(struct json_object *body, struct verrors *e)
{
	if (json_object_is_type(body, json_type_object))
		return true;
	verrors_add(e, "", "Expected object, received %s", jsonx_type_name(body));
	return false;
}

/* Zod's .strict(): one root issue naming every key outside known, in body order. */
static void reject_unknown_keys(struct json_object *body, const char *const *known,
				struct verrors *e)
{
	char msg[512];
	size_t len = 0;
	bool truncated = false;

	msg[0] = '\0';
	json_object_object_foreach(body, key, val) {
		bool found = false;
		(void)val;
		for (size_t i = 0; known[i]; i++)
			found = found || strcmp(key, known[i]) == 0;
		if (found)
			continue;
		int n = snprintf(msg + len, sizeof msg - len, "%s'%s'", len ? ", " : "", key);
		if (n < 0 || (size_t)n >= sizeof msg - len) {
			truncated = true;
			break;
		}
		len += (size_t)n;
	}
	if (len > 0 || truncated)
		verrors_add(e, "", "Unrecognized key(s) in object: %s%s", msg, truncated ? ", ..." : "");
}

bool session_create_parse(struct json_object *body, struct session_create *out, struct verrors *e)
{
	static const char *const known[] = {
		"location", "notes", "expected_items", "auto_commit", NULL
	};
	size_t before = error_count(e);

	memset(out, 0, sizeof *out);
	if (!is_root_object(body, e))
		return false;
	v_string(body, "", "location", false, SESSION_LOCATION_MAX, e, &out->location);
	v_string(body, "", "notes", false, SESSION_NOTES_MAX, e, &out->notes);
	out->has_expected = v_int(body, "", "expected_items", false, 1, INT32_MAX, e,
				  &out->expected_items);
	out->has_auto_commit = v_bool(body, "", "auto_commit", false, e, &out->auto_commit);
	reject_unknown_keys(body, known, e);
	return error_count(e) == before;
}

bool session_patch_parse(struct json_object *body, struct session_patch *out, struct verrors *e)
{
	static const char *const known[] = {
		"status", "location", "notes", "items_scanned", "auto_commit", NULL
	};
	static const char *const statuses[] = { "ACTIVE", "PAUSED", "COMPLETED", "CANCELLED", NULL };
	size_t before = error_count(e);

	memset(out, 0, sizeof *out);
	if (!is_root_object(body, e))
		return false;
	v_enum(body, "", "status", false, statuses, e, &out->status);
	v_string(body, "", "location", false, SESSION_LOCATION_MAX, e, &out->location);
	v_string(body, "", "notes", false, SESSION_NOTES_MAX, e, &out->notes);
	out->has_items = v_int(body, "", "items_scanned", false, 0, INT32_MAX, e, &out->items_scanned);
	out->has_auto_commit = v_bool(body, "", "auto_commit", false, e, &out->auto_commit);
	reject_unknown_keys(body, known, e);
	if (error_count(e) != before)
		return false;
	if (!out->status && !out->location && !out->notes && !out->has_items && !out->has_auto_commit) {
		verrors_add(e, "", "At least one of status, location, notes, items_scanned or "
			    "auto_commit must be given");
		return false;
	}
	return true;
}

bool scan_parse(struct json_object *body, char barcode[BARCODE_BYTES_MAX + 1], struct verrors *e)
{
	static const char *const known[] = { "barcode", NULL };
	size_t before = error_count(e);
	const char *s = NULL;

	barcode[0] = '\0';
	if (!is_root_object(body, e))
		return false;
	if (v_string(body, "", "barcode", true, 0, e, &s)) {
		const char *problem = barcode_normalize(s, strlen(s), barcode);
		if (problem)
			verrors_add(e, "barcode", "%s", problem);
	}
	reject_unknown_keys(body, known, e);
	return error_count(e) == before;
}

/* ---- path id ----------------------------------------------------------------- */

enum session_id session_parse_id(const char *s, int32_t *out)
{
	const char *p = s;
	bool negative = false;
	int64_t v = 0;
	bool big = false;

	*out = 0;
	if (*p == '-') {
		negative = true;
		p++;
	}
	if (*p == '\0')
		return SESSION_ID_NOT_INTEGER;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return SESSION_ID_NOT_INTEGER;
		if (!big) {
			v = v * 10 + (*p - '0');
			big = v > INT32_MAX;
		}
	}
	if (negative || big || v < 1)
		return SESSION_ID_NO_SUCH;
	*out = (int32_t)v;
	return SESSION_ID_OK;
}

/* ---- If-Match and ETags ------------------------------------------------------ */

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* RFC 9110 etagc: %x21 / %x23-7E / obs-text */
static bool is_etagc(unsigned char c)
{
	return c == 0x21 || (c >= 0x23 && c <= 0x7e) || c >= 0x80;
}

/* Our opaque-tag content: "v" and a version 1..INT32_MAX without leading zeros. */
static bool our_version(const char *s, size_t len, int64_t *version)
{
	int64_t v = 0;

	if (len < 2 || len > 11 || s[0] != 'v' || s[1] == '0')
		return false;
	for (size_t i = 1; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	if (v > INT32_MAX)
		return false;
	*version = v;
	return true;
}

enum if_match session_if_match(const char *header, char out[IF_MATCH_ARRAY_LEN])
{
	const char *p = header;
	size_t len = 1;
	int tags = 0;

	strcpy(out, "{");
	if (!header)
		return IF_MATCH_ABSENT;
	while (is_ows(*p))
		p++;
	if (*p == '*') {
		p++;
		while (is_ows(*p))
			p++;
		return *p == '\0' ? IF_MATCH_ANY : IF_MATCH_INVALID;
	}
	/* #entity-tag: elements separated by commas, empty elements allowed */
	for (;;) {
		while (is_ows(*p) || *p == ',')
			p++;
		if (*p == '\0')
			break;
		if (p[0] == 'W' && p[1] == '/')
			p += 2;
		if (*p != '"')
			return IF_MATCH_INVALID;
		const char *tag = ++p;
		while (is_etagc((unsigned char)*p))
			p++;
		if (*p != '"')
			return IF_MATCH_INVALID;
		size_t tag_len = (size_t)(p - tag);
		p++;
		if (++tags > IF_MATCH_MAX_TAGS)
			return IF_MATCH_INVALID;
		int64_t v;
		if (our_version(tag, tag_len, &v)) {
			int n = snprintf(out + len, IF_MATCH_ARRAY_LEN - len, "%s%" PRId64,
					 len > 1 ? "," : "", v);
			if (n < 0 || (size_t)n >= IF_MATCH_ARRAY_LEN - len)
				return IF_MATCH_INVALID;
			len += (size_t)n;
		}
		while (is_ows(*p))
			p++;
		if (*p != ',' && *p != '\0')
			return IF_MATCH_INVALID;
	}
	if (len + 2 > IF_MATCH_ARRAY_LEN)
		return IF_MATCH_INVALID;
	strcpy(out + len, "}");
	return IF_MATCH_LIST;
}

void session_etag(int64_t version, char out[32])
{
	snprintf(out, 32, "\"v%" PRId64 "\"", version);
}

/* ---- token and percentage ---------------------------------------------------- */

bool session_token_new(char out[SESSION_TOKEN_LEN + 1])
{
	unsigned char raw[32];
	unsigned char b64[48];

	if (RAND_bytes(raw, sizeof raw) != 1)
		return false;
	/* 32 bytes encode to 43 characters and one "=" of padding. */
	EVP_EncodeBlock(b64, raw, sizeof raw);
	for (size_t i = 0; i < SESSION_TOKEN_LEN; i++) {
		char c = (char)b64[i];
		out[i] = c == '+' ? '-' : c == '/' ? '_' : c;
	}
	out[SESSION_TOKEN_LEN] = '\0';
	return true;
}

int64_t session_completion(const char *status, int64_t items, int64_t expected)
{
	if (status && strcmp(status, "COMPLETED") == 0)
		return 10000;
	if (expected <= 0)
		return -1;
	if (items < 0)
		items = 0;
	if (items >= expected)
		return 10000;
	/* items < expected <= INT32_MAX, so nothing below overflows */
	return (items * 20000 + expected) / (2 * expected);
}

void session_format_hundredths(int64_t h, char out[24])
{
	int64_t whole = h / 100, frac = h % 100;

	if (frac == 0)
		snprintf(out, 24, "%" PRId64, whole);
	else if (frac % 10 == 0)
		snprintf(out, 24, "%" PRId64 ".%" PRId64, whole, frac / 10);
	else
		snprintf(out, 24, "%" PRId64 ".%02" PRId64, whole, frac);
}
