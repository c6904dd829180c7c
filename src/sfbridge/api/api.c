/*
 * api: the management API (see api.h).
 */
#include "api.h"
#include "api_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "app.h"
#include "conflicts.h"
#include "control.h"
#include "log.h"
#include "mapping.h"
#include "metrics.h"
#include "sb.h"
#include "notices.h"
#include "status.h"
#include "tlog.h"
#include "util.h"
#include "version.h"
#include "web.h"

/* One request as MHD calls us back for it. */
typedef struct req {
    sb body; /* up to BODY_LIMIT; more is refused */
    bool too_big;
} req;

/* ---- replies ------------------------------------------------------------------ */

reply
api_json(unsigned status, json_t *j)
{
    reply r = {.status = status, .body = json_dumps(j, JSON_COMPACT), .ctype = "application/json"};
    json_decref(j);
    return r;
}

reply
api_error(unsigned status, const char *code, const char *msg)
{
    return api_json(status, json_pack("{s:s, s:s}", "error", code, "message", msg));
}

reply
api_err(const err_t *e)
{
    unsigned st = e->http >= 400 && e->http < 600 ? (unsigned)e->http : 500;
    return api_error(st, e->code[0] ? e->code : "ERROR", e->msg);
}

const char *
api_arg(const call *c, const char *name)
{
    return MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, name);
}

json_t *
api_body_json(const call *c, reply *fail)
{
    json_error_t je;
    json_t *doc = json_loadb(c->body->buf ? c->body->buf : "", c->body->len, JSON_REJECT_DUPLICATES,
                             &je);
    if (json_is_object(doc))
        return doc;
    char msg[300];
    if (doc)
        snprintf(msg, sizeof msg, "the body must be a JSON object");
    else
        snprintf(msg, sizeof msg, "the body is not valid JSON at line %d: %s", je.line, je.text);
    json_decref(doc);
    *fail = api_error(400, "BAD_REQUEST", msg);
    return NULL;
}

/* A lost Postgres connection is opened again by the next request. */
void
api_forget_pg(api *s)
{
    if (s->a.pg && PQstatus(s->a.pg) != CONNECTION_OK) {
        PQfinish(s->a.pg);
        s->a.pg = NULL;
        s->a.pg_ensured = false;
    }
}

json_t *
api_status_doc(api *s, err_t *e)
{
    json_t *j = status_json(&s->a, e);
    if (!j)
        api_forget_pg(s);
    return j;
}

/* ---- handlers ----------------------------------------------------------------- */

static reply
get_healthz(call *c)
{
    return api_json(200, json_pack("{s:s, s:s, s:I}", "status", "ok", "version", SFBRIDGE_VERSION,
                                   "uptime_seconds",
                                   (json_int_t)((util_now_ms() - c->s->started_ms) / 1000)));
}

static reply
get_readyz(call *c)
{
    err_t e;
    err_clear(&e);
    json_t *st = api_status_doc(c->s, &e);
    if (!st)
        return api_json(503, json_pack("{s:b, s:s, s:[s]}", "ready", 0, "status", "down", "reasons",
                                       e.msg));
    json_t *h = json_object_get(st, "health");
    const char *verdict = json_string_value(json_object_get(h, "status"));
    bool ok = verdict && strcmp(verdict, "healthy") == 0;
    json_t *j = json_pack("{s:b, s:s, s:O}", "ready", ok, "status", verdict ? verdict : "down",
                          "reasons", json_object_get(h, "reasons"));
    json_decref(st);
    return api_json(ok ? 200 : 503, j);
}

static reply
get_metrics(call *c)
{
    err_t e;
    err_clear(&e);
    json_t *st = api_status_doc(c->s, &e);
    json_t *conf = st ? conflicts_counts(c->s->a.pg, c->s->a.cfg.schema, &e) : NULL;
    if (!st) /* the database is down: the process's own metrics, health 2 */
        st = json_pack("{s:{s:s}}", "health", "status", "down");
    reply r = {.status = 200,
               .body = metrics_text(st, conf, util_now_ms(), c->s->started_ms),
               .ctype = "text/plain; version=0.0.4; charset=utf-8"};
    json_decref(st);
    json_decref(conf);
    return r;
}

