/*
 * Unit tests for sfapi, sfbridge's Salesforce client. localforce runs
 * in-process as the org (password and refresh-token login, describe, query
 * paging, queryAll, errors, session expiry, injected faults, Bulk API 2.0
 * query jobs, the JWT bearer and client credentials flows, HTTPS with a
 * self-signed certificate); a tiny canned HTTP server in a thread plays a misbehaving
 * Salesforce (bad JSON, missing headers, proxies' HTML, failed jobs).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "faults.h"
#include "log.h"
#include "server.h"
#include "sessions.h"
#include "sfapi.h"
#include "sfbulk.h"
#include "sfjwt.h"
#include "store.h"
#include "tls.h"
#include "util.h"

/* test hook of auth.c (see its "test hooks" section) */
#define AUTH_TOKEN_MAX 192
int auth_issue_refresh(auth *a, const char *user_id, const char *username, const char *client_id,
                       char token[AUTH_TOKEN_MAX]);

#define CLIENT_ID "sfapi-client"
#define SECRET    "sfapi-secret"
#define USERNAME  "ops@sfapi.test"
#define PASSWORD  "p&ss w+rd!"
#define NWIDGETS  450

static const char org_json[] =
    "{\"organization\": {\"name\": \"Sfapi Test Org\"},\n"
    " \"settings\": {\"session_ttl_seconds\": 3600},\n"
    " \"connected_apps\": [{\"name\": \"sfbridge\", \"client_id\": \"" CLIENT_ID "\",\n"
    "                       \"client_secret\": \"" SECRET "\"}],\n"
    " \"users\": [{\"username\": \"" USERNAME "\", \"password\": \"p&ss w+rd!\",\n"
    "             \"first_name\": \"Op\", \"last_name\": \"Erator\",\n"
    "             \"email\": \"" USERNAME "\"}],\n"
    " \"objects\": {\"Widget__c\": {\"fields\": {\n"
    "    \"Code__c\": {\"type\": \"string\", \"length\": 20},\n"
    "    \"Amount__c\": {\"type\": \"double\", \"precision\": 10, \"scale\": 2}}}}}\n";

static lf_server *srv;
static char org_path[64];

/* ----- helpers ------------------------------------------------------------- */

static size_t
collect(char *data, size_t size, size_t nmemb, void *ud)
{
    sb_append(ud, data, size * nmemb);
    return size * nmemb;
}

/* A request to localforce's admin API (or any path) outside sfapi; returns the status. */
static long
admin(const char *method, const char *path, const char *body)
{
    CURL *h = curl_easy_init();
    assert_non_null(h);
    sb url = SB_INIT, out = SB_INIT;
    sb_printf(&url, "%s%s", srv->base_url, path);
    struct curl_slist *hd = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url.buf);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (body)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &out);
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (cc != CURLE_OK || status >= 300)
        fprintf(stderr, "admin %s %s: curl %d, HTTP %ld: %s\n", method, path, (int)cc, status,
                sb_str(&out));
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    sb_free(&url);
    sb_free(&out);
    return status;
}

static void
set_faults(const char *json)
{
    assert_int_equal(admin("PUT", "/admin/faults", json), 200);
}

static int
clear_faults(void **state)
{
    (void)state;
    return admin("DELETE", "/admin/faults?release=drop", NULL) == 200 ? 0 : -1;
}

/* A client config for localforce with fast backoff. */
static sfapi_config
lf_config(void)
{
    sfapi_config cfg = {
        .login_url = srv->base_url,
        .client_id = CLIENT_ID,
        .client_secret = SECRET,
        .username = USERNAME,
        .password = PASSWORD,
        .api_version = "60.0",
        .max_retries = 3,
        .backoff_cap_ms = 4,
    };
    return cfg;
}

static sfapi *
lf_client(void)
{
    sfapi_config cfg = lf_config();
    return sfapi_new(&cfg);
}

static void
expect_fail(sfapi *c, int rc, const err_t *e, err_class cls, const char *code)
{
    /* The class travels in the error. */
    (void)c;
    if (rc != -1 || err_class_of(e) != cls || strcmp(e->code, code) != 0)
        fail_msg("expected -1 class %d %s, got %d class %d %s: %s", (int)cls, code, rc,
                 (int)err_class_of(e), e->code, e->msg);
}

static void
expect_ok(sfapi *c, int rc, const err_t *e)
{
    (void)c;
    if (rc != 0)
        fail_msg("expected success, got %d class %d: %s: %s", rc, (int)err_class_of(e), e->code,
                 e->msg);
}

static json_int_t
total_size(json_t *page)
{
    return json_integer_value(json_object_get(page, "totalSize"));
}

/* ----- the group: one localforce for every test ----------------------------- */

static int
group_setup(void **state)
{
    (void)state;
    snprintf(org_path, sizeof org_path, "/tmp/sfapi-org-XXXXXX");
    int fd = mkstemp(org_path);
    if (fd < 0 || write(fd, org_json, sizeof org_json - 1) != (ssize_t)(sizeof org_json - 1)) {
        perror("org file");
        return -1;
    }
    close(fd);
    lf_server_config cfg = {.listen_port = 0,
                            .org_file = org_path,
                            .db_path = ":memory:",
                            .threads = 2,
                            .result_page_rows = 80}; /* NWIDGETS: six listed pages */
    err_t e;
    int rc = server_start(&cfg, &srv, &e);
    unlink(org_path); /* loaded (or not): no longer needed */
    if (rc != 0) {
        fprintf(stderr, "server_start: %s: %s\n", e.code, e.msg);
        return -1;
    }
    /* NWIDGETS records W-0000.. for paging, loaded in one go. */
    sb recs = SB_INIT;
    sb_putc(&recs, '[');
    for (int i = 0; i < NWIDGETS; i++)
        sb_printf(&recs, "%s{\"Name\":\"Widget %d\",\"Code__c\":\"W-%04d\",\"Amount__c\":%d.5}",
                  i ? "," : "", i, i, i);
    sb_putc(&recs, ']');
    long st = admin("POST", "/admin/objects/Widget__c/records", recs.buf);
    sb_free(&recs);
    return st == 200 ? 0 : -1;
}

static int
group_teardown(void **state)
{
    (void)state;
    server_stop(srv);
    return 0;
}

/* ----- SOQL escaping --------------------------------------------------------- */

static void
test_soql_escape(void **state)
{
    (void)state;
    sb s = SB_INIT;
    sfapi_soql_escape(&s, "plain");
    assert_string_equal(sb_str(&s), "plain");
    sb_clear(&s);
    sfapi_soql_escape(&s, "O'Brien \"x\" a\\b\n\r\t\b\f%_é");
    assert_string_equal(sb_str(&s), "O\\'Brien \\\"x\\\" a\\\\b\\n\\r\\t\\b\\f%_é");
    sb_free(&s);
    sb empty = SB_INIT;
    sfapi_soql_escape(&empty, "");
    assert_string_equal(sb_str(&empty), "");
    sb_free(&empty);
}

/* The escaped literal finds the record whose Name holds every special character. */
static void
test_soql_escape_roundtrip(void **state)
{
    (void)state;
    static const char name[] = "It's a \"quote\" \\ back\nline\ttab";
    sfapi *c = lf_client();
    err_t e;
    memset(&e, 0, sizeof e);
    json_t *rec = json_pack("{s:s,s:s}", "Name", name, "Code__c", "ESC-1");
    char *body = json_dumps(rec, 0);
    json_decref(rec);
    long status;
    json_t *out;
    int rc = sfapi_rest(c, "POST", "/services/data/v60.0/sobjects/Widget__c", body, &status, &out,
                        &e);
    free(body);
    expect_ok(c, rc, &e);
    assert_int_equal(status, 201);
    json_decref(out);
    sb q = SB_INIT;
    sb_puts(&q, "SELECT Id, Name FROM Widget__c WHERE Name = '");
    sfapi_soql_escape(&q, name);
    sb_putc(&q, '\'');
    json_t *page;
    rc = sfapi_query(c, q.buf, false, 0, &page, &e);
    expect_ok(c, rc, &e);
    assert_int_equal(total_size(page), 1);
    json_t *r0 = json_array_get(json_object_get(page, "records"), 0);
    assert_string_equal(json_string_value(json_object_get(r0, "Name")), name);
    json_decref(page);
    sb_free(&q);
    sfapi_free(c);
}

/* ----- login ------------------------------------------------------------------ */

static void
test_password_login(void **state)
{
    (void)state;
    sessions_clear(); /* no answer heard by an earlier test's client */
    sfapi *c = lf_client();
    err_t e;
    memset(&e, 0, sizeof e);
    assert_string_equal(sfapi_instance_url(c), "");
    expect_ok(c, sfapi_login(c, &e), &e);
    assert_string_equal(sfapi_instance_url(c), srv->base_url);
    assert_int_equal(strlen(sfapi_org_id(c)), 18);
    assert_memory_equal(sfapi_org_id(c), "00D", 3);
    assert_int_equal(strlen(sfapi_user_id(c)), 18);
    assert_memory_equal(sfapi_user_id(c), "005", 3);
    assert_int_equal(sfapi_calls(c), 0); /* the login does not count, nor tell the usage */
    long used, max;
    sfapi_limit_info(c, &used, &max);
    assert_int_equal(used, -1);
    assert_int_equal(max, -1);
    sfapi_free(c);
}

/* The Date header of each answer bounds Salesforce's clock against ours
 * (localforce runs on this clock: the difference is 0). */
