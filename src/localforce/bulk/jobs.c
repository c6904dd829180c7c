/*
 * jobs: Bulk API 2.0 jobs as the other bulk modules share them: the job record
 * and its row in _lf_bulk_jobs, states and operations, locators, the job info
 * JSON, request parsing (body, CSV options, the job named by the URL), and
 * the worker's wake-up.
 */
#include "jobs.h"

#include <math.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth.h"
#include "ctx.h"
#include "log.h"
#include "sfid.h"
#include "util.h"

const char *const jobs_state_name[JS__COUNT] = {
    "Open", "UploadComplete", "InProgress", "JobComplete", "Aborted", "Failed",
};
/* As Salesforce spells states in its JOB_NOT_COMPLETE message. */
const char *const jobs_state_upper[JS__COUNT] = {
    "OPEN", "UPLOAD_COMPLETE", "IN_PROGRESS", "JOB_COMPLETE", "ABORTED", "FAILED",
};

const struct job_op jobs_ops[OP__COUNT] = {
    {"query", K_QUERY},   {"queryAll", K_QUERY}, {"insert", K_INGEST},     {"update", K_INGEST},
    {"upsert", K_INGEST}, {"delete", K_INGEST},  {"hardDelete", K_INGEST},
};
/* ----- small helpers ----------------------------------------------------- */

const char *
jobs_ver_of(http_req *req)
{
    return req->seg[0] + 1; /* "v59.0" -> "59.0" */
}

int
jobs_db_fail(store *st, err_t *e, const char *what)
{
    const char *m = sqlite3_errmsg(store_db(st));
    log_error("bulk: %s: %s", what, m);
    return err_set(e, 500, "UNKNOWN_EXCEPTION", "An unexpected error occurred: %s", m);
}

sqlite3_stmt *
jobs_prep(store *st, const char *sql, err_t *e)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL) != SQLITE_OK) {
        jobs_db_fail(st, e, "prepare");
        sqlite3_finalize(s);
        return NULL;
    }
    return s;
}

int
jobs_exec(store *st, const char *sql, err_t *e)
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

void
jobs_kick(lf_bulk *b)
{
    pthread_mutex_lock(&b->mu);
    b->kicked = true;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

bool
jobs_stopping(lf_bulk *b)
{
    pthread_mutex_lock(&b->mu);
    bool s = b->stop;
    pthread_mutex_unlock(&b->mu);
    return s;
}

int
jobs_state_parse(const char *s, jstate *out)
{
    for (int i = 0; i < JS__COUNT; i++)
        if (s && strcmp(s, jobs_state_name[i]) == 0) {
            *out = (jstate)i;
            return 0;
        }
    return -1;
}

int
jobs_op_parse(const char *s, jop *out)
{
    for (int i = 0; i < OP__COUNT; i++)
        if (s && strcmp(s, jobs_ops[i].name) == 0) {
            *out = (jop)i;
            return 0;
        }
    return -1;
}

/* ----- locators: base64 of the decimal row offset ------------------------- */

void
jobs_locator_make(int64_t offset, char out[32])
{
    char dec[24];
    int n = snprintf(dec, sizeof dec, "%lld", (long long)offset);
    int len = EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)dec, n);
    while (len > 0 && out[len - 1] == '=') /* Salesforce's locators carry no padding */
        out[--len] = '\0';
}

/* 0 and *offset, or -1 if s is not a locator we made. Padding is optional. */
int
jobs_locator_parse(const char *s, int64_t *offset)
{
    size_t n = strlen(s);
    while (n && s[n - 1] == '=')
        n--;
    if (n == 0 || n > 28 || n % 4 == 1)
        return -1;
    char in[32];
    for (size_t i = 0; i < n; i++) {
        /* EVP_DecodeBlock would skip blanks around the text: refuse them here. */
        char c = s[i];
        bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && c != '+' && c != '/')
            return -1;
        in[i] = c;
    }
    size_t pad = (4 - n % 4) % 4;
    memset(in + n, '=', pad);
    unsigned char dec[24];
    int k = EVP_DecodeBlock(dec, (const unsigned char *)in, (int)(n + pad));
    if (k < 0)
        return -1;
    k -= (int)pad; /* EVP_DecodeBlock counts padding as data bytes */
    dec[k] = '\0';
    for (int i = 0; i < k; i++)
        if (dec[i] < '0' || dec[i] > '9')
            return -1;
    if (util_parse_i64((const char *)dec, offset) != 0 || *offset < 0)
        return -1;
    return 0;
}

