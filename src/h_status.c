/* h_status.c: GET /scanqa/status, the operator's view of the daemon in the spirit of
 * php-fpm's status page: the master, every worker (pid, state, requests served, age,
 * route and SQL statement of the request in progress), saturation (the accept queue
 * of the listen socket, moments when every worker was busy, time requests waited for
 * a worker), answers by endpoint and status code, and latency histograms. JSON by
 * default; ?format=prometheus gives the Prometheus text format.
 *
 * Everything comes from the scoreboard, so the page costs no database round trip and
 * answers while PostgreSQL is down. The master serves it on its own socket
 * (status_listen), so it answers while every worker is busy; the workers serve it too,
 * for an nginx that still passes it to the main socket. nginx exposes it on loopback
 * only and marks the request with the SCANQA_STATUS_PAGE param; without that mark the
 * daemon answers 404, so a location that passes everything to the daemon cannot
 * publish the page by accident. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers.h"
#include "scoreboard.h"
#include "validate.h"

static const char *state_name(int s)
{
	switch (s) {
	case WS_STARTING: return "starting";
	case WS_IDLE: return "idle";
	case WS_BUSY: return "busy";
	case WS_STOPPING: return "stopping";
	default: return "free";
	}
}

/* One worker as read from its slot, which the worker may be writing meanwhile: the
 * copy is taken field by field and the names are NUL-terminated here. */
struct worker_view {
	pid_t pid;
	int state;
	unsigned generation;
	uint64_t requests;
	int64_t started_us;
	int64_t req_age_us; /* -1 when idle */
	int64_t sql_age_us; /* -1 when not in a statement */
	char route[SB_NAME_LEN];
	char sql[SB_NAME_LEN];
};

static bool read_slot(int i, struct worker_view *w)
{
	struct sb_slot *s = &scoreboard()->slots[i];
	w->pid = s->pid;
	w->state = s->state;
	if (w->pid <= 0 || w->state == WS_FREE)
		return false;
	w->generation = s->generation;
	w->requests = s->requests;
	w->started_us = s->started_us;
	int64_t now = now_mono_us(), start = s->req_start_us, sql_start = s->sql_start_us;
	w->req_age_us = start ? now - start : -1;
	if (w->req_age_us < -1)
		w->req_age_us = 0;
	w->sql_age_us = sql_start && start ? now - sql_start : -1;
	if (w->sql_age_us < -1)
		w->sql_age_us = 0;
	memcpy(w->route, s->route, sizeof(w->route));
	w->route[sizeof(w->route) - 1] = '\0';
	memcpy(w->sql, s->sql, sizeof(w->sql));
	w->sql[sizeof(w->sql) - 1] = '\0';
	if (w->req_age_us < 0)
		w->route[0] = '\0';
	if (w->sql_age_us < 0)
		w->sql[0] = '\0';
	return true;
}

/* A histogram as read from the scoreboard, cumulative as Prometheus wants it. */
struct histogram_view {
	uint64_t buckets[SB_N_BUCKETS];
	uint64_t count; /* the +Inf bucket */
	uint64_t sum_us;
};

static void read_histogram(struct sb_histogram *h, struct histogram_view *v)
{
	uint64_t acc = 0;
	for (int b = 0; b < SB_N_BUCKETS; b++) {
		acc += __atomic_load_n(&h->buckets[b], __ATOMIC_RELAXED);
		v->buckets[b] = acc;
	}
	v->count = acc;
	v->sum_us = __atomic_load_n(&h->sum_us, __ATOMIC_RELAXED);
}

struct endpoint_view {
	const char *name;
	uint64_t codes[SB_N_CODES];
	struct histogram_view latency;
};

static void read_endpoint(int i, struct endpoint_view *v)
{
	struct sb_endpoint *e = &scoreboard()->endpoints[i];
	v->name = router_endpoint_name(i);
	for (int c = 0; c < SB_N_CODES; c++)
		v->codes[c] = __atomic_load_n(&e->codes[c], __ATOMIC_RELAXED);
	read_histogram(&e->latency, &v->latency);
}