static void
test_clock_offset(void **state)
{
    (void)state;
    sfapi *c = lf_client();
    err_t e;
    memset(&e, 0, sizeof e);
    int64_t lo, hi;
    assert_false(sfapi_clock_offset(c, &lo, &hi));
    expect_ok(c, sfapi_login(c, &e), &e);
    json_t *d;
    expect_ok(c, sfapi_describe(c, "Widget__c", &d, &e), &e);
    json_decref(d);
    assert_true(sfapi_clock_offset(c, &lo, &hi));
    assert_true(lo <= 0 && hi >= 0);
    assert_true(hi - lo < 3000);
    sfapi_free(c);
}

static void
test_refresh_login(void **state)
{
    (void)state;
    sfapi *c = lf_client();
    err_t e;
    memset(&e, 0, sizeof e);
    expect_ok(c, sfapi_login(c, &e), &e);
    char refresh[AUTH_TOKEN_MAX];
    assert_int_equal(auth_issue_refresh(srv->auth, sfapi_user_id(c), USERNAME, CLIENT_ID, refresh),
                     0);

    /* A public client: refresh token and client id only. */
    sfapi_config cfg = lf_config();
    cfg.username = cfg.password = NULL;
    cfg.client_secret = NULL;
    cfg.refresh_token = refresh;
    sfapi *r = sfapi_new(&cfg);
    expect_ok(r, sfapi_login(r, &e), &e);
    assert_string_equal(sfapi_org_id(r), sfapi_org_id(c));
    assert_string_equal(sfapi_user_id(r), sfapi_user_id(c));
    json_t *page;
    expect_ok(r, sfapi_query(r, "SELECT Id FROM Widget__c LIMIT 1", false, 0, &page, &e), &e);
    json_decref(page);

    /* Revoking the refresh token ends its sessions: the next call gets a 401,
     * logs in again with the same (dead) refresh token and gives up: AUTH. */
    sb form = SB_INIT;
    sb_printf(&form, "token=%s", refresh);
    CURL *h = curl_easy_init();
    sb url = SB_INIT;
    sb_printf(&url, "%s/services/oauth2/revoke", srv->base_url);
    curl_easy_setopt(h, CURLOPT_URL, url.buf);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, form.buf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    sb ignored = SB_INIT;
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &ignored);
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    long st = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
    assert_int_equal(st, 200);
    curl_easy_cleanup(h);
    sb_free(&url);
    sb_free(&form);
    sb_free(&ignored);
    uint64_t before = sfapi_calls(r);
    int rc = sfapi_query(r, "SELECT Id FROM Widget__c LIMIT 1", false, 0, &page, &e);
    expect_fail(r, rc, &e, ERR_AUTH, "invalid_grant");
    assert_string_equal(e.msg, "expired access/refresh token");
    assert_null(page);
    assert_int_equal(sfapi_calls(r), before + 1);
    sfapi_free(r);

    /* An unknown refresh token. */
    cfg.refresh_token = "5Aep861nope";
    r = sfapi_new(&cfg);
    expect_fail(r, sfapi_login(r, &e), &e, ERR_AUTH, "invalid_grant");
    sfapi_free(r);
    sfapi_free(c);
}

static void
test_bad_password(void **state)
{
    (void)state;
    sfapi_config cfg = lf_config();
    cfg.password = "wrong";
    sfapi *c = sfapi_new(&cfg);
    err_t e;
    memset(&e, 0, sizeof e);
    expect_fail(c, sfapi_login(c, &e), &e, ERR_AUTH, "invalid_grant");
    assert_string_equal(e.msg, "authentication failure");
    assert_int_equal(e.http, 400);
    /* A call logs in lazily and fails the same way, without reaching the instance. */
    json_t *page;
    expect_fail(c, sfapi_query(c, "SELECT Id FROM Widget__c", false, 0, &page, &e), &e, ERR_AUTH,
                "invalid_grant");
    assert_null(page);
    assert_int_equal(sfapi_calls(c), 0);
    /* Issue 12 #8: the refusal latches: the same credentials are not sent again,
     * from this client or another (Salesforce locks a user after ~10 failures). */
    assert_non_null(strstr(e.msg, "not tried again"));
    sfapi *c2 = sfapi_new(&cfg);
    expect_fail(c2, sfapi_login(c2, &e), &e, ERR_AUTH, "invalid_grant");
    assert_non_null(strstr(e.msg, "not tried again"));
    sfapi_free(c2);
    /* New settings are tried. */
    sfapi_config good = lf_config();
    c2 = sfapi_new(&good);
    assert_int_equal(sfapi_login(c2, &e), 0);
    sfapi_free(c2);
    sfapi_free(c);

    cfg = lf_config();
    cfg.client_secret = "bad";
    c = sfapi_new(&cfg);
    expect_fail(c, sfapi_login(c, &e), &e, ERR_AUTH, "invalid_client");
    sfapi_free(c);

    cfg = lf_config();
    cfg.password = NULL;
    c = sfapi_new(&cfg);
    expect_fail(c, sfapi_login(c, &e), &e, ERR_AUTH, "NO_CREDENTIALS");
    sfapi_free(c);
}

/* Nothing listens on the login URL: NETWORK_ERROR, transient, after the retries. */
static void
test_connection_refused(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd); /* the port is free again: connections are refused */
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u", ntohs(a.sin_port));
    sfapi_config cfg = lf_config();
    cfg.login_url = url;
    cfg.max_retries = 2;
    sfapi *c = sfapi_new(&cfg);
    err_t e;
    memset(&e, 0, sizeof e);
    expect_fail(c, sfapi_login(c, &e), &e, ERR_TRANSIENT, "NETWORK_ERROR");
    assert_int_equal(e.http, 0);
    sfapi_free(c);
}

/* ----- REST ---------------------------------------------------------------------- */

static void
test_describe(void **state)
{
    (void)state;
    sfapi *c = lf_client();
    err_t e;
    memset(&e, 0, sizeof e);
    json_t *d;
    expect_ok(c, sfapi_describe(c, "Widget__c", &d, &e), &e);
    assert_string_equal(json_string_value(json_object_get(d, "name")), "Widget__c");
    bool found = false;
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(d, "fields"), i, f)
        found = found || strcmp(json_string_value(json_object_get(f, "name")), "Code__c") == 0;
    assert_true(found);
    json_decref(d);
    assert_int_equal(sfapi_calls(c), 1);
    long used, max;
    sfapi_limit_info(c, &used, &max);
    assert_true(used >= 1);
    assert_int_equal(max, 100000);

    expect_fail(c, sfapi_describe(c, "Nope__c", &d, &e), &e, ERR_PERMANENT, "NOT_FOUND");
    assert_int_equal(e.http, 404);
    assert_null(d);
    assert_int_equal(sfapi_calls(c), 2); /* permanent: not retried */
    long used2;
    sfapi_limit_info(c, &used2, &max);
    assert_true(used2 > used);
    sfapi_free(c);
}

static void
test_query_paging(void **state)
{
    (void)state;
    sfapi *c = lf_client();
    err_t e;
    memset(&e, 0, sizeof e);
    json_t *page;
    expect_ok(c,
              sfapi_query(c,
                          "SELECT Id, Code__c FROM Widget__c WHERE Code__c LIKE 'W-%' "
                          "ORDER BY Code__c",
                          false, 200, &page, &e),
              &e);
    assert_int_equal(total_size(page), NWIDGETS);
    int seen = 0, pages = 1;
    for (;;) {
        json_t *recs = json_object_get(page, "records");
        size_t i;
        json_t *r;
        json_array_foreach(recs, i, r) {
            char want[16];
            snprintf(want, sizeof want, "W-%04d", seen++);
            assert_string_equal(json_string_value(json_object_get(r, "Code__c")), want);
        }
        if (json_is_true(json_object_get(page, "done"))) {
            assert_null(json_object_get(page, "nextRecordsUrl"));
            json_decref(page);
            break;
        }
        assert_int_equal(json_array_size(recs), 200);
        char *next = xstrdup(json_string_value(json_object_get(page, "nextRecordsUrl")));
        json_decref(page);
        expect_ok(c, sfapi_query_more(c, next, &page, &e), &e);
        free(next);
        pages++;
    }
    assert_int_equal(seen, NWIDGETS);
    assert_int_equal(pages, 3);
    assert_int_equal(sfapi_calls(c), 3);

    /* A nextRecordsUrl must stay on the instance. */
    expect_fail(c,
                sfapi_query_more(c, "https://evil.example/services/data/v60.0/query/x", &page, &e),
                &e, ERR_PERMANENT, "INVALID_PATH");
    expect_fail(c, sfapi_query_more(c, "/services/data/../../x", &page, &e), &e, ERR_PERMANENT,
                "INVALID_PATH");
    expect_fail(c,
                sfapi_query_more(c, "/services/data/v60.0/query/01gXXXXXXXXXXXXXXX-200", &page, &e),
                &e, ERR_PERMANENT, "INVALID_QUERY_LOCATOR");
    sfapi_free(c);
}

typedef struct each_state {
    int seen, pages, stop_after;
    char *second_url; /* the nextRecordsUrl handed with page 1 */
} each_state;

static int
each_page(void *ctx, json_t *records, const char *next, err_t *e)
{
    each_state *st = ctx;
    size_t i;
    json_t *r;
    json_array_foreach(records, i, r) {
        char want[16];
        snprintf(want, sizeof want, "W-%04d", st->seen++);
        assert_string_equal(json_string_value(json_object_get(r, "Code__c")), want);
    }
    if (++st->pages == 1 && next)
        st->second_url = xstrdup(next);
    if (st->stop_after == -st->pages)
        return err_set(e, 400, "STOP_HERE", "the callback failed");
    return st->pages == st->stop_after ? 1 : 0;
}

