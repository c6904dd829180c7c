/*
 * Unit tests for faults: the --faults syntax (good and bad), the /admin/faults
 * JSON, path patterns, rates drawn from a fixed seed, injected answers through
 * faults_before() on fake requests (errors, UNABLE_TO_LOCK_ROW after the API
 * checks, the API budget, session expiry), and on a live HTTP server: latency
 * without a blocked thread, offline park and release, resets, and shutdown
 * answering what is still parked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth.h"
#include "faults.h"
#include "log.h"
#include "server.h"
#include "util.h"

/* test hook of auth.c (see its "test hooks" section) */
#define AUTH_TOKEN_MAX 192
int auth_issue_access(auth *a, const char *user_id, const char *username, const char *client_id,
                      const char *parent, lf_session *out, char token[AUTH_TOKEN_MAX]);
int auth_lookup(auth *a, const char *token, lf_session *out);

static lf_faults *
must_new(const char *spec)
{
    err_t e;
    lf_faults *f = faults_new(spec, &e);
    if (f == NULL)
        fail_msg("faults_new(\"%s\"): %s", spec ? spec : "(null)", e.msg);
    faults_seed(f, 42);
    return f;
}

/* faults_new must refuse spec with a message containing want. */
static void
spec_fails(const char *spec, const char *want)
{
    err_t e;
    lf_faults *f = faults_new(spec, &e);
    if (f != NULL) {
        faults_free(f);
        fail_msg("faults_new(\"%s\") accepted a bad spec", spec);
    }
    if (strstr(e.msg, want) == NULL)
        fail_msg("faults_new(\"%s\"): message \"%s\" lacks \"%s\"", spec, e.msg, want);
}

/* A server context just big enough for faults_admin and faults_before. */
static lf_server *
fake_server(lf_faults *f)
{
    lf_server *srv = xcalloc(1, sizeof *srv);
    srv->faults = f;
    srv->auth = auth_new(NULL);
    srv->api_limit = 1000;
    atomic_init(&srv->api_used, 0);
    atomic_init(&srv->api_day, util_now_ms() / 86400000);
    return srv;
}

static void
fake_server_free(lf_server *srv)
{
    faults_free(srv->faults);
    auth_free(srv->auth);
    free(srv);
}

/* Call faults_admin without a connection; returns the status, body in *body. */
static int
admin(lf_server *srv, const char *method, const char *body, char **out)
{
    static const char *const no_fake[] = {NULL};
    http_req req = {.method = method,
                    .path = "/admin/faults",
                    .body = body ? body : "",
                    .body_len = body ? strlen(body) : 0,
                    .ctx = srv,
                    .fake = no_fake};
    http_resp resp = {.status = 200};
    faults_admin(&req, &resp);
    *out = xstrdup(sb_str(&resp.body));
    int status = resp.status;
    http_resp_free(&resp);
    return status;
}

static void
admin_ok(lf_server *srv, const char *method, const char *body)
{
    char *out;
    int st = admin(srv, method, body, &out);
    if (st != 200)
        fail_msg("%s /admin/faults %s: %d %s", method, body ? body : "", st, out);
    free(out);
}

/* ----- the --faults syntax ------------------------------------------------ */

static void
test_spec_good(void **state)
{
    (void)state;
    lf_faults *f = must_new(NULL);
    faults_free(f);
    f = must_new("");
    faults_free(f);
    f = must_new(" latency=200, jitter=50 ,path=/services/data/*;error_rate=0.2,status=500; "
                 "offline,path=/cometd/*;lock_rate=1;reset_rate=0.5;api_budget=10;");
    lf_server *srv = fake_server(f);
    char *out;
    assert_int_equal(admin(srv, "GET", NULL, &out), 200);
    assert_string_equal(out, "{\"rules\":[{\"path\":\"/services/data/"
                             "*\",\"latency_ms\":200,\"jitter_ms\":50},"
                             "{\"error_rate\":0.2,\"status\":500},{\"path\":\"/cometd/"
                             "*\",\"offline\":true},"
                             "{\"lock_rate\":1.0},{\"reset_rate\":0.5},{\"api_budget\":10}],"
                             "\"state\":{\"parked\":0,\"delayed\":0,\"api_budget_remaining\":10}}");
    free(out);
    fake_server_free(srv);
    /* canonical names work in the spec too; offline=false is allowed */
    f = must_new("latency_ms=5,error_status=503,error_rate=1;offline=false,lock_rate=0");
    faults_free(f);
}