/* ----- jobs in the database ---------------------------------------------- */

void
jobs_clear(job *j)
{
    free(j->object);
    free(j->query);
    free(j->ext_field);
    free(j->error);
    free(j->columns);
    free(j->upload_error);
    memset(j, 0, sizeof *j);
}

void
jobs_job_from_row(sqlite3_stmt *s, job *j)
{
    memset(j, 0, sizeof *j);
    snprintf(j->id, sizeof j->id, "%s", (const char *)sqlite3_column_text(s, 0));
    j->seq = sqlite3_column_int64(s, 1);
    j->kind = sqlite3_column_int(s, 2);
    if (jobs_op_parse((const char *)sqlite3_column_text(s, 3), &j->op) != 0)
        j->op = j->kind == K_QUERY ? OP_QUERY : OP_INSERT;
    j->object = col_dup(s, 4);
    j->query = col_dup(s, 5);
    j->ext_field = col_dup(s, 6);
    const char *cb = (const char *)sqlite3_column_text(s, 7);
    snprintf(j->created_by, sizeof j->created_by, "%s", cb ? cb : "");
    j->created = sqlite3_column_int64(s, 8);
    j->modstamp = sqlite3_column_int64(s, 9);
    if (jobs_state_parse((const char *)sqlite3_column_text(s, 10), &j->state) != 0)
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
int
jobs_load(store *st, const char *id, job *j, err_t *e)
{
    sqlite3_stmt *s = jobs_prep(st, "SELECT " JOB_COLS " FROM _lf_bulk_jobs WHERE id = ?1", e);
    if (s == NULL)
        return -1;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    int out;
    if (rc == SQLITE_ROW) {
        jobs_job_from_row(s, j);
        out = 0;
    } else if (rc == SQLITE_DONE) {
        out = 1;
    } else {
        out = jobs_db_fail(st, e, "load job");
    }
    sqlite3_finalize(s);
    return out;
}

int
jobs_insert(store *st, const job *j, err_t *e)
{
    sqlite3_stmt *s = jobs_prep(st,
                                "INSERT INTO _lf_bulk_jobs (" JOB_COLS ") VALUES (?1, ?2, ?3, ?4, "
                                "?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, 0, 0, 0, NULL, NULL, "
                                "NULL, 0, 0)",
                                e);
    if (s == NULL)
        return -1;
    sqlite3_bind_text(s, 1, j->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, j->seq);
    sqlite3_bind_int(s, 3, j->kind);
    sqlite3_bind_text(s, 4, jobs_ops[j->op].name, -1, SQLITE_STATIC);
    bind_text(s, 5, j->object);
    bind_text(s, 6, j->query);
    bind_text(s, 7, j->ext_field);
    bind_text(s, 8, j->created_by);
    sqlite3_bind_int64(s, 9, j->created);
    sqlite3_bind_int64(s, 10, j->modstamp);
    sqlite3_bind_text(s, 11, jobs_state_name[j->state], -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 12, csv_delim_name(j->delim), -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 13, csv_eol_name(j->eol), -1, SQLITE_STATIC);
    bind_text(s, 14, j->ver);
    int rc = sqlite3_step(s) == SQLITE_DONE ? 0 : jobs_db_fail(st, e, "insert job");
    sqlite3_finalize(s);
    return rc;
}

/* Set a job's state (and modstamp); error_msg for Failed. Store lock held. */
int
jobs_set_state(store *st, job *j, jstate to, const char *error_msg, err_t *e)
{
    sqlite3_stmt *s = jobs_prep(st,
                                "UPDATE _lf_bulk_jobs SET state = ?2, modstamp = ?3, "
                                "error = COALESCE(?4, error) WHERE id = ?1",
                                e);
    if (s == NULL)
        return -1;
    int64_t now = util_now_ms();
    sqlite3_bind_text(s, 1, j->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, jobs_state_name[to], -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, now);
    bind_text(s, 4, error_msg);
    int rc = sqlite3_step(s) == SQLITE_DONE ? 0 : jobs_db_fail(st, e, "job state");
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

int
jobs_delete_rows(store *st, const char *id, err_t *e)
{
    static const char *const sql[] = {
        "DELETE FROM _lf_bulk_results WHERE job = ?1",
        "DELETE FROM _lf_bulk_data WHERE job = ?1",
        "DELETE FROM _lf_bulk_jobs WHERE id = ?1",
    };
    for (size_t i = 0; i < sizeof sql / sizeof sql[0]; i++) {
        sqlite3_stmt *s = jobs_prep(st, sql[i], e);
        if (s == NULL)
            return -1;
        sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
        int rc = sqlite3_step(s);
        sqlite3_finalize(s);
        if (rc != SQLITE_DONE)
            return jobs_db_fail(st, e, "delete job");
    }
    return 0;
}

/* ----- job info JSON ----------------------------------------------------- */

static void
put_kv_str(sb *out, const char *key, const char *v)
{
    sb_printf(out, ",\"%s\":", key);
    if (v)
        sb_json_str(out, v);
    else
        sb_puts(out, "null");
}

void
jobs_job_json(sb *out, const job *j, int mode)
{
    char created[32], stamp[32];
    util_fmt_datetime(j->created, created);
    util_fmt_datetime(j->modstamp, stamp);
    sb_puts(out, "{\"id\":");
    sb_json_str(out, j->id);
    put_kv_str(out, "operation", jobs_ops[j->op].name);
    put_kv_str(out, "object", j->object);
    put_kv_str(out, "createdById", j->created_by);
    put_kv_str(out, "createdDate", created);
    put_kv_str(out, "systemModstamp", stamp);
    put_kv_str(out, "state", jobs_state_name[j->state]);
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

void
jobs_answer(http_resp *resp, int status, const job *j, int mode)
{
    resp->status = status;
    resp->content_type = CT_JSON;
    sb_clear(&resp->body);
    jobs_job_json(&resp->body, j, mode);
}

/* ----- request helpers --------------------------------------------------- */

json_t *
jobs_body_json(http_req *req, http_resp *resp)
{
    json_t *j = http_json_body(req, resp);
    if (j == NULL)
        return NULL;
    if (!json_is_object(j)) {
        json_decref(j);
        http_errorf(resp, 400, "JSON_PARSER_ERROR",
                    "The request body must be a JSON object describing the job.");
        return NULL;
    }
    return j;
}

/* A job-creating request: its JSON body (jobs_body_json), and *j cleared for a
 * new job of that kind. NULL (answered) if the body is not a JSON object. */
json_t *
jobs_create_body(http_req *req, http_resp *resp, job *j, int kind)
{
    json_t *body = jobs_body_json(req, resp);
    if (body == NULL)
        return NULL;
    memset(j, 0, sizeof *j);
    j->kind = kind;
    return body;
}

/* A string member, NULL if absent; -1 (answered) if present but not a string. */
int
jobs_opt_string(json_t *o, const char *key, const char **out, http_resp *resp)
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
int
jobs_csv_options(json_t *body, job *j, http_resp *resp)
{
    const char *delim, *eol, *ct;
    if (jobs_opt_string(body, "columnDelimiter", &delim, resp) ||
        jobs_opt_string(body, "lineEnding", &eol, resp) ||
        jobs_opt_string(body, "contentType", &ct, resp))
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
int
jobs_of_request(http_req *req, http_resp *resp, int kind, job *j)
{
    store *st = ctx_of(req)->st;
    char id[19];
    err_t e;
    if (req->nseg < 2 || sfid_normalize(req->seg[1], id) != 0 || !sfid_has_prefix(id, JOB_PREFIX)) {
        http_errorf(resp, 404, "NOT_FOUND", "The requested resource does not exist");
        return -1;
    }
    int rc = jobs_load(st, id, j, &e);
    if (rc < 0) {
        http_error(resp, &e);
        return -1;
    }
    if (rc > 0 || j->kind != kind) {
        if (rc == 0)
            jobs_clear(j);
        http_errorf(resp, 404, "NOT_FOUND", "The requested resource does not exist");
        return -1;
    }
    return 0;
}

void
jobs_new(lf_bulk *b, http_req *req, job *j)
{
    const lf_session *s = req->auth;
    b->seq++;
    j->seq = b->seq;
    sfid_make(JOB_PREFIX, (uint64_t)j->seq, j->id);
    snprintf(j->created_by, sizeof j->created_by, "%s", s ? s->user_id : "");
    j->created = j->modstamp = util_now_ms();
    snprintf(j->ver, sizeof j->ver, "%s", jobs_ver_of(req));
}