static void
test_query_each(void **state)
{
    (void)state;
    sfapi *c = lf_client();
    err_t e;
    memset(&e, 0, sizeof e);
    sfapi_query_spec q =
        {.soql = "SELECT Id, Code__c FROM Widget__c WHERE Code__c LIKE 'W-%' ORDER BY Code__c",
         .batch_size = 200};
    each_state st = {0};
    expect_ok(c, sfapi_query_each(c, &q, each_page, &st, &e), &e);
    assert_int_equal(st.seen, NWIDGETS);
    assert_int_equal(st.pages, 3);
    assert_non_null(st.second_url);

    /* The callback stops early (success); the query resumes from the
     * nextRecordsUrl it was handed: pages 2 and 3. */
    each_state st3 = {.stop_after = 1};
    expect_ok(c, sfapi_query_each(c, &q, each_page, &st3, &e), &e);
    assert_int_equal(st3.pages, 1);
    assert_non_null(st3.second_url);
    each_state st2 = {.seen = 200};
    sfapi_query_spec q2 = {.resume_url = st3.second_url};
    expect_ok(c, sfapi_query_each(c, &q2, each_page, &st2, &e), &e);
    assert_int_equal(st2.seen, NWIDGETS);
    assert_int_equal(st2.pages, 2);
    free(st2.second_url);
    free(st3.second_url);
    /* The callback fails: its error, its class. */
    each_state st4 = {.stop_after = -2};
    assert_int_equal(sfapi_query_each(c, &q, each_page, &st4, &e), -1);
    assert_string_equal(e.code, "STOP_HERE");
    assert_int_equal(err_class_of(&e), ERR_PERMANENT);
    assert_int_equal(st4.pages, 2);
    free(st4.second_url);

    /* A query Salesforce refuses: its class. */
    q.soql = "SELECT Nope FROM Widget__c";
    each_state st5 = {0};
    expect_fail(c, sfapi_query_each(c, &q, each_page, &st5, &e), &e, ERR_PERMANENT,
                "INVALID_FIELD");
    assert_int_equal(st5.pages, 0);
    free(st.second_url);
    sfapi_free(c);
}

static void
test_query_all_deleted(void **state)
{
    (void)state;
    sfapi *c = lf_client();
    err_t e;
    memset(&e, 0, sizeof e);
    long status;
    json_t *out;
    expect_ok(c,
              sfapi_rest(c, "POST", "/services/data/v60.0/sobjects/Widget__c",
                         "{\"Name\":\"Doomed\",\"Code__c\":\"DEL-1\"}", &status, &out, &e),
              &e);
    assert_int_equal(status, 201);
    assert_true(json_is_true(json_object_get(out, "success")));
    char *id = xstrdup(json_string_value(json_object_get(out, "id")));
    json_decref(out);
    char path[128];
    snprintf(path, sizeof path, "/services/data/v60.0/sobjects/Widget__c/%s", id);
    expect_ok(c, sfapi_rest(c, "DELETE", path, NULL, &status, &out, &e), &e);
    assert_int_equal(status, 204);
    assert_null(out);

    static const char q[] = "SELECT Id, IsDeleted FROM Widget__c WHERE Code__c = 'DEL-1'";
    json_t *page;
    expect_ok(c, sfapi_query(c, q, false, 0, &page, &e), &e);
    assert_int_equal(total_size(page), 0);
    json_decref(page);
    expect_ok(c, sfapi_query(c, q, true, 0, &page, &e), &e);
    assert_int_equal(total_size(page), 1);
    json_t *r0 = json_array_get(json_object_get(page, "records"), 0);
    assert_string_equal(json_string_value(json_object_get(r0, "Id")), id);
    assert_true(json_is_true(json_object_get(r0, "IsDeleted")));
    json_decref(page);

    /* Reading it now: ENTITY_IS_DELETED, permanent. */
    expect_fail(c, sfapi_rest(c, "GET", path, NULL, &status, &out, &e), &e, ERR_PERMANENT,
                "ENTITY_IS_DELETED");
    assert_int_equal(status, 404);
    free(id);
    sfapi_free(c);
}

static void
test_malformed_query(void **state)
{
    (void)state;
    sfapi *c = lf_client();
    err_t e;
    memset(&e, 0, sizeof e);
    json_t *page;
    expect_fail(c, sfapi_query(c, "SELEKT Id FROM Widget__c", false, 0, &page, &e), &e,
                ERR_PERMANENT, "MALFORMED_QUERY");
    assert_int_equal(e.http, 400);
    assert_null(page);
    expect_fail(c, sfapi_query(c, "SELECT Nope__c FROM Widget__c", false, 0, &page, &e), &e,
                ERR_PERMANENT, "INVALID_FIELD");
    assert_int_equal(sfapi_calls(c), 2);
    /* A write with a field error carries the field names. */
    long status;
    json_t *out;
    expect_fail(c,
                sfapi_rest(c, "POST", "/services/data/v60.0/sobjects/Widget__c",
                           "{\"Code__c\":\"this value is far longer than twenty\"}", &status, &out,
                           &e),
                &e, ERR_PERMANENT, "STRING_TOO_LONG");
    assert_string_equal(e.fields, "Code__c");
    /* A method sfapi_rest does not speak. */
    expect_fail(c, sfapi_rest(c, "BREW", "/services/data/v60.0/limits", NULL, &status, &out, &e),
                &e, ERR_PERMANENT, "METHOD_NOT_ALLOWED");
    sfapi_free(c);
}

static void
test_rest_limits(void **state)
{
    (void)state;
    sfapi *c = lf_client();
    err_t e;
    memset(&e, 0, sizeof e);
    long status;
    json_t *out;
    expect_ok(c, sfapi_rest(c, "GET", "/services/data/v60.0/limits", NULL, &status, &out, &e), &e);
    assert_int_equal(status, 200);
    assert_non_null(json_object_get(out, "DailyApiRequests"));
    json_decref(out);
    /* out may be NULL when the caller does not want the body */
    expect_ok(c, sfapi_rest(c, "GET", "/services/data/v60.0/limits", NULL, NULL, NULL, &e), &e);
    sfapi_free(c);
}

/* ----- sessions and faults ------------------------------------------------------------ */

static void
test_session_expiry(void **state)
{
    (void)state;
    sfapi *c = lf_client();
    err_t e;
    memset(&e, 0, sizeof e);
    json_t *page;
    static const char q[] = "SELECT Id FROM Widget__c LIMIT 1";
    expect_ok(c, sfapi_query(c, q, false, 0, &page, &e), &e);
    json_decref(page);
    assert_int_equal(sfapi_calls(c), 1);

    assert_int_equal(admin("POST", "/admin/sessions/expire", NULL), 204);
    expect_ok(c, sfapi_query(c, q, false, 0, &page, &e), &e);
    assert_int_equal(total_size(page), 1);
    json_decref(page);
    assert_int_equal(sfapi_calls(c), 3); /* the 401, then the repeat */

    /* The faults' expiry action does the same. */
    set_faults("{\"expire_sessions\":true}");
    expect_ok(c, sfapi_query(c, q, false, 0, &page, &e), &e);
    json_decref(page);
    assert_int_equal(sfapi_calls(c), 5);
    sfapi_free(c);
}

/* The number of failures a fresh faults PRNG seeded with seed serves before
 * the first request passes, for GET path under rule spec. */
static int
fails_before_pass(const char *spec, uint64_t seed, const char *path)
{
    err_t e;
    lf_faults *f = faults_new(spec, &e);
    assert_non_null(f);
    faults_seed(f, seed);
    int n = 0;
    for (;;) {
        fault_plan p;
        faults_plan(f, "GET", path, &p);
        if (p.error_status == 0)
            break;
        n++;
    }
    faults_free(f);
    return n;
}

static void
test_transient_then_success(void **state)
{
    (void)state;
    static const char path[] = "/services/data/v60.0/query";
    /* A seed whose first two or three draws fail. */
    uint64_t seed = 0;
    int fails = 0;
    for (uint64_t s = 1; s < 1000; s++) {
        fails = fails_before_pass("error_rate=0.5,status=503,path=/services/data/*", s, path);
        if (fails >= 2 && fails <= 3) {
            seed = s;
            break;
        }
    }
    assert_true(seed != 0);
    sfapi *c = lf_client();
    err_t e;
    memset(&e, 0, sizeof e);
    expect_ok(c, sfapi_login(c, &e), &e);
    char json[256];
    snprintf(json, sizeof json,
             "{\"seed\":%llu,\"rules\":[{\"error_rate\":0.5,\"status\":503,"
             "\"path\":\"/services/data/*\"}]}",
             (unsigned long long)seed);
    set_faults(json);
    json_t *page;
    expect_ok(c, sfapi_query(c, "SELECT Id FROM Widget__c LIMIT 1", false, 0, &page, &e), &e);
    json_decref(page);
    assert_int_equal(sfapi_calls(c), (uint64_t)fails + 1);
    sfapi_free(c);
}

static void
test_transient_exhausted(void **state)
{
    (void)state;
    sfapi *c = lf_client(); /* max_retries 3 */
    err_t e;
    memset(&e, 0, sizeof e);
    expect_ok(c, sfapi_login(c, &e), &e);
    json_t *page;
    set_faults("{\"rules\":[{\"error_rate\":1,\"status\":503,\"path\":\"/services/data/*\"}]}");
    expect_fail(c, sfapi_query(c, "SELECT Id FROM Widget__c", false, 0, &page, &e), &e,
                ERR_TRANSIENT, "SERVER_UNAVAILABLE");
    assert_int_equal(e.http, 503);
    assert_null(page);
    assert_int_equal(sfapi_calls(c), 4);

    set_faults("{\"rules\":[{\"error_rate\":1,\"status\":500,\"path\":\"/services/data/*\"}]}");
    json_t *d;
    expect_fail(c, sfapi_describe(c, "Widget__c", &d, &e), &e, ERR_TRANSIENT, "UNKNOWN_EXCEPTION");
    assert_int_equal(sfapi_calls(c), 8);

    /* UNABLE_TO_LOCK_ROW on writes (a 400) is transient too. */
    set_faults("{\"rules\":[{\"lock_rate\":1}]}");
    long status;
    json_t *out;
    expect_fail(c,
                sfapi_rest(c, "POST", "/services/data/v60.0/sobjects/Widget__c",
                           "{\"Name\":\"locked\"}", &status, &out, &e),
                &e, ERR_TRANSIENT, "UNABLE_TO_LOCK_ROW");
    assert_int_equal(status, 400);
    assert_int_equal(sfapi_calls(c), 12);

    /* A spent API budget: REQUEST_LIMIT_EXCEEDED (403), transient. */
    set_faults("{\"rules\":[{\"api_budget\":0}]}");
    expect_fail(c, sfapi_query(c, "SELECT Id FROM Widget__c", false, 0, &page, &e), &e,
                ERR_TRANSIENT, "REQUEST_LIMIT_EXCEEDED");
    assert_int_equal(e.http, 403);
    sfapi_free(c);
}

