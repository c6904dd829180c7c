/*
 * bquery: Bulk query jobs: creation (the SOQL is compiled at once), the worker's
 * count, and result pages streamed as CSV from an open statement; a page read
 * to its end parks its statement, positioned at the next page.
 */
#include "bquery.h"

#include <math.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "bstream.h"
#include "ctx.h"
#include "log.h"
#include "util.h"

/* ----- query jobs -------------------------------------------------------- */

void
bulk_query_create(http_req *req, http_resp *resp)
{
    lf_server *srv = ctx_of(req);
    store *st = srv->st;
    job j;
    json_t *body = jobs_create_body(req, resp, &j, K_QUERY);
    if (body == NULL)
        return;
    const char *op, *q;
    if (jobs_opt_string(body, "operation", &op, resp) || jobs_opt_string(body, "query", &q, resp) ||
        jobs_csv_options(body, &j, resp))
        goto out;
    if (op == NULL || jobs_op_parse(op, &j.op) != 0 || jobs_ops[j.op].kind != K_QUERY) {
        http_errorf(resp, 400, "INVALIDJOB",
                    "Invalid operation: %.100s. A query job's operation is query or queryAll",
                    op ? op : "null");
        goto out;
    }
    if (q == NULL || *q == '\0') {
        http_errorf(resp, 400, "INVALIDJOB", "A query job needs a query");
        goto out;
    }
    err_t e;
    soql_plan *plan = NULL;
    int rc = -1;
    store_lock(st);
    if (soql_compile(store_schema(st), q, j.op == OP_QUERY_ALL, util_now_ms(), &plan, &e) != 0) {
        /* bad SOQL: the REST query error */
    } else if (plan->count_only) {
        err_set(&e, 400, "API_ERROR", "Aggregate queries are not supported by the Bulk API: %s",
                "COUNT() cannot be used in a Bulk query");
    } else if (plan->offset > 0) {
        err_set(&e, 400, "API_ERROR", "The OFFSET clause is not supported by the Bulk API");
    } else {
        j.object = xstrdup(plan->object->name);
        j.query = xstrdup(q);
        j.state = JS_UPLOAD_COMPLETE;
        jobs_new(srv->bulk, req, &j);
        rc = jobs_insert(st, &j, &e);
    }
    soql_plan_free(plan);
    store_unlock(st);
    if (rc != 0) {
        http_error(resp, &e);
        goto out;
    }
    jobs_answer(resp, 200, &j, INFO_BRIEF);
    jobs_kick(srv->bulk);
out:
    jobs_clear(&j);
    json_decref(body);
}

/* Run a query job (worker). */
void
bq_run(lf_bulk *b, const char *id)
{
    store *st = b->st;
    err_t e;
    job j;
    store_lock(st);
    if (jobs_load(st, id, &j, &e) != 0) {
        store_unlock(st);
        return;
    }
    int64_t t0 = util_mono_ms();
    if (j.state == JS_UPLOAD_COMPLETE)
        jobs_set_state(st, &j, JS_IN_PROGRESS, NULL, &e);
    store_unlock(st);
    if (j.state != JS_IN_PROGRESS) {
        jobs_clear(&j);
        return;
    }
    /* Count the rows: that fixes the job's size. (The lock was released so that
     * a client can see InProgress, and abort.) */
    store_lock(st);
    jstate now_state = j.state;
    job cur;
    if (jobs_load(st, id, &cur, &e) == 0) {
        now_state = cur.state;
        jobs_clear(&cur);
    } else {
        now_state = JS_ABORTED; /* deleted meanwhile */
    }
    if (now_state == JS_IN_PROGRESS) {
        soql_plan *plan = NULL;
        int64_t n = -1;
        const char *fail_msg = NULL;
        if (soql_compile(store_schema(st), j.query, j.op == OP_QUERY_ALL, j.created, &plan, &e) !=
            0) {
            fail_msg = e.msg;
        } else {
            sqlite3_stmt *s = jobs_prep(st, plan->count_sql, &e);
            if (s) {
                (void)soql_bind(s, plan);
                if (sqlite3_step(s) == SQLITE_ROW)
                    n = sqlite3_column_int64(s, 0);
                else
                    jobs_db_fail(st, &e, "count");
                sqlite3_finalize(s);
            }
            if (n < 0)
                fail_msg = e.msg;
        }
        soql_plan_free(plan);
        sqlite3_stmt *u = jobs_prep(st,
                                    "UPDATE _lf_bulk_jobs SET processed = ?2, total_ms = ?3 "
                                    "WHERE id = ?1",
                                    &e);
        if (u) {
            sqlite3_bind_text(u, 1, j.id, -1, SQLITE_STATIC);
            sqlite3_bind_int64(u, 2, n < 0 ? 0 : n);
            sqlite3_bind_int64(u, 3, util_mono_ms() - t0);
            sqlite3_step(u);
            sqlite3_finalize(u);
        }
        if (fail_msg) {
            char msg[ERR_MSG_MAX];
            snprintf(msg, sizeof msg, "%s", fail_msg);
            jobs_set_state(st, &j, JS_FAILED, msg, &e);
        } else {
            jobs_set_state(st, &j, JS_JOB_COMPLETE, NULL, &e);
        }
    }
    store_unlock(st);
    jobs_clear(&j);
}