/* The connection: the status document, named as Heroku Connect's API names it. */
static json_t *
connection(api *s, err_t *e)
{
    json_t *st = api_status_doc(s, e);
    if (st) {
        json_object_set_new(st, "id", json_string(CONNECTION_ID));
        json_object_set_new(st, "schema_name", json_string(s->a.cfg.schema));
        /* Heroku Connect's connection fields at the top, the details beside them. */
        json_t *c = json_object_get(st, "connection");
        const char *keys[] = {"state", "org_id", "instance_url", "api_version"};
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            if (json_object_get(c, keys[i]))
                json_object_set(st, keys[i], json_object_get(c, keys[i]));
    }
    return st;
}

bool
api_known_connection(const call *c)
{
    return strcmp(c->arg[0], CONNECTION_ID) == 0 || strcmp(c->arg[0], c->s->a.cfg.schema) == 0;
}

reply
api_no_connection(const call *c)
{
    char msg[300];
    snprintf(msg, sizeof msg, "no connection '%.200s' (this sfbridge has one: '%s')", c->arg[0],
             CONNECTION_ID);
    return api_error(404, "NOT_FOUND", msg);
}

static reply
get_connections(call *c)
{
    err_t e;
    json_t *conn = connection(c->s, &e);
    if (!conn)
        return api_err(&e);
    return api_json(200, json_pack("{s:i, s:[o]}", "count", 1, "results", conn));
}

static reply
get_connection(call *c)
{
    if (!api_known_connection(c))
        return api_no_connection(c);
    err_t e;
    json_t *conn = connection(c->s, &e);
    return conn ? api_json(200, conn) : api_err(&e);
}

static reply
get_connection_mappings(call *c)
{
    if (!api_known_connection(c))
        return api_no_connection(c);
    err_t e;
    json_t *st = api_status_doc(c->s, &e);
    if (!st)
        return api_err(&e);
    json_t *maps = json_incref(json_object_get(st, "mappings"));
    json_decref(st);
    return api_json(200, json_pack("{s:I, s:o}", "count", (json_int_t)json_array_size(maps),
                                   "results", maps));
}

/* ?hours=N (1 to 744), else 24. */
static int
hours_arg(call *c)
{
    const char *v = MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, "hours");
    int64_t h;
    return v && util_parse_i64(v, &h) == 0 && h >= 1 && h <= 744 ? (int)h : ERRORS_HOURS;
}

static reply
errors_of(call *c, const char *table)
{
    err_t e;
    err_clear(&e);
    PGconn *pg = app_pg_read(&c->s->a, &e);
    json_t *list = pg ? tlog_errors_json(pg, c->s->a.cfg.schema, table, hours_arg(c), &e) : NULL;
    if (!list) {
        api_forget_pg(c->s);
        return api_err(&e);
    }
    return api_json(200, json_pack("{s:I, s:o}", "count", (json_int_t)json_array_size(list),
                                   "results", list));
}

static reply
get_connection_errors(call *c)
{
    return api_known_connection(c) ? errors_of(c, NULL) : api_no_connection(c);
}

static reply
get_connection_export(call *c)
{
    if (!api_known_connection(c))
        return api_no_connection(c);
    err_t e;
    json_t *doc = map_export_json(&c->s->a, &e);
    return doc ? api_json(200, doc) : api_err(&e);
}

/* object's entry of the status document (NULL: not mapped; *st to free). */
json_t *
api_find_mapping(call *c, const char *object, json_t **st, reply *fail)
{
    err_t e;
    err_clear(&e);
    *st = api_status_doc(c->s, &e);
    if (!*st) {
        *fail = api_err(&e);
        return NULL;
    }
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(*st, "mappings"), i, m) {
        if (strcmp(json_string_value(json_object_get(m, "object_name")), object) == 0)
            return m;
    }
    char msg[300];
    snprintf(msg, sizeof msg, "%.200s is not mapped", object);
    *fail = api_error(404, "NOT_MAPPED", msg);
    return NULL;
}

static reply
get_mapping(call *c)
{
    json_t *st;
    reply r;
    json_t *m = api_find_mapping(c, c->arg[0], &st, &r);
    if (m)
        r = api_json(200, json_incref(m));
    json_decref(st);
    return r;
}

