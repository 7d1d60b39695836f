/* tap.h: a minimal Test Anything Protocol emitter for the C unit tests (run by prove). */
#ifndef SCANQA_TAP_H
#define SCANQA_TAP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* One test program per file includes this, so the counters can live here. */
static int tap_planned = -1;
static int tap_run;
static int tap_failed;

static inline void plan(int n)
{
	tap_planned = n;
	printf("1..%d\n", n);
	fflush(stdout);
}

__attribute__((format(printf, 2, 0)))
static inline bool tap_vresult(bool pass, const char *fmt, va_list ap)
{
	tap_run++;
	if (!pass)
		tap_failed++;
	printf("%sok %d - ", pass ? "" : "not ", tap_run);
	vprintf(fmt, ap);
	putchar('\n');
	fflush(stdout);
	return pass;
}

/* Each check prints one "ok N - message" line and returns whether it passed. */
__attribute__((format(printf, 2, 3)))
static inline bool ok(bool pass, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tap_vresult(pass, fmt, ap);
	va_end(ap);
	return pass;
}

__attribute__((format(printf, 3, 4)))
static inline bool is_int(long long got, long long want, const char *fmt, ...)
{
	va_list ap;
	bool pass = got == want;

	va_start(ap, fmt);
	tap_vresult(pass, fmt, ap);
	va_end(ap);
	if (!pass)
		fprintf(stderr, "#          got: %lld\n#     expected: %lld\n", got, want);
	return pass;
}

/* NULL compares equal only to NULL. */
__attribute__((format(printf, 3, 4)))
static inline bool is_str(const char *got, const char *want, const char *fmt, ...)
{
	va_list ap;
	bool pass = (got && want) ? strcmp(got, want) == 0 : got == want;

	va_start(ap, fmt);
	tap_vresult(pass, fmt, ap);
	va_end(ap);
	if (!pass)
		fprintf(stderr, "#          got: %s%s%s\n#     expected: %s%s%s\n",
			got ? "'" : "", got ? got : "NULL", got ? "'" : "",
			want ? "'" : "", want ? want : "NULL", want ? "'" : "");
	return pass;
}

/* Prints the plan if none was given; returns the exit status for main(): 0 only when
 * every test passed and the count matches the plan. */
static inline int done_testing(void)
{
	if (tap_planned < 0)
		printf("1..%d\n", tap_run);
	else if (tap_planned != tap_run)
		fprintf(stderr, "# planned %d tests but ran %d\n", tap_planned, tap_run);
	if (tap_failed)
		fprintf(stderr, "# failed %d of %d tests\n", tap_failed, tap_run);
	fflush(stdout);
	return tap_failed == 0 && (tap_planned < 0 || tap_planned == tap_run) ? 0 : 1;
}

#endif
