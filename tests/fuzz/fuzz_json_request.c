/*
 * libFuzzer harness: JSON request handling.
 *
 * The first input byte picks a REST handler (create, update, upsert,
 * collection create/update/upsert/delete, retrieve); the rest is the request
 * body. Handlers run against an in-memory org exactly as the server runs them
 * (the HTTP layer is replaced by a fake request), so every JSON shape a
 * client could send goes through the real parsing, validation and store code.
 *
 * Every input is also a request path: http_normalize_path() (run where every
 * request enters) must give a path that starts with '/', has no doubled or
 * trailing '/', is no longer than the input plus one and is a fixed point, and
 * routing it must be safe, whatever the bytes (empty, only slashes, "%2F",
 * very long).
 *
 * Every input is also a JWT bearer assertion (jwt_parse, then jwt_verify
 * against a certificate made at start-up) and an org file's jwt_cert
 * (jwt_cert_ok).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jwt.h"
#include "rest.h"
#include "server.h"
#include "tls.h"
#include "util.h"

static const char org_json[] =
    "{\"organization\":{\"name\":\"Fuzz\"},"
    "\"users\":[{\"username\":\"f@f.test\",\"password\":\"p\",\"first_name\":\"F\",\"last_name\":"
    "\"Z\","
    "\"email\":\"f@f.test\"}],"
    "\"objects\":{\"Account\":{\"fields\":{\"Ext__c\":{\"type\":\"string\",\"length\":20,"
    "\"external_id\":true,\"unique\":true}}},"
    "\"Teacher__c\":{\"fields\":{\"First_Name__c\":{\"type\":\"string\",\"length\":10,\"required\":"
    "true},"
    "\"Email__c\":{\"type\":\"email\",\"length\":40,\"unique\":true,\"external_id\":true},"
    "\"Status__c\":{\"type\":\"picklist\",\"values\":[\"A\",\"B\"],\"restricted\":true},"
    "\"Tags__c\":{\"type\":\"multipicklist\",\"values\":[\"x\",\"y\"]},"
    "\"Pay__c\":{\"type\":\"currency\"},\"Age__c\":{\"type\":\"int\"},\"On__c\":{\"type\":"
    "\"boolean\"},"
    "\"Hired__c\":{\"type\":\"date\"},\"Seen__c\":{\"type\":\"datetime\"},\"Url__c\":{\"type\":"
    "\"url\"},"
    "\"School__c\":{\"type\":\"reference\",\"reference_to\":\"Account\",\"relationship_name\":"
    "\"School__r\"}}}},"
    "\"records\":{\"Account\":[{\"Name\":\"S\",\"Ext__c\":\"S-1\"}],"
    "\"Teacher__c\":[{\"First_Name__c\":\"Ada\",\"Email__c\":\"ada@x.org\"}]}}";

/* The shapes of server.c's route table, "**" included. */
static const http_route path_routes[] = {
    {"GET", "/services/data", NULL},
    {"GET", "/services/data/*", NULL},
    {"GET", "/services/data/*/sobjects/*/describe", NULL},
    {"GET", "/services/data/*/sobjects/*/*/*", NULL},
    {"GET", "/services/data/*/query/*", NULL},
    {"POST", "/cometd/*/*/*", NULL},
    {NULL, "/files/**", NULL},
    {NULL, NULL, NULL},
};

static void
fuzz_path(const char *in)
{
    size_t n = strlen(in);
    char *a = xmalloc(n + 2), *b = xmalloc(n + 2);
    http_normalize_path(in, a);
    size_t m = strlen(a);
    if (a[0] != '/' || m > n + 1 || strstr(a, "//") || (m > 1 && a[m - 1] == '/'))
        abort();
    if (strcmp(http_normalize_path(a, b), a) != 0)
        abort();
    http_req req = {.method = "GET", .path = a};
    const http_route *r = http_match(path_routes, &req);
    if (r && (req.nseg < 0 || req.nseg > HTTP_MAX_SEGS))
        abort();
    free(a);
    free(b);
}

static lf_server *srv;
static lf_session session;
static unsigned long runs;
static char *jwt_cert; /* made once: verifying against it must be safe for any token */

static void
fuzz_jwt(const char *in)
{
    if (jwt_cert == NULL) {
        char *key;
        err_t e;
        if (tls_generate(&jwt_cert, &key, &e) != 0)
            abort();
        free(key);
    }
    jwt_token t;
    if (jwt_parse(in, &t) == 0) {
        if (t.naud < 1 || t.naud > JWT_AUD_MAX || t.input_len >= strlen(in) || t.sig_len == 0)
            abort();
        (void)jwt_verify(&t, jwt_cert);
        (void)jwt_has_audience(&t, "https://login.salesforce.com");
    }
    const char *why;
    (void)jwt_cert_ok(in, &why);
}

static void
setup(void)
{
    srv = xcalloc(1, sizeof *srv);
    err_t e;
    json_t *org = json_loads(org_json, 0, NULL);
    if (store_open(":memory:", &srv->st, &e) != 0 || store_load_org_json(srv->st, org, &e) != 0)
        abort();
    json_decref(org);
    srv->auth = auth_new(srv->st);
    srv->cursors = cursors_new(srv->st);
    srv->api_limit = 1000000000;
    snprintf(srv->base_url, sizeof srv->base_url, "http://127.0.0.1:1");
    const lf_user *u = store_user_by_name(srv->st, "f@f.test");
    snprintf(session.user_id, sizeof session.user_id, "%s", u ? u->id : "005000000000000AAA");
}

static void
teardown(void)
{
    cursors_free(srv->cursors);
    auth_free(srv->auth);
    store_close(srv->st);
    free(srv);
    srv = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (srv == NULL || ++runs % 5000 == 0) { /* keep the in-memory org small */
        if (srv)
            teardown();
        setup();
    }
    char *body = xmalloc(size);
    memcpy(body, data + 1, size - 1);
    body[size - 1] = '\0';
    fuzz_path(body);
    fuzz_jwt(body);

    static const char *const ids_q[] = {"Q", "ids", "a01000000000001AAA,001zz,", NULL};
    http_req req = {.body = body,
                    .body_len = size - 1,
                    .ctx = srv,
                    .auth = &session,
                    .seg = {"v62.0"},
                    .nseg = 1};
    http_resp resp = {.status = 200};
    switch (data[0] % 9) {
    case 0: req.method = "POST", req.seg[1] = "Teacher__c", rest_create(&req, &resp); break;
    case 1: req.method = "POST", req.seg[1] = "Account", rest_create(&req, &resp); break;
    case 2:
        req.method = "PATCH", req.seg[1] = "Teacher__c", req.seg[2] = "Email__c",
        req.seg[3] = "new@x.org", rest_by_external_id(&req, &resp);
        break;
    case 3: req.method = "POST", rest_collection(&req, &resp); break;
    case 4: req.method = "PATCH", rest_collection(&req, &resp); break;
    case 5:
        req.method = "PATCH", req.seg[1] = "Teacher__c", req.seg[2] = "Email__c",
        rest_collection_upsert(&req, &resp);
        break;
    case 6:
        req.method = "POST", req.seg[1] = "Teacher__c", rest_collection_retrieve(&req, &resp);
        break;
    case 7: req.method = "DELETE", req.fake = ids_q, rest_collection(&req, &resp); break;
    default:
        req.method = "PATCH", req.seg[1] = "Teacher__c", req.seg[2] = "a01000000000001AAA",
        rest_record(&req, &resp);
    }
    http_resp_free(&resp);
    free(body);
    return 0;
}
