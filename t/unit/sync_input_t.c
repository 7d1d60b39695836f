/* sync_input_t.c: an offline batch is judged as the spec's syncOfflineSchema would
 * judge it, and its actions come out oldest first, ties in array order. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonx.h"
#include "sync_input.h"
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

static const char *details_of(struct verrors *e)
{
	static char buf[8192];
	struct json_object *resp = verrors_response(e), *details = NULL;

	json_object_object_get_ex(resp, "details", &details);
	snprintf(buf, sizeof buf, "%s", jsonx_dump(details, NULL));
	json_object_put(resp);
	return buf;
}

/* Runs sync_batch_parse; returns the details ("[]" when valid). */
static const char *batch(const char *body, struct sync_batch *b, bool *valid)
{
	struct json_object *o = parse(body);
	struct verrors e;
	const char *d;

	verrors_init(&e);
	*valid = sync_batch_parse(o, b, &e);
	d = details_of(&e);
	verrors_free(&e);
	json_object_put(o);
	return d;
}

#define ID(n) "\"00000000-0000-4000-8000-0000000000" #n "\""
#define ACT(n, ts) "{\"id\":" ID(n) ",\"type\":\"quick_inspection\",\"payload\":{},\"timestamp\":\"" ts "\"}"

/* {"actions":[n valid actions]}, malloc'd. */
static char *many(int n)
{
	size_t cap = (size_t)(n + 1) * 200, len;
	char *s = malloc(cap);

	len = (size_t)snprintf(s, cap, "{\"actions\":[");
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(s + len, cap - len, "%s" ACT(00, "2025-01-23T10:30:00Z"), i ? "," : "");
	snprintf(s + len, cap - len, "]}");
	return s;
}

static void test_order(void)
{
	struct sync_batch *b = malloc(sizeof *b);
	struct json_object *o;
	struct verrors e;
	bool valid;

	batch("{\"actions\":[" ACT(10, "2025-01-23T10:35:00Z") "," ACT(11, "2025-01-23T10:30:00.5Z") ","
	      ACT(12, "2025-01-23T10:30:00Z") "," ACT(13, "2025-01-23T10:30:00.500Z") ","
	      ACT(14, "2025-01-23T10:30:00.0000001Z") "," ACT(15, "2025-01-23T10:30:00Z") "]}",
	      b, &valid);
	ok(valid, "a batch of six valid actions is valid");
	is_int((long long)b->n, 6, "all six are returned");
	/* Only index and local_us are read below: the other fields point into the freed tree. */
	is_int((long long)b->actions[0].index, 2, "oldest first: 10:30:00 (array position 2)");
	is_int((long long)b->actions[1].index, 4, "then 10:30:00.0000001, whose 100 ns are below PostgreSQL's precision, "
	       "after the equal 10:30:00 sent earlier in the array");
	is_int((long long)b->actions[2].index, 5, "then the second 10:30:00, in array order");
	is_int((long long)b->actions[3].index, 1, "then 10:30:00.5");
	is_int((long long)b->actions[4].index, 3, "then 10:30:00.500, equal to it, in array order");
	is_int((long long)b->actions[5].index, 0, "the newest last");
	is_int((long long)b->actions[0].local_us, 1737628200LL * 1000000, "the timestamp is read to the microsecond");
	is_int((long long)b->actions[3].local_us, 1737628200LL * 1000000 + 500000, "fractions are kept");

	/* 100 accepted, 101 rejected */
	{
		char *s = many(101);
		is_str(batch(s, b, &valid), "[{\"field\":\"actions\",\"message\":\"Array must contain at most 100 element(s)\"}]",
		       "101 actions: only the length is reported");
		ok(!valid && b->n == 0, "and the batch is empty");
		free(s);
		s = many(100);
		batch(s, b, &valid);
		ok(valid && b->n == 100, "100 actions are accepted");
		free(s);
	}

	o = parse("{\"actions\":[{\"id\":\"local-uuid-001\",\"type\":\"quick_inspection\",\"payload\":{},"
		  "\"timestamp\":\"2025-01-23T10:30:00Z\"}]}");
	verrors_init(&e);
	ok(!sync_batch_parse(o, b, &e), "the spec's sample id is rejected");
	is_str(details_of(&e), "[{\"field\":\"actions.0.id\",\"message\":\"Invalid uuid\"}]", "as Zod's 'Invalid uuid'");
	verrors_free(&e);
	json_object_put(o);
	free(b);
}

static const char *tr(const char *payload, bool *valid, struct test_result *out)
{
	struct json_object *o = parse(payload);
	struct verrors e;
	const char *d;

	verrors_init(&e);
	*valid = test_result_parse(o, "payload.", out, &e);
	d = details_of(&e);
	verrors_free(&e);
	json_object_put(o);
	return d;
}

static void test_test_result(void)
{
	struct test_result r;
	bool valid;

	tr("{\"inspection_id\":\"550e8400-e29b-41d4-a716-446655440001\",\"test_name\":\"pH\",\"result\":\"pass\","
	   "\"measured_value\":7.25,\"unit\":\"pH\",\"notes\":\"ok\",\"scanner_device_id\":\"Z\"}", &valid, &r);
	ok(valid, "a complete test_result payload is valid");
	ok(r.has_measured && r.measured_value == 7.25, "measured_value is read");
	is_str(tr("{}", &valid, &r),
	       "[{\"field\":\"payload.inspection_id\",\"message\":\"Required\"},"
	       "{\"field\":\"payload.test_name\",\"message\":\"Required\"},"
	       "{\"field\":\"payload.result\",\"message\":\"Required\"}]",
	       "an empty payload lacks the three required fields, in schema order");
	is_str(tr("{\"inspection_id\":\"x\",\"test_name\":\"\",\"result\":\"fail\",\"measured_value\":null}", &valid, &r),
	       "[{\"field\":\"payload.inspection_id\",\"message\":\"Invalid inspection ID\"},"
	       "{\"field\":\"payload.test_name\",\"message\":\"String must contain at least 1 character(s)\"},"
	       "{\"field\":\"payload.measured_value\",\"message\":\"Expected number, received null\"}]",
	       "a bad id, an empty name and a null measurement");
	is_str(tr("[]", &valid, &r), "[{\"field\":\"payload\",\"message\":\"Expected object, received array\"}]",
	       "a payload that is not an object");
}

int main(void)
{
	test_order();
	test_test_result();
	return done_testing();
}
