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
 *     transaction with the locator of the next page.
 */
#include "sync.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pg.h"
#include "sb.h"
#include "tlog.h"
#include "util.h"

#define STAGE "pg_temp._sfb_stage"

/* ---- failure helpers ------------------------------------------------------ */

static int
sf_fail(sync_ctx *x, err_t *e)
{
    (void)e;
    x->fail = sfapi_last_class(x->sf);
    if (x->fail == SFAPI_OK)
        x->fail = SFAPI_PERMANENT;
    return -1;
}

static int
pg_failed(sync_ctx *x, err_t *e)
{
    pg_rollback_quietly(x->pg);
    /* A lost connection or a lock given up (to an app's transaction) is worth
     * retrying; a refused statement is not. */
    x->fail = pg_transient(x->pg, e) ? SFAPI_TRANSIENT : SFAPI_PERMANENT;
    return -1;
}

static int
stopped(sync_ctx *x, err_t *e)
{
    x->fail = SFAPI_TRANSIENT;
    return err_set(e, 503, "STOPPED", "stopped by a signal");
}

/* ---- SQL and SOQL text ---------------------------------------------------- */

static bool
is_datetime(const map_field *f)
{
    return strcmp(f->sftype, "datetime") == 0;
}

static bool
is_time(const map_field *f)
{
    return strcmp(f->sftype, "time") == 0;
}

static const map_field *
field_by_column(const mapping *m, const char *col)
{
    for (size_t i = 0; i < m->nfields; i++)
        if (strcmp(m->fields[i].column, col) == 0)
            return &m->fields[i];
    return NULL;
}

static bool
has_isdeleted(const mapping *m)
{
    return field_by_column(m, "isdeleted") != NULL;
}

static void
qtable(sb *out, const sync_ctx *x, const mapping *m)
{
    pg_qname(out, x->schema, m->table);
}

static void
soql_select(sb *out, const mapping *m, const map_field *const *f, size_t n, const char *where)
{
    sb_puts(out, "SELECT ");
    for (size_t i = 0; i < n; i++) {
        if (i)
            sb_puts(out, ", ");
        sb_puts(out, f[i]->name);
    }
    sb_printf(out, " FROM %s", m->object);
    if (where && *where)
        sb_printf(out, " WHERE %s", where);
}

/* "School__r" of a relationship field "School__r.External_Id__c" (len 0 for others). */
static size_t
rel_len(const map_field *f)
{
    const char *dot = strchr(f->name, '.');
    return dot ? (size_t)(dot - f->name) : 0;
}

/* jsonb_to_recordset($1::jsonb) AS x("Id" varchar(18), ...). A relationship
 * field arrives as a nested object ("School__r": {"External_Id__c": ...}),
 * declared once as jsonb. */
static void
recordset(sb *out, const map_field *const *f, size_t n)
{
    sb_puts(out, "jsonb_to_recordset($1::jsonb) AS x(");
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        size_t rl = rel_len(f[i]);
        if (rl) {
            bool seen = false;
            for (size_t j = 0; j < i; j++)
                seen = seen || (rel_len(f[j]) == rl && strncmp(f[j]->name, f[i]->name, rl) == 0);
            if (seen)
                continue;
            char rel[256];
            snprintf(rel, sizeof rel, "%.*s", (int)rl, f[i]->name);
            sb_puts(out, first ? "" : ", ");
            sb_sql_ident(out, rel);
            sb_puts(out, " jsonb");
            first = false;
            continue;
        }
        sb_puts(out, first ? "" : ", ");
        first = false;
        sb_sql_ident(out, f[i]->name);
        sb_printf(out, " %s", is_datetime(f[i]) ? "timestamptz" : is_time(f[i]) ? "text" : f[i]->pgtype);
    }
    sb_putc(out, ')');
}

/* The value of one JSON field as its column type. */
static void
value_expr(sb *out, const map_field *f)
{
    size_t rl = rel_len(f);
    if (rl) {
        char rel[256];
        snprintf(rel, sizeof rel, "%.*s", (int)rl, f->name);
        sb_puts(out, "(x.");
        sb_sql_ident(out, rel);
        sb_puts(out, " ->> ");
        sb_putc(out, '\'');
        for (const char *p = f->name + rl + 1; *p; p++) {
            if (*p == '\'')
                sb_putc(out, '\'');
            sb_putc(out, *p);
        }
        sb_printf(out, "')::%s", f->pgtype);
        return;
    }
    if (is_datetime(f)) {
        sb_puts(out, "(x.");
        sb_sql_ident(out, f->name);
        sb_puts(out, " AT TIME ZONE 'UTC')");
    } else if (is_time(f)) {
        sb_puts(out, "rtrim(x.");
        sb_sql_ident(out, f->name);
        sb_puts(out, ", 'Z')::time");
    } else {
        sb_puts(out, "x.");
        sb_sql_ident(out, f->name);
    }
}

static void
column_list(sb *out, const map_field *const *f, size_t n, const char *prefix)
{
    for (size_t i = 0; i < n; i++) {
        if (i)
            sb_puts(out, ", ");
        if (prefix)
            sb_puts(out, prefix);
        sb_sql_ident(out, f[i]->column);
    }
}

static const map_field **
all_fields(const mapping *m)
{
    const map_field **f = xcalloc(m->nfields ? m->nfields : 1, sizeof *f);
    for (size_t i = 0; i < m->nfields; i++)
        f[i] = &m->fields[i];
    return f;
}

/* INSERT ... ON CONFLICT (sfid) DO UPDATE from a row source named `src` with
 * the mapping's columns, changing a row only when Salesforce's copy is at
 * least as new and differs. */
static void
sql_literal(sb *out, const char *s)
{
    sb_putc(out, '\'');
    for (; *s; s++) {
        if (*s == '\'')
            sb_putc(out, '\'');
        sb_putc(out, *s);
    }
    sb_putc(out, '\'');
}

