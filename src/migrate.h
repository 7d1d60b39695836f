/* migrate.h: applies sql/NNN_*.sql in order, once each, recorded in scanqa_migrations. */
#ifndef SCANQA_MIGRATE_H
#define SCANQA_MIGRATE_H

#include "conf.h"

/* Returns a process exit code: 0 when every migration is applied. */
int migrate_run(const struct conf *c);

#endif
