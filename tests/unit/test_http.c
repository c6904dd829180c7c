/*
 * Unit tests for http: route matching, form parsing, Salesforce error bodies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "http.h"

static void h_a(http_req *r, http_resp *p) { (void)r, (void)p; }
static void h_b(http_req *r, http_resp *p) { (void)r, (void)p; }
static void h_c(http_req *r, http_resp *p) { (void)r, (void)p; }
static void h_d(http_req *r, http_resp *p) { (void)r, (void)p; }

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
    assert_string_equal(sb_str(&resp.body),
                        "[{\"message\":\"Required fields are missing: [Name]\","
                        "\"errorCode\":\"REQUIRED_FIELD_MISSING\",\"fields\":[\"Name\",\"Email__c\"]}]");
    http_errorf(&resp, 401, "INVALID_SESSION_ID", "Session expired or invalid");
    assert_string_equal(sb_str(&resp.body),
                        "[{\"message\":\"Session expired or invalid\",\"errorCode\":\"INVALID_SESSION_ID\"}]");
    http_resp_free(&resp);
}

static void
test_fake_headers(void **state)
{
    static const char *const fake[] = {"H", "Content-Type", "application/json",
                                       "Q", "q", "SELECT Id FROM Account", NULL};
    http_req req = {.fake = fake};
    (void)state;
    assert_string_equal(http_header(&req, "content-type"), "application/json");
    assert_string_equal(http_query(&req, "q"), "SELECT Id FROM Account");
    assert_null(http_header(&req, "q"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_literal), cmocka_unit_test(test_match_captures),
        cmocka_unit_test(test_match_method),  cmocka_unit_test(test_match_rest),
        cmocka_unit_test(test_form),          cmocka_unit_test(test_error_body),
        cmocka_unit_test(test_fake_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