/* ----- query results: parked statements ---------------------------------- */

void
bq_cursor_free(qcursor *c)
{
    if (c == NULL)
        return;
    if (c->stmt)
        sqlite3_finalize(c->stmt);
    soql_plan_free(c->plan);
    free(c);
}

/* Store lock held. */
static qcursor *
park_take(lf_bulk *b, const char *job_id, int64_t pos)
{
    for (qcursor **pp = &b->parked; *pp; pp = &(*pp)->next) {
        qcursor *c = *pp;
        if (c->pos == pos && strcmp(c->job, job_id) == 0) {
            *pp = c->next;
            b->nparked--;
            c->next = NULL;
            return c;
        }
    }
    return NULL;
}

/* Drop parked statements idle too long, or of job_id (NULL: none). Store lock held. */
void
bq_park_expire(lf_bulk *b, const char *job_id)
{
    int64_t now = util_mono_ms();
    for (qcursor **pp = &b->parked; *pp;) {
        qcursor *c = *pp;
        if (now - c->last_used > PARK_IDLE_MS || (job_id && strcmp(c->job, job_id) == 0)) {
            *pp = c->next;
            b->nparked--;
            bq_cursor_free(c);
        } else {
            pp = &c->next;
        }
    }
}

/* Store lock held. */
static void
park_put(lf_bulk *b, qcursor *c)
{
    bq_park_expire(b, NULL);
    while (b->nparked >= PARK_MAX) {
        qcursor **oldest = &b->parked;
        for (qcursor **pp = &b->parked; *pp; pp = &(*pp)->next)
            if ((*pp)->last_used < (*oldest)->last_used)
                oldest = pp;
        qcursor *o = *oldest;
        *oldest = o->next;
        b->nparked--;
        bq_cursor_free(o);
    }
    c->last_used = util_mono_ms();
    c->next = b->parked;
    b->parked = c;
    b->nparked++;
}

/* A fresh statement for the job's query, stepped past pos rows. Store lock held. */
static qcursor *
qcursor_open(store *st, const job *j, int64_t pos)
{
    err_t e;
    qcursor *c = xcalloc(1, sizeof *c);
    snprintf(c->job, sizeof c->job, "%s", j->id);
    if (soql_compile(store_schema(st), j->query, j->op == OP_QUERY_ALL, j->created, &c->plan, &e) !=
        0) {
        log_error("bulk: job %s: the query no longer compiles: %s", j->id, e.msg);
        bq_cursor_free(c);
        return NULL;
    }
    if ((c->stmt = jobs_prep(st, c->plan->sql, &e)) == NULL) {
        bq_cursor_free(c);
        return NULL;
    }
    (void)soql_bind(c->stmt, c->plan);
    while (c->pos < pos) {
        int rc = sqlite3_step(c->stmt);
        if (rc != SQLITE_ROW) {
            if (rc != SQLITE_DONE)
                log_error("bulk: job %s: skipping to row %lld: %s", j->id, (long long)pos,
                          sqlite3_errmsg(store_db(st)));
            break;
        }
        c->pos++;
    }
    return c;
}

/* ----- query results: CSV values ----------------------------------------- */

static char *
put2(char *o, unsigned v)
{
    o[0] = (char)('0' + v / 10 % 10);
    o[1] = (char)('0' + v % 10);
    return o + 2;
}