static void
upsert_from(sb *out, const sync_ctx *x, const mapping *m, const char *select_src, bool with_conf)
{
    const map_field **f = all_fields(m);
    sb_puts(out, "INSERT INTO ");
    qtable(out, x, m);
    sb_puts(out, " AS t (");
    column_list(out, f, m->nfields, NULL);
    sb_puts(out, ", \"_hc_lastop\", \"_hc_err\") ");
    sb_puts(out, select_src);
    sb_puts(out, " ON CONFLICT (\"sfid\") DO UPDATE SET ");
    for (size_t i = 0; i < m->nfields; i++) {
        sb_sql_ident(out, f[i]->column);
        sb_puts(out, " = excluded.");
        sb_sql_ident(out, f[i]->column);
        sb_puts(out, ", ");
    }
    /* A row whose own change has not reached Salesforce yet is left alone:
     * the change comes back with the next poll once it is written. */
    sb_puts(out, "\"_hc_lastop\" = 'SYNCED', \"_hc_err\" = NULL WHERE ");
    if (m->read_write)
        sb_printf(out, "(t.\"_hc_lastop\" IS DISTINCT FROM 'PENDING'%s) AND ",
                  with_conf ? " OR EXISTS (SELECT 1 FROM conf WHERE conf.sfid = t.sfid AND conf.winner = 'salesforce')" : "");
    sb_puts(out, "(t.\"systemmodstamp\" IS NULL OR "
                 "excluded.\"systemmodstamp\" IS NULL OR t.\"systemmodstamp\" <= excluded.\"systemmodstamp\") AND (");
    column_list(out, f, m->nfields, "t.");
    sb_puts(out, ") IS DISTINCT FROM (");
    column_list(out, f, m->nfields, "excluded.");
    sb_puts(out, ")");
    free(f);
}

typedef enum { TAIL_NONE, TAIL_POLL, TAIL_LOAD } apply_tail;

/* One statement applying a page of JSON records ($1) to the table:
 * deletions, upserts, and the bookkeeping (TAIL_POLL: watermark from the
 * page; TAIL_LOAD: load position $3 and count). $2 is the object name.
 * Returns (deleted, upserted, page max SystemModstamp). */
static char *
apply_sql(const sync_ctx *x, const mapping *m, apply_tail tail)
{
    const map_field **f = all_fields(m);
    bool isdel = has_isdeleted(m);
    sb s = SB_INIT, src = SB_INIT;
    sb_puts(&s, "WITH src AS (SELECT * FROM ");
    recordset(&s, f, m->nfields);
    sb_puts(&s, ")");
    if (m->read_write) {
        /* Changed on both sides since the last sync: the row's own change is
         * still waiting to be written. The policy picks the winner; every
         * conflict is recorded in _sfbridge_conflicts. */
        sb lt = SB_INIT, lp = SB_INIT, qc = SB_INIT;
        sql_literal(&lt, m->table);
        sql_literal(&lp, x->cfg->conflict_policy);
        pg_qname(&qc, x->schema, "_sfbridge_conflicts");
        const char *T = sb_str(&lt), *P = sb_str(&lp), *C = sb_str(&qc);
        sb_printf(&s, ", conf AS (SELECT x.\"Id\" AS sfid, t.id AS rid, (x.\"SystemModstamp\" AT TIME ZONE 'UTC') AS sfstamp,"
                      " to_jsonb(x) AS sfv, to_jsonb(t) AS pgv, p.changed_at,"
                      " CASE %s WHEN 'salesforce_wins' THEN 'salesforce' WHEN 'postgres_wins' THEN 'postgres'"
                      "  ELSE CASE WHEN x.\"SystemModstamp\" > p.changed_at THEN 'salesforce' ELSE 'postgres' END END AS winner"
                      " FROM src x JOIN ", P);
        qtable(&s, x, m);
        sb_puts(&s, " t ON t.sfid = x.\"Id\" CROSS JOIN LATERAL ");
        tlog_sql_pending_change(&s, x->schema, T, "t.id", "p");
        sb_puts(&s, " WHERE p.changed_at IS NOT NULL AND t.\"_hc_lastop\" = 'PENDING'"
                    " AND t.systemmodstamp IS DISTINCT FROM (x.\"SystemModstamp\" AT TIME ZONE 'UTC')");
        /* Salesforce's version is sfbridge's own earlier write: not a conflict. */
        tlog_sql_not_own_write(&s, x->schema, T, "t.id", "x.\"SystemModstamp\"");
        sb_puts(&s, "),");
        sb_printf(&s, " rec AS (INSERT INTO %s (table_name, sfid, sf_systemmodstamp, pg_changed_at, winner, policy,"
                      " sf_values, pg_values) SELECT %s, sfid, sfstamp, changed_at, winner, %s, sfv, pgv FROM conf"
                      " ON CONFLICT DO NOTHING RETURNING 1),", C, T, P);
        sb_puts(&s, " ign AS (");
        tlog_sql_ignore_conflicts(&s, x->schema, T, P);
        sb_puts(&s, ")");
        sb_free(&lt);
        sb_free(&lp);
        sb_free(&qc);
    }
    if (isdel && !m->tombstones) {
        sb_puts(&s, ", del AS (DELETE FROM ");
        qtable(&s, x, m);
        sb_puts(&s, " t USING src WHERE src.\"IsDeleted\" AND t.\"sfid\" = src.\"Id\" RETURNING 1)");
    }
    sb_puts(&src, "SELECT ");
    for (size_t i = 0; i < m->nfields; i++) {
        value_expr(&src, f[i]);
        sb_puts(&src, ", ");
    }
    sb_puts(&src, "'SYNCED', NULL FROM src x");
    if (isdel && !m->tombstones)
        sb_puts(&src, " WHERE NOT coalesce(x.\"IsDeleted\", false)");
    sb_puts(&s, ", up AS (");
    upsert_from(&s, x, m, sb_str(&src), m->read_write);
    sb_puts(&s, " RETURNING 1)");
    sb_puts(&s, ", mx AS (SELECT max(\"SystemModstamp\" AT TIME ZONE 'UTC') AS v FROM src)");
    if (tail == TAIL_POLL)
        cat_sql_poll_page(&s, x->schema, "(SELECT v FROM mx)",
                          isdel && !m->tombstones ? "(SELECT count(*) FROM up) + (SELECT count(*) FROM del)"
                                                  : "(SELECT count(*) FROM up)");
    else if (tail == TAIL_LOAD)
        cat_sql_load_page(&s, x->schema, "(SELECT count(*) FROM src)");
    sb_printf(&s, " SELECT (SELECT %s), (SELECT count(*) FROM up), "
                  "(SELECT to_char(v, 'YYYY-MM-DD\"T\"HH24:MI:SS.MS') FROM mx)%s",
              isdel && !m->tombstones ? "count(*) FROM del" : "0", tail != TAIL_NONE ? ", (SELECT count(*) FROM wm)" : "");
    sb_free(&src);
    free(f);
    return sb_steal(&s);
}

