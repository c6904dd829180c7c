/*
 * http: localforce's HTTP front, on libmicrohttpd. See http.h.
 *
 * libmicrohttpd runs a small pool of polling threads; each request is read in
 * full (bounded by max_body, answered 413 beyond it), routed, handled and
 * answered from one buffer. Idle or stalled connections are closed after a
 * timeout, so a client that sends half a request costs one socket for a while
 * and nothing else.
 */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <unistd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "util.h"

#define HTTP_CONN_TIMEOUT_S 120 /* a little above CometD's 110 s long poll */
#define HTTP_CONN_LIMIT     1024

struct http_server {
    struct MHD_Daemon *mhd;
    http_config cfg;
    uint16_t port;
};

/* A parked request. The mutex orders http_complete() against the handler
 * that is still returning: whichever comes second sends the answer. */
struct http_pending {
    pthread_mutex_t lock;
    struct MHD_Connection *conn;
    bool suspended; /* the handler returned and the connection sleeps */
    bool ready;     /* http_complete() supplied resp */
    http_resp resp;
};

/* Per-request state, kept in libmicrohttpd's connection closure. */
typedef struct reqstate {
    sb body;
    char *path; /* the normalized path (http_normalize_path) */
    bool too_big;
    http_pending *pending; /* parked, waiting for http_complete() */
} reqstate;

/* ----- request accessors ------------------------------------------------ */

/* Without a live connection (unit tests, fuzzers) requests carry their
 * headers and query arguments in req->fake, as "name", "value" pairs. */
static const char *
fake_lookup(const http_req *req, const char *kind, const char *name)
{
    for (int i = 0; req->fake && req->fake[i]; i += 3)
        if (strcmp(req->fake[i], kind) == 0 && strcasecmp(req->fake[i + 1], name) == 0)
            return req->fake[i + 2];
    return NULL;
}