static reply
get_mapping_errors(call *c)
{
    json_t *st;
    reply r;
    json_t *m = api_find_mapping(c, c->arg[0], &st, &r);
    if (m)
        r = errors_of(c, json_string_value(json_object_get(m, "table_name")));
    json_decref(st);
    return r;
}

static reply
get_connection_notifications(call *c)
{
    if (!api_known_connection(c))
        return api_no_connection(c);
    const char *all = MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, "all");
    err_t e;
    err_clear(&e);
    PGconn *pg = app_pg_read(&c->s->a, &e);
    json_t *list = pg ? notices_list(pg, c->s->a.cfg.schema, all && strcmp(all, "0") != 0,
                                     hours_arg(c), &e)
                      : NULL;
    if (!list) {
        api_forget_pg(c->s);
        return api_err(&e);
    }
    return api_json(200, json_pack("{s:I, s:o}", "count", (json_int_t)json_array_size(list),
                                   "results", list));
}

static reply
post_notification_ack(call *c)
{
    int64_t id = 0, n = 0;
    bool all = strcmp(c->arg[0], "all") == 0;
    if (!all && (util_parse_i64(c->arg[0], &id) != 0 || id <= 0))
        return api_error(404, "NOT_FOUND", "a notification id is a whole number (or all)");
    if (strcmp(c->arg[1], "acknowledge") != 0)
        return api_error(404, "NOT_FOUND", "no such action (acknowledge)");
    err_t e;
    err_clear(&e);
    if (!app_pg(&c->s->a, &e) || notices_ack(c->s->a.pg, c->s->a.cfg.schema, id, &n, &e) != 0) {
        api_forget_pg(c->s);
        return api_err(&e);
    }
    if (!all && n == 0)
        return api_error(404, "NOT_FOUND", "no unacknowledged notification with that id");
    return api_json(202, json_pack("{s:s, s:I}", "action", "acknowledge", "acknowledged",
                                   (json_int_t)n));
}

static reply
act(call *c, const char *object, const char *name)
{
    int what = control_parse(name);
    if (what < 0 || (!object && what == CONTROL_RELOAD))
        return api_error(404, "NOT_FOUND", "no such action (pause, resume, reload)");
    err_t e;
    err_clear(&e);
    if (control_apply(&c->s->a, object, (control_action)what, &e) != 0) {
        api_forget_pg(c->s);
        return api_err(&e);
    }
    return api_json(202, json_pack("{s:s, s:s}", "action", name, "target",
                                   object ? object : CONNECTION_ID));
}

/* POST .../actions/import: a Heroku Connect export in the body, as `mapping import`. */
static reply
import_mappings(call *c)
{
    reply r;
    json_t *doc = api_body_json(c, &r);
    if (!doc)
        return r;
    err_t e;
    err_clear(&e);
    int rc = map_import(&c->s->a, doc, &e);
    size_t n = json_array_size(json_object_get(doc, "mappings"));
    json_decref(doc);
    if (rc != 0) {
        api_forget_pg(c->s);
        return api_err(&e);
    }
    return api_json(202, json_pack("{s:s, s:I}", "action", "import", "mappings", (json_int_t)n));
}

static reply
post_connection_action(call *c)
{
    if (!api_known_connection(c))
        return api_no_connection(c);
    if (strcmp(c->arg[1], "authorize") == 0)
        return dash_authorize(c);
    return strcmp(c->arg[1], "import") == 0 ? import_mappings(c) : act(c, NULL, c->arg[1]);
}

static reply
post_mapping_action(call *c)
{
    return act(c, c->arg[0], c->arg[1]);
}

/* ---- routing -------------------------------------------------------------------- */

typedef struct route {
    const char *method;
    const char *pattern; /* "{}" matches one path segment */
    route_fn fn;
    bool open; /* answered without the token */
} route;

