/*
 * Unit tests for http: route matching, form parsing, Salesforce error bodies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"

static void
h_a(http_req *r, http_resp *p)
{
    (void)r, (void)p;
}
static void
h_b(http_req *r, http_resp *p)
{
    (void)r, (void)p;
}
static void
h_c(http_req *r, http_resp *p)
{
    (void)r, (void)p;
}
static void
h_d(http_req *r, http_resp *p)
{
    (void)r, (void)p;
}

static const http_route routes[] = {
    {"GET", "/services/data", h_a},
    {"GET", "/services/data/*/sobjects/*/describe", h_b},
    {"GET", "/services/data/*/sobjects/*/*", h_c},
    {"PATCH", "/services/data/*/sobjects/*/*", h_d},
    {"POST", "/files/**", h_a},
    {NULL, NULL, NULL},
};

static const http_route *
match(const char *method, const char *path, http_req *req)
{
    memset(req, 0, sizeof *req);
    req->method = method;
    req->path = path;
    return http_match(routes, req);
}

static void
test_match_literal(void **state)
{
    http_req req;
    (void)state;
    const http_route *r = match("GET", "/services/data", &req);
    assert_non_null(r);
    assert_ptr_equal(r->handler, h_a);
    assert_null(match("GET", "/services/datax", &req));
    assert_null(match("GET", "/services", &req));
}

static void
test_match_captures(void **state)
{
    http_req req;
    (void)state;
    const http_route *r = match("GET", "/services/data/v59.0/sobjects/Account/describe", &req);
    assert_non_null(r);
    assert_ptr_equal(r->handler, h_b);
    assert_int_equal(req.nseg, 2);
    assert_string_equal(req.seg[0], "v59.0");
    assert_string_equal(req.seg[1], "Account");
    r = match("GET", "/services/data/v59.0/sobjects/Account/001000000000001AAA", &req);
    assert_ptr_equal(r->handler, h_c);
    assert_string_equal(req.seg[2], "001000000000001AAA");
}

static void
test_match_method(void **state)
{
    http_req req;
    (void)state;
    const http_route *r = match("PATCH", "/services/data/v59.0/sobjects/Account/x", &req);
    assert_non_null(r);
    assert_ptr_equal(r->handler, h_d);
    assert_null(match("DELETE", "/services/data/v59.0/sobjects/Account/x", &req));
}

static void
test_match_rest(void **state)
{
    http_req req;
    (void)state;
    const http_route *r = match("POST", "/files/a/b/c", &req);
    assert_non_null(r);
    assert_string_equal(req.seg[0], "a/b/c");
    /* an empty segment never matches "*" */
    assert_null(match("GET", "/services/data//sobjects/Account/describe", &req));
}

static void
test_form(void **state)
{
    char buf[64];
    http_req req = {.body = "grant_type=password&username=a%40b.c&password=p+w%26&empty="};
    (void)state;
    assert_string_equal(http_form(&req, "grant_type", buf, sizeof buf), "password");
    assert_string_equal(http_form(&req, "username", buf, sizeof buf), "a@b.c");
    assert_string_equal(http_form(&req, "password", buf, sizeof buf), "p w&");
    assert_string_equal(http_form(&req, "empty", buf, sizeof buf), "");
    assert_null(http_form(&req, "missing", buf, sizeof buf));
    assert_null(http_form(&req, "username", buf, 3)); /* too long for the buffer */
}

