/* master.c: the master process. It opens the listen socket, forks the workers, and
 * then only waits for signals and status-page connections: its handlers set flags,
 * and the loop below acts on them (reap and respawn with a crash-loop backoff,
 * rolling reload on SIGHUP, graceful stop on SIGTERM with a SIGKILL deadline). It
 * never opens a database connection, so no PGconn is ever inherited across fork().
 *
 * The status page: the master serves it on its own small socket (status_listen, as
 * php-fpm's pm.status_listen), so it answers when every worker is busy and requests
 * wait in the main socket's backlog. Every tick it samples that backlog (the accept
 * queue) for the page.
 *
 * Signals: SIGTERM, SIGINT, SIGQUIT graceful stop; SIGHUP reload; SIGUSR1 and SIGUSR2 are
 * logged and ignored (nginx's "reopen logs" and "upgrade binary": scanqa writes no
 * files, and logrotate scripts written for nginx send SIGUSR1). */
#include "master.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <fcgiapp.h>

#include "handlers.h"
#include "log.h"
#include "request.h"
#include "router.h"
#include "scoreboard.h"
#include "sockdiag.h"
#include "worker.h"

#define MAX_CHILDREN (SB_MAX_WORKERS)
#define BACKOFF_MIN_US 100000LL
#define BACKOFF_MAX_US 10000000LL
#define HEALTHY_AFTER_US 5000000LL
/* The status socket: each read or write of a status request must make progress
 * within STATUS_IO_TIMEOUT_S, and the master spends at most STATUS_DEADLINE_MS per
 * tick on status requests in all: a peer that drips its request byte by byte (a
 * status_listen on loopback TCP admits any local user) has its connection shut
 * down then, so the master goes back to reaping and respawning workers. */
#define STATUS_IO_TIMEOUT_S 1
#define STATUS_DEADLINE_MS 2000
#define STATUS_PER_TICK 16

struct child {
	pid_t pid;
	int slot;
	unsigned gen;      /* config generation it was started with */
	int64_t spawned_us;
	bool term_sent;
};

static struct child children[MAX_CHILDREN];
static struct conf *cfg;
static int listen_fd = -1;
static int status_fd = -1;
static FCGX_Request status_req;
static unsigned gen = 1;
static int crash_streak;
static int64_t next_spawn_us;

static volatile sig_atomic_t got_term, got_hup, got_chld, got_usr1, got_usr2;

static void on_signal(int sig)
{
	if (sig == SIGTERM || sig == SIGINT || sig == SIGQUIT)
		got_term = 1;
	else if (sig == SIGHUP)
		got_hup = 1;
	else if (sig == SIGCHLD)
		got_chld = 1;
	else if (sig == SIGUSR1)
		got_usr1 = 1;
	else if (sig == SIGUSR2)
		got_usr2 = 1;
}

/* ---------------------------------------------------------------- sd_notify */

/* The sd_notify protocol without libsystemd: one datagram to $NOTIFY_SOCKET. */
static void notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	if (!path || (path[0] != '/' && path[0] != '@') || strlen(path) >= sizeof(sa.sun_path))
		return;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	size_t len = strlen(path);
	memcpy(sa.sun_path, path, len);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	if (sendto(fd, state, strlen(state), 0, (struct sockaddr *)&sa,
		   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0)
		log_warn("sd_notify failed: %s", strerror(errno));
	close(fd);
}

/* ---------------------------------------------------------------- listen socket */

/* Opens the listen socket at path, a unix socket with the given mode and group,
 * listening with backlog. Fatal on any error. The socket is bound under a temporary
 * name next to path, given its group and mode, made to listen, and only then
 * rename(2)d into place: nginx never finds it there without its final permissions
 * ("Permission denied" under load, seen in t/fault_sigterm_states.t) or refusing
 * connections. A path too long for a temporary name is bound in place. */