/* Run an apply statement on a page's records. */
static int
apply_page(sync_ctx *x, const char *sql, json_t *records, const char *object, const char *locator,
           int64_t *changed, err_t *e)
{
    char *body = json_dumps(records, JSON_COMPACT);
    if (!body)
        return err_set(e, 502, "BAD_RESPONSE", "a page of records could not be encoded");
    const char *p[] = {body, object, locator};
    int np = locator ? 3 : (strstr(sql, "$2") ? 2 : 1);
    PGresult *r = pg_query(x->pg, e, sql, np, p);
    free(body);
    if (!r)
        return pg_failed(x, e);
    if (changed)
        *changed += atoll(PQgetvalue(r, 0, 0)) + atoll(PQgetvalue(r, 0, 1));
    PQclear(r);
    return 0;
}

/* A poll page for a read-write mapping waits while the writer has inserts in
 * flight for the table, so it never sees a new record before its sfid is
 * written back into the row (which would make a duplicate row). */
static int unsettled_inserts(sync_ctx *x, const mapping *m, bool *yes, err_t *e);

/* 1 when the page must wait (see unsettled_inserts): nothing applied. */
static int
apply_locked(sync_ctx *x, const mapping *m, const char *sql, json_t *recs, int64_t *changed, err_t *e)
{
    if (!m->read_write)
        return apply_page(x, sql, recs, m->object, NULL, changed, e);
    sb k = SB_INIT;
    sb_printf(&k, "%s.%s", x->schema, m->table);
    const char *p[] = {sb_str(&k)};
    int rc = pg_exec(x->pg, e, "BEGIN");
    /* Apps write these rows in transactions of their own: rather than wait for
     * a row lock (and maybe deadlock with an app, which Postgres might resolve
     * by failing the app's transaction), give up quickly; the page is applied
     * again by the next attempt. */
    if (rc == 0)
        rc = pg_run(x->pg, e, "SELECT pg_advisory_xact_lock(4242003, hashtext($1))", 1, p);
    if (rc == 0)
        rc = pg_exec(x->pg, e, "SET LOCAL lock_timeout = '200ms'");
    sb_free(&k);
    if (rc != 0)
        return pg_failed(x, e);
    /* Checked under the lock: the writer may have lost an insert's answer while we waited. */
    bool wait = false;
    if (unsettled_inserts(x, m, &wait, e) != 0)
        return -1;
    if (wait) {
        pg_rollback_quietly(x->pg);
        return 1;
    }
    if (apply_page(x, sql, recs, m->object, NULL, changed, e) != 0)
        return -1;
    return pg_exec(x->pg, e, "COMMIT") == 0 ? 0 : pg_failed(x, e);
}

static json_t *
page_records(json_t *page, err_t *e)
{
    json_t *recs = json_object_get(page, "records");
    if (!json_is_array(recs)) {
        err_set(e, 502, "BAD_RESPONSE", "query reply has no records array");
        return NULL;
    }
    return recs;
}

static const char *
page_next(json_t *page)
{
    if (json_is_true(json_object_get(page, "done")))
        return NULL;
    return json_string_value(json_object_get(page, "nextRecordsUrl"));
}

static void
progress(sync_ctx *x, const mapping *m, int64_t done, int64_t total)
{
    if (x->progress)
        x->progress(x->progress_ctx, m, done, total);
}

/* ---- Bulk CSV into COPY --------------------------------------------------- */

typedef struct copy_sink {
    sync_ctx   *x;
    const mapping *m;
    const map_field *const *f;
    size_t      nf;
    bool        header_done;
    sb          header;
    int64_t     lines;     /* newlines seen: rows, for progress only */
    int64_t     base_done; /* rows committed before this page */
    int64_t     last_ms;
} copy_sink;

/* Check the CSV header names the columns we asked for, in order. */
static int
check_header(copy_sink *k, err_t *e)
{
    const char *p = sb_str(&k->header);
    size_t i = 0;
    while (*p && *p != '\r' && *p != '\n') {
        char name[256];
        size_t n = 0;
        bool q = *p == '"';
        if (q)
            p++;
        while (*p && (q ? *p != '"' : (*p != ',' && *p != '\r' && *p != '\n')) && n < sizeof name - 1)
            name[n++] = *p++;
        name[n] = '\0';
        if (q && *p == '"')
            p++;
        if (i >= k->nf || !util_streq_ci(name, k->f[i]->name))
            return err_set(e, 502, "BAD_RESPONSE", "Bulk results column %zu is '%s', expected '%s'", i + 1,
                           name, i < k->nf ? k->f[i]->name : "(none)");
        i++;
        if (*p == ',')
            p++;
    }
    if (i != k->nf)
        return err_set(e, 502, "BAD_RESPONSE", "Bulk results have %zu columns, expected %zu", i, k->nf);
    return 0;
}

static int
copy_sink_fn(void *ctx, const char *data, size_t len, err_t *e)
{
    copy_sink *k = ctx;
    if (k->x->stop && *k->x->stop)
        return err_set(e, 503, "STOPPED", "stopped by a signal");
    if (!k->header_done) {
        const char *nl = memchr(data, '\n', len);
        size_t take = nl ? (size_t)(nl - data) + 1 : len;
        if (k->header.len + take > 65536)
            return err_set(e, 502, "BAD_RESPONSE", "Bulk results header line too long");
        sb_append(&k->header, data, take);
        if (!nl)
            return 0;
        k->header_done = true;
        if (check_header(k, e) != 0)
            return -1;
        data += take;
        len -= take;
    }
    for (size_t i = 0; i < len; i++)
        if (data[i] == '\n')
            k->lines++;
    if (len && pg_copy_put(k->x->pg, data, len, e) != 0)
        return -1;
    int64_t now = util_mono_ms();
    if (now - k->last_ms >= 200) {
        k->last_ms = now;
        progress(k->x, k->m, k->base_done + k->lines, k->m->load_total);
    }
    return 0;
}

