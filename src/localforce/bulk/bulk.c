/*
 * bulk: Bulk API 2.0 — query jobs and ingest jobs. See bulk.h.
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
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth.h"
#include "csv.h"
#include "log.h"
#include "ctx.h"
#include "sfid.h"
#include "soql.h"
#include "util.h"

#define JOB_PREFIX     "750"
#define PAGE_DEFAULT   100000          /* rows per results page without maxRecords */
#define CHUNK_BYTES    (1u << 20)      /* uploads are stored in pieces of this size */
#define INGEST_BATCH   200             /* ingest rows per transaction */
#define LIST_PAGE      1000            /* jobs per page of GET jobs/{query|ingest} */
#define PARK_MAX       32              /* parked result statements */
#define PARK_IDLE_MS   (15 * 60 * 1000)
#define RESULTS_BATCH  500             /* result rows read per statement */
/* Salesforce's CSV limits: 5,000 fields, 400,000 characters per record,
 * 131,072 bytes per field (here in bytes, as UTF-8 takes up to 4 per character). */
#define CSV_MAX_FIELDS 5000
#define CSV_MAX_ROW    (400000u * 4)
#define CSV_MAX_FIELD  131072u

enum { K_QUERY = 0, K_INGEST = 1 };
enum { R_SUCCESS = 0, R_FAILED = 1, R_UNPROCESSED = 2 };

typedef enum {
    JS_OPEN, JS_UPLOAD_COMPLETE, JS_IN_PROGRESS, JS_JOB_COMPLETE, JS_ABORTED, JS_FAILED,
    JS__COUNT
} jstate;

static const char *const state_name[JS__COUNT] = {
    "Open", "UploadComplete", "InProgress", "JobComplete", "Aborted", "Failed",
};
/* As Salesforce spells states in its JOB_NOT_COMPLETE message. */
static const char *const state_upper[JS__COUNT] = {
    "OPEN", "UPLOAD_COMPLETE", "IN_PROGRESS", "JOB_COMPLETE", "ABORTED", "FAILED",
};

typedef enum {
    OP_QUERY, OP_QUERY_ALL, OP_INSERT, OP_UPDATE, OP_UPSERT, OP_DELETE, OP_HARD_DELETE,
    OP__COUNT
} jop;

static const struct {
    const char *name;
    int         kind;
} ops[OP__COUNT] = {
    {"query", K_QUERY},   {"queryAll", K_QUERY}, {"insert", K_INGEST}, {"update", K_INGEST},
    {"upsert", K_INGEST}, {"delete", K_INGEST},  {"hardDelete", K_INGEST},
};

/* A job, as stored in _lf_bulk_jobs. */
typedef struct job {
    char    id[19];
    int64_t seq;
    int     kind;
    jop     op;
    char   *object;
    char   *query;         /* query jobs */
    char   *ext_field;     /* upsert */
    char    created_by[19];
    int64_t created, modstamp, started;
    jstate  state;
    char    delim;
    csv_eol eol;
    char    ver[16];       /* API version of the request that created it, "59.0" */
    int64_t processed, failed, total_ms, uploads;
    char   *error;         /* errorMessage of a Failed job */
    char   *columns;       /* ingest: the header row as CSV, once data came */
    char   *upload_error;  /* ingest: the first problem found in the uploads */
} job;

/* An open query statement, parked between result pages. */
typedef struct qcursor {
    char            job[19];
    soql_plan      *plan;
    sqlite3_stmt   *stmt;
    int64_t         pos;        /* rows stepped past */
    int64_t         last_used;  /* monotonic ms */
    struct qcursor *next;
} qcursor;

struct lf_bulk {
    store          *st;
    int64_t         seq;         /* last job sequence number (store lock) */
    qcursor        *parked;      /* store lock */
    int             nparked;
    pthread_t       worker;
    bool            worker_started;
    pthread_mutex_t mu;          /* guards stop and kicked; never held while taking the
                                    store lock */
    pthread_cond_t  cv;
    bool            stop;
    bool            kicked;
};

static void park_expire(lf_bulk *b, const char *job_id);

/* ----- small helpers ----------------------------------------------------- */

static const char *
ver_of(http_req *req)
{
    return req->seg[0] + 1; /* "v59.0" -> "59.0" */
}

static int
db_fail(store *st, err_t *e, const char *what)
{
    const char *m = sqlite3_errmsg(store_db(st));
    log_error("bulk: %s: %s", what, m);
    return err_set(e, 500, "UNKNOWN_EXCEPTION", "An unexpected error occurred: %s", m);
}

static sqlite3_stmt *
prep(store *st, const char *sql, err_t *e)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL) != SQLITE_OK) {
        db_fail(st, e, "prepare");
        sqlite3_finalize(s);
        return NULL;
    }
    return s;
}

