/* token.h: "scanqa issue-token": creates an API token, prints it once, stores its SHA-256. */
#ifndef SCANQA_TOKEN_H
#define SCANQA_TOKEN_H

#include "conf.h"

/* argv holds the subcommand's own arguments (after "issue-token"). Returns an exit code. */
int token_issue_main(const struct conf *c, int argc, char **argv);

#endif
