/*
 * Unit tests for bulk: the Bulk API 2.0 handlers driven directly, without a
 * network, against an in-memory org: query jobs (job info, CSV results and
 * their paging headers, delimiters, queryAll, errors), ingest jobs (insert,
 * update with #N/A, upsert with a relationship column, delete, the results
 * CSVs, malformed uploads, wrong states, abort and unprocessed records) and
 * jobs outliving the Bulk module (a restart).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sqlite3.h>

#include "auth.h"
#include "bulk.h"
#include "server.h"
#include "store.h"
#include "util.h"

static const char org_json[] =
    "{\"organization\": {\"name\": \"Bulk Test Org\"},"
    " \"users\": [{\"username\": \"bulk@localforce.test\", \"password\": \"pw\","
    "             \"last_name\": \"Bulk\", \"email\": \"bulk@localforce.test\"}],"
    " \"objects\": {"
    "  \"Account\": {\"fields\": {"
    "    \"External_Id__c\": {\"type\": \"string\", \"length\": 20, \"unique\": true,"
    "                         \"external_id\": true}}},"
    "  \"Teacher__c\": {\"fields\": {"
    "    \"First_Name__c\": {\"type\": \"string\", \"length\": 80, \"required\": true},"
    "    \"Email__c\": {\"type\": \"email\", \"length\": 80, \"unique\": true,"
    "                   \"external_id\": true},"
    "    \"Salary__c\": {\"type\": \"currency\"},"
    "    \"Score__c\": {\"type\": \"double\", \"precision\": 18, \"scale\": 8},"
    "    \"Years__c\": {\"type\": \"int\", \"precision\": 3},"
    "    \"Active__c\": {\"type\": \"boolean\"},"
    "    \"Hired__c\": {\"type\": \"date\"},"
    "    \"Last_Seen__c\": {\"type\": \"datetime\"},"
    "    \"School__c\": {\"type\": \"reference\", \"reference_to\": \"Account\","
    "                    \"relationship_name\": \"School__r\"}}}},"
    " \"records\": {\"Account\": [{\"Name\": \"School One\", \"External_Id__c\": \"S-1\"}]}}";

static store *st;
static lf_server srv;
static lf_session session;
static lf_actor actor;

/* ---- helpers ------------------------------------------------------------ */

typedef struct call {
    http_req req;
    http_resp resp;
    char path[256];
    sb out; /* the streamed body, when there is one */
} call;

/* Run handler h for METHOD on segs (version, job id, resource) with body and
 * fake query args (triples "Q", name, value). The body (streamed or not) ends up
 * in c->out. */
static void
run(call *c, http_handler h, const char *method, const char *job, const char *res, const char *body,
    const char *const *fake)
{
    memset(c, 0, sizeof *c);
    c->req.method = method;
    c->req.seg[0] = "v59.0";
    c->req.seg[1] = job;
    c->req.seg[2] = res;
    c->req.nseg = res ? 3 : job ? 2 : 1;
    c->req.body = body ? body : "";
    c->req.body_len = body ? strlen(body) : 0;
    c->req.ctx = &srv;
    c->req.auth = &session;
    c->req.fake = fake;
    c->resp.status = 200;
    h(&c->req, &c->resp);
    if (c->resp.stream) {
        /* Read it in small, odd pieces, as a slow client would. */
        char buf[37];
        uint64_t pos = 0;
        for (;;) {
            ssize_t n = c->resp.stream(c->resp.stream_ctx, pos, buf, sizeof buf);
            if (n == HTTP_STREAM_END)
                break;
            assert_true(n > 0);
            sb_append(&c->out, buf, (size_t)n);
            pos += (uint64_t)n;
        }
    } else {
        sb_append(&c->out, c->resp.body.buf ? c->resp.body.buf : "", c->resp.body.len);
    }
}

static void
done(call *c)
{
    http_resp_free(&c->resp);
    sb_free(&c->out);
}

static const char *
header(call *c, const char *name)
{
    for (int i = 0; i < c->resp.nheaders; i++)
        if (strcasecmp(c->resp.hname[i], name) == 0)
            return c->resp.hvalue[i];
    return NULL;
}

static json_t *
body_json(call *c)
{
    json_error_t je;
    json_t *j = json_loads(sb_str(&c->out), 0, &je);
    if (j == NULL)
        fail_msg("not JSON (%s): %s", je.text, sb_str(&c->out));
    return j;
}

static const char *
jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* The first error's errorCode of a REST error body. */
static void
expect_error(call *c, int status, const char *code)
{
    if (c->resp.status != status)
        fail_msg("expected %d %s, got %d: %s", status, code, c->resp.status, sb_str(&c->out));
    json_t *j = body_json(c);
    assert_true(json_is_array(j));
    assert_string_equal(jstr(json_array_get(j, 0), "errorCode"), code);
    json_decref(j);
}

/* Create a job; returns its id in id. */
static void
create_job(http_handler h, const char *body, char id[19])
{
    call c;
    run(&c, h, "POST", NULL, NULL, body, NULL);
    if (c.resp.status != 200)
        fail_msg("job create: %d %s", c.resp.status, sb_str(&c.out));
    json_t *j = body_json(&c);
    snprintf(id, 19, "%s", jstr(j, "id"));
    json_decref(j);
    done(&c);
}