static const char *code_label(int c, char buf[8])
{
	if (c == SB_N_CODES - 1)
		return "other";
	snprintf(buf, 8, "%d", sb_status_codes[c]);
	return buf;
}

/* ---------------------------------------------------------------- JSON */

static struct json_object *iso_time(int64_t us)
{
	char buf[32];
	iso8601_ms(us, buf);
	return json_object_new_string(buf);
}

static struct json_object *histogram_json(const struct histogram_view *v)
{
	char lbl[16];
	struct json_object *hist = json_object_new_object();
	struct json_object *le = json_object_new_object();
	for (int b = 0; b < SB_N_BUCKETS - 1; b++) {
		snprintf(lbl, sizeof(lbl), "%d", sb_bucket_bounds_ms[b]);
		json_object_object_add(le, lbl, json_object_new_int64((int64_t)v->buckets[b]));
	}
	json_object_object_add(le, "+Inf", json_object_new_int64((int64_t)v->count));
	json_object_object_add(hist, "le", le);
	json_object_object_add(hist, "count", json_object_new_int64((int64_t)v->count));
	json_object_object_add(hist, "sum", json_object_new_double((double)v->sum_us / 1000.0));
	return hist;
}

static struct json_object *saturation_json(void)
{
	struct scoreboard *sb = scoreboard();
	struct histogram_view wait;
	read_histogram(&sb->queue_wait, &wait);
	struct json_object *o = json_object_new_object();
	struct json_object *q = json_object_new_object();
	json_object_object_add(q, "current", json_object_new_int64(sb->listen_queue));
	json_object_object_add(q, "max", json_object_new_int64(sb->listen_queue_max));
	json_object_object_add(q, "backlog", json_object_new_int64(sb->listen_backlog));
	json_object_object_add(o, "listen_queue", q);
	json_object_object_add(o, "workers_configured", json_object_new_int(sb->workers_configured));
	json_object_object_add(o, "all_workers_busy", json_object_new_int64((int64_t)sb->all_busy_total));
	json_object_object_add(o, "fd_exhaustion", json_object_new_int64((int64_t)sb->fd_exhaustion_total));
	json_object_object_add(o, "queue_wait_ms", histogram_json(&wait));
	return o;
}

static struct json_object *reload_json(void)
{
	struct scoreboard *sb = scoreboard();
	struct json_object *o = json_object_new_object();
	int64_t at = sb->last_reload_us;
	json_object_object_add(o, "at", at ? iso_time(at) : NULL);
	json_object_object_add(o, "ok", at ? json_object_new_boolean(sb->last_reload_ok) : NULL);
	char err[sizeof(sb->last_reload_error)];
	memcpy(err, sb->last_reload_error, sizeof(err));
	err[sizeof(err) - 1] = '\0';
	json_object_object_add(o, "error", at && !sb->last_reload_ok ? json_object_new_string(err) : NULL);
	json_object_object_add(o, "refused_total", json_object_new_int64((int64_t)sb->reloads_refused_total));
	return o;
}

static struct json_object *status_json(void)
{
	struct scoreboard *sb = scoreboard();
	struct json_object *o = json_object_new_object();
	struct json_object *master = json_object_new_object();
	json_object_object_add(master, "pid", json_object_new_int(sb->master_pid));
	json_object_object_add(master, "started_at", iso_time(sb->master_started_us));
	json_object_object_add(master, "uptime_seconds",
			       json_object_new_int64((now_wall_us() - sb->master_started_us) / 1000000));
	json_object_object_add(master, "config_generation", json_object_new_int64(sb->generation));
	json_object_object_add(master, "workers_spawned", json_object_new_int64((int64_t)sb->spawns_total));
	json_object_object_add(master, "workers_crashed", json_object_new_int64((int64_t)sb->crashes_total));
	json_object_object_add(master, "last_reload", reload_json());
	json_object_object_add(o, "version", json_object_new_string(PACKAGE_VERSION));
	json_object_object_add(o, "master", master);
	json_object_object_add(o, "total_requests", json_object_new_int64((int64_t)sb->total_requests));

