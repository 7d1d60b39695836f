/* main.c: command line: serve, migrate, issue-token, status, reload, check-config. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <libpq-fe.h>

#include "conf.h"
#include "log.h"
#include "master.h"
#include "migrate.h"
#include "status_cmd.h"
#include "token.h"

#define DEFAULT_CONF SYSCONFDIR "/scanqa/scanqa.conf"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: scanqa [-c FILE] COMMAND [ARGS]\n"
		"\n"
		"commands:\n"
		"  serve          run the FastCGI worker pool in the foreground\n"
		"  migrate        apply pending database migrations (as admin_conninfo)\n"
		"  issue-token    create an API token for a user; prints it once\n"
		"                 (run 'scanqa issue-token --help' for its options)\n"
		"  status         the running daemon's workers, queue and rates, from its status socket\n"
		"                 (run 'scanqa status --help' for its options)\n"
		"  reload [PID]   SIGHUP to the master; fails, saying why, if it refuses the config\n"
		"  check-config   validate the config file and print the settings\n"
		"                 (--quiet: print only what is wrong)\n"
		"  version        print the version\n"
		"\n"
		"  -c FILE        config file (default %s)\n",
		DEFAULT_CONF);
}

static bool conninfo_valid(const char *name, const char *ci)
{
	char *err = NULL;
	PQconninfoOption *o = PQconninfoParse(ci, &err);
	if (!o) {
		fprintf(stderr, "%s: %s", name, err ? err : "invalid\n");
		PQfreemem(err);
		return false;
	}
	PQconninfoFree(o);
	return true;
}

int main(int argc, char **argv)
{
	const char *path = getenv("SCANQA_CONFIG");
	int i = 1;

	if (!path)
		path = DEFAULT_CONF;
	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
			path = argv[i + 1];
			i += 2;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("scanqa %s\n", PACKAGE_VERSION);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[i++];
	if (strcmp(cmd, "version") == 0) {
		printf("scanqa %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (strcmp(cmd, "help") == 0) {
		usage(stdout);
		return 0;
	}

	struct conf c;
	char err[600];
	if (!conf_load(path, &c, err, sizeof(err))) {
		fprintf(stderr, "scanqa: %s\n", err);
		return 1;
	}
	log_set_level(c.log_level);

	if (strcmp(cmd, "serve") == 0) {
		if (i != argc) {
			usage(stderr);
			return 2;
		}
		return master_run(&c);
	}
	int rc;
	if (strcmp(cmd, "migrate") == 0) {
		rc = migrate_run(&c);
	} else if (strcmp(cmd, "issue-token") == 0) {
		rc = token_issue_main(&c, argc - i, argv + i);
	} else if (strcmp(cmd, "status") == 0) {
		rc = status_cmd_main(&c, argc - i, argv + i);
	} else if (strcmp(cmd, "reload") == 0) {
		rc = reload_cmd_main(&c, argc - i, argv + i);
	} else if (strcmp(cmd, "check-config") == 0) {
		/* --quiet: only errors (ExecReload runs it before each reload). */
		bool quiet = i < argc && strcmp(argv[i], "--quiet") == 0;
		rc = conninfo_valid("conninfo", c.conninfo) && conninfo_valid("admin_conninfo", c.admin_conninfo) ? 0 : 1;
		if (rc == 0 && !quiet) {
			conf_dump(&c);
			fprintf(stderr, "%s: OK\n", path);
		}
	} else {
		fprintf(stderr, "scanqa: unknown command \"%s\"\n", cmd);
		usage(stderr);
		rc = 2;
	}
	conf_free(&c);
	return rc;
}