static int
exec_sql(store *st, const char *sql, err_t *e)
{
    char *msg = NULL;
    if (sqlite3_exec(store_db(st), sql, NULL, NULL, &msg) != SQLITE_OK) {
        err_set(e, 500, "UNKNOWN_EXCEPTION", "An unexpected error occurred: %s",
                msg ? msg : "sqlite");
        log_error("bulk: %s: %s", sql, msg ? msg : "?");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static void
bind_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(s, i);
}

static char *
col_dup(sqlite3_stmt *s, int i)
{
    const char *v = (const char *)sqlite3_column_text(s, i);
    return v ? xstrdup(v) : NULL;
}

static void
kick(lf_bulk *b)
{
    pthread_mutex_lock(&b->mu);
    b->kicked = true;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

static bool
stopping(lf_bulk *b)
{
    pthread_mutex_lock(&b->mu);
    bool s = b->stop;
    pthread_mutex_unlock(&b->mu);
    return s;
}

static int
state_parse(const char *s, jstate *out)
{
    for (int i = 0; i < JS__COUNT; i++)
        if (s && strcmp(s, state_name[i]) == 0) {
            *out = (jstate)i;
            return 0;
        }
    return -1;
}

static int
op_parse(const char *s, jop *out)
{
    for (int i = 0; i < OP__COUNT; i++)
        if (s && strcmp(s, ops[i].name) == 0) {
            *out = (jop)i;
            return 0;
        }
    return -1;
}

/* ----- locators: base64 of the decimal row offset ------------------------- */

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void
locator_make(int64_t offset, char out[32])
{
    char dec[24];
    int n = snprintf(dec, sizeof dec, "%lld", (long long)offset);
    const unsigned char *p = (const unsigned char *)dec;
    char *o = out;
    int i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = b64chars[v >> 18 & 63];
        *o++ = b64chars[v >> 12 & 63];
        *o++ = b64chars[v >> 6 & 63];
        *o++ = b64chars[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        *o++ = b64chars[v >> 18 & 63];
        *o++ = b64chars[v >> 12 & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        *o++ = b64chars[v >> 18 & 63];
        *o++ = b64chars[v >> 12 & 63];
        *o++ = b64chars[v >> 6 & 63];
    }
    *o = '\0';
}

/* 0 and *offset, or -1 if s is not a locator we made. */
static int
locator_parse(const char *s, int64_t *offset)
{
    size_t n = strlen(s);
    while (n && s[n - 1] == '=')
        n--;
    if (n == 0 || n > 28 || n % 4 == 1)
        return -1;
    char dec[24];
    size_t k = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        const char *c = strchr(b64chars, s[i]);
        if (c == NULL || s[i] == '\0')
            return -1;
        acc = acc << 6 | (uint32_t)(c - b64chars);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (k + 1 >= sizeof dec)
                return -1;
            dec[k++] = (char)(acc >> bits & 0xff);
        }
    }
    dec[k] = '\0';
    for (size_t i = 0; i < k; i++)
        if (dec[i] < '0' || dec[i] > '9')
            return -1;
    if (util_parse_i64(dec, offset) != 0 || *offset < 0)
        return -1;
    return 0;
}

/* ----- jobs in the database ---------------------------------------------- */

#define JOB_COLS                                                                        \
    "id, seq, kind, operation, object, query, ext_field, created_by, created, modstamp, " \
    "state, delim, eol, api_version, processed, failed, total_ms, error, columns, "      \
    "upload_error, uploads, started"

static void
job_clear(job *j)
{
    free(j->object);
    free(j->query);
    free(j->ext_field);
    free(j->error);
    free(j->columns);
    free(j->upload_error);
    memset(j, 0, sizeof *j);
}

static void
job_from_row(sqlite3_stmt *s, job *j)
{
    memset(j, 0, sizeof *j);
    snprintf(j->id, sizeof j->id, "%s", (const char *)sqlite3_column_text(s, 0));
    j->seq = sqlite3_column_int64(s, 1);
    j->kind = sqlite3_column_int(s, 2);
    if (op_parse((const char *)sqlite3_column_text(s, 3), &j->op) != 0)
        j->op = j->kind == K_QUERY ? OP_QUERY : OP_INSERT;
    j->object = col_dup(s, 4);
    j->query = col_dup(s, 5);
    j->ext_field = col_dup(s, 6);
    const char *cb = (const char *)sqlite3_column_text(s, 7);
    snprintf(j->created_by, sizeof j->created_by, "%s", cb ? cb : "");
    j->created = sqlite3_column_int64(s, 8);
    j->modstamp = sqlite3_column_int64(s, 9);
    if (state_parse((const char *)sqlite3_column_text(s, 10), &j->state) != 0)
        j->state = JS_FAILED;
    if (csv_delim_parse((const char *)sqlite3_column_text(s, 11), &j->delim) != 0)
        j->delim = ',';
    if (csv_eol_parse((const char *)sqlite3_column_text(s, 12), &j->eol) != 0)
        j->eol = CSV_EOL_LF;
    const char *v = (const char *)sqlite3_column_text(s, 13);
    snprintf(j->ver, sizeof j->ver, "%s", v ? v : "59.0");
    j->processed = sqlite3_column_int64(s, 14);
    j->failed = sqlite3_column_int64(s, 15);
    j->total_ms = sqlite3_column_int64(s, 16);
    j->error = col_dup(s, 17);
    j->columns = col_dup(s, 18);
    j->upload_error = col_dup(s, 19);
    j->uploads = sqlite3_column_int64(s, 20);
    j->started = sqlite3_column_int64(s, 21);
}

/* Load job id (18 chars). 0 found, 1 not found, -1 error. Store lock held. */
static int
job_load(store *st, const char *id, job *j, err_t *e)
{
    sqlite3_stmt *s = prep(st, "SELECT " JOB_COLS " FROM _lf_bulk_jobs WHERE id = ?1", e);
    if (s == NULL)
        return -1;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    int out;
    if (rc == SQLITE_ROW) {
        job_from_row(s, j);
        out = 0;
    } else if (rc == SQLITE_DONE) {
        out = 1;
    } else {
        out = db_fail(st, e, "load job");
    }
    sqlite3_finalize(s);
    return out;
}

static int
job_insert(store *st, const job *j, err_t *e)
{
    sqlite3_stmt *s = prep(st,
                           "INSERT INTO _lf_bulk_jobs (" JOB_COLS ") VALUES (?1, ?2, ?3, ?4, "
                           "?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, 0, 0, 0, NULL, NULL, "
                           "NULL, 0, 0)",
                           e);
    if (s == NULL)
        return -1;
    sqlite3_bind_text(s, 1, j->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, j->seq);
    sqlite3_bind_int(s, 3, j->kind);
    sqlite3_bind_text(s, 4, ops[j->op].name, -1, SQLITE_STATIC);
    bind_text(s, 5, j->object);
    bind_text(s, 6, j->query);
    bind_text(s, 7, j->ext_field);
    bind_text(s, 8, j->created_by);
    sqlite3_bind_int64(s, 9, j->created);
    sqlite3_bind_int64(s, 10, j->modstamp);
    sqlite3_bind_text(s, 11, state_name[j->state], -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 12, csv_delim_name(j->delim), -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 13, csv_eol_name(j->eol), -1, SQLITE_STATIC);
    bind_text(s, 14, j->ver);
    int rc = sqlite3_step(s) == SQLITE_DONE ? 0 : db_fail(st, e, "insert job");
    sqlite3_finalize(s);
    return rc;
}

/* Set a job's state (and modstamp); error_msg for Failed. Store lock held. */
static int
job_set_state(store *st, job *j, jstate to, const char *error_msg, err_t *e)
{
    sqlite3_stmt *s = prep(st,
                           "UPDATE _lf_bulk_jobs SET state = ?2, modstamp = ?3, "
                           "error = COALESCE(?4, error) WHERE id = ?1",
                           e);
    if (s == NULL)
        return -1;
    int64_t now = util_now_ms();
    sqlite3_bind_text(s, 1, j->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, state_name[to], -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, now);
    bind_text(s, 4, error_msg);
    int rc = sqlite3_step(s) == SQLITE_DONE ? 0 : db_fail(st, e, "job state");
    sqlite3_finalize(s);
    if (rc == 0) {
        j->state = to;
        j->modstamp = now;
        if (error_msg) {
            free(j->error);
            j->error = xstrdup(error_msg);
        }
    }
    return rc;
}

static int
job_delete_rows(store *st, const char *id, err_t *e)
{
    static const char *const sql[] = {
        "DELETE FROM _lf_bulk_results WHERE job = ?1",
        "DELETE FROM _lf_bulk_data WHERE job = ?1",
        "DELETE FROM _lf_bulk_jobs WHERE id = ?1",
    };
    for (size_t i = 0; i < sizeof sql / sizeof sql[0]; i++) {
        sqlite3_stmt *s = prep(st, sql[i], e);
        if (s == NULL)
            return -1;
        sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
        int rc = sqlite3_step(s);
        sqlite3_finalize(s);
        if (rc != SQLITE_DONE)
            return db_fail(st, e, "delete job");
    }
    return 0;
}

/* ----- job info JSON ----------------------------------------------------- */

enum { INFO_BRIEF, INFO_FULL, INFO_LIST };

static void
put_kv_str(sb *out, const char *key, const char *v)
{
    sb_printf(out, ",\"%s\":", key);
    if (v)
        sb_json_str(out, v);
    else
        sb_puts(out, "null");
}

static void
job_json(sb *out, const job *j, int mode)
{
    char created[32], stamp[32];
    util_fmt_datetime(j->created, created);
    util_fmt_datetime(j->modstamp, stamp);
    sb_puts(out, "{\"id\":");
    sb_json_str(out, j->id);
    put_kv_str(out, "operation", ops[j->op].name);
    put_kv_str(out, "object", j->object);
    put_kv_str(out, "createdById", j->created_by);
    put_kv_str(out, "createdDate", created);
    put_kv_str(out, "systemModstamp", stamp);
    put_kv_str(out, "state", state_name[j->state]);
    if (j->kind == K_INGEST && j->ext_field)
        put_kv_str(out, "externalIdFieldName", j->ext_field);
    sb_puts(out, ",\"concurrencyMode\":\"Parallel\",\"contentType\":\"CSV\",\"apiVersion\":");
    sb_json_double(out, strtod(j->ver, NULL));
    if (mode != INFO_BRIEF)
        put_kv_str(out, "jobType", j->kind == K_QUERY ? "V2Query" : "V2Ingest");
    if (j->kind == K_INGEST) {
        sb_printf(out, ",\"contentUrl\":\"services/data/v%s/jobs/ingest/%s/batches\"", j->ver,
                  j->id);
    }
    put_kv_str(out, "lineEnding", csv_eol_name(j->eol));
    put_kv_str(out, "columnDelimiter", csv_delim_name(j->delim));
    if (mode == INFO_FULL) {
        sb_printf(out, ",\"numberRecordsProcessed\":%lld", (long long)j->processed);
        if (j->kind == K_INGEST)
            sb_printf(out, ",\"numberRecordsFailed\":%lld", (long long)j->failed);
        sb_printf(out, ",\"retries\":0,\"totalProcessingTime\":%lld", (long long)j->total_ms);
        if (j->kind == K_INGEST)
            sb_printf(out, ",\"apiActiveProcessingTime\":%lld,\"apexProcessingTime\":0",
                      (long long)j->total_ms);
        else
            sb_puts(out, ",\"isPkChunkingSupported\":true");
        if (j->state == JS_FAILED && j->error)
            put_kv_str(out, "errorMessage", j->error);
    }
    sb_putc(out, '}');
}

static void
answer_job(http_resp *resp, int status, const job *j, int mode)
{
    resp->status = status;
    resp->content_type = CT_JSON;
    sb_clear(&resp->body);
    job_json(&resp->body, j, mode);
}

/* ----- request helpers --------------------------------------------------- */

static json_t *
body_json(http_req *req, http_resp *resp)
{
    if (req->body_len == 0) {
        http_errorf(resp, 400, "JSON_PARSER_ERROR", "The request body is empty.");
        return NULL;
    }
    if (!util_valid_utf8(req->body, req->body_len)) {
        http_errorf(resp, 400, "JSON_PARSER_ERROR",
                    "Invalid UTF-8 in the request body: the body must be UTF-8 encoded JSON.");
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
    if (j == NULL) {
        http_errorf(resp, 400, "JSON_PARSER_ERROR", "%s at [line:%d, column:%d]", je.text,
                    je.line, je.column);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        http_errorf(resp, 400, "JSON_PARSER_ERROR",
                    "The request body must be a JSON object describing the job.");
        return NULL;
    }
    return j;
}

/* A string member, NULL if absent; -1 (answered) if present but not a string. */
static int
opt_string(json_t *o, const char *key, const char **out, http_resp *resp)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v)) {
        http_errorf(resp, 400, "JSON_PARSER_ERROR", "Field %s must be a string", key);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

/* columnDelimiter, lineEnding and contentType of a job request. */
static int
csv_options(json_t *body, job *j, http_resp *resp)
{
    const char *delim, *eol, *ct;
    if (opt_string(body, "columnDelimiter", &delim, resp) ||
        opt_string(body, "lineEnding", &eol, resp) || opt_string(body, "contentType", &ct, resp))
        return -1;
    j->delim = ',';
    j->eol = CSV_EOL_LF;
    if (delim && csv_delim_parse(delim, &j->delim) != 0) {
        http_errorf(resp, 400, "INVALIDJOB",
                    "Invalid columnDelimiter: %.100s. Valid values are BACKQUOTE, CARET, COMMA, "
                    "PIPE, SEMICOLON and TAB",
                    delim);
        return -1;
    }
    if (eol && csv_eol_parse(eol, &j->eol) != 0) {
        http_errorf(resp, 400, "INVALIDJOB",
                    "Invalid lineEnding: %.100s. Valid values are LF and CRLF", eol);
        return -1;
    }
    if (ct && strcmp(ct, "CSV") != 0) {
        http_errorf(resp, 400, "INVALIDJOB", "Invalid contentType: %.100s. Only CSV is supported",
                    ct);
        return -1;
    }
    return 0;
}

/* The job named by the URL, of kind kind. Store lock held. Answers 404 (or 500). */
static int
req_job(http_req *req, http_resp *resp, int kind, job *j)
{
    store *st = ctx_of(req)->st;
    char id[19];
    err_t e;
    if (req->nseg < 2 || sfid_normalize(req->seg[1], id) != 0 ||
        !sfid_has_prefix(id, JOB_PREFIX)) {
        http_errorf(resp, 404, "NOT_FOUND", "The requested resource does not exist");
        return -1;
    }
    int rc = job_load(st, id, j, &e);
    if (rc < 0) {
        http_error(resp, &e);
        return -1;
    }
    if (rc > 0 || j->kind != kind) {
        if (rc == 0)
            job_clear(j);
        http_errorf(resp, 404, "NOT_FOUND", "The requested resource does not exist");
        return -1;
    }
    return 0;
}

static void
new_job(lf_bulk *b, http_req *req, job *j)
{
    const lf_session *s = req->auth;
    b->seq++;
    j->seq = b->seq;
    sfid_make(JOB_PREFIX, (uint64_t)j->seq, j->id);
    snprintf(j->created_by, sizeof j->created_by, "%s", s ? s->user_id : "");
    j->created = j->modstamp = util_now_ms();
    snprintf(j->ver, sizeof j->ver, "%s", ver_of(req));
}

static void
list_jobs(http_req *req, http_resp *resp, int kind)
{
    lf_server *srv = ctx_of(req);
    store *st = srv->st;
    err_t e;
    int64_t after = 0;
    const char *loc = http_query(req, "queryLocator");
    if (loc && *loc && (util_parse_i64(loc, &after) != 0 || after < 0)) {
        http_errorf(resp, 400, "INVALID_QUERY_LOCATOR", "invalid query locator");
        return;
    }
    const char *type = http_query(req, "jobType");
    store_lock(st);
    sqlite3_stmt *s = prep(st,
                           "SELECT " JOB_COLS " FROM _lf_bulk_jobs WHERE kind = ?1 AND seq > ?2 "
                           "ORDER BY seq LIMIT ?3",
                           &e);
    if (s == NULL) {
        store_unlock(st);
        http_error(resp, &e);
        return;
    }
    sqlite3_bind_int(s, 1, kind);
    sqlite3_bind_int64(s, 2, after);
    sqlite3_bind_int(s, 3, LIST_PAGE + 1);
    sb out = SB_INIT;
    sb_puts(&out, "{\"done\":");
    sb recs = SB_INIT;
    int n = 0;
    int64_t last = after;
    bool more = false;
    const char *want = type && *type ? type : NULL;
    while (sqlite3_step(s) == SQLITE_ROW) {
        if (n == LIST_PAGE) {
            more = true;
            break;
        }
        job j;
        job_from_row(s, &j);
        last = j.seq;
        n++;
        if (want == NULL || strcmp(want, kind == K_QUERY ? "V2Query" : "V2Ingest") == 0) {
            if (recs.len)
                sb_putc(&recs, ',');
            job_json(&recs, &j, INFO_LIST);
        }
        job_clear(&j);
    }
    sqlite3_finalize(s);
    store_unlock(st);
    sb_puts(&out, more ? "false" : "true");
    sb_puts(&out, ",\"records\":[");
    sb_append(&out, recs.buf ? recs.buf : "", recs.len);
    sb_puts(&out, "],\"nextRecordsUrl\":");
    if (more)
        sb_printf(&out, "\"/services/data/v%s/jobs/%s?queryLocator=%lld\"", ver_of(req),
                  kind == K_QUERY ? "query" : "ingest", (long long)last);
    else
        sb_puts(&out, "null");
    sb_putc(&out, '}');
    sb_free(&recs);
    resp->status = 200;
    resp->content_type = CT_JSON;
    sb_free(&resp->body);
    resp->body = out;
}

/* GET, PATCH {"state": ...} and DELETE on a job of kind kind. */
static void
job_resource(http_req *req, http_resp *resp, int kind)
{
    lf_server *srv = ctx_of(req);
    store *st = srv->st;
    lf_bulk *b = srv->bulk;
    err_t e;
    job j;
    bool patch = strcmp(req->method, "PATCH") == 0;
    bool del = strcmp(req->method, "DELETE") == 0;
    json_t *body = NULL;
    const char *want = NULL;
    jstate to = JS_ABORTED;
    if (patch) {
        if ((body = body_json(req, resp)) == NULL)
            return;
        if (opt_string(body, "state", &want, resp) != 0) {
            json_decref(body);
            return;
        }
        if (want == NULL || state_parse(want, &to) != 0 ||
            !(to == JS_ABORTED || (kind == K_INGEST && to == JS_UPLOAD_COMPLETE))) {
            http_errorf(resp, 400, "INVALIDJOBSTATE", "Invalid state for the job: %.100s",
                        want ? want : "null");
            json_decref(body);
            return;
        }
    }
    store_lock(st);
    if (req_job(req, resp, kind, &j) != 0) {
        store_unlock(st);
        json_decref(body);
        return;
    }
    if (!patch && !del) {
        answer_job(resp, 200, &j, INFO_FULL);
    } else if (del) {
        bool ok = j.state == JS_JOB_COMPLETE || j.state == JS_ABORTED || j.state == JS_FAILED ||
                  (kind == K_INGEST && j.state == JS_UPLOAD_COMPLETE);
        if (!ok) {
            http_errorf(resp, 400, "INVALIDJOBSTATE",
                        "Deleting a job in state %s is not allowed: abort it first",
                        state_name[j.state]);
        } else if (job_delete_rows(st, j.id, &e) != 0) {
            http_error(resp, &e);
        } else {
            park_expire(b, j.id);
            resp->status = 204;
            sb_clear(&resp->body);
        }
    } else if (to == JS_UPLOAD_COMPLETE) {
        if (j.state != JS_OPEN) {
            http_errorf(resp, 400, "INVALIDJOBSTATE", "Closing already %s Job not allowed",
                        j.state == JS_ABORTED ? "Aborted"
                        : j.state == JS_FAILED ? "Failed"
                                               : "Closed");
        } else if (job_set_state(st, &j, JS_UPLOAD_COMPLETE, NULL, &e) != 0) {
            http_error(resp, &e);
        } else {
            answer_job(resp, 200, &j, INFO_BRIEF);
            kick(b);
        }
    } else { /* Aborted */
        if (j.state == JS_JOB_COMPLETE || j.state == JS_ABORTED || j.state == JS_FAILED) {
            http_errorf(resp, 400, "INVALIDJOBSTATE", "Aborting already %s Job not allowed",
                        j.state == JS_JOB_COMPLETE ? "Completed" : state_name[j.state]);
        } else if (job_set_state(st, &j, JS_ABORTED, NULL, &e) != 0) {
            http_error(resp, &e);
        } else {
            answer_job(resp, 200, &j, INFO_BRIEF);
        }
    }
    job_clear(&j);
    store_unlock(st);
    json_decref(body);
}

/* ----- query jobs -------------------------------------------------------- */

void
bulk_query_create(http_req *req, http_resp *resp)
{
    lf_server *srv = ctx_of(req);
    store *st = srv->st;
    json_t *body = body_json(req, resp);
    if (body == NULL)
        return;
    job j;
    memset(&j, 0, sizeof j);
    j.kind = K_QUERY;
    const char *op, *q;
    if (opt_string(body, "operation", &op, resp) || opt_string(body, "query", &q, resp) ||
        csv_options(body, &j, resp))
        goto out;
    if (op == NULL || op_parse(op, &j.op) != 0 || ops[j.op].kind != K_QUERY) {
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
        new_job(srv->bulk, req, &j);
        rc = job_insert(st, &j, &e);
    }
    soql_plan_free(plan);
    store_unlock(st);
    if (rc != 0) {
        http_error(resp, &e);
        goto out;
    }
    answer_job(resp, 200, &j, INFO_BRIEF);
    kick(srv->bulk);
out:
    job_clear(&j);
    json_decref(body);
}

void
bulk_query_list(http_req *req, http_resp *resp)
{
    list_jobs(req, resp, K_QUERY);
}

void
bulk_query_job(http_req *req, http_resp *resp)
{
    job_resource(req, resp, K_QUERY);
}

/* Run a query job (worker). */
static void
run_query_job(lf_bulk *b, const char *id)
{
    store *st = b->st;
    err_t e;
    job j;
    store_lock(st);
    if (job_load(st, id, &j, &e) != 0) {
        store_unlock(st);
        return;
    }
    int64_t t0 = util_mono_ms();
    if (j.state == JS_UPLOAD_COMPLETE)
        job_set_state(st, &j, JS_IN_PROGRESS, NULL, &e);
    store_unlock(st);
    if (j.state != JS_IN_PROGRESS) {
        job_clear(&j);
        return;
    }
    /* Count the rows: that fixes the job's size. (The lock was released so that
     * a client can see InProgress, and abort.) */
    store_lock(st);
    jstate now_state = j.state;
    job cur;
    if (job_load(st, id, &cur, &e) == 0) {
        now_state = cur.state;
        job_clear(&cur);
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
            sqlite3_stmt *s = prep(st, plan->count_sql, &e);
            if (s) {
                (void)soql_bind(s, plan);
                if (sqlite3_step(s) == SQLITE_ROW)
                    n = sqlite3_column_int64(s, 0);
                else
                    db_fail(st, &e, "count");
                sqlite3_finalize(s);
            }
            if (n < 0)
                fail_msg = e.msg;
        }
        soql_plan_free(plan);
        sqlite3_stmt *u = prep(st,
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
            job_set_state(st, &j, JS_FAILED, msg, &e);
        } else {
            job_set_state(st, &j, JS_JOB_COMPLETE, NULL, &e);
        }
    }
    store_unlock(st);
    job_clear(&j);
}