static int open_unix(const char *path, unsigned mode, const char *group, int backlog)
{
	struct sockaddr_un sa;
	struct stat st;
	char tmp[sizeof sa.sun_path];
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		fatal("socket: %s", strerror(errno));
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			fatal("%s exists and is not a socket", path);
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			fatal("%s is in use by another running scanqa", path);
		close(fd); /* the stale socket of a process that is gone: replaced below */
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			fatal("socket: %s", strerror(errno));
	}
	int n = snprintf(tmp, sizeof tmp, "%s.%d.new", path, (int)getpid());
	bool renamed = n > 0 && (size_t)n < sizeof tmp;
	if (renamed) {
		unlink(tmp);
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", tmp);
	} else {
		unlink(path);
		snprintf(tmp, sizeof tmp, "%s", path);
	}
	/* Created 0600, then opened up to the configured mode: never briefly world-writable. */
	mode_t old = umask(0177);
	int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc != 0)
		fatal("bind %s: %s", tmp, strerror(errno));
	if (group && *group) {
		struct group *g = getgrnam(group);
		if (!g)
			fatal("socket_group: no such group \"%s\"", group);
		if (chown(tmp, (uid_t)-1, g->gr_gid) != 0)
			fatal("chown %s to group %s: %s", tmp, group, strerror(errno));
	}
	if (chmod(tmp, (mode_t)mode) != 0)
		fatal("chmod %s: %s", tmp, strerror(errno));
	if (listen(fd, backlog) != 0)
		fatal("listen: %s", strerror(errno));
	if (renamed && rename(tmp, path) != 0) {
		int e = errno;
		unlink(tmp);
		fatal("rename %s to %s: %s", tmp, path, strerror(e));
	}
	return fd;
}

static int open_tcp(const char *hostport)
{
	char host[64], port[8];
	struct addrinfo hints, *res = NULL;
	if (!conf_tcp_address(hostport, host, sizeof(host), port, sizeof(port)))
		fatal("listen %s: not HOST:PORT", hostport);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0)
		fatal("listen %s: %s", hostport, gai_strerror(rc));
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0)
		fatal("bind %s: %s", hostport, strerror(errno));
	freeaddrinfo(res);
	return fd;
}

/* Opens, binds and listens on a "unix:/path" or loopback TCP address. The socket is
 * non-blocking: a process that lost the race for a connection gets EAGAIN instead of
 * sleeping in accept(). */
