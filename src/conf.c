/* conf.c: the config file. One table row per setting (name, type, target, default,
 * limits, reloadable), as pgbouncer does it; "key = value" lines with # comments. */
#include "conf.h"

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <libpq-fe.h>

enum conf_type { CT_STRING, CT_INT, CT_SIZE, CT_MODE, CT_LOGLEVEL };

struct conf_item {
	const char *name;
	enum conf_type type;
	size_t offset;
	const char *def;
	long min, max;   /* for CT_INT and CT_SIZE */
	bool reloadable; /* may a SIGHUP change it */
};

#define OFF(f) offsetof(struct conf, f)

static const struct conf_item items[] = {
	{ "conninfo", CT_STRING, OFF(conninfo), "dbname=scanqa user=scanqa_app", 0, 0, true },
	{ "admin_conninfo", CT_STRING, OFF(admin_conninfo), "dbname=scanqa", 0, 0, true },
	{ "listen", CT_STRING, OFF(listen), "unix:/run/scanqa/scanqa.sock", 0, 0, false },
	{ "listen_backlog", CT_INT, OFF(listen_backlog), "1024", 1, 65535, false },
	{ "status_listen", CT_STRING, OFF(status_listen), "", 0, 0, false },
	{ "socket_mode", CT_MODE, OFF(socket_mode), "0660", 0, 0, false },
	{ "socket_group", CT_STRING, OFF(socket_group), "", 0, 0, false },
	{ "workers", CT_INT, OFF(workers), "4", 1, CONF_WORKERS_MAX, true },
	{ "max_requests", CT_INT, OFF(max_requests), "10000", 0, INT_MAX, true },
	{ "body_limit", CT_SIZE, OFF(body_limit), "1048576", 1024, 64L * 1024 * 1024, true },
	{ "statement_timeout", CT_INT, OFF(statement_timeout_ms), "5000", 0, 3600000, true },
	{ "lock_timeout", CT_INT, OFF(lock_timeout_ms), "2000", 0, 3600000, true },
	{ "connect_timeout", CT_INT, OFF(connect_timeout_s), "2", 1, 60, true },
	{ "pool_mode", CT_STRING, OFF(pool_mode), "session", 0, 0, true },
	{ "prepared_statements", CT_STRING, OFF(prepared_statements), "auto", 0, 0, true },
	{ "shutdown_timeout", CT_INT, OFF(shutdown_timeout_s), "30", 1, 3600, true },
	{ "slow_request_ms", CT_INT, OFF(slow_request_ms), "500", 0, 3600000, true },
	{ "log_level", CT_LOGLEVEL, OFF(log_level), "info", 0, 0, true },
	{ "migrations_dir", CT_STRING, OFF(migrations_dir), PKGDATADIR "/sql", 0, 0, true },
};
#define N_ITEMS (sizeof(items) / sizeof(items[0]))

