/* scoreboard.c: the shared-memory area behind the status page and the master's view
 * of its workers. Slots are claimed by the master only; each worker writes its own
 * slot, and every worker adds to the shared counters with atomic increments. */
#include "scoreboard.h"

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

const int sb_bucket_bounds_ms[SB_N_BUCKETS - 1] = { SB_BUCKET_BOUNDS_MS };
const int sb_status_codes[SB_N_CODES - 1] = { SB_STATUS_CODES };

static struct scoreboard *sb;
static int self = -1;

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
	if (slot >= 0 && slot < SB_MAX_WORKERS) {
		sb->slots[slot].pid = 0;
		sb->slots[slot].state = WS_FREE;
	}
}

void scoreboard_set_self(int slot) { self = slot; }

struct sb_slot *scoreboard_self(void)
{
	return (sb && self >= 0) ? &sb->slots[self] : NULL;
}

void scoreboard_set_route(const char *name)
{
	struct sb_slot *s = scoreboard_self();
	if (s)
		snprintf(s->route, sizeof(s->route), "%s", name ? name : "");
}

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
	if (elapsed_us < 0)
		elapsed_us = 0;
	struct sb_endpoint *e = &sb->endpoints[endpoint];
	int b = 0;
	while (b < SB_N_BUCKETS - 1 && elapsed_us > (int64_t)sb_bucket_bounds_ms[b] * 1000)
		b++;
	__atomic_add_fetch(&e->codes[sb_code_index(status)], 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&e->buckets[b], 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&e->sum_us, (uint64_t)elapsed_us, __ATOMIC_RELAXED);
	__atomic_add_fetch(&sb->total_requests, 1, __ATOMIC_RELAXED);
}