/* "2024-01-02T03:04:05.000Z" (24 bytes) at o, as Bulk CSV writes datetimes. */
static void
put_datetime_z(char *o, int64_t ms)
{
    int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    unsigned msec = (unsigned)(ms - secs * 1000);
    int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    unsigned sod = (unsigned)(secs - days * 86400);
    int y, m, d;
    util_civil_from_days(days, &y, &m, &d);
    unsigned yy = y < 0 ? 0 : y > 9999 ? 9999 : (unsigned)y;
    o = put2(o, yy / 100);
    o = put2(o, yy % 100);
    *o++ = '-';
    o = put2(o, (unsigned)m);
    *o++ = '-';
    o = put2(o, (unsigned)d);
    *o++ = 'T';
    o = put2(o, sod / 3600);
    *o++ = ':';
    o = put2(o, sod / 60 % 60);
    *o++ = ':';
    o = put2(o, sod % 60);
    *o++ = '.';
    *o++ = (char)('0' + msec / 100);
    o = put2(o, msec % 100);
    *o = 'Z';
}

/* A double as sb_json_double writes it ("12.5", "10.0"), without printf and
 * strtod for the common case of a few decimals; the rest goes to
 * sb_json_double. The fast path gives the same text: r / 10^k is correctly
 * rounded, so when it equals v the k-decimal string reads back as v, and the
 * first such k is the shortest; with at most 15 significant digits and
 * |v| >= 1e-4, "%.15g" prints exactly these digits. */
static void
put_double(sb *out, double v)
{
    static const double p10[] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6};
    double a = fabs(v);
    if (isfinite(v) && a < 1e15 && (a >= 1e-4 || (v == 0 && !signbit(v)))) {
        for (int k = 0; k <= 6; k++) {
            double r = round(a * p10[k]);
            if (r >= 1e15)
                break;
            if (r / p10[k] != a)
                continue;
            uint64_t u = (uint64_t)r;
            uint64_t ip = u, fp = 0;
            for (int i = 0; i < k; i++)
                ip /= 10;
            fp = u - ip * (uint64_t)p10[k];
            char tmp[48];
            char *o = tmp + sizeof tmp;
            int digits = k ? k : 1; /* whole numbers get ".0" */
            for (int i = 0; i < digits; i++) {
                *--o = (char)('0' + fp % 10);
                fp /= 10;
            }
            *--o = '.';
            do {
                *--o = (char)('0' + ip % 10);
                ip /= 10;
            } while (ip);
            if (signbit(v))
                *--o = '-';
            sb_append(out, o, (size_t)(tmp + sizeof tmp - o));
            return;
        }
    }
    sb_json_double(out, v);
}

/* One value of the current row as a quoted CSV field. */
static void
put_value(sb *out, const lf_field *f, sqlite3_stmt *s, int col)
{
    int t = sqlite3_column_type(s, col);
    if (t == SQLITE_NULL) {
        sb_append(out, "\"\"", 2);
        return;
    }
    switch (lf_types[f->type].storage) {
    case ST_TEXT:
    case ST_DATE: {
        const char *v = (const char *)sqlite3_column_text(s, col);
        int n = sqlite3_column_bytes(s, col);
        csv_put(out, v ? v : "", v && n > 0 ? (size_t)n : 0);
        break;
    }
    case ST_INT:
        sb_putc(out, '"');
        sb_put_i64(out, sqlite3_column_int64(s, col));
        sb_putc(out, '"');
        break;
    case ST_REAL:
        sb_putc(out, '"');
        put_double(out, sqlite3_column_double(s, col));
        sb_putc(out, '"');
        break;
    case ST_BOOL:
        if (sqlite3_column_int64(s, col))
            sb_append(out, "\"true\"", 6);
        else
            sb_append(out, "\"false\"", 7);
        break;
    case ST_DATETIME:
        sb_reserve(out, 26);
        out->buf[out->len] = '"';
        put_datetime_z(out->buf + out->len + 1, sqlite3_column_int64(s, col));
        out->buf[out->len + 25] = '"';
        out->len += 26;
        out->buf[out->len] = '\0';
        break;
    }
}

/* The dotted name of a selected column: "Teacher__r.School__r.Name". */
static void
put_col_name(sb *out, const soql_plan *p, const soql_col *c)
{
    const char *names[16];
    int n = 0;
    for (int r = c->rel; r >= 0 && n < 16; r = p->rels[r].parent)
        names[n++] = p->rels[r].name;
    sb name = SB_INIT;
    while (n > 0) {
        sb_puts(&name, names[--n]);
        sb_putc(&name, '.');
    }
    sb_puts(&name, c->field->name);
    csv_put(out, name.buf, name.len);
    sb_free(&name);
}

