/* db.c: this worker's PostgreSQL connection. Connects without blocking after fork
 * (PQconnectStartParams/PQconnectPoll), sends every statement asynchronously and
 * waits for its answer with a deadline, prepares each statement once per connection
 * unless a transaction-mode pooler sits in between, and tells "the database refused"
 * (an error result) apart from "the database is gone or is the wrong server" (NULL:
 * answer 503, reconnect).
 *
 * Why a deadline of our own: with the server on another host and the network gone,
 * libpq waits for TCP, about 15 minutes of retransmissions by default, and the
 * server's statement_timeout cannot reach us. tcp_user_timeout and keepalives
 * (derived below) make the kernel give up; the deadline makes the request give up
 * even when the kernel cannot tell (a server that accepts TCP but does not answer). */
#include "db.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "request.h"
#include "scoreboard.h"

/* Only failed connect attempts are spaced this far apart. */
#define RECONNECT_INTERVAL_US 1000000
/* The longest a request waits for a connect attempt in progress; the attempt itself
 * goes on (later requests, the worker's idle loop) up to connect_timeout per host. */
#define REQUEST_CONNECT_WAIT_US 500000
/* How often the idle loop looks at an attempt in progress. */
#define IDLE_CONNECT_POLL_MS 50
/* How much longer than statement_timeout the daemon waits for an answer: the server
 * cancels a statement at statement_timeout and the error needs a moment to arrive. */
#define ANSWER_GRACE_MS 2000
/* statement_timeout = 0 (off) still needs a bound for the derived TCP settings. */
#define UNBOUNDED_STATEMENT_MS 30000

enum loss {
	LOSS_NONE,     /* no connection was lost by the last statement */
	LOSS_LOST,     /* the connection died (e.g. while idle): a read may retry */
	LOSS_WRONG,    /* a read-only server: reconnect; a read may retry */
	LOSS_DEADLINE, /* no answer in time: retrying would only double the wait */
};

static const struct conf *cfg;
static PGconn *conn;             /* the usable connection, or NULL */
static PGconn *pending;          /* a connect attempt in progress, or NULL */
static bool pending_setup;       /* the attempt is connected and runs its setup query */
static PostgresPollingStatusType pending_poll;
static int64_t pending_deadline_us;
static unsigned generation;      /* bumped on every successful connect */
static int64_t last_failure_us;  /* monotonic time of the last failed attempt, 0 after a success */
static bool config_error;        /* the last connect failed for a reason retrying cannot fix */
static enum loss last_loss;

/* ---------------------------------------------------------------- settings */

static int statement_bound_ms(void)
{
	return cfg->statement_timeout_ms > 0 ? cfg->statement_timeout_ms : UNBOUNDED_STATEMENT_MS;
}

int db_answer_wait_ms(void)
{
	return statement_bound_ms() + ANSWER_GRACE_MS;
}

void db_init(const struct conf *c)
{
	cfg = c;
}

bool db_config_error(void) { return config_error; }

/* The libpq keywords the daemon sets itself, each only when conninfo leaves it out,
 * so that an operator's value always wins. Fills keys/vals (NULL-terminated, the
 * first pair being conninfo itself, expanded by libpq) and returns how many hosts
 * conninfo names (for the attempt's deadline). buf holds the numbers' text. */
