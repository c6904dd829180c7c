/*
 * bulk: the Bulk API 2.0 worker thread and life cycle. See bulk.h.
 *
 * Everything about a job lives in the org's SQLite database, so jobs survive
 * a restart and big jobs cost disk, not memory:
 *   _lf_bulk_jobs     one row per job (its options, state and counters)
 *   _lf_bulk_data     ingest uploads, as they came, in chunks of CHUNK_BYTES
 *   _lf_bulk_results  one row per processed ingest row: success or failure,
 *                     the record Id, and the original row re-encoded as CSV
 *
 * One worker thread runs jobs: a query job is compiled when it is created (so
 * bad SOQL is refused at once) and counted by the worker (UploadComplete ->
 * InProgress -> JobComplete); an ingest job, once closed, is processed
 * INGEST_BATCH rows per transaction with the same validation as REST (the
 * store's), and its counters are committed with the rows, so a restart resumes
 * where it stopped. Query jobs go before ingest batches, so a long load does
 * not hold queries up.
 *
 * Query results are not stored: each page re-runs the compiled query as an
 * open SQLite statement and streams it out as CSV (resp->stream) in pieces,
 * under the store lock, with no per-row allocation. The statement of a page
 * that was read to its end is parked, positioned at the next page, so paging
 * through a job is one pass over the data; a locator that does not match a
 * parked statement (a repeated page, a restart) re-runs the query and skips to
 * its offset. A locator is the base64 of the decimal row offset, as
 * Salesforce's look ("MTAwMDA" is 10000). The row count of a job is fixed
 * when it completes, and every page honours it.
 *
 * Ingest data is checked when it is uploaded (header names, field counts,
 * quoting, UTF-8, the job's delimiter and line ending); a problem does not
 * refuse the upload but fails the job when it is closed, with Salesforce's
 * "InvalidBatch : ..." / "ClientInputError : ..." errorMessage. Row failures
 * are reported in failedResults as "CODE:message:fields --". hardDelete is
 * accepted and deletes as delete does (to the recycle bin).
 */
#include "bulk.h"

#include <math.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "bquery.h"
#include "ingest.h"
#include "util.h"
/* ----- the worker -------------------------------------------------------- */

/* The next job to work on: query jobs first, then the oldest ingest job.
 * 0 and id/kind, or -1 if none. */
static int
next_job(store *st, char id[19], int *kind)
{
    err_t e;
    store_lock(st);
    sqlite3_stmt *s = jobs_prep(st,
                                "SELECT id, kind FROM _lf_bulk_jobs WHERE state IN "
                                "('UploadComplete', 'InProgress') ORDER BY kind, seq LIMIT 1",
                                &e);
    int rc = -1;
    if (s && sqlite3_step(s) == SQLITE_ROW) {
        snprintf(id, 19, "%s", (const char *)sqlite3_column_text(s, 0));
        *kind = sqlite3_column_int(s, 1);
        rc = 0;
    }
    sqlite3_finalize(s);
    store_unlock(st);
    return rc;
}

static void *
worker_main(void *arg)
{
    lf_bulk *b = arg;
    ingest_run *run = NULL;
    for (;;) {
        pthread_mutex_lock(&b->mu);
        if (!b->stop && !b->kicked) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&b->cv, &b->mu, &ts);
        }
        bool stop = b->stop;
        b->kicked = false;
        pthread_mutex_unlock(&b->mu);
        if (stop)
            break;
        char id[19], stuck[19] = "";
        int kind;
        while (!jobs_stopping(b) && next_job(b->st, id, &kind) == 0) {
            /* A job that is still runnable right after a pass that made no
             * progress on it (a database error) waits for the next round. */
            if (strcmp(id, stuck) == 0)
                break;
            if (kind == K_QUERY) {
                bq_run(b, id);
                snprintf(stuck, sizeof stuck, "%s", id);
                continue;
            }
            if (run && strcmp(run->j.id, id) != 0) {
                ing_run_free(b->st, run);
                run = NULL;
            }
            if (run == NULL) {
                store_lock(b->st);
                run = ing_run_start(b, id);
                store_unlock(b->st);
                if (run == NULL) {
                    snprintf(stuck, sizeof stuck, "%s", id);
                    continue;
                }
            }
            stuck[0] = '\0';
            if (!ing_run_step(b, run)) {
                ing_run_free(b->st, run);
                run = NULL;
                snprintf(stuck, sizeof stuck, "%s", id);
            }
        }
    }
    ing_run_free(b->st, run);
    return NULL;
}

