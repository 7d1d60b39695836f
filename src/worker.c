/* worker.c: one pre-forked worker. It connects to PostgreSQL after the fork, waits for
 * connections with epoll (EPOLLEXCLUSIVE, so one idle worker wakes per connection),
 * serves one request at a time, and leaves after SIGTERM or max_requests.
 *
 * Signals stay blocked while a request is served and are let in only inside
 * epoll_pwait() and between two requests: a SIGTERM can then never interrupt
 * libfcgi's read() or write() halfway through a request, an idle worker still wakes
 * at once, and a busy one stops after its current request. */
#include "worker.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <fcgiapp.h>

#include "db.h"
#include "log.h"
#include "request.h"
#include "router.h"
#include "scoreboard.h"

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void install_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop; /* no SA_RESTART: a blocked wait must return EINTR */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGHUP, &sa, NULL);  /* reload is the master's business */
	sigaction(SIGPIPE, &sa, NULL); /* nginx gone: the write fails with EPIPE instead */
	sa.sa_handler = SIG_DFL;
	sigaction(SIGCHLD, &sa, NULL);
}

static void serve_one(FCGX_Request *fr, const struct conf *c, struct sb_slot *slot)
{
	struct request req;

	request_init(&req, fr, c->body_limit);
	if (slot) {
		slot->req_start_us = req.start_us;
		slot->state = WS_BUSY;
	}
	router_dispatch(&req);
	int64_t elapsed_us = now_mono_us() - req.start_us;
	if (c->slow_request_ms > 0 && elapsed_us / 1000 >= c->slow_request_ms)
		log_warn("slow request: %s %s -> %d in %lld ms", req.method, req.route_name ? req.route_name : "-",
			 req.status, (long long)(elapsed_us / 1000));
	else
		log_debug("%s %s -> %d in %lld us", req.method, req.route_name ? req.route_name : "-", req.status,
			  (long long)elapsed_us);
	scoreboard_record(router_endpoint(req.route_name), req.status, elapsed_us);
	request_free(&req);
	if (slot) {
		slot->requests++;
		slot->req_start_us = 0;
		slot->route[0] = '\0';
		slot->state = WS_IDLE;
	}
}

/* Sends what is left of the response and closes the connection at once.
 *
 * Left alone, libfcgi closes a connection gracefully: it half-closes it, then waits
 * (up to 2 s) until nginx has read the response and closed its end, so that data
 * nginx sent and we never read cannot turn the close into a reset. That costs every
 * request three more system calls and, worse, keeps the worker busy until nginx has
 * been scheduled. serve_one() always reads the request to its end (request_init reads
 * the body to EOF), so nothing is ever left unread and a plain close() is safe.
 * FCGX_Detach() is libfcgi's switch for the plain close; it applies to this request
 * only (FCGX_Finish_r resets it). */
static void finish_request(FCGX_Request *fr)
{
	FCGX_Detach(fr);
	FCGX_Finish_r(fr);
}

void worker_main(const struct conf *c, int listen_fd, int slot_no)
{
	FCGX_Request fr;
	sigset_t blocked, open_mask;
	struct epoll_event ev, got;
	long served = 0;
	pid_t master = getppid();

	sigemptyset(&blocked);
	sigaddset(&blocked, SIGTERM);
	sigaddset(&blocked, SIGINT);
	sigaddset(&blocked, SIGHUP);
	sigprocmask(SIG_BLOCK, &blocked, NULL);
	sigemptyset(&open_mask);
	install_signals(); /* before FCGX_Init, which only fills in handlers still at default */

	scoreboard_set_self(slot_no);
	struct sb_slot *slot = scoreboard_self();
	log_set_level(c->log_level);

	if (FCGX_Init() != 0) {
		log_error("FCGX_Init failed");
		_exit(2);
	}
	if (FCGX_InitRequest(&fr, listen_fd, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
		log_error("FCGX_InitRequest failed");
		_exit(2);
	}
	int ep = epoll_create1(EPOLL_CLOEXEC);
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLEXCLUSIVE;
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &ev) != 0) {
		log_error("epoll setup failed: %s", strerror(errno));
		_exit(2);
	}

	db_init(c);
	if (!db_ensure() && db_config_error()) {
		/* The server answered and refused us (no such role or database, bad
		 * password): no request could ever succeed. Exit so the master's crash-loop
		 * backoff and log make the misconfiguration visible. */
		log_error("worker cannot start: database refuses this conninfo; check conninfo in %s", c->path);
		_exit(3);
	}
	if (slot)
		slot->state = WS_IDLE;
	log_debug("worker ready");

	while (!stop_requested) {
		int n = epoll_pwait(ep, &got, 1, 1000, &open_mask);
		if (stop_requested)
			break;
		if (n < 0 && errno != EINTR) {
			log_error("epoll_pwait: %s", strerror(errno));
			break;
		}
		if (getppid() != master) {
			log_warn("master is gone; worker exits");
			break;
		}
		/* The listen socket is non-blocking: when another worker won the race,
		 * accept fails with EAGAIN and we simply wait again. The attempt is made
		 * on a timeout too: EPOLLEXCLUSIVE wakes one waiting worker per connection,
		 * and a worker that stops right then does not pass its wakeup on, so each
		 * idle worker looks at the socket itself once a second. */
		if (n < 0 || FCGX_Accept_r(&fr) < 0)
			continue;
		serve_one(&fr, c, slot);
		finish_request(&fr);
		served++;
		if (c->max_requests > 0 && served >= c->max_requests) {
			log_info("served %ld requests (max_requests); worker exits to be replaced", served);
			break;
		}
		/* epoll_pwait() returns ready events without delivering a pending signal,
		 * so while connections keep arriving a SIGTERM would never get in there:
		 * let pending signals in between requests too. */
		sigprocmask(SIG_UNBLOCK, &blocked, NULL);
		sigprocmask(SIG_BLOCK, &blocked, NULL);
	}
	if (stop_requested && __atomic_load_n(&scoreboard()->stopping, __ATOMIC_ACQUIRE)) {
		/* The daemon is shutting down and its socket is gone: connections nginx
		 * already made wait in the backlog, so answer them rather than let them be
		 * reset when the last copy of the socket closes. A worker stopped alone (a
		 * reload) leaves them to the others: draining there would last as long as
		 * the load does, and hold up the reload. */
		while (FCGX_Accept_r(&fr) >= 0) {
			serve_one(&fr, c, slot);
			finish_request(&fr);
		}
	}
	if (slot)
		slot->state = WS_STOPPING;
	FCGX_ShutdownPending();
	db_close();
	close(ep);
	_exit(0);
}