static void
test_network_faults(void **state)
{
    (void)state;
    sfapi_config cfg = lf_config();
    cfg.max_retries = 1;
    cfg.timeout_ms = 300;
    sfapi *c = sfapi_new(&cfg);
    err_t e;
    memset(&e, 0, sizeof e);
    expect_ok(c, sfapi_login(c, &e), &e);
    json_t *page;
    /* Connections cut mid-answer. */
    set_faults("{\"rules\":[{\"reset_rate\":1,\"path\":\"/services/data/*\"}]}");
    expect_fail(c, sfapi_query(c, "SELECT Id, Name FROM Widget__c", false, 0, &page, &e), &e,
                ERR_TRANSIENT, "NETWORK_ERROR");
    assert_int_equal(sfapi_calls(c), 2);
    /* An offline link: the request times out. */
    set_faults("{\"rules\":[{\"offline\":true,\"path\":\"/services/data/*\"}]}");
    int64_t t0 = util_mono_ms();
    expect_fail(c, sfapi_query(c, "SELECT Id FROM Widget__c", false, 0, &page, &e), &e,
                ERR_TRANSIENT, "NETWORK_ERROR");
    assert_true(util_mono_ms() - t0 >= 600);
    assert_int_equal(sfapi_calls(c), 4);
    assert_int_equal(clear_faults(NULL), 0);
    /* and then the same client works again */
    expect_ok(c, sfapi_query(c, "SELECT Id FROM Widget__c LIMIT 1", false, 0, &page, &e), &e);
    json_decref(page);
    sfapi_free(c);
}

/* ----- Bulk API 2.0 ------------------------------------------------------------------- */

typedef struct csv_sink {
    sb data;
    int calls;
    int fail_after; /* fail on this call (1-based); 0 = never */
    bool set_error; /* when failing, fill e */
} csv_sink;

static int
sink_fn(void *ctx, const char *data, size_t len, err_t *e)
{
    csv_sink *s = ctx;
    s->calls++;
    if (s->fail_after && s->calls >= s->fail_after) {
        if (s->set_error)
            return err_set(e, 0, "COPY_FAILED", "the database refused row %d", s->calls);
        return -1;
    }
    sb_append(&s->data, data, len);
    return 0;
}

static int
count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static char *
complete_job(sfapi *c, const char *soql, bool all, long *records)
{
    err_t e;
    memset(&e, 0, sizeof e);
    char *job;
    expect_ok(c, sfbulk_query_create(c, soql, all, &job, &e), &e);
    assert_memory_equal(job, "750", 3);
    expect_ok(c, sfbulk_query_wait(c, job, 30000, records, &e), &e);
    return job;
}

static void
test_bulk_query(void **state)
{
    (void)state;
    sfapi *c = lf_client();
    err_t e;
    memset(&e, 0, sizeof e);
    long records;
    char *job = complete_job(c,
                             "SELECT Id, Name, Code__c FROM Widget__c WHERE Code__c LIKE 'W-%' "
                             "ORDER BY Code__c",
                             false, &records);
    assert_int_equal(records, NWIDGETS);

    csv_sink s = {SB_INIT, 0, 0, false};
    char *locator = NULL;
    long nrec, total = 0;
    int pages = 0;
    do {
        char *next;
        size_t before = s.data.len;
        expect_ok(c, sfbulk_query_results(c, job, locator, 200, sink_fn, &s, &next, &nrec, &e), &e);
        free(locator);
        locator = next;
        pages++;
        total += nrec;
        /* every page starts with the header line */
        assert_int_equal(strncmp(s.data.buf + before, "\"Id\",\"Name\",\"Code__c\"\n", 22), 0);
        assert_int_equal(nrec, pages < 3 ? 200 : 50);
        assert_true(pages < 3 ? locator != NULL : locator == NULL);
    } while (locator);
    assert_int_equal(pages, 3);
    assert_int_equal(total, NWIDGETS);
    assert_int_equal(count_lines(sb_str(&s.data)), NWIDGETS + 3);
    assert_non_null(strstr(sb_str(&s.data), "\"Widget 449\",\"W-0449\"\n"));
    sb_free(&s.data);

    /* Without maxRecords everything comes in one page. */
    csv_sink all = {SB_INIT, 0, 0, false};
    char *next;
    expect_ok(c, sfbulk_query_results(c, job, "", 0, sink_fn, &all, &next, &nrec, &e), &e);
    assert_null(next);
    assert_int_equal(nrec, NWIDGETS);
    assert_int_equal(count_lines(sb_str(&all.data)), NWIDGETS + 1);
    sb_free(&all.data);

    /* A bad locator is the server's permanent error, and nothing reached the sink. */
    csv_sink bad = {SB_INIT, 0, 0, false};
    expect_fail(c, sfbulk_query_results(c, job, "bm9wZQ", 10, sink_fn, &bad, &next, &nrec, &e), &e,
                ERR_PERMANENT, "INVALID_QUERY_LOCATOR");
    assert_int_equal(bad.calls, 0);

    expect_ok(c, sfbulk_query_delete(c, job, &e), &e);
    expect_fail(c, sfbulk_query_wait(c, job, 1000, &records, &e), &e, ERR_PERMANENT, "NOT_FOUND");
    free(job);
    sfapi_free(c);
}

static void
test_bulk_query_all(void **state)
{
    (void)state;
    sfapi *c = lf_client();
    err_t e;
    memset(&e, 0, sizeof e);
    long status;
    json_t *out;
    expect_ok(c,
              sfapi_rest(c, "POST", "/services/data/v60.0/sobjects/Widget__c",
                         "{\"Name\":\"Bulk doomed\",\"Code__c\":\"DEL-2\"}", &status, &out, &e),
              &e);
    char path[128];
    snprintf(path, sizeof path, "/services/data/v60.0/sobjects/Widget__c/%s",
             json_string_value(json_object_get(out, "id")));
    json_decref(out);
    expect_ok(c, sfapi_rest(c, "DELETE", path, NULL, &status, NULL, &e), &e);
    static const char q[] = "SELECT Id, IsDeleted FROM Widget__c WHERE Code__c = 'DEL-2'";
    long records;
    char *job = complete_job(c, q, false, &records);
    assert_int_equal(records, 0);
    free(job);
    job = complete_job(c, q, true, &records);
    assert_int_equal(records, 1);
    csv_sink s = {SB_INIT, 0, 0, false};
    char *next;
    long nrec;
    expect_ok(c, sfbulk_query_results(c, job, NULL, 0, sink_fn, &s, &next, &nrec, &e), &e);
    assert_int_equal(nrec, 1);
    assert_non_null(strstr(sb_str(&s.data), "\"true\""));
    sb_free(&s.data);
    free(job);
    sfapi_free(c);
}

static void
test_bulk_sink_abort(void **state)
{
    (void)state;
    sfapi *c = lf_client();
    err_t e;
    memset(&e, 0, sizeof e);
    long records;
    char *job = complete_job(c, "SELECT Id, Name, Code__c FROM Widget__c", false, &records);
    char *next;
    long nrec;
    /* The sink fails with its own error. */
    csv_sink s = {SB_INIT, 0, 1, true};
    uint64_t before = sfapi_calls(c);
    expect_fail(c, sfbulk_query_results(c, job, NULL, 0, sink_fn, &s, &next, &nrec, &e), &e,
                ERR_PERMANENT, "COPY_FAILED");
    assert_string_equal(e.msg, "the database refused row 1");
    assert_null(next);
    assert_int_equal(sfapi_calls(c), before + 1);
    /* ... or leaves e empty. */
    csv_sink s2 = {SB_INIT, 0, 1, false};
    expect_fail(c, sfbulk_query_results(c, job, NULL, 0, sink_fn, &s2, &next, &nrec, &e), &e,
                ERR_PERMANENT, "ABORTED_BY_SINK");
    sb_free(&s.data);
    sb_free(&s2.data);
    /* the connection survives an aborted transfer */
    json_t *page;
    expect_ok(c, sfapi_query(c, "SELECT Id FROM Widget__c LIMIT 1", false, 0, &page, &e), &e);
    json_decref(page);
    free(job);
    sfapi_free(c);
}

