/* worker.h: one pre-forked worker: connect after fork, accept, serve, recycle. */
#ifndef SCANQA_WORKER_H
#define SCANQA_WORKER_H

#include "conf.h"

/* Runs the accept loop on listen_fd until shutdown or max_requests; never returns. */
void worker_main(const struct conf *c, int listen_fd, int slot) __attribute__((noreturn));

#endif
