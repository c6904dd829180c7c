/*
 * sfbulk: Salesforce's Bulk API 2.0 through an sfapi client (see sfbulk.h).
 */
#include "sfbulk.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sfapi_int.h"
#include "util.h"

#define WAIT_FIRST_MS   50
#define WAIT_MAX_MS     2000
#define WAIT_DEFAULT_MS (30L * 60 * 1000)
#define LISTED_MAX      1000 /* result URLs one listing may name */

/* ----- public: Bulk API 2.0 ------------------------------------------------------ */

static void
job_path(sfapi *c, sb *path, const char *job_id, const char *rest)
{
    sfapi_data_path(c, path, "/jobs/query/");
    sfapi_put_escaped(c, path, job_id);
    if (rest)
        sb_puts(path, rest);
}

int
sfbulk_query_create(sfapi *c, const char *soql, bool all, char **job_id, err_t *e)
{
    *job_id = NULL;
    sb body = SB_INIT, path = SB_INIT;
    sb_printf(&body, "{\"operation\":\"%s\",\"query\":", all ? "queryAll" : "query");
    sb_json_str(&body, soql);
    sb_puts(&body, ",\"contentType\":\"CSV\",\"columnDelimiter\":\"COMMA\",\"lineEnding\":\"LF\"}");
    sfapi_data_path(c, &path, "/jobs/query");
    sfapi_req q = {.method = "POST", .path = path.buf, .body = body.buf};
    json_t *j = NULL;
    int rc = sfapi_call_json(c, &q, true, false, NULL, &j, e);
    if (rc == 0) {
        const char *id = json_string_value(json_object_get(j, "id"));
        if (id == NULL || *id == '\0') {
            err_set(e, 200, "BAD_RESPONSE", "the job creation reply has no id");
            rc = err_class_set(e, ERR_PERMANENT);
        } else {
            *job_id = xstrdup(id);
            log_debug("sfapi: bulk query job %s created", id);
        }
    }
    json_decref(j);
    sb_free(&body);
    sb_free(&path);
    return rc;
}

int
sfbulk_query_wait(sfapi *c, const char *job_id, long timeout_ms, long *records, err_t *e)
{
    if (records)
        *records = 0;
    if (timeout_ms <= 0)
        timeout_ms = WAIT_DEFAULT_MS;
    int64_t deadline = util_mono_ms() + timeout_ms;
    long interval = WAIT_FIRST_MS;
    sb path = SB_INIT;
    job_path(c, &path, job_id, NULL);
    sfapi_req q = {.method = "GET", .path = path.buf};
    int rc = -1;
    for (;;) {
        json_t *j = NULL;
        if (sfapi_call_json(c, &q, true, false, NULL, &j, e) != 0)
            break;
        const char *state = json_string_value(json_object_get(j, "state"));
        if (state == NULL) {
            err_set(e, 200, "BAD_RESPONSE", "the job info of %s has no state", job_id);
            err_class_set(e, ERR_PERMANENT);
            json_decref(j);
            break;
        }
        if (strcmp(state, "JobComplete") == 0) {
            json_t *n = json_object_get(j, "numberRecordsProcessed");
            json_int_t v = json_integer_value(n);
            if (records)
                *records = json_is_integer(n) && v >= 0 && v <= LONG_MAX ? (long)v : -1;
            json_decref(j);
            rc = 0;
            break;
        }
        if (strcmp(state, "Failed") == 0 || strcmp(state, "Aborted") == 0) {
            const char *why = json_string_value(json_object_get(j, "errorMessage"));
            err_set(e, 200, strcmp(state, "Failed") == 0 ? "JOB_FAILED" : "JOB_ABORTED",
                    "bulk query job %s %s%s%s", job_id, state, why && *why ? ": " : "",
                    why ? why : "");
            err_class_set(e, ERR_PERMANENT);
            json_decref(j);
            break;
        }
        int64_t left = deadline - util_mono_ms();
        if (left <= 0) {
            err_set(e, 0, "JOB_TIMEOUT", "bulk query job %s is still %.40s after %ld ms", job_id,
                    state, timeout_ms);
            err_class_set(e, ERR_TRANSIENT);
            json_decref(j);
            break;
        }
        json_decref(j);
        sfapi_sleep_ms(interval < left ? interval : (long)left);
        interval = interval * 2 > WAIT_MAX_MS ? WAIT_MAX_MS : interval * 2;
    }
    sb_free(&path);
    return rc;
}

/* The results page at path (the job's own, or a URL a listing named). */
static int
results_get(sfapi *c, const char *path, const char *job, sfapi_sink sink, void *ctx,
            char **next_locator, long *nrecords, err_t *e)
{
    sfapi_req q = {.method = "GET",
                   .path = path,
                   .accept = "text/csv",
                   .sink = sink,
                   .sink_ctx = ctx};
    sfapi_resp r = {.c = c};
    int rc = sfapi_call(c, &q, &r, e);
    if (rc == 0 && r.locator_bad) {
        err_set(e, (int)r.status, "BAD_RESPONSE",
                "the Sforce-Locator header of job %s is over %d bytes", job, LOCATOR_MAX - 1);
        rc = err_class_set(e, ERR_PERMANENT);
    } else if (rc == 0) {
        if (next_locator && !r.has_locator)
            log_warn("sfapi: results of job %s came without Sforce-Locator; taking it as the "
                     "last page",
                     job);
        else if (next_locator && r.locator[0] && strcmp(r.locator, "null") != 0)
            *next_locator = xstrdup(r.locator);
        if (nrecords)
            *nrecords = r.nrecords;
    }
    sb_free(&r.body);
    return rc;
}

