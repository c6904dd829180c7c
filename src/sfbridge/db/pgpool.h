/*
 * pgpool: a few Postgres connections shared by threads, each held by one
 * thread at a time (the writer's lanes remember what they send and record
 * what came back on them, side by side).
 *
 * A connection is opened when first needed and given the pool's set-up
 * statement; one found lost when taken is closed and opened again. Taking
 * waits while every connection is held.
 */
#ifndef PGPOOL_H
#define PGPOOL_H

#include <libpq-fe.h>

#include "err.h"

typedef struct pgpool pgpool;

/* size: the most connections (1 to PGPOOL_MAX); setup: run on each new one (may be NULL). */
pgpool *pgpool_new(const char *url, int size, const char *setup);
/* Closes the connections; none may be held. */
void pgpool_free(pgpool *p);
/* A connection for the calling thread alone, or NULL with e filled (it could
 * not be opened or set up). Give it back with pgpool_give. */
PGconn *pgpool_take(pgpool *p, err_t *e);
void pgpool_give(pgpool *p, PGconn *c);

#define PGPOOL_MAX 16
#endif