static void
test_spec_bad(void **state)
{
    (void)state;
    spec_fails("latency=abc", "latency_ms needs a whole number");
    spec_fails("latency=-1", "0 to 600000");
    spec_fails("latency=200;latncy=5", "rule 2");
    spec_fails("latency=200;latncy=5", "unknown setting 'latncy'");
    spec_fails("error_rate=1.5", "error_rate must be a number from 0 to 1");
    spec_fails("error_rate=nan", "error_rate");
    spec_fails("error_rate=0.5,status=404", "status must be 500 or 503");
    spec_fails("status=500", "status needs an error_rate");
    spec_fails("path=/x", "sets no fault");
    spec_fails("latency=1,path=x", "path must be a glob starting with '/'");
    spec_fails("latency=1,,jitter=2", "empty setting");
    spec_fails("latency=1,", "empty setting");
    spec_fails("latency", "latency_ms needs a whole number");
    spec_fails("offline=maybe", "offline is true or false");
    spec_fails("latency=1,latency=2", "latency_ms given twice");
    spec_fails("api_budget=5,path=/services/*", "cannot take a path");
    spec_fails("api_budget=5;api_budget=6", "more than one rule");
    spec_fails("api_budget=-5", "api_budget");
    spec_fails("expire_sessions", "unknown setting");
}

static void
test_seed_env(void **state)
{
    (void)state;
    err_t e;
    setenv("LOCALFORCE_FAULTS_SEED", "x1", 1);
    assert_null(faults_new("latency=1", &e));
    assert_non_null(strstr(e.msg, "LOCALFORCE_FAULTS_SEED"));
    setenv("LOCALFORCE_FAULTS_SEED", "7", 1);
    lf_faults *a = faults_new("error_rate=0.5", &e), *b = faults_new("error_rate=0.5", &e);
    unsetenv("LOCALFORCE_FAULTS_SEED");
    assert_non_null(a);
    assert_non_null(b);
    for (int i = 0; i < 200; i++) {
        fault_plan pa, pb;
        faults_plan(a, "GET", "/x", &pa);
        faults_plan(b, "GET", "/x", &pb);
        assert_int_equal(pa.error_status, pb.error_status);
    }
    faults_free(a);
    faults_free(b);
}

/* ----- the admin JSON ------------------------------------------------------ */

static void
test_admin_put_get_delete(void **state)
{
    (void)state;
    lf_server *srv = fake_server(must_new(NULL));
    char *out;
    assert_int_equal(admin(srv, "GET", NULL, &out), 200);
    assert_string_equal(out, "{\"rules\":[],\"state\":{\"parked\":0,\"delayed\":0,"
                             "\"api_budget_remaining\":null}}");
    free(out);
    assert_int_equal(admin(srv, "PUT",
                           "{\"rules\":[{\"latency_ms\":200,\"jitter_ms\":50,\"path\":\"/services/"
                           "*\"},"
                           "{\"error_rate\":0.2,\"status\":503},{\"offline\":true,\"path\":\"/"
                           "nowhere\"},"
                           "{\"lock_rate\":0.5},{\"error_status\":500,\"error_rate\":0}]}",
                           &out),
                     200);
    assert_string_equal(out,
                        "{\"rules\":[{\"path\":\"/services/"
                        "*\",\"latency_ms\":200,\"jitter_ms\":50},"
                        "{\"error_rate\":0.2,\"status\":503},{\"path\":\"/"
                        "nowhere\",\"offline\":true},"
                        "{\"lock_rate\":0.5},{\"error_rate\":0.0,\"status\":500}],"
                        "\"state\":{\"parked\":0,\"delayed\":0,\"api_budget_remaining\":null}}");
    free(out);
    /* POST does the same as PUT; rules replace the old ones */
    admin_ok(srv, "POST", "{\"rules\":[{\"reset_rate\":1}]}");
    assert_int_equal(admin(srv, "GET", NULL, &out), 200);
    assert_non_null(strstr(out, "{\"rules\":[{\"reset_rate\":1.0}]"));
    free(out);
    /* without "rules" the rules stay */
    admin_ok(srv, "PUT", "{\"seed\":3}");
    assert_int_equal(admin(srv, "GET", NULL, &out), 200);
    assert_non_null(strstr(out, "reset_rate"));
    free(out);
    assert_int_equal(admin(srv, "DELETE", NULL, &out), 200);
    assert_non_null(strstr(out, "{\"rules\":[]"));
    free(out);
    fake_server_free(srv);
}