/* ----- query results: the stream ---------------------------------------- */

typedef struct qstream {
    bstream bs; /* first: the stream reads through it */
    lf_bulk *b;
    job j;             /* a copy of the job */
    qcursor *cur;      /* owned while streaming */
    int64_t offset;    /* the page's first row */
    int64_t written;   /* rows written so far */
    int64_t remaining; /* rows still to write */
    char eol[3];
    bool header_done;
    bool retried;
} qstream;

/* Format rows into qs->bs.pend until it holds at least want bytes or the page is
 * done. Takes the store lock. */
static void
qstream_fill(bstream *bs, size_t want)
{
    qstream *qs = (qstream *)bs;
    store *st = qs->b->st;
    store_lock(st);
    if (qs->cur == NULL) {
        /* An empty page needs the plan for its header, not the rows before it. */
        int64_t pos = qs->remaining > 0 ? qs->offset + qs->written : 0;
        qs->cur = park_take(qs->b, qs->j.id, pos);
        if (qs->cur == NULL)
            qs->cur = qcursor_open(st, &qs->j, pos);
        if (qs->cur == NULL) {
            qs->bs.failed = true;
            store_unlock(st);
            return;
        }
    }
    qcursor *c = qs->cur;
    const soql_plan *p = c->plan;
    if (!qs->header_done) {
        for (int i = 0; i < p->ncols; i++) {
            if (i)
                sb_putc(&qs->bs.pend, qs->j.delim);
            put_col_name(&qs->bs.pend, p, &p->cols[i]);
        }
        sb_puts(&qs->bs.pend, qs->eol);
        qs->header_done = true;
    }
    while (qs->remaining > 0 && qs->bs.pend.len < want) {
        int rc = sqlite3_step(c->stmt);
        if (rc == SQLITE_ROW) {
            c->pos++;
            for (int i = 0; i < p->ncols; i++) {
                if (i)
                    sb_putc(&qs->bs.pend, qs->j.delim);
                put_value(&qs->bs.pend, p->cols[i].field, c->stmt, p->cols[i].sql_col);
            }
            sb_puts(&qs->bs.pend, qs->eol);
            qs->remaining--;
            qs->written++;
            continue;
        }
        if (rc == SQLITE_DONE) {
            /* Fewer rows than when the job completed (records were deleted since):
             * the page ends early. */
            log_warn("bulk: job %s: the query returned fewer rows than its count", qs->j.id);
            qs->remaining = 0;
            break;
        }
        /* The statement was disturbed (e.g. aborted by a rollback): start it again
         * at the same position, once. */
        int64_t at = c->pos;
        bq_cursor_free(c);
        qs->cur = c = NULL;
        if (!qs->retried) {
            qs->retried = true;
            qs->cur = c = qcursor_open(st, &qs->j, at);
        }
        if (c == NULL) {
            log_error("bulk: job %s: reading results failed", qs->j.id);
            qs->bs.failed = true;
            break;
        }
        p = c->plan;
    }
    if (qs->remaining == 0)
        qs->bs.finished = true;
    store_unlock(st);
}

static void
qstream_free(void *ctx)
{
    qstream *qs = ctx;
    store *st = qs->b->st;
    if (qs->cur) {
        store_lock(st);
        /* Park the statement for the next page, if the job is still there. */
        job j;
        err_t e;
        if (qs->cur->stmt && !qs->bs.failed && jobs_load(st, qs->j.id, &j, &e) == 0) {
            jobs_clear(&j);
            park_put(qs->b, qs->cur);
        } else {
            bq_cursor_free(qs->cur);
        }
        store_unlock(st);
    }
    jobs_clear(&qs->j);
    sb_free(&qs->bs.pend);
    free(qs);
}