/* A results page cut after data reached the sink is not retried. */
static void
test_bulk_reset_after_data(void **state)
{
    (void)state;
    sfapi *c = lf_client();
    err_t e;
    memset(&e, 0, sizeof e);
    long records;
    char *job = complete_job(c, "SELECT Id, Name, Code__c FROM Widget__c WHERE Code__c LIKE 'W-%'",
                             false, &records);
    set_faults("{\"rules\":[{\"reset_rate\":1,"
               "\"path\":\"/services/data/*/jobs/query/*/results\"}]}");
    csv_sink s = {SB_INIT, 0, 0, false};
    char *next;
    long nrec;
    uint64_t before = sfapi_calls(c);
    expect_fail(c, sfbulk_query_results(c, job, NULL, 0, sink_fn, &s, &next, &nrec, &e), &e,
                ERR_TRANSIENT, "NETWORK_ERROR");
    assert_true(s.data.len > 0);
    assert_int_equal(sfapi_calls(c), before + 1);
    assert_int_equal(clear_faults(NULL), 0);
    /* asked again, the page comes whole */
    sb_clear(&s.data);
    expect_ok(c, sfbulk_query_results(c, job, NULL, 0, sink_fn, &s, &next, &nrec, &e), &e);
    assert_int_equal(nrec, records);
    assert_int_equal(count_lines(sb_str(&s.data)), records + 1);
    sb_free(&s.data);
    /* An injected 503 before any data is retried. */
    set_faults("{\"rules\":[{\"error_rate\":1,"
               "\"path\":\"/services/data/*/jobs/query/*/results\"}]}");
    before = sfapi_calls(c);
    csv_sink s2 = {SB_INIT, 0, 0, false};
    expect_fail(c, sfbulk_query_results(c, job, NULL, 0, sink_fn, &s2, &next, &nrec, &e), &e,
                ERR_TRANSIENT, "SERVER_UNAVAILABLE");
    assert_int_equal(sfapi_calls(c), before + 4);
    assert_int_equal(s2.calls, 0);
    free(job);
    sfapi_free(c);
}

static void
test_bulk_errors(void **state)
{
    (void)state;
    sfapi *c = lf_client();
    err_t e;
    memset(&e, 0, sizeof e);
    char *job;
    expect_fail(c, sfbulk_query_create(c, "SELECT Nope__c FROM Widget__c", false, &job, &e), &e,
                ERR_PERMANENT, "INVALID_FIELD");
    assert_null(job);
    expect_fail(c, sfbulk_query_create(c, "SELECT COUNT() FROM Widget__c", false, &job, &e), &e,
                ERR_PERMANENT, e.code); /* whatever the server's code, permanent */
    assert_null(job);
    long records;
    expect_fail(c, sfbulk_query_wait(c, "750000000000000AAA", 1000, &records, &e), &e,
                ERR_PERMANENT, "NOT_FOUND");
    /* An id with path characters is escaped, not followed. */
    expect_fail(c, sfbulk_query_wait(c, "../../sobjects", 1000, &records, &e), &e, ERR_PERMANENT,
                "NOT_FOUND");

    /* Abort right after creation: wait reports JOB_ABORTED unless the job won the race. */
    expect_ok(c, sfbulk_query_create(c, "SELECT Id FROM Widget__c", false, &job, &e), &e);
    char path[128];
    snprintf(path, sizeof path, "/services/data/v60.0/jobs/query/%s", job);
    long status;
    int rc = sfapi_rest(c, "PATCH", path, "{\"state\":\"Aborted\"}", &status, NULL, &e);
    rc = rc == 0 ? sfbulk_query_wait(c, job, 5000, &records, &e) : 1;
    if (rc == 0)
        fail_msg("an aborted job completed");
    if (rc == -1)
        expect_fail(c, rc, &e, ERR_PERMANENT, "JOB_ABORTED");
    else
        assert_string_equal(e.code, "INVALIDJOBSTATE");
    free(job);
    sfapi_free(c);
}

/* ----- a misbehaving server ------------------------------------------------------------ */

typedef struct canned {
    int fd;
    char url[64];
    pthread_t thread;
    char **replies; /* raw HTTP responses, served in order */
    size_t nreplies;
    atomic_size_t next;
    pthread_mutex_t lock;
    sb requests; /* every request received, raw */
} canned;

static void *
canned_main(void *arg)
{
    canned *cs = arg;
    for (;;) {
        int cfd = accept(cs->fd, NULL, NULL);
        if (cfd < 0)
            break;
        sb in = SB_INIT;
        char buf[4096];
        ssize_t n;
        size_t need = 0;
        while ((n = read(cfd, buf, sizeof buf)) > 0) {
            sb_append(&in, buf, (size_t)n);
            const char *end = strstr(sb_str(&in), "\r\n\r\n");
            if (end == NULL)
                continue;
            if (need == 0) {
                const char *cl = strcasestr(sb_str(&in), "\r\nContent-Length:");
                size_t body = cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
                need = (size_t)(end - in.buf) + 4 + body;
            }
            if (in.len >= need)
                break;
        }
        pthread_mutex_lock(&cs->lock);
        sb_append(&cs->requests, sb_str(&in), in.len);
        sb_puts(&cs->requests, "\n--\n");
        pthread_mutex_unlock(&cs->lock);
        sb_free(&in);
        size_t i = atomic_fetch_add(&cs->next, 1);
        const char *out = i < cs->nreplies ? cs->replies[i]
                                           : "HTTP/1.1 599 Out Of Replies\r\nContent-Length: 0\r\n"
                                             "Connection: close\r\n\r\n";
        for (size_t off = 0, len = strlen(out); off < len;) {
            ssize_t w = write(cfd, out + off, len - off);
            if (w <= 0)
                break;
            off += (size_t)w;
        }
        close(cfd);
    }
    return NULL;
}

static void
canned_start(canned *cs)
{
    sessions_clear(); /* a port used again must not find an earlier test's session */
    memset(cs, 0, sizeof *cs);
    pthread_mutex_init(&cs->lock, NULL);
    cs->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(bind(cs->fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(cs->fd, 8), 0);
    socklen_t len = sizeof a;
    getsockname(cs->fd, (struct sockaddr *)&a, &len);
    snprintf(cs->url, sizeof cs->url, "http://127.0.0.1:%u", ntohs(a.sin_port));
    assert_int_equal(pthread_create(&cs->thread, NULL, canned_main, cs), 0);
}

/* Queue a response: status, extra header lines ("" or "Name: v\r\n"...), body. */
static void
canned_add(canned *cs, int status, const char *ctype, const char *headers, const char *body)
{
    sb r = SB_INIT;
    sb_printf(&r,
              "HTTP/1.1 %d X\r\nContent-Type: %s\r\n%sContent-Length: %zu\r\n"
              "Connection: close\r\n\r\n%s",
              status, ctype, headers, strlen(body), body);
    cs->replies = xrealloc(cs->replies, (cs->nreplies + 1) * sizeof *cs->replies);
    cs->replies[cs->nreplies++] = sb_steal(&r);
}

static void
canned_token(canned *cs)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"access_token\":\"00D000000000001!tok\",\"instance_url\":\"%s/\","
             "\"id\":\"%s/id/00D000000000001AAA/005000000000001AAA\",\"token_type\":\"Bearer\"}",
             cs->url, cs->url);
    canned_add(cs, 200, "application/json", "", body);
}

static void
canned_stop(canned *cs)
{
    shutdown(cs->fd, SHUT_RDWR);
    pthread_join(cs->thread, NULL);
    close(cs->fd);
    for (size_t i = 0; i < cs->nreplies; i++)
        free(cs->replies[i]);
    free(cs->replies);
    sb_free(&cs->requests);
    pthread_mutex_destroy(&cs->lock);
}

static sfapi *
canned_client(canned *cs)
{
    sfapi_config cfg = lf_config();
    cfg.login_url = cs->url;
    cfg.max_retries = 2;
    cfg.timeout_ms = 5000;
    return sfapi_new(&cfg);
}

static void
test_bad_token_replies(void **state)
{
    (void)state;
    canned cs;
    canned_start(&cs);
    canned_add(&cs, 200, "text/html", "", "<html>hello</html>");
    canned_add(&cs, 200, "application/json", "", "{\"access_token\":\"00D!SECRETTOKEN\",\"inst");
    canned_add(&cs, 200, "application/json", "",
               "{\"access_token\":\"x\",\"instance_url\":\"http://h\"}");
    canned_add(&cs, 200, "application/json", "",
               "{\"access_token\":\"x\",\"instance_url\":\"ftp://h\","
               "\"id\":\"x/id/00D000000000001AAA/005000000000001AAA\"}");
    canned_add(&cs, 404, "text/html", "", "<html>not here</html>");
    canned_add(&cs, 503, "text/html", "", "<html>busy</html>");
    canned_token(&cs);
    sfapi *c = canned_client(&cs);
    err_t e;
    memset(&e, 0, sizeof e);
    expect_fail(c, sfapi_login(c, &e), &e, ERR_PERMANENT, "BAD_RESPONSE");
    assert_non_null(strstr(e.msg, "not valid JSON"));
    /* a broken token reply is not quoted: it may hold the token */
    expect_fail(c, sfapi_login(c, &e), &e, ERR_PERMANENT, "BAD_RESPONSE");
    assert_null(strstr(e.msg, "SECRET"));
    expect_fail(c, sfapi_login(c, &e), &e, ERR_PERMANENT, "BAD_RESPONSE");
    expect_fail(c, sfapi_login(c, &e), &e, ERR_PERMANENT, "BAD_RESPONSE");
    expect_fail(c, sfapi_login(c, &e), &e, ERR_AUTH, "ERROR_HTTP_404");
    /* 503 then a good reply: the login retries */
    expect_ok(c, sfapi_login(c, &e), &e);
    assert_string_equal(sfapi_instance_url(c), cs.url); /* trailing '/' dropped */
    assert_string_equal(sfapi_org_id(c), "00D000000000001AAA");
    assert_string_equal(sfapi_user_id(c), "005000000000001AAA");
    /* the form as Salesforce wants it, and no token or password in the clear elsewhere */
    const char *req = sb_str(&cs.requests);
    assert_non_null(strstr(req, "POST /services/oauth2/token HTTP/1.1"));
    assert_non_null(strstr(req, "Content-Type: application/x-www-form-urlencoded"));
    assert_non_null(strstr(req, "grant_type=password&client_id=" CLIENT_ID "&client_secret=" SECRET
                                "&username=ops%40sfapi.test&password=p%26ss%20w%2Brd%21"));
    sfapi_free(c);
    canned_stop(&cs);
}

