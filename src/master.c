/* master.c: the master process. It opens the listen socket, forks the workers, and
 * then only waits for signals: its handlers set flags, and the loop below acts on them
 * (reap and respawn with a crash-loop backoff, rolling reload on SIGHUP, graceful stop
 * on SIGTERM with a SIGKILL deadline). It never opens a database connection, so no
 * PGconn is ever inherited across fork(). */
#include "master.h"

#include <errno.h>
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
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <libpq-fe.h>

#include "log.h"
#include "request.h"
#include "scoreboard.h"
#include "worker.h"

#define MAX_CHILDREN (SB_MAX_WORKERS)
#define BACKOFF_MIN_US 100000LL
#define BACKOFF_MAX_US 10000000LL
#define HEALTHY_AFTER_US 5000000LL

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
static unsigned gen = 1;
static int crash_streak;
static int64_t next_spawn_us;

static volatile sig_atomic_t got_term, got_hup, got_chld;

static void on_signal(int sig)
{
	if (sig == SIGTERM || sig == SIGINT)
		got_term = 1;
	else if (sig == SIGHUP)
		got_hup = 1;
	else if (sig == SIGCHLD)
		got_chld = 1;
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

static int open_unix(const char *path, unsigned mode, const char *group)
{
	struct sockaddr_un sa;
	struct stat st;
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
		unlink(path); /* stale socket of a process that is gone */
		close(fd);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	}
	/* Created 0600, then opened up to the configured mode: never briefly world-writable. */
	mode_t old = umask(0177);
	int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc != 0)
		fatal("bind %s: %s", path, strerror(errno));
	if (group && *group) {
		struct group *g = getgrnam(group);
		if (!g)
			fatal("socket_group: no such group \"%s\"", group);
		if (chown(path, (uid_t)-1, g->gr_gid) != 0)
			fatal("chown %s to group %s: %s", path, group, strerror(errno));
	}
	if (chmod(path, (mode_t)mode) != 0)
		fatal("chmod %s: %s", path, strerror(errno));
	return fd;
}

static int open_tcp(const char *hostport)
{
	char host[256];
	const char *colon = strrchr(hostport, ':');
	struct addrinfo hints, *res = NULL;
	snprintf(host, sizeof(host), "%.*s", (int)(colon - hostport), hostport);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
	int rc = getaddrinfo(host, colon + 1, &hints, &res);
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

static void open_listen(void)
{
	if (strncmp(cfg->listen, "unix:", 5) == 0)
		listen_fd = open_unix(cfg->listen + 5, cfg->socket_mode, cfg->socket_group);
	else
		listen_fd = open_tcp(cfg->listen);
	if (listen(listen_fd, 1024) != 0)
		fatal("listen: %s", strerror(errno));
	/* Non-blocking, so a worker that lost the race for a connection gets EAGAIN
	 * instead of sleeping in accept() where no signal handling can reach it. */
	fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK);
	log_info("listening on %s", cfg->listen);
}

static void close_listen(void)
{
	if (listen_fd < 0)
		return;
	close(listen_fd);
	listen_fd = -1;
	if (strncmp(cfg->listen, "unix:", 5) == 0)
		unlink(cfg->listen + 5);
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
	int slot = scoreboard_claim(0);
	if (ci == MAX_CHILDREN || slot < 0) {
		log_error("no free worker slot");
		return false;
	}
	pid_t pid = fork();
	if (pid < 0) {
		log_error("fork: %s", strerror(errno));
		scoreboard_release(slot);
		return false;
	}
	if (pid == 0)
		worker_main(cfg, listen_fd, slot);
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

static bool conninfo_ok(const char *ci, const char *what)
{
	char *err = NULL;
	PQconninfoOption *o = PQconninfoParse(ci, &err);
	if (!o) {
		log_error("%s: %s", what, err ? err : "invalid");
		PQfreemem(err);
		return false;
	}
	PQconninfoFree(o);
	return true;
}

static void reload(void)
{
	struct conf next;
	char err[600];
	notify("RELOADING=1");
	if (!conf_load(cfg->path, &next, err, sizeof(err))) {
		log_error("reload refused, keeping the running config: %s", err);
		notify("READY=1");
		return;
	}
	const char *blocker = conf_reload_blocker(cfg, &next);
	if (blocker || !conninfo_ok(next.conninfo, "conninfo")) {
		if (blocker)
			log_error("reload refused, keeping the running config: %s cannot change without a restart", blocker);
		conf_free(&next);
		notify("READY=1");
		return;
	}
	conf_free(cfg);
	*cfg = next; /* ownership transferred */
	log_set_level(cfg->log_level);
	gen++;
	scoreboard()->generation = gen;
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
	if (!conninfo_ok(cfg->conninfo, "conninfo"))
		return 1;
	if (cfg->workers > SB_MAX_WORKERS - 1)
		fatal("workers: at most %d", SB_MAX_WORKERS - 1);
	if (!scoreboard_create())
		fatal("cannot map the scoreboard: %s", strerror(errno));
	scoreboard()->master_started_us = now_wall_us();
	scoreboard()->master_pid = getpid();
	scoreboard()->generation = gen;

	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGCHLD);
	sigprocmask(SIG_BLOCK, &block, NULL);
	sigemptyset(&empty);
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);

	open_listen();
	log_info("scanqa %s starting %d workers", PACKAGE_VERSION, cfg->workers);
	for (int i = 0; i < cfg->workers; i++)
		spawn_worker();

	bool ready_sent = false, stopping = false;
	int64_t deadline = 0;
	for (;;) {
		struct timespec tick = { 0, 50 * 1000000L };
		ppoll(NULL, 0, &tick, &empty); /* signals get in only here */

		if (got_chld) {
			got_chld = 0;
			reap(stopping);
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
	conf_free(cfg);
	return 0;
}