/* ----- query results: parked statements ---------------------------------- */

static void
qcursor_free(qcursor *c)
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
static void
park_expire(lf_bulk *b, const char *job_id)
{
    int64_t now = util_mono_ms();
    for (qcursor **pp = &b->parked; *pp;) {
        qcursor *c = *pp;
        if (now - c->last_used > PARK_IDLE_MS || (job_id && strcmp(c->job, job_id) == 0)) {
            *pp = c->next;
            b->nparked--;
            qcursor_free(c);
        } else {
            pp = &c->next;
        }
    }
}

/* Store lock held. */
static void
park_put(lf_bulk *b, qcursor *c)
{
    park_expire(b, NULL);
    while (b->nparked >= PARK_MAX) {
        qcursor **oldest = &b->parked;
        for (qcursor **pp = &b->parked; *pp; pp = &(*pp)->next)
            if ((*pp)->last_used < (*oldest)->last_used)
                oldest = pp;
        qcursor *o = *oldest;
        *oldest = o->next;
        b->nparked--;
        qcursor_free(o);
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
    if (soql_compile(store_schema(st), j->query, j->op == OP_QUERY_ALL, j->created, &c->plan,
                     &e) != 0) {
        log_error("bulk: job %s: the query no longer compiles: %s", j->id, e.msg);
        qcursor_free(c);
        return NULL;
    }
    if ((c->stmt = prep(st, c->plan->sql, &e)) == NULL) {
        qcursor_free(c);
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

static void
civil(int64_t z, int *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)((int64_t)yoe + era * 400 + (*m <= 2));
}

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
    int y;
    unsigned m, d;
    civil(days, &y, &m, &d);
    unsigned yy = y < 0 ? 0 : y > 9999 ? 9999 : (unsigned)y;
    o = put2(o, yy / 100);
    o = put2(o, yy % 100);
    *o++ = '-';
    o = put2(o, m);
    *o++ = '-';
    o = put2(o, d);
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
    lf_bulk *b;
    job      j;          /* a copy of the job */
    qcursor *cur;        /* owned while streaming */
    int64_t  offset;     /* the page's first row */
    int64_t  written;    /* rows written so far */
    int64_t  remaining;  /* rows still to write */
    char     eol[3];
    bool     header_done;
    bool     finished;   /* everything is in pend */
    bool     failed;
    bool     retried;
    sb       pend;       /* formatted, not yet handed out */
    size_t   pend_pos;
} qstream;

/* Format rows into qs->pend until it holds at least want bytes or the page is
 * done. Takes the store lock. */
static void
qstream_fill(qstream *qs, size_t want)
{
    store *st = qs->b->st;
    store_lock(st);
    if (qs->cur == NULL) {
        /* An empty page needs the plan for its header, not the rows before it. */
        int64_t pos = qs->remaining > 0 ? qs->offset + qs->written : 0;
        qs->cur = park_take(qs->b, qs->j.id, pos);
        if (qs->cur == NULL)
            qs->cur = qcursor_open(st, &qs->j, pos);
        if (qs->cur == NULL) {
            qs->failed = true;
            store_unlock(st);
            return;
        }
    }
    qcursor *c = qs->cur;
    const soql_plan *p = c->plan;
    if (!qs->header_done) {
        for (int i = 0; i < p->ncols; i++) {
            if (i)
                sb_putc(&qs->pend, qs->j.delim);
            put_col_name(&qs->pend, p, &p->cols[i]);
        }
        sb_puts(&qs->pend, qs->eol);
        qs->header_done = true;
    }
    while (qs->remaining > 0 && qs->pend.len < want) {
        int rc = sqlite3_step(c->stmt);
        if (rc == SQLITE_ROW) {
            c->pos++;
            for (int i = 0; i < p->ncols; i++) {
                if (i)
                    sb_putc(&qs->pend, qs->j.delim);
                put_value(&qs->pend, p->cols[i].field, c->stmt, p->cols[i].sql_col);
            }
            sb_puts(&qs->pend, qs->eol);
            qs->remaining--;
            qs->written++;
            continue;
        }
        if (rc == SQLITE_DONE) {
            /* Fewer rows than when the job completed (records were deleted since):
             * the page ends early. */
            log_warn("bulk: job %s: the query returned fewer rows than its count",
                     qs->j.id);
            qs->remaining = 0;
            break;
        }
        /* The statement was disturbed (e.g. aborted by a rollback): start it again
         * at the same position, once. */
        int64_t at = c->pos;
        qcursor_free(c);
        qs->cur = c = NULL;
        if (!qs->retried) {
            qs->retried = true;
            qs->cur = c = qcursor_open(st, &qs->j, at);
        }
        if (c == NULL) {
            log_error("bulk: job %s: reading results failed", qs->j.id);
            qs->failed = true;
            break;
        }
        p = c->plan;
    }
    if (qs->remaining == 0)
        qs->finished = true;
    store_unlock(st);
}

static ssize_t
qstream_read(void *ctx, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    qstream *qs = ctx;
    size_t n = 0;
    while (n < max) {
        if (qs->pend_pos < qs->pend.len) {
            size_t k = qs->pend.len - qs->pend_pos;
            if (k > max - n)
                k = max - n;
            memcpy(buf + n, qs->pend.buf + qs->pend_pos, k);
            n += k;
            qs->pend_pos += k;
            continue;
        }
        sb_clear(&qs->pend);
        qs->pend_pos = 0;
        if (qs->failed)
            return HTTP_STREAM_ABORT;
        if (qs->finished)
            break;
        qstream_fill(qs, max - n);
    }
    return n ? (ssize_t)n : HTTP_STREAM_END;
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
        if (qs->cur->stmt && !qs->failed && job_load(st, qs->j.id, &j, &e) == 0) {
            job_clear(&j);
            park_put(qs->b, qs->cur);
        } else {
            qcursor_free(qs->cur);
        }
        store_unlock(st);
    }
    job_clear(&qs->j);
    sb_free(&qs->pend);
    free(qs);
}

