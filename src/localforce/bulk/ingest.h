/*
 * ingest: Bulk ingest jobs: creation, processing INGEST_BATCH rows per transaction
 * through the store (resumable after a restart), errors as Bulk reports them,
 * and the successfulResults / failedResults / unprocessedrecords files.
 */
#ifndef INGEST_H
#define INGEST_H

#include "jobs.h"
#include "upload.h"

typedef struct ingest_run {
    job j;
    const lf_object *o;
    column *cols;
    size_t ncols;
    int id_col;  /* index of the Id column, -1 if none */
    int ext_col; /* upsert: index of the external id column, -1 if none */
    upload_iter it;
    sqlite3_stmt *ins; /* INSERT INTO _lf_bulk_results */
    int64_t t0;        /* monotonic ms when this run started */
    int64_t base_ms;   /* processing time before this run (a restart) */
    char origin[96];
    sb rowtext;
    sb errtext;
} ingest_run;

void ing_run_free(store *st, ingest_run *run);
ingest_run *ing_run_start(lf_bulk *b, const char *id);
bool ing_run_step(lf_bulk *b, ingest_run *run);

#endif
