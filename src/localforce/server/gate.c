/*
 * gate: the API checks and Sforce-Limit-Info. See gate.h.
 */
#include "gate.h"

#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "ctx.h"
#include "util.h"

/* The caller's session, for the handler that runs next on this thread. */
static _Thread_local lf_session cur_session;

bool
gate_is_api(const http_route *route)
{
    return strncmp(route->pattern, "/services/data/*", 16) == 0;
}

/* "v59.0" -> true. Any vNN.N is served, as jsforce defaults to 50.0. */
static bool
valid_version(const char *v)
{
    if (v[0] != 'v')
        return false;
    const char *dot = strchr(v, '.');
    if (dot == NULL || dot == v + 1 || dot[1] == '\0')
        return false;
    for (const char *p = v + 1; *p; p++)
        if ((*p < '0' || *p > '9') && p != dot)
            return false;
    return strlen(v) <= 8;
}

bool
gate_check(const http_route *route, http_req *req, http_resp *resp)
{
    lf_server *srv = ctx_of(req);
    if (!gate_is_api(route))
        return true;
    if (!valid_version(req->seg[0])) {
        http_errorf(resp, 404, "NOT_FOUND", "The requested resource does not exist");
        return false;
    }
    if (auth_check(srv->auth, req, resp, &cur_session) != 0)
        return false;
    req->auth = &cur_session;
    /* A new UTC day starts a new count (Salesforce's is a rolling 24 hours). */
    long long today = util_now_ms() / 86400000, day = atomic_load(&srv->api_day);
    if (day != today && atomic_compare_exchange_strong(&srv->api_day, &day, today))
        atomic_store(&srv->api_used, 0);
    long long used = atomic_fetch_add(&srv->api_used, 1) + 1;
    if (used > atomic_load(&srv->api_limit)) {
        atomic_fetch_sub(&srv->api_used, 1);
        http_errorf(resp, 403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.");
        return false;
    }
    return true;
}

void
gate_after(const http_route *route, http_req *req, http_resp *resp)
{
    lf_server *srv = ctx_of(req);
    if (srv == NULL || !gate_is_api(route))
        return;
    char v[64];
    snprintf(v, sizeof v, "api-usage=%lld/%lld", (long long)atomic_load(&srv->api_used),
             (long long)atomic_load(&srv->api_limit));
    http_set_header(resp, "Sforce-Limit-Info", v);
}

void
gate_dispatch(const http_route *route, http_req *req, http_resp *resp)
{
    if (!gate_check(route, req, resp))
        return;
    route->handler(req, resp);
    if (req->pending == NULL)
        gate_after(route, req, resp);
}
