/*
 * pgpool: connections shared by threads (see pgpool.h).
 */
#include "pgpool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "pg.h"
#include "util.h"

struct pgpool {
    char *url, *setup;
    int size;
    pthread_mutex_t mu;
    pthread_cond_t freed;
    PGconn *conn[PGPOOL_MAX]; /* NULL: not opened yet, or closed after a loss */
    bool held[PGPOOL_MAX];
};

pgpool *
pgpool_new(const char *url, int size, const char *setup)
{
    pgpool *p = xcalloc(1, sizeof *p);
    p->url = xstrdup(url);
    p->setup = setup ? xstrdup(setup) : NULL;
    p->size = size < 1 ? 1 : size > PGPOOL_MAX ? PGPOOL_MAX : size;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->freed, NULL);
    return p;
}

void
pgpool_free(pgpool *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->size; i++)
        if (p->conn[i])
            PQfinish(p->conn[i]);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->freed);
    free(p->url);
    free(p->setup);
    free(p);
}

static void
release(pgpool *p, int i, PGconn *c)
{
    pthread_mutex_lock(&p->mu);
    p->conn[i] = c;
    p->held[i] = false;
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->mu);
}

/* Slot i's connection c (held by the caller), open and set up. */
static PGconn *
ready(const pgpool *p, PGconn *c, err_t *e)
{
    if (c && !pg_connection_lost(c))
        return c;
    if (c)
        PQfinish(c);
    c = pg_connect(p->url, e);
    if (c && p->setup && pg_exec(c, e, p->setup) != 0) {
        PQfinish(c);
        c = NULL;
    }
    return c;
}

PGconn *
pgpool_take(pgpool *p, err_t *e)
{
    pthread_mutex_lock(&p->mu);
    int i;
    for (;;) {
        /* (an open connection first: a new one is opened only when all are held) */
        int closed = -1;
        for (i = 0; i < p->size; i++) {
            if (p->held[i])
                continue;
            if (p->conn[i])
                break;
            if (closed < 0)
                closed = i;
        }
        if (i == p->size)
            i = closed;
        if (i >= 0)
            break;
        pthread_cond_wait(&p->freed, &p->mu);
    }
    p->held[i] = true;
    PGconn *was = p->conn[i];
    p->conn[i] = NULL; /* (the holder's until given back) */
    pthread_mutex_unlock(&p->mu);
    PGconn *c = ready(p, was, e);
    if (!c)
        release(p, i, NULL);
    else {
        pthread_mutex_lock(&p->mu);
        p->conn[i] = c;
        pthread_mutex_unlock(&p->mu);
    }
    return c;
}

void
pgpool_give(pgpool *p, PGconn *c)
{
    pthread_mutex_lock(&p->mu);
    int i = 0;
    while (i < p->size && !(p->held[i] && p->conn[i] == c))
        i++;
    pthread_mutex_unlock(&p->mu);
    if (i < p->size)
        release(p, i, c);
}