static void
admin_fails(lf_server *srv, const char *body, const char *code, const char *want)
{
    char *out;
    int st = admin(srv, "PUT", body, &out);
    if (st != 400 || strstr(out, code) == NULL || strstr(out, want) == NULL)
        fail_msg("PUT %s: got %d %s, wanted 400 %s with \"%s\"", body, st, out, code, want);
    free(out);
}

static void
test_admin_bad(void **state)
{
    (void)state;
    lf_server *srv = fake_server(must_new("latency=7"));
    admin_fails(srv, "", "JSON_PARSER_ERROR", "empty");
    admin_fails(srv, "{\"rules\":[", "JSON_PARSER_ERROR", "line:1");
    admin_fails(srv, "[]", "BAD_FAULTS", "JSON object");
    admin_fails(srv, "{\"rulez\":[]}", "BAD_FAULTS", "unknown key 'rulez'");
    admin_fails(srv, "{\"rules\":{}}", "BAD_FAULTS", "rules must be an array");
    admin_fails(srv, "{\"rules\":[1]}", "BAD_FAULTS", "rules[0]: a rule is a JSON object");
    admin_fails(srv, "{\"rules\":[{\"latency_ms\":1},{\"latncy_ms\":5}]}", "BAD_FAULTS",
                "rules[1]: unknown key 'latncy_ms'");
    admin_fails(srv, "{\"rules\":[{\"latency_ms\":\"5\"}]}", "BAD_FAULTS",
                "rules[0].latency_ms must be a whole number");
    admin_fails(srv, "{\"rules\":[{\"latency_ms\":1.5}]}", "BAD_FAULTS", "whole number");
    admin_fails(srv, "{\"rules\":[{\"error_rate\":2}]}", "BAD_FAULTS",
                "error_rate must be a number from 0 to 1");
    admin_fails(srv, "{\"rules\":[{\"error_rate\":0.1,\"status\":502}]}", "BAD_FAULTS",
                "status must be 500 or 503");
    admin_fails(srv, "{\"rules\":[{\"offline\":1}]}", "BAD_FAULTS",
                "offline must be true or false");
    admin_fails(srv, "{\"rules\":[{\"path\":\"/x\"}]}", "BAD_FAULTS", "sets no fault");
    admin_fails(srv, "{\"rules\":[{\"path\":5,\"offline\":true}]}", "BAD_FAULTS",
                "path must be a string");
    admin_fails(srv, "{\"rules\":[{\"api_budget\":1},{\"api_budget\":2}]}", "BAD_FAULTS",
                "more than one rule");
    admin_fails(srv, "{\"expire_sessions\":\"yes\"}", "BAD_FAULTS", "expire_sessions");
    admin_fails(srv, "{\"release\":\"later\"}", "BAD_FAULTS", "release");
    admin_fails(srv, "{\"rules\":[],\"rules\":[]}", "JSON_PARSER_ERROR", "duplicate");
    /* a refused PUT changes nothing */
    char *out;
    assert_int_equal(admin(srv, "GET", NULL, &out), 200);
    assert_non_null(strstr(out, "{\"rules\":[{\"latency_ms\":7}]"));
    free(out);
    fake_server_free(srv);
}

/* ----- path patterns and rates ---------------------------------------------- */

