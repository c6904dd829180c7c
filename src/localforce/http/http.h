/*
 * http: localforce's HTTP front, on libmicrohttpd.
 *
 * It accepts a connection, reads the whole request body (up to a limit),
 * matches method and path against a route table and calls one handler with an
 * http_req and an http_resp to fill. Handlers never touch libmicrohttpd.
 *
 * Route patterns are paths whose segments may be "*" (any one segment, captured
 * in req->seg[]) or a final "**" (the rest of the path, captured whole). The
 * request path is normalized once, where requests enter (http_normalize_path),
 * so routes are written without trailing or doubled slashes.
 */
#ifndef HTTP_H
#define HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"
#include "sb.h"

#define HTTP_MAX_SEGS    8
#define HTTP_MAX_HEADERS 16

typedef struct http_req {
    const char *method;             /* "GET", "POST", ... */
    const char *path;               /* decoded, normalized path, no query string */
    const char *seg[HTTP_MAX_SEGS]; /* captures of "*" / "**" in route order */
    int nseg;
    const char *body; /* NUL-terminated; "" when empty */
    size_t body_len;
    void *conn;                   /* libmicrohttpd connection (private) */
    void *ctx;                    /* the server's context (server.h) */
    void *auth;                   /* set by the auth check: the session (auth.h) */
    const char *const *fake;      /* tests only, when conn is NULL: triples of
                                     "H"|"Q", name, value, then NULL */
    struct http_pending *pending; /* set by http_defer() */
} http_req;

/* A streamed body: called with the offset reached so far; writes at most max
 * bytes into buf and returns how many (> 0), HTTP_STREAM_END when the body is
 * complete, or HTTP_STREAM_ABORT to cut the connection mid-response. */
#define HTTP_STREAM_END   ((ssize_t)-1)
#define HTTP_STREAM_ABORT ((ssize_t)-2)
typedef ssize_t (*http_stream_fn)(void *ctx, uint64_t pos, char *buf, size_t max);

typedef struct http_resp {
    int status;
    const char *content_type; /* static string; default application/json;charset=UTF-8 */
    sb body;
    int nheaders;
    char *hname[HTTP_MAX_HEADERS];
    char *hvalue[HTTP_MAX_HEADERS];
    bool close;            /* close the connection after answering */
    http_stream_fn stream; /* if set, the body comes from here, not from body */
    void *stream_ctx;
    void (*stream_free)(void *ctx); /* called once the stream is done with */
} http_resp;

#define CT_JSON "application/json;charset=UTF-8"
#define CT_XML  "text/xml;charset=UTF-8"
#define CT_HTML "text/html;charset=UTF-8"
#define CT_CSV  "text/csv"

typedef void (*http_handler)(http_req *req, http_resp *resp);

typedef struct http_route {
    const char *method; /* NULL matches any method */
    const char *pattern;
    http_handler handler;
} http_route;

/* Request accessors. Names are case-insensitive for headers. NULL if absent.
 * Query values are percent-decoded. */
const char *http_header(http_req *req, const char *name);
const char *http_query(http_req *req, const char *name);
/* Form field from an application/x-www-form-urlencoded body (decoded into buf). */
const char *http_form(http_req *req, const char *name, char *buf, size_t bufsz);

/* Response helpers. A handler that fills nothing answers 200 with an empty
 * JSON body; free a response's memory with http_resp_free (tests only: the
 * server does it after sending). */
void http_resp_free(http_resp *resp);
void http_set_header(http_resp *resp, const char *name, const char *value);
/* Salesforce's REST error body: [{"message":..,"errorCode":..[,"fields":[..]]}] */
void http_error(http_resp *resp, const err_t *e);
void http_errorf(http_resp *resp, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The body parsed as JSON (duplicate keys refused), or NULL when it is empty,
 * not UTF-8 or not JSON; then resp holds Salesforce's 400 JSON_PARSER_ERROR.
 * The caller owns the result. */
struct json_t;
struct json_t *http_json_body(http_req *req, http_resp *resp);

/* Deferred answers (long polling, delays). Inside a handler, http_defer()
 * parks the request: nothing is sent when the handler returns, and the
 * connection waits without holding a thread. Later, from any thread,
 * http_complete() sends resp (taking over its contents) and frees the
 * pending handle. Each pending must be completed exactly once, and its owner
 * must complete it before the server stops. */
typedef struct http_pending http_pending;
http_pending *http_defer(http_req *req);
void http_complete(http_pending *p, http_resp *resp);

/* The path requests are routed by, as Salesforce matches paths: runs of '/'
 * collapse to one ("//services/data" is "/services/data") and a trailing '/' is
 * dropped ("sobjects/Account/" is "sobjects/Account"); the result always starts
 * with '/' (an empty path is "/"). out needs strlen(in) + 2 bytes; returns out.
 * Percent escapes were decoded before (by libmicrohttpd), so "%2F" is a '/'. */
char *http_normalize_path(const char *in, char *out);

/* Route matching, exposed for tests: fills req->seg. */
const http_route *http_match(const http_route *routes, http_req *req);

typedef struct http_server http_server;

typedef struct http_config {
    const char *host;         /* "127.0.0.1" */
    uint16_t port;            /* 0 = pick a free port */
    int listen_fd;            /* > 0: serve this socket from http_listen(), ignore host/port */
    const http_route *routes; /* terminated by a {NULL,NULL,NULL} entry */
    void *ctx;                /* passed to handlers as req->ctx */
    size_t max_body;          /* bigger bodies get 413 */
    unsigned threads;         /* worker threads */
    const char *tls_cert;     /* PEM: serve HTTPS with this certificate and key (kept */
    const char *tls_key;      /* alive by the caller until http_stop); NULL: plain HTTP */
    /* Called before the route's handler; return false to answer with resp as
     * filled (e.g. 401). May be NULL. */
    bool (*before)(const http_route *route, http_req *req, http_resp *resp);
    /* Called after the handler, e.g. to add Sforce-Limit-Info. May be NULL. */
    void (*after)(const http_route *route, http_req *req, http_resp *resp);
} http_config;

/* Bind and listen on host:port (0 = a free port) before serving, so the bound
 * port is known (and can be handed to clients) before the first request. */
int http_listen(const char *host, uint16_t port, int *fd, uint16_t *bound, err_t *e);
int http_start(const http_config *cfg, http_server **out, err_t *e);
uint16_t http_port(http_server *srv);
void http_stop(http_server *srv);

#endif
