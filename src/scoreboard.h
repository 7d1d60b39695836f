/* scoreboard.h: shared memory, written by workers and the master and read by the
 * status page: one slot per worker, request counters by endpoint and status code,
 * latency histograms, and the saturation figures (accept queue, moments when every
 * worker was busy, time requests waited for a worker). Created by the master before
 * fork; counters are updated with __atomic operations only, so no lock is ever taken. */
#ifndef SCANQA_SCOREBOARD_H
#define SCANQA_SCOREBOARD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "conf.h"

/* One slot per worker, plus the spare a rolling reload starts before it retires an
 * old worker. The limit itself is conf.c's (CONF_WORKERS_MAX). */
#define SB_MAX_WORKERS (CONF_WORKERS_MAX + 1)
/* Endpoints are the router's route names plus "not_found" and "method_not_allowed"
 * (see router_endpoint()); any index past the table is counted as the last one. */
#define SB_MAX_ENDPOINTS 48
/* Latency bucket upper bounds in milliseconds; one more bucket catches the rest (+Inf). */
#define SB_BUCKET_BOUNDS_MS 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000
#define SB_N_BUCKETS 13
/* Status codes counted one by one; any other code is counted as "other". */
#define SB_STATUS_CODES 200, 201, 204, 304, 400, 401, 403, 404, 405, 409, 412, 413, 415, 422, 429, 500, 502, 503, 504
#define SB_N_CODES 20
#define SB_NAME_LEN 32

enum worker_state { WS_FREE = 0, WS_STARTING, WS_IDLE, WS_BUSY, WS_STOPPING };

struct sb_slot {
	volatile pid_t pid;
	volatile int state;          /* enum worker_state */
	volatile uint64_t requests;  /* served by this worker */
	volatile int64_t req_start_us; /* monotonic start of the current request, 0 if idle */
	char route[SB_NAME_LEN];     /* current route name */
	char sql[SB_NAME_LEN];       /* the prepared statement it waits on, "" when none */
	volatile int64_t sql_start_us; /* monotonic start of that statement */
	volatile int64_t started_us; /* wall clock at spawn */
	volatile unsigned generation; /* config generation the worker was started with */
};

struct sb_histogram {
	uint64_t buckets[SB_N_BUCKETS]; /* by bucket, not cumulative */
	uint64_t sum_us;
};

struct sb_endpoint {
	uint64_t codes[SB_N_CODES];     /* answers by status code (see sb_code_index) */
	struct sb_histogram latency;
};

struct scoreboard {
	int64_t master_started_us;
	volatile pid_t master_pid;
	volatile unsigned generation;      /* bumped by each accepted reload */
	volatile int stopping;             /* the whole daemon is shutting down */
	volatile int workers_configured;   /* "workers" of the running config */
	volatile uint64_t total_requests;
	volatile uint64_t spawns_total;    /* workers started since the master started */
	volatile uint64_t crashes_total;   /* workers that died by a signal or a non-zero status */
	volatile uint64_t reloads_refused_total;
	volatile int64_t last_reload_us;   /* wall clock of the last SIGHUP handled, 0 if none */
	volatile int last_reload_ok;
	char last_reload_error[256];       /* why the last reload was refused, "" otherwise */

	/* Saturation. The master samples the listen socket's accept queue (connections
	 * nginx made that no worker has accepted yet) every tick and when the status page
	 * is read; workers count the rest. */
	volatile uint32_t listen_queue;     /* now */
	volatile uint32_t listen_queue_max; /* highest seen since start */
	volatile uint32_t listen_backlog;   /* the queue's size as the kernel applies it */
	volatile int idle_workers;          /* workers waiting for a connection */
	volatile uint64_t all_busy_total;   /* requests taken by the last idle worker */
	volatile uint64_t fd_exhaustion_total; /* episodes of accept failing with EMFILE/ENFILE */
	struct sb_histogram queue_wait;     /* nginx handing the request over -> a worker starting it */

	struct sb_slot slots[SB_MAX_WORKERS];
	struct sb_endpoint endpoints[SB_MAX_ENDPOINTS];
};

extern const int sb_bucket_bounds_ms[SB_N_BUCKETS - 1];
extern const int sb_status_codes[SB_N_CODES - 1];

/* Maps the shared area. Start-up only; returns false on failure. */
bool scoreboard_create(void);
struct scoreboard *scoreboard(void);

/* ---- the master */
/* Finds a free slot for a worker being spawned, or -1. */
int scoreboard_claim(pid_t pid);
/* Frees the slot of a worker that is gone, whatever state it died in. */
void scoreboard_release(int slot);

/* ---- a worker, about itself. All are no-ops before scoreboard_set_self(). */
void scoreboard_set_self(int slot);
struct sb_slot *scoreboard_self(void);
void scoreboard_worker_ready(void);    /* starting -> idle */
void scoreboard_worker_stopping(void); /* idle -> stopping */
/* A request starts at monotonic time start_us: idle -> busy. queue_start is nginx's
 * $msec when it passed the request on ("1700000000.123", NULL when not sent); the
 * wait until now goes into the queue_wait histogram. */
void scoreboard_request_begin(const char *queue_start, int64_t start_us);
void scoreboard_request_end(void);     /* busy -> idle */
void scoreboard_set_route(const char *name);
/* Around each SQL statement a request runs: the status page shows the statement a
 * busy worker waits on, and the slow-request log names the longest one. */
void scoreboard_sql_begin(const char *name);
void scoreboard_sql_end(void);
struct sb_sql_wait {
	char name[SB_NAME_LEN];
	int64_t us;
};
/* The longest statement of the current request, or NULL if it ran none. */
const struct sb_sql_wait *scoreboard_slowest_sql(void);
void scoreboard_count_fd_exhaustion(void);

/* Counts one answered request of endpoint (an index from router_endpoint()). */
void scoreboard_record(int endpoint, int status, int64_t elapsed_us);
/* Index of status in sb_status_codes, or SB_N_CODES - 1 ("other"). */
int sb_code_index(int status);

#endif
