/* worker.h: one pre-forked worker: connect after fork, accept, serve, recycle. */
#ifndef SCANQA_WORKER_H
#define SCANQA_WORKER_H

#include <stdbool.h>
#include <fcgiapp.h>

#include "conf.h"

/* Runs the accept loop on listen_fd until shutdown or max_requests; never returns. */
void worker_main(const struct conf *c, int listen_fd, int slot) __attribute__((noreturn));

/* Serves one FastCGI request on the accepted connection fd, which it takes over and
 * closes: libfcgi reads the request (fr was set up with FCGX_InitRequest(fr, -1, 0)),
 * serve() answers it. Reads and writes give up after io_timeout_s without progress.
 * Returns false when the connection ended before a complete request. */
bool worker_serve_fd(FCGX_Request *fr, int fd, int io_timeout_s, bool tcp,
		     void (*serve)(FCGX_Request *, const struct conf *), const struct conf *c);

#endif
