/* scoreboard.h: shared memory, written by workers and read by the master and the
 * status page: one slot per worker, request counters by endpoint and status code, and
 * latency histograms. Created by the master before fork; counters are updated with
 * __atomic operations only, so no lock is ever taken. */
#ifndef SCANQA_SCOREBOARD_H
#define SCANQA_SCOREBOARD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define SB_MAX_WORKERS 256
/* Endpoints are the router's route names plus "not_found" and "method_not_allowed"
 * (see router_endpoint()); any index past the table is counted as the last one. */
#define SB_MAX_ENDPOINTS 48
/* Latency bucket upper bounds in milliseconds; one more bucket catches the rest (+Inf). */
#define SB_BUCKET_BOUNDS_MS 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000
#define SB_N_BUCKETS 13
/* Status codes counted one by one; any other code is counted as "other". */
#define SB_STATUS_CODES 200, 201, 204, 304, 400, 401, 403, 404, 405, 409, 412, 413, 415, 422, 429, 500, 502, 503, 504
#define SB_N_CODES 20

enum worker_state { WS_FREE = 0, WS_STARTING, WS_IDLE, WS_BUSY, WS_STOPPING };

struct sb_slot {
	volatile pid_t pid;
	volatile int state;          /* enum worker_state */
	volatile uint64_t requests;  /* served by this worker */
	volatile int64_t req_start_us; /* monotonic start of the current request, 0 if idle */
	char route[32];              /* current route name */
	volatile int64_t started_us; /* wall clock at spawn */
	volatile unsigned generation; /* config generation the worker was started with */
};

struct sb_endpoint {
	uint64_t codes[SB_N_CODES];     /* answers by status code (see sb_code_index) */
	uint64_t buckets[SB_N_BUCKETS]; /* answers by latency bucket, not cumulative */
	uint64_t sum_us;                /* total latency */
};

struct scoreboard {
	int64_t master_started_us;
	volatile pid_t master_pid;
	volatile unsigned generation;      /* bumped by each accepted reload */
	volatile int stopping;             /* the whole daemon is shutting down */
	volatile uint64_t total_requests;
	volatile uint64_t spawns_total;    /* workers started since the master started */
	volatile uint64_t crashes_total;   /* workers that died by a signal or a non-zero status */
	struct sb_slot slots[SB_MAX_WORKERS];
	struct sb_endpoint endpoints[SB_MAX_ENDPOINTS];
};

extern const int sb_bucket_bounds_ms[SB_N_BUCKETS - 1];
extern const int sb_status_codes[SB_N_CODES - 1];

/* Maps the shared area. Start-up only; returns false on failure. */
bool scoreboard_create(void);
struct scoreboard *scoreboard(void);
/* Finds a free slot for a worker being spawned, or -1. */
int scoreboard_claim(pid_t pid);
void scoreboard_release(int slot);
/* In a worker: remember its own slot, and record what it is doing for the status page
 * and for the master's crash report. NULL-safe before a slot is set. */
void scoreboard_set_self(int slot);
struct sb_slot *scoreboard_self(void);
void scoreboard_set_route(const char *name);
/* Counts one answered request of endpoint (an index from router_endpoint()). */
void scoreboard_record(int endpoint, int status, int64_t elapsed_us);
/* Index of status in sb_status_codes, or SB_N_CODES - 1 ("other"). */
int sb_code_index(int status);

#endif
