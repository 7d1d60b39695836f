/* scoreboard.c: the shared-memory area behind the status page and the master's view
 * of its workers. Slots are claimed by the master only; each worker writes its own. */
#include "scoreboard.h"

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

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