/* Clients with the same credentials share one session: the second does not
 * log in, and a client whose session was refused takes the one another client
 * got by logging in again, rather than logging in itself. */
static void
test_shared_session(void **state)
{
    (void)state;
    canned cs;
    canned_start(&cs);
    static const char page[] = "{\"totalSize\":0,\"done\":true,\"records\":[]}";
    static const char expired[] = "[{\"message\":\"Session expired or invalid\","
                                  "\"errorCode\":\"INVALID_SESSION_ID\"}]";
    canned_token(&cs);                                     /* a logs in */
    canned_add(&cs, 200, "application/json", "", page);    /* a's query */
    canned_add(&cs, 200, "application/json", "", page);    /* b's, on a's session */
    canned_add(&cs, 401, "application/json", "", expired); /* a: expired */
    canned_token(&cs);                                     /* a logs in again */
    canned_add(&cs, 200, "application/json", "", page);    /* a's repeat */
    canned_add(&cs, 401, "application/json", "", expired); /* b: its copy expired */
    canned_add(&cs, 200, "application/json", "", page);    /* b's repeat, on a's new one */
    sfapi *a = canned_client(&cs), *b = canned_client(&cs);
    err_t e;
    memset(&e, 0, sizeof e);
    json_t *pg;
    static const char q[] = "SELECT Id FROM X";
    for (int i = 0; i < 2; i++) {
        expect_ok(a, sfapi_query(a, q, false, 0, &pg, &e), &e);
        json_decref(pg);
        expect_ok(b, sfapi_query(b, q, false, 0, &pg, &e), &e);
        json_decref(pg);
    }
    assert_string_equal(sfapi_org_id(b), "00D000000000001AAA");
    size_t logins = 0;
    for (const char *p = sb_str(&cs.requests); (p = strstr(p, "POST /services/oauth2/token")); p++)
        logins++;
    assert_int_equal(logins, 2);
    sfapi_free(a);
    sfapi_free(b);
    canned_stop(&cs);
}

/* The org's API usage one client heard (Sforce-Limit-Info) is what every
 * client with the same credentials knows, the latest answer's winning: the
 * writer chooses by it without a request of its own. */
static void
test_shared_usage(void **state)
{
    (void)state;
    canned cs;
    canned_start(&cs);
    static const char page[] = "{\"totalSize\":0,\"done\":true,\"records\":[]}";
    canned_token(&cs);
    canned_add(&cs, 200, "application/json", "Sforce-Limit-Info: api-usage=40/100\r\n", page);
    canned_add(&cs, 200, "application/json", "Sforce-Limit-Info: api-usage=61/100\r\n", page);
    canned_add(&cs, 200, "application/json", "Sforce-Limit-Info: api-usage=nonsense\r\n", page);
    sfapi *a = canned_client(&cs), *b = canned_client(&cs);
    err_t e;
    memset(&e, 0, sizeof e);
    long used = 0, max = 0;
    sfapi_limit_info(b, &used, &max);
    assert_int_equal(max, -1); /* nothing heard yet */
    json_t *pg;
    expect_ok(a, sfapi_query(a, "SELECT Id FROM X", false, 0, &pg, &e), &e);
    json_decref(pg);
    sfapi_limit_info(b, &used, &max); /* b has sent nothing */
    assert_int_equal(used, 40);
    assert_int_equal(max, 100);
    expect_ok(b, sfapi_query(b, "SELECT Id FROM X", false, 0, &pg, &e), &e);
    json_decref(pg);
    sfapi_limit_info(a, &used, &max);
    assert_int_equal(used, 61);
    /* a header that does not parse changes nothing */
    expect_ok(a, sfapi_query(a, "SELECT Id FROM X", false, 0, &pg, &e), &e);
    json_decref(pg);
    sfapi_limit_info(b, &used, &max);
    assert_int_equal(used, 61);
    assert_int_equal(max, 100);
    sfapi_free(a);
    sfapi_free(b);
    canned_stop(&cs);
}

static void
test_bad_api_replies(void **state)
{
    (void)state;
    canned cs;
    canned_start(&cs);
    canned_token(&cs);
    const char *lim = "Sforce-Limit-Info: api-usage=12/15000; per-app-api-usage=1/2(appName=x)\r\n";
    canned_add(&cs, 200, "application/json", lim, "{not json");
    canned_add(&cs, 200, "application/json", "", "[1,2]");
    canned_add(&cs, 400, "text/html", "", "<html>bad\nrequest</html>");
    canned_add(&cs, 502, "text/html", "", "<html>bad gateway</html>");
    canned_add(&cs, 200, "application/json", "", "{\"totalSize\":0,\"done\":true,\"records\":[]}");
    canned_add(&cs, 400, "application/json", "",
               "{\"errorCode\":\"INVALID_TYPE\","
               "\"message\":\"sObject type 'X' is not supported.\"}");
    canned_add(&cs, 401, "application/json", "",
               "[{\"message\":\"Session expired or invalid\","
               "\"errorCode\":\"INVALID_SESSION_ID\"}]");
    canned_token(&cs);
    canned_add(&cs, 401, "application/json", "",
               "[{\"message\":\"This session is not valid for use with the REST API\","
               "\"errorCode\":\"INVALID_SESSION_ID\"}]");
    sfapi *c = canned_client(&cs);
    err_t e;
    memset(&e, 0, sizeof e);
    json_t *page;
    expect_fail(c, sfapi_query(c, "SELECT Id FROM X", false, 0, &page, &e), &e, ERR_PERMANENT,
                "BAD_RESPONSE");
    assert_null(page);
    long used, max;
    sfapi_limit_info(c, &used, &max);
    assert_int_equal(used, 12);
    assert_int_equal(max, 15000);
    expect_fail(c, sfapi_query(c, "SELECT Id FROM X", false, 0, &page, &e), &e, ERR_PERMANENT,
                "BAD_RESPONSE");
    expect_fail(c, sfapi_query(c, "SELECT Id FROM X", false, 0, &page, &e), &e, ERR_PERMANENT,
                "BAD_RESPONSE");
    assert_int_equal(e.http, 400);
    assert_non_null(strstr(e.msg, "HTTP 400"));
    /* a proxy's 502 is transient: retried, then the good page */
    expect_ok(c, sfapi_query(c, "SELECT Id FROM X", false, 250, &page, &e), &e);
    assert_int_equal(total_size(page), 0);
    json_decref(page);
    /* an error object rather than an array */
    json_t *d;
    expect_fail(c, sfapi_describe(c, "X", &d, &e), &e, ERR_PERMANENT, "INVALID_TYPE");
    /* 401, a new login, and a 401 again: AUTH */
    expect_fail(c, sfapi_describe(c, "X", &d, &e), &e, ERR_AUTH, "INVALID_SESSION_ID");
    assert_int_equal(sfapi_calls(c), 8);
    const char *req = sb_str(&cs.requests);
    assert_non_null(
        strstr(req, "GET /services/data/v60.0/query?q=SELECT%20Id%20FROM%20X HTTP/1.1"));
    assert_non_null(strstr(req, "Authorization: Bearer 00D000000000001!tok"));
    assert_non_null(strstr(req, "Sforce-Query-Options: batchSize=250"));
    sfapi_free(c);
    canned_stop(&cs);
}

