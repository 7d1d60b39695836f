/* scoreboard.c: the shared-memory area behind the status page and the master's view
 * of its workers. Slots are claimed by the master only; each worker writes its own
 * slot, and every worker adds to the shared counters with atomic increments. */
#include "scoreboard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "request.h"

const int sb_bucket_bounds_ms[SB_N_BUCKETS - 1] = { SB_BUCKET_BOUNDS_MS };
const int sb_status_codes[SB_N_CODES - 1] = { SB_STATUS_CODES };

static struct scoreboard *sb;
static int self = -1;
static struct sb_sql_wait slowest; /* of the current request, in this worker */

#define ADD(p, n) __atomic_add_fetch((p), (n), __ATOMIC_RELAXED)

bool scoreboard_create(void)
{
	void *p = mmap(NULL, sizeof(struct scoreboard), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return false;
	memset(p, 0, sizeof(struct scoreboard));
	sb = p;
	return true;
}

struct scoreboard *scoreboard(void) { return sb; }

int scoreboard_claim(pid_t pid)
{
	for (int i = 0; i < SB_MAX_WORKERS; i++) {
		if (sb->slots[i].state == WS_FREE) {
			memset(&sb->slots[i], 0, sizeof(sb->slots[i]));
			sb->slots[i].pid = pid;
			sb->slots[i].state = WS_STARTING;
			return i;
		}
	}
	return -1;
}

void scoreboard_release(int slot)
{
	if (slot < 0 || slot >= SB_MAX_WORKERS)
		return;
	/* Killed while idle (SIGKILL): it still counts as waiting for a connection. */
	if (sb->slots[slot].state == WS_IDLE)
		ADD(&sb->idle_workers, -1);
	sb->slots[slot].pid = 0;
	sb->slots[slot].state = WS_FREE;
}

/* ---------------------------------------------------------------- a worker */

void scoreboard_set_self(int slot) { self = slot; }

struct sb_slot *scoreboard_self(void)
{
	return (sb && self >= 0) ? &sb->slots[self] : NULL;
}

void scoreboard_worker_ready(void)
{
	struct sb_slot *s = scoreboard_self();
	if (!s)
		return;
	s->state = WS_IDLE;
	ADD(&sb->idle_workers, 1);
}

void scoreboard_worker_stopping(void)
{
	struct sb_slot *s = scoreboard_self();
	if (!s)
		return;
	if (s->state == WS_IDLE)
		ADD(&sb->idle_workers, -1);
	s->state = WS_STOPPING;
}

static void observe(struct sb_histogram *h, int64_t us)
{
	int b = 0;
	if (us < 0)
		us = 0;
	while (b < SB_N_BUCKETS - 1 && us > (int64_t)sb_bucket_bounds_ms[b] * 1000)
		b++;
	ADD(&h->buckets[b], 1);
	ADD(&h->sum_us, (uint64_t)us);
}

/* nginx's $msec: seconds since the epoch with three decimals. */
static bool parse_msec(const char *s, int64_t *us)
{
	char *end;
	if (!s || !*s)
		return false;
	double v = strtod(s, &end);
	if (*end != '\0' || !(v > 1e9 && v < 1e11))
		return false;
	*us = (int64_t)(v * 1e6 + 0.5);
	return true;
}

void scoreboard_request_begin(const char *queue_start, int64_t start_us)
{
	struct sb_slot *s = scoreboard_self();
	slowest.name[0] = '\0';
	slowest.us = -1;
	if (!s)
		return;
	s->req_start_us = start_us;
	/* This worker was the last one waiting: every worker is busy now. */
	if (s->state == WS_IDLE && ADD(&sb->idle_workers, -1) <= 0)
		ADD(&sb->all_busy_total, 1);
	s->state = WS_BUSY;
	int64_t handed_us;
	if (parse_msec(queue_start, &handed_us))
		observe(&sb->queue_wait, now_wall_us() - handed_us);
}

void scoreboard_request_end(void)
{
	struct sb_slot *s = scoreboard_self();
	if (!s)
		return;
	s->requests++;
	s->req_start_us = 0;
	s->route[0] = '\0';
	s->sql[0] = '\0';
	s->state = WS_IDLE;
	ADD(&sb->idle_workers, 1);
}

void scoreboard_set_route(const char *name)
{
	struct sb_slot *s = scoreboard_self();
	if (s)
		snprintf(s->route, sizeof(s->route), "%s", name ? name : "");
}

void scoreboard_sql_begin(const char *name)
{
	struct sb_slot *s = scoreboard_self();
	if (!s)
		return;
	snprintf(s->sql, sizeof(s->sql), "%s", name ? name : "");
	s->sql_start_us = now_mono_us();
}

void scoreboard_sql_end(void)
{
	struct sb_slot *s = scoreboard_self();
	if (!s || !s->sql_start_us)
		return;
	int64_t us = now_mono_us() - s->sql_start_us;
	if (us > slowest.us) {
		memcpy(slowest.name, s->sql, sizeof(slowest.name));
		slowest.us = us;
	}
	s->sql[0] = '\0';
	s->sql_start_us = 0;
}

const struct sb_sql_wait *scoreboard_slowest_sql(void)
{
	return slowest.us >= 0 && slowest.name[0] ? &slowest : NULL;
}

void scoreboard_count_fd_exhaustion(void)
{
	if (sb)
		ADD(&sb->fd_exhaustion_total, 1);
}

/* ---------------------------------------------------------------- counters */

int sb_code_index(int status)
{
	for (int i = 0; i < SB_N_CODES - 1; i++)
		if (sb_status_codes[i] == status)
			return i;
	return SB_N_CODES - 1;
}

void scoreboard_record(int endpoint, int status, int64_t elapsed_us)
{
	if (!sb)
		return;
	if (endpoint < 0 || endpoint >= SB_MAX_ENDPOINTS)
		endpoint = SB_MAX_ENDPOINTS - 1;
	struct sb_endpoint *e = &sb->endpoints[endpoint];
	ADD(&e->codes[sb_code_index(status)], 1);
	observe(&e->latency, elapsed_us);
	ADD(&sb->total_requests, 1);
}
