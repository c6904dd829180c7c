/*
 * bulkload: the Bulk half of an initial load: the job's results pages into
 * the load's shadow table through pagepipe. Pages are fetched one after the
 * other (each naming the next) or, where the job's resultPages lists them
 * (API 58.0 and later), SFBRIDGE_LOAD_FETCHERS at a time, each on a
 * Salesforce client of its own; SFBRIDGE_LOAD_WORKERS loaders COPY them side
 * by side, each page in a transaction that commits, in page order, with the
 * next page's locator (a listed page's: its result URL), so a crash resumes
 * at the first page not committed. sync.c's load starts the job, calls this,
 * and swaps the shadow in. A drift check's, reload's or backfill's stage
 * takes its job's pages the same way, on the sync's connection alone.
 */
#ifndef BULKLOAD_H
#define BULKLOAD_H

#include "err.h"
#include "mapping.h"
#include "sync.h"

/* A Bulk job's pages into the sync's temporary stage (a drift check, a
 * reload, a backfill): fetched as the load's are, loaded on the sync's
 * connection, each page committed and then counted to staged(); not
 * resumable (a failed stage is made again). */
typedef struct bulkload_stage_spec {
    const char *job;
    long job_records;  /* the records the job returned (-1: not told) */
    const char *table; /* the stage, quoted */
    const map_field *const *f;
    size_t nf;
    int (*staged)(sync_ctx *x, const mapping *m, int64_t done, int64_t total, err_t *e);
} bulkload_stage_spec;

/* Load m's Bulk job (m->load_job) from m->load_locator on (NULL: the first
 * page) into its shadow. job_records: the records the job returned (-1: not
 * told); pages that hold more fail as RESULTS_OVERFLOW. 0 when the last page
 * is committed; -1 with e. */
int bulkload_run(sync_ctx *x, mapping *m, long job_records, err_t *e) ERR_MUST_CHECK;
/* The stage's pages: 0 once the last is committed, -1 with e. */
int bulkload_stage(sync_ctx *x, mapping *m, const bulkload_stage_spec *st, err_t *e) ERR_MUST_CHECK;

#endif