static void
test_path_match(void **state)
{
    (void)state;
    lf_faults *f = must_new("error_rate=1,path=/services/data/*/query*;"
                            "offline,path=/cometd/*;"
                            "latency=10,jitter=0;latency=5,path=/services/*");
    fault_plan p;
    faults_plan(f, "GET", "/services/data/v59.0/query", &p);
    assert_int_equal(p.error_status, 503);
    assert_false(p.offline);
    assert_int_equal(p.delay_ms, 15);
    faults_plan(f, "GET", "/services/data/v59.0/queryAll/01gxx-2000", &p);
    assert_int_equal(p.error_status, 503);
    faults_plan(f, "GET", "/services/data/v59.0/sobjects/Account", &p);
    assert_int_equal(p.error_status, 0);
    assert_int_equal(p.delay_ms, 15);
    faults_plan(f, "POST", "/cometd/59.0/connect", &p);
    assert_true(p.offline);
    assert_int_equal(p.error_status, 0);
    assert_int_equal(p.delay_ms, 10);
    faults_plan(f, "POST", "/cometdx", &p);
    assert_false(p.offline);
    faults_free(f);
}

static void
test_lock_only_writes(void **state)
{
    (void)state;
    lf_faults *f = must_new("lock_rate=1");
    fault_plan p;
    static const struct {
        const char *method, *path;
        bool lock;
    } cases[] = {
        {"POST", "/services/data/v59.0/sobjects/Account", true},
        {"PATCH", "/services/data/v59.0/sobjects/Account/001000000000001AAA", true},
        {"DELETE", "/services/data/v59.0/sobjects/Account/001000000000001AAA", true},
        {"PUT", "/services/data/v59.0/jobs/ingest/750x/batches", true},
        {"GET", "/services/data/v59.0/sobjects/Account/001000000000001AAA", false},
        {"POST", "/services/oauth2/token", false},
        {"POST", "/cometd/59.0", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        faults_plan(f, cases[i].method, cases[i].path, &p);
        assert_int_equal(p.lock, cases[i].lock);
    }
    faults_free(f);
}

static void
test_rates_seeded(void **state)
{
    (void)state;
    lf_faults *f = must_new("error_rate=0.3;reset_rate=0.1;latency=100,jitter=50;lock_rate=0.5");
    int errors = 0, resets = 0, locks = 0, dmin = 1000, dmax = 0;
    bool seen[51] = {false};
    fault_plan first[50];
    for (int i = 0; i < 10000; i++) {
        fault_plan p;
        faults_plan(f, "PATCH", "/services/data/v59.0/sobjects/A/1", &p);
        errors += p.error_status == 503;
        resets += p.reset;
        locks += p.lock;
        dmin = p.delay_ms < dmin ? p.delay_ms : dmin;
        dmax = p.delay_ms > dmax ? p.delay_ms : dmax;
        if (p.delay_ms >= 100 && p.delay_ms <= 150)
            seen[p.delay_ms - 100] = true;
        if (i < 50)
            first[i] = p;
    }
    assert_in_range(errors, 2800, 3200);
    assert_in_range(resets, 900, 1100);
    assert_in_range(locks, 4800, 5200);
    assert_int_equal(dmin, 100);
    assert_int_equal(dmax, 150);
    for (int i = 0; i <= 50; i++)
        assert_true(seen[i]); /* jitter is uniform over 0..50 inclusive */
    /* the same seed draws the same faults */
    faults_seed(f, 42);
    for (int i = 0; i < 50; i++) {
        fault_plan p;
        faults_plan(f, "PATCH", "/services/data/v59.0/sobjects/A/1", &p);
        assert_memory_equal(&p, &first[i], sizeof p);
    }
    faults_free(f);
    /* rates 0 and 1 are exact */
    f = must_new("error_rate=0;reset_rate=1");
    for (int i = 0; i < 1000; i++) {
        fault_plan p;
        faults_plan(f, "GET", "/x", &p);
        assert_int_equal(p.error_status, 0);
        assert_true(p.reset);
    }
    faults_free(f);
}

/* ----- injected answers on fake requests ------------------------------------- */

static void
h_ok(http_req *req, http_resp *resp)
{
    (void)req;
    sb_puts(&resp->body, "{\"ok\":true,\"padding\":\"0123456789012345678901234567890123456789\"}");
}

static const http_route api_route = {"PATCH", "/services/data/*/sobjects/*/*", h_ok};
static const http_route plain_route = {"GET", "/hello", h_ok};

/* Run faults_before for a request, as server.c's before() does. */
static fault_verdict
before(lf_server *srv, const http_route *route, const char *method, const char *path,
       const char *const *fake, http_resp *resp)
{
    http_req req = {.method = method, .path = path, .body = "", .ctx = srv, .fake = fake};
    if (strncmp(path, "/services/data/", 15) == 0) {
        req.seg[0] = "v59.0", req.seg[1] = "Account", req.seg[2] = strrchr(path, '/') + 1;
        req.nseg = 3;
    }
    memset(resp, 0, sizeof *resp);
    resp->status = 200;
    return faults_before(srv->faults, route, &req, resp);
}

static void
test_injected_errors(void **state)
{
    (void)state;
    lf_server *srv = fake_server(must_new("error_rate=1,path=/hello"));
    http_resp resp;
    assert_int_equal(before(srv, &plain_route, "GET", "/hello", NULL, &resp), FAULT_ANSWERED);
    assert_int_equal(resp.status, 503);
    assert_string_equal(sb_str(&resp.body),
                        "[{\"message\":\"Server temporarily unavailable: "
                        "please retry later.\",\"errorCode\":\"SERVER_UNAVAILABLE\"}]");
    http_resp_free(&resp);
    assert_int_equal(before(srv, &plain_route, "GET", "/other", NULL, &resp), FAULT_PASS);
    http_resp_free(&resp);
    admin_ok(srv, "PUT", "{\"rules\":[{\"error_rate\":1,\"status\":500}]}");
    assert_int_equal(before(srv, &plain_route, "GET", "/hello", NULL, &resp), FAULT_ANSWERED);
    assert_int_equal(resp.status, 500);
    assert_non_null(strstr(sb_str(&resp.body), "\"errorCode\":\"UNKNOWN_EXCEPTION\""));
    assert_non_null(strstr(sb_str(&resp.body), "An unexpected error occurred. Please include "
                                               "this ErrorId if you contact support: "));
    http_resp_free(&resp);
    /* off again: everything passes */
    admin_ok(srv, "DELETE", NULL);
    assert_int_equal(before(srv, &plain_route, "GET", "/hello", NULL, &resp), FAULT_PASS);
    http_resp_free(&resp);
    fake_server_free(srv);
}

static void
test_lock_after_auth(void **state)
{
    (void)state;
    lf_server *srv = fake_server(must_new("lock_rate=1"));
    lf_session s;
    char tok[AUTH_TOKEN_MAX], authz[AUTH_TOKEN_MAX + 16];
    assert_int_equal(auth_issue_access(srv->auth, "005000000000001AAA", "u@x", "", NULL, &s, tok),
                     0);
    snprintf(authz, sizeof authz, "Bearer %s", tok);
    const char *const good[] = {"H", "Authorization", authz, NULL};
    const char *const none[] = {NULL};
    http_resp resp;
    const char *path = "/services/data/v59.0/sobjects/Account/001000000000001";
    /* no session: the API checks answer first, as Salesforce would */
    assert_int_equal(before(srv, &api_route, "PATCH", path, none, &resp), FAULT_ANSWERED);
    assert_int_equal(resp.status, 401);
    http_resp_free(&resp);
    assert_int_equal(before(srv, &api_route, "PATCH", path, good, &resp), FAULT_ANSWERED);
    assert_int_equal(resp.status, 400);
    assert_string_equal(sb_str(&resp.body),
                        "[{\"message\":\"unable to obtain exclusive access to this record or 1 "
                        "records: 001000000000001AAA\",\"errorCode\":\"UNABLE_TO_LOCK_ROW\"}]");
    /* counted as an API request, with Sforce-Limit-Info */
    assert_int_equal(atomic_load(&srv->api_used), 1);
    bool limit_info = false;
    for (int i = 0; i < resp.nheaders; i++)
        limit_info |= strcmp(resp.hname[i], "Sforce-Limit-Info") == 0 &&
                      strcmp(resp.hvalue[i], "api-usage=1/1000") == 0;
    assert_true(limit_info);
    http_resp_free(&resp);
    /* a create has no id to name */
    assert_int_equal(before(srv, &api_route, "POST", "/services/data/v59.0/sobjects/Account", good,
                            &resp),
                     FAULT_ANSWERED);
    assert_string_equal(sb_str(&resp.body),
                        "[{\"message\":\"unable to obtain exclusive access to this record or 1 "
                        "records: \",\"errorCode\":\"UNABLE_TO_LOCK_ROW\"}]");
    http_resp_free(&resp);
    /* reads are not locked */
    assert_int_equal(before(srv, &api_route, "GET", path, good, &resp), FAULT_PASS);
    http_resp_free(&resp);
    fake_server_free(srv);
}

static void
test_budget_and_expiry(void **state)
{
    (void)state;
    lf_server *srv = fake_server(must_new("api_budget=3"));
    atomic_store(&srv->api_used, 10);
    http_resp resp;
    /* the start-up budget is applied at the first request */
    assert_int_equal(before(srv, &plain_route, "GET", "/hello", NULL, &resp), FAULT_PASS);
    http_resp_free(&resp);
    assert_int_equal(srv->api_limit, 13);
    char *out;
    atomic_store(&srv->api_used, 12);
    assert_int_equal(admin(srv, "GET", NULL, &out), 200);
    assert_non_null(strstr(out, "\"api_budget_remaining\":1"));
    free(out);
    /* a new budget counts from now; clearing restores the org's limit */
    admin_ok(srv, "PUT", "{\"rules\":[{\"api_budget\":0}]}");
    assert_int_equal(srv->api_limit, 12);
    admin_ok(srv, "PUT", "{\"rules\":[{\"latency_ms\":1}]}");
    assert_int_equal(srv->api_limit, 1000);
    admin_ok(srv, "PUT", "{\"rules\":[{\"api_budget\":5}]}");
    assert_int_equal(srv->api_limit, 17);
    admin_ok(srv, "DELETE", NULL);
    assert_int_equal(srv->api_limit, 1000);
    /* expire_sessions is an action, rules or not */
    lf_session s;
    char tok[AUTH_TOKEN_MAX];
    assert_int_equal(auth_issue_access(srv->auth, "005000000000001AAA", "u@x", "", NULL, &s, tok),
                     0);
    assert_int_equal(auth_lookup(srv->auth, tok, &s), 0);
    admin_ok(srv, "PUT", "{\"expire_sessions\":true}");
    assert_int_not_equal(auth_lookup(srv->auth, tok, &s), 0);
    fake_server_free(srv);
}

static void
test_reset_fake(void **state)
{
    (void)state;
    lf_server *srv = fake_server(must_new("reset_rate=1"));
    http_resp resp;
    assert_int_equal(before(srv, &plain_route, "GET", "/hello", NULL, &resp), FAULT_ANSWERED);
    assert_non_null(resp.stream);
    char buf[256];
    ssize_t n = resp.stream(resp.stream_ctx, 0, buf, sizeof buf);
    assert_true(n > 10);
    assert_memory_equal(buf, "{\"ok\":true,", 11);
    assert_int_equal(resp.stream(resp.stream_ctx, (uint64_t)n, buf, sizeof buf), HTTP_STREAM_ABORT);
    http_resp_free(&resp);
    fake_server_free(srv);
}

/* ----- a live server ----------------------------------------------------------- */

static lf_server *live_srv;

static bool
live_before(const http_route *route, http_req *req, http_resp *resp)
{
    if (strncmp(route->pattern, "/admin/", 7) == 0)
        return true;
    return faults_before(live_srv->faults, route, req, resp) == FAULT_PASS;
}

static const http_route live_routes[] = {
    {"GET", "/hello", h_ok},
    {"GET", "/other", h_ok},
    {"GET", "/admin/faults", faults_admin},
    {"PUT", "/admin/faults", faults_admin},
    {"DELETE", "/admin/faults", faults_admin},
    {NULL, NULL, NULL},
};

static int
dial(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

static int
send_req(uint16_t port, const char *method, const char *path, const char *body)
{
    int fd = dial(port);
    char req[1024];
    int n =
        snprintf(req, sizeof req,
                 "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n%s",
                 method, path, body ? strlen(body) : 0, body ? body : "");
    assert_int_equal(write(fd, req, (size_t)n), n);
    return fd;
}

/* Everything until the server closes (or timeout_ms passes: returns NULL). */
static char *
read_all(int fd, int timeout_ms)
{
    sb out = SB_INIT;
    char buf[4096];
    int64_t end = util_mono_ms() + timeout_ms;
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int left = (int)(end - util_mono_ms());
        if (left <= 0 || poll(&pfd, 1, left) <= 0) {
            sb_free(&out);
            close(fd);
            return NULL;
        }
        ssize_t r = read(fd, buf, sizeof buf);
        if (r <= 0)
            break;
        sb_append(&out, buf, (size_t)r);
    }
    close(fd);
    return sb_steal(&out);
}

static char *
request(uint16_t port, const char *method, const char *path, const char *body)
{
    char *got = read_all(send_req(port, method, path, body), 5000);
    assert_non_null(got);
    return got;
}

static void
wait_parked(uint16_t port, int n)
{
    char want[32];
    snprintf(want, sizeof want, "\"parked\":%d", n);
    for (int i = 0; i < 200; i++) {
        char *got = request(port, "GET", "/admin/faults", NULL);
        bool ok = strstr(got, want) != NULL;
        free(got);
        if (ok)
            return;
        usleep(10 * 1000);
    }
    fail_msg("never saw %s", want);
}

static void
test_live(void **state)
{
    (void)state;
    live_srv = fake_server(must_new(NULL));
    http_config cfg = {.host = "127.0.0.1",
                       .routes = live_routes,
                       .threads = 1,
                       .ctx = live_srv,
                       .before = live_before};
    http_server *hs;
    err_t e;
    assert_int_equal(http_start(&cfg, &hs, &e), 0);
    uint16_t port = http_port(hs);
    char *got;

    /* latency: the one polling thread stays free while a request waits */
    got = request(port, "PUT", "/admin/faults",
                  "{\"rules\":[{\"latency_ms\":300,\"path\":\"/hello\"}]}");
    assert_non_null(strstr(got, "HTTP/1.1 200"));
    free(got);
    int64_t t0 = util_mono_ms();
    int slow = send_req(port, "GET", "/hello", NULL);
    got = request(port, "GET", "/other", NULL);
    assert_true(util_mono_ms() - t0 < 250);
    assert_non_null(strstr(got, "\"ok\":true"));
    free(got);
    got = read_all(slow, 5000);
    assert_non_null(got);
    assert_true(util_mono_ms() - t0 >= 300);
    assert_non_null(strstr(got, "HTTP/1.1 200"));
    assert_non_null(strstr(got, "\"ok\":true"));
    free(got);

    /* latency with an injected error answers the error when due */
    got = request(port, "PUT", "/admin/faults",
                  "{\"rules\":[{\"latency_ms\":50,\"error_rate\":1,\"status\":503}]}");
    free(got);
    got = request(port, "GET", "/hello", NULL);
    assert_non_null(strstr(got, "HTTP/1.1 503"));
    assert_non_null(strstr(got, "SERVER_UNAVAILABLE"));
    free(got);

    /* reset: part of the real body, then the connection is cut */
    got = request(port, "PUT", "/admin/faults", "{\"rules\":[{\"reset_rate\":1}]}");
    free(got);
    got = request(port, "GET", "/hello", NULL);
    assert_non_null(strstr(got, "HTTP/1.1 200"));
    assert_non_null(strstr(got, "{\"ok\":true"));
    assert_null(strstr(got, "789\"}"));        /* not the whole body */
    assert_null(strstr(got, "\r\n0\r\n\r\n")); /* no closing chunk */
    free(got);
    /* and the same after a delay */
    got = request(port, "PUT", "/admin/faults",
                  "{\"rules\":[{\"reset_rate\":1,\"latency_ms\":20}]}");
    free(got);
    got = request(port, "GET", "/hello", NULL);
    assert_non_null(strstr(got, "{\"ok\":true"));
    assert_null(strstr(got, "\r\n0\r\n\r\n"));
    free(got);

    /* offline: parked, then answered normally once offline is off */
    got = request(port, "PUT", "/admin/faults",
                  "{\"rules\":[{\"offline\":true,\"path\":\"/hello\"}]}");
    free(got);
    int parked = send_req(port, "GET", "/hello", NULL);
    wait_parked(port, 1);
    got = request(port, "GET", "/other", NULL); /* other paths are served */
    assert_non_null(strstr(got, "\"ok\":true"));
    free(got);
    /* a PUT whose rules still hold it offline keeps it parked */
    got = request(port, "PUT", "/admin/faults",
                  "{\"rules\":[{\"offline\":true,\"path\":\"/h*\"},{\"latency_ms\":1}]}");
    assert_non_null(strstr(got, "\"parked\":1"));
    free(got);
    got = request(port, "DELETE", "/admin/faults", NULL);
    assert_non_null(strstr(got, "\"rules\":[]"));
    free(got);
    got = read_all(parked, 5000);
    assert_non_null(got);
    assert_non_null(strstr(got, "HTTP/1.1 200"));
    assert_non_null(strstr(got, "\"ok\":true"));
    free(got);

    /* offline released with release=drop: the connection is cut */
    got = request(port, "PUT", "/admin/faults",
                  "{\"rules\":[{\"offline\":true,\"path\":\"/hello\"}]}");
    free(got);
    parked = send_req(port, "GET", "/hello", NULL);
    wait_parked(port, 1);
    got = request(port, "PUT", "/admin/faults", "{\"rules\":[],\"release\":\"drop\"}");
    free(got);
    got = read_all(parked, 5000);
    assert_non_null(got);
    assert_null(strstr(got, "\"ok\":true"));
    free(got);

    /* shutdown answers what is still parked or delayed with 503 */
    got = request(port, "PUT", "/admin/faults",
                  "{\"rules\":[{\"offline\":true,\"path\":\"/hello\"},"
                  "{\"latency_ms\":60000,\"path\":\"/other\"}]}");
    free(got);
    parked = send_req(port, "GET", "/hello", NULL);
    int delayed = send_req(port, "GET", "/other", NULL);
    wait_parked(port, 1);
    faults_shutdown(live_srv->faults);
    got = read_all(parked, 5000);
    assert_non_null(got);
    assert_non_null(strstr(got, "HTTP/1.1 503"));
    assert_non_null(strstr(got, "SERVER_UNAVAILABLE"));
    free(got);
    got = read_all(delayed, 5000);
    assert_non_null(got);
    assert_non_null(strstr(got, "HTTP/1.1 503"));
    free(got);
    /* after shutdown nothing is parked any more */
    got = request(port, "GET", "/hello", NULL);
    assert_non_null(strstr(got, "\"ok\":true"));
    free(got);
    http_stop(hs);
    fake_server_free(live_srv);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_good),
        cmocka_unit_test(test_spec_bad),
        cmocka_unit_test(test_seed_env),
        cmocka_unit_test(test_admin_put_get_delete),
        cmocka_unit_test(test_admin_bad),
        cmocka_unit_test(test_path_match),
        cmocka_unit_test(test_lock_only_writes),
        cmocka_unit_test(test_rates_seeded),
        cmocka_unit_test(test_injected_errors),
        cmocka_unit_test(test_lock_after_auth),
        cmocka_unit_test(test_budget_and_expiry),
        cmocka_unit_test(test_reset_fake),
        cmocka_unit_test(test_live),
    };
    log_set_level(LOG_WARN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
