/* log.h: one-line-per-event logging to stderr, ready for journald. */
#ifndef SCANQA_LOG_H
#define SCANQA_LOG_H

#include <stdbool.h>

enum log_level { LL_ERROR = 0, LL_WARN = 1, LL_INFO = 2, LL_DEBUG = 3 };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "error", "warn", "info" or "debug". Returns false on anything else. */
bool log_parse_level(const char *s, enum log_level *out);
/* The request id is added to every line until cleared with NULL. The string is copied. */
void log_set_request_id(const char *id);
/* Writes "LEVEL [pid] req=ID message\n" as one write(2). Never pass a bearer token. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LL_DEBUG, __VA_ARGS__)

/* Start-up only: logs at error level and exits 1. Never call it while serving a request. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