static void
test_bad_bulk_replies(void **state)
{
    (void)state;
    canned cs;
    canned_start(&cs);
    canned_token(&cs);
    /* create: no id */
    canned_add(&cs, 200, "application/json", "", "{\"state\":\"UploadComplete\"}");
    /* create, then a job that fails while we wait */
    canned_add(&cs, 200, "application/json", "", "{\"id\":\"750000000000001AAA\"}");
    canned_add(&cs, 200, "application/json", "",
               "{\"id\":\"750000000000001AAA\",\"state\":\"UploadComplete\"}");
    canned_add(&cs, 200, "application/json", "",
               "{\"id\":\"750000000000001AAA\",\"state\":\"InProgress\"}");
    canned_add(&cs, 200, "application/json", "",
               "{\"id\":\"750000000000001AAA\",\"state\":\"Failed\",\"errorMessage\":\"boom\"}");
    /* complete, with no count and with one that cannot be */
    canned_add(&cs, 200, "application/json", "", "{\"state\":\"JobComplete\"}");
    canned_add(&cs, 200, "application/json", "",
               "{\"state\":\"JobComplete\",\"numberRecordsProcessed\":-5}");
    /* results: no Sforce-Locator header means the last page */
    canned_add(&cs, 200, "text/csv", "Sforce-NumberOfRecords: 1\r\n", "\"Id\"\n\"a\"\n");
    /* results: a 500 first (retried, nothing delivered), then the page */
    canned_add(&cs, 500, "application/json", "",
               "[{\"errorCode\":\"UNKNOWN_EXCEPTION\",\"message\":\"oops\"}]");
    canned_add(&cs, 200, "text/csv", "Sforce-Locator: MjAw\r\nSforce-NumberOfRecords: 2\r\n",
               "\"Id\"\n\"a\"\n\"b\"\n");
    /* results: a locator too long to be real */
    sb longloc = SB_INIT;
    sb_puts(&longloc, "Sforce-Locator: ");
    for (int i = 0; i < 5000; i++)
        sb_putc(&longloc, 'A');
    sb_puts(&longloc, "\r\n");
    canned_add(&cs, 200, "text/csv", longloc.buf, "\"Id\"\n");
    sb_free(&longloc);
    sfapi *c = canned_client(&cs);
    err_t e;
    memset(&e, 0, sizeof e);
    char *job;
    expect_fail(c, sfbulk_query_create(c, "SELECT Id FROM X", false, &job, &e), &e, ERR_PERMANENT,
                "BAD_RESPONSE");
    assert_null(job);
    expect_ok(c, sfbulk_query_create(c, "SELECT Id FROM X", true, &job, &e), &e);
    assert_string_equal(job, "750000000000001AAA");
    long records = 7;
    expect_fail(c, sfbulk_query_wait(c, job, 10000, &records, &e), &e, ERR_PERMANENT, "JOB_FAILED");
    assert_non_null(strstr(e.msg, "boom"));
    for (int i = 0; i < 2; i++) { /* not told: -1, not 0 (the load bounds its pages by it) */
        records = 7;
        expect_ok(c, sfbulk_query_wait(c, job, 10000, &records, &e), &e);
        assert_int_equal(records, -1);
    }
    free(job);
    csv_sink s = {SB_INIT, 0, 0, false};
    char *next;
    long nrec;
    expect_ok(c,
              sfbulk_query_results(c, "750000000000001AAA", NULL, 0, sink_fn, &s, &next, &nrec, &e),
              &e);
    assert_null(next);
    assert_int_equal(nrec, 1);
    sb_clear(&s.data);
    expect_ok(c,
              sfbulk_query_results(c, "750000000000001AAA", "MTAw", 100, sink_fn, &s, &next, &nrec,
                                   &e),
              &e);
    assert_string_equal(next, "MjAw");
    assert_int_equal(nrec, 2);
    assert_string_equal(sb_str(&s.data), "\"Id\"\n\"a\"\n\"b\"\n"); /* not the 500's body */
    free(next);
    expect_fail(c,
                sfbulk_query_results(c, "750000000000001AAA", "MjAw", 100, sink_fn, &s, &next,
                                     &nrec, &e),
                &e, ERR_PERMANENT, "BAD_RESPONSE");
    assert_null(next);
    sb_free(&s.data);
    const char *req = sb_str(&cs.requests);
    assert_non_null(strstr(req, "{\"operation\":\"queryAll\",\"query\":\"SELECT Id FROM X\""));
    assert_non_null(strstr(req, "GET /services/data/v60.0/jobs/query/750000000000001AAA/results"
                                "?maxRecords=100&locator=MTAw HTTP/1.1"));
    assert_non_null(strstr(req, "Accept: text/csv"));
    sfapi_free(c);
    canned_stop(&cs);
}

/* resultPages: five result URLs, then a listing of the sixth; each URL a
 * page with its header line; together every record once. */
static void
test_bulk_result_pages(void **state)
{
    (void)state;
    sfapi *c = lf_client();
    err_t e;
    memset(&e, 0, sizeof e);
    long records;
    char *job = complete_job(c, "SELECT Id, Code__c FROM Widget__c WHERE Code__c LIKE 'W-%'", false,
                             &records);
    assert_int_equal(records, NWIDGETS);
    sfbulk_pages p;
    expect_ok(c, sfbulk_query_pages(c, job, NULL, &p, &e), &e);
    assert_int_equal(p.n, 5);
    assert_non_null(p.next);
    assert_non_null(strstr(p.next, "/resultPages"));
    sfbulk_pages more;
    expect_ok(c, sfbulk_query_pages(c, job, p.next, &more, &e), &e);
    assert_int_equal(more.n, 1);
    assert_null(more.next);
    csv_sink s = {SB_INIT, 0, 0, false};
    long total = 0, nrec;
    for (size_t i = 0; i < 6; i++) {
        size_t before = s.data.len;
        expect_ok(c,
                  sfbulk_query_results_at(c, i < 5 ? p.url[i] : more.url[0], sink_fn, &s, &nrec,
                                          &e),
                  &e);
        assert_int_equal(nrec, i < 5 ? 80 : NWIDGETS - 400);
        assert_int_equal(strncmp(s.data.buf + before, "\"Id\",\"Code__c\"\n", 15), 0);
        total += nrec;
    }
    assert_int_equal(total, NWIDGETS);
    assert_int_equal(count_lines(sb_str(&s.data)), NWIDGETS + 6);
    assert_non_null(strstr(sb_str(&s.data), ",\"W-0000\"\n"));
    assert_non_null(strstr(sb_str(&s.data), ",\"W-0449\"\n"));
    sb_free(&s.data);
    /* a URL the server names must stay on the instance, under /services/data/ */
    expect_fail(c,
                sfbulk_query_results_at(c, "https://elsewhere.example/x", sink_fn, &s, &nrec, &e),
                &e, ERR_PERMANENT, "INVALID_PATH");
    sfbulk_pages none;
    expect_fail(c, sfbulk_query_pages(c, job, "/services/data/../../etc", &none, &e), &e,
                ERR_PERMANENT, "INVALID_PATH");
    assert_int_equal(none.n, 0);
    sfbulk_pages_free(&p);
    sfbulk_pages_free(&more);
    free(job);
    sfapi_free(c);
}

/* Listings that are not listings are refused, whichever name the next
 * listing's URL and a page's URL go by. */
static void
test_bad_result_pages(void **state)
{
    (void)state;
    canned cs;
    canned_start(&cs);
    canned_token(&cs);
    static const char *const bad[] = {
        "{\"done\":true}",                    /* no resultPages */
        "{\"resultPages\":{},\"done\":true}", /* not an array */
        "{\"resultPages\":[{\"resultUrl\":\"https://evil.example/r\"}],\"done\":true}",
        "{\"resultPages\":[{\"url\":\"/services/data/v60.0/x\"}],\"done\":true}",
        "{\"resultPages\":[{\"resultUrl\":\"/services/data/v60.0/x\"}],\"done\":false}",
        "{\"resultPages\":[],\"done\":false,\"nextRecordsUrl\":\"/services/data/v60.0/y\"}",
        "{\"resultPages\":[],\"done\":\"yes\"}",
        "{\"resultPages\":[{\"resultUrl\":\"/services/data/v60.0/x\"}],\"done\":false,"
        "\"nextRecordsUrl\":\"/services/../etc\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        canned_add(&cs, 200, "application/json", "", bad[i]);
    canned_add(&cs, 200, "application/json", "",
               "{\"resultPages\":[{\"resultUrl\":\"/services/data/v60.0/r?locator=MA\"},"
               "{\"resultLink\":\"/services/data/v60.0/r?locator=MTA\"}],"
               "\"nextRecordUrl\":\"/services/data/v60.0/p?locator=MTA\",\"done\":false}");
    sfapi *c = canned_client(&cs);
    err_t e;
    memset(&e, 0, sizeof e);
    sfbulk_pages p;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        expect_fail(c, sfbulk_query_pages(c, "750000000000001AAA", NULL, &p, &e), &e, ERR_PERMANENT,
                    "BAD_RESPONSE");
        assert_int_equal(p.n, 0);
        assert_null(p.url);
    }
    expect_ok(c, sfbulk_query_pages(c, "750000000000001AAA", NULL, &p, &e), &e);
    assert_int_equal(p.n, 2);
    assert_string_equal(p.url[0], "/services/data/v60.0/r?locator=MA");
    assert_string_equal(p.url[1], "/services/data/v60.0/r?locator=MTA");
    assert_string_equal(p.next, "/services/data/v60.0/p?locator=MTA");
    sfbulk_pages_free(&p);
    assert_non_null(strstr(sb_str(&cs.requests),
                           "GET /services/data/v60.0/jobs/query/750000000000001AAA/resultPages "
                           "HTTP/1.1"));
    sfapi_free(c);
    canned_stop(&cs);
}

/* A job that stays InProgress: JOB_TIMEOUT (transient) at the deadline. */
static void
test_bulk_wait_timeout(void **state)
{
    (void)state;
    canned cs;
    canned_start(&cs);
    canned_token(&cs);
    for (int i = 0; i < 40; i++)
        canned_add(&cs, 200, "application/json", "",
                   "{\"id\":\"750000000000002AAA\",\"state\":\"InProgress\"}");
    sfapi *c = canned_client(&cs);
    err_t e;
    memset(&e, 0, sizeof e);
    long records;
    int64_t t0 = util_mono_ms();
    expect_fail(c, sfbulk_query_wait(c, "750000000000002AAA", 320, &records, &e), &e, ERR_TRANSIENT,
                "JOB_TIMEOUT");
    int64_t took = util_mono_ms() - t0;
    assert_true(took >= 320);
    assert_true(took < 3000);
    assert_true(sfapi_calls(c) >= 3); /* polls at 0, 50, 150 ms at least */
    if (strstr(e.msg, "InProgress") == NULL)
        fail_msg("message: %s", e.msg);
    sfapi_free(c);
    canned_stop(&cs);
}

/* ----- JWT bearer, client credentials, TLS ----------------------------------------- */

static void
test_jwt_audience(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"https://login.salesforce.com", "https://login.salesforce.com"},
        {"https://LOGIN.salesforce.com/", "https://login.salesforce.com"},
        {"https://test.salesforce.com", "https://test.salesforce.com"},
        {"https://acme--uat.sandbox.my.salesforce.com", "https://test.salesforce.com"},
        {"https://acme.my.salesforce.com", "https://login.salesforce.com"},
        {"http://127.0.0.1:8111", "http://127.0.0.1:8111"},
        {"https://localhost:9443/x", "https://localhost:9443"},
        {"https://evil-test.salesforce.com.example", "https://evil-test.salesforce.com.example"},
    };
    char aud[SFJWT_AUD_MAX];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sfjwt_audience(cases[i][0], NULL, aud);
        if (strcmp(aud, cases[i][1]) != 0)
            fail_msg("%s: audience %s, want %s", cases[i][0], aud, cases[i][1]);
    }
    sfjwt_audience("https://login.salesforce.com", "https://site.example/customers", aud);
    assert_string_equal(aud, "https://site.example/customers");
    sb out = SB_INIT;
    sfjwt_b64url(&out, (const unsigned char *)"\xfb\xff", 2);
    assert_string_equal(sb_str(&out), "-_8");
    sb_free(&out);
}