static void seterr(char *err, size_t errlen, const char *path, int line, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static void seterr(char *err, size_t errlen, const char *path, int line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		snprintf(err, errlen, "%s:%d: %s", path, line, msg);
	else
		snprintf(err, errlen, "%s: %s", path, msg);
}

/* Stores one value. Returns NULL on success or an error message (static, or in the
 * caller's msg buffer). */
static const char *set_value(struct conf *c, const struct conf_item *it, const char *val, char *msg, size_t msglen)
{
	char *target = (char *)c + it->offset;
	char *end;
	long n;

	switch (it->type) {
	case CT_STRING: {
		char *copy = strdup(val);
		if (!copy)
			return "out of memory";
		free(*(char **)target);
		*(char **)target = copy; /* ownership transferred */
		return NULL;
	}
	case CT_INT:
	case CT_SIZE:
		errno = 0;
		n = strtol(val, &end, 10);
		if (errno || end == val || *end != '\0')
			return "expected a whole number";
		if (n < it->min || n > it->max) {
			snprintf(msg, msglen, "value out of range (%ld..%ld)", it->min, it->max);
			return msg;
		}
		if (it->type == CT_INT)
			*(int *)target = (int)n;
		else
			*(size_t *)target = (size_t)n;
		return NULL;
	case CT_MODE:
		errno = 0;
		n = strtol(val, &end, 8);
		if (errno || end == val || *end != '\0' || n < 0 || n > 0777)
			return "expected an octal file mode such as 0660";
		*(unsigned *)target = (unsigned)n;
		return NULL;
	case CT_LOGLEVEL:
		if (!log_parse_level(val, (enum log_level *)target))
			return "expected error, warn, info or debug";
		return NULL;
	}
	return "unknown setting type";
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

bool conf_tcp_address(const char *l, char *host, size_t hostlen, char *port, size_t portlen)
{
	const char *h = l, *colon;
	size_t hl;
	if (l[0] == '[') {
		const char *close = strchr(l, ']');
		if (!close || close[1] != ':')
			return false;
		h = l + 1;
		hl = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(l, ':');
		if (!colon)
			return false;
		hl = (size_t)(colon - l);
	}
	char *end;
	long p = strtol(colon + 1, &end, 10);
	if (hl == 0 || hl >= hostlen || *end != '\0' || colon[1] == '\0' || p <= 0 || p > 65535 ||
	    strlen(colon + 1) >= portlen)
		return false;
	memcpy(host, h, hl);
	host[hl] = '\0';
	snprintf(port, portlen, "%s", colon + 1);
	return true;
}

/* NULL when l is an address the daemon may listen on, else why not. TCP is refused
 * beyond loopback: FastCGI has no authentication, libfcgi's address allow-list
 * (FCGI_WEB_SERVER_ADDRS) ignores IPv6, and CVE-2025-23016 is only partly fixed in
 * Debian 12's libfcgi, so only processes on this host may reach the socket. */
static const char *listen_error(const char *l)
{
	char host[64], port[8];
	struct in_addr a4;
	struct in6_addr a6;
	if (strncmp(l, "unix:", 5) == 0)
		return l[5] == '/' && strlen(l + 5) < 100 ? NULL
			: "expected unix:/absolute/path (under 100 bytes)";
	if (!conf_tcp_address(l, host, sizeof(host), port, sizeof(port)))
		return "expected unix:/absolute/path, 127.0.0.1:PORT or [::1]:PORT";
	if (l[0] != '[' && inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127 ? NULL
			: "a TCP address must be loopback (127.0.0.0/8 or [::1]): FastCGI has no authentication";
	if (l[0] == '[' && inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6) ? NULL
			: "a TCP address must be loopback (127.0.0.0/8 or [::1]): FastCGI has no authentication";
	return "expected a numeric address: unix:/absolute/path, 127.0.0.1:PORT or [::1]:PORT";
}

static const char *conninfo_error(const char *ci, char *msg, size_t msglen)
{
	char *perr = NULL;
	PQconninfoOption *o = PQconninfoParse(ci, &perr);
	if (o) {
		PQconninfoFree(o);
		return NULL;
	}
	snprintf(msg, msglen, "%s", perr ? perr : "invalid connection string");
	PQfreemem(perr);
	size_t n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	return msg;
}

/* Checks of one setting beyond its type and range. NULL when fine. */
static const char *check_item(const struct conf *c, const char *key, char *msg, size_t msglen)
{
	if (strcmp(key, "listen") == 0)
		return listen_error(c->listen);
	if (strcmp(key, "status_listen") == 0 && c->status_listen[0])
		return listen_error(c->status_listen);
	if (strcmp(key, "socket_group") == 0 && c->socket_group[0] && !getgrnam(c->socket_group)) {
		snprintf(msg, msglen, "no such group \"%s\"", c->socket_group);
		return msg;
	}
	if (strcmp(key, "conninfo") == 0)
		return conninfo_error(c->conninfo, msg, msglen);
	if (strcmp(key, "admin_conninfo") == 0)
		return conninfo_error(c->admin_conninfo, msg, msglen);
	if (strcmp(key, "pool_mode") == 0 && strcmp(c->pool_mode, "session") != 0 &&
	    strcmp(c->pool_mode, "transaction") != 0)
		return "expected session or transaction (pgbouncer's pool_mode of the pool in conninfo)";
	if (strcmp(key, "prepared_statements") == 0 && strcmp(c->prepared_statements, "auto") != 0 &&
	    strcmp(c->prepared_statements, "on") != 0 && strcmp(c->prepared_statements, "off") != 0)
		return "expected auto, on or off";
	return NULL;
}

bool conf_load(const char *path, struct conf *out, char *err, size_t errlen)
{
	struct conf c;
	bool seen[N_ITEMS] = { false };
	char buf[4096];
	int lineno = 0;
	FILE *f = NULL;

	char msgbuf[300];

	memset(&c, 0, sizeof(c));
	for (size_t i = 0; i < N_ITEMS; i++) {
		if (set_value(&c, &items[i], items[i].def, msgbuf, sizeof(msgbuf)) != NULL) {
			seterr(err, errlen, path, 0, "bad built-in default for %s", items[i].name);
			goto fail;
		}
	}
	c.path = strdup(path);

	f = fopen(path, "r");
	if (!f) {
		seterr(err, errlen, path, 0, "cannot open: %s", strerror(errno));
		goto fail;
	}
	while (fgets(buf, sizeof(buf), f)) {
		lineno++;
		size_t len = strlen(buf);
		if (len == sizeof(buf) - 1 && buf[len - 1] != '\n') {
			seterr(err, errlen, path, lineno, "line too long");
			goto fail;
		}
		char *line = trim(buf);
		if (*line == '\0' || *line == '#')
			continue;
		char *eq = strchr(line, '=');
		if (!eq) {
			seterr(err, errlen, path, lineno, "expected \"key = value\"");
			goto fail;
		}
		*eq = '\0';
		char *key = trim(line);
		char *val = trim(eq + 1);
		size_t vlen = strlen(val);
		if (vlen >= 2 && val[0] == '"' && val[vlen - 1] == '"') {
			val[vlen - 1] = '\0';
			val++;
		} else {
			/* A bare value may carry a trailing comment. */
			char *hash = strstr(val, " #");
			if (hash) {
				*hash = '\0';
				val = trim(val);
			}
		}
		size_t i;
		for (i = 0; i < N_ITEMS; i++)
			if (strcmp(items[i].name, key) == 0)
				break;
		if (i == N_ITEMS) {
			seterr(err, errlen, path, lineno, "unknown setting \"%s\"", key);
			goto fail;
		}
		if (seen[i]) {
			seterr(err, errlen, path, lineno, "\"%s\" is set twice", key);
			goto fail;
		}
		seen[i] = true;
		const char *msg = set_value(&c, &items[i], val, msgbuf, sizeof(msgbuf));
		if (!msg)
			msg = check_item(&c, key, msgbuf, sizeof(msgbuf));
		if (msg) {
			seterr(err, errlen, path, lineno, "%s: %s", key, msg);
			goto fail;
		}
	}
	if (ferror(f)) {
		seterr(err, errlen, path, 0, "read error: %s", strerror(errno));
		goto fail;
	}
	/* Defaults pass the same checks as values from the file. */
	for (size_t i = 0; i < N_ITEMS; i++) {
		const char *msg = seen[i] ? NULL : check_item(&c, items[i].name, msgbuf, sizeof(msgbuf));
		if (msg) {
			seterr(err, errlen, path, 0, "%s (default): %s", items[i].name, msg);
			goto fail;
		}
	}
	if (c.status_listen[0] && strcmp(c.status_listen, c.listen) == 0) {
		seterr(err, errlen, path, 0, "status_listen: must differ from listen");
		goto fail;
	}
	/* pgbouncer 1.18 in transaction mode hands each statement to whichever server
	 * connection is free: a statement prepared on one is missing on the next
	 * (SQLSTATE 26000) or already there (42P05). */
	c.transaction_pooling = strcmp(c.pool_mode, "transaction") == 0;
	c.prepared = strcmp(c.prepared_statements, "on") == 0 ||
		     (strcmp(c.prepared_statements, "auto") == 0 && !c.transaction_pooling);
	if (c.transaction_pooling && strcmp(c.prepared_statements, "on") == 0) {
		seterr(err, errlen, path, 0,
		       "prepared_statements: on cannot work with pool_mode = transaction (pgbouncer 1.18 "
		       "does not keep named prepared statements); use auto or off");
		goto fail;
	}
	fclose(f);
	*out = c; /* ownership transferred */
	return true;
fail:
	if (f)
		fclose(f);
	conf_free(&c);
	return false;
}

void conf_free(struct conf *c)
{
	for (size_t i = 0; i < N_ITEMS; i++)
		if (items[i].type == CT_STRING) {
			char **p = (char **)((char *)c + items[i].offset);
			free(*p);
			*p = NULL;
		}
	free(c->path);
	c->path = NULL;
}

const char *conf_reload_blocker(const struct conf *old, const struct conf *new_conf)
{
	for (size_t i = 0; i < N_ITEMS; i++) {
		if (items[i].reloadable)
			continue;
		const char *a = (const char *)old + items[i].offset, *b = (const char *)new_conf + items[i].offset;
		bool same;
		switch (items[i].type) {
		case CT_STRING: same = strcmp(*(char *const *)a, *(char *const *)b) == 0; break;
		case CT_INT: same = *(const int *)a == *(const int *)b; break;
		case CT_SIZE: same = *(const size_t *)a == *(const size_t *)b; break;
		case CT_MODE: same = *(const unsigned *)a == *(const unsigned *)b; break;
		default: same = *(const enum log_level *)a == *(const enum log_level *)b; break;
		}
		if (!same)
			return items[i].name;
	}
	return NULL;
}

/* Prints one conninfo setting for check-config with every secret masked, so the
 * output can be pasted into a ticket. libpq itself parses it (PQconninfoParse), so
 * each form is caught: password=x, password='two words', a URI's user:secret@host,
 * ?password=x in a URI, and sslpassword (every option libpq marks "*", secret). The
 * options that are set are printed as keyword=value, in libpq's order, quoted as
 * conninfo quotes them. A conninfo libpq cannot parse is not printed at all: the
 * error could quote it. */
static void print_conninfo(const char *name, const char *v)
{
	char *err = NULL;
	PQconninfoOption *opts = PQconninfoParse(v, &err);

	PQfreemem(err);
	if (!opts) {
		printf("%s = (not a valid conninfo; not shown)\n", name);
		return;
	}
	printf("%s =", name);
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val)
			continue;
		printf(" %s=", o->keyword);
		if (o->dispchar && o->dispchar[0] == '*') {
			printf("***");
			continue;
		}
		bool quote = o->val[0] == '\0' || strpbrk(o->val, " \t\n\r\f\v'\\") != NULL;
		if (!quote) {
			printf("%s", o->val);
			continue;
		}
		putchar('\'');
		for (const char *c = o->val; *c; c++) {
			if (*c == '\'' || *c == '\\')
				putchar('\\');
			putchar(*c);
		}
		putchar('\'');
	}
	putchar('\n');
	PQconninfoFree(opts);
}

void conf_dump(const struct conf *c)
{
	static const char *const lvl[] = { "error", "warn", "info", "debug" };
	print_conninfo("conninfo", c->conninfo);
	print_conninfo("admin_conninfo", c->admin_conninfo);
	printf("listen = %s\n", c->listen);
	printf("listen_backlog = %d\n", c->listen_backlog);
	printf("status_listen = %s\n", c->status_listen);
	printf("socket_mode = %04o\n", c->socket_mode);
	printf("socket_group = %s\n", c->socket_group);
	printf("workers = %d\n", c->workers);
	printf("max_requests = %d\n", c->max_requests);
	printf("body_limit = %zu\n", c->body_limit);
	printf("statement_timeout = %d\n", c->statement_timeout_ms);
	printf("lock_timeout = %d\n", c->lock_timeout_ms);
	printf("connect_timeout = %d\n", c->connect_timeout_s);
	printf("pool_mode = %s\n", c->pool_mode);
	printf("prepared_statements = %s (%s)\n", c->prepared_statements,
	       c->prepared ? "named statements, prepared once per connection" : "unnamed statements");
	printf("shutdown_timeout = %d\n", c->shutdown_timeout_s);
	printf("slow_request_ms = %d\n", c->slow_request_ms);
	printf("log_level = %s\n", lvl[c->log_level]);
	printf("migrations_dir = %s\n", c->migrations_dir);
}