static void
copy_sql(sb *out, const char *target, const map_field *const *f, size_t n)
{
    sb_printf(out, "COPY %s (", target);
    column_list(out, f, n, NULL);
    sb_puts(out, ") FROM STDIN WITH (FORMAT csv, FORCE_NULL (");
    column_list(out, f, n, NULL);
    sb_puts(out, "))");
}

/* Fetch one Bulk results page into COPY target. The caller owns the
 * transaction. *next gets the next locator (NULL at the end). */
static int
bulk_page_to_copy(sync_ctx *x, const mapping *m, const char *job, const char *locator, const char *target,
                  const map_field *const *f, size_t nf, int64_t base_done, char **next, int64_t *rows,
                  err_t *e)
{
    sb sql = SB_INIT;
    copy_sql(&sql, target, f, nf);
    int rc = pg_copy_begin(x->pg, sb_str(&sql), e);
    sb_free(&sql);
    if (rc != 0)
        return pg_failed(x, e);
    copy_sink k = {.x = x, .m = m, .f = f, .nf = nf, .base_done = base_done, .last_ms = util_mono_ms()};
    long nrec = 0;
    rc = sfapi_bulk_query_results(x->sf, job, locator, x->cfg->bulk_page, copy_sink_fn, &k, next, &nrec, e);
    sb_free(&k.header);
    if (rc != 0) {
        pg_copy_end(x->pg, "Bulk results page failed", NULL);
        pg_rollback_quietly(x->pg);
        if (x->stop && *x->stop)
            return stopped(x, e);
        return sf_fail(x, e);
    }
    if (pg_copy_end(x->pg, NULL, e) != 0) {
        free(*next);
        *next = NULL;
        return pg_failed(x, e);
    }
    *rows = nrec;
    return 0;
}

/* ---- helpers talking to Salesforce ----------------------------------------- */

/* SELECT COUNT() and the newest SystemModstamp (NULL when empty). */
static int
count_and_max(sync_ctx *x, const mapping *m, const char *where, int64_t *count, char **maxstamp, err_t *e)
{
    sb q = SB_INIT;
    sb_printf(&q, "SELECT COUNT() FROM %s", m->object);
    if (where)
        sb_printf(&q, " WHERE %s", where);
    json_t *page = NULL;
    int rc = sfapi_query(x->sf, sb_str(&q), false, 0, &page, e);
    sb_free(&q);
    if (rc != 0)
        return sf_fail(x, e);
    *count = json_integer_value(json_object_get(page, "totalSize"));
    json_decref(page);
    if (!maxstamp)
        return 0;
    sb q2 = SB_INIT;
    sb_printf(&q2, "SELECT SystemModstamp FROM %s ORDER BY SystemModstamp DESC LIMIT 1", m->object);
    rc = sfapi_query(x->sf, sb_str(&q2), false, 0, &page, e);
    sb_free(&q2);
    if (rc != 0)
        return sf_fail(x, e);
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

static void
replace(char **slot, const char *v)
{
    free(*slot);
    *slot = v ? xstrdup(v) : NULL;
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
        const map_field **f = all_fields(m);
        sb q = SB_INIT;
        soql_select(&q, m, f, m->nfields, NULL);
        free(f);
        int rc = sfapi_bulk_query_create(x->sf, sb_str(&q), false, &job, e);
        sb_free(&q);
        if (rc != 0) {
            free(maxstamp);
            return sf_fail(x, e);
        }
    }
    sb s = SB_INIT;
    sb_puts(&s, "BEGIN; TRUNCATE ");
    qtable(&s, x, m);
    sb_puts(&s, " RESTART IDENTITY");
    int rc = pg_exec(x->pg, e, sb_str(&s));
    sb_free(&s);
    if (rc == 0) {
        cat_cols cols = {0};
        cat_cols_load_started(&cols, count, maxstamp, job);
        rc = fsm_fire(x->pg, x->schema, m, EV_LOAD_START, &cols, e);
    }
    if (rc == 0)
        rc = pg_exec(x->pg, e, "COMMIT");
    if (rc != 0) {
        pg_failed(x, e);
        free(maxstamp);
        free(job);
        return -1;
    }
    log_info("%s: initial load of %lld records via %s", m->object, (long long)count, job ? "Bulk API 2.0" : "REST");
    m->load_total = count;
    m->load_done = 0;
    replace(&m->load_wm, maxstamp);
    replace(&m->load_job, job);
    replace(&m->load_locator, NULL);
    free(maxstamp);
    free(job);
    return 0;
}

static int
load_rest(sync_ctx *x, mapping *m, err_t *e)
{
    char *sql = apply_sql(x, m, TAIL_LOAD);
    json_t *page = NULL;
    int rc;
    if (!m->load_locator) {
        const map_field **f = all_fields(m);
        sb q = SB_INIT;
        soql_select(&q, m, f, m->nfields, NULL);
        free(f);
        rc = sfapi_query(x->sf, sb_str(&q), false, (int)x->cfg->rest_batch, &page, e);
        sb_free(&q);
    } else {
        rc = sfapi_query_more(x->sf, m->load_locator, &page, e);
    }
    while (rc == 0) {
        json_t *recs = page_records(page, e);
        if (!recs) {
            x->fail = SFAPI_PERMANENT;
            rc = -1;
            break;
        }
        const char *next = page_next(page);
        /* An empty locator means "done" in the load position. */
        if (apply_page(x, sql, recs, m->object, next ? next : "", NULL, e) != 0) {
            rc = -1;
            break;
        }
        m->load_done += (int64_t)json_array_size(recs);
        replace(&m->load_locator, next ? next : "");
        progress(x, m, m->load_done, m->load_total);
        if (!next)
            break;
        if (x->stop && *x->stop) {
            rc = stopped(x, e);
            break;
        }
        char *nexturl = xstrdup(next);
        json_decref(page);
        page = NULL;
        rc = sfapi_query_more(x->sf, nexturl, &page, e);
        free(nexturl);
        if (rc != 0)
            sf_fail(x, e);
    }
    if (rc != 0 && x->fail == SFAPI_OK)
        sf_fail(x, e);
    json_decref(page);
    free(sql);
    return rc;
}

