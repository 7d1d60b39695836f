/* scoreboard.h: shared memory, written by workers and read by the master and the
 * status page: one slot per worker, plus counters. Created by the master before fork. */
#ifndef SCANQA_SCOREBOARD_H
#define SCANQA_SCOREBOARD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define SB_MAX_WORKERS 256

enum worker_state { WS_FREE = 0, WS_STARTING, WS_IDLE, WS_BUSY, WS_STOPPING };

struct sb_slot {
	volatile pid_t pid;
	volatile int state;          /* enum worker_state */
	volatile uint64_t requests;  /* served by this worker */
	volatile int64_t req_start_us; /* monotonic start of the current request, 0 if idle */
	char route[32];              /* current route name */
	volatile int64_t started_us; /* wall clock at spawn */
};

struct scoreboard {
	int64_t master_started_us;
	volatile uint64_t total_requests;
	struct sb_slot slots[SB_MAX_WORKERS];
};

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

#endif