#define N_DERIVED 7
static int connect_params(const char **keys, const char **vals, char buf[N_DERIVED][72])
{
	PQconninfoOption *opts = PQconninfoParse(cfg->conninfo, NULL); /* conf_load checked it */
	int n = 0, hosts = 1, bound_s = (statement_bound_ms() + 999) / 1000;
	const struct { const char *key; int value; const char *text; } derived[N_DERIVED] = {
		{ "connect_timeout", cfg->connect_timeout_s, NULL },
		{ "tcp_user_timeout", statement_bound_ms() + ANSWER_GRACE_MS, NULL },
		{ "keepalives", 1, NULL },
		{ "keepalives_idle", bound_s, NULL },
		{ "keepalives_interval", 1, NULL },
		{ "keepalives_count", 3, NULL },
		{ "application_name", 0, "" },
	};

	keys[n] = "dbname";
	vals[n++] = cfg->conninfo;
	for (int i = 0; i < N_DERIVED; i++) {
		bool set = false;
		for (PQconninfoOption *o = opts; o && o->keyword; o++)
			if (strcmp(o->keyword, derived[i].key) == 0)
				set = o->val != NULL;
		if (set)
			continue;
		if (derived[i].text) {
			/* pg_stat_activity then tells which worker a session belongs to (the
			 * status page and the log's [pid]). Behind a transaction pooler each
			 * distinct name costs a SET per hand-over (pgbouncer 1.18 varcache),
			 * so there it names the host only. */
			char host[48] = "";
			gethostname(host, sizeof host - 1);
			if (cfg->transaction_pooling)
				snprintf(buf[i], sizeof buf[i], "scanqa@%s", host);
			else
				snprintf(buf[i], sizeof buf[i], "scanqa worker %d", (int)getpid());
		} else {
			snprintf(buf[i], sizeof buf[i], "%d", derived[i].value);
		}
		keys[n] = derived[i].key;
		vals[n++] = buf[i];
	}
	for (PQconninfoOption *o = opts; o && o->keyword; o++)
		if ((strcmp(o->keyword, "host") == 0 || strcmp(o->keyword, "hostaddr") == 0) && o->val) {
			int h = 1;
			for (const char *p = o->val; *p; p++)
				h += *p == ',';
			if (h > hosts)
				hosts = h;
		}
	PQconninfoFree(opts);
	keys[n] = vals[n] = NULL;
	return hosts;
}

/* ---------------------------------------------------------------- waiting */

/* Waits until c's socket is ready for events or until deadline_us (monotonic); a
 * deadline already past still looks once, without waiting (the idle loop's way to
 * advance a connect). Returns the poll revents (> 0), 0 at the deadline, -1 on a
 * bad socket. */