static int
load_bulk(sync_ctx *x, mapping *m, err_t *e)
{
    long records = 0;
    if (!m->load_locator && sfapi_bulk_query_wait(x->sf, m->load_job, 0, &records, e) != 0)
        return sf_fail(x, e);
    const map_field **f = all_fields(m);
    sb target = SB_INIT;
    qtable(&target, x, m);
    int rc = 0;
    for (;;) {
        if (x->stop && *x->stop) {
            rc = stopped(x, e);
            break;
        }
        if (pg_exec(x->pg, e, "BEGIN") != 0) {
            rc = pg_failed(x, e);
            break;
        }
        char *next = NULL;
        int64_t rows = 0;
        const char *loc = m->load_locator && *m->load_locator ? m->load_locator : NULL;
        if (bulk_page_to_copy(x, m, m->load_job, loc, sb_str(&target), f, m->nfields, m->load_done, &next,
                              &rows, e) != 0) {
            rc = -1;
            break;
        }
        if (cat_load_progress(x->pg, x->schema, m->object, next ? next : "", rows, e) != 0 ||
            pg_exec(x->pg, e, "COMMIT") != 0) {
            free(next);
            rc = pg_failed(x, e);
            break;
        }
        m->load_done += rows;
        replace(&m->load_locator, next ? next : "");
        progress(x, m, m->load_done, m->load_total);
        free(next);
        if (!*m->load_locator)
            break;
    }
    sb_free(&target);
    free(f);
    return rc;
}

int
sync_load(sync_ctx *x, mapping *m, err_t *e)
{
    x->fail = SFAPI_OK;
    bool started = m->load_total >= 0 && m->state != MS_INITIAL;
    if (!started && load_start(x, m, e) != 0)
        return -1;
    bool finished = m->load_locator && !*m->load_locator;
    if (!finished) {
        int rc = m->load_job ? load_bulk(x, m, e) : load_rest(x, m, e);
        if (rc != 0) {
            /* A resume position Salesforce no longer knows: start over. */
            if (x->fail == SFAPI_PERMANENT && m->load_locator && *m->load_locator &&
                (strcmp(e->code, "INVALID_QUERY_LOCATOR") == 0 || strcmp(e->code, "NOT_FOUND") == 0 ||
                 strcmp(e->code, "INVALIDJOB") == 0)) {
                log_warn("%s: load position lost (%s); restarting the load", m->object, e->code);
                cat_cols cols = {0};
                cat_cols_load_restart(&cols);
                err_t re;
                /* Not recorded: the next attempt resumes, fails the same way and tries again. */
                if (fsm_fire(x->pg, x->schema, m, EV_LOAD_RESTART, &cols, &re) != 0)
                    log_warn("%s: load restart not recorded: %s", m->object, re.msg);
                m->load_total = -1;
                x->fail = SFAPI_TRANSIENT;
            }
            return -1;
        }
    }
    cat_cols cols = {0};
    cat_cols_load_finished(&cols, m->poll_seconds);
    if (fsm_fire(x->pg, x->schema, m, EV_LOAD_DONE, &cols, e) != 0)
        return pg_failed(x, e);
    if (m->load_job) {
        err_t ignore;
        sfapi_bulk_query_delete(x->sf, m->load_job, &ignore);
    }
    log_info("%s: initial load complete, %lld rows", m->object, (long long)m->load_done);
    m->loaded = true;
    replace(&m->watermark, m->load_wm);
    replace(&m->load_job, NULL);
    replace(&m->load_locator, NULL);
    return 0;
}

/* ---- incremental poll ------------------------------------------------------- */

/* watermark - overlap as a SOQL datetime literal. */
static int
since_literal(const sync_ctx *x, const char *watermark, char out[40])
{
    sb s = SB_INIT;
    sb_printf(&s, "%sZ", watermark);
    int64_t ms;
    int rc = util_parse_datetime(sb_str(&s), &ms);
    sb_free(&s);
    if (rc != 0)
        return -1;
    ms -= x->cfg->poll_overlap_ms;
    char buf[32];
    util_fmt_datetime_z(ms, buf);
    snprintf(out, 40, "%s", buf);
    return 0;
}

/* A read-write table with inserts whose outcome is not settled yet (sent, but
 * no answer): a pull now could take such a record for a new one and make a
 * second row, and the writer would then send it again. The pull waits until
 * the writer has settled them. (Inserts in flight are covered by the table
 * lock the writer holds while it sends them.) */
static int
unsettled_inserts(sync_ctx *x, const mapping *m, bool *yes, err_t *e)
{
    *yes = false;
    if (!m->read_write)
        return 0;
    if (tlog_unsettled_inserts(x->pg, x->schema, m->table, yes, e) != 0)
        return pg_failed(x, e);
    return 0;
}

