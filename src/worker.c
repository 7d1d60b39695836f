/* worker.c: one pre-forked worker. It connects to PostgreSQL after the fork, waits in
 * epoll for a connection on the shared listen socket (EPOLLEXCLUSIVE, so one idle
 * worker wakes per connection) and for signals (a signalfd in the same epoll set),
 * accepts connections itself, serves one request at a time, and leaves after SIGTERM
 * or max_requests.
 *
 * Signals. Every signal the worker acts on stays blocked for the worker's whole life
 * and arrives as a record on the signalfd, read before each accept: a SIGTERM is
 * never starved by a stream of connections, never interrupts libfcgi's read() or
 * write() halfway through a request, and costs no system call while requests flow.
 *   SIGTERM, SIGINT, SIGQUIT
 *                    finish the request in progress, then exit 0 (a busy worker stops
 *                    after its current request; an idle one at once). SIGQUIT is
 *                    nginx's and php-fpm's graceful stop; ours are all graceful.
 *   SIGHUP           ignored: reload is the master's business.
 *   SIGUSR1          logged and otherwise ignored. nginx reopens its logs on SIGUSR1,
 *                    so logrotate scripts send it; scanqa writes no files (its log is
 *                    stderr, i.e. the journal), so there is nothing to reopen.
 *   SIGUSR2          logged and otherwise ignored (nginx's binary upgrade; no meaning
 *                    here).
 * The master's death is a SIGTERM too (prctl PR_SET_PDEATHSIG), so no loop turn
 * has to ask getppid().
 *
 * Accept policy (accept4 here, never libfcgi's FCGX_Accept_r on the listen socket,
 * whose "shutdown pending" state makes it fail forever after a stray SIGUSR1):
 *   EAGAIN, EINTR, ECONNABORTED, and the network errors accept(2) says to treat
 *   like EAGAIN          wait again;
 *   EMFILE, ENFILE       log once, stop watching the socket for a growing pause
 *                        (50 ms doubling to 1 s), log again once accept works;
 *   anything else        log and exit 4: the master logs the exit and respawns the
 *                        worker with its crash-loop backoff. */
#include "worker.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <fcgiapp.h>

#include "db.h"
#include "log.h"
#include "request.h"
#include "router.h"
#include "scoreboard.h"

/* Exit statuses the master's log shows: 2 set-up failed, 3 the database refuses this
 * conninfo, 4 accept failed in a way waiting cannot fix. */
#define EXIT_SETUP 2
#define EXIT_DB_REFUSED 3
#define EXIT_ACCEPT 4

/* A peer that stops reading or sending mid-request fails the request after this long
 * instead of holding the worker (and a SIGTERM) forever. nginx buffers request bodies
 * and responses, so it never comes near. */
#define CONN_IO_TIMEOUT_S 10
#define BACKOFF_FIRST_MS 50
#define BACKOFF_MAX_MS 1000
/* An idle worker looks at the socket at least this often: EPOLLEXCLUSIVE wakes one
 * waiting worker per connection, and a worker that stops right then does not pass its
 * wake-up on. */
#define IDLE_POLL_MS 1000

enum { EV_LISTEN = 1, EV_SIGNAL = 2, EV_DB = 3 };

static bool stop_requested;

/* ---------------------------------------------------------------- signals */

static void block_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGQUIT);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGUSR1);
	sigaddset(set, SIGUSR2);
	sigprocmask(SIG_BLOCK, set, NULL);
}

/* Dispositions for after FCGX_Init, which installs its own handlers on SIGPIPE,
 * SIGUSR1 and SIGTERM whenever they are at default or ignored (libfcgi 2.4.2
 * os_unix.c, installSignalHandler): its SIGUSR1/SIGTERM handler sets "shutdown
 * pending", after which its accept always fails. Those signals are blocked and read
 * from the signalfd, so no handler ever runs; resetting them here leaves nothing of
 * libfcgi's behind. A blocked signal must not be SIG_IGN, or the kernel would drop it
 * before the signalfd sees it. */