void
bulk_query_results(http_req *req, http_resp *resp)
{
    lf_server *srv = ctx_of(req);
    store *st = srv->st;
    job j;
    store_lock(st);
    if (req_job(req, resp, K_QUERY, &j) != 0) {
        store_unlock(st);
        return;
    }
    store_unlock(st);
    if (j.state != JS_JOB_COMPLETE) {
        http_errorf(resp, 412, "JOB_NOT_COMPLETE",
                    "can only download query results of successfully completed bulk job with "
                    "status: JOB_COMPLETE. Current status: %s",
                    state_upper[j.state]);
        job_clear(&j);
        return;
    }
    int64_t offset = 0, max = PAGE_DEFAULT;
    const char *loc = http_query(req, "locator");
    const char *mr = http_query(req, "maxRecords");
    if (loc && *loc && strcmp(loc, "null") != 0 &&
        (locator_parse(loc, &offset) != 0 || offset > j.processed)) {
        http_errorf(resp, 400, "INVALID_QUERY_LOCATOR", "invalid locator: %.100s", loc);
        job_clear(&j);
        return;
    }
    if (mr && *mr && (util_parse_i64(mr, &max) != 0 || max < 1)) {
        http_errorf(resp, 400, "API_ERROR",
                    "Invalid maxRecords: %.40s. maxRecords must be a positive integer", mr);
        job_clear(&j);
        return;
    }
    int64_t n = j.processed - offset;
    if (n > max)
        n = max;
    char num[32], next[32];
    snprintf(num, sizeof num, "%lld", (long long)n);
    if (offset + n < j.processed)
        locator_make(offset + n, next);
    else
        snprintf(next, sizeof next, "null");
    qstream *qs = xcalloc(1, sizeof *qs);
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
    resp->stream = qstream_read;
    resp->stream_ctx = qs;
    resp->stream_free = qstream_free;
}

/* ----- ingest: columns of an upload --------------------------------------- */