int
sync_poll(sync_ctx *x, mapping *m, int64_t *applied, err_t *e)
{
    x->fail = SFAPI_OK;
    *applied = 0;
    bool wait = false;
    if (unsettled_inserts(x, m, &wait, e) != 0)
        return -1;
    if (wait) {
        log_debug("%s: poll deferred until the writer settles inserts with an unknown outcome", m->object);
        return cat_poll_soon(x->pg, x->schema, m->object, e) == 0 ? 0 : pg_failed(x, e);
    }
    char where[80] = "";
    if (m->watermark) {
        char since[40];
        if (since_literal(x, m->watermark, since) != 0) {
            x->fail = SFAPI_PERMANENT;
            return err_set(e, 500, "BAD_CATALOG", "%s: bad watermark '%s'", m->object, m->watermark);
        }
        snprintf(where, sizeof where, "SystemModstamp >= %s", since);
    }
    const map_field **f = all_fields(m);
    sb q = SB_INIT;
    soql_select(&q, m, f, m->nfields, where);
    sb_puts(&q, " ORDER BY SystemModstamp ASC");
    free(f);
    char *sql = apply_sql(x, m, TAIL_POLL);
    json_t *page = NULL;
    int rc = sfapi_query(x->sf, sb_str(&q), has_isdeleted(m), (int)x->cfg->rest_batch, &page, e);
    sb_free(&q);
    if (rc != 0)
        sf_fail(x, e);
    while (rc == 0) {
        json_t *recs = page_records(page, e);
        if (!recs) {
            x->fail = SFAPI_PERMANENT;
            rc = -1;
            break;
        }
        log_debug("%s: poll page of %zu records", m->object, json_array_size(recs));
        int ar = json_array_size(recs) ? apply_locked(x, m, sql, recs, applied, e) : 0;
        if (ar < 0) {
            rc = -1;
            break;
        }
        if (ar > 0) {
            /* The rest of this poll waits for the writer; the watermark stays. */
            json_decref(page);
            free(sql);
            return cat_poll_soon(x->pg, x->schema, m->object, e) == 0 ? 0 : pg_failed(x, e);
        }
        const char *next = page_next(page);
        if (!next)
            break;
        if (x->stop && *x->stop) {
            rc = stopped(x, e);
            break;
        }
        char *nexturl = xstrdup(next);
        json_decref(page);
        page = NULL;
        rc = sfapi_query_more(x->sf, nexturl, &page, e);
        free(nexturl);
        if (rc != 0)
            sf_fail(x, e);
    }
    json_decref(page);
    free(sql);
    if (rc != 0)
        return -1;
    cat_cols cols = {0};
    cat_cols_poll_finished(&cols, m->poll_seconds);
    char *wm = NULL;
    if (fsm_fire(x->pg, x->schema, m, EV_POLL_DONE, &cols, e) != 0 ||
        cat_watermark(x->pg, x->schema, m->object, &wm, e) != 0) /* the page statements advanced it */
        return pg_failed(x, e);
    if (wm)
        replace(&m->watermark, wm);
    free(wm);
    return 0;
}

/* ---- staging: fetch columns of every live record into a temp table ------- */

static int
stage_create(sync_ctx *x, const map_field *const *f, size_t n, err_t *e)
{
    sb s = SB_INIT;
    sb_puts(&s, "DROP TABLE IF EXISTS " STAGE "; CREATE TEMP TABLE _sfb_stage (");
    for (size_t i = 0; i < n; i++) {
        if (i)
            sb_puts(&s, ", ");
        sb_sql_ident(&s, f[i]->column);
        sb_printf(&s, " %s", f[i]->pgtype);
    }
    sb_puts(&s, ")");
    int rc = pg_exec(x->pg, e, sb_str(&s));
    sb_free(&s);
    return rc == 0 ? 0 : pg_failed(x, e);
}

/* Fill the stage with SELECT f FROM object [WHERE where], through Bulk when
 * more than the threshold is expected, else REST pages. Not resumable: the
 * caller starts over after a failure. */
static int
stage_fill(sync_ctx *x, mapping *m, const map_field *const *f, size_t n, const char *where, int64_t expect,
           err_t *e)
{
    if (stage_create(x, f, n, e) != 0)
        return -1;
    sb q = SB_INIT;
    soql_select(&q, m, f, n, where);
    int rc = 0;
    if (expect > x->cfg->bulk_threshold) {
        char *job = NULL;
        long recs = 0;
        if (sfapi_bulk_query_create(x->sf, sb_str(&q), false, &job, e) != 0 ||
            sfapi_bulk_query_wait(x->sf, job, 0, &recs, e) != 0) {
            sb_free(&q);
            free(job);
            return sf_fail(x, e);
        }
        char *loc = NULL;
        int64_t done = 0;
        for (;;) {
            if (x->stop && *x->stop) {
                rc = stopped(x, e);
                break;
            }
            char *next = NULL;
            int64_t rows = 0;
            if (bulk_page_to_copy(x, m, job, loc, STAGE, f, n, done, &next, &rows, e) != 0) {
                rc = -1;
                break;
            }
            done += rows;
            free(loc);
            loc = next;
            if (!loc)
                break;
        }
        free(loc);
        err_t ignore;
        sfapi_bulk_query_delete(x->sf, job, &ignore);
        free(job);
    } else {
        sb ins = SB_INIT;
        sb_puts(&ins, "INSERT INTO " STAGE " (");
        column_list(&ins, f, n, NULL);
        sb_puts(&ins, ") SELECT ");
        for (size_t i = 0; i < n; i++) {
            if (i)
                sb_puts(&ins, ", ");
            value_expr(&ins, f[i]);
        }
        sb_puts(&ins, " FROM ");
        recordset(&ins, f, n);
        json_t *page = NULL;
        rc = sfapi_query(x->sf, sb_str(&q), false, (int)x->cfg->rest_batch, &page, e);
        if (rc != 0)
            sf_fail(x, e);
        while (rc == 0) {
            json_t *recs = page_records(page, e);
            if (!recs) {
                x->fail = SFAPI_PERMANENT;
                rc = -1;
                break;
            }
            if (json_array_size(recs) && apply_page(x, sb_str(&ins), recs, NULL, NULL, NULL, e) != 0) {
                rc = -1;
                break;
            }
            const char *next = page_next(page);
            if (!next)
                break;
            char *nexturl = xstrdup(next);
            json_decref(page);
            page = NULL;
            rc = sfapi_query_more(x->sf, nexturl, &page, e);
            free(nexturl);
            if (rc != 0)
                sf_fail(x, e);
        }
        json_decref(page);
        sb_free(&ins);
    }
    sb_free(&q);
    return rc;
}

/* ---- drift detection --------------------------------------------------------- */