static void set_dispositions(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = SIG_DFL;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL); /* nginx gone: the write fails with EPIPE instead */
}

/* Reads every pending signal from the signalfd and acts on it. */
static void read_signals(int sfd)
{
	struct signalfd_siginfo si;
	while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
		case SIGQUIT:
			if (!stop_requested)
				log_debug("signal %d: stopping after the request in progress", (int)si.ssi_signo);
			stop_requested = true;
			break;
		case SIGUSR1:
			log_info("SIGUSR1 ignored: scanqa writes no log files to reopen (it logs to stderr)");
			break;
		case SIGUSR2:
			log_info("SIGUSR2 ignored: it has no meaning for scanqa");
			break;
		default: /* SIGHUP: the master reloads */
			break;
		}
	}
}

/* ---------------------------------------------------------------- one request */

static void serve_one(FCGX_Request *fr, const struct conf *c)
{
	struct request req;

	request_init(&req, fr, c->body_limit);
	scoreboard_request_begin(request_param(&req, "SCANQA_QUEUE_START"), req.start_us);
	router_dispatch(&req);
	int64_t elapsed_us = now_mono_us() - req.start_us;
	const char *route = req.route_name ? req.route_name : "-";
	if (c->slow_request_ms > 0 && elapsed_us / 1000 >= c->slow_request_ms) {
		char sql[96] = "";
		const struct sb_sql_wait *w = scoreboard_slowest_sql();
		if (w)
			snprintf(sql, sizeof(sql), "; longest SQL: %s, %lld ms", w->name, (long long)(w->us / 1000));
		log_warn("slow request: %s %s -> %d in %lld ms%s", req.method, route, req.status,
			 (long long)(elapsed_us / 1000), sql);
	} else {
		log_debug("%s %s -> %d in %lld us", req.method, route, req.status, (long long)elapsed_us);
	}
	scoreboard_record(router_endpoint(req.route_name), req.status, elapsed_us);
	request_free(&req);
	scoreboard_request_end();
}

/* Hands the accepted connection fd to libfcgi, calls serve() on the request it
 * carries, and closes the connection at once after the answer. Returns false, fd
 * closed, when the connection ended before a complete request.
 *
 * Handing over: FCGX_Accept_r accepts only when the request has no connection
 * (ipcFd < 0), so an ipcFd set beforehand is read from directly. keepConnection = 1
 * stops its opening FCGX_Finish_r from closing the fd before use; the request's
 * BEGIN record then sets it to what nginx asked (no FCGI_KEEP_CONN: close after the
 * answer). fr's listen socket is -1 (FCGX_InitRequest(fr, -1, 0)), so if the
 * connection carries no request, libfcgi's retry finds nothing to accept and
 * returns an error instead of accepting on its own.
 *
 * Closing: left alone, libfcgi half-closes and then waits (up to 2 s) for nginx to
 * close its end. A request is always read to its end (request_init reads the body to
 * EOF), so nothing is left unread and a plain close() is safe; detached = 1 is
 * libfcgi's switch for it (what FCGX_Detach sets). */