void
bulk_query_results(http_req *req, http_resp *resp)
{
    lf_server *srv = ctx_of(req);
    store *st = srv->st;
    job j;
    store_lock(st);
    if (jobs_of_request(req, resp, K_QUERY, &j) != 0) {
        store_unlock(st);
        return;
    }
    store_unlock(st);
    if (j.state != JS_JOB_COMPLETE) {
        http_errorf(resp, 412, "JOB_NOT_COMPLETE",
                    "can only download query results of successfully completed bulk job with "
                    "status: JOB_COMPLETE. Current status: %s",
                    jobs_state_upper[j.state]);
        jobs_clear(&j);
        return;
    }
    int64_t offset = 0, max = PAGE_DEFAULT;
    const char *loc = http_query(req, "locator");
    const char *mr = http_query(req, "maxRecords");
    if (loc && *loc && strcmp(loc, "null") != 0 &&
        (jobs_locator_parse(loc, &offset) != 0 || offset > j.processed)) {
        http_errorf(resp, 400, "INVALID_QUERY_LOCATOR", "invalid locator: %.100s", loc);
        jobs_clear(&j);
        return;
    }
    if (mr && *mr && (util_parse_i64(mr, &max) != 0 || max < 1)) {
        http_errorf(resp, 400, "API_ERROR",
                    "Invalid maxRecords: %.40s. maxRecords must be a positive integer", mr);
        jobs_clear(&j);
        return;
    }
    int64_t n = j.processed - offset;
    if (n > max)
        n = max;
    char num[32], next[32];
    snprintf(num, sizeof num, "%lld", (long long)n);
    if (offset + n < j.processed)
        jobs_locator_make(offset + n, next);
    else
        snprintf(next, sizeof next, "null");
    qstream *qs = xcalloc(1, sizeof *qs);
    qs->bs.fill = qstream_fill;
    qs->b = srv->bulk;
    qs->j = j;
    qs->offset = offset;
    qs->remaining = n;
    snprintf(qs->eol, sizeof qs->eol, "%s", csv_eol_str(j.eol));
    resp->status = 200;
    resp->content_type = CT_CSV;
    sb_clear(&resp->body);
    http_set_header(resp, "Sforce-Locator", next);
    http_set_header(resp, "Sforce-NumberOfRecords", num);
    resp->stream = bstream_read;
    resp->stream_ctx = qs;
    resp->stream_free = qstream_free;
}

/* GET jobs/query/{id}/resultPages[?locator=L]: up to five result URLs of
 * result_page_rows rows each from offset L on (the job's first row without
 * it), with the next listing's URL (nextRecordsUrl) and done. Every URL is a
 * /results request this server answers like any other, so a client may fetch
 * them side by side. */
void
bulk_query_result_pages(http_req *req, http_resp *resp)
{
    lf_server *srv = ctx_of(req);
    job j;
    store_lock(srv->st);
    int rc = jobs_of_request(req, resp, K_QUERY, &j);
    store_unlock(srv->st);
    if (rc != 0)
        return;
    if (j.state != JS_JOB_COMPLETE) {
        http_errorf(resp, 412, "JOB_NOT_COMPLETE",
                    "can only get result pages of a completed query job. Current status: %s",
                    jobs_state_upper[j.state]);
        jobs_clear(&j);
        return;
    }
    int64_t offset = 0,
            rows = srv->bulk->result_page_rows > 0 ? srv->bulk->result_page_rows : PAGE_DEFAULT;
    const char *loc = http_query(req, "locator");
    if (loc && *loc && (jobs_locator_parse(loc, &offset) != 0 || offset > j.processed)) {
        http_errorf(resp, 400, "INVALID_QUERY_LOCATOR", "invalid locator: %.100s", loc);
        jobs_clear(&j);
        return;
    }
    sb *o = &resp->body;
    sb_clear(o);
    sb_puts(o, "{\"resultPages\":[");
    int64_t at = offset;
    char l[32];
    for (int i = 0; i < RESULT_PAGES_LISTED && (at < j.processed || (at == 0 && i == 0)); i++) {
        jobs_locator_make(at, l);
        sb_printf(o,
                  "%s{\"resultUrl\":\"/services/data/%s/jobs/query/%s/results?locator=%s"
                  "&maxRecords=%lld\"}",
                  i ? "," : "", req->seg[0], j.id, l, (long long)rows);
        at += rows;
    }
    bool done = at >= j.processed;
    sb_puts(o, "],\"nextRecordsUrl\":");
    if (done) {
        sb_puts(o, "null");
    } else {
        jobs_locator_make(at, l);
        sb_printf(o, "\"/services/data/%s/jobs/query/%s/resultPages?locator=%s\"", req->seg[0],
                  j.id, l);
    }
    sb_printf(o, ",\"done\":%s}", done ? "true" : "false");
    resp->status = 200;
    resp->content_type = CT_JSON;
    jobs_clear(&j);
}