/* Fetch the given records by Id (chunks of 100) and upsert them. */
static int
refetch(sync_ctx *x, mapping *m, PGresult *ids, int64_t *repaired, err_t *e)
{
    const map_field **f = all_fields(m);
    char *sql = apply_sql(x, m, TAIL_NONE);
    int rc = 0;
    int n = PQntuples(ids);
    for (int i = 0; rc == 0 && i < n; i += 100) {
        sb where = SB_INIT, q = SB_INIT;
        sb_puts(&where, "Id IN (");
        for (int j = i; j < n && j < i + 100; j++) {
            if (j > i)
                sb_putc(&where, ',');
            sb_putc(&where, '\'');
            sfapi_soql_escape(&where, PQgetvalue(ids, j, 0));
            sb_putc(&where, '\'');
        }
        sb_putc(&where, ')');
        soql_select(&q, m, f, m->nfields, sb_str(&where));
        json_t *page = NULL;
        rc = sfapi_query(x->sf, sb_str(&q), has_isdeleted(m), 0, &page, e);
        if (rc != 0) {
            sf_fail(x, e);
        } else {
            json_t *recs = page_records(page, e);
            if (!recs) {
                x->fail = SFAPI_PERMANENT;
                rc = -1;
            } else if (json_array_size(recs)) {
                rc = apply_page(x, sql, recs, m->object, NULL, repaired, e);
            }
        }
        json_decref(page);
        sb_free(&where);
        sb_free(&q);
    }
    free(sql);
    free(f);
    return rc;
}

int
sync_drift(sync_ctx *x, mapping *m, int64_t *repairs, err_t *e)
{
    x->fail = SFAPI_OK;
    *repairs = 0;
    bool wait = false;
    if (!m->loaded || unsettled_inserts(x, m, &wait, e) != 0 || wait)
        return x->fail == SFAPI_OK ? 0 : -1;
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
    sb_puts(&s, " t ON t.sfid = s.sfid WHERE (t.sfid IS NULL OR t.systemmodstamp IS DISTINCT FROM s.systemmodstamp");
    if (has_isdeleted(m))
        sb_puts(&s, " OR t.isdeleted");
    sb_puts(&s, ") AND ($1::timestamp IS NULL OR s.systemmodstamp <= $1::timestamp)");
    const char *p[] = {m->watermark};
    PGresult *ids = pg_query(x->pg, e, sb_str(&s), 1, p);
    sb_free(&s);
    if (!ids)
        return pg_failed(x, e);
    int rc = refetch(x, m, ids, repairs, e);
    PQclear(ids);
    if (rc != 0)
        return -1;
    /* Rows Salesforce no longer has (hard-deleted, or deletes the polls missed). */
    sb_puts(&s, m->tombstones && has_isdeleted(m) ? "UPDATE " : "DELETE FROM ");
    qtable(&s, x, m);
    sb_puts(&s, m->tombstones && has_isdeleted(m) ? " t SET isdeleted = true, \"_hc_lastop\" = 'SYNCED' WHERE NOT t.isdeleted AND"
                                                  : " t WHERE");
    sb_puts(&s, " t.sfid IS NOT NULL AND ($1::timestamp IS NULL OR t.systemmodstamp <= $1::timestamp)"
                " AND NOT EXISTS (SELECT 1 FROM " STAGE " s WHERE s.sfid = t.sfid)");
    PGresult *r = pg_query(x->pg, e, sb_str(&s), 1, p);
    sb_free(&s);
    if (!r)
        return pg_failed(x, e);
    *repairs += atoll(PQcmdTuples(r));
    PQclear(r);
    pg_exec(x->pg, NULL, "DROP TABLE IF EXISTS " STAGE);
    if (*repairs)
        log_warn("%s: drift check repaired %lld rows", m->object, (long long)*repairs);
    return cat_drift_done(x->pg, x->schema, m->object, *repairs, e) == 0 ? 0 : pg_failed(x, e);
}

/* ---- reload ------------------------------------------------------------------- */

int
sync_reload(sync_ctx *x, mapping *m, err_t *e)
{
    x->fail = SFAPI_OK;
    int64_t count = 0;
    char *maxstamp = NULL;
    if (count_and_max(x, m, NULL, &count, &maxstamp, e) != 0)
        return -1;
    const map_field **f = all_fields(m);
    m->load_total = count;
    int rc = stage_fill(x, m, f, m->nfields, NULL, count, e);
    sb s = SB_INIT;
    if (rc == 0)
        rc = pg_exec(x->pg, e, "BEGIN");
    if (rc == 0) {
        sb src = SB_INIT;
        sb_puts(&src, "SELECT ");
        column_list(&src, f, m->nfields, NULL);
        sb_puts(&src, ", 'SYNCED', NULL FROM " STAGE);
        upsert_from(&s, x, m, sb_str(&src), false);
        sb_free(&src);
        rc = pg_exec(x->pg, e, sb_str(&s));
    }
    if (rc == 0) {
        sb_clear(&s);
        sb_puts(&s, "DELETE FROM ");
        qtable(&s, x, m);
        sb_puts(&s, " t WHERE t.sfid IS NOT NULL AND ($1::timestamp IS NULL OR t.systemmodstamp <= $1::timestamp)"
                    " AND NOT EXISTS (SELECT 1 FROM " STAGE " s WHERE s.sfid = t.sfid)");
        const char *p[] = {maxstamp};
        rc = pg_run(x->pg, e, sb_str(&s), 1, p);
    }
    if (rc == 0) {
        cat_cols cols = {0};
        cat_cols_reload_finished(&cols, maxstamp);
        rc = fsm_fire(x->pg, x->schema, m, EV_RELOAD_DONE, &cols, e);
    }
    if (rc == 0)
        rc = pg_exec(x->pg, e, "COMMIT");
    if (rc != 0 && x->fail == SFAPI_OK)
        pg_failed(x, e);
    pg_exec(x->pg, NULL, "DROP TABLE IF EXISTS " STAGE);
    sb_free(&s);
    free(f);
    if (rc == 0) {
        m->loaded = true;
        log_info("%s: reload complete, %lld records", m->object, (long long)count);
    }
    free(maxstamp);
    return rc;
}

/* ---- backfill of new columns --------------------------------------------------- */