int
sfbulk_query_results(sfapi *c, const char *job_id, const char *locator, long max_records,
                     sfapi_sink sink, void *ctx, char **next_locator, long *nrecords, err_t *e)
{
    *next_locator = NULL;
    if (nrecords)
        *nrecords = 0;
    sb path = SB_INIT;
    job_path(c, &path, job_id, "/results");
    char sep = '?';
    if (max_records > 0) {
        sb_printf(&path, "%cmaxRecords=%ld", sep, max_records);
        sep = '&';
    }
    if (locator && *locator) {
        sb_printf(&path, "%clocator=", sep);
        sfapi_put_escaped(c, &path, locator);
    }
    int rc = results_get(c, path.buf, job_id, sink, ctx, next_locator, nrecords, e);
    sb_free(&path);
    return rc;
}

int
sfbulk_query_results_at(sfapi *c, const char *url, sfapi_sink sink, void *ctx, long *nrecords,
                        err_t *e)
{
    if (nrecords)
        *nrecords = 0;
    if (sfapi_check_path(c, url, "/services/data/", e) != 0)
        return -1;
    return results_get(c, url, url, sink, ctx, NULL, nrecords, e);
}

void
sfbulk_pages_free(sfbulk_pages *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->url[i]);
    free(p->url);
    free(p->next);
    *p = (sfbulk_pages){0};
}

/* The listing's JSON into out: its result URLs and the next listing's. */
static int
pages_take(const char *job, json_t *j, sfbulk_pages *out, err_t *e)
{
    json_t *pages = json_object_get(j, "resultPages"), *done = json_object_get(j, "done");
    /* the reference names it nextRecordUrl in one place and nextRecordsUrl in another */
    json_t *next = json_object_get(j, "nextRecordsUrl");
    if (!next || json_is_null(next))
        next = json_object_get(j, "nextRecordUrl");
    size_t n = json_array_size(pages);
    if (!json_is_array(pages) || n > LISTED_MAX || (done && !json_is_boolean(done)) ||
        (next && !json_is_null(next) && !json_is_string(next)))
        goto bad;
    bool last = done ? json_is_true(done) : !json_is_string(next);
    if (!last && (!json_is_string(next) || n == 0)) /* no way on, or no progress */
        goto bad;
    out->url = xcalloc(n ? n : 1, sizeof *out->url);
    for (size_t i = 0; i < n; i++) {
        /* resultUrl in the reference; resultLink in some published schemas of it */
        json_t *pg = json_array_get(pages, i);
        const char *u = json_string_value(json_object_get(pg, "resultUrl"));
        if (!u)
            u = json_string_value(json_object_get(pg, "resultLink"));
        if (!u || sfapi_check_path(NULL, u, "/services/data/", e) != 0)
            goto bad;
        out->url[out->n++] = xstrdup(u);
    }
    if (!last) {
        if (sfapi_check_path(NULL, json_string_value(next), "/services/data/", e) != 0)
            goto bad;
        out->next = xstrdup(json_string_value(next));
    }
    return 0;
bad:
    sfbulk_pages_free(out);
    err_set(e, 200, "BAD_RESPONSE", "the result pages of job %s are not a listing of pages", job);
    return err_class_set(e, ERR_PERMANENT);
}

int
sfbulk_pages_parse(const char *body, size_t len, sfbulk_pages *out, err_t *e)
{
    *out = (sfbulk_pages){0};
    json_error_t je;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    int rc = j && json_is_object(j)
                 ? pages_take("(given)", j, out, e)
                 : err_set(e, 200, "BAD_RESPONSE", "the result pages are not a JSON object");
    json_decref(j);
    return rc;
}

int
sfbulk_query_pages(sfapi *c, const char *job_id, const char *listing, sfbulk_pages *out, err_t *e)
{
    *out = (sfbulk_pages){0};
    sb path = SB_INIT;
    if (listing) {
        if (sfapi_check_path(c, listing, "/services/data/", e) != 0)
            return -1;
        sb_puts(&path, listing);
    } else {
        job_path(c, &path, job_id, "/resultPages");
    }
    sfapi_req q = {.method = "GET", .path = path.buf};
    json_t *j = NULL;
    int rc = sfapi_call_json(c, &q, true, false, NULL, &j, e);
    if (rc == 0)
        rc = pages_take(job_id, j, out, e);
    json_decref(j);
    sb_free(&path);
    return rc;
}