typedef struct column {
    const lf_field *field;   /* the field; for "Rel__r.Ext__c" the reference field */
    const lf_field *pfield;  /* for "Rel__r.Ext__c": the parent's field */
} column;

/* Resolve the header row against object o. On failure sets *problem (the job's
 * errorMessage) and returns -1. Store lock held. */
static int
columns_resolve(const lf_schema *s, const lf_object *o, const csv_row *h, column **out,
                char **problem)
{
    column *cols = xcalloc(h->nfields ? h->nfields : 1, sizeof *cols);
    sb msg = SB_INIT;
    for (size_t i = 0; i < h->nfields && msg.len == 0; i++) {
        const char *name = h->field[i];
        const char *dot = memchr(name, '.', h->len[i]);
        if (dot == NULL) {
            cols[i].field = strlen(name) == h->len[i] ? object_field(o, name) : NULL;
        } else {
            char rel[256];
            size_t rn = (size_t)(dot - name);
            snprintf(rel, sizeof rel, "%.*s", (int)(rn < 255 ? rn : 255), name);
            const lf_field *rf = rn < 255 ? object_field_by_relationship(o, rel) : NULL;
            const lf_object *po = rf ? schema_object(s, rf->reference_to) : NULL;
            const lf_field *pf = po && !strchr(dot + 1, '.') ? object_field(po, dot + 1) : NULL;
            if (pf && strlen(name) == h->len[i]) {
                cols[i].field = rf;
                cols[i].pfield = pf;
            }
        }
        if (cols[i].field == NULL) {
            sb_puts(&msg, "InvalidBatch : Field name not found : ");
            sb_append(&msg, name, h->len[i] > 255 ? 255 : h->len[i]);
            break;
        }
        for (size_t k = 0; k < i; k++)
            if (cols[k].field == cols[i].field && cols[k].pfield == cols[i].pfield) {
                sb_puts(&msg, "InvalidBatch : Duplicate field name: ");
                sb_append(&msg, name, h->len[i] > 255 ? 255 : h->len[i]);
                break;
            }
    }
    if (msg.len) {
        free(cols);
        *problem = sb_steal(&msg);
        return -1;
    }
    sb_free(&msg);
    *out = cols;
    return 0;
}

static void
put_row_csv(sb *out, const csv_row *row, char delim)
{
    for (size_t i = 0; i < row->nfields; i++) {
        if (i)
            sb_putc(out, delim);
        csv_put(out, row->field[i], row->len[i]);
    }
}

static void
reader_opts(const job *j, csv_opts *o)
{
    memset(o, 0, sizeof *o);
    o->delim = j->delim;
    o->eol = j->eol;
    o->utf8 = true;
    o->max_field = CSV_MAX_FIELD;
    o->max_row = CSV_MAX_ROW;
    o->max_fields = CSV_MAX_FIELDS;
}

/* The job's errorMessage for a reader error. */
static char *
csv_problem(const job *j, const csv_error *ce)
{
    sb m = SB_INIT;
    if (ce->code == CSV_ERR_EOL)
        sb_printf(&m, "ClientInputError : LineEnding is invalid on user data. Current LineEnding "
                      "setting is %s",
                  csv_eol_name(j->eol));
    else if (ce->code == CSV_ERR_UTF8)
        sb_printf(&m, "ClientInputError : The data is not valid UTF-8 (line %lld, column %lld)",
                  (long long)ce->line, (long long)ce->col);
    else
        sb_printf(&m, "InvalidBatch : Failed to parse CSV: %s (line %lld, column %lld)", ce->msg,
                  (long long)ce->line, (long long)ce->col);
    return sb_steal(&m);
}

/* Check a whole upload: its header names fields of the object (and matches the
 * job's earlier uploads), every row has as many fields as the header, and the
 * CSV is well-formed UTF-8 with the job's delimiter and line ending. Fills
 * *header (the header as CSV) and returns NULL, or returns the problem. Takes
 * the store lock only to look at the header. */
static char *
check_upload(store *st, const job *j, const char *data, size_t len, sb *header)
{
    csv_opts opts;
    reader_opts(j, &opts);
    csv_reader *r = csv_reader_new(&opts);
    csv_feed(r, data, len);
    csv_finish(r);
    char *problem = NULL;
    size_t nhdr = 0;
    bool have_header = false;
    csv_row row;
    csv_status rc;
    while ((rc = csv_next(r, &row)) == CSV_ROW) {
        if (!have_header) {
            if (row.blank)
                continue;
            column *cols = NULL;
            store_lock(st);
            const lf_schema *s = store_schema(st);
            const lf_object *o = schema_object(s, j->object);
            int bad = o ? columns_resolve(s, o, &row, &cols, &problem) : -1;
            store_unlock(st);
            free(cols);
            if (o == NULL) {
                sb m = SB_INIT;
                sb_printf(&m, "InvalidBatch : Entity '%s' is not supported by the Bulk API.",
                          j->object);
                problem = sb_steal(&m);
            }
            if (bad)
                break;
            put_row_csv(header, &row, j->delim);
            nhdr = row.nfields;
            have_header = true;
            if (j->columns && strcmp(j->columns, header->buf) != 0) {
                problem = xstrdup("InvalidBatch : The header row of this upload differs from "
                                  "the header row of the job's first upload");
                break;
            }
            continue;
        }
        if (row.blank)
            continue;
        if (row.nfields != nhdr) {
            sb m = SB_INIT;
            sb_printf(&m,
                      "InvalidBatch : Wrong number of fields in the row on line %lld: found %zu, "
                      "the header has %zu",
                      (long long)row.line, row.nfields, nhdr);
            problem = sb_steal(&m);
            break;
        }
    }
    if (problem == NULL && rc == CSV_FAIL)
        problem = csv_problem(j, csv_reader_error(r));
    if (problem == NULL && !have_header)
        problem = xstrdup("InvalidBatch : The CSV data is empty: no header row was found");
    csv_reader_free(r);
    return problem;
}

static void
not_open(http_resp *resp, const job *j)
{
    http_errorf(resp, 400, "INVALIDJOBSTATE",
                "Data can only be uploaded to an Open job; the job's state is %s",
                state_name[j->state]);
}

void
bulk_ingest_upload(http_req *req, http_resp *resp)
{
    lf_server *srv = ctx_of(req);
    store *st = srv->st;
    err_t e;
    job j;
    store_lock(st);
    if (req_job(req, resp, K_INGEST, &j) != 0) {
        store_unlock(st);
        return;
    }
    if (j.state != JS_OPEN) {
        not_open(resp, &j);
        goto out;
    }
    /* Parse without holding the store lock: an upload can be large. */
    store_unlock(st);
    sb header = SB_INIT;
    char *problem = check_upload(st, &j, req->body, req->body_len, &header);
    store_lock(st);
    job_clear(&j);
    int rc = 0;
    if (req_job(req, resp, K_INGEST, &j) != 0) {
        /* deleted meanwhile: answered */
    } else if (j.state != JS_OPEN) {
        not_open(resp, &j);
    } else if (problem == NULL) {
        /* Keep the data, in chunks, with the header of the job's first upload. */
        rc = exec_sql(st, "SAVEPOINT lf_bulk_upload", &e);
        sqlite3_stmt *s = rc ? NULL
                             : prep(st,
                                    "INSERT INTO _lf_bulk_data (job, upload, chunk, data) "
                                    "VALUES (?1, ?2, ?3, ?4)",
                                    &e);
        if (s == NULL)
            rc = -1;
        for (size_t off = 0, k = 0; rc == 0 && off < req->body_len; off += CHUNK_BYTES, k++) {
            size_t n = req->body_len - off < CHUNK_BYTES ? req->body_len - off : CHUNK_BYTES;
            sqlite3_bind_text(s, 1, j.id, -1, SQLITE_STATIC);
            sqlite3_bind_int64(s, 2, j.uploads);
            sqlite3_bind_int64(s, 3, (int64_t)k);
            sqlite3_bind_blob(s, 4, req->body + off, (int)n, SQLITE_STATIC);
            if (sqlite3_step(s) != SQLITE_DONE)
                rc = db_fail(st, &e, "store upload");
            sqlite3_reset(s);
        }
        sqlite3_finalize(s);
        sqlite3_stmt *u = rc ? NULL
                             : prep(st,
                                    "UPDATE _lf_bulk_jobs SET uploads = uploads + 1, "
                                    "columns = COALESCE(columns, ?2) WHERE id = ?1",
                                    &e);
        if (u) {
            sqlite3_bind_text(u, 1, j.id, -1, SQLITE_STATIC);
            sqlite3_bind_text(u, 2, header.buf, -1, SQLITE_STATIC);
            if (sqlite3_step(u) != SQLITE_DONE)
                rc = db_fail(st, &e, "upload");
            sqlite3_finalize(u);
        } else {
            rc = -1;
        }
        if (rc == 0)
            rc = exec_sql(st, "RELEASE lf_bulk_upload", &e);
        else if (sqlite3_get_autocommit(store_db(st)) == 0)
            sqlite3_exec(store_db(st), "ROLLBACK TO lf_bulk_upload; RELEASE lf_bulk_upload",
                         NULL, NULL, NULL);
    } else if (j.upload_error == NULL) {
        /* The job fails when it is closed, as Salesforce's does when it processes it. */
        sqlite3_stmt *u = prep(st, "UPDATE _lf_bulk_jobs SET upload_error = ?2 WHERE id = ?1", &e);
        if (u) {
            sqlite3_bind_text(u, 1, j.id, -1, SQLITE_STATIC);
            sqlite3_bind_text(u, 2, problem, -1, SQLITE_STATIC);
            if (sqlite3_step(u) != SQLITE_DONE)
                rc = db_fail(st, &e, "upload");
            sqlite3_finalize(u);
        } else {
            rc = -1;
        }
    }
    free(problem);
    sb_free(&header);
    if (resp->status >= 400) {
        /* answered above */
    } else if (rc != 0) {
        http_error(resp, &e);
    } else {
        resp->status = 201;
        sb_clear(&resp->body);
    }
out:
    job_clear(&j);
    store_unlock(st);
}

