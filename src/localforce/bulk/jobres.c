/*
 * jobres: the job resources common to query and ingest jobs: the job list
 * (GET jobs/{query|ingest}, paged) and one job (GET, PATCH its state, DELETE
 * it with its data and parked statements).
 */
#include "jobres.h"

#include <math.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "bquery.h"
#include "ctx.h"
#include "util.h"
static void
jobres_list(http_req *req, http_resp *resp, int kind)
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
    sqlite3_stmt *s = jobs_prep(st,
                                "SELECT " JOB_COLS
                                " FROM _lf_bulk_jobs WHERE kind = ?1 AND seq > ?2 "
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
        jobs_job_from_row(s, &j);
        last = j.seq;
        n++;
        if (want == NULL || strcmp(want, kind == K_QUERY ? "V2Query" : "V2Ingest") == 0) {
            if (recs.len)
                sb_putc(&recs, ',');
            jobs_job_json(&recs, &j, INFO_LIST);
        }
        jobs_clear(&j);
    }
    sqlite3_finalize(s);
    store_unlock(st);
    sb_puts(&out, more ? "false" : "true");
    sb_puts(&out, ",\"records\":[");
    sb_append(&out, recs.buf ? recs.buf : "", recs.len);
    sb_puts(&out, "],\"nextRecordsUrl\":");
    if (more)
        sb_printf(&out, "\"/services/data/v%s/jobs/%s?queryLocator=%lld\"", jobs_ver_of(req),
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
jobres_job(http_req *req, http_resp *resp, int kind)
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
        if ((body = jobs_body_json(req, resp)) == NULL)
            return;
        if (jobs_opt_string(body, "state", &want, resp) != 0) {
            json_decref(body);
            return;
        }
        if (want == NULL || jobs_state_parse(want, &to) != 0 ||
            !(to == JS_ABORTED || (kind == K_INGEST && to == JS_UPLOAD_COMPLETE))) {
            http_errorf(resp, 400, "INVALIDJOBSTATE", "Invalid state for the job: %.100s",
                        want ? want : "null");
            json_decref(body);
            return;
        }
    }
    store_lock(st);
    if (jobs_of_request(req, resp, kind, &j) != 0) {
        store_unlock(st);
        json_decref(body);
        return;
    }
    if (!patch && !del) {
        jobs_answer(resp, 200, &j, INFO_FULL);
    } else if (del) {
        bool ok = j.state == JS_JOB_COMPLETE || j.state == JS_ABORTED || j.state == JS_FAILED ||
                  (kind == K_INGEST && j.state == JS_UPLOAD_COMPLETE);
        if (!ok) {
            http_errorf(resp, 400, "INVALIDJOBSTATE",
                        "Deleting a job in state %s is not allowed: abort it first",
                        jobs_state_name[j.state]);
        } else if (jobs_delete_rows(st, j.id, &e) != 0) {
            http_error(resp, &e);
        } else {
            bq_park_expire(b, j.id);
            resp->status = 204;
            sb_clear(&resp->body);
        }
    } else if (to == JS_UPLOAD_COMPLETE) {
        if (j.state != JS_OPEN) {
            http_errorf(resp, 400, "INVALIDJOBSTATE", "Closing already %s Job not allowed",
                        j.state == JS_ABORTED  ? "Aborted"
                        : j.state == JS_FAILED ? "Failed"
                                               : "Closed");
        } else if (jobs_set_state(st, &j, JS_UPLOAD_COMPLETE, NULL, &e) != 0) {
            http_error(resp, &e);
        } else {
            jobs_answer(resp, 200, &j, INFO_BRIEF);
            jobs_kick(b);
        }
    } else { /* Aborted */
        if (j.state == JS_JOB_COMPLETE || j.state == JS_ABORTED || j.state == JS_FAILED) {
            http_errorf(resp, 400, "INVALIDJOBSTATE", "Aborting already %s Job not allowed",
                        j.state == JS_JOB_COMPLETE ? "Completed" : jobs_state_name[j.state]);
        } else if (jobs_set_state(st, &j, JS_ABORTED, NULL, &e) != 0) {
            http_error(resp, &e);
        } else {
            jobs_answer(resp, 200, &j, INFO_BRIEF);
        }
    }
    jobs_clear(&j);
    store_unlock(st);
    json_decref(body);
}

void
bulk_query_list(http_req *req, http_resp *resp)
{
    jobres_list(req, resp, K_QUERY);
}

void
bulk_query_job(http_req *req, http_resp *resp)
{
    jobres_job(req, resp, K_QUERY);
}

void
bulk_ingest_list(http_req *req, http_resp *resp)
{
    jobres_list(req, resp, K_INGEST);
}

void
bulk_ingest_job(http_req *req, http_resp *resp)
{
    jobres_job(req, resp, K_INGEST);
}