	struct json_object *workers = json_object_new_array();
	int counts[WS_STOPPING + 1] = { 0 };
	for (int i = 0; i < SB_MAX_WORKERS; i++) {
		struct worker_view w;
		if (!read_slot(i, &w))
			continue;
		if (w.state >= 0 && w.state <= WS_STOPPING)
			counts[w.state]++;
		struct json_object *jw = json_object_new_object();
		json_object_object_add(jw, "pid", json_object_new_int(w.pid));
		json_object_object_add(jw, "state", json_object_new_string(state_name(w.state)));
		json_object_object_add(jw, "config_generation", json_object_new_int64(w.generation));
		json_object_object_add(jw, "started_at", iso_time(w.started_us));
		json_object_object_add(jw, "requests", json_object_new_int64((int64_t)w.requests));
		json_object_object_add(jw, "current_request_ms",
				       w.req_age_us < 0 ? NULL : json_object_new_int64(w.req_age_us / 1000));
		json_object_object_add(jw, "current_route", w.route[0] ? json_object_new_string(w.route) : NULL);
		json_object_object_add(jw, "current_sql", w.sql[0] ? json_object_new_string(w.sql) : NULL);
		json_object_object_add(jw, "current_sql_ms",
				       w.sql[0] ? json_object_new_int64(w.sql_age_us / 1000) : NULL);
		json_object_array_add(workers, jw);
	}
	struct json_object *summary = json_object_new_object();
	for (int s = WS_STARTING; s <= WS_STOPPING; s++)
		json_object_object_add(summary, state_name(s), json_object_new_int(counts[s]));
	json_object_object_add(o, "worker_states", summary);
	json_object_object_add(o, "workers", workers);
	json_object_object_add(o, "saturation", saturation_json());

	struct json_object *eps = json_object_new_object();
	for (int i = 0; i < router_n_endpoints(); i++) {
		struct endpoint_view v;
		char lbl[8];
		read_endpoint(i, &v);
		struct json_object *je = json_object_new_object();
		struct json_object *codes = json_object_new_object();
		for (int c = 0; c < SB_N_CODES; c++)
			if (v.codes[c])
				json_object_object_add(codes, code_label(c, lbl), json_object_new_int64((int64_t)v.codes[c]));
		json_object_object_add(je, "requests", json_object_new_int64((int64_t)v.latency.count));
		json_object_object_add(je, "status", codes);
		json_object_object_add(je, "latency_ms", histogram_json(&v.latency));
		json_object_object_add(eps, v.name, je);
	}
	json_object_object_add(o, "endpoints", eps);
	return o;
}

/* ---------------------------------------------------------------- Prometheus */

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One histogram's samples; labels is "" or `name="value",`. */
static void histogram_prometheus(FILE *f, const char *name, const char *labels, const struct histogram_view *v)
{
	for (int b = 0; b < SB_N_BUCKETS - 1; b++)
		fprintf(f, "%s_bucket{%sle=\"%g\"} %llu\n", name, labels, sb_bucket_bounds_ms[b] / 1000.0,
			(unsigned long long)v->buckets[b]);
	fprintf(f, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, labels, (unsigned long long)v->count);
	size_t n = strlen(labels);
	/* Without the trailing comma, and no braces at all when there are no labels. */
	if (n)
		fprintf(f, "%s_sum{%.*s} %.6f\n%s_count{%.*s} %llu\n", name, (int)n - 1, labels, (double)v->sum_us / 1e6,
			name, (int)n - 1, labels, (unsigned long long)v->count);
	else
		fprintf(f, "%s_sum %.6f\n%s_count %llu\n", name, (double)v->sum_us / 1e6, name,
			(unsigned long long)v->count);
}

