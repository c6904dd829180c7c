/*
 * bulkload: a Bulk initial load's pages into the shadow (see bulkload.h).
 */
#include "bulkload.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "log.h"
#include "pagepipe.h"
#include "pg.h"
#include "sb.h"
#include "sfbulk.h"
#include "shadow.h"
#include "syncbase.h"
#include "util.h"

/* A Bulk load's pages through pagepipe: fetched on this thread, or listed
 * by the job's resultPages and fetched side by side (SFBRIDGE_LOAD_FETCHERS,
 * fetcher 0 on the sync's client, the others on clones); loaded by the
 * pipe's loaders side by side, lane 0 on the sync's connection and the
 * others (SFBRIDGE_LOAD_WORKERS) on connections of their own, each page in a
 * transaction that commits, in page order, with the next page's locator (a
 * listed page's: its result URL, so a resume lists again and skips to it). */
typedef struct load_pipe {
    sync_ctx *x;
    mapping *m;
    const char *job; /* the job whose pages are loaded */
    const map_field *const *f;
    size_t nf;
    const char *copy_sql;
    const bulkload_stage_spec *stage; /* NULL: the initial load's shadow; else the stage */
    int64_t staged;                   /* the stage: rows committed so far */
    PGconn *pg[PP_LOADERS_MAX];       /* a connection per lane; [0] is x->pg */
    int lanes;
    sfapi *sf[PP_FETCHERS_MAX]; /* a client per fetcher; [0] is x->sf */
    int fetchers;
    sfbulk_pages first; /* the first listing, read to see that the org lists pages */
    char *listing;      /* the next listing's URL */
    long job_records;   /* the records the job returned (-1: not told): the pages hold no more */
} load_pipe;

static int
spool_sink(void *ctx, const char *data, size_t len, err_t *e)
{
    return pp_spool_put(ctx, data, len, e);
}

static int
load_fetch(void *ctx, int slot, const char *locator, FILE *f, char **next, long *records, err_t *e)
{
    load_pipe *lp = ctx;
    sfapi *sf = lp->sf[slot];
    int rc = lp->fetchers > 0 ? sfbulk_query_results_at(sf, locator, spool_sink, f, records, e)
                              : sfbulk_query_results(sf, lp->job, locator, lp->x->cfg->bulk_page,
                                                     spool_sink, f, next, records, e);
    if (rc != 0)
        return -1;
    if (fflush(f) != 0)
        return pp_spool_failed(errno, "written", e);
    return 0;
}

/* One spooled page COPYed into the shadow on the lane's connection, its
 * transaction left open for load_commit. *records becomes the rows COPY
 * took, not what the page's Sforce-NumberOfRecords header claimed: the
 * load's progress and its bound by the job's count rest on what came. */
static int
load_spooled(void *ctx, int lane, FILE *f, long *records, err_t *e)
{
    load_pipe *lp = ctx;
    PGconn *pg = lp->pg[lane];
    if (pg_exec(pg, e, "BEGIN") != 0 || pg_copy_begin(pg, lp->copy_sql, e) != 0)
        return sync_conn_failed(pg, e);
    bool quiet = lp->lanes > 1; /* progress then moves as pages commit */
    sync_copy_sink k = {.x = lp->x,
                        .pg = pg,
                        .m = lp->m,
                        .f = lp->f,
                        .nf = lp->nf,
                        .quiet = quiet,
                        .base_done = quiet       ? 0
                                     : lp->stage ? lp->staged
                                                 : lp->m->load_done,
                        .last_ms = util_mono_ms()};
    char buf[65536];
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = fread(buf, 1, sizeof buf, f)) > 0)
        rc = sync_copy_sink_fn(&k, buf, n, e);
    if (rc == 0 && ferror(f))
        rc = pp_spool_failed(EIO, "read", e);
    sb_free(&k.header);
    if (rc != 0) {
        (void)pg_copy_end(pg, "Bulk results page failed", NULL);
        pg_rollback_quietly(pg);
        return sync_stop_requested(lp->x) ? sync_stopped(lp->x, e) : -1;
    }
    int64_t rows = 0;
    if (pg_copy_end_rows(pg, &rows, e) != 0)
        return sync_conn_failed(pg, e);
    *records = (long)rows;
    return 0;
}