static int wait_socket(PGconn *c, short events, int64_t deadline_us)
{
	struct pollfd p = { .fd = PQsocket(c), .events = events };
	if (p.fd < 0)
		return -1;
	for (;;) {
		int64_t left_us = deadline_us - now_mono_us();
		int n = poll(&p, 1, left_us <= 0 ? 0 : (int)((left_us + 999) / 1000));
		if (n > 0)
			return p.revents;
		if (n == 0 && now_mono_us() >= deadline_us)
			return 0;
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

/* Sends what libpq holds and collects the results of one query, waiting at most
 * until deadline_us. Returns the first error result, else the last result; NULL
 * when the connection failed or (*timed_out set) the deadline passed. */
static PGresult *await(PGconn *c, int64_t deadline_us, bool *timed_out)
{
	PGresult *keep = NULL;
	int f;

	*timed_out = false;
	while ((f = PQflush(c)) == 1) {
		int ev = wait_socket(c, POLLIN | POLLOUT, deadline_us);
		if (ev <= 0) {
			*timed_out = ev == 0;
			return NULL;
		}
		if ((ev & POLLIN) && !PQconsumeInput(c))
			return NULL;
	}
	if (f < 0)
		return NULL;
	for (;;) {
		while (PQisBusy(c)) {
			int ev = wait_socket(c, POLLIN, deadline_us);
			if (ev <= 0) {
				*timed_out = ev == 0;
				PQclear(keep);
				return NULL;
			}
			if (!PQconsumeInput(c) && PQstatus(c) == CONNECTION_BAD) {
				PQclear(keep);
				return NULL;
			}
		}
		PGresult *r = PQgetResult(c);
		if (!r)
			return keep;
		if (keep && PQresultStatus(keep) == PGRES_FATAL_ERROR) {
			PQclear(r);
		} else {
			PQclear(keep);
			keep = r;
		}
	}
}

/* ---------------------------------------------------------------- connecting */

/* The server answered and refused: a missing role or database, or failed
 * authentication. Refused-while-starting-up or too-many-clients are transient. */
static bool is_permanent_refusal(const char *msg)
{
	return strstr(msg, "FATAL") &&
	       (strstr(msg, "does not exist") || strstr(msg, "authentication failed") ||
		strstr(msg, "no pg_hba.conf entry") || strstr(msg, "not permitted to log in"));
}

/* Closes a connection without waiting: a dead network must not hold PQfinish's
 * Terminate message either. */
static void finish(PGconn *c)
{
	if (!c)
		return;
	PQsetnonblocking(c, 1);
	PQfinish(c);
}

void db_close(void)
{
	finish(conn);
	conn = NULL;
	finish(pending);
	pending = NULL;
}

static void attempt_failed(const char *why)
{
	char one_line[512];
	snprintf(one_line, sizeof one_line, "%s", why);
	for (char *p = one_line; *p; p++)
		if (*p == '\n')
			*p = ' ';
	config_error = is_permanent_refusal(one_line);
	log_warn("database connection failed: %s", one_line);
	finish(pending);
	pending = NULL;
	last_failure_us = now_mono_us();
}

static void start_attempt(void)
{
	const char *keys[N_DERIVED + 2], *vals[N_DERIVED + 2];
	char buf[N_DERIVED][72];
	int hosts = connect_params(keys, vals, buf);

	pending = PQconnectStartParams(keys, vals, 1);
	pending_setup = false;
	pending_poll = PGRES_POLLING_WRITING;
	pending_deadline_us = now_mono_us() + (int64_t)hosts * cfg->connect_timeout_s * 1000000;
	if (!pending || PQstatus(pending) == CONNECTION_BAD)
		attempt_failed(pending ? PQerrorMessage(pending) : "out of memory");
}

/* The setup query: in session mode the timeouts become session settings, so every
 * statement is bounded. In every mode the effective values are read back (a pooler,
 * a role setting or ALTER SYSTEM may say otherwise), along with whether the server
 * is in recovery (a hot standby cannot take a single write). */
static bool send_setup(void)
{
	char sql[512];
	int n = 0;
	if (!cfg->transaction_pooling)
		n = snprintf(sql, sizeof sql,
			     "SET statement_timeout = %d; SET lock_timeout = %d; "
			     "SET idle_in_transaction_session_timeout = %d; ",
			     cfg->statement_timeout_ms, cfg->lock_timeout_ms, 2 * statement_bound_ms());
	snprintf(sql + n, sizeof sql - (size_t)n,
		 "SELECT (SELECT setting FROM pg_settings WHERE name = 'statement_timeout'), "
		 "(SELECT setting FROM pg_settings WHERE name = 'lock_timeout'), pg_is_in_recovery()");
	return PQsetnonblocking(pending, 1) == 0 && PQsendQuery(pending, sql);
}

static void warn_timeout(const char *name, const char *have, int want)
{
	if (atoi(have) == want && want != 0)
		return;
	log_warn("database %s is %s ms, the config says %d ms: %s", name, have, want,
		 cfg->transaction_pooling
		 ? "behind a transaction pooler the daemon sets no session settings; run \"scanqa migrate\", "
		   "which makes them role settings (ALTER ROLE ... IN DATABASE ... SET), then RECONNECT the pool"
		 : "a statement without a bound can hold a worker");
}

/* Looks at the setup query's answer. Returns true when the connection is usable. */
static bool setup_done(PGresult *r)
{
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 || PQnfields(r) != 3) {
		char why[400];
		snprintf(why, sizeof why, "session setup failed: %s",
			 r ? PQresultErrorMessage(r) : PQerrorMessage(pending));
		PQclear(r);
		attempt_failed(why);
		return false;
	}
	bool in_recovery = strcmp(PQgetvalue(r, 0, 2), "t") == 0;
	warn_timeout("statement_timeout", PQgetvalue(r, 0, 0), cfg->statement_timeout_ms);
	warn_timeout("lock_timeout", PQgetvalue(r, 0, 1), cfg->lock_timeout_ms);
	PQclear(r);
	if (in_recovery) {
		attempt_failed("read-only server: it is in recovery (a hot standby); "
			       "conninfo must lead to the primary (target_session_attrs=read-write, or HAProxy's /primary check)");
		return false;
	}
	conn = pending; /* ownership transferred */
	pending = NULL;
	generation++;
	last_failure_us = 0;
	config_error = false;
	PQconninfoOption *o = PQconninfo(conn);
	const char *tut = "", *kai = "";
	for (PQconninfoOption *p = o; p && p->keyword; p++) {
		if (strcmp(p->keyword, "tcp_user_timeout") == 0 && p->val)
			tut = p->val;
		if (strcmp(p->keyword, "keepalives_idle") == 0 && p->val)
			kai = p->val;
	}
	const char *host = PQhost(conn);
	bool local = host && host[0] == '/';
	log_info("connected to the database (%s %s%s%s, %s; tcp_user_timeout=%s ms keepalives_idle=%s s)",
		 local ? "socket" : "host", host ? host : "?", local ? "" : " port ", local ? "" : PQport(conn),
		 cfg->transaction_pooling ? "pool_mode=transaction, unnamed statements"
		 : cfg->prepared ? "prepared statements" : "unnamed statements", tut, kai);
	PQconninfoFree(o);
	return true;
}

/* Advances the attempt in progress, waiting at most until until_us. Returns true
 * once connected; false while still in progress or after it failed (pending NULL). */
static bool drive(int64_t until_us)
{
	while (pending) {
		bool timed_out;
		if (pending_setup) {
			int64_t end = until_us < pending_deadline_us ? until_us : pending_deadline_us;
			PGresult *r = await(pending, end, &timed_out);
			if (!r && timed_out && now_mono_us() < pending_deadline_us)
				return false; /* later */
			if (!r && timed_out) {
				attempt_failed("the session setup query got no answer in time");
				return false;
			}
			return setup_done(r);
		}
		if (pending_poll == PGRES_POLLING_OK) {
			pending_setup = true;
			pending_deadline_us = now_mono_us() + (int64_t)db_answer_wait_ms() * 1000;
			if (!send_setup()) {
				attempt_failed(PQerrorMessage(pending));
				return false;
			}
			continue;
		}
		if (pending_poll == PGRES_POLLING_FAILED) {
			attempt_failed(PQerrorMessage(pending));
			return false;
		}
		int64_t end = until_us < pending_deadline_us ? until_us : pending_deadline_us;
		int ev = wait_socket(pending, pending_poll == PGRES_POLLING_READING ? POLLIN : POLLOUT, end);
		if (ev == 0) {
			if (now_mono_us() < pending_deadline_us)
				return false; /* later */
			char why[128];
			snprintf(why, sizeof why, "no connection within connect_timeout (%d s per host)",
				 cfg->connect_timeout_s);
			attempt_failed(why);
			return false;
		}
		pending_poll = PQconnectPoll(pending);
	}
	return conn != NULL;
}

/* Starts an attempt unless one runs or the last failure is under a second old. */
static bool may_start(void)
{
	if (pending)
		return true;
	/* While the database is down every request would otherwise pay for an attempt;
	 * one a second keeps the 503s fast. */
	if (last_failure_us && now_mono_us() - last_failure_us < RECONNECT_INTERVAL_US)
		return false;
	start_attempt();
	return pending != NULL;
}

bool db_ensure(void)
{
	if (conn && PQstatus(conn) == CONNECTION_OK)
		return true;
	if (conn) {
		finish(conn);
		conn = NULL;
	}
	return may_start() && drive(now_mono_us() + REQUEST_CONNECT_WAIT_US);
}

bool db_connect_first(void)
{
	return may_start() && drive(pending_deadline_us + (int64_t)db_answer_wait_ms() * 1000);
}

int db_idle(void)
{
	if (conn && PQstatus(conn) == CONNECTION_OK)
		return -1;
	if (conn) {
		finish(conn);
		conn = NULL;
	}
	if (!pending && last_failure_us) {
		int64_t left_us = last_failure_us + RECONNECT_INTERVAL_US - now_mono_us();
		if (left_us > 0)
			return (int)((left_us + 999) / 1000);
	}
	if (may_start() && !drive(now_mono_us()) && pending)
		return IDLE_CONNECT_POLL_MS;
	return conn ? -1 : RECONNECT_INTERVAL_US / 1000;
}

/* ---------------------------------------------------------------- statements */

/* SQLSTATEs that mean the session is gone even though a result came back. */
static bool is_connection_error(const char *state)
{
	return strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 ||
	       strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0;
}

static void drop(enum loss why)
{
	last_loss = why;
	finish(conn);
	conn = NULL;
}

/* Turns what came back into db_exec's answer, dropping the connection when it is
 * gone, silent, or the wrong server. */
static PGresult *check(PGresult *r, bool timed_out, const char *name)
{
	const char *state = db_sqlstate(r);
	if (!r && timed_out) {
		log_warn("database did not answer within %d ms (statement %s): connection dropped; "
			 "the network or the server is down", db_answer_wait_ms(), name);
		drop(LOSS_DEADLINE);
		return NULL;
	}
	if (!r || PQstatus(conn) != CONNECTION_OK ||
	    (PQresultStatus(r) == PGRES_FATAL_ERROR && is_connection_error(state))) {
		log_warn("database connection lost: %s", r ? PQresultErrorMessage(r) : PQerrorMessage(conn));
		PQclear(r);
		drop(LOSS_LOST);
		return NULL;
	}
	if (strcmp(state, "25006") == 0) {
		/* read_only_sql_transaction: a standby, or an old primary that came back
		 * as one. Every statement may write (the credential's last_used_at aside,
		 * the endpoints do), so this connection is of no use. */
		log_warn("read-only server (SQLSTATE 25006, %s): connection dropped to reconnect to the primary",
			 PQresultErrorMessage(r));
		PQclear(r);
		drop(LOSS_WRONG);
		return NULL;
	}
	if (strcmp(state, "26000") == 0 || strcmp(state, "42P05") == 0) {
		log_error("prepared statement %s: %s: a pooler in transaction mode (pgbouncer before 1.21) "
			  "sits between scanqa and PostgreSQL; set pool_mode = transaction in %s (or "
			  "prepared_statements = off) and reload", name, PQresultErrorMessage(r), cfg->path);
		PQclear(r);
		drop(LOSS_LOST);
		return NULL;
	}
	const char *hs = PQparameterStatus(conn, "in_hot_standby");
	if (hs && strcmp(hs, "on") == 0) {
		log_warn("read-only server (in_hot_standby = on): connection dropped to reconnect to the primary");
		drop(LOSS_WRONG);
	}
	return r;
}

PGresult *db_exec(struct db_stmt *st, const char *const *params)
{
	bool timed_out = false;

	last_loss = LOSS_NONE;
	if (!db_ensure())
		return NULL;
	int64_t deadline_us = now_mono_us() + (int64_t)db_answer_wait_ms() * 1000;
	if (cfg->prepared && st->prepared_gen != generation) {
		if (!PQsendPrepare(conn, st->name, st->sql, st->nparams, NULL))
			return check(NULL, false, st->name);
		PGresult *r = check(await(conn, deadline_us, &timed_out), timed_out, st->name);
		if (!r)
			return NULL;
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			log_error("cannot prepare %s: %s", st->name, PQresultErrorMessage(r));
			return r;
		}
		PQclear(r);
		st->prepared_gen = generation;
	}
	scoreboard_sql_begin(st->name);
	int sent = cfg->prepared
		? PQsendQueryPrepared(conn, st->name, st->nparams, params, NULL, NULL, 0)
		: PQsendQueryParams(conn, st->sql, st->nparams, NULL, params, NULL, NULL, 0);
	PGresult *r = sent ? await(conn, deadline_us, &timed_out) : NULL;
	scoreboard_sql_end();
	return check(r, sent && timed_out, st->name);
}