int
sync_backfill(sync_ctx *x, mapping *m, err_t *e)
{
    x->fail = SFAPI_OK;
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
        /* Update in batches so no transaction holds many row locks for long. */
        sb s = SB_INIT;
        sb_puts(&s, "WITH b AS (DELETE FROM " STAGE " WHERE ctid IN (SELECT ctid FROM " STAGE
                    " LIMIT 5000) RETURNING *) UPDATE ");
        qtable(&s, x, m);
        sb_puts(&s, " t SET ");
        for (size_t i = 1; i < nf; i++) {
            if (i > 1)
                sb_puts(&s, ", ");
            sb_sql_ident(&s, f[i]->column);
            sb_puts(&s, " = b.");
            sb_sql_ident(&s, f[i]->column);
        }
        sb_puts(&s, " FROM b WHERE t.sfid = b.sfid");
        while (rc == 0) {
            PGresult *r = pg_query(x->pg, e, sb_str(&s), 0, NULL);
            if (!r) {
                rc = pg_failed(x, e);
                break;
            }
            PQclear(r);
            PGresult *left = pg_query(x->pg, e, "SELECT EXISTS (SELECT 1 FROM " STAGE ")", 0, NULL);
            if (!left) {
                rc = pg_failed(x, e);
                break;
            }
            bool more = PQgetvalue(left, 0, 0)[0] == 't';
            PQclear(left);
            if (!more)
                break;
        }
        sb_free(&s);
        pg_exec(x->pg, NULL, "DROP TABLE IF EXISTS " STAGE);
    }
    free(f);
    if (rc != 0)
        return -1;
    cat_cols cols = {0};
    cat_cols_backfill_finished(&cols);
    if (fsm_fire(x->pg, x->schema, m, EV_BACKFILL_DONE, &cols, e) != 0)
        return pg_failed(x, e);
    json_decref(m->resync);
    m->resync = NULL;
    log_info("%s: new columns backfilled", m->object);
    return 0;
}

/* ---- streaming ------------------------------------------------------------------- */

int
sync_stream_apply(sync_ctx *x, mapping *m, const char *const *ids, size_t nids, const char *const *deleted,
                  size_t ndel, int64_t replay_id, int64_t lag_ms, err_t *e)
{
    x->fail = SFAPI_OK;
    bool wait = false;
    if (unsettled_inserts(x, m, &wait, e) != 0)
        return -1;
    if (wait) {
        x->fail = SFAPI_TRANSIENT;
        return err_set(e, 503, "DEFERRED", "%s: waiting for the writer to settle inserts", m->object);
    }
    /* Fetch first (no transaction open while waiting on the network). */
    json_t *all = json_array();
    const map_field **f = all_fields(m);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < nids; i += 100) {
        sb where = SB_INIT, q = SB_INIT;
        sb_puts(&where, "Id IN (");
        for (size_t j = i; j < nids && j < i + 100; j++) {
            sb_puts(&where, j > i ? ",'" : "'");
            sfapi_soql_escape(&where, ids[j]);
            sb_putc(&where, '\'');
        }
        sb_putc(&where, ')');
        soql_select(&q, m, f, m->nfields, sb_str(&where));
        json_t *page = NULL;
        rc = sfapi_query(x->sf, sb_str(&q), has_isdeleted(m), 0, &page, e);
        if (rc != 0) {
            sf_fail(x, e);
        } else {
            json_t *recs = page_records(page, e);
            if (!recs) {
                x->fail = SFAPI_PERMANENT;
                rc = -1;
            } else {
                json_array_extend(all, recs);
            }
        }
        json_decref(page);
        sb_free(&where);
        sb_free(&q);
    }
    free(f);
    sb k = SB_INIT, s = SB_INIT, d = SB_INIT;
    if (rc == 0)
        rc = pg_exec(x->pg, e, "BEGIN") == 0 ? 0 : pg_failed(x, e);
    if (rc == 0 && m->read_write) {
        sb_printf(&k, "%s.%s", x->schema, m->table);
        const char *p[] = {sb_str(&k)};
        if (pg_run(x->pg, e, "SELECT pg_advisory_xact_lock(4242003, hashtext($1))", 1, p) != 0)
            rc = pg_failed(x, e);
    }
    /* As in apply_locked: never wait long for an app's row lock. */
    if (rc == 0 && pg_exec(x->pg, e, "SET LOCAL lock_timeout = '200ms'") != 0)
        rc = pg_failed(x, e);
    if (rc == 0 && m->read_write) {
        bool again = false;
        if (unsettled_inserts(x, m, &again, e) != 0) {
            rc = -1;
        } else if (again) {
            x->fail = SFAPI_TRANSIENT;
            rc = err_set(e, 503, "DEFERRED", "%s: waiting for the writer to settle inserts", m->object);
        }
    }
    if (rc == 0 && json_array_size(all)) {
        char *sql = apply_sql(x, m, TAIL_NONE);
        rc = apply_page(x, sql, all, m->object, NULL, NULL, e);
        free(sql);
    }
    if (rc == 0 && ndel) {
        const char **dd = xcalloc(ndel, sizeof *dd);
        for (size_t i = 0; i < ndel; i++)
            dd[i] = deleted[i];
        sb_putc(&d, '{');
        for (size_t i = 0; i < ndel; i++) {
            sb_puts(&d, i ? ",\"" : "\"");
            for (const char *c = dd[i]; *c; c++)
                if (*c != '"' && *c != '\\')
                    sb_putc(&d, *c);
            sb_putc(&d, '"');
        }
        sb_putc(&d, '}');
        free(dd);
        bool tomb = m->tombstones && has_isdeleted(m);
        sb_puts(&s, tomb ? "UPDATE " : "DELETE FROM ");
        qtable(&s, x, m);
        sb_puts(&s, tomb ? " SET isdeleted = true WHERE NOT isdeleted AND sfid = ANY($1::text[])"
                         : " WHERE sfid = ANY($1::text[])");
        const char *p[] = {sb_str(&d)};
        if (pg_run(x->pg, e, sb_str(&s), 1, p) != 0)
            rc = pg_failed(x, e);
    }
    if (rc == 0) {
        if (cat_stream_applied(x->pg, x->schema, m->object, replay_id, lag_ms, (int64_t)(nids + ndel), e) != 0)
            rc = pg_failed(x, e);
    }
    if (rc == 0)
        rc = pg_exec(x->pg, e, "COMMIT") == 0 ? 0 : pg_failed(x, e);
    else
        pg_rollback_quietly(x->pg);
    if (rc != 0 && x->fail == SFAPI_OK)
        x->fail = SFAPI_TRANSIENT;
    sb_free(&k);
    sb_free(&s);
    sb_free(&d);
    json_decref(all);
    return rc;
}