const char *
http_header(http_req *req, const char *name)
{
    if (req->conn == NULL)
        return fake_lookup(req, "H", name);
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *
http_query(http_req *req, const char *name)
{
    if (req->conn == NULL)
        return fake_lookup(req, "Q", name);
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *
http_form(http_req *req, const char *name, char *buf, size_t bufsz)
{
    size_t nlen = strlen(name);
    const char *p = req->body;
    while (p && *p) {
        const char *amp = strchr(p, '&');
        size_t plen = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', plen);
        size_t klen = eq ? (size_t)(eq - p) : plen;
        char key[128];
        if (klen < sizeof key) {
            memcpy(key, p, klen);
            key[klen] = '\0';
            util_url_decode(key, true);
            if (strlen(key) == nlen && memcmp(key, name, nlen) == 0) {
                size_t vlen = eq ? plen - klen - 1 : 0;
                if (vlen >= bufsz)
                    return NULL; /* too long to be a real value */
                memcpy(buf, eq ? eq + 1 : "", vlen);
                buf[vlen] = '\0';
                util_url_decode(buf, true);
                return buf;
            }
        }
        p = amp ? amp + 1 : NULL;
    }
    return NULL;
}

/* ----- response helpers -------------------------------------------------- */

void
http_set_header(http_resp *resp, const char *name, const char *value)
{
    for (int i = 0; i < resp->nheaders; i++)
        if (strcasecmp(resp->hname[i], name) == 0) {
            free(resp->hvalue[i]);
            resp->hvalue[i] = xstrdup(value);
            return;
        }
    if (resp->nheaders == HTTP_MAX_HEADERS)
        return;
    resp->hname[resp->nheaders] = xstrdup(name);
    resp->hvalue[resp->nheaders] = xstrdup(value);
    resp->nheaders++;
}

void
http_error(http_resp *resp, const err_t *e)
{
    resp->status = e->http ? e->http : 400;
    resp->content_type = CT_JSON;
    sb_clear(&resp->body);
    sb_puts(&resp->body, "[{\"message\":");
    sb_json_str(&resp->body, e->msg);
    sb_puts(&resp->body, ",\"errorCode\":");
    sb_json_str(&resp->body, e->code);
    if (e->fields[0]) {
        sb_puts(&resp->body, ",\"fields\":[");
        const char *p = e->fields;
        bool first = true;
        while (*p) {
            const char *comma = strchr(p, ',');
            size_t n = comma ? (size_t)(comma - p) : strlen(p);
            if (!first)
                sb_putc(&resp->body, ',');
            sb_json_strn(&resp->body, p, n);
            first = false;
            p += n + (comma ? 1 : 0);
        }
        sb_putc(&resp->body, ']');
    }
    sb_puts(&resp->body, "}]");
}

void
http_errorf(http_resp *resp, int status, const char *code, const char *fmt, ...)
{
    err_t e;
    va_list ap;
    va_start(ap, fmt);
    err_setv(&e, status, code, fmt, ap);
    va_end(ap);
    http_error(resp, &e);
}

/* ----- deferred answers -------------------------------------------------- */

http_pending *
http_defer(http_req *req)
{
    if (req->conn == NULL || req->pending)
        return NULL; /* no live connection (tests), or deferred twice */
    http_pending *p = xcalloc(1, sizeof *p);
    pthread_mutex_init(&p->lock, NULL);
    p->conn = req->conn;
    p->resp.status = 200;
    req->pending = p;
    return p;
}

void
http_complete(http_pending *p, http_resp *resp)
{
    pthread_mutex_lock(&p->lock);
    http_resp_free(&p->resp);
    p->resp = *resp;
    memset(resp, 0, sizeof *resp);
    p->ready = true;
    if (p->suspended)
        MHD_resume_connection(p->conn); /* on_request runs again and sends it */
    pthread_mutex_unlock(&p->lock);
}

/* ----- routing ----------------------------------------------------------- */

char *
http_normalize_path(const char *in, char *out)
{
    char *o = out;
    *o++ = '/';
    for (const char *p = in; *p; p++)
        if (*p != '/' || o[-1] != '/')
            *o++ = *p;
    if (o - out > 1 && o[-1] == '/')
        o--;
    *o = '\0';
    return out;
}

const http_route *
http_match(const http_route *routes, http_req *req)
{
    for (const http_route *r = routes; r->pattern; r++) {
        const char *pat = r->pattern, *path = req->path;
        int nseg = 0;
        bool ok = true;
        /* Captures point into a per-request copy so they can be NUL-terminated. */
        static _Thread_local char segbuf[HTTP_MAX_SEGS][1024];
        while (ok) {
            if (*pat == '\0' && *path == '\0')
                break;
            if (*pat != '/' || *path != '/') {
                ok = false;
                break;
            }
            pat++, path++;
            const char *pend = strchr(pat, '/');
            size_t plen = pend ? (size_t)(pend - pat) : strlen(pat);
            const char *send = strchr(path, '/');
            size_t slen = send ? (size_t)(send - path) : strlen(path);
            if (plen == 2 && memcmp(pat, "**", 2) == 0) {
                size_t rest = strlen(path);
                if (nseg == HTTP_MAX_SEGS || rest >= sizeof segbuf[0]) {
                    ok = false;
                    break;
                }
                memcpy(segbuf[nseg], path, rest + 1);
                req->seg[nseg] = segbuf[nseg];
                nseg++;
                path += rest, pat += plen;
                continue;
            }
            if (plen == 1 && *pat == '*') {
                if (slen == 0 || nseg == HTTP_MAX_SEGS || slen >= sizeof segbuf[0]) {
                    ok = false;
                    break;
                }
                memcpy(segbuf[nseg], path, slen);
                segbuf[nseg][slen] = '\0';
                req->seg[nseg] = segbuf[nseg];
                nseg++;
            } else if (plen != slen || strncasecmp(pat, path, plen) != 0) {
                ok = false;
                break;
            }
            pat += plen, path += slen;
        }
        if (!ok)
            continue;
        /* The path matched; does the method? */
        if (r->method && strcmp(r->method, req->method) != 0) {
            /* Keep looking: another route may take this method on the same path. */
            continue;
        }
        req->nseg = nseg;
        return r;
    }
    return NULL;
}

/* Does any route match the path, whatever the method? (405 vs 404) */
static bool
path_known(const http_route *routes, http_req *req, char *allowed, size_t allowed_sz)
{
    bool any = false;
    allowed[0] = '\0';
    for (const http_route *r = routes; r->pattern; r++) {
        http_route one[2] = {*r, {NULL, NULL, NULL}};
        one[0].method = NULL;
        http_req tmp = *req;
        if (http_match(one, &tmp)) {
            if (r->method && !strstr(allowed, r->method)) {
                size_t n = strlen(allowed);
                snprintf(allowed + n, allowed_sz - n, "%s%s", n ? "," : "", r->method);
            }
            any = true;
        }
    }
    return any;
}

/* ----- libmicrohttpd glue ------------------------------------------------ */

static ssize_t
stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    http_resp *r = cls;
    ssize_t n = r->stream(r->stream_ctx, pos, buf, max);
    if (n == HTTP_STREAM_END)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (n <= 0)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    return n;
}

static void
stream_done(void *cls)
{
    http_resp *r = cls;
    if (r->stream_free)
        r->stream_free(r->stream_ctx);
    free(r);
}

static enum MHD_Result
send_resp(struct MHD_Connection *conn, http_resp *resp)
{
    struct MHD_Response *r;
    if (resp->stream) {
        /* The callback outlives this function: hand it a copy of the stream fields. */
        http_resp *sr = xcalloc(1, sizeof *sr);
        sr->stream = resp->stream;
        sr->stream_ctx = resp->stream_ctx;
        sr->stream_free = resp->stream_free;
        resp->stream = NULL;
        resp->stream_free = NULL;
        r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, stream_reader, sr,
                                              stream_done);
        if (r == NULL) {
            stream_done(sr);
            return MHD_NO;
        }
    } else {
        size_t len = resp->body.len;
        char *buf = sb_steal(&resp->body);
        r = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
        if (r == NULL) {
            free(buf);
            return MHD_NO;
        }
    }
    if (resp->status != 204 && resp->status != 304)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                                resp->content_type ? resp->content_type : CT_JSON);
    for (int i = 0; i < resp->nheaders; i++)
        MHD_add_response_header(r, resp->hname[i], resp->hvalue[i]);
    if (resp->close)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)resp->status, r);
    MHD_destroy_response(r);
    return ret;
}

