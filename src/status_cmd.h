/* status_cmd.h: "scanqa status", the status page in a terminal. */
#ifndef SCANQA_STATUS_CMD_H
#define SCANQA_STATUS_CMD_H

#include "conf.h"

/* Runs "scanqa status [--json] [--once] [--interval S] [--watch]" against the
 * daemon's status_listen socket (see status_cmd.c). Returns the exit status: 0, 1
 * when the daemon cannot be asked, 2 on bad arguments. */
int status_cmd_main(const struct conf *c, int argc, char **argv);

#endif