/* Poll a job until its state is not UploadComplete/InProgress; returns the job info. */
static json_t *
wait_job(http_handler h, const char *id)
{
    for (int i = 0; i < 1000; i++) {
        call c;
        run(&c, h, "GET", id, NULL, NULL, NULL);
        assert_int_equal(c.resp.status, 200);
        json_t *j = body_json(&c);
        done(&c);
        const char *s = jstr(j, "state");
        if (strcmp(s, "UploadComplete") != 0 && strcmp(s, "InProgress") != 0)
            return j;
        json_decref(j);
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    fail_msg("job %s did not finish", id);
    return NULL;
}

static void
teacher(const char *json, char id[19])
{
    json_error_t je;
    json_t *r = json_loads(json, 0, &je);
    assert_non_null(r);
    err_t e;
    char tmp[19];
    if (store_create(st, &actor, "Teacher__c", r, id ? id : tmp, &e) != 0)
        fail_msg("create: %s %s", e.code, e.msg);
    json_decref(r);
}

/* An ingest job with one upload, closed and run to its end. Returns the final job info. */
static json_t *
ingest(const char *job_body, const char *csv, char id[19])
{
    create_job(bulk_ingest_create, job_body, id);
    call c;
    run(&c, bulk_ingest_upload, "PUT", id, "batches", csv, NULL);
    assert_int_equal(c.resp.status, 201);
    done(&c);
    run(&c, bulk_ingest_job, "PATCH", id, NULL, "{\"state\":\"UploadComplete\"}", NULL);
    assert_int_equal(c.resp.status, 200);
    done(&c);
    return wait_job(bulk_ingest_job, id);
}

static char *
results(const char *id, const char *which)
{
    call c;
    run(&c, bulk_ingest_results, "GET", id, which, NULL, NULL);
    assert_int_equal(c.resp.status, 200);
    assert_string_equal(c.resp.content_type, "text/csv");
    char *s = xstrdup(sb_str(&c.out));
    done(&c);
    return s;
}

static int
setup(void **state)
{
    (void)state;
    err_t e;
    assert_int_equal(store_open(":memory:", &st, &e), 0);
    json_error_t je;
    json_t *org = json_loads(org_json, 0, &je);
    if (org == NULL)
        fail_msg("org JSON: %s", je.text);
    if (store_load_org_json(st, org, &e) != 0)
        fail_msg("org: %s", e.msg);
    json_decref(org);
    memset(&srv, 0, sizeof srv);
    srv.st = st;
    srv.bulk = bulk_new(st, &e);
    assert_non_null(srv.bulk);
    const lf_user *u = store_user_by_name(st, "bulk@localforce.test");
    assert_non_null(u);
    memset(&session, 0, sizeof session);
    snprintf(session.user_id, sizeof session.user_id, "%s", u->id);
    actor.user_id = session.user_id;
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    bulk_free(srv.bulk);
    store_close(st);
    return 0;
}

/* ---- query jobs --------------------------------------------------------- */

static void
test_query_job_info(void **state)
{
    (void)state;
    char id[19];
    call c;
    run(&c, bulk_query_create, "POST", NULL, NULL,
        "{\"operation\":\"query\",\"query\":\"SELECT Id FROM Account\"}", NULL);
    assert_int_equal(c.resp.status, 200);
    json_t *j = body_json(&c);
    done(&c);
    snprintf(id, sizeof id, "%s", jstr(j, "id"));
    assert_int_equal(strlen(id), 18);
    assert_memory_equal(id, "750", 3);
    assert_string_equal(jstr(j, "operation"), "query");
    assert_string_equal(jstr(j, "object"), "Account");
    assert_string_equal(jstr(j, "createdById"), session.user_id);
    assert_string_equal(jstr(j, "state"), "UploadComplete");
    assert_string_equal(jstr(j, "concurrencyMode"), "Parallel");
    assert_string_equal(jstr(j, "contentType"), "CSV");
    assert_string_equal(jstr(j, "lineEnding"), "LF");
    assert_string_equal(jstr(j, "columnDelimiter"), "COMMA");
    assert_true(json_is_real(json_object_get(j, "apiVersion")));
    assert_true(json_real_value(json_object_get(j, "apiVersion")) == 59.0);
    assert_int_equal(strlen(jstr(j, "createdDate")), 28);
    json_decref(j);

    j = wait_job(bulk_query_job, id);
    assert_string_equal(jstr(j, "state"), "JobComplete");
    assert_string_equal(jstr(j, "jobType"), "V2Query");
    assert_int_equal(json_integer_value(json_object_get(j, "numberRecordsProcessed")), 1);
    assert_true(json_is_integer(json_object_get(j, "retries")));
    assert_true(json_is_integer(json_object_get(j, "totalProcessingTime")));
    json_decref(j);
}

static void
test_query_results_csv(void **state)
{
    (void)state;
    teacher("{\"First_Name__c\": \"Jane's \\\"Best\\\", Co\", \"Email__c\": \"jane@x.org\","
            " \"Salary__c\": 1234.5, \"Years__c\": 7, \"Active__c\": true,"
            " \"Hired__c\": \"2024-01-02\", \"Last_Seen__c\": \"2024-03-04T05:06:07.089Z\","
            " \"School__r\": {\"External_Id__c\": \"S-1\"}}",
            NULL);
    teacher("{\"First_Name__c\": \"Line\\nbreak\", \"Email__c\": \"nul@x.org\"}", NULL);
    char id[19];
    create_job(bulk_query_create,
               "{\"operation\":\"query\",\"query\":\"SELECT First_Name__c, Salary__c, Years__c, "
               "Active__c, Hired__c, Last_Seen__c, School__r.Name, school__r.external_id__c "
               "FROM Teacher__c WHERE Email__c IN ('jane@x.org', 'nul@x.org') ORDER BY Email__c\"}",
               id);
    json_decref(wait_job(bulk_query_job, id));
    call c;
    run(&c, bulk_query_results, "GET", id, "results", NULL, NULL);
    assert_int_equal(c.resp.status, 200);
    assert_string_equal(c.resp.content_type, "text/csv");
    assert_string_equal(header(&c, "Sforce-NumberOfRecords"), "2");
    assert_string_equal(header(&c, "Sforce-Locator"), "null");
    assert_string_equal(sb_str(&c.out),
                        "\"First_Name__c\",\"Salary__c\",\"Years__c\",\"Active__c\",\"Hired__c\","
                        "\"Last_Seen__c\","
                        "\"School__r.Name\",\"School__r.External_Id__c\"\n"
                        "\"Jane's \"\"Best\"\", Co\",\"1234.5\",\"7\",\"true\",\"2024-01-02\","
                        "\"2024-03-04T05:06:07.089Z\",\"School One\",\"S-1\"\n"
                        "\"Line\nbreak\",\"\",\"\",\"false\",\"\",\"\",\"\",\"\"\n");
    done(&c);
}

static void
test_query_paging(void **state)
{
    (void)state;
    for (int i = 0; i < 5; i++) {
        char rec[128];
        snprintf(rec, sizeof rec, "{\"First_Name__c\": \"P%d\", \"Email__c\": \"p%d@page.org\"}", i,
                 i);
        teacher(rec, NULL);
    }
    char id[19];
    create_job(bulk_query_create,
               "{\"operation\":\"query\",\"query\":\"SELECT First_Name__c FROM Teacher__c WHERE "
               "Email__c LIKE '%@page.org'\"}",
               id);
    json_decref(wait_job(bulk_query_job, id));
    sb all = SB_INIT;
    char loc[64] = "";
    int pages = 0;
    char first_loc[64] = "";
    for (;;) {
        const char *fake[] = {"Q", "maxRecords", "2", loc[0] ? "Q" : NULL, "locator", loc, NULL};
        call c;
        run(&c, bulk_query_results, "GET", id, "results", NULL, fake);
        assert_int_equal(c.resp.status, 200);
        const char *n = header(&c, "Sforce-NumberOfRecords");
        const char *next = header(&c, "Sforce-Locator");
        assert_non_null(n);
        assert_non_null(next);
        assert_string_equal(n, pages < 2 ? "2" : "1");
        /* every page starts with the header row */
        assert_true(strncmp(sb_str(&c.out), "\"First_Name__c\"\n", 16) == 0);
        sb_puts(&all, sb_str(&c.out) + 16);
        pages++;
        if (pages == 1)
            snprintf(first_loc, sizeof first_loc, "%s", next);
        snprintf(loc, sizeof loc, "%s", next);
        done(&c);
        if (strcmp(loc, "null") == 0)
            break;
        assert_true(pages < 10);
    }
    assert_int_equal(pages, 3);
    assert_string_equal(first_loc, "Mg"); /* base64 of "2" */
    assert_string_equal(sb_str(&all), "\"P0\"\n\"P1\"\n\"P2\"\n\"P3\"\n\"P4\"\n");
    /* A page asked for again (a lost answer) comes back the same. */
    const char *fake[] = {"Q", "maxRecords", "2", "Q", "locator", first_loc, NULL};
    call c;
    run(&c, bulk_query_results, "GET", id, "results", NULL, fake);
    assert_string_equal(sb_str(&c.out), "\"First_Name__c\"\n\"P2\"\n\"P3\"\n");
    assert_string_equal(header(&c, "Sforce-Locator"), "NA");
    done(&c);
    sb_free(&all);
}

/* Numbers in the CSV are written as REST writes them (sb_json_double). */
static void
test_query_numbers_as_rest(void **state)
{
    (void)state;
    static const double fixed[] = {0,
                                   1,
                                   -1,
                                   0.5,
                                   12.5,
                                   -12.25,
                                   1234.5,
                                   0.1,
                                   0.0001,
                                   0.00012345,
                                   99999999.99,
                                   1e-5,
                                   123456789.12345678,
                                   0.30000000000000004,
                                   1e9,
                                   3.14159265,
                                   2.5e-8,
                                   -0.0001};
    uint32_t seed = 12345;
    for (int i = 0; i < 400; i++) {
        double v;
        if (i < (int)(sizeof fixed / sizeof fixed[0])) {
            v = fixed[i];
        } else {
            seed = seed * 1103515245u + 12345u;
            int64_t m = (int64_t)(seed >> 4) - (1 << 27);
            static const double div[] = {1, 10, 100, 1000, 1e4, 1e5, 1e6, 1e7, 1e8, 3, 7};
            v = (double)m / div[seed % 11];
        }
        char rec[160];
        snprintf(rec, sizeof rec,
                 "{\"First_Name__c\": \"N\", \"Email__c\": \"n%d@num.org\", "
                 "\"Score__c\": %.17g}",
                 i, v);
        teacher(rec, NULL);
    }
    char id[19];
    create_job(bulk_query_create,
               "{\"operation\":\"query\",\"query\":\"SELECT Score__c FROM Teacher__c WHERE "
               "Email__c LIKE '%@num.org'\"}",
               id);
    json_decref(wait_job(bulk_query_job, id));
    call c;
    run(&c, bulk_query_results, "GET", id, "results", NULL, NULL);
    /* The same rows, in the same (insertion) order, straight from SQLite. */
    sb want = SB_INIT;
    sb_puts(&want, "\"Score__c\"\n");
    store_lock(st);
    sqlite3_stmt *q;
    const char *sql = "SELECT \"Score__c\" FROM \"Teacher__c\" WHERE \"Email__c\" LIKE "
                      "'%@num.org' ORDER BY rowid";
    assert_int_equal(sqlite3_prepare_v2(store_db(st), sql, -1, &q, NULL), SQLITE_OK);
    int n = 0;
    while (sqlite3_step(q) == SQLITE_ROW) {
        sb_putc(&want, '"');
        sb_json_double(&want, sqlite3_column_double(q, 0));
        sb_puts(&want, "\"\n");
        n++;
    }
    sqlite3_finalize(q);
    store_unlock(st);
    assert_int_equal(n, 400);
    assert_string_equal(sb_str(&c.out), sb_str(&want));
    sb_free(&want);
    done(&c);
}

static void
test_query_delimiter_and_crlf(void **state)
{
    (void)state;
    teacher("{\"First_Name__c\": \"Tab\\there\", \"Email__c\": \"tab@x.org\"}", NULL);
    char id[19];
    create_job(bulk_query_create,
               "{\"operation\":\"query\",\"columnDelimiter\":\"TAB\",\"lineEnding\":\"CRLF\","
               "\"query\":\"SELECT First_Name__c, Email__c FROM Teacher__c WHERE Email__c = "
               "'tab@x.org'\"}",
               id);
    json_t *j = wait_job(bulk_query_job, id);
    assert_string_equal(jstr(j, "columnDelimiter"), "TAB");
    assert_string_equal(jstr(j, "lineEnding"), "CRLF");
    json_decref(j);
    call c;
    run(&c, bulk_query_results, "GET", id, "results", NULL, NULL);
    assert_string_equal(sb_str(&c.out),
                        "\"First_Name__c\"\t\"Email__c\"\r\n\"Tab\there\"\t\"tab@x.org\"\r\n");
    done(&c);
}

static void
test_query_all_sees_deleted(void **state)
{
    (void)state;
    char tid[19];
    teacher("{\"First_Name__c\": \"Gone\", \"Email__c\": \"gone@x.org\"}", tid);
    err_t e;
    assert_int_equal(store_delete(st, &actor, "Teacher__c", tid, &e), 0);
    const char *q = "SELECT Id, IsDeleted FROM Teacher__c WHERE Email__c = 'gone@x.org'";
    char body[256], id[19];
    snprintf(body, sizeof body, "{\"operation\":\"queryAll\",\"query\":\"%s\"}", q);
    create_job(bulk_query_create, body, id);
    json_t *j = wait_job(bulk_query_job, id);
    assert_string_equal(jstr(j, "operation"), "queryAll");
    assert_int_equal(json_integer_value(json_object_get(j, "numberRecordsProcessed")), 1);
    json_decref(j);
    call c;
    run(&c, bulk_query_results, "GET", id, "results", NULL, NULL);
    char want[128];
    snprintf(want, sizeof want, "\"Id\",\"IsDeleted\"\n\"%s\",\"true\"\n", tid);
    assert_string_equal(sb_str(&c.out), want);
    done(&c);
    snprintf(body, sizeof body, "{\"operation\":\"query\",\"query\":\"%s\"}", q);
    create_job(bulk_query_create, body, id);
    j = wait_job(bulk_query_job, id);
    assert_int_equal(json_integer_value(json_object_get(j, "numberRecordsProcessed")), 0);
    json_decref(j);
    run(&c, bulk_query_results, "GET", id, "results", NULL, NULL);
    assert_string_equal(sb_str(&c.out), "\"Id\",\"IsDeleted\"\n");
    assert_string_equal(header(&c, "Sforce-NumberOfRecords"), "0");
    assert_string_equal(header(&c, "Sforce-Locator"), "null");
    done(&c);
}

static void
test_query_create_errors(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        int status;
        const char *code;
    } cases[] = {
        {"{\"operation\":\"query\",\"query\":\"SELECT Nope FROM Account\"}", 400, "INVALID_FIELD"},
        {"{\"operation\":\"query\",\"query\":\"SELECT Id FRM Account\"}", 400, "MALFORMED_QUERY"},
        {"{\"operation\":\"query\",\"query\":\"SELECT COUNT() FROM Account\"}", 400, "API_ERROR"},
        {"{\"operation\":\"query\",\"query\":\"SELECT Id FROM Account OFFSET 3\"}", 400,
         "API_ERROR"},
        {"{\"operation\":\"insert\",\"query\":\"SELECT Id FROM Account\"}", 400, "INVALIDJOB"},
        {"{\"query\":\"SELECT Id FROM Account\"}", 400, "INVALIDJOB"},
        {"{\"operation\":\"query\"}", 400, "INVALIDJOB"},
        {"{\"operation\":\"query\",\"query\":\"SELECT Id FROM Account\",\"columnDelimiter\":"
         "\"COLON\"}",
         400, "INVALIDJOB"},
        {"{\"operation\":\"query\",\"query\":\"SELECT Id FROM Account\",\"lineEnding\":\"CR\"}",
         400, "INVALIDJOB"},
        {"{\"operation\":\"query\",\"query\":\"SELECT Id FROM Account\",\"contentType\":\"JSON\"}",
         400, "INVALIDJOB"},
        {"{\"operation\":\"query\",\"query\":7}", 400, "JSON_PARSER_ERROR"},
        {"[1]", 400, "JSON_PARSER_ERROR"},
        {"{nope", 400, "JSON_PARSER_ERROR"},
        {"", 400, "JSON_PARSER_ERROR"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        call c;
        run(&c, bulk_query_create, "POST", NULL, NULL, cases[i].body, NULL);
        expect_error(&c, cases[i].status, cases[i].code);
        done(&c);
    }
}

static void
test_query_job_states(void **state)
{
    (void)state;
    char id[19];
    call c;
    create_job(bulk_query_create, "{\"operation\":\"query\",\"query\":\"SELECT Id FROM Account\"}",
               id);
    json_decref(wait_job(bulk_query_job, id));
    /* bad locators and page sizes */
    const char *bad_loc[] = {"Q", "locator", "!!", NULL};
    run(&c, bulk_query_results, "GET", id, "results", NULL, bad_loc);
    expect_error(&c, 400, "INVALID_QUERY_LOCATOR");
    done(&c);
    const char *far_loc[] = {"Q", "locator", "OTk5", NULL}; /* 999 > 1 row */
    run(&c, bulk_query_results, "GET", id, "results", NULL, far_loc);
    expect_error(&c, 400, "INVALID_QUERY_LOCATOR");
    done(&c);
    const char *bad_max[] = {"Q", "maxRecords", "0", NULL};
    run(&c, bulk_query_results, "GET", id, "results", NULL, bad_max);
    expect_error(&c, 400, "API_ERROR");
    done(&c);
    /* a completed job cannot be aborted; it can be deleted */
    run(&c, bulk_query_job, "PATCH", id, NULL, "{\"state\":\"Aborted\"}", NULL);
    expect_error(&c, 400, "INVALIDJOBSTATE");
    done(&c);
    run(&c, bulk_query_job, "PATCH", id, NULL, "{\"state\":\"UploadComplete\"}", NULL);
    expect_error(&c, 400, "INVALIDJOBSTATE");
    done(&c);
    run(&c, bulk_query_job, "DELETE", id, NULL, NULL, NULL);
    assert_int_equal(c.resp.status, 204);
    done(&c);
    run(&c, bulk_query_job, "GET", id, NULL, NULL, NULL);
    expect_error(&c, 404, "NOT_FOUND");
    done(&c);
    run(&c, bulk_query_results, "GET", id, "results", NULL, NULL);
    expect_error(&c, 404, "NOT_FOUND");
    done(&c);
    /* unknown and malformed ids; an ingest route on a query job */
    run(&c, bulk_query_job, "GET", "750000000000000AAA", NULL, NULL, NULL);
    expect_error(&c, 404, "NOT_FOUND");
    done(&c);
    run(&c, bulk_query_job, "GET", "not-an-id", NULL, NULL, NULL);
    expect_error(&c, 404, "NOT_FOUND");
    done(&c);
    create_job(bulk_query_create, "{\"operation\":\"query\",\"query\":\"SELECT Id FROM Account\"}",
               id);
    run(&c, bulk_ingest_job, "GET", id, NULL, NULL, NULL);
    expect_error(&c, 404, "NOT_FOUND");
    done(&c);
}

static void
test_query_abort(void **state)
{
    (void)state;
    /* Abort races the worker: either it aborts (then results are refused with
     * 412) or the job had already completed (400). */
    char id[19];
    create_job(bulk_query_create, "{\"operation\":\"query\",\"query\":\"SELECT Id FROM Account\"}",
               id);
    call c;
    run(&c, bulk_query_job, "PATCH", id, NULL, "{\"state\":\"Aborted\"}", NULL);
    if (c.resp.status == 200) {
        json_t *j = body_json(&c);
        assert_string_equal(jstr(j, "state"), "Aborted");
        json_decref(j);
        done(&c);
        run(&c, bulk_query_results, "GET", id, "results", NULL, NULL);
        expect_error(&c, 412, "JOB_NOT_COMPLETE");
        assert_non_null(strstr(sb_str(&c.out), "Current status: ABORTED"));
    } else {
        expect_error(&c, 400, "INVALIDJOBSTATE");
    }
    done(&c);
}

/* ---- ingest jobs -------------------------------------------------------- */

static void
test_ingest_insert_results(void **state)
{
    (void)state;
    char id[19];
    json_t *j = ingest("{\"object\":\"Teacher__c\",\"operation\":\"insert\"}",
                       "First_Name__c,Email__c,Salary__c\n"
                       "Ann,ann@i.org,10\n"
                       ",nameless@i.org,\n"
                       "\"Bo, \"\"B\"\"\",bo@i.org,abc\n"
                       "Cy,cy@i.org,#N/A\n",
                       id);
    assert_string_equal(jstr(j, "state"), "JobComplete");
    assert_string_equal(jstr(j, "jobType"), "V2Ingest");
    assert_int_equal(json_integer_value(json_object_get(j, "numberRecordsProcessed")), 4);
    assert_int_equal(json_integer_value(json_object_get(j, "numberRecordsFailed")), 2);
    json_decref(j);

    char *ok = results(id, "successfulResults");
    char *bad = results(id, "failedResults");
    char *un = results(id, "unprocessedrecords");
    /* "sf__Id","sf__Created",<original columns> */
    const char *hdr = "\"sf__Id\",\"sf__Created\",\"First_Name__c\",\"Email__c\",\"Salary__c\"\n";
    assert_true(strncmp(ok, hdr, strlen(hdr)) == 0);
    assert_non_null(strstr(ok, "\",\"true\",\"Ann\",\"ann@i.org\",\"10\"\n"));
    assert_non_null(strstr(ok, "\",\"true\",\"Cy\",\"cy@i.org\",\"#N/A\"\n"));
    assert_string_equal(bad,
                        "\"sf__Id\",\"sf__Error\",\"First_Name__c\",\"Email__c\",\"Salary__c\"\n"
                        "\"\",\"REQUIRED_FIELD_MISSING:Required fields are missing: "
                        "[First_Name__c]:"
                        "First_Name__c --\",\"\",\"nameless@i.org\",\"\"\n"
                        "\"\",\"INVALID_FIELD:Failed to deserialize field at col 3. Due to, 'abc' "
                        "is not a "
                        "valid value for the type xsd:double:Salary__c --\",\"Bo, "
                        "\"\"B\"\"\",\"bo@i.org\","
                        "\"abc\"\n");
    assert_string_equal(un, "\"First_Name__c\",\"Email__c\",\"Salary__c\"\n");
    free(ok);
    free(bad);
    free(un);
}

static void
test_ingest_update_na_and_empty(void **state)
{
    (void)state;
    char tid[19], id[19], csv[256];
    teacher("{\"First_Name__c\": \"Up\", \"Email__c\": \"up@i.org\", \"Salary__c\": 5,"
            " \"Years__c\": 3}",
            tid);
    snprintf(csv, sizeof csv,
             "Id,Salary__c,Years__c,First_Name__c\n%s,#N/A,,Upd\n,1,1,x\n"
             "a01000000000000AAA,1,1,y\n",
             tid);
    json_t *j = ingest("{\"object\":\"Teacher__c\",\"operation\":\"update\"}", csv, id);
    assert_int_equal(json_integer_value(json_object_get(j, "numberRecordsFailed")), 2);
    json_decref(j);
    sb rec = SB_INIT;
    err_t e;
    assert_int_equal(store_get(st, "Teacher__c", tid, "First_Name__c,Salary__c,Years__c", "59.0",
                               &rec, &e),
                     0);
    assert_non_null(strstr(sb_str(&rec), "\"First_Name__c\":\"Upd\""));
    assert_non_null(strstr(sb_str(&rec), "\"Salary__c\":null")); /* #N/A */
    assert_non_null(strstr(sb_str(&rec), "\"Years__c\":3"));     /* empty: unchanged */
    sb_free(&rec);
    char *ok = results(id, "successfulResults");
    char want[256];
    snprintf(want, sizeof want, "\"%s\",\"false\",\"%s\",\"#N/A\",\"\",\"Upd\"\n", tid, tid);
    assert_non_null(strstr(ok, want));
    free(ok);
    char *bad = results(id, "failedResults");
    assert_non_null(strstr(bad, "\"\",\"MISSING_ARGUMENT:Id not specified in an update call:--\""));
    assert_non_null(strstr(bad, "\"a01000000000000AAA\",\"INVALID_CROSS_REFERENCE_KEY:"));
    free(bad);
}

static void
test_ingest_upsert_relationship(void **state)
{
    (void)state;
    char tid[19], id[19];
    teacher("{\"First_Name__c\": \"Old\", \"Email__c\": \"ups@i.org\"}", tid);
    json_t *j = ingest("{\"object\":\"Teacher__c\",\"operation\":\"upsert\","
                       "\"externalIdFieldName\":\"email__c\",\"columnDelimiter\":\"SEMICOLON\"}",
                       "Email__c;First_Name__c;School__r.External_Id__c\n"
                       "ups@i.org;New;S-1\n"
                       "fresh@i.org;Fresh;\n"
                       "lost@i.org;Lost;S-404\n"
                       ";Nobody;\n",
                       id);
    assert_string_equal(jstr(j, "externalIdFieldName"), "Email__c");
    assert_int_equal(json_integer_value(json_object_get(j, "numberRecordsProcessed")), 4);
    assert_int_equal(json_integer_value(json_object_get(j, "numberRecordsFailed")), 2);
    json_decref(j);
    char *ok = results(id, "successfulResults");
    char want[256];
    snprintf(want, sizeof want, "\"%s\";\"false\";\"ups@i.org\";\"New\";\"S-1\"\n", tid);
    assert_non_null(strstr(ok, want));
    assert_non_null(strstr(ok, "\";\"true\";\"fresh@i.org\";\"Fresh\";\"\"\n"));
    free(ok);
    char *bad = results(id, "failedResults");
    assert_non_null(strstr(bad, "Foreign key external ID: S-404 not found"));
    assert_non_null(strstr(bad, "MISSING_ARGUMENT:Email__c not specified:--"));
    free(bad);
    sb rec = SB_INIT;
    err_t e;
    assert_int_equal(store_get(st, "Teacher__c", tid, "School__c", "59.0", &rec, &e), 0);
    assert_null(strstr(sb_str(&rec), "\"School__c\":null"));
    sb_free(&rec);
}

static void
test_ingest_delete(void **state)
{
    (void)state;
    char t1[19], id[19], csv[256];
    teacher("{\"First_Name__c\": \"Del\", \"Email__c\": \"del@i.org\"}", t1);
    snprintf(csv, sizeof csv, "Id\n%s\n%s\nbogus\n", t1, t1);
    json_t *j = ingest("{\"object\":\"Teacher__c\",\"operation\":\"delete\"}", csv, id);
    assert_int_equal(json_integer_value(json_object_get(j, "numberRecordsProcessed")), 3);
    assert_int_equal(json_integer_value(json_object_get(j, "numberRecordsFailed")), 2);
    json_decref(j);
    char *bad = results(id, "failedResults");
    assert_non_null(strstr(bad, "ENTITY_IS_DELETED:entity is deleted:--"));
    assert_non_null(strstr(bad, "MALFORMED_ID:"));
    free(bad);
}

static void
test_ingest_bad_csv_fails_job(void **state)
{
    (void)state;
    static const struct {
        const char *csv;
        const char *msg; /* prefix of errorMessage */
    } cases[] = {
        {"First_Name__c,Nope__c\nA,b\n", "InvalidBatch : Field name not found : Nope__c"},
        {"First_Name__c,Email__c\nA,b,c\n", "InvalidBatch : Wrong number of fields"},
        {"First_Name__c,Email__c\n\"A,b\n", "InvalidBatch : Failed to parse CSV"},
        {"First_Name__c,Email__c\nA\"x,b\n", "InvalidBatch : Failed to parse CSV"},
        {"First_Name__c,Email__c\r\nA,b\r\n", "ClientInputError : LineEnding is invalid"},
        {"First_Name__c\nA\xff\n", "ClientInputError : The data is not valid UTF-8"},
        {"", "InvalidBatch : The CSV data is empty"},
        {"\xEF\xBB\xBF"
         "First_Name__c\nA\n",
         "InvalidBatch : Field name not found : \xEF\xBB\xBF"
         "First_Name__c"},
        {"First_Name__c,first_name__c\nA,B\n", "InvalidBatch : Duplicate field name"},
        {"School__r.Nope__c\nA\n", "InvalidBatch : Field name not found"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char id[19];
        json_t *j = ingest("{\"object\":\"Teacher__c\",\"operation\":\"insert\"}", cases[i].csv,
                           id);
        assert_string_equal(jstr(j, "state"), "Failed");
        const char *m = jstr(j, "errorMessage");
        assert_non_null(m);
        if (strncmp(m, cases[i].msg, strlen(cases[i].msg)) != 0)
            fail_msg("case %zu: errorMessage %s", i, m);
        assert_int_equal(json_integer_value(json_object_get(j, "numberRecordsProcessed")), 0);
        json_decref(j);
    }
    /* a job closed without any upload fails too */
    char id[19];
    create_job(bulk_ingest_create, "{\"object\":\"Teacher__c\",\"operation\":\"insert\"}", id);
    call c;
    run(&c, bulk_ingest_job, "PATCH", id, NULL, "{\"state\":\"UploadComplete\"}", NULL);
    done(&c);
    json_t *j = wait_job(bulk_ingest_job, id);
    assert_string_equal(jstr(j, "state"), "Failed");
    json_decref(j);
}

static void
test_ingest_create_errors(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        const char *code;
    } cases[] = {
        {"{\"object\":\"Nope__c\",\"operation\":\"insert\"}", "INVALIDENTITY"},
        {"{\"object\":\"Teacher__c\",\"operation\":\"merge\"}", "INVALIDJOB"},
        {"{\"object\":\"Teacher__c\",\"operation\":\"query\"}", "INVALIDJOB"},
        {"{\"operation\":\"insert\"}", "INVALIDJOB"},
        {"{\"object\":\"Teacher__c\",\"operation\":\"upsert\"}", "INVALIDJOB"},
        {"{\"object\":\"Teacher__c\",\"operation\":\"upsert\",\"externalIdFieldName\":"
         "\"First_Name__c\"}",
         "INVALIDJOB"},
        {"{\"object\":\"Teacher__c\",\"operation\":\"insert\",\"columnDelimiter\":\"X\"}",
         "INVALIDJOB"},
        {"{\"object\":7,\"operation\":\"insert\"}", "JSON_PARSER_ERROR"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        call c;
        run(&c, bulk_ingest_create, "POST", NULL, NULL, cases[i].body, NULL);
        expect_error(&c, 400, cases[i].code);
        done(&c);
    }
}

static void
test_ingest_info_and_states(void **state)
{
    (void)state;
    char id[19];
    call c;
    run(&c, bulk_ingest_create, "POST", NULL, NULL,
        "{\"object\":\"teacher__c\",\"operation\":\"insert\",\"lineEnding\":\"CRLF\","
        "\"columnDelimiter\":\"PIPE\",\"contentType\":\"CSV\"}",
        NULL);
    assert_int_equal(c.resp.status, 200);
    json_t *j = body_json(&c);
    done(&c);
    snprintf(id, sizeof id, "%s", jstr(j, "id"));
    assert_string_equal(jstr(j, "state"), "Open");
    assert_string_equal(jstr(j, "object"), "Teacher__c");
    char url[128];
    snprintf(url, sizeof url, "services/data/v59.0/jobs/ingest/%s/batches", id);
    assert_string_equal(jstr(j, "contentUrl"), url);
    assert_null(json_object_get(j, "externalIdFieldName"));
    json_decref(j);
    /* Open: cannot be deleted; results are empty; uploads are taken */
    run(&c, bulk_ingest_job, "DELETE", id, NULL, NULL, NULL);
    expect_error(&c, 400, "INVALIDJOBSTATE");
    done(&c);
    run(&c, bulk_ingest_upload, "PUT", id, "batches",
        "First_Name__c|Email__c\r\nA|a@s.org\r\n\"B|\"\"b\"\"\"|b@s.org\r\n", NULL);
    assert_int_equal(c.resp.status, 201);
    assert_int_equal(c.out.len, 0);
    done(&c);
    /* abort before processing: everything is unprocessed */
    run(&c, bulk_ingest_job, "PATCH", id, NULL, "{\"state\":\"Aborted\"}", NULL);
    assert_int_equal(c.resp.status, 200);
    done(&c);
    char *un = results(id, "unprocessedRecords");
    assert_string_equal(un, "\"First_Name__c\"|\"Email__c\"\r\n\"A\"|\"a@s.org\"\r\n"
                            "\"B|\"\"b\"\"\"|\"b@s.org\"\r\n");
    free(un);
    char *ok = results(id, "successfulResults");
    assert_string_equal(ok, "\"sf__Id\"|\"sf__Created\"|\"First_Name__c\"|\"Email__c\"\r\n");
    free(ok);
    /* wrong states */
    run(&c, bulk_ingest_upload, "PUT", id, "batches", "First_Name__c\nX\n", NULL);
    expect_error(&c, 400, "INVALIDJOBSTATE");
    done(&c);
    run(&c, bulk_ingest_job, "PATCH", id, NULL, "{\"state\":\"UploadComplete\"}", NULL);
    expect_error(&c, 400, "INVALIDJOBSTATE");
    done(&c);
    run(&c, bulk_ingest_job, "PATCH", id, NULL, "{\"state\":\"Aborted\"}", NULL);
    expect_error(&c, 400, "INVALIDJOBSTATE");
    done(&c);
    run(&c, bulk_ingest_job, "PATCH", id, NULL, "{\"state\":\"JobComplete\"}", NULL);
    expect_error(&c, 400, "INVALIDJOBSTATE");
    done(&c);
    run(&c, bulk_ingest_results, "GET", id, "nothing", NULL, NULL);
    expect_error(&c, 404, "NOT_FOUND");
    done(&c);
    run(&c, bulk_ingest_job, "DELETE", id, NULL, NULL, NULL);
    assert_int_equal(c.resp.status, 204);
    done(&c);
    run(&c, bulk_ingest_upload, "PUT", id, "batches", "First_Name__c\nX\n", NULL);
    expect_error(&c, 404, "NOT_FOUND");
    done(&c);
}

static void
test_ingest_several_uploads(void **state)
{
    (void)state;
    char id[19];
    create_job(bulk_ingest_create, "{\"object\":\"Teacher__c\",\"operation\":\"insert\"}", id);
    call c;
    run(&c, bulk_ingest_upload, "PUT", id, "batches", "First_Name__c,Email__c\nU1,u1@m.org\n",
        NULL);
    done(&c);
    run(&c, bulk_ingest_upload, "PUT", id, "batches", "First_Name__c,Email__c\nU2,u2@m.org", NULL);
    done(&c);
    run(&c, bulk_ingest_job, "PATCH", id, NULL, "{\"state\":\"UploadComplete\"}", NULL);
    done(&c);
    json_t *j = wait_job(bulk_ingest_job, id);
    assert_string_equal(jstr(j, "state"), "JobComplete");
    assert_int_equal(json_integer_value(json_object_get(j, "numberRecordsProcessed")), 2);
    assert_int_equal(json_integer_value(json_object_get(j, "numberRecordsFailed")), 0);
    json_decref(j);
    /* a later upload with a different header fails the job */
    create_job(bulk_ingest_create, "{\"object\":\"Teacher__c\",\"operation\":\"insert\"}", id);
    run(&c, bulk_ingest_upload, "PUT", id, "batches", "First_Name__c,Email__c\nV1,v1@m.org\n",
        NULL);
    done(&c);
    run(&c, bulk_ingest_upload, "PUT", id, "batches", "Email__c,First_Name__c\nv2@m.org,V2\n",
        NULL);
    done(&c);
    run(&c, bulk_ingest_job, "PATCH", id, NULL, "{\"state\":\"UploadComplete\"}", NULL);
    done(&c);
    j = wait_job(bulk_ingest_job, id);
    assert_string_equal(jstr(j, "state"), "Failed");
    json_decref(j);
}

static void
test_list_jobs(void **state)
{
    (void)state;
    call c;
    run(&c, bulk_ingest_list, "GET", NULL, NULL, NULL, NULL);
    assert_int_equal(c.resp.status, 200);
    json_t *j = body_json(&c);
    done(&c);
    assert_true(json_is_true(json_object_get(j, "done")));
    assert_true(json_is_null(json_object_get(j, "nextRecordsUrl")));
    json_t *recs = json_object_get(j, "records");
    assert_true(json_array_size(recs) > 0);
    for (size_t i = 0; i < json_array_size(recs); i++)
        assert_string_equal(jstr(json_array_get(recs, i), "jobType"), "V2Ingest");
    json_decref(j);
    run(&c, bulk_query_list, "GET", NULL, NULL, NULL, NULL);
    j = body_json(&c);
    done(&c);
    recs = json_object_get(j, "records");
    assert_true(json_array_size(recs) > 0);
    for (size_t i = 0; i < json_array_size(recs); i++)
        assert_string_equal(jstr(json_array_get(recs, i), "jobType"), "V2Query");
    json_decref(j);
}

static void
test_jobs_survive_restart(void **state)
{
    (void)state;
    char qid[19], iid[19];
    call c;
    create_job(bulk_query_create,
               "{\"operation\":\"query\",\"query\":\"SELECT Name FROM Account\"}", qid);
    json_decref(wait_job(bulk_query_job, qid));
    create_job(bulk_ingest_create, "{\"object\":\"Teacher__c\",\"operation\":\"insert\"}", iid);
    run(&c, bulk_ingest_upload, "PUT", iid, "batches", "First_Name__c,Email__c\nR,r@r.org\n", NULL);
    done(&c);
    /* The Bulk module goes away and comes back over the same database. */
    bulk_free(srv.bulk);
    err_t e;
    srv.bulk = bulk_new(st, &e);
    assert_non_null(srv.bulk);
    run(&c, bulk_query_results, "GET", qid, "results", NULL, NULL);
    assert_string_equal(sb_str(&c.out), "\"Name\"\n\"School One\"\n");
    done(&c);
    run(&c, bulk_ingest_job, "PATCH", iid, NULL, "{\"state\":\"UploadComplete\"}", NULL);
    assert_int_equal(c.resp.status, 200);
    done(&c);
    json_t *j = wait_job(bulk_ingest_job, iid);
    assert_string_equal(jstr(j, "state"), "JobComplete");
    assert_int_equal(json_integer_value(json_object_get(j, "numberRecordsProcessed")), 1);
    json_decref(j);
    /* a new job gets a new id */
    char nid[19];
    create_job(bulk_query_create,
               "{\"operation\":\"query\",\"query\":\"SELECT Name FROM Account\"}", nid);
    assert_string_not_equal(nid, qid);
    assert_string_not_equal(nid, iid);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_job_info),
        cmocka_unit_test(test_query_results_csv),
        cmocka_unit_test(test_query_paging),
        cmocka_unit_test(test_query_numbers_as_rest),
        cmocka_unit_test(test_query_delimiter_and_crlf),
        cmocka_unit_test(test_query_all_sees_deleted),
        cmocka_unit_test(test_query_create_errors),
        cmocka_unit_test(test_query_job_states),
        cmocka_unit_test(test_query_abort),
        cmocka_unit_test(test_ingest_insert_results),
        cmocka_unit_test(test_ingest_update_na_and_empty),
        cmocka_unit_test(test_ingest_upsert_relationship),
        cmocka_unit_test(test_ingest_delete),
        cmocka_unit_test(test_ingest_bad_csv_fails_job),
        cmocka_unit_test(test_ingest_create_errors),
        cmocka_unit_test(test_ingest_info_and_states),
        cmocka_unit_test(test_ingest_several_uploads),
        cmocka_unit_test(test_list_jobs),
        cmocka_unit_test(test_jobs_survive_restart),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