/* ----- ingest: reading the stored uploads row by row ---------------------- */

typedef struct upload_iter {
    store       *st;
    const job   *j;
    int64_t      upload;      /* the upload being read */
    int64_t      chunk;       /* the next chunk to load */
    csv_reader  *r;
    sb           data;        /* the chunk being read */
    bool         header_seen;
    char        *problem;     /* set when the data cannot be read */
} upload_iter;

static void
iter_init(upload_iter *it, store *st, const job *j)
{
    memset(it, 0, sizeof *it);
    it->st = st;
    it->j = j;
}

static void
iter_free(upload_iter *it)
{
    csv_reader_free(it->r);
    sb_free(&it->data);
    free(it->problem);
    memset(it, 0, sizeof *it);
}

/* The next data row of the job's uploads: 1 row, 0 no more, -1 error
 * (it->problem). Store lock held. */
static int
iter_next(upload_iter *it, csv_row *row)
{
    for (;;) {
        if (it->upload >= it->j->uploads)
            return 0;
        if (it->r == NULL) {
            csv_opts o;
            reader_opts(it->j, &o);
            it->r = csv_reader_new(&o);
            it->chunk = 0;
            it->header_seen = false;
        }
        csv_status rc = csv_next(it->r, row);
        if (rc == CSV_ROW) {
            if (row->blank)
                continue;
            if (!it->header_seen) {
                it->header_seen = true;
                continue;
            }
            return 1;
        }
        if (rc == CSV_FAIL) {
            free(it->problem);
            it->problem = csv_problem(it->j, csv_reader_error(it->r));
            return -1;
        }
        if (rc == CSV_END) {
            csv_reader_free(it->r);
            it->r = NULL;
            it->upload++;
            continue;
        }
        /* CSV_NEED: the next chunk of this upload, or its end. */
        err_t e;
        sqlite3_stmt *s = prep(it->st,
                               "SELECT data FROM _lf_bulk_data WHERE job = ?1 AND upload = ?2 "
                               "AND chunk = ?3",
                               &e);
        if (s == NULL) {
            free(it->problem);
            it->problem = xstrdup(e.msg);
            return -1;
        }
        sqlite3_bind_text(s, 1, it->j->id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, it->upload);
        sqlite3_bind_int64(s, 3, it->chunk);
        sb_clear(&it->data);
        int src = sqlite3_step(s);
        if (src == SQLITE_ROW) {
            const void *p = sqlite3_column_blob(s, 0);
            int n = sqlite3_column_bytes(s, 0);
            sb_append(&it->data, p ? p : "", p && n > 0 ? (size_t)n : 0);
            it->chunk++;
            csv_feed(it->r, it->data.buf ? it->data.buf : "", it->data.len);
        } else {
            csv_feed(it->r, "", 0);
            csv_finish(it->r);
        }
        sqlite3_finalize(s);
    }
}

/* ----- ingest: processing (worker) --------------------------------------- */

typedef struct ingest_run {
    job            j;
    const lf_object *o;
    column        *cols;
    size_t         ncols;
    int            id_col;     /* index of the Id column, -1 if none */
    int            ext_col;    /* upsert: index of the external id column, -1 if none */
    upload_iter    it;
    sqlite3_stmt  *ins;        /* INSERT INTO _lf_bulk_results */
    int64_t        t0;         /* monotonic ms when this run started */
    int64_t        base_ms;    /* processing time before this run (a restart) */
    char           origin[96];
    sb             rowtext;
    sb             errtext;
} ingest_run;

static void
run_free(store *st, ingest_run *run)
{
    if (run == NULL)
        return;
    store_lock(st);
    sqlite3_finalize(run->ins);
    iter_free(&run->it);
    store_unlock(st);
    free(run->cols);
    job_clear(&run->j);
    sb_free(&run->rowtext);
    sb_free(&run->errtext);
    free(run);
}

/* Salesforce's Bulk error text: "CODE:message:Field1,Field2 --" ("CODE:message:--"). */
static void
put_row_error(sb *out, const err_t *e)
{
    sb_printf(out, "%s:%s:", e->code, e->msg);
    if (e->fields[0])
        sb_printf(out, "%s ", e->fields);
    sb_puts(out, "--");
}

/* Store errors rephrased as Bulk (SOAP) reports them. */
static void
bulk_error(const ingest_run *run, const csv_row *row, err_t *e)
{
    if (strcmp(e->code, "MULTIPLE_CHOICES") == 0) {
        snprintf(e->code, sizeof e->code, "DUPLICATE_EXTERNAL_ID");
    } else if (strcmp(e->code, "NOT_FOUND") == 0 && e->fields[0] == '\0') {
        snprintf(e->code, sizeof e->code, "INVALID_CROSS_REFERENCE_KEY");
        snprintf(e->msg, sizeof e->msg, "invalid cross reference id");
    } else if (strcmp(e->code, "JSON_PARSER_ERROR") == 0 && e->fields[0]) {
        /* A value that does not convert: name its column and type. */
        for (size_t i = 0; i < run->ncols && i < row->nfields; i++) {
            const lf_field *f = run->cols[i].pfield ? run->cols[i].pfield : run->cols[i].field;
            if (strcasecmp(run->cols[i].field->name, e->fields) == 0 ||
                strcasecmp(f->name, e->fields) == 0) {
                char fields[ERR_FIELDS_MAX];
                snprintf(fields, sizeof fields, "%s", e->fields);
                err_set(e, 400, "INVALID_FIELD",
                        "Failed to deserialize field at col %zu. Due to, '%.200s' is not a valid "
                        "value for the type %s",
                        i + 1, row->field[i], lf_types[f->type].soap_type);
                err_fields(e, fields);
                return;
            }
        }
    }
}

/* Process one data row; writes its result. Store lock (and transaction) held. */
static int
process_row(store *st, ingest_run *run, const csv_row *row, int64_t seq, bool *failed_out,
            err_t *dbe)
{
    const job *j = &run->j;
    lf_actor actor = {.user_id = j->created_by[0] ? j->created_by : NULL, .origin = run->origin};
    err_t e;
    err_clear(&e);
    char id_out[19] = "";
    bool created = false;
    int rc = -1;
    json_t *rec = json_object();
    const char *id = NULL, *ext = NULL;
    if (run->id_col >= 0 && (size_t)run->id_col < row->nfields && row->len[run->id_col])
        id = row->field[run->id_col];
    if (run->ext_col >= 0 && (size_t)run->ext_col < row->nfields && row->len[run->ext_col])
        ext = row->field[run->ext_col];
    for (size_t i = 0; i < run->ncols && i < row->nfields; i++) {
        if (row->len[i] == 0)
            continue; /* an empty value leaves the field as it is */
        const column *c = &run->cols[i];
        bool null = row->len[i] == 4 && memcmp(row->field[i], "#N/A", 4) == 0;
        json_t *v = null ? json_null() : json_stringn(row->field[i], row->len[i]);
        if (v == NULL)
            v = json_null();
        if (c->pfield) {
            json_t *ref = v;
            if (!null) {
                ref = json_object();
                json_object_set_new(ref, c->pfield->name, v);
            }
            json_object_set_new(rec, c->field->relationship_name, ref);
        } else {
            json_object_set_new(rec, c->field->name, v);
        }
    }
    switch (j->op) {
    case OP_INSERT:
        rc = store_create(st, &actor, j->object, rec, id_out, &e);
        created = rc == 0;
        break;
    case OP_UPDATE:
        if (id == NULL)
            rc = err_set(&e, 400, "MISSING_ARGUMENT", "Id not specified in an update call");
        else if ((rc = store_update(st, &actor, j->object, id, rec, &e)) == 0)
            sfid_normalize(id, id_out);
        break;
    case OP_UPSERT: {
        bool by_id = strcasecmp(j->ext_field, "Id") == 0;
        if (ext == NULL && !by_id) {
            rc = err_set(&e, 400, "MISSING_ARGUMENT", "%s not specified", j->ext_field);
        } else {
            rc = store_upsert(st, &actor, j->object, j->ext_field, ext, rec, j->ver, id_out,
                              &created, NULL, &e);
        }
        break;
    }
    case OP_DELETE:
    case OP_HARD_DELETE:
        if (id == NULL)
            rc = err_set(&e, 400, "MISSING_ARGUMENT", "Id not specified in a delete call");
        else if ((rc = store_delete(st, &actor, j->object, id, &e)) == 0)
            sfid_normalize(id, id_out);
        break;
    default:
        rc = err_set(&e, 400, "INVALID_OPERATION", "invalid operation");
        break;
    }
    json_decref(rec);
    sb_clear(&run->rowtext);
    put_row_csv(&run->rowtext, row, j->delim);
    sb_clear(&run->errtext);
    if (rc != 0) {
        bulk_error(run, row, &e);
        put_row_error(&run->errtext, &e);
        /* A failed update or delete names the record it was about. */
        if ((j->op == OP_UPDATE || j->op == OP_DELETE || j->op == OP_HARD_DELETE) && id &&
            sfid_normalize(id, id_out) != 0)
            id_out[0] = '\0';
    }
    sqlite3_stmt *s = run->ins;
    sqlite3_bind_text(s, 1, j->id, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, rc == 0 ? R_SUCCESS : R_FAILED);
    sqlite3_bind_int64(s, 3, seq);
    sqlite3_bind_text(s, 4, id_out, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 5, created);
    if (rc == 0)
        sqlite3_bind_null(s, 6);
    else
        sqlite3_bind_text(s, 6, run->errtext.buf, (int)run->errtext.len, SQLITE_STATIC);
    sqlite3_bind_text(s, 7, run->rowtext.buf ? run->rowtext.buf : "", (int)run->rowtext.len,
                      SQLITE_STATIC);
    int src = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (src != SQLITE_DONE)
        return db_fail(st, dbe, "store result");
    *failed_out = rc != 0;
    return 0;
}