/* GET / and /ui/NAME: the dashboard's files (web.c). */
static reply
get_file(call *c)
{
    web_file f;
    err_t e;
    err_clear(&e);
    if (web_find(c->s->a.cfg.web_dir, c->arg[0][0] ? c->arg[0] : "index.html", &f, &e) != 0)
        return api_err(&e);
    reply r = {.status = 200, .len = f.size, .ctype = f.ctype};
    if (f.owned)
        r.body = (char *)f.data;
    else
        r.fixed = f.data;
    return r;
}

static const route routes[] = {
    {"GET", "/", get_file, false},
    {"GET", "/ui/{}", get_file, false},
    {"GET", "/oauth/callback", dash_oauth_callback, false},
    {"GET", "/healthz", get_healthz, true},
    {"GET", "/readyz", get_readyz, false},
    {"GET", "/metrics", get_metrics, false},
    {"GET", "/api/v3/connections", get_connections, false},
    {"GET", "/api/v3/connections/{}", get_connection, false},
    {"GET", "/api/v3/connections/{}/mappings", get_connection_mappings, false},
    {"POST", "/api/v3/connections/{}/mappings", dash_create_mapping, false},
    {"GET", "/api/v3/connections/{}/errors", get_connection_errors, false},
    {"GET", "/api/v3/connections/{}/export", get_connection_export, false},
    {"GET", "/api/v3/connections/{}/objects", dash_objects, false},
    {"GET", "/api/v3/connections/{}/objects/{}", dash_object, false},
    {"GET", "/api/v3/connections/{}/activity", dash_activity, false},
    {"POST", "/api/v3/connections/{}/actions/{}", post_connection_action, false},
    {"GET", "/api/v3/connections/{}/notifications", get_connection_notifications, false},
    {"POST", "/api/v3/notifications/{}/actions/{}", post_notification_ack, false},
    {"POST", "/api/v3/errors/{}/actions/{}", dash_retry, false},
    {"GET", "/api/v3/mappings/{}", get_mapping, false},
    {"PATCH", "/api/v3/mappings/{}", dash_edit_mapping, false},
    {"DELETE", "/api/v3/mappings/{}", dash_remove_mapping, false},
    {"GET", "/api/v3/mappings/{}/errors", get_mapping_errors, false},
    {"GET", "/api/v3/mappings/{}/records", dash_records, false},
    {"GET", "/api/v3/mappings/{}/records/{}", dash_record, false},
    {"POST", "/api/v3/mappings/{}/actions/{}", post_mapping_action, false},
};

/* Whether path matches pattern; the {} segments into seg (copies in buf). */
static bool
match(const char *pattern, const char *path, char buf[2][256], const char *seg[2])
{
    int n = 0;
    while (*pattern && *path) {
        if (strncmp(pattern, "{}", 2) == 0) {
            size_t len = strcspn(path, "/");
            if (len == 0 || len >= 256 || n >= 2)
                return false;
            memcpy(buf[n], path, len);
            buf[n][len] = '\0';
            seg[n] = buf[n];
            n++;
            path += len;
            pattern += 2;
        } else if (*pattern++ != *path++) {
            return false;
        }
    }
    return !*pattern && (!*path || strcmp(path, "/") == 0);
}

static bool
same_bytes(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char d = la != lb;
    for (size_t i = 0; i < la; i++)
        d |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
    return d == 0;
}

static bool
bearer(const char *h)
{
    return h && strncasecmp(h, "Bearer ", 7) == 0;
}

bool
api_token_matches(const char *h, const char *tok)
{
    if (bearer(h))
        return same_bytes(h + 7, tok);
    if (!h || strncasecmp(h, "Basic ", 6) != 0)
        return false;
    const char *b64 = h + 6;
    size_t n = strlen(b64);
    if (n == 0 || n > 1024 || n % 4)
        return false;
    unsigned char plain[800];
    int len = EVP_DecodeBlock(plain, (const unsigned char *)b64, (int)n);
    if (len < 0)
        return false;
    size_t pad = strlen(b64 + strcspn(b64, "=")); /* padding decodes to zero bytes */
    if (pad > 2 || (size_t)len < pad)
        return false;
    len -= (int)pad;
    plain[len] = '\0';
    const char *colon = memchr(plain, ':', (size_t)len);
    /* the password is the rest, and has no NUL in it */
    return colon && strlen(colon + 1) == (size_t)len - (size_t)(colon + 1 - (const char *)plain) &&
           same_bytes(colon + 1, tok);
}