/* ----- life cycle -------------------------------------------------------- */

static const char *const schema_sql =
    "CREATE TABLE IF NOT EXISTS _lf_bulk_jobs ("
    " id TEXT PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, kind INTEGER NOT NULL,"
    " operation TEXT NOT NULL, object TEXT, query TEXT, ext_field TEXT, created_by TEXT,"
    " created INTEGER NOT NULL, modstamp INTEGER NOT NULL, state TEXT NOT NULL, delim TEXT,"
    " eol TEXT, api_version TEXT, processed INTEGER NOT NULL DEFAULT 0,"
    " failed INTEGER NOT NULL DEFAULT 0, total_ms INTEGER NOT NULL DEFAULT 0, error TEXT,"
    " columns TEXT, upload_error TEXT, uploads INTEGER NOT NULL DEFAULT 0,"
    " started INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS _lf_bulk_data ("
    " job TEXT NOT NULL, upload INTEGER NOT NULL, chunk INTEGER NOT NULL, data BLOB,"
    " PRIMARY KEY (job, upload, chunk));"
    "CREATE TABLE IF NOT EXISTS _lf_bulk_results ("
    " job TEXT NOT NULL, kind INTEGER NOT NULL, seq INTEGER NOT NULL, sf_id TEXT,"
    " created INTEGER, error TEXT, row TEXT, PRIMARY KEY (job, kind, seq));";

void
bulk_set_result_page_rows(lf_bulk *b, int64_t rows)
{
    b->result_page_rows = rows;
}

lf_bulk *
bulk_new(store *st, err_t *e)
{
    lf_bulk *b = xcalloc(1, sizeof *b);
    b->st = st;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    store_lock(st);
    int rc = jobs_exec(st, schema_sql, e);
    if (rc == 0) {
        sqlite3_stmt *s = jobs_prep(st, "SELECT COALESCE(MAX(seq), 0) FROM _lf_bulk_jobs", e);
        if (s && sqlite3_step(s) == SQLITE_ROW)
            b->seq = sqlite3_column_int64(s, 0);
        else
            rc = -1;
        sqlite3_finalize(s);
    }
    store_unlock(st);
    if (rc == 0 && b->seq == 0) {
        uint32_t r;
        util_random(&r, sizeof r);
        b->seq = r % 1000000; /* job ids differ between runs of an in-memory org */
    }
    if (rc == 0) {
        int err = pthread_create(&b->worker, NULL, worker_main, b);
        if (err != 0) {
            err_set(e, 500, "UNKNOWN_EXCEPTION", "cannot start the Bulk API worker: %s",
                    strerror(err));
            rc = -1;
        } else {
            b->worker_started = true;
        }
    }
    if (rc != 0) {
        bulk_free(b);
        return NULL;
    }
    return b;
}

void
bulk_free(lf_bulk *b)
{
    if (b == NULL)
        return;
    if (b->worker_started) {
        pthread_mutex_lock(&b->mu);
        b->stop = true;
        pthread_cond_signal(&b->cv);
        pthread_mutex_unlock(&b->mu);
        pthread_join(b->worker, NULL);
    }
    store_lock(b->st);
    while (b->parked) {
        qcursor *c = b->parked;
        b->parked = c->next;
        bq_cursor_free(c);
    }
    store_unlock(b->st);
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
    free(b);
}