static void saturation_prometheus(FILE *f)
{
	struct scoreboard *sb = scoreboard();
	struct histogram_view wait;
	read_histogram(&sb->queue_wait, &wait);
	family(f, "scanqa_listen_queue", "gauge",
	       "Connections waiting in the listen socket's accept queue for a free worker.");
	fprintf(f, "scanqa_listen_queue %u\n", sb->listen_queue);
	family(f, "scanqa_listen_queue_max", "gauge", "Highest accept queue length seen since the master started.");
	fprintf(f, "scanqa_listen_queue_max %u\n", sb->listen_queue_max);
	family(f, "scanqa_listen_backlog", "gauge", "Size of the accept queue (listen backlog as the kernel applies it).");
	fprintf(f, "scanqa_listen_backlog %u\n", sb->listen_backlog);
	family(f, "scanqa_workers_configured", "gauge", "Workers the running configuration asks for.");
	fprintf(f, "scanqa_workers_configured %d\n", sb->workers_configured);
	family(f, "scanqa_all_workers_busy_total", "counter",
	       "Requests taken by the last idle worker: moments from which every worker was busy.");
	fprintf(f, "scanqa_all_workers_busy_total %llu\n", (unsigned long long)sb->all_busy_total);
	family(f, "scanqa_accept_fd_exhaustion_total", "counter",
	       "Times a worker could not accept for lack of file descriptors (EMFILE, ENFILE).");
	fprintf(f, "scanqa_accept_fd_exhaustion_total %llu\n", (unsigned long long)sb->fd_exhaustion_total);
	family(f, "scanqa_queue_wait_seconds", "histogram",
	       "Time from nginx passing a request on to a worker starting it (waiting in the accept queue).");
	histogram_prometheus(f, "scanqa_queue_wait_seconds", "", &wait);
	family(f, "scanqa_reloads_refused_total", "counter", "SIGHUP reloads refused (the running config stayed).");
	fprintf(f, "scanqa_reloads_refused_total %llu\n", (unsigned long long)sb->reloads_refused_total);
	family(f, "scanqa_last_reload_success", "gauge", "1 unless the last reload was refused.");
	fprintf(f, "scanqa_last_reload_success %d\n", sb->last_reload_us && !sb->last_reload_ok ? 0 : 1);
}

/* Writes the exposition format, version 0.0.4. Label values are route names and
 * numbers, which need no escaping. */
