/* handlers.h: every endpoint handler, one file per endpoint group (h_*.c). */
#ifndef SCANQA_HANDLERS_H
#define SCANQA_HANDLERS_H

#include "router.h"

/* h_quick_inspection.c */
void h_quick_inspection(struct request *req, const struct route_params *p);

#endif