/* The lane's page commits with the next page's locator (pages in order).
 * Pages that hold more records than the job returned (a listing or locator
 * that names pages again, from a broken or hostile answer) stop the load
 * there, and it starts over (sync.c): without the bound it would load them
 * for ever. */
static int
load_commit(void *ctx, int lane, const char *next, long records, err_t *e)
{
    load_pipe *lp = ctx;
    sync_ctx *x = lp->x;
    mapping *m = lp->m;
    PGconn *pg = lp->pg[lane];
    int64_t before = lp->stage ? lp->staged : m->load_done;
    if (lp->job_records >= 0 && records > lp->job_records - before) {
        err_set(e, 200, "RESULTS_OVERFLOW",
                "%s: the Bulk job's result pages hold more records than the %ld it returned"
                " (a page named twice?)",
                m->object, lp->job_records);
        return err_class_set(e, ERR_PERMANENT);
    }
    if (lp->stage) { /* no position to keep: a stage that fails is made again */
        if (pg_exec(pg, e, "COMMIT") != 0)
            return sync_conn_failed(pg, e);
        lp->staged += records;
        /* the job's count, the rows expected (not told: progress without a total) */
        int64_t total = lp->job_records < 0 ? 0 : lp->job_records;
        return lp->stage->staged(x, m, lp->staged, total, e);
    }
    if (cat_load_progress(pg, x->schema, m->object, next ? next : "", records, e) != 0 ||
        pg_exec(pg, e, "COMMIT") != 0)
        return sync_conn_failed(pg, e);
    m->load_done += records;
    sync_counted_on(pg, x, m, records, -1);
    sync_replace(&m->load_locator, next ? next : "");
    sync_progress(x, m, m->load_done, m->load_total);
    return 0;
}

static void
load_abort(void *ctx, int lane)
{
    load_pipe *lp = ctx;
    pg_rollback_quietly(lp->pg[lane]);
}

/* The next result URLs of the job's resultPages listing. */
static int
load_list(void *ctx, int slot, char ***locs, size_t *n, bool *more, err_t *e)
{
    load_pipe *lp = ctx;
    sfbulk_pages pg = {0};
    if (lp->first.url) { /* the first listing, read already (its array, even when empty) */
        pg = lp->first;
        lp->first = (sfbulk_pages){0};
    } else if (lp->listing && sfbulk_query_pages(lp->sf[slot], lp->job, lp->listing, &pg, e) != 0) {
        return -1;
    }
    free(lp->listing);
    lp->listing = pg.next;
    *more = pg.next != NULL;
    *locs = pg.url;
    *n = pg.n;
    return 0;
}

/* Whether the load's pages are listed and fetched side by side: the setting
 * asks for it, the API version has resultPages (58.0), and the org answers
 * the first listing with pages. A resume goes on the way the load began:
 * at a listed page's URL by listing again, at a locator one after the other. */
static int
load_fetchers_open(load_pipe *lp, err_t *e)
{
    sync_ctx *x = lp->x;
    const char *at = lp->stage ? NULL : lp->m->load_locator;
    bool resume_listed = at && at[0] == '/';
    lp->sf[0] = x->sf;
    if (!resume_listed &&
        ((at && *at) || x->cfg->load_fetchers < 2 || atof(sfapi_api_version(x->sf)) < 58.0))
        return 0;
    err_t le;
    err_clear(&le);
    if (sfbulk_query_pages(x->sf, lp->job, NULL, &lp->first, &le) != 0 ||
        (lp->first.n == 0 && !lp->first.next)) {
        sfbulk_pages_free(&lp->first);
        if (resume_listed && !le.code[0]) { /* listed before, not now: start over */
            err_set(&le, 400, "INVALID_QUERY_LOCATOR", "the job lists no result pages now");
            err_class_set(&le, ERR_PERMANENT);
        }
        if (resume_listed || err_class_of(&le) == ERR_TRANSIENT) {
            *e = le;
            return -1;
        }
        log_info("%s: the org lists no result pages (%s); fetching them one after the other",
                 lp->m->object, le.code[0] ? le.code : "none listed");
        return 0;
    }
    lp->fetchers = 1; /* a resume at a listed page lists even with the setting at 1 */
    while (lp->fetchers < x->cfg->load_fetchers && lp->fetchers < PP_FETCHERS_MAX)
        lp->sf[lp->fetchers++] = sfapi_clone(x->sf);
    return 0;
}

