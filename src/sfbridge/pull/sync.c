/*
 * sync: Salesforce -> Postgres: initial load, incremental polls, drift
 * repair, reload and backfill (see sync.h).
 *
 * Rows reach Postgres two ways:
 *   - REST query pages (JSON) are applied by one statement per page that turns
 *     the page into rows with jsonb_to_recordset and upserts them; the same
 *     statement advances the mapping's watermark or load position, so the rows
 *     and the bookkeeping commit together;
 *   - Bulk API 2.0 results (CSV) are streamed straight into COPY, a page per
 *     transaction with the locator of the next page (an initial load's pages
 *     by bulkload.c, fetched and COPYed side by side).
 * The text of those statements is built in apply.c; this file runs it. Every
 * failure's class travels in the err_t: Salesforce's from sfapi, Postgres's
 * from pg_failed (transient when worth retrying), STOPPED is transient.
 */
#include "sync.h"
#include "syncbase.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "activity.h"
#include "apply.h"
#include "bulkload.h"
#include "conflicts.h"
#include "ddl.h"
#include "locks.h"
#include "log.h"
#include "pagepipe.h"
#include "pg.h"
#include "sb.h"
#include "shadow.h"
#include "sfbulk.h"
#include "tlog.h"
#include "util.h"

#define STAGE APPLY_STAGE
/* The setting a page's transaction carries sync_ctx.fetched_at in. */
#define FETCHED_AT_GUC "sfbridge.fetched_at"

/* ---- the end of a public call ------------------------------------------- */

/* The end of a public sync_* call: a failure's class is in e (an unclassed
 * one is permanent). */
static int
outcome(int rc, err_t *e)
{
    if (rc != 0 && err_class_of(e) == ERR_OK)
        err_class_set(e, ERR_PERMANENT);
    return rc;
}

/* ---- SQL: what only a running sync knows ----------------------------------- */

static void
qtable(sb *out, const sync_ctx *x, const mapping *m)
{
    pg_qname(out, x->schema, m->table);
}

/* The CTEs of a read-write mapping's apply statement that find the rows
 * changed on both sides (see apply_sql); "" for a read-only mapping. */
static char *
conflict_ctes(const sync_ctx *x, const mapping *m)
{
    sb s = SB_INIT;
    if (m->read_write) {
        /* Changed on both sides since the last sync: the row's own change is
         * still waiting to be written. The policy picks the winner; every
         * conflict is recorded in _sfbridge_conflicts. */
        sb lt = SB_INIT, lp = SB_INIT;
        sb_sql_literal(&lt, m->table);
        sb_sql_literal(&lp, x->cfg->conflict_policy);
        const char *T = sb_str(&lt), *P = sb_str(&lp);
        /* Versions fetched before sfbridge's own later write to the row
         * (the writer finished while this page was on its way): older than
         * what Salesforce has now, they are left for the next poll. A row a
         * pull left SYNCED had no write recorded since its fetch (see
         * docs/sfbridge.md), so only the others are looked up in the log. */
        sb_puts(&s, ", stale AS (SELECT x.\"Id\" AS sfid FROM src x JOIN ");
        qtable(&s, x, m);
        sb_puts(&s, " t ON t.sfid = x.\"Id\" WHERE t.\"_hc_lastop\" IS DISTINCT FROM '" HC_SYNCED
                    "' AND ");
        tlog_sql_written_since(&s, x->schema, T, "t.id",
                               "nullif(current_setting('" FETCHED_AT_GUC "', true), '')"
                               "::timestamptz");
        sb_puts(&s, ")");
        sb_printf(&s,
                  ", conf AS (SELECT x.\"Id\" AS sfid, t.id AS rid, (x.\"SystemModstamp\" AT TIME "
                  "ZONE 'UTC') AS sfstamp,"
                  " to_jsonb(x) AS sfv, to_jsonb(t) AS pgv, p.changed_at,"
                  " CASE %s WHEN 'salesforce_wins' THEN 'salesforce' WHEN 'postgres_wins' THEN "
                  "'postgres'"
                  "  ELSE CASE WHEN x.\"SystemModstamp\" > p.changed_at THEN 'salesforce' ELSE "
                  "'postgres' END END AS winner"
                  " FROM src x JOIN ",
                  P);
        qtable(&s, x, m);
        sb_puts(&s, " t ON t.sfid = x.\"Id\" CROSS JOIN LATERAL ");
        tlog_sql_pending_change(&s, x->schema, T, "t.id", "p");
        sb_puts(&s,
                " WHERE p.changed_at IS NOT NULL AND t.\"_hc_lastop\" = '" HC_PENDING "'"
                " AND NOT EXISTS (SELECT 1 FROM stale WHERE stale.sfid = x.\"Id\")"
                " AND t.systemmodstamp IS DISTINCT FROM (x.\"SystemModstamp\" AT TIME ZONE 'UTC')");
        /* Salesforce's version is sfbridge's own earlier write: not a conflict. */
        tlog_sql_not_own_write(&s, x->schema, T, "t.id", "x.\"SystemModstamp\"");
        sb_puts(&s, "),");
        conflicts_sql_record(&s, x->schema, T, P);
        sb_puts(&s, " ign AS (");
        tlog_sql_ignore_conflicts(&s, x->schema, T, P);
        sb_puts(&s, ")");
        sb_free(&lt);
        sb_free(&lp);
    }
    return sb_steal(&s);
}