bool worker_serve_fd(FCGX_Request *fr, int fd, int io_timeout_s, bool tcp,
		     void (*serve)(FCGX_Request *, const struct conf *), const struct conf *c)
{
	struct timeval tv = { io_timeout_s, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (tcp) {
		int one = 1; /* what libfcgi does for TCP: no replies to wait for, no Nagle */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	fr->ipcFd = fd;
	fr->keepConnection = 1;
	fr->detached = 1;
	if (FCGX_Accept_r(fr) < 0) {
		log_debug("a connection closed before sending a request");
		fr->ipcFd = -1;
		return false;
	}
	serve(fr, c);
	fr->detached = 1;
	FCGX_Finish_r(fr);
	if (fr->ipcFd >= 0) { /* nginx asked to keep the connection: we never do */
		close(fr->ipcFd);
		fr->ipcFd = -1;
	}
	return true;
}

static bool serve_connection(FCGX_Request *fr, int fd, const struct conf *c)
{
	return worker_serve_fd(fr, fd, CONN_IO_TIMEOUT_S, strncmp(c->listen, "unix:", 5) != 0, serve_one, c);
}

/* ---------------------------------------------------------------- accept */

struct acceptor {
	int ep, listen_fd;
	bool watching;      /* the listen socket is in the epoll set */
	int backoff_ms;     /* 0 unless pausing after EMFILE/ENFILE */
	int64_t resume_us;  /* monotonic time the pause ends */
	int64_t paused_since_us;
};

static bool watch_listen(struct acceptor *a, bool on)
{
	struct epoll_event ev;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLEXCLUSIVE;
	ev.data.u32 = EV_LISTEN;
	if (on == a->watching)
		return true;
	if (epoll_ctl(a->ep, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, a->listen_fd, &ev) != 0) {
		log_error("epoll_ctl on the listen socket: %s", strerror(errno));
		return false;
	}
	a->watching = on;
	return true;
}

/* accept(2): "Linux accept() passes already-pending network errors on the new socket
 * as an error code from accept()... treat them like EAGAIN by retrying." */
static bool accept_should_retry(int e)
{
	switch (e) {
	case EAGAIN:
#if EWOULDBLOCK != EAGAIN
	case EWOULDBLOCK:
#endif
	case EINTR:
	case ECONNABORTED:
	case EPROTO:
	case ENETDOWN:
	case ENOPROTOOPT:
	case EHOSTDOWN:
	case ENONET:
	case EHOSTUNREACH:
	case EOPNOTSUPP:
	case ENETUNREACH:
		return true;
	default:
		return false;
	}
}

/* Accepts one connection. Returns its fd, or -1 when there is none to serve now
 * (including a pause after EMFILE/ENFILE). Exits the worker on any other error. */
static int accept_one(struct acceptor *a)
{
	int fd = accept4(a->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd >= 0) {
		if (a->paused_since_us) {
			log_info("accept works again after %lld ms without file descriptors",
				 (long long)((now_mono_us() - a->paused_since_us) / 1000));
			a->paused_since_us = 0;
		}
		a->backoff_ms = 0;
		return fd;
	}
	int e = errno;
	if (accept_should_retry(e))
		return -1;
	if (e == EMFILE || e == ENFILE) {
		if (!a->paused_since_us) {
			a->paused_since_us = now_mono_us();
			log_error("accept: %s; pausing accepts until descriptors are free (connections wait in the backlog)",
				  strerror(e));
			scoreboard_count_fd_exhaustion();
		}
		a->backoff_ms = a->backoff_ms ? a->backoff_ms * 2 : BACKOFF_FIRST_MS;
		if (a->backoff_ms > BACKOFF_MAX_MS)
			a->backoff_ms = BACKOFF_MAX_MS;
		a->resume_us = now_mono_us() + (int64_t)a->backoff_ms * 1000;
		if (!watch_listen(a, false))
			_exit(EXIT_ACCEPT);
		return -1;
	}
	log_error("accept: %s; the worker exits to be replaced", strerror(e));
	_exit(EXIT_ACCEPT);
}

/* ---------------------------------------------------------------- main loop */

void worker_main(const struct conf *c, int listen_fd, int slot_no)
{
	FCGX_Request fr;
	sigset_t sigs;
	long served = 0;

	block_signals(&sigs);
	/* The master's death arrives as a SIGTERM; if it died before this line, the
	 * parent is no longer the master that forked us. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != scoreboard()->master_pid)
		_exit(0);

	scoreboard_set_self(slot_no);
	log_set_level(c->log_level);

	if (FCGX_Init() != 0) {
		log_error("FCGX_Init failed");
		_exit(EXIT_SETUP);
	}
	set_dispositions();
	FCGX_InitRequest(&fr, -1, 0);

	struct acceptor a = { .ep = epoll_create1(EPOLL_CLOEXEC), .listen_fd = listen_fd };
	int sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = EV_SIGNAL };
	if (a.ep < 0 || sfd < 0 || epoll_ctl(a.ep, EPOLL_CTL_ADD, sfd, &ev) != 0 || !watch_listen(&a, true)) {
		log_error("epoll/signalfd setup failed: %s", strerror(errno));
		_exit(EXIT_SETUP);
	}

	db_init(c);
	if (!db_connect_first() && db_config_error()) {
		/* The server answered and refused us (no such role or database, bad
		 * password): no request could ever succeed. Exit so the master's crash-loop
		 * backoff and log make the misconfiguration visible. */
		log_error("worker cannot start: database refuses this conninfo; check conninfo in %s", c->path);
		_exit(EXIT_DB_REFUSED);
	}
	scoreboard_worker_ready();
	log_debug("worker ready");

	unsigned db_watched = 0; /* the generation of the connection whose socket is in a.ep */
	while (!stop_requested) {
		struct epoll_event got[3];
		int timeout = IDLE_POLL_MS;
		if (!a.watching) {
			int64_t left_ms = (a.resume_us - now_mono_us() + 999) / 1000;
			timeout = left_ms < 0 ? 0 : (int)left_ms;
		}
		/* Reconnecting happens here, between requests, as far as it can: a
		 * request then finds a connection instead of waiting for one. */
		int db_ms = db_idle();
		if (db_ms >= 0 && db_ms < timeout)
			timeout = db_ms;
		/* The idle connection is watched too: one the server closes is replaced
		 * now, not found dead by the next request. Once per connection; a closed
		 * socket leaves the epoll set by itself. */
		unsigned db_gen;
		int db_fd = db_idle_socket(&db_gen);
		if (db_fd >= 0 && db_gen != db_watched) {
			struct epoll_event dev = { .events = EPOLLIN | EPOLLRDHUP, .data.u32 = EV_DB };
			if (epoll_ctl(a.ep, EPOLL_CTL_ADD, db_fd, &dev) == 0 ||
			    (errno == EEXIST && epoll_ctl(a.ep, EPOLL_CTL_MOD, db_fd, &dev) == 0))
				db_watched = db_gen;
			else
				log_warn("cannot watch the database connection: %s", strerror(errno));
		}
		int n = epoll_wait(a.ep, got, 3, timeout);
		if (n < 0 && errno != EINTR) {
			log_error("epoll_wait: %s", strerror(errno));
			_exit(EXIT_SETUP);
		}
		/* On a timeout, look at the socket anyway (see IDLE_POLL_MS). */
		bool listen_ready = n == 0;
		for (int i = 0; i < n; i++) {
			if (got[i].data.u32 == EV_SIGNAL)
				read_signals(sfd);
			else if (got[i].data.u32 == EV_DB)
				db_idle_input();
			else
				listen_ready = true;
		}
		if (stop_requested)
			break;
		if (!a.watching) {
			if (now_mono_us() < a.resume_us)
				continue;
			if (!watch_listen(&a, true))
				_exit(EXIT_ACCEPT);
			listen_ready = true;
		}
		if (!listen_ready)
			continue;
		int fd = accept_one(&a);
		if (fd < 0)
			continue;
		if (!serve_connection(&fr, fd, c))
			continue;
		served++;
		if (c->max_requests > 0 && served >= c->max_requests) {
			log_info("served %ld requests (max_requests); worker exits to be replaced", served);
			break;
		}
	}
	if (stop_requested && __atomic_load_n(&scoreboard()->stopping, __ATOMIC_ACQUIRE)) {
		/* The daemon is shutting down and its socket is gone: connections nginx
		 * already made wait in the backlog, so answer them rather than let them be
		 * reset when the last copy of the socket closes. A worker stopped alone (a
		 * reload) leaves them to the others: draining there would last as long as
		 * the load does, and hold up the reload. */
		for (;;) {
			int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
			if (fd >= 0)
				serve_connection(&fr, fd, c);
			else if (errno != EINTR && errno != ECONNABORTED)
				break; /* EAGAIN: the backlog is empty */
		}
	}
	scoreboard_worker_stopping();
	db_close();
	close(sfd);
	close(a.ep);
	_exit(0);
}