/* Start (or resume) an ingest job. NULL if there is nothing to run. Store lock held. */
static ingest_run *
run_start(lf_bulk *b, const char *id)
{
    store *st = b->st;
    err_t e;
    ingest_run *run = xcalloc(1, sizeof *run);
    if (job_load(st, id, &run->j, &e) != 0) {
        free(run);
        return NULL;
    }
    job *j = &run->j;
    if (j->state != JS_UPLOAD_COMPLETE && j->state != JS_IN_PROGRESS)
        goto none;
    if (j->upload_error) {
        char *msg = xstrdup(j->upload_error);
        job_set_state(st, j, JS_FAILED, msg, &e);
        free(msg);
        goto none;
    }
    run->o = schema_object(store_schema(st), j->object);
    if (run->o == NULL) {
        job_set_state(st, j, JS_FAILED, "InvalidBatch : the object no longer exists", &e);
        goto none;
    }
    /* The header, from the stored first upload (or none: no data at all). */
    run->id_col = run->ext_col = -1;
    if (j->columns) {
        csv_opts o;
        reader_opts(j, &o);
        csv_reader *r = csv_reader_new(&o);
        csv_feed(r, j->columns, strlen(j->columns));
        csv_finish(r);
        csv_row h;
        char *problem = NULL;
        if (csv_next(r, &h) != CSV_ROW ||
            columns_resolve(store_schema(st), run->o, &h, &run->cols, &problem) != 0) {
            job_set_state(st, j, JS_FAILED,
                          problem ? problem : "InvalidBatch : the header row cannot be read", &e);
            free(problem);
            csv_reader_free(r);
            goto none;
        }
        run->ncols = h.nfields;
        csv_reader_free(r);
        for (size_t i = 0; i < run->ncols; i++) {
            if (run->cols[i].pfield)
                continue;
            if (strcmp(run->cols[i].field->name, "Id") == 0)
                run->id_col = (int)i;
            if (j->ext_field && strcasecmp(run->cols[i].field->name, j->ext_field) == 0)
                run->ext_col = (int)i;
        }
    } else if (j->uploads == 0) {
        job_set_state(st, j, JS_FAILED, "InvalidBatch : No data was uploaded for the job", &e);
        goto none;
    }
    run->ins = prep(st,
                    "INSERT OR REPLACE INTO _lf_bulk_results (job, kind, seq, sf_id, created, "
                    "error, row) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    &e);
    if (run->ins == NULL)
        goto none;
    snprintf(run->origin, sizeof run->origin, "com/salesforce/api/bulkapi/%s", j->ver);
    iter_init(&run->it, st, j);
    /* Resume: skip the rows a previous run processed. */
    csv_row row;
    for (int64_t k = 0; k < j->processed; k++)
        if (iter_next(&run->it, &row) != 1)
            break;
    if (j->state == JS_UPLOAD_COMPLETE) {
        sqlite3_stmt *s = prep(st, "UPDATE _lf_bulk_jobs SET started = ?2 WHERE id = ?1", &e);
        if (s) {
            sqlite3_bind_text(s, 1, j->id, -1, SQLITE_STATIC);
            sqlite3_bind_int64(s, 2, util_now_ms());
            sqlite3_step(s);
            sqlite3_finalize(s);
        }
        job_set_state(st, j, JS_IN_PROGRESS, NULL, &e);
    }
    run->t0 = util_mono_ms();
    run->base_ms = j->total_ms;
    return run;
none:
    sqlite3_finalize(run->ins);
    iter_free(&run->it);
    free(run->cols);
    job_clear(&run->j);
    free(run);
    return NULL;
}

/* Process the next batch of a running ingest job. Returns false when the run is over. */
static bool
run_step(lf_bulk *b, ingest_run *run)
{
    store *st = b->st;
    err_t e;
    job *j = &run->j;
    if (store_begin(st, &e) != 0)
        return false;
    /* Still ours to run? (It may have been aborted meanwhile.) */
    job now;
    int lr = job_load(st, j->id, &now, &e);
    if (lr != 0 || now.state != JS_IN_PROGRESS) {
        if (lr == 0)
            job_clear(&now);
        store_commit(st, &e);
        return false;
    }
    job_clear(&now);
    bool done = false, broken = false;
    int64_t nfailed = 0, nrows = 0;
    for (int k = 0; k < INGEST_BATCH; k++) {
        csv_row row;
        int rc = iter_next(&run->it, &row);
        if (rc == 0) {
            done = true;
            break;
        }
        if (rc < 0) {
            broken = true;
            break;
        }
        bool failed = false;
        if (process_row(st, run, &row, j->processed + nrows, &failed, &e) != 0) {
            broken = true;
            break;
        }
        nrows++;
        nfailed += failed;
    }
    j->processed += nrows;
    j->failed += nfailed;
    j->total_ms = run->base_ms + (util_mono_ms() - run->t0);
    sqlite3_stmt *u = prep(st,
                           "UPDATE _lf_bulk_jobs SET processed = ?2, failed = ?3, total_ms = ?4 "
                           "WHERE id = ?1",
                           &e);
    if (u) {
        sqlite3_bind_text(u, 1, j->id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(u, 2, j->processed);
        sqlite3_bind_int64(u, 3, j->failed);
        sqlite3_bind_int64(u, 4, j->total_ms);
        sqlite3_step(u);
        sqlite3_finalize(u);
    }
    if (broken) {
        char msg[ERR_MSG_MAX];
        snprintf(msg, sizeof msg, "%s", run->it.problem ? run->it.problem : e.msg);
        job_set_state(st, j, JS_FAILED, msg, &e);
    } else if (done) {
        job_set_state(st, j, JS_JOB_COMPLETE, NULL, &e);
    }
    if (store_commit(st, &e) != 0) {
        log_error("bulk: job %s: commit failed: %s", j->id, e.msg);
        return false;
    }
    return !done && !broken;
}

/* ----- the worker -------------------------------------------------------- */

/* The next job to work on: query jobs first, then the oldest ingest job.
 * 0 and id/kind, or -1 if none. */
static int
next_job(store *st, char id[19], int *kind)
{
    err_t e;
    store_lock(st);
    sqlite3_stmt *s = prep(st,
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
        while (!stopping(b) && next_job(b->st, id, &kind) == 0) {
            /* A job that is still runnable right after a pass that made no
             * progress on it (a database error) waits for the next round. */
            if (strcmp(id, stuck) == 0)
                break;
            if (kind == K_QUERY) {
                run_query_job(b, id);
                snprintf(stuck, sizeof stuck, "%s", id);
                continue;
            }
            if (run && strcmp(run->j.id, id) != 0) {
                run_free(b->st, run);
                run = NULL;
            }
            if (run == NULL) {
                store_lock(b->st);
                run = run_start(b, id);
                store_unlock(b->st);
                if (run == NULL) {
                    snprintf(stuck, sizeof stuck, "%s", id);
                    continue;
                }
            }
            stuck[0] = '\0';
            if (!run_step(b, run)) {
                run_free(b->st, run);
                run = NULL;
                snprintf(stuck, sizeof stuck, "%s", id);
            }
        }
    }
    run_free(b->st, run);
    return NULL;
}

/* ----- ingest: HTTP handlers --------------------------------------------- */

void
bulk_ingest_create(http_req *req, http_resp *resp)
{
    lf_server *srv = ctx_of(req);
    store *st = srv->st;
    json_t *body = body_json(req, resp);
    if (body == NULL)
        return;
    job j;
    memset(&j, 0, sizeof j);
    j.kind = K_INGEST;
    const char *obj, *op, *ext, *rule;
    if (opt_string(body, "object", &obj, resp) || opt_string(body, "operation", &op, resp) ||
        opt_string(body, "externalIdFieldName", &ext, resp) ||
        opt_string(body, "assignmentRuleId", &rule, resp) || csv_options(body, &j, resp))
        goto out;
    if (op == NULL || op_parse(op, &j.op) != 0 || ops[j.op].kind != K_INGEST) {
        http_errorf(resp, 400, "INVALIDJOB",
                    "Invalid operation: %.100s. Valid operations are insert, update, upsert, "
                    "delete and hardDelete",
                    op ? op : "null");
        goto out;
    }
    if (obj == NULL || *obj == '\0') {
        http_errorf(resp, 400, "INVALIDJOB", "The job needs an object");
        goto out;
    }
    store_lock(st);
    const lf_object *o = schema_object(store_schema(st), obj);
    if (o == NULL) {
        store_unlock(st);
        http_errorf(resp, 400, "INVALIDENTITY", "Entity '%.200s' is not supported by the Bulk API.",
                    obj);
        goto out;
    }
    j.object = xstrdup(o->name);
    if (j.op == OP_UPSERT) {
        const lf_field *f = ext && *ext ? object_field(o, ext) : NULL;
        if (ext == NULL || *ext == '\0') {
            store_unlock(st);
            http_errorf(resp, 400, "INVALIDJOB",
                        "External ID was blank for %s. An External ID must be specified for "
                        "upsert.",
                        o->name);
            goto out;
        }
        if (f == NULL || !(f->external_id || strcmp(f->name, "Id") == 0)) {
            store_unlock(st);
            http_errorf(resp, 400, "INVALIDJOB",
                        "Field name provided, %.200s does not match an External ID, Salesforce "
                        "Id, or indexed field for %s",
                        ext, o->name);
            goto out;
        }
        j.ext_field = xstrdup(f->name);
    }
    j.state = JS_OPEN;
    new_job(srv->bulk, req, &j);
    err_t e;
    int rc = job_insert(st, &j, &e);
    store_unlock(st);
    if (rc != 0)
        http_error(resp, &e);
    else
        answer_job(resp, 200, &j, INFO_BRIEF);
out:
    job_clear(&j);
    json_decref(body);
}

void
bulk_ingest_list(http_req *req, http_resp *resp)
{
    list_jobs(req, resp, K_INGEST);
}

void
bulk_ingest_job(http_req *req, http_resp *resp)
{
    job_resource(req, resp, K_INGEST);
}

/* ----- ingest results: the stream ---------------------------------------- */

typedef struct rstream {
    lf_bulk    *b;
    job         j;
    int         kind;        /* R_SUCCESS, R_FAILED, R_UNPROCESSED */
    int64_t     next_seq;    /* keyset position in _lf_bulk_results */
    upload_iter it;          /* R_UNPROCESSED: the uploads */
    int64_t     skip;        /* R_UNPROCESSED: rows processed, not to repeat */
    bool        header_done;
    bool        finished;
    bool        failed;
    sb          pend;
    size_t      pend_pos;
} rstream;

static void
rstream_fill(rstream *rs, size_t want)
{
    store *st = rs->b->st;
    const char *eol = csv_eol_str(rs->j.eol);
    store_lock(st);
    if (!rs->header_done) {
        rs->header_done = true;
        if (rs->kind != R_UNPROCESSED) {
            csv_put_str(&rs->pend, "sf__Id");
            sb_putc(&rs->pend, rs->j.delim);
            csv_put_str(&rs->pend, rs->kind == R_SUCCESS ? "sf__Created" : "sf__Error");
            if (rs->j.columns)
                sb_putc(&rs->pend, rs->j.delim);
        }
        if (rs->j.columns)
            sb_puts(&rs->pend, rs->j.columns);
        if (rs->pend.len)
            sb_puts(&rs->pend, eol);
        if (rs->kind == R_UNPROCESSED) {
            /* Rows a finished job processed are not "unprocessed"; nor is data
             * that never made it into the job. */
            if (rs->j.state == JS_JOB_COMPLETE || rs->j.columns == NULL) {
                rs->finished = true;
                store_unlock(st);
                return;
            }
            iter_init(&rs->it, st, &rs->j);
            csv_row row;
            for (int64_t k = 0; k < rs->skip; k++)
                if (iter_next(&rs->it, &row) != 1)
                    break;
        }
    }
    if (rs->kind == R_UNPROCESSED) {
        while (rs->pend.len < want) {
            csv_row row;
            if (iter_next(&rs->it, &row) != 1) {
                rs->finished = true;
                break;
            }
            put_row_csv(&rs->pend, &row, rs->j.delim);
            sb_puts(&rs->pend, eol);
        }
        store_unlock(st);
        return;
    }
    err_t e;
    sqlite3_stmt *s = prep(st,
                           "SELECT seq, sf_id, created, error, row FROM _lf_bulk_results "
                           "WHERE job = ?1 AND kind = ?2 AND seq > ?3 ORDER BY seq LIMIT ?4",
                           &e);
    if (s == NULL) {
        rs->failed = true;
        store_unlock(st);
        return;
    }
    while (!rs->finished && rs->pend.len < want) {
        sqlite3_bind_text(s, 1, rs->j.id, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 2, rs->kind);
        sqlite3_bind_int64(s, 3, rs->next_seq);
        sqlite3_bind_int(s, 4, RESULTS_BATCH);
        int n = 0, rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            n++;
            rs->next_seq = sqlite3_column_int64(s, 0);
            const char *id = (const char *)sqlite3_column_text(s, 1);
            csv_put_str(&rs->pend, id ? id : "");
            sb_putc(&rs->pend, rs->j.delim);
            if (rs->kind == R_SUCCESS)
                csv_put_str(&rs->pend, sqlite3_column_int(s, 2) ? "true" : "false");
            else
                csv_put_str(&rs->pend, (const char *)sqlite3_column_text(s, 3));
            if (rs->j.columns) {
                sb_putc(&rs->pend, rs->j.delim);
                const char *row = (const char *)sqlite3_column_text(s, 4);
                sb_puts(&rs->pend, row ? row : "");
            }
            sb_puts(&rs->pend, eol);
        }
        sqlite3_reset(s);
        if (rc != SQLITE_DONE) {
            db_fail(st, &e, "results");
            rs->failed = true;
            break;
        }
        if (n < RESULTS_BATCH)
            rs->finished = true;
    }
    sqlite3_finalize(s);
    store_unlock(st);
}

static ssize_t
rstream_read(void *ctx, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    rstream *rs = ctx;
    size_t n = 0;
    while (n < max) {
        if (rs->pend_pos < rs->pend.len) {
            size_t k = rs->pend.len - rs->pend_pos;
            if (k > max - n)
                k = max - n;
            memcpy(buf + n, rs->pend.buf + rs->pend_pos, k);
            n += k;
            rs->pend_pos += k;
            continue;
        }
        sb_clear(&rs->pend);
        rs->pend_pos = 0;
        if (rs->failed)
            return HTTP_STREAM_ABORT;
        if (rs->finished)
            break;
        rstream_fill(rs, max - n);
    }
    return n ? (ssize_t)n : HTTP_STREAM_END;
}

static void
rstream_free(void *ctx)
{
    rstream *rs = ctx;
    if (rs->it.st) {
        store_lock(rs->b->st);
        iter_free(&rs->it);
        store_unlock(rs->b->st);
    }
    job_clear(&rs->j);
    sb_free(&rs->pend);
    free(rs);
}

void
bulk_ingest_results(http_req *req, http_resp *resp)
{
    lf_server *srv = ctx_of(req);
    store *st = srv->st;
    const char *what = req->nseg >= 3 ? req->seg[2] : "";
    int kind;
    if (strcmp(what, "successfulResults") == 0)
        kind = R_SUCCESS;
    else if (strcmp(what, "failedResults") == 0)
        kind = R_FAILED;
    else if (strcasecmp(what, "unprocessedrecords") == 0)
        kind = R_UNPROCESSED;
    else {
        http_errorf(resp, 404, "NOT_FOUND", "The requested resource does not exist");
        return;
    }
    job j;
    store_lock(st);
    int rc = req_job(req, resp, K_INGEST, &j);
    store_unlock(st);
    if (rc != 0)
        return;
    rstream *rs = xcalloc(1, sizeof *rs);
    rs->b = srv->bulk;
    rs->j = j;
    rs->kind = kind;
    rs->next_seq = -1;
    rs->skip = j.processed;
    resp->status = 200;
    resp->content_type = CT_CSV;
    sb_clear(&resp->body);
    resp->stream = rstream_read;
    resp->stream_ctx = rs;
    resp->stream_free = rstream_free;
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

lf_bulk *
bulk_new(store *st, err_t *e)
{
    lf_bulk *b = xcalloc(1, sizeof *b);
    b->st = st;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    store_lock(st);
    int rc = exec_sql(st, schema_sql, e);
    if (rc == 0) {
        sqlite3_stmt *s = prep(st, "SELECT COALESCE(MAX(seq), 0) FROM _lf_bulk_jobs", e);
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
        qcursor_free(c);
    }
    store_unlock(b->st);
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
    free(b);
}