static char *
page_sql(const sync_ctx *x, const mapping *m, apply_tail tail)
{
    char *conf = conflict_ctes(x, m);
    char *sql = apply_sql(x->schema, m, tail, conf);
    free(conf);
    return sql;
}

/* ---- applying pages ---------------------------------------------------------- */

/* Run an apply statement on a page's records. */
static int
apply_page(sync_ctx *x, const char *sql, json_t *records, const char *object, const char *locator,
           int64_t *changed, int64_t *stale, err_t *e)
{
    char *body = json_dumps(records, JSON_COMPACT);
    if (!body)
        return err_set(e, 502, "BAD_RESPONSE", "a page of records could not be encoded");
    const char *p[] = {body, object, locator};
    int np = locator ? 3 : (strstr(sql, "$2") ? 2 : 1);
    PGresult *r = pg_query(x->pg, e, sql, np, p);
    free(body);
    if (!r)
        return sync_pg_failed(x, e);
    if (changed)
        *changed += atoll(PQgetvalue(r, 0, 0)) + atoll(PQgetvalue(r, 0, 1));
    int sc = PQfnumber(r, "stale");
    if (stale && sc >= 0)
        *stale += atoll(PQgetvalue(r, 0, sc));
    PQclear(r);
    return 0;
}

/* A poll page for a read-write mapping waits while the writer has inserts in
 * flight for the table, so it never sees a new record before its sfid is
 * written back into the row (which would make a duplicate row). */
static int unsettled_inserts(sync_ctx *x, const mapping *m, bool locked, bool *yes, err_t *e);

/* Open the transaction a page is applied in. For a read-write mapping, take
 * the table's lock (LOCK_TABLE, held by the writer while an insert's sfid is
 * on its way) and then look for inserts whose outcome the writer lost: *wait
 * set means the page must wait (the transaction is rolled back). */
static int
begin_page(sync_ctx *x, const mapping *m, bool *wait, err_t *e)
{
    *wait = false;
    if (pg_exec(x->pg, e, "BEGIN") != 0)
        return sync_pg_failed(x, e);
    if (m->read_write) {
        sb k = SB_INIT;
        sb_printf(&k, "%s.%s", x->schema, m->table);
        const char *p[] = {sb_str(&k)};
        int rc = pg_run(x->pg, e, "SELECT pg_advisory_xact_lock(" LOCK_TABLE ", hashtext($1))", 1,
                        p);
        sb_free(&k);
        if (rc != 0)
            return sync_pg_failed(x, e);
    }
    /* Apps write these rows in transactions of their own: rather than wait for
     * a row lock (and maybe deadlock with an app, which Postgres might resolve
     * by failing the app's transaction), give up quickly; the page is applied
     * again by the next attempt. */
    const char *p[] = {x->fetched_at};
    if (pg_run(x->pg, e,
               "SELECT set_config('lock_timeout', '200ms', true), set_config('" FETCHED_AT_GUC
               "', $1, true)",
               1, p) != 0)
        return sync_pg_failed(x, e);
    /* Checked under the lock: the writer may have lost an insert's answer while we waited. */
    if (unsettled_inserts(x, m, true, wait, e) != 0)
        return -1;
    if (*wait)
        pg_rollback_quietly(x->pg);
    return 0;
}

/* 1 when the page must wait (see unsettled_inserts): nothing applied. */
static int
apply_locked(sync_ctx *x, const mapping *m, const char *sql, json_t *recs, int64_t *changed,
             int64_t *stale, err_t *e)
{
    if (!m->read_write)
        return apply_page(x, sql, recs, m->object, NULL, changed, NULL, e);
    bool wait = false;
    if (begin_page(x, m, &wait, e) != 0)
        return -1;
    if (wait)
        return 1;
    if (apply_page(x, sql, recs, m->object, NULL, changed, stale, e) != 0)
        return -1;
    return pg_exec(x->pg, e, "COMMIT") == 0 ? 0 : sync_pg_failed(x, e);
}

static void
counted(sync_ctx *x, const mapping *m, int64_t rows, int64_t lag_ms)
{
    sync_counted_on(x->pg, x, m, rows, lag_ms);
}

/* Note Postgres's clock before asking Salesforce for records of a read-write
 * mapping: a write the writer records after it may be newer than the
 * versions that come back (see the stale CTE). */
