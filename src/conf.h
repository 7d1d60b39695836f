/* conf.h: the daemon's settings, read from a "key = value" file. */
#ifndef SCANQA_CONF_H
#define SCANQA_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "log.h"

/* The largest "workers" accepted by check-config, start-up and reload alike; the
 * scoreboard has one slot more, for the spare worker of a rolling reload. */
#define CONF_WORKERS_MAX 256

struct conf {
	char *conninfo;          /* libpq conninfo of the daemon's (non-owner) role */
	char *admin_conninfo;    /* libpq conninfo of the schema owner: migrate, issue-token */
	char *listen;            /* "unix:/path", or a loopback "127.x.y.z:port" / "[::1]:port" */
	int listen_backlog;      /* listen(2) backlog of the socket */
	char *status_listen;     /* the master's own status socket, same forms; "" = none */
	unsigned socket_mode;    /* unix socket permission bits */
	char *socket_group;      /* unix socket group, or NULL/"" to leave it */
	int workers;
	int max_requests;        /* 0 = never recycle */
	size_t body_limit;       /* bytes */
	int statement_timeout_ms;
	int lock_timeout_ms;
	int connect_timeout_s;
	char *pool_mode;         /* "session" or "transaction": what sits between us and PostgreSQL */
	char *prepared_statements; /* "auto", "on" or "off" as written; see prepared below */
	bool transaction_pooling; /* pool_mode = transaction: no session state survives a statement */
	bool prepared;           /* named prepared statements (auto: on unless transaction_pooling) */
	int shutdown_timeout_s;  /* graceful deadline before SIGKILL */
	int slow_request_ms;     /* 0 = off */
	enum log_level log_level;
	char *migrations_dir;
	char *path;              /* the file this was read from */
};

/* Reads and validates a config file: every check start-up makes (value ranges,
 * listen addresses, socket_group, conninfo syntax), so check-config, serve and a
 * reload accept exactly the same files. On error returns false and writes
 * "FILE:LINE: message" (or "FILE: message") into err. */
bool conf_load(const char *path, struct conf *out, char *err, size_t errlen);
void conf_free(struct conf *c);
/* Settings that a SIGHUP cannot change (the sockets); returns the first such key
 * whose value differs, or NULL. */
const char *conf_reload_blocker(const struct conf *old, const struct conf *new_conf);
/* Splits a TCP listen address "HOST:PORT" or "[V6]:PORT" into host (brackets
 * removed) and port. Returns false when it has neither form. */
bool conf_tcp_address(const char *listen, char *host, size_t hostlen, char *port, size_t portlen);
/* Prints every setting as the daemon sees it (for check-config). */
void conf_dump(const struct conf *c);

#endif
