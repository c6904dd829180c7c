/*
 * sync: moving data from Salesforce into the mapped tables.
 *
 *   sync_load     the initial load: REST query pages for small objects, a Bulk
 *                 API 2.0 query job streamed into COPY for large ones. Every
 *                 page is committed together with the position to resume from
 *                 (job id and locator, or nextRecordsUrl), so a crash at any
 *                 instant resumes without losing or repeating rows.
 *   sync_poll     incremental sync: queryAll of what changed since the watermark
 *                 (minus an overlap), applied page by page, the new watermark
 *                 committed in the same statement as the rows.
 *   sync_drift    compares ids and modstamps with Salesforce and repairs.
 *   sync_reload   refills a mapping through a staging table; readers keep the
 *                 old rows until one transaction swaps the contents.
 *   sync_backfill fills columns just added to a mapping.
 *
 * Each returns 0 or -1 with e filled; the failure's class is inside it
 * (err_class_of(e): ERR_TRANSIENT, ERR_AUTH or ERR_PERMANENT). The SQL they
 * run is built by apply.c.
 */
#ifndef SYNC_H
#define SYNC_H

#include <signal.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "catalog.h"
#include "config.h"
#include "err.h"
#include "sfapi.h"

typedef void (*sync_progress_fn)(void *ctx, const mapping *m, int64_t done, int64_t total);

typedef struct sync_ctx {
    PGconn *pg;
    sfapi *sf;
    const cfg *cfg;
    const char *schema;
    volatile sig_atomic_t *stop; /* set by a signal: abandon the current page */
    sync_progress_fn progress;   /* optional */
    void *progress_ctx;
    /* Internal: Postgres's clock when the records being applied were asked
     * for ("" when not known); a successful write after it makes a fetched
     * version stale. */
    char fetched_at[48];
    /* Internal: the mapping whose reload fills the stage (its progress goes to
     * the catalog, for status and the dashboard), or NULL. */
    const mapping *reloading;
} sync_ctx;

int sync_load(sync_ctx *x, mapping *m, err_t *e) ERR_MUST_CHECK;
int sync_poll(sync_ctx *x, mapping *m, int64_t *applied, err_t *e) ERR_MUST_CHECK;
int sync_drift(sync_ctx *x, mapping *m, int64_t *repairs, err_t *e) ERR_MUST_CHECK;
int sync_reload(sync_ctx *x, mapping *m, err_t *e) ERR_MUST_CHECK;
int sync_backfill(sync_ctx *x, mapping *m, err_t *e) ERR_MUST_CHECK;
/* Streaming: fetch the records named by a batch of change events (ids), apply
 * them, delete the ones in deleted (gone for good), and commit the batch's
 * last replay id and lag in the same transaction. */
int sync_stream_apply(sync_ctx *x, mapping *m, const char *const *ids, size_t nids,
                      const char *const *deleted, size_t ndel, int64_t replay_id, int64_t lag_ms,
                      err_t *e) ERR_MUST_CHECK;
/* Did sync_stream_apply leave the events for later (the writer is settling
 * inserts of that table whose outcome was lost)? Not a failure: the events
 * come again from the committed replay id. */
bool sync_deferred(const err_t *e);

#endif
