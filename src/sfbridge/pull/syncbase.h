/*
 * syncbase: what a sync run rests on, shared by sync.c and bulkload.c: how a
 * failure on a connection is classed, a stop asked by a signal, progress and
 * activity counts, and the COPY sink that checks a Bulk results page's header
 * and streams its rows into COPY. Nothing here calls back into sync.c.
 */
#ifndef SYNCBASE_H
#define SYNCBASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "err.h"
#include "mapping.h"
#include "sb.h"
#include "sync.h"

/* A statement failed on pg (the sync's connection, or a loader's): roll back
 * and class the failure (transient when worth retrying). -1. */
int sync_conn_failed(PGconn *pg, err_t *e);
/* The same on the sync's own connection. */
int sync_pg_failed(sync_ctx *x, err_t *e);
/* Whether a signal asked the sync to stop; and the failure that says so. */
bool sync_stop_requested(const sync_ctx *x);
int sync_stopped(sync_ctx *x, err_t *e);
/* The load's progress to the caller's callback (status, the dashboard). */
void sync_progress(sync_ctx *x, const mapping *m, int64_t done, int64_t total);
/* Rows committed from Salesforce on pg, for the dashboard's charts. */
void sync_counted_on(PGconn *pg, const sync_ctx *x, const mapping *m, int64_t rows, int64_t lag_ms);
/* *slot = a copy of v (NULL: none), the old value freed. */
void sync_replace(char **slot, const char *v);
/* Best-effort deletion of a finished Bulk query job. */
void sync_drop_job(sync_ctx *x, const char *job);

/* A Bulk results page on its way into COPY: its header checked against the
 * fields asked for, its rows counted for progress. */
typedef struct sync_copy_sink {
    sync_ctx *x;
    PGconn *pg; /* the COPY's connection */
    const mapping *m;
    const map_field *const *f;
    size_t nf;
    bool header_done;
    sb header;
    bool quiet;        /* no progress midway (pages loaded side by side) */
    int64_t lines;     /* newlines seen: rows, for progress only */
    int64_t base_done; /* rows committed before this page */
    int64_t last_ms;
} sync_copy_sink;
/* An sfapi_sink writing into k->pg's COPY. */
int sync_copy_sink_fn(void *ctx, const char *data, size_t len, err_t *e);

#endif