static void status_prometheus(FILE *f)
{
	struct scoreboard *sb = scoreboard();

	family(f, "scanqa_start_time_seconds", "gauge", "Start time of the master process, seconds since the epoch.");
	fprintf(f, "scanqa_start_time_seconds %.3f\n", (double)sb->master_started_us / 1e6);
	family(f, "scanqa_config_generation", "gauge", "Configuration generation: 1 at start, +1 per accepted reload.");
	fprintf(f, "scanqa_config_generation %u\n", sb->generation);
	family(f, "scanqa_worker_spawns_total", "counter", "Workers started by the master.");
	fprintf(f, "scanqa_worker_spawns_total %llu\n", (unsigned long long)sb->spawns_total);
	family(f, "scanqa_worker_crashes_total", "counter", "Workers that died by a signal or exited with a non-zero status.");
	fprintf(f, "scanqa_worker_crashes_total %llu\n", (unsigned long long)sb->crashes_total);

	struct worker_view ws[SB_MAX_WORKERS];
	int nw = 0, counts[WS_STOPPING + 1] = { 0 };
	for (int i = 0; i < SB_MAX_WORKERS; i++) {
		if (read_slot(i, &ws[nw])) {
			if (ws[nw].state >= 0 && ws[nw].state <= WS_STOPPING)
				counts[ws[nw].state]++;
			nw++;
		}
	}
	family(f, "scanqa_workers", "gauge", "Worker processes by state.");
	for (int s = WS_STARTING; s <= WS_STOPPING; s++)
		fprintf(f, "scanqa_workers{state=\"%s\"} %d\n", state_name(s), counts[s]);
	family(f, "scanqa_worker_requests_total", "counter", "Requests served by each worker process.");
	for (int i = 0; i < nw; i++)
		fprintf(f, "scanqa_worker_requests_total{pid=\"%d\"} %llu\n", (int)ws[i].pid,
			(unsigned long long)ws[i].requests);
	family(f, "scanqa_worker_busy", "gauge", "1 while the worker is serving a request.");
	for (int i = 0; i < nw; i++)
		fprintf(f, "scanqa_worker_busy{pid=\"%d\"} %d\n", (int)ws[i].pid, ws[i].req_age_us >= 0);
	family(f, "scanqa_worker_current_request_seconds", "gauge", "Age of the request each worker is serving, 0 when idle.");
	for (int i = 0; i < nw; i++)
		fprintf(f, "scanqa_worker_current_request_seconds{pid=\"%d\"} %.6f\n", (int)ws[i].pid,
			ws[i].req_age_us < 0 ? 0.0 : (double)ws[i].req_age_us / 1e6);
	family(f, "scanqa_worker_start_time_seconds", "gauge", "Start time of each worker, seconds since the epoch.");
	for (int i = 0; i < nw; i++)
		fprintf(f, "scanqa_worker_start_time_seconds{pid=\"%d\"} %.3f\n", (int)ws[i].pid,
			(double)ws[i].started_us / 1e6);

	int ne = router_n_endpoints();
	struct endpoint_view *ev = calloc((size_t)ne, sizeof(*ev));
	if (!ev)
		return;
	for (int i = 0; i < ne; i++)
		read_endpoint(i, &ev[i]);
	family(f, "scanqa_requests_total", "counter", "Answered requests by endpoint and HTTP status code.");
	for (int i = 0; i < ne; i++) {
		for (int c = 0; c < SB_N_CODES; c++) {
			char lbl[8];
			if (ev[i].codes[c])
				fprintf(f, "scanqa_requests_total{endpoint=\"%s\",code=\"%s\"} %llu\n", ev[i].name,
					code_label(c, lbl), (unsigned long long)ev[i].codes[c]);
		}
	}
	family(f, "scanqa_request_duration_seconds", "histogram", "Time from reading a request to its answer, by endpoint.");
	for (int i = 0; i < ne; i++) {
		char labels[64];
		snprintf(labels, sizeof(labels), "endpoint=\"%s\",", ev[i].name);
		histogram_prometheus(f, "scanqa_request_duration_seconds", labels, &ev[i].latency);
	}
	free(ev);
	saturation_prometheus(f);
}

/* ---------------------------------------------------------------- handler */

void h_status(struct request *req, const struct route_params *p)
{
	(void)p;
	const char *mark = request_param(req, "SCANQA_STATUS_PAGE");
	if (!mark || strcmp(mark, "1") != 0) {
		resp_error(req, 404, "Not found");
		return;
	}
	const char *q = req->query;
	bool prometheus = false;
	if (q && *q) {
		if (strcmp(q, "format=prometheus") == 0) {
			prometheus = true;
		} else if (strcmp(q, "format=json") != 0) {
			resp_error(req, 400, "Query must be format=json or format=prometheus");
			return;
		}
	}
	if (!prometheus) {
		resp_json(req, 200, status_json());
		return;
	}
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f) {
		resp_error(req, 500, "Internal server error");
		return;
	}
	status_prometheus(f);
	if (fclose(f) != 0 || !buf) {
		free(buf);
		resp_error(req, 500, "Internal server error");
		return;
	}
	resp_text(req, 200, "text/plain; version=0.0.4; charset=utf-8", buf, len);
	free(buf);
}