void
http_resp_free(http_resp *resp)
{
    if (resp->stream && resp->stream_free)
        resp->stream_free(resp->stream_ctx);
    resp->stream = NULL;
    resp->stream_free = NULL;
    sb_free(&resp->body);
    for (int i = 0; i < resp->nheaders; i++) {
        free(resp->hname[i]);
        free(resp->hvalue[i]);
    }
    resp->nheaders = 0;
}

/* Free a completed pending answer (its lock is not held). */
static void
pending_free(http_pending *p)
{
    http_resp_free(&p->resp);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* Send a completed pending answer, then free it. */
static enum MHD_Result
send_pending(struct MHD_Connection *conn, http_pending *p)
{
    enum MHD_Result ret = send_resp(conn, &p->resp);
    pending_free(p);
    return ret;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
           const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    http_server *srv = cls;
    reqstate *rs = *con_cls;
    (void)version;

    if (rs && rs->pending) {
        /* Resumed after http_complete(): send what it supplied. */
        http_pending *p = rs->pending;
        rs->pending = NULL;
        /* http_complete() resumed us while holding the lock: wait until it let go. */
        pthread_mutex_lock(&p->lock);
        pthread_mutex_unlock(&p->lock);
        return send_pending(conn, p);
    }
    if (rs == NULL) {
        rs = xcalloc(1, sizeof *rs);
        *con_cls = rs;
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        int64_t n;
        if (cl && util_parse_i64(cl, &n) == 0 && (n < 0 || (uint64_t)n > srv->cfg.max_body))
            rs->too_big = true;
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!rs->too_big && rs->body.len + *upload_data_size <= srv->cfg.max_body)
            sb_append(&rs->body, upload_data, *upload_data_size);
        else {
            rs->too_big = true;
            sb_free(&rs->body);
        }
        *upload_data_size = 0;
        return MHD_YES;
    }

    if (rs->path == NULL)
        rs->path = http_normalize_path(url, xmalloc(strlen(url) + 2));
    http_resp resp = {.status = 200, .content_type = CT_JSON};
    http_req req = {
        .method = method,
        .path = rs->path,
        .body = sb_str(&rs->body),
        .body_len = rs->body.len,
        .conn = conn,
        .ctx = srv->cfg.ctx,
    };
    if (rs->too_big) {
        http_errorf(&resp, 413, "REQUEST_ENTITY_TOO_LARGE",
                    "Maximum Request Size Exceeded: the limit is %zu bytes", srv->cfg.max_body);
        resp.close = true;
    } else {
        const http_route *route = http_match(srv->cfg.routes, &req);
        if (route == NULL) {
            char allowed[128];
            if (path_known(srv->cfg.routes, &req, allowed, sizeof allowed)) {
                http_errorf(&resp, 405, "METHOD_NOT_ALLOWED",
                            "HTTP Method '%s' not allowed. Allowed are %s", method, allowed);
                http_set_header(&resp, "Allow", allowed);
            } else {
                http_errorf(&resp, 404, "NOT_FOUND", "The requested resource does not exist");
            }
        } else if (srv->cfg.before == NULL || srv->cfg.before(route, &req, &resp)) {
            route->handler(&req, &resp);
            if (srv->cfg.after && req.pending == NULL)
                srv->cfg.after(route, &req, &resp);
        }
    }
    if (req.pending) {
        http_pending *p = req.pending;
        http_resp_free(&resp);
        pthread_mutex_lock(&p->lock);
        if (p->ready) { /* completed before the handler even returned */
            pthread_mutex_unlock(&p->lock);
            return send_pending(conn, p);
        }
        rs->pending = p;
        p->suspended = true;
        MHD_suspend_connection(conn);
        pthread_mutex_unlock(&p->lock);
        return MHD_YES;
    }
    enum MHD_Result ret = send_resp(conn, &resp);
    http_resp_free(&resp);
    return ret;
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)conn, (void)toe;
    reqstate *rs = *con_cls;
    if (rs) {
        http_pending *p = rs->pending;
        if (p) {
            /* The connection closed (client gone, or the server stopping) after
             * http_complete() supplied an answer that was never sent: free it.
             * An answer not yet supplied stays with its owner, who must still
             * call http_complete() (which then only resumes a dead connection). */
            pthread_mutex_lock(&p->lock);
            bool ready = p->ready;
            pthread_mutex_unlock(&p->lock);
            if (ready)
                pending_free(p);
            rs->pending = NULL;
        }
        sb_free(&rs->body);
        free(rs->path);
        free(rs);
        *con_cls = NULL;
    }
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    log_debug("http: %s", buf);
}

