/* master.h: opens the socket, forks workers, reaps and respawns them, handles signals. */
#ifndef SCANQA_MASTER_H
#define SCANQA_MASTER_H

#include "conf.h"

/* Serves until SIGTERM/SIGINT. Takes ownership of c. Returns an exit code. */
int master_run(struct conf *c);

#endif