static int open_socket(const char *addr, int backlog)
{
	int fd;
	if (strncmp(addr, "unix:", 5) == 0) {
		fd = open_unix(addr + 5, cfg->socket_mode, cfg->socket_group, backlog);
	} else {
		fd = open_tcp(addr);
		if (listen(fd, backlog) != 0)
			fatal("listen: %s", strerror(errno));
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	log_info("listening on %s", addr);
	return fd;
}

static void open_listen(void)
{
	listen_fd = open_socket(cfg->listen, cfg->listen_backlog);
	if (cfg->status_listen[0])
		status_fd = open_socket(cfg->status_listen, 16);
}

static void close_socket(int *fd, const char *addr)
{
	if (*fd < 0)
		return;
	close(*fd);
	*fd = -1;
	if (strncmp(addr, "unix:", 5) == 0)
		unlink(addr + 5);
}

static void close_listen(void)
{
	close_socket(&listen_fd, cfg->listen);
	close_socket(&status_fd, cfg->status_listen);
}

/* ---------------------------------------------------------------- status page */

/* Samples the accept queue of the listen socket into the scoreboard. */
static void sample_queue(void)
{
	static bool warned;
	uint32_t q, backlog;
	if (listen_fd < 0)
		return;
	if (!sockdiag_listen_queue(listen_fd, strncmp(cfg->listen, "unix:", 5) == 0, &q, &backlog)) {
		if (!warned)
			log_warn("cannot read the accept queue of %s: %s; the status page shows 0", cfg->listen,
				 strerror(errno));
		warned = true;
		return;
	}
	struct scoreboard *sb = scoreboard();
	sb->listen_queue = q;
	sb->listen_backlog = backlog;
	if (q > sb->listen_queue_max)
		sb->listen_queue_max = q;
}

/* One request on the status socket: the status page, or 404 for any other path. */
static void serve_status(FCGX_Request *fr, const struct conf *c)
{
	struct request req;
	request_init(&req, fr, c->body_limit);
	req.route_name = "status";
	sample_queue();
	if (strcmp(req.path, "/scanqa/status") != 0 || strcmp(req.method, "GET") != 0)
		resp_error(&req, 404, "Not found");
	else
		h_status(&req, NULL);
	scoreboard_record(router_endpoint("status"), req.status, now_mono_us() - req.start_us);
	request_free(&req);
}

/* The status connection being served (-1 when none), and whether this tick's
 * STATUS_DEADLINE_MS has passed. SIGALRM's handler shuts that connection down
 * (shutdown() is async-signal-safe): libfcgi's read or write in progress fails
 * (EINTR, or end of file once restarted), and so does every later one. */
static volatile sig_atomic_t status_conn = -1;
static volatile sig_atomic_t status_expired;

static void on_status_deadline(int sig)
{
	int fd = status_conn;

	(void)sig;
	status_expired = 1;
	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
}

static void arm_status_deadline(long ms)
{
	struct itimerval it = { { 0, 0 }, { ms / 1000, (ms % 1000) * 1000 } };

	setitimer(ITIMER_REAL, &it, NULL);
}

/* Serves the connections waiting on the status socket, at most STATUS_PER_TICK of
 * them and STATUS_DEADLINE_MS in all; the rest wait for the next tick. */
static void accept_status(void)
{
	status_expired = 0;
	arm_status_deadline(STATUS_DEADLINE_MS);
	for (int i = 0; i < STATUS_PER_TICK && !status_expired; i++) {
		int fd = accept4(status_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
				log_warn("status socket: accept: %s", strerror(errno));
			break;
		}
		status_conn = fd;
		worker_serve_fd(&status_req, fd, STATUS_IO_TIMEOUT_S, strncmp(cfg->status_listen, "unix:", 5) != 0,
				serve_status, cfg);
		/* fd is closed; no descriptor was opened since, so a shutdown() of it
		 * by a late SIGALRM fails with EBADF and touches nothing. */
		status_conn = -1;
		if (status_expired)
			log_warn("status socket: a request was not complete after %d ms in all: connection shut down",
				 STATUS_DEADLINE_MS);
	}
	arm_status_deadline(0);
}

/* ---------------------------------------------------------------- children */

static int count_children(int want_gen, bool only_ready)
{
	int n = 0;
	for (int i = 0; i < MAX_CHILDREN; i++) {
		if (!children[i].pid)
			continue;
		if (want_gen >= 0 && children[i].gen != (unsigned)want_gen)
			continue;
		if (only_ready && scoreboard()->slots[children[i].slot].state != WS_IDLE &&
		    scoreboard()->slots[children[i].slot].state != WS_BUSY)
			continue;
		n++;
	}
	return n;
}

static bool spawn_worker(void)
{
	int ci;
	for (ci = 0; ci < MAX_CHILDREN && children[ci].pid; ci++)
		;
	int slot = ci < MAX_CHILDREN ? scoreboard_claim(0) : -1;
	if (slot < 0) {
		/* Cannot happen while workers <= CONF_WORKERS_MAX; logged once, not per tick. */
		static bool logged;
		if (!logged)
			log_error("no free worker slot");
		logged = true;
		return false;
	}
	pid_t pid = fork();
	if (pid < 0) {
		log_error("fork: %s", strerror(errno));
		scoreboard_release(slot);
		return false;
	}
	if (pid == 0) {
		if (status_fd >= 0)
			close(status_fd); /* the master's alone */
		sockdiag_close();
		worker_main(cfg, listen_fd, slot);
	}
	scoreboard()->slots[slot].pid = pid;
	scoreboard()->slots[slot].started_us = now_wall_us();
	scoreboard()->slots[slot].generation = gen;
	scoreboard()->spawns_total++;
	children[ci] = (struct child){ .pid = pid, .slot = slot, .gen = gen, .spawned_us = now_mono_us() };
	log_debug("spawned worker %d", (int)pid);
	return true;
}

static void describe_exit(int status, char *buf, size_t len)
{
	if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
}

static void reap(bool stopping)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		int i;
		for (i = 0; i < MAX_CHILDREN && children[i].pid != pid; i++)
			;
		if (i == MAX_CHILDREN)
			continue;
		struct child *ch = &children[i];
		struct sb_slot *s = &scoreboard()->slots[ch->slot];
		char how[96];
		describe_exit(status, how, sizeof(how));
		bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
		int64_t lived = now_mono_us() - ch->spawned_us;
		if (!clean)
			scoreboard()->crashes_total++;
		if (clean) {
			log_debug("worker %d %s", (int)pid, how);
		} else if (s->req_start_us) {
			log_error("worker %d %s while serving %s (request age %lld ms)", (int)pid, how,
				  s->route[0] ? s->route : "a request",
				  (long long)((now_mono_us() - s->req_start_us) / 1000));
		} else {
			log_error("worker %d %s after %lld ms", (int)pid, how, (long long)(lived / 1000));
		}
		if (!stopping) {
			if (!clean && lived < HEALTHY_AFTER_US) {
				crash_streak++;
				int64_t delay = BACKOFF_MIN_US << (crash_streak < 8 ? crash_streak - 1 : 7);
				if (delay > BACKOFF_MAX_US)
					delay = BACKOFF_MAX_US;
				next_spawn_us = now_mono_us() + delay;
				if (crash_streak > 1)
					log_warn("workers keep dying at start-up (%d in a row); next start in %lld ms",
						 crash_streak, (long long)(delay / 1000));
			} else {
				crash_streak = 0;
			}
		}
		scoreboard_release(ch->slot);
		memset(ch, 0, sizeof(*ch));
	}
}