int
http_listen(const char *host, uint16_t port, int *fd, uint16_t *bound, err_t *e)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (inet_pton(AF_INET, host ? host : "127.0.0.1", &addr.sin_addr) != 1)
        return err_set(e, 0, "BAD_LISTEN", "cannot listen on '%s': not an IPv4 address", host);
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    socklen_t len = sizeof addr;
    if (s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(s, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(s, 128) != 0 ||
        getsockname(s, (struct sockaddr *)&addr, &len) != 0) {
        int err = errno;
        if (s >= 0)
            close(s);
        return err_set(e, 0, "BAD_LISTEN", "cannot listen on %s:%u: %s", host ? host : "127.0.0.1",
                       port, strerror(err));
    }
    *fd = s;
    *bound = ntohs(addr.sin_port);
    return 0;
}

int
http_start(const http_config *cfg, http_server **out, err_t *e)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(cfg->port)};
    if (inet_pton(AF_INET, cfg->host ? cfg->host : "127.0.0.1", &addr.sin_addr) != 1)
        return err_set(e, 0, "BAD_LISTEN", "cannot listen on '%s': not an IPv4 address", cfg->host);
    http_server *srv = xcalloc(1, sizeof *srv);
    srv->cfg = *cfg;
    if (srv->cfg.max_body == 0)
        srv->cfg.max_body = 64u << 20;
    unsigned threads = cfg->threads ? cfg->threads : 4;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    bool tls = cfg->tls_cert && cfg->tls_key;
    if (tls && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        free(srv);
        return err_set(e, 0, "BAD_LISTEN", "this libmicrohttpd has no TLS support");
    }
    struct MHD_OptionItem opts[12];
    size_t n = 0;