/* A PEM key written to a new file with mode; the path goes to path. */
static void
write_key(char path[64], const char *pem, mode_t mode)
{
    snprintf(path, 64, "/tmp/sfapi-key-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, pem, strlen(pem)), (ssize_t)strlen(pem));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

/* The org again, with a JWT app (its certificate cert_pem, USERNAME
 * pre-authorized), a second user, and the first app running as USERNAME for
 * client credentials. */
static void
load_jwt_org(const char *cert_pem)
{
    json_t *org = json_loads(org_json, 0, NULL);
    assert_non_null(org);
    json_t *apps = json_object_get(org, "connected_apps");
    json_object_set_new(json_array_get(apps, 0), "run_as", json_string(USERNAME));
    json_array_append_new(apps, json_pack("{s:s, s:s, s:s, s:[s]}", "client_id", "sfapi-jwt",
                                          "client_secret", "unused", "jwt_cert", cert_pem,
                                          "preauthorized_users", USERNAME));
    json_array_append_new(json_object_get(org, "users"),
                          json_pack("{s:s, s:s}", "username", "other@sfapi.test", "password",
                                    "other-pw"));
    err_t e;
    if (store_load_org_json(srv->st, org, &e) != 0)
        fail_msg("org reload: %s", e.msg);
    json_decref(org);
}

static sfapi_config
jwt_config(const char *key_path)
{
    sfapi_config cfg = lf_config();
    cfg.client_id = "sfapi-jwt";
    cfg.client_secret = NULL;
    cfg.password = NULL;
    cfg.jwt_key_file = key_path;
    return cfg;
}

/* A JWT bearer login with cfg that Salesforce refuses: code and message. */
static void
expect_jwt_refused(const sfapi_config *cfg, const char *code, const char *msg)
{
    sfapi *c = sfapi_new(cfg);
    err_t e;
    memset(&e, 0, sizeof e);
    assert_int_equal(sfapi_flow_of(cfg), SFAPI_FLOW_JWT);
    expect_fail(c, sfapi_login(c, &e), &e, ERR_AUTH, code);
    if (strncmp(e.msg, msg, strlen(msg)) != 0)
        fail_msg("message '%s', want '%s'", e.msg, msg);
    sfapi_free(c);
}

static void
test_jwt_login(void **state)
{
    (void)state;
    char *cert, *key, *cert2, *key2;
    err_t e;
    memset(&e, 0, sizeof e);
    assert_int_equal(tls_generate(&cert, &key, &e), 0);
    assert_int_equal(tls_generate(&cert2, &key2, &e), 0);
    load_jwt_org(cert);
    char kp[64], kp2[64], kp_open[64];
    write_key(kp, key, 0600);
    write_key(kp2, key2, 0600);
    write_key(kp_open, key, 0644);

    sfapi_config cfg = jwt_config(kp);
    sfapi *c = sfapi_new(&cfg);
    expect_ok(c, sfapi_login(c, &e), &e);
    json_t *page;
    expect_ok(c, sfapi_query(c, "SELECT Id FROM Widget__c LIMIT 1", false, 0, &page, &e), &e);
    json_decref(page);
    sfapi_free(c);

    cfg = jwt_config(kp2); /* another key than the certificate's */
    expect_jwt_refused(&cfg, "invalid_grant", "invalid assertion");
    expect_jwt_refused(&cfg, "invalid_grant", "invalid assertion (login refused: not tried");
    cfg = jwt_config(kp);
    cfg.client_id = "no-such-app";
    expect_jwt_refused(&cfg, "invalid_client_id", "client identifier invalid");
    cfg = jwt_config(kp);
    cfg.username = "other@sfapi.test";
    expect_jwt_refused(&cfg, "invalid_grant", "user hasn't approved this consumer");
    cfg = jwt_config(kp);
    cfg.jwt_audience = "https://elsewhere.example";
    expect_jwt_refused(&cfg, "invalid_grant", "audience is invalid");
    cfg = jwt_config(kp);
    cfg.login_url = srv->base_url; /* the same settings, another clock: another fingerprint */
    cfg.jwt_audience = "https://login.salesforce.com";
    setenv("LOCALFORCE_CLOCK_OFFSET_S", "600", 1);
    expect_jwt_refused(&cfg, "invalid_grant", "expired authorization code");
    unsetenv("LOCALFORCE_CLOCK_OFFSET_S");
    cfg = jwt_config(kp_open); /* a key others can read is not used */
    expect_jwt_refused(&cfg, "BAD_JWT_KEY", "SF_JWT_KEY_FILE");

    /* Client credentials: the first app runs as USERNAME now. */
    cfg = lf_config();
    cfg.username = cfg.password = NULL;
    assert_int_equal(sfapi_flow_of(&cfg), SFAPI_FLOW_CLIENT_CREDENTIALS);
    c = sfapi_new(&cfg);
    expect_ok(c, sfapi_login(c, &e), &e);
    assert_memory_equal(sfapi_user_id(c), "005", 3);
    sfapi_free(c);

    unlink(kp);
    unlink(kp2);
    unlink(kp_open);
    free(cert);
    free(key);
    free(cert2);
    free(key2);
}

/* localforce over HTTPS with its self-signed certificate: trusted through
 * ca_file, refused (for good, with the setting named) without it. */
static void
test_tls_ca_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/sfapi-tls-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char sub[64], crt[96], org[64];
    snprintf(sub, sizeof sub, "%s/certs", dir);
    snprintf(crt, sizeof crt, "%s/localforce.crt", sub);
    snprintf(org, sizeof org, "%s/org.json", dir);
    FILE *f = fopen(org, "w");
    assert_non_null(f);
    fputs(org_json, f);
    fclose(f);
    lf_server_config lc = {.org_file = org, .db_path = ":memory:", .threads = 2, .tls_dir = sub};
    lf_server *tsrv;
    err_t e;
    memset(&e, 0, sizeof e);
    if (server_start(&lc, &tsrv, &e) != 0)
        fail_msg("TLS server: %s", e.msg);
    assert_memory_equal(tsrv->base_url, "https://", 8);
    sfapi_config cfg = lf_config();
    cfg.login_url = tsrv->base_url;
    cfg.max_retries = 0;
    sfapi *c = sfapi_new(&cfg);
    expect_fail(c, sfapi_login(c, &e), &e, ERR_PERMANENT, "NETWORK_ERROR");
    if (strstr(e.msg, "SF_CA_FILE") == NULL)
        fail_msg("%s", e.msg);
    sfapi_free(c);
    cfg.ca_file = crt;
    c = sfapi_new(&cfg);
    expect_ok(c, sfapi_login(c, &e), &e);
    assert_string_equal(sfapi_instance_url(c), tsrv->base_url);
    json_t *d;
    expect_ok(c, sfapi_describe(c, "Widget__c", &d, &e), &e);
    json_decref(d);
    sfapi_free(c);
    server_stop(tsrv);
    /* The pair is kept: a second start reuses it. */
    struct stat st;
    assert_int_equal(stat(crt, &st), 0);
    char key[96];
    snprintf(key, sizeof key, "%s/localforce.key", sub);
    assert_int_equal(stat(key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    unlink(crt);
    unlink(key);
    rmdir(sub);
    unlink(org);
    rmdir(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_soql_escape),
        cmocka_unit_test_teardown(test_soql_escape_roundtrip, clear_faults),
        cmocka_unit_test_teardown(test_password_login, clear_faults),
        cmocka_unit_test_teardown(test_clock_offset, clear_faults),
        cmocka_unit_test_teardown(test_refresh_login, clear_faults),
        cmocka_unit_test_teardown(test_bad_password, clear_faults),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test_teardown(test_describe, clear_faults),
        cmocka_unit_test_teardown(test_query_paging, clear_faults),
        cmocka_unit_test_teardown(test_query_each, clear_faults),
        cmocka_unit_test_teardown(test_query_all_deleted, clear_faults),
        cmocka_unit_test_teardown(test_malformed_query, clear_faults),
        cmocka_unit_test_teardown(test_rest_limits, clear_faults),
        cmocka_unit_test_teardown(test_session_expiry, clear_faults),
        cmocka_unit_test_teardown(test_transient_then_success, clear_faults),
        cmocka_unit_test_teardown(test_transient_exhausted, clear_faults),
        cmocka_unit_test_teardown(test_network_faults, clear_faults),
        cmocka_unit_test_teardown(test_bulk_query, clear_faults),
        cmocka_unit_test_teardown(test_bulk_query_all, clear_faults),
        cmocka_unit_test_teardown(test_bulk_sink_abort, clear_faults),
        cmocka_unit_test_teardown(test_bulk_reset_after_data, clear_faults),
        cmocka_unit_test_teardown(test_bulk_errors, clear_faults),
        cmocka_unit_test(test_bad_token_replies),
        cmocka_unit_test(test_shared_usage),
        cmocka_unit_test(test_bad_api_replies),
        cmocka_unit_test(test_shared_session),
        cmocka_unit_test(test_bad_bulk_replies),
        cmocka_unit_test_teardown(test_bulk_result_pages, clear_faults),
        cmocka_unit_test(test_bad_result_pages),
        cmocka_unit_test(test_bulk_wait_timeout),
        cmocka_unit_test(test_jwt_audience),
        cmocka_unit_test_teardown(test_jwt_login, clear_faults),
        cmocka_unit_test(test_tls_ca_file),
    };
    if (getenv("SFAPI_TEST_VERBOSE") == NULL)
        log_set_level(LOG_ERROR);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
    curl_global_cleanup();
    return rc;
}