static void signal_children(int sig, int only_gen)
{
	for (int i = 0; i < MAX_CHILDREN; i++) {
		if (!children[i].pid)
			continue;
		if (only_gen >= 0 && children[i].gen != (unsigned)only_gen)
			continue;
		kill(children[i].pid, sig);
		if (sig == SIGTERM)
			children[i].term_sent = true;
	}
}

/* ---------------------------------------------------------------- reload */

static void reload_refused(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void reload_refused(const char *fmt, ...)
{
	struct scoreboard *sb = scoreboard();
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sb->last_reload_error, sizeof(sb->last_reload_error), fmt, ap);
	va_end(ap);
	sb->last_reload_ok = 0;
	sb->reloads_refused_total++;
	log_error("reload refused, keeping the running config: %s", sb->last_reload_error);
}

/* Reads the config again. It must pass every check start-up makes (conf_load makes
 * them all), and change no setting that needs a restart; otherwise the running config
 * stays, and the refusal is logged and shown on the status page. */
static void reload(void)
{
	struct conf next;
	char err[600];
	notify("RELOADING=1");
	scoreboard()->last_reload_us = now_wall_us();
	if (!conf_load(cfg->path, &next, err, sizeof(err))) {
		reload_refused("%s", err);
		notify("READY=1");
		return;
	}
	const char *blocker = conf_reload_blocker(cfg, &next);
	if (blocker) {
		reload_refused("%s cannot change without a restart", blocker);
		conf_free(&next);
		notify("READY=1");
		return;
	}
	conf_free(cfg);
	*cfg = next; /* ownership transferred */
	log_set_level(cfg->log_level);
	gen++;
	scoreboard()->generation = gen;
	scoreboard()->workers_configured = cfg->workers;
	scoreboard()->last_reload_ok = 1;
	scoreboard()->last_reload_error[0] = '\0';
	crash_streak = 0;
	next_spawn_us = 0;
	log_info("configuration reloaded; replacing workers one by one");
	notify("READY=1");
}

/* While old-generation workers remain: start a new one, and retire an old one for each
 * new one that is ready, so capacity never drops below the configured count. */