#define OPT(o, v, p)                    \
    opts[n++] = (struct MHD_OptionItem) \
    {                                   \
        o, (intptr_t)(v), p             \
    }
    if (cfg->listen_fd > 0) {
        OPT(MHD_OPTION_LISTEN_SOCKET, cfg->listen_fd, NULL);
    } else {
        OPT(MHD_OPTION_SOCK_ADDR, 0, &addr);
        OPT(MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, NULL);
    }
    OPT(MHD_OPTION_THREAD_POOL_SIZE, threads, NULL);
    OPT(MHD_OPTION_CONNECTION_TIMEOUT, HTTP_CONN_TIMEOUT_S, NULL);
    OPT(MHD_OPTION_CONNECTION_LIMIT, HTTP_CONN_LIMIT, NULL);
    OPT(MHD_OPTION_NOTIFY_COMPLETED, (void *)on_completed, NULL);
    OPT(MHD_OPTION_EXTERNAL_LOGGER, (void *)on_mhd_log, NULL);
    if (tls) {
        flags |= MHD_USE_TLS;
        OPT(MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)cfg->tls_cert);
        OPT(MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)cfg->tls_key);
    }
    OPT(MHD_OPTION_END, 0, NULL);
#undef OPT
    srv->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_ARRAY, opts,
                                MHD_OPTION_END);
    if (srv->mhd == NULL) {
        free(srv);
        return err_set(e, 0, "BAD_LISTEN", "cannot listen on %s:%u (in use, not permitted%s)",
                       cfg->host ? cfg->host : "127.0.0.1", cfg->port,
                       tls ? ", or the TLS certificate or key was refused" : "");
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : cfg->port;
    *out = srv;
    return 0;
}

uint16_t
http_port(http_server *srv)
{
    return srv->port;
}

void
http_stop(http_server *srv)
{
    if (srv == NULL)
        return;
    MHD_stop_daemon(srv->mhd);
    free(srv);
}

json_t *
http_json_body(http_req *req, http_resp *resp)
{
    if (req->body_len == 0) {
        http_errorf(resp, 400, "JSON_PARSER_ERROR", "The request body is empty.");
        return NULL;
    }
    if (!util_valid_utf8(req->body, req->body_len)) {
        http_errorf(resp, 400, "JSON_PARSER_ERROR",
                    "Invalid UTF-8 in the request body: the body must be UTF-8 encoded JSON.");
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
    if (j == NULL)
        http_errorf(resp, 400, "JSON_PARSER_ERROR", "%s at [line:%d, column:%d]", je.text, je.line,
                    je.column);
    return j;
}