static int
mark_fetch(sync_ctx *x, const mapping *m, err_t *e)
{
    x->fetched_at[0] = '\0';
    if (!m->read_write)
        return 0;
    PGresult *r = pg_query(x->pg, e, "SELECT clock_timestamp()::text", 0, NULL);
    if (!r)
        return sync_pg_failed(x, e);
    snprintf(x->fetched_at, sizeof x->fetched_at, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

/* A page callback (sfapi_query_each) and what it works with. */
typedef struct page_ctx {
    sync_ctx *x;
    mapping *m;
    const char *sql;
    int64_t *changed;
    bool deferred;          /* a poll page waits for the writer */
    int64_t staged, expect; /* a stage: rows in it so far, rows expected */
} page_ctx;

/* ---- helpers talking to Salesforce ----------------------------------------- */

/* SELECT COUNT() and the newest SystemModstamp (NULL when empty). */
static int
count_and_max(sync_ctx *x, const mapping *m, const char *where, int64_t *count, char **maxstamp,
              err_t *e)
{
    sb q = SB_INIT;
    sb_printf(&q, "SELECT COUNT() FROM %s", m->object);
    if (where)
        sb_printf(&q, " WHERE %s", where);
    json_t *page = NULL;
    int rc = sfapi_query(x->sf, sb_str(&q), false, 0, &page, e);
    sb_free(&q);
    if (rc != 0)
        return -1;
    *count = json_integer_value(json_object_get(page, "totalSize"));
    json_decref(page);
    err_t ce;
    /* The whole object's count: what `status` shows beside the table's rows. */
    if (!where && cat_sf_rows(x->pg, x->schema, m->object, *count, &ce) != 0)
        log_debug("%s: Salesforce's count not recorded: %s", m->object, ce.msg);
    if (!maxstamp)
        return 0;
    sb q2 = SB_INIT;
    sb_printf(&q2, "SELECT SystemModstamp FROM %s ORDER BY SystemModstamp DESC LIMIT 1", m->object);
    rc = sfapi_query(x->sf, sb_str(&q2), false, 0, &page, e);
    sb_free(&q2);
    if (rc != 0)
        return -1;
    json_t *rec = json_array_get(json_object_get(page, "records"), 0);
    const char *v = json_string_value(json_object_get(rec, "SystemModstamp"));
    int64_t ms;
    *maxstamp = NULL;
    if (v && util_parse_datetime(v, &ms) == 0) {
        char buf[32];
        util_fmt_datetime(ms, buf);
        /* "YYYY-MM-DDTHH:MM:SS.mmm+0000" -> keep the first 23 characters */
        buf[23] = '\0';
        *maxstamp = xstrdup(buf);
    }
    json_decref(page);
    return 0;
}

/* ---- initial load ----------------------------------------------------------- */

static int
load_start(sync_ctx *x, mapping *m, err_t *e)
{
    int64_t count = 0;
    char *maxstamp = NULL;
    if (count_and_max(x, m, NULL, &count, &maxstamp, e) != 0)
        return -1;
    char *job = NULL;
    if (count > x->cfg->bulk_threshold) {
        sb q = SB_INIT;
        apply_soql_select_all(&q, m, NULL);
        int rc = sfbulk_query_create(x->sf, sb_str(&q), false, &job, e);
        sb_free(&q);
        if (rc != 0) {
            free(maxstamp);
            return -1;
        }
    }
    /* The table is not emptied: what an app wrote into it meanwhile stays, and
     * the load's pages are upserts (REST) or go to the shadow (Bulk). */
    int rc = pg_exec(x->pg, e, "BEGIN");
    if (rc == 0 && job)
        rc = shadow_create(x->pg, x->schema, m, e);
    if (rc == 0) {
        cat_cols cols = {0};
        cat_cols_load_started(&cols, count, maxstamp, job);
        rc = fsm_fire(x->pg, x->schema, m, EV_LOAD_START, &cols, e);
    }
    if (rc == 0)
        rc = pg_exec(x->pg, e, "COMMIT");
    if (rc != 0) {
        sync_pg_failed(x, e);
        free(maxstamp);
        free(job);
        return -1;
    }
    log_info("%s: initial load of %lld records via %s", m->object, (long long)count,
             job ? "Bulk API 2.0" : "REST");
    m->load_total = count;
    m->load_done = 0;
    sync_replace(&m->load_wm, maxstamp);
    sync_replace(&m->load_job, job);
    sync_replace(&m->load_locator, NULL);
    free(maxstamp);
    free(job);
    return 0;
}

static int
load_page(void *ctx, json_t *recs, const char *next, err_t *e)
{
    page_ctx *p = ctx;
    /* An empty locator means "done" in the load position. */
    if (apply_page(p->x, p->sql, recs, p->m->object, next ? next : "", NULL, NULL, e) != 0)
        return -1;
    p->m->load_done += (int64_t)json_array_size(recs);
    counted(p->x, p->m, (int64_t)json_array_size(recs), -1);
    sync_replace(&p->m->load_locator, next ? next : "");
    sync_progress(p->x, p->m, p->m->load_done, p->m->load_total);
    return next && sync_stop_requested(p->x) ? sync_stopped(p->x, e) : 0;
}

static int
load_rest(sync_ctx *x, mapping *m, err_t *e)
{
    sync_progress(x, m, m->load_done, m->load_total); /* where it starts (a resumed load: midway) */
    sb q = SB_INIT;
    if (!m->load_locator)
        apply_soql_select_all(&q, m, NULL);
    char *resume = m->load_locator ? xstrdup(m->load_locator) : NULL;
    sfapi_query_spec qs = {.soql = sb_str(&q),
                           .batch_size = (int)x->cfg->rest_batch,
                           .resume_url = resume};
    char *sql = page_sql(x, m, APPLY_TAIL_LOAD);
    page_ctx p = {.x = x, .m = m, .sql = sql};
    int rc = sfapi_query_each(x->sf, &qs, load_page, &p, e);
    free(sql);
    free(resume);
    sb_free(&q);
    return rc;
}

/* Start the load over at the next attempt (a transient failure in e). */
static int
restart_load(sync_ctx *x, mapping *m, const char *why, err_t *e)
{
    log_warn("%s: %s; restarting the load", m->object, why);
    cat_cols cols = {0};
    cat_cols_load_restart(&cols);
    err_t re;
    /* Not recorded: the next attempt resumes, fails the same way and tries again. */
    if (fsm_fire(x->pg, x->schema, m, EV_LOAD_RESTART, &cols, &re) != 0)
        log_warn("%s: load restart not recorded: %s", m->object, re.msg);
    m->load_total = -1;
    err_class_set(e, ERR_TRANSIENT);
    return -1;
}

/* Move the shadow's rows into a table the swap may not replace, as pages
 * are applied (an app's pending rows and changes stay), and drop it. */
static int
move_shadow(sync_ctx *x, mapping *m, err_t *e)
{
    const map_field **f = apply_all_fields(m);
    sb src = SB_INIT, s = SB_INIT;
    sb_puts(&src, "SELECT ");
    apply_column_list(&src, f, m->nfields, NULL);
    sb_puts(&src, ", '" HC_SYNCED "', NULL FROM ");
    shadow_qname(&src, x->schema, m);
    apply_upsert_from(&s, x->schema, m, sb_str(&src), false);
    int rc = pg_exec(x->pg, e, sb_str(&s));
    if (rc == 0)
        rc = shadow_drop(x->pg, x->schema, m, e);
    sb_free(&s);
    sb_free(&src);
    free(f);
    return rc;
}

/* The load's last step, in one transaction with the state DATA_SYNCED: a
 * Bulk load's shadow takes the table's place (or its rows move in). */
static int
load_done(sync_ctx *x, mapping *m, err_t *e)
{
    bool swapped = false;
    int64_t t0 = util_mono_ms();
    if (m->load_job && shadow_index(x->pg, x->schema, m, e) != 0)
        return sync_pg_failed(x, e);
    int64_t t1 = util_mono_ms();
    int rc = pg_exec(x->pg, e, "BEGIN");
    if (rc == 0 && m->load_job) {
        rc = shadow_swap(x->pg, x->schema, m, &swapped, e);
        if (rc == 0 && !swapped) {
            log_info("%s: the table has rows or objects of its own; the load's rows move in",
                     m->object);
            rc = move_shadow(x, m, e);
        }
    }
    cat_cols cols = {0};
    cat_cols_load_finished(&cols, m->poll_seconds);
    if (rc == 0)
        rc = fsm_fire(x->pg, x->schema, m, EV_LOAD_DONE, &cols, e);
    if (rc == 0)
        rc = pg_exec(x->pg, e, "COMMIT");
    if (rc != 0) {
        pg_rollback_quietly(x->pg);
        return sync_pg_failed(x, e);
    }
    if (m->load_job)
        log_info("%s: the load's indexes built in %lld ms, its rows %s in %lld ms", m->object,
                 (long long)(t1 - t0), swapped ? "swapped" : "moved",
                 (long long)(util_mono_ms() - t1));
    return 0;
}

/* A Bulk load's pages (bulkload.c), once the job is complete and the
 * shadow still fits the mapping; one that does not (dropped behind our back,
 * or made before `mapping edit`) starts the load over. */
static int
load_bulk(sync_ctx *x, mapping *m, err_t *e)
{
    sync_progress(x, m, m->load_done, m->load_total); /* where it starts (a resumed load: midway) */
    long records = -1;
    if (sfbulk_query_wait(x->sf, m->load_job, 0, &records, e) != 0) /* resumed: complete already */
        return -1;
    /* The job's own count is the load's total from here on (a count taken
     * before the job may be short of what it found), and pages that hold
     * more records than it stop the load (bulkload.c). */
    if (records >= 0 && records != m->load_total) {
        if (cat_load_total(x->pg, x->schema, m->object, records, e) != 0)
            return sync_pg_failed(x, e);
        m->load_total = records;
    }
    shadow_fit fit;
    if (shadow_check(x->pg, x->schema, m, &fit, e) != 0)
        return sync_pg_failed(x, e);
    if (fit != SHADOW_FITS) {
        const char *why = fit == SHADOW_MISSING
                              ? "the load's shadow table is missing" /* its pages are gone */
                              : "the mapping's fields changed since the load began";
        err_set(e, 503, "LOAD_RESTARTED", "%s: %s", m->object, why);
        if (fit == SHADOW_STALE) /* its results lack the new fields: of no more use */
            sync_drop_job(x, m->load_job);
        return restart_load(x, m, why, e);
    }
    return bulkload_run(x, m, records, e);
}

static int
pull_load(sync_ctx *x, mapping *m, err_t *e)
{
    bool started = m->load_total >= 0 && m->state != MS_INITIAL;
    if (!started && load_start(x, m, e) != 0)
        return -1;
    bool finished = m->load_locator && !*m->load_locator;
    if (!finished) {
        int rc = m->load_job ? load_bulk(x, m, e) : load_rest(x, m, e);
        if (rc != 0) {
            /* A resume position Salesforce no longer knows: start over. */
            if (err_class_of(e) == ERR_PERMANENT && m->load_locator && *m->load_locator &&
                (strcmp(e->code, "INVALID_QUERY_LOCATOR") == 0 ||
                 strcmp(e->code, "NOT_FOUND") == 0 || strcmp(e->code, "INVALIDJOB") == 0))
                return restart_load(x, m, "load position lost", e);
            /* Pages beyond what the job returned: its results are of no use. */
            if (strcmp(e->code, "RESULTS_OVERFLOW") == 0) {
                log_error("%s", e->msg);
                return restart_load(x, m, "the job's result pages overflow it", e);
            }
            return -1;
        }
    }
    if (load_done(x, m, e) != 0)
        return -1;
    if (m->load_job)
        sync_drop_job(x, m->load_job);
    log_info("%s: initial load complete, %lld rows", m->object, (long long)m->load_done);
    m->loaded = true;
    sync_replace(&m->watermark, m->load_wm);
    sync_replace(&m->load_job, NULL);
    sync_replace(&m->load_locator, NULL);
    return 0;
}

/* ---- incremental poll ------------------------------------------------------- */

/* A read-write table with inserts whose outcome is not settled yet (sent, but
 * no answer): a pull now could take such a record for a new one and make a
 * second row, and the writer would then send it again. The pull waits until
 * the writer has settled them. (Inserts in flight are covered by the table
 * lock the writer holds while it sends them.) */
static int
unsettled_inserts(sync_ctx *x, const mapping *m, bool locked, bool *yes, err_t *e)
{
    *yes = false;
    if (!m->read_write)
        return 0;
    if (tlog_unsettled_inserts(x->pg, x->schema, m->table, locked, yes, e) != 0)
        return sync_pg_failed(x, e);
    return 0;
}

static int
poll_page(void *ctx, json_t *recs, const char *next, err_t *e)
{
    page_ctx *p = ctx;
    log_debug("%s: poll page of %zu records", p->m->object, json_array_size(recs));
    int64_t stale = 0;
    int ar = json_array_size(recs) ? apply_locked(p->x, p->m, p->sql, recs, p->changed, &stale, e)
                                   : 0;
    if (ar < 0)
        return -1;
    if (ar == 0 && stale)
        log_debug("%s: %lld polled versions not newer than sfbridge's own later writes left "
                  "alone",
                  p->m->object, (long long)stale);
    if (ar > 0) {
        /* The rest of this poll waits for the writer; the watermark stays. */
        p->deferred = true;
        return 1;
    }
    return next && sync_stop_requested(p->x) ? sync_stopped(p->x, e) : 0;
}

/* Now on Salesforce's clock (its earliest bound) minus the overlap, as a
 * datetime: a change stamped before it was committed by now, as far as the
 * overlap assumes. false when Salesforce's clock is not known yet. */
static bool
settled_before(sync_ctx *x, char out[40])
{
    int64_t lo, hi;
    if (!sfapi_clock_offset(x->sf, &lo, &hi))
        return false;
    util_fmt_datetime_z(util_now_ms() + lo - x->cfg->poll_overlap_ms, out);
    return true;
}

static int
pull_poll(sync_ctx *x, mapping *m, int64_t *applied, err_t *e)
{
    *applied = 0;
    bool wait = false;
    if (unsettled_inserts(x, m, false, &wait, e) != 0)
        return -1;
    if (wait) {
        log_debug("%s: poll deferred until the writer settles inserts with an unknown outcome",
                  m->object);
        return cat_poll_soon(x->pg, x->schema, m->object, e) == 0 ? 0 : sync_pg_failed(x, e);
    }
    /* The overlap before the watermark is read again for changes committed
     * late with an earlier stamp, until a poll has read it when no such
     * change can still come (overlap_settled); then only newer ones, so an
     * idle poll is one call that fetches nothing. */
    char where[80] = "";
    if (m->watermark) {
        char since[40];
        long overlap = m->overlap_settled ? 0 : x->cfg->poll_overlap_ms;
        if (apply_since_literal(m->watermark, overlap, since) != 0)
            return err_set(e, 500, "BAD_CATALOG", "%s: bad watermark '%s'", m->object,
                           m->watermark);
        snprintf(where, sizeof where, "SystemModstamp %s %s",
                 m->overlap_settled ? ">" : ">=", since);
    }
    sb q = SB_INIT;
    apply_soql_select_all(&q, m, where);
    sb_puts(&q, " ORDER BY SystemModstamp ASC");
    char *sql = page_sql(x, m, APPLY_TAIL_POLL);
    sfapi_query_spec qs = {.soql = sb_str(&q),
                           .all = apply_has_isdeleted(m),
                           .batch_size = (int)x->cfg->rest_batch};
    page_ctx pc = {.x = x, .m = m, .sql = sql, .changed = applied};
    char settled[40];
    bool known = settled_before(x, settled);
    int rc = mark_fetch(x, m, e);
    if (rc == 0)
        rc = sfapi_query_each(x->sf, &qs, poll_page, &pc, e);
    x->fetched_at[0] = '\0';
    sb_free(&q);
    free(sql);
    if (rc != 0)
        return -1;
    if (pc.deferred) /* the rest of this poll waits for the writer; the watermark stays */
        return cat_poll_soon(x->pg, x->schema, m->object, e) == 0 ? 0 : sync_pg_failed(x, e);
    cat_cols cols = {0};
    cat_cols_poll_finished(&cols, m->poll_seconds, known ? settled : NULL);
    char *wm = NULL;
    if (fsm_fire(x->pg, x->schema, m, EV_POLL_DONE, &cols, e) != 0 ||
        cat_watermark(x->pg, x->schema, m->object, &wm, e) !=
            0) /* the page statements advanced it */
        return sync_pg_failed(x, e);
    if (wm)
        sync_replace(&m->watermark, wm);
    free(wm);
    return 0;
}

/* ---- staging: fetch columns of every live record into a temp table ------- */

static int
stage_create(sync_ctx *x, const map_field *const *f, size_t n, err_t *e)
{
    sb s = SB_INIT;
    apply_stage_create_sql(&s, f, n);
    int rc = pg_exec(x->pg, e, sb_str(&s));
    sb_free(&s);
    return rc == 0 ? 0 : sync_pg_failed(x, e);
}

static void
stage_drop(sync_ctx *x)
{
    /* A temporary table: it goes with the session, and the next stage_create
     * drops it first, so a failure here costs nothing. */
    (void)pg_exec(x->pg, NULL, "DROP TABLE IF EXISTS " STAGE);
}

/* Rows staged: the progress shown, and a reload's recorded (between pages). */
static int
staged(sync_ctx *x, const mapping *m, int64_t done, int64_t total, err_t *e)
{
    sync_progress(x, m, done, total);
    if (x->reloading == m &&
        cat_reload_progress(x->pg, x->schema, m->object, done, total, NULL, e) != 0)
        return sync_pg_failed(x, e);
    return 0;
}

static int
stage_page(void *ctx, json_t *recs, const char *next, err_t *e)
{
    (void)next;
    page_ctx *p = ctx;
    if (json_array_size(recs) && apply_page(p->x, p->sql, recs, NULL, NULL, NULL, NULL, e) != 0)
        return -1;
    p->staged += (int64_t)json_array_size(recs);
    return staged(p->x, p->m, p->staged, p->expect, e);
}

/* The stage through a Bulk query job, its pages fetched as a load's are
 * (bulkload.c: side by side where the job lists them). */
static int
stage_bulk(sync_ctx *x, mapping *m, const map_field *const *f, size_t n, const char *soql, err_t *e)
{
    char *job = NULL;
    long recs = -1;
    if (sfbulk_query_create(x->sf, soql, false, &job, e) != 0 ||
        sfbulk_query_wait(x->sf, job, 0, &recs, e) != 0) {
        free(job);
        return -1;
    }
    bulkload_stage_spec st =
        {.job = job, .job_records = recs, .table = STAGE, .f = f, .nf = n, .staged = staged};
    int rc = bulkload_stage(x, m, &st, e);
    sync_drop_job(x, job);
    free(job);
    return rc;
}

/* Fill the stage with SELECT f FROM object [WHERE where], through Bulk when
 * more than the threshold is expected, else REST pages. Not resumable: the
 * caller starts over after a failure. */
static int
stage_fill(sync_ctx *x, mapping *m, const map_field *const *f, size_t n, const char *where,
           int64_t expect, err_t *e)
{
    if (stage_create(x, f, n, e) != 0)
        return -1;
    sb q = SB_INIT;
    apply_soql_select(&q, m, f, n, where);
    sync_progress(x, m, 0, expect);
    int rc;
    if (expect > x->cfg->bulk_threshold) {
        rc = stage_bulk(x, m, f, n, sb_str(&q), e);
    } else {
        sb ins = SB_INIT;
        apply_stage_insert_sql(&ins, f, n);
        sfapi_query_spec qs = {.soql = sb_str(&q), .batch_size = (int)x->cfg->rest_batch};
        page_ctx p = {.x = x, .m = m, .sql = sb_str(&ins), .expect = expect};
        rc = sfapi_query_each(x->sf, &qs, stage_page, &p, e);
        sb_free(&ins);
    }
    sb_free(&q);
    return rc;
}

/* ---- fetching records by id ---------------------------------------------------- */

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Query the records with the given ids (100 per query, each id once: a stream
 * backlog names a record once per change; deleted ones too when the mapping
 * has IsDeleted), every page to fn. */
static int
fetch_ids(sync_ctx *x, const mapping *m, const char *const *ids_in, size_t n_in, sfapi_page_fn fn,
          void *ctx, err_t *e)
{
    const char **ids = xcalloc(n_in + 1, sizeof *ids);
    memcpy(ids, ids_in, n_in * sizeof *ids);
    qsort(ids, n_in, sizeof *ids, cmp_str);
    size_t n = 0;
    for (size_t i = 0; i < n_in; i++)
        if (n == 0 || strcmp(ids[n - 1], ids[i]) != 0)
            ids[n++] = ids[i];
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i += 100) {
        sb where = SB_INIT, q = SB_INIT;
        apply_soql_ids(&where, ids + i, n - i < 100 ? n - i : 100);
        apply_soql_select_all(&q, m, sb_str(&where));
        sfapi_query_spec qs = {.soql = sb_str(&q), .all = apply_has_isdeleted(m)};
        rc = sfapi_query_each(x->sf, &qs, fn, ctx, e);
        sb_free(&where);
        sb_free(&q);
    }
    free(ids);
    return rc;
}

/* ---- drift detection --------------------------------------------------------- */

static int
refetch_page(void *ctx, json_t *recs, const char *next, err_t *e)
{
    (void)next;
    page_ctx *p = ctx;
    return json_array_size(recs)
               ? apply_page(p->x, p->sql, recs, p->m->object, NULL, p->changed, NULL, e)
               : 0;
}

/* Fetch the given records by Id and upsert them. */
static int
refetch(sync_ctx *x, mapping *m, PGresult *ids, int64_t *repaired, err_t *e)
{
    size_t n = (size_t)PQntuples(ids);
    const char **v = xcalloc(n + 1, sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = PQgetvalue(ids, (int)i, 0);
    char *sql = page_sql(x, m, APPLY_TAIL_NONE);
    page_ctx p = {.x = x, .m = m, .sql = sql, .changed = repaired};
    int rc = fetch_ids(x, m, v, n, refetch_page, &p, e);
    free(sql);
    free(v);
    return rc;
}

static int
pull_drift(sync_ctx *x, mapping *m, int64_t *repairs, err_t *e)
{
    *repairs = 0;
    if (!m->loaded)
        return 0;
    bool wait = false;
    if (unsettled_inserts(x, m, false, &wait, e) != 0)
        return -1;
    if (wait)
        return 0;
    const map_field *idf = cat_field(m, "Id"), *msf = cat_field(m, "SystemModstamp");
    const map_field *f[] = {idf, msf};
    int64_t count = 0;
    if (count_and_max(x, m, NULL, &count, NULL, e) != 0)
        return -1;
    if (stage_fill(x, m, f, 2, NULL, count, e) != 0)
        return -1;
    sb s = SB_INIT;
    /* Missing or stale here, and not newer than what the polls have covered. */
    sb_puts(&s, "SELECT s.sfid FROM " STAGE " s LEFT JOIN ");
    qtable(&s, x, m);
    sb_puts(&s, " t ON t.sfid = s.sfid WHERE (t.sfid IS NULL OR t.systemmodstamp IS DISTINCT FROM "
                "s.systemmodstamp");
    if (apply_has_isdeleted(m))
        sb_puts(&s, " OR t.isdeleted");
    sb_puts(&s, ") AND ($1::timestamp IS NULL OR s.systemmodstamp <= $1::timestamp)");
    const char *p[] = {m->watermark};
    PGresult *ids = pg_query(x->pg, e, sb_str(&s), 1, p);
    sb_free(&s);
    if (!ids)
        return sync_pg_failed(x, e);
    int rc = refetch(x, m, ids, repairs, e);
    PQclear(ids);
    if (rc != 0)
        return -1;
    /* Rows Salesforce no longer has (hard-deleted, or deletes the polls missed). */
    apply_gone_sql(&s, x->schema, m, m->tombstones && apply_has_isdeleted(m));
    PGresult *r = pg_query(x->pg, e, sb_str(&s), 1, p);
    sb_free(&s);
    if (!r)
        return sync_pg_failed(x, e);
    *repairs += atoll(PQcmdTuples(r));
    PQclear(r);
    stage_drop(x);
    if (*repairs)
        log_warn("%s: drift check repaired %lld rows", m->object, (long long)*repairs);
    return cat_drift_done(x->pg, x->schema, m->object, *repairs, e) == 0 ? 0 : sync_pg_failed(x, e);
}

/* ---- reload ------------------------------------------------------------------- */

static int
pull_reload(sync_ctx *x, mapping *m, err_t *e)
{
    int64_t count = 0;
    char *maxstamp = NULL;
    if (count_and_max(x, m, NULL, &count, &maxstamp, e) != 0)
        return -1;
    const map_field **f = apply_all_fields(m);
    m->load_total = count;
    const char *via = count > x->cfg->bulk_threshold ? "bulk" : "rest";
    int rc = cat_reload_progress(x->pg, x->schema, m->object, 0, count, via, e);
    if (rc == 0) {
        x->reloading = m;
        rc = stage_fill(x, m, f, m->nfields, NULL, count, e);
        x->reloading = NULL;
    } else {
        sync_pg_failed(x, e);
    }
    sb s = SB_INIT;
    if (rc == 0)
        rc = pg_exec(x->pg, e, "BEGIN") == 0 ? 0 : sync_pg_failed(x, e);
    if (rc == 0) {
        sb src = SB_INIT;
        sb_puts(&src, "SELECT ");
        apply_column_list(&src, f, m->nfields, NULL);
        sb_puts(&src, ", '" HC_SYNCED "', NULL FROM " STAGE);
        apply_upsert_from(&s, x->schema, m, sb_str(&src), false);
        sb_free(&src);
        rc = pg_exec(x->pg, e, sb_str(&s)) == 0 ? 0 : sync_pg_failed(x, e);
    }
    if (rc == 0) {
        sb_clear(&s);
        apply_gone_sql(&s, x->schema, m, false);
        const char *p[] = {maxstamp};
        rc = pg_run(x->pg, e, sb_str(&s), 1, p) == 0 ? 0 : sync_pg_failed(x, e);
    }
    if (rc == 0) {
        cat_cols cols = {0};
        cat_cols_reload_finished(&cols, maxstamp);
        rc = fsm_fire(x->pg, x->schema, m, EV_RELOAD_DONE, &cols, e);
    }
    if (rc == 0)
        rc = pg_exec(x->pg, e, "COMMIT") == 0 ? 0 : sync_pg_failed(x, e);
    stage_drop(x);
    sb_free(&s);
    free(f);
    if (rc == 0) {
        m->loaded = true;
        counted(x, m, count, -1);
        log_info("%s: reload complete, %lld records", m->object, (long long)count);
    }
    free(maxstamp);
    return rc;
}

/* ---- backfill of new columns --------------------------------------------------- */

/* Move the stage into the table, a batch at a time. */
static int
backfill_stage(sync_ctx *x, mapping *m, const map_field *const *f, size_t nf, err_t *e)
{
    sb s = SB_INIT;
    apply_backfill_sql(&s, x->schema, m, f, nf);
    int rc = 0;
    for (;;) {
        PGresult *r = pg_query(x->pg, e, sb_str(&s), 0, NULL);
        if (!r) {
            rc = sync_pg_failed(x, e);
            break;
        }
        PQclear(r);
        PGresult *left = pg_query(x->pg, e, "SELECT EXISTS (SELECT 1 FROM " STAGE ")", 0, NULL);
        if (!left) {
            rc = sync_pg_failed(x, e);
            break;
        }
        bool more = PQgetvalue(left, 0, 0)[0] == 't';
        PQclear(left);
        if (!more)
            break;
    }
    sb_free(&s);
    return rc;
}

static int
pull_backfill(sync_ctx *x, mapping *m, err_t *e)
{
    size_t n = m->resync ? json_array_size(m->resync) : 0;
    const map_field **f = xcalloc(n + 1, sizeof *f);
    size_t nf = 0;
    f[nf++] = cat_field(m, "Id");
    for (size_t i = 0; i < n; i++) {
        const map_field *mf = cat_field(m, json_string_value(json_array_get(m->resync, i)));
        if (mf && strcmp(mf->column, "sfid") != 0)
            f[nf++] = mf;
    }
    int rc = 0;
    if (nf > 1) {
        int64_t count = 0;
        rc = count_and_max(x, m, NULL, &count, NULL, e);
        if (rc == 0)
            rc = stage_fill(x, m, f, nf, NULL, count, e);
        if (rc == 0)
            rc = backfill_stage(x, m, f, nf, e);
        stage_drop(x);
    }
    free(f);
    if (rc != 0)
        return -1;
    cat_cols cols = {0};
    cat_cols_backfill_finished(&cols);
    if (fsm_fire(x->pg, x->schema, m, EV_BACKFILL_DONE, &cols, e) != 0)
        return sync_pg_failed(x, e);
    json_decref(m->resync);
    m->resync = NULL;
    log_info("%s: new columns backfilled", m->object);
    return 0;
}

/* ---- streaming ------------------------------------------------------------------- */

static int
collect_page(void *ctx, json_t *recs, const char *next, err_t *e)
{
    (void)next, (void)e;
    json_array_extend(ctx, recs);
    return 0;
}

#define DEFERRED "DEFERRED"

static int
deferred(const mapping *m, err_t *e)
{
    err_set(e, 503, DEFERRED, "%s: waiting for the writer to settle inserts", m->object);
    return err_class_set(e, ERR_TRANSIENT);
}

bool
sync_deferred(const err_t *e)
{
    return strcmp(e->code, DEFERRED) == 0;
}

/* Delete (or mark deleted) the records of DELETE events. */
static int
delete_ids(sync_ctx *x, const mapping *m, const char *const *deleted, size_t ndel, err_t *e)
{
    sb s = SB_INIT, d = SB_INIT;
    pg_text_array(&d, deleted, ndel);
    apply_delete_ids_sql(&s, x->schema, m);
    const char *p[] = {sb_str(&d)};
    int rc = pg_run(x->pg, e, sb_str(&s), 1, p) == 0 ? 0 : sync_pg_failed(x, e);
    sb_free(&s);
    sb_free(&d);
    return rc;
}

static int
pull_stream_apply(sync_ctx *x, mapping *m, const char *const *ids, size_t nids,
                  const char *const *deleted, size_t ndel, int64_t replay_id, int64_t lag_ms,
                  err_t *e)
{
    bool wait = false;
    if (unsettled_inserts(x, m, false, &wait, e) != 0)
        return -1;
    if (wait)
        return deferred(m, e);
    /* Fetch first (no transaction open while waiting on the network). */
    json_t *all = json_array();
    int rc = mark_fetch(x, m, e);
    if (rc == 0)
        rc = fetch_ids(x, m, ids, nids, collect_page, all, e);
    if (rc == 0 && begin_page(x, m, &wait, e) != 0)
        rc = -1;
    if (rc == 0 && wait)
        rc = deferred(m, e);
    if (rc == 0 && json_array_size(all)) {
        char *sql = page_sql(x, m, APPLY_TAIL_NONE);
        int64_t stale = 0;
        rc = apply_page(x, sql, all, m->object, NULL, NULL, &stale, e);
        if (rc == 0 && stale)
            log_debug("%s: %lld streamed versions not newer than sfbridge's own later writes "
                      "left alone",
                      m->object, (long long)stale);
        free(sql);
    }
    if (rc == 0 && ndel)
        rc = delete_ids(x, m, deleted, ndel, e);
    if (rc == 0) {
        if (cat_stream_applied(x->pg, x->schema, m->object, replay_id, lag_ms,
                               (int64_t)(nids + ndel), e) != 0)
            rc = sync_pg_failed(x, e);
    }
    if (rc == 0)
        rc = pg_exec(x->pg, e, "COMMIT") == 0 ? 0 : sync_pg_failed(x, e);
    else
        pg_rollback_quietly(x->pg);
    if (rc == 0)
        counted(x, m, (int64_t)(nids + ndel), lag_ms);
    x->fetched_at[0] = '\0';
    json_decref(all);
    return rc;
}

/* ---- the public calls: the class of a failure in e ------------------------------ */

int
sync_load(sync_ctx *x, mapping *m, err_t *e)
{
    return outcome(pull_load(x, m, e), e);
}

int
sync_poll(sync_ctx *x, mapping *m, int64_t *applied, err_t *e)
{
    int rc = outcome(pull_poll(x, m, applied, e), e);
    if (rc == 0)
        counted(x, m, *applied, -1);
    return rc;
}

int
sync_drift(sync_ctx *x, mapping *m, int64_t *repairs, err_t *e)
{
    int rc = outcome(pull_drift(x, m, repairs, e), e);
    if (rc == 0)
        counted(x, m, *repairs, -1);
    return rc;
}

int
sync_reload(sync_ctx *x, mapping *m, err_t *e)
{
    return outcome(pull_reload(x, m, e), e);
}

int
sync_backfill(sync_ctx *x, mapping *m, err_t *e)
{
    return outcome(pull_backfill(x, m, e), e);
}

int
sync_stream_apply(sync_ctx *x, mapping *m, const char *const *ids, size_t nids,
                  const char *const *deleted, size_t ndel, int64_t replay_id, int64_t lag_ms,
                  err_t *e)
{
    return outcome(pull_stream_apply(x, m, ids, nids, deleted, ndel, replay_id, lag_ms, e), e);
}