int
sfbulk_query_delete(sfapi *c, const char *job_id, err_t *e)
{
    sb path = SB_INIT;
    job_path(c, &path, job_id, NULL);
    sfapi_req q = {.method = "DELETE", .path = path.buf};
    sfapi_resp r = {.c = c};
    int rc = sfapi_call(c, &q, &r, e);
    sb_free(&r.body);
    sb_free(&path);
    return rc;
}

/* ----- public: Bulk API 2.0 ingest ----------------------------------------------- */

int
sfbulk_ingest(sfapi *c, const char *object, const char *operation, const char *ext_field,
              const char *csv, long timeout_ms, char **job_id, long *processed, long *failed,
              err_t *e)
{
    *job_id = NULL;
    *processed = *failed = 0;
    sb body = SB_INIT, path = SB_INIT;
    sb_puts(&body, "{\"object\":");
    sb_json_str(&body, object);
    sb_puts(&body, ",\"operation\":");
    sb_json_str(&body, operation);
    if (ext_field) {
        sb_puts(&body, ",\"externalIdFieldName\":");
        sb_json_str(&body, ext_field);
    }
    sb_puts(&body, ",\"contentType\":\"CSV\",\"columnDelimiter\":\"COMMA\",\"lineEnding\":\"LF\"}");
    sfapi_data_path(c, &path, "/jobs/ingest");
    sfapi_req q = {.method = "POST", .path = path.buf, .body = body.buf};
    json_t *j = NULL;
    int rc = sfapi_call_json(c, &q, true, false, NULL, &j, e);
    const char *id = rc == 0 ? json_string_value(json_object_get(j, "id")) : NULL;
    if (rc == 0 && (!id || !*id)) {
        err_set(e, 200, "BAD_RESPONSE", "the ingest job creation reply has no id");
        rc = err_class_set(e, ERR_PERMANENT);
    }
    if (rc == 0)
        *job_id = xstrdup(id);
    json_decref(j);
    j = NULL;
    if (rc == 0) {
        sb_clear(&path);
        sfapi_data_path(c, &path, "/jobs/ingest/");
        sfapi_put_escaped(c, &path, *job_id);
        sb_puts(&path, "/batches");
        sfapi_req up = {.method = "PUT", .path = path.buf, .body = csv, .content_type = "text/csv"};
        sfapi_resp r = {.c = c};
        rc = sfapi_call(c, &up, &r, e);
        sb_free(&r.body);
    }
    if (rc == 0) {
        sb_clear(&path);
        sfapi_data_path(c, &path, "/jobs/ingest/");
        sfapi_put_escaped(c, &path, *job_id);
        sfapi_req close = {.method = "PATCH",
                           .path = path.buf,
                           .body = "{\"state\":\"UploadComplete\"}"};
        rc = sfapi_call_json(c, &close, true, false, NULL, &j, e);
        json_decref(j);
        j = NULL;
    }
    if (timeout_ms <= 0)
        timeout_ms = WAIT_DEFAULT_MS;
    int64_t deadline = util_mono_ms() + timeout_ms;
    long pause = 20;
    while (rc == 0) {
        sfapi_req get = {.method = "GET", .path = path.buf};
        rc = sfapi_call_json(c, &get, true, false, NULL, &j, e);
        if (rc != 0)
            break;
        const char *state = json_string_value(json_object_get(j, "state"));
        *processed = (long)json_integer_value(json_object_get(j, "numberRecordsProcessed"));
        *failed = (long)json_integer_value(json_object_get(j, "numberRecordsFailed"));
        if (state && strcmp(state, "JobComplete") == 0) {
            json_decref(j);
            break;
        }
        if (state && (strcmp(state, "Failed") == 0 || strcmp(state, "Aborted") == 0)) {
            const char *msg = json_string_value(json_object_get(j, "errorMessage"));
            err_set(e, 400, strcmp(state, "Failed") == 0 ? "JOB_FAILED" : "JOB_ABORTED",
                    "ingest job %s %s: %s", *job_id, state, msg ? msg : "(no message)");
            rc = err_class_set(e, ERR_PERMANENT);
            json_decref(j);
            break;
        }
        json_decref(j);
        j = NULL;
        if (util_mono_ms() > deadline) {
            err_set(e, 504, "JOB_TIMEOUT", "ingest job %s did not finish in time", *job_id);
            rc = err_class_set(e, ERR_TRANSIENT);
            break;
        }
        sfapi_sleep_ms(pause);
        pause = pause * 2 > 1000 ? 1000 : pause * 2;
    }
    sb_free(&body);
    sb_free(&path);
    return rc;
}

int
sfbulk_ingest_results(sfapi *c, const char *job_id, bool failed, sb *csv, err_t *e)
{
    sb path = SB_INIT;
    sfapi_data_path(c, &path, "/jobs/ingest/");
    sfapi_put_escaped(c, &path, job_id);
    sb_puts(&path, failed ? "/failedResults" : "/successfulResults");
    sfapi_req q = {.method = "GET", .path = path.buf, .accept = "text/csv"};
    sfapi_resp r = {.c = c};
    int rc = sfapi_call(c, &q, &r, e);
    if (rc == 0)
        sb_append(csv, r.body.buf ? r.body.buf : "", r.body.len);
    sb_free(&r.body);
    sb_free(&path);
    return rc;
}