static void
test_error_body(void **state)
{
    http_resp resp = {0};
    err_t e;
    (void)state;
    err_set(&e, 400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [%s]", "Name");
    err_fields(&e, "Name,Email__c");
    http_error(&resp, &e);
    assert_int_equal(resp.status, 400);
    assert_string_equal(sb_str(&resp.body), "[{\"message\":\"Required fields are missing: [Name]\","
                                            "\"errorCode\":\"REQUIRED_FIELD_MISSING\",\"fields\":["
                                            "\"Name\",\"Email__c\"]}]");
    http_errorf(&resp, 401, "INVALID_SESSION_ID", "Session expired or invalid");
    assert_string_equal(sb_str(&resp.body), "[{\"message\":\"Session expired or "
                                            "invalid\",\"errorCode\":\"INVALID_SESSION_ID\"}]");
    http_resp_free(&resp);
}

static void
test_fake_headers(void **state)
{
    static const char *const fake[] =
        {"H", "Content-Type", "application/json", "Q", "q", "SELECT Id FROM Account", NULL};
    http_req req = {.fake = fake};
    (void)state;
    assert_string_equal(http_header(&req, "content-type"), "application/json");
    assert_string_equal(http_query(&req, "q"), "SELECT Id FROM Account");
    assert_null(http_header(&req, "q"));
}

/* ----- a live server: deferred answers and streamed bodies ---------------- */

static void *
complete_later(void *arg)
{
    http_pending *p = arg;
    usleep(50 * 1000);
    http_resp r = {.status = 202, .content_type = "text/plain"};
    sb_puts(&r.body, "late answer");
    http_complete(p, &r);
    return NULL;
}

static void
h_defer(http_req *req, http_resp *resp)
{
    (void)resp;
    pthread_t t;
    http_pending *p = http_defer(req);
    pthread_create(&t, NULL, complete_later, p);
    pthread_detach(t);
}

static void
h_defer_now(http_req *req, http_resp *resp)
{
    (void)resp;
    http_pending *p = http_defer(req);
    http_resp r = {.status = 200, .content_type = "text/plain"};
    sb_puts(&r.body, "immediate");
    http_complete(p, &r); /* completed before the handler returns */
}

static ssize_t
count_stream(void *ctx, uint64_t pos, char *buf, size_t max)
{
    int *abort_at = ctx;
    if (pos >= 100000)
        return HTTP_STREAM_END;
    if (*abort_at && pos >= (uint64_t)*abort_at)
        return HTTP_STREAM_ABORT;
    size_t n = max < 1000 ? max : 1000;
    memset(buf, 'x', n);
    return (ssize_t)n;
}

static int no_abort = 0, abort_at = 5000;

static void
h_stream(http_req *req, http_resp *resp)
{
    resp->content_type = "text/csv";
    resp->stream = count_stream;
    resp->stream_ctx = strcmp(req->path, "/stream/abort") == 0 ? &abort_at : &no_abort;
}

static const http_route live_routes[] = {
    {"GET", "/defer", h_defer},
    {"GET", "/defer-now", h_defer_now},
    {"GET", "/stream/*", h_stream},
    {NULL, NULL, NULL},
};

/* GET path over a plain socket; returns everything the server sent. */
static char *
http_get(uint16_t port, const char *path, size_t *len)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                     path);
    assert_int_equal(write(fd, req, (size_t)n), n);
    sb out = SB_INIT;
    char buf[4096];
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf)) > 0)
        sb_append(&out, buf, (size_t)r);
    close(fd);
    *len = out.len;
    return sb_steal(&out);
}

static void
test_live_defer_and_stream(void **state)
{
    (void)state;
    http_config cfg = {.host = "127.0.0.1", .port = 0, .routes = live_routes, .threads = 2};
    http_server *srv;
    err_t e;
    assert_int_equal(http_start(&cfg, &srv, &e), 0);
    uint16_t port = http_port(srv);
    assert_true(port > 0);
    size_t len;
    char *got = http_get(port, "/defer", &len);
    assert_non_null(strstr(got, "HTTP/1.1 202"));
    assert_non_null(strstr(got, "late answer"));
    free(got);
    got = http_get(port, "/defer-now", &len);
    assert_non_null(strstr(got, "HTTP/1.1 200"));
    assert_non_null(strstr(got, "immediate"));
    free(got);
    got = http_get(port, "/stream/all", &len);
    assert_non_null(strstr(got, "chunked"));
    assert_true(len > 100000);
    assert_non_null(strstr(got, "\r\n0\r\n\r\n")); /* the closing chunk */
    free(got);
    got = http_get(port, "/stream/abort", &len);
    assert_true(len < 100000);
    assert_null(strstr(got, "\r\n0\r\n\r\n")); /* cut off: no closing chunk */
    free(got);
    http_stop(srv);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_literal), cmocka_unit_test(test_match_captures),
        cmocka_unit_test(test_match_method),  cmocka_unit_test(test_match_rest),
        cmocka_unit_test(test_form),          cmocka_unit_test(test_error_body),
        cmocka_unit_test(test_fake_headers),  cmocka_unit_test(test_live_defer_and_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
