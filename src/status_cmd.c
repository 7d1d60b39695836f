/* status_cmd.c: the commands that talk to a running daemon through the master's
 * status socket (status_listen), over FastCGI exactly as nginx does.
 *
 * "scanqa status": the status page in a terminal, for an operator on the box during
 * an incident (what php-fpm's status page and pg_top give): two samples an interval
 * apart, printed as the master, the saturation figures, every worker with its state,
 * route and SQL statement, and the rates by endpoint and status code.
 *
 * "scanqa reload": SIGHUP to the master, then waits for the master's verdict on the
 * status page, so that systemd's ExecReload (and so "systemctl reload scanqa") fails,
 * with the reason, when the daemon refuses the file. */
#include "status_cmd.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>

#define IO_TIMEOUT_S 5
#define MAX_ANSWER (4 * 1024 * 1024)

/* ---------------------------------------------------------------- FastCGI client */

static int connect_status(const char *addr, char *err, size_t errlen)
{
	int fd = -1;
	if (strncmp(addr, "unix:", 5) == 0) {
		struct sockaddr_un sa;
		memset(&sa, 0, sizeof(sa));
		sa.sun_family = AF_UNIX;
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", addr + 5);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			goto connected;
	} else {
		char host[64], port[8];
		struct addrinfo hints, *res = NULL;
		memset(&hints, 0, sizeof(hints));
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
		if (!conf_tcp_address(addr, host, sizeof(host), port, sizeof(port)) ||
		    getaddrinfo(host, port, &hints, &res) != 0) {
			snprintf(err, errlen, "%s: not a usable address", addr);
			return -1;
		}
		fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int rc = fd >= 0 ? connect(fd, res->ai_addr, res->ai_addrlen) : -1;
		freeaddrinfo(res);
		if (rc == 0)
			goto connected;
	}
	snprintf(err, errlen, "cannot connect to %s: %s (is scanqa running, and may you use its socket?)", addr,
		 strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
connected:;
	struct timeval tv = { IO_TIMEOUT_S, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

/* Appends one FastCGI record (FastCGI 1.0, section 3.3) of request id 1. */
static size_t record(unsigned char *out, int type, const void *content, size_t len)
{
	unsigned char h[8] = { 1, (unsigned char)type, 0, 1, (unsigned char)(len >> 8), (unsigned char)len, 0, 0 };
	memcpy(out, h, 8);
	if (len)
		memcpy(out + 8, content, len);
	return 8 + len;
}

/* Appends a name-value pair with one-byte lengths (both under 128 bytes here). */
static size_t pair(unsigned char *out, const char *name, const char *value)
{
	size_t n = strlen(name), v = strlen(value);
	out[0] = (unsigned char)n;
	out[1] = (unsigned char)v;
	memcpy(out + 2, name, n);
	memcpy(out + 2 + n, value, v);
	return 2 + n + v;
}

static bool read_full(int fd, unsigned char *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		got += (size_t)n;
	}
	return true;
}

/* GET /scanqa/status from the master. Returns the parsed JSON page, or NULL with err. */
static struct json_object *fetch_page(const char *addr, char *err, size_t errlen)
{
	unsigned char req[1024], params[512];
	size_t pl = 0, rl = 0;
	static const unsigned char begin[8] = { 0, 1 /* responder */, 0 /* close after */ };
	pl += pair(params + pl, "REQUEST_METHOD", "GET");
	pl += pair(params + pl, "REQUEST_URI", "/scanqa/status");
	pl += pair(params + pl, "QUERY_STRING", "");
	pl += pair(params + pl, "SCANQA_STATUS_PAGE", "1");
	pl += pair(params + pl, "REQUEST_ID", "scanqa-status-command");
	rl += record(req + rl, 1, begin, sizeof(begin)); /* FCGI_BEGIN_REQUEST */
	rl += record(req + rl, 4, params, pl);            /* FCGI_PARAMS */
	rl += record(req + rl, 4, NULL, 0);
	rl += record(req + rl, 5, NULL, 0);               /* FCGI_STDIN, empty */

	int fd = connect_status(addr, err, errlen);
	if (fd < 0)
		return NULL;
	char *out = NULL;
	size_t olen = 0;
	bool ended = false;
	if (write(fd, req, rl) != (ssize_t)rl) {
		snprintf(err, errlen, "%s: write: %s", addr, strerror(errno));
		goto done;
	}
	while (!ended) {
		unsigned char h[8], content[65536 + 255];
		if (!read_full(fd, h, 8))
			break;
		size_t clen = ((size_t)h[4] << 8) | h[5], plen = h[6];
		if (!read_full(fd, content, clen + plen))
			break;
		if (h[1] == 6 && clen) { /* FCGI_STDOUT */
			if (olen + clen > MAX_ANSWER)
				break;
			char *grown = realloc(out, olen + clen + 1);
			if (!grown)
				break;
			out = grown;
			memcpy(out + olen, content, clen);
			olen += clen;
			out[olen] = '\0';
		} else if (h[1] == 3) { /* FCGI_END_REQUEST */
			ended = true;
		}
	}
done:
	close(fd);
	struct json_object *page = NULL;
	if (!ended || !out) {
		if (!err[0])
			snprintf(err, errlen, "%s: no complete answer", addr);
	} else if (strncmp(out, "Status: 200", 11) != 0) {
		snprintf(err, errlen, "%s answered: %.60s", addr, out);
	} else {
		char *body = strstr(out, "\r\n\r\n");
		page = body ? json_tokener_parse(body + 4) : NULL;
		if (!page)
			snprintf(err, errlen, "%s: the answer is not JSON", addr);
	}
	free(out);
	return page;
}

/* ---------------------------------------------------------------- printing */

static struct json_object *get(struct json_object *o, const char *path)
{
	char key[64];
	while (o && *path) {
		const char *dot = strchr(path, '.');
		size_t n = dot ? (size_t)(dot - path) : strlen(path);
		snprintf(key, sizeof(key), "%.*s", (int)n, path);
		if (!json_object_object_get_ex(o, key, &o))
			return NULL;
		path += n + (dot ? 1 : 0);
	}
	return o;
}

static int64_t num(struct json_object *o, const char *path)
{
	struct json_object *v = get(o, path);
	return v ? json_object_get_int64(v) : 0;
}

static const char *str(struct json_object *o, const char *path, const char *fallback)
{
	struct json_object *v = get(o, path);
	return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : fallback;
}

static void print_duration(int64_t s)
{
	if (s >= 86400)
		printf("%lldd%02lldh", (long long)(s / 86400), (long long)(s % 86400 / 3600));
	else if (s >= 3600)
		printf("%lldh%02lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
	else
		printf("%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
}

/* The p-quantile of a cumulative histogram {le: {bound: count}, count}, as the upper
 * bound of the bucket it falls in ("< 5 ms"); NULL when empty. */
static const char *quantile(struct json_object *hist, double p, char *buf, size_t len)
{
	int64_t count = num(hist, "count");
	struct json_object *le = get(hist, "le");
	if (count <= 0 || !le)
		return NULL;
	int64_t want = (int64_t)(p * (double)count);
	double best = INFINITY;
	if ((double)want < p * (double)count)
		want++;
	json_object_object_foreach(le, k, v)
	{
		double bound = strcmp(k, "+Inf") == 0 ? INFINITY : atof(k);
		if (json_object_get_int64(v) >= want && bound < best)
			best = bound;
	}
	if (isinf(best))
		snprintf(buf, len, "> %s ms", "10000");
	else
		snprintf(buf, len, "<= %g ms", best);
	return buf;
}

static void print_page(struct json_object *now, struct json_object *before, double secs)
{
	const char *reload_err = str(now, "master.last_reload.error", NULL);
	printf("scanqa %s   master %lld   up ", str(now, "version", "?"), (long long)num(now, "master.pid"));
	print_duration(num(now, "master.uptime_seconds"));
	printf("   config generation %lld", (long long)num(now, "master.config_generation"));
	if (reload_err)
		printf("   LAST RELOAD REFUSED: %s", reload_err);
	printf("\n");
	printf("workers  %lld configured: %lld busy, %lld idle, %lld starting, %lld stopping   spawned %lld, crashed %lld\n",
	       (long long)num(now, "saturation.workers_configured"), (long long)num(now, "worker_states.busy"),
	       (long long)num(now, "worker_states.idle"), (long long)num(now, "worker_states.starting"),
	       (long long)num(now, "worker_states.stopping"), (long long)num(now, "master.workers_spawned"),
	       (long long)num(now, "master.workers_crashed"));
	char p50[32], p99[32];
	struct json_object *wait = get(now, "saturation.queue_wait_ms");
	const char *q50 = quantile(wait, 0.5, p50, sizeof(p50)), *q99 = quantile(wait, 0.99, p99, sizeof(p99));
	printf("queue    %lld waiting for a worker (max %lld, backlog %lld)   every worker busy: %lld times",
	       (long long)num(now, "saturation.listen_queue.current"), (long long)num(now, "saturation.listen_queue.max"),
	       (long long)num(now, "saturation.listen_queue.backlog"), (long long)num(now, "saturation.all_workers_busy"));
	if (q50)
		printf("   wait p50 %s, p99 %s", q50, q99);
	if (num(now, "saturation.fd_exhaustion"))
		printf("   OUT OF FILE DESCRIPTORS %lld times", (long long)num(now, "saturation.fd_exhaustion"));
	printf("\n\n");

	printf("%-8s %-9s %4s %9s %9s  %-20s %s\n", "PID", "STATE", "GEN", "REQUESTS", "BUSY_MS", "ROUTE", "SQL (ms)");
	struct json_object *workers = get(now, "workers");
	size_t nw = workers ? json_object_array_length(workers) : 0;
	for (size_t i = 0; i < nw; i++) {
		struct json_object *w = json_object_array_get_idx(workers, i);
		char busy[24] = "", sql[64] = "";
		if (get(w, "current_request_ms") && json_object_get_type(get(w, "current_request_ms")) == json_type_int)
			snprintf(busy, sizeof(busy), "%lld", (long long)num(w, "current_request_ms"));
		if (str(w, "current_sql", NULL))
			snprintf(sql, sizeof(sql), "%s (%lld)", str(w, "current_sql", ""), (long long)num(w, "current_sql_ms"));
		printf("%-8lld %-9s %4lld %9lld %9s  %-20s %s\n", (long long)num(w, "pid"), str(w, "state", "?"),
		       (long long)num(w, "config_generation"), (long long)num(w, "requests"), busy,
		       str(w, "current_route", ""), sql);
	}

	printf("\n%-22s %9s %9s  %s\n", "ENDPOINT", "TOTAL", before ? "REQ/S" : "", before ? "BY STATUS (req/s)" : "BY STATUS");
	struct json_object *eps = get(now, "endpoints");
	if (!eps)
		return;
	json_object_object_foreach(eps, name, ep)
	{
		int64_t total = num(ep, "requests");
		struct json_object *prev = before ? get(get(before, "endpoints"), name) : NULL;
		double rate = prev && secs > 0 ? (double)(total - num(prev, "requests")) / secs : 0;
		if (total == 0)
			continue;
		printf("%-22s %9lld ", name, (long long)total);
		if (before)
			printf("%9.1f  ", rate);
		else
			printf("%9s  ", "");
		struct json_object *codes = get(ep, "status");
		if (codes) {
			json_object_object_foreach(codes, code, cnt)
			{
				int64_t c = json_object_get_int64(cnt);
				if (before) {
					int64_t was = prev ? num(get(prev, "status"), code) : 0;
					printf("%s: %.1f  ", code, secs > 0 ? (double)(c - was) / secs : 0.0);
				} else {
					printf("%s: %lld  ", code, (long long)c);
				}
			}
		}
		printf("\n");
	}
}

/* ---------------------------------------------------------------- command */

static void usage(FILE *f)
{
	fprintf(f, "usage: scanqa [-c FILE] status [--json] [--once] [--interval SECONDS] [--watch]\n"
		   "\n"
		   "  Prints the daemon's status page (from status_listen): the master, the accept\n"
		   "  queue, every worker with its state, route and SQL statement, and the rates by\n"
		   "  endpoint and status code over the interval (default 1 s).\n"
		   "  --once      one sample, totals instead of rates\n"
		   "  --watch     refresh every interval until interrupted, like top\n"
		   "  --json      print the status page's JSON as it is\n");
}

int status_cmd_main(const struct conf *c, int argc, char **argv)
{
	bool json = false, once = false, watch = false;
	double interval = 1.0;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			json = true;
		} else if (strcmp(argv[i], "--once") == 0) {
			once = true;
		} else if (strcmp(argv[i], "--watch") == 0) {
			watch = true;
		} else if (strcmp(argv[i], "--interval") == 0 && i + 1 < argc) {
			char *end;
			interval = strtod(argv[++i], &end);
			if (*end || !(interval >= 0.1 && interval <= 3600)) {
				fprintf(stderr, "scanqa status: --interval takes 0.1 to 3600 seconds\n");
				return 2;
			}
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (!c->status_listen[0]) {
		fprintf(stderr, "scanqa status: status_listen is not set in %s\n", c->path);
		return 1;
	}
	char err[300] = "";
	struct json_object *before = fetch_page(c->status_listen, err, sizeof(err));
	if (!before) {
		fprintf(stderr, "scanqa status: %s\n", err);
		return 1;
	}
	if (json) {
		printf("%s\n", json_object_to_json_string_ext(before, JSON_C_TO_STRING_PRETTY));
		json_object_put(before);
		return 0;
	}
	if (once) {
		print_page(before, NULL, 0);
		json_object_put(before);
		return 0;
	}
	int rc = 0;
	do {
		struct timespec ts = { (time_t)interval, (long)((interval - (double)(time_t)interval) * 1e9) };
		nanosleep(&ts, NULL);
		struct json_object *now = fetch_page(c->status_listen, err, sizeof(err));
		if (!now) {
			fprintf(stderr, "scanqa status: %s\n", err);
			rc = 1;
			break;
		}
		if (watch)
			printf("\033[H\033[2J");
		print_page(now, before, interval);
		fflush(stdout);
		json_object_put(before);
		before = now;
	} while (watch);
	json_object_put(before);
	return rc;
}

/* ---------------------------------------------------------------- reload */

int reload_cmd_main(const struct conf *c, int argc, char **argv)
{
	char *end;
	long pid = 0;
	if (argc > 1 || (argc == 1 && ((pid = strtol(argv[0], &end, 10)) <= 1 || *end))) {
		fprintf(stderr, "usage: scanqa [-c FILE] reload [MASTER_PID]\n");
		return 2;
	}
	/* The file passed conf_load (main.c): the checks start-up makes. */
	char err[300] = "";
	struct json_object *before = c->status_listen[0] ? fetch_page(c->status_listen, err, sizeof(err)) : NULL;
	if (!before) {
		if (!pid) {
			fprintf(stderr, "scanqa reload: %s\n", c->status_listen[0] ? err : "status_listen is not set: give the master's pid");
			return 1;
		}
		/* No status socket to ask: signal, and say the outcome is unknown. */
		if (kill((pid_t)pid, SIGHUP) != 0) {
			fprintf(stderr, "scanqa reload: kill %ld: %s\n", pid, strerror(errno));
			return 1;
		}
		fprintf(stderr, "scanqa reload: SIGHUP sent; without the status socket (%s) its outcome is unknown: see the log\n",
			err[0] ? err : "status_listen is not set");
		return 0;
	}
	if (!pid)
		pid = (long)num(before, "master.pid");
	int64_t gen = num(before, "master.config_generation"), refused = num(before, "master.last_reload.refused_total");
	json_object_put(before);
	if (kill((pid_t)pid, SIGHUP) != 0) {
		fprintf(stderr, "scanqa reload: kill %ld: %s\n", pid, strerror(errno));
		return 1;
	}
	for (int i = 0; i < 600; i++) { /* 30 s */
		struct timespec ts = { 0, 50 * 1000000L };
		nanosleep(&ts, NULL);
		struct json_object *now = fetch_page(c->status_listen, err, sizeof(err));
		if (!now)
			continue;
		int64_t g = num(now, "master.config_generation");
		if (num(now, "master.last_reload.refused_total") > refused) {
			fprintf(stderr, "scanqa reload: refused, the running config stays: %s\n",
				str(now, "master.last_reload.error", "?"));
			json_object_put(now);
			return 1;
		}
		json_object_put(now);
		if (g > gen) {
			fprintf(stderr, "scanqa reload: config generation %lld in force; workers are replaced one by one\n",
				(long long)g);
			return 0;
		}
	}
	fprintf(stderr, "scanqa reload: no verdict from the master within 30 s%s%s\n", err[0] ? ": " : "", err);
	return 1;
}