PGresult *db_exec_read(struct db_stmt *st, const char *const *params)
{
	PGresult *r = db_exec(st, params);
	if (r || (last_loss != LOSS_LOST && last_loss != LOSS_WRONG))
		return r;
	/* The connection died while idle (e.g. PostgreSQL restarted) or led to a
	 * read-only server: a read is safe to send again, once, on a new connection. */
	return db_exec(st, params);
}

int db_idle_socket(unsigned *gen)
{
	*gen = generation;
	return conn && PQstatus(conn) == CONNECTION_OK ? PQsocket(conn) : -1;
}

void db_idle_input(void)
{
	if (!conn)
		return;
	if (!PQconsumeInput(conn) || PQstatus(conn) != CONNECTION_OK) {
		char why[512];
		snprintf(why, sizeof why, "%s", PQerrorMessage(conn));
		for (char *p = why; *p; p++)
			if (*p == '\n')
				*p = ' ';
		log_warn("database connection closed while idle: %s; reconnecting", why);
		drop(LOSS_LOST);
		return;
	}
	/* Anything else that arrives unasked (a notice, a ParameterStatus) stays in
	 * libpq's buffer; in_hot_standby turning on means the wrong server. */
	const char *hs = PQparameterStatus(conn, "in_hot_standby");
	if (hs && strcmp(hs, "on") == 0) {
		log_warn("read-only server (in_hot_standby = on) while idle: connection dropped to reconnect to the primary");
		drop(LOSS_WRONG);
	}
}

bool db_drop_read_only(void)
{
	if (!conn)
		return false;
	log_warn("read-only server (pg_is_in_recovery): connection dropped to reconnect to the primary");
	drop(LOSS_WRONG);
	return true;
}

const char *db_sqlstate(const PGresult *r)
{
	const char *s = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	return s ? s : "";
}