static void roll_workers(void)
{
	int old_alive = 0, old_untermed = 0;
	for (int i = 0; i < MAX_CHILDREN; i++) {
		if (children[i].pid && children[i].gen != gen) {
			old_alive++;
			if (!children[i].term_sent)
				old_untermed++;
		}
	}
	int new_ready = count_children((int)gen, true);
	int new_all = count_children((int)gen, false);
	int surplus = new_ready + old_untermed - cfg->workers;
	for (int i = 0; i < MAX_CHILDREN && surplus > 0; i++) {
		if (children[i].pid && children[i].gen != gen && !children[i].term_sent) {
			kill(children[i].pid, SIGTERM);
			log_info("stopping worker %d of config generation %u: a new one is ready", (int)children[i].pid,
				 children[i].gen);
			children[i].term_sent = true;
			surplus--;
		}
	}
	/* One spare at a time during a roll; the full count otherwise. */
	int limit = old_alive ? cfg->workers + 1 : cfg->workers;
	if (new_all + old_alive < limit && new_all < cfg->workers && now_mono_us() >= next_spawn_us)
		spawn_worker();
}

/* ---------------------------------------------------------------- main loop */

int master_run(struct conf *c)
{
	struct sigaction sa;
	sigset_t block, empty;

	cfg = c;
	if (!scoreboard_create())
		fatal("cannot map the scoreboard: %s", strerror(errno));
	scoreboard()->master_started_us = now_wall_us();
	scoreboard()->master_pid = getpid();
	scoreboard()->generation = gen;
	scoreboard()->workers_configured = cfg->workers;

	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGQUIT);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGCHLD);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGUSR2);
	sigprocmask(SIG_BLOCK, &block, NULL);
	sigemptyset(&empty);
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	/* The status page is read through libfcgi. FCGX_Init replaces the handler of
	 * SIGPIPE, SIGUSR1 and SIGTERM when it is default or ignored (ours are neither,
	 * but SIGPIPE's is): set SIGPIPE after it. */
	if (FCGX_Init() != 0)
		fatal("FCGX_Init failed");
	FCGX_InitRequest(&status_req, -1, 0);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	/* No SA_RESTART: a status read in progress is interrupted at the deadline. */
	sa.sa_handler = on_status_deadline;
	sigaction(SIGALRM, &sa, NULL);

	open_listen();
	log_info("scanqa %s starting %d workers", PACKAGE_VERSION, cfg->workers);
	for (int i = 0; i < cfg->workers; i++)
		spawn_worker();

	bool ready_sent = false, stopping = false;
	int64_t deadline = 0;
	for (;;) {
		struct timespec tick = { 0, 50 * 1000000L };
		struct pollfd pfd = { .fd = status_fd, .events = POLLIN };
		/* Signals get in only here. */
		int n = ppoll(&pfd, status_fd >= 0 ? 1 : 0, &tick, &empty);

		if (got_chld) {
			got_chld = 0;
			reap(stopping);
		}
		if (got_usr1) {
			got_usr1 = 0;
			log_info("SIGUSR1 ignored: scanqa writes no log files to reopen (it logs to stderr)");
		}
		if (got_usr2) {
			got_usr2 = 0;
			log_info("SIGUSR2 ignored: it has no meaning for scanqa");
		}
		if (got_term && !stopping) {
			stopping = true;
			notify("STOPPING=1");
			log_info("shutting down: finishing requests in flight (deadline %d s)", cfg->shutdown_timeout_s);
			close_listen();
			/* Before the signal: tells each worker to answer what waits in the backlog. */
			__atomic_store_n(&scoreboard()->stopping, 1, __ATOMIC_RELEASE);
			signal_children(SIGTERM, -1);
			deadline = now_mono_us() + (int64_t)cfg->shutdown_timeout_s * 1000000;
		}
		if (stopping) {
			if (count_children(-1, false) == 0)
				break;
			if (now_mono_us() >= deadline) {
				log_warn("shutdown deadline passed: killing %d busy workers", count_children(-1, false));
				signal_children(SIGKILL, -1);
				deadline = now_mono_us() + 5000000;
			}
			continue;
		}
		if (n > 0 && status_fd >= 0 && (pfd.revents & POLLIN))
			accept_status();
		sample_queue();
		if (got_hup) {
			got_hup = 0;
			reload();
		}
		roll_workers();
		if (!ready_sent && count_children((int)gen, true) == cfg->workers) {
			notify("READY=1");
			ready_sent = true;
			log_info("ready: %d workers accepting", cfg->workers);
		}
	}
	log_info("stopped");
	sockdiag_close();
	conf_free(cfg);
	return 0;
}