/* Connections for the loaders beyond the first, as many as the setting asks
 * and Postgres gives (fewer only make the load slower). */
static void
load_lanes_open(load_pipe *lp)
{
    long want = lp->x->cfg->load_workers;
    lp->pg[0] = lp->x->pg;
    lp->lanes = 1;
    while (lp->lanes < want && lp->lanes < PP_LOADERS_MAX) {
        err_t ce;
        err_clear(&ce);
        PGconn *c = pg_connect(lp->x->cfg->database_url, &ce);
        if (!c) {
            log_info("%s: loading on %d connection(s): %s", lp->m->object, lp->lanes, ce.msg);
            break;
        }
        lp->pg[lp->lanes++] = c;
    }
}

/* The pipe's pages from loc on (NULL: the first): fetchers and loaders
 * opened (the stage loads on the sync's connection only: it is a temporary
 * table of that session), run, closed. */
static int
pipe_run(load_pipe *lp, const char *loc, err_t *e)
{
    sync_ctx *x = lp->x;
    int rc = load_fetchers_open(lp, e);
    if (rc == 0) {
        if (lp->stage) {
            lp->pg[0] = x->pg;
            lp->lanes = 1;
        } else {
            load_lanes_open(lp);
        }
        pp_ops o = {.fetch = load_fetch,
                    .list = lp->fetchers > 0 ? load_list : NULL,
                    .load = load_spooled,
                    .commit = load_commit,
                    .abort = load_abort,
                    .ctx = lp,
                    .loaders = lp->lanes,
                    .fetchers = lp->fetchers};
        if ((rc = pp_run(loc, &o, x->stop, e)) == 1)
            rc = sync_stopped(x, e);
    }
    for (int i = 1; i < lp->lanes; i++)
        PQfinish(lp->pg[i]);
    for (int i = 1; i < lp->fetchers; i++) {
        sfapi_add_calls(x->sf, lp->sf[i]); /* the mapping's API use counts them */
        sfapi_free(lp->sf[i]);
    }
    sfbulk_pages_free(&lp->first);
    free(lp->listing);
    return rc;
}

int
bulkload_run(sync_ctx *x, mapping *m, long job_records, err_t *e)
{
    const map_field **f = apply_all_fields(m);
    sb copy = SB_INIT, target = SB_INIT;
    shadow_qname(&target, x->schema, m);
    apply_copy_sql(&copy, sb_str(&target), f, m->nfields);
    load_pipe lp = {.x = x,
                    .m = m,
                    .job = m->load_job,
                    .f = f,
                    .nf = m->nfields,
                    .copy_sql = sb_str(&copy),
                    .job_records = job_records};
    const char *loc = m->load_locator && *m->load_locator ? m->load_locator : NULL;
    int rc = pipe_run(&lp, loc, e);
    sb_free(&target);
    sb_free(&copy);
    free(f);
    return rc;
}

int
bulkload_stage(sync_ctx *x, mapping *m, const bulkload_stage_spec *st, err_t *e)
{
    sb copy = SB_INIT;
    apply_copy_sql(&copy, st->table, st->f, st->nf);
    load_pipe lp = {.x = x,
                    .m = m,
                    .job = st->job,
                    .f = st->f,
                    .nf = st->nf,
                    .copy_sql = sb_str(&copy),
                    .stage = st,
                    .job_records = st->job_records};
    int rc = pipe_run(&lp, NULL, e);
    sb_free(&copy);
    return rc;
}