static bool
authorized(const api *s, struct MHD_Connection *conn)
{
    const char *tok = s->a.cfg.http_token;
    if (!tok || !*tok)
        return true;
    return api_token_matches(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization"),
                             tok);
}

/* NULL when a state-changing call may go on, else why not. */
static const char *
forged(const api *s, struct MHD_Connection *conn)
{
    const char *site = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Sec-Fetch-Site");
    if (site && strcmp(site, "cross-site") == 0)
        return "a state-changing call from another site";
    const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
    const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host");
    if (origin) {
        const char *o = strstr(origin, "://");
        if (!host || !o || strcmp(o + 3, host) != 0)
            return "a state-changing call from another origin";
    }
    const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
    bool json = ct && strncasecmp(ct, "application/json", 16) == 0;
    /* A browser sends Basic credentials by itself, never a bearer token. */
    if (!json && !(s->a.cfg.http_token && *s->a.cfg.http_token &&
                   bearer(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization"))))
        return "a state-changing call needs Content-Type: application/json";
    return NULL;
}

static reply
dispatch(api *s, struct MHD_Connection *conn, const char *url, const char *method, const sb *body)
{
    char buf[2][256];
    call c = {s, conn, method, {"", ""}, body};
    bool path_known = false;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (!match(routes[i].pattern, url, buf, c.arg))
            continue;
        path_known = true;
        if (strcmp(routes[i].method, method) != 0)
            continue;
        if (!routes[i].open && !authorized(s, conn)) {
            reply r = api_error(401, "UNAUTHORIZED",
                                "Authorization: Bearer SFBRIDGE_HTTP_TOKEN (or Basic, the token "
                                "as password)");
            r.challenge = true;
            return r;
        }
        const char *why = strcmp(method, "GET") != 0 ? forged(s, conn) : NULL;
        if (why)
            return api_error(403, "FORBIDDEN", why);
        return routes[i].fn(&c);
    }
    if (path_known)
        return api_error(405, "METHOD_NOT_ALLOWED", "not with this method");
    return api_error(404, "NOT_FOUND", "no such resource (see docs/sfbridge.md, the API)");
}

static enum MHD_Result
send_reply(struct MHD_Connection *conn, reply r)
{
    struct MHD_Response *resp;
    if (r.fixed) {
        resp = MHD_create_response_from_buffer(r.len, (void *)r.fixed, MHD_RESPMEM_PERSISTENT);
    } else {
        size_t len = r.body ? (r.len ? r.len : strlen(r.body)) : 0;
        resp = MHD_create_response_from_buffer(len, r.body ? r.body : "", MHD_RESPMEM_MUST_COPY);
    }
    free(r.body);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", r.ctype ? r.ctype : "application/json");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "Content-Security-Policy",
                            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
                            "base-uri 'none'; form-action 'self'");
    if (r.challenge)
        MHD_add_response_header(resp, "WWW-Authenticate",
                                "Basic realm=\"sfbridge\", charset=\"UTF-8\"");
    enum MHD_Result ok = MHD_queue_response(conn, r.status, resp);
    MHD_destroy_response(resp);
    return ok;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
           const char *version, const char *upload, size_t *upload_size, void **ctx)
{
    (void)version, (void)upload;
    api *s = cls;
    req *q = *ctx;
    if (!q) {
        *ctx = xcalloc(1, sizeof *q);
        return MHD_YES;
    }
    if (*upload_size) {
        if (q->body.len + *upload_size > BODY_LIMIT)
            q->too_big = true;
        else
            sb_append(&q->body, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if (q->too_big)
        return send_reply(conn, api_error(413, "TOO_LARGE", "request body over 1 MB"));
    pthread_mutex_lock(&s->mu);
    reply r = dispatch(s, conn, url, method, &q->body);
    pthread_mutex_unlock(&s->mu);
    log_debug("http: %s %s %u", method, url, r.status);
    return send_reply(conn, r);
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **ctx,
             enum MHD_RequestTerminationCode why)
{
    (void)cls, (void)conn, (void)why;
    req *q = *ctx;
    if (q)
        sb_free(&q->body);
    free(q);
    *ctx = NULL;
}

static void __attribute__((format(printf, 2, 0))) on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    buf[strcspn(buf, "\n")] = '\0';
    log_debug("http: %s", buf);
}

/* ---- listening ------------------------------------------------------------------ */

bool
api_is_loopback(const char *host)
{
    if (strcmp(host, "localhost") == 0)
        return true;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

/* "HOST:PORT" / "[V6]:PORT" into host and port. 0, or -1. */
static int
split_listen(const char *addr, char host[256], char port[8])
{
    const char *colon = strrchr(addr, ':');
    if (!colon || strlen(colon + 1) >= 8)
        return -1;
    const char *h = addr;
    size_t hl = (size_t)(colon - addr);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl == 0 || hl >= 256)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    snprintf(port, 8, "%s", colon + 1);
    return 0;
}

/* A listening socket on host:port; its port into *bound. -1 with e filled. */
static int
listen_on(const char *host, const char *port, int *bound, err_t *e)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0)
        return err_set(e, 400, "BAD_CONFIG", "SFBRIDGE_HTTP: cannot resolve %s: %s", host,
                       gai_strerror(rc));
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        err_set(e, 400, "BAD_CONFIG", "SFBRIDGE_HTTP: cannot listen on %s:%s: %s", host, port,
                strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    *bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                            : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

api *
api_start(const cfg *c, const char *config_path, int64_t started_ms, err_t *e)
{
    char host[256], port[8];
    if (!c->http_listen || split_listen(c->http_listen, host, port) != 0) {
        err_set(e, 400, "BAD_CONFIG", "SFBRIDGE_HTTP must be HOST:PORT, such as 127.0.0.1:8080");
        return NULL;
    }
    if (!api_is_loopback(host) && !(c->http_token && *c->http_token)) {
        err_set(e, 400, "BAD_CONFIG",
                "the management API would listen beyond loopback (%s): set SFBRIDGE_HTTP_TOKEN "
                "(clients then send Authorization: Bearer TOKEN)",
                c->http_listen);
        return NULL;
    }
    api *s = xcalloc(1, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    cfg_copy(&s->a.cfg, c);
    s->started_ms = started_ms;
    s->config_path = config_path ? xstrdup(config_path) : NULL;
    s->a.config_path = s->config_path;
    int fd = listen_on(host, port, &s->port, e);
    if (fd >= 0)
        s->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL,
                                  NULL, on_request, s, MHD_OPTION_LISTEN_SOCKET, fd,
                                  MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_CONNECTION_LIMIT,
                                  64u, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                                  MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL, MHD_OPTION_END);
    if (!s->mhd) {
        if (fd >= 0) {
            close(fd);
            err_set(e, 500, "HTTP", "the management API could not start");
        }
        app_close(&s->a);
        pthread_mutex_destroy(&s->mu);
        free(s->config_path);
        free(s);
        return NULL;
    }
    log_info("http: management API on http://%s%s%s:%d/ (%s)", strchr(host, ':') ? "[" : "", host,
             strchr(host, ':') ? "]" : "", s->port,
             c->http_token && *c->http_token ? "bearer token required" : "loopback, no token");
    return s;
}

static bool
same_str(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

bool
api_same_listener(const api *s, const cfg *c)
{
    return same_str(s->a.cfg.http_listen, c->http_listen) &&
           same_str(s->a.cfg.http_token, c->http_token);
}

void
api_update(api *s, const cfg *c, const char *config_path)
{
    pthread_mutex_lock(&s->mu);
    app_close(&s->a); /* (its settings too) */
    memset(&s->a, 0, sizeof s->a);
    cfg_copy(&s->a.cfg, c);
    free(s->config_path);
    s->config_path = config_path ? xstrdup(config_path) : NULL;
    s->a.config_path = s->config_path;
    pthread_mutex_unlock(&s->mu);
}

int
api_port(const api *s)
{
    return s ? s->port : 0;
}

void
api_stop(api *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->mhd);
    app_close(&s->a);
    OPENSSL_cleanse(&s->flow, sizeof s->flow);
    pthread_mutex_destroy(&s->mu);
    free(s->config_path);
    free(s);
}
