/* status_cmd.h: "scanqa status" and "scanqa reload", through the master's status socket. */
#ifndef SCANQA_STATUS_CMD_H
#define SCANQA_STATUS_CMD_H

#include "conf.h"

/* Runs "scanqa status [--json] [--once] [--interval S] [--watch]" against the
 * daemon's status_listen socket (see status_cmd.c). Returns the exit status: 0, 1
 * when the daemon cannot be asked, 2 on bad arguments. */
int status_cmd_main(const struct conf *c, int argc, char **argv);
/* Runs "scanqa reload [MASTER_PID]": SIGHUP to the master (the pid given, else the one
 * the status page names), then waits for its verdict on the status page. Returns 0
 * when the new config is in force, 1 when it was refused (the reason on stderr) or no
 * verdict came within 30 s, 2 on bad arguments. */
int reload_cmd_main(const struct conf *c, int argc, char **argv);

#endif
