/*
 * ctx: the running org as request handlers see it (lf_server): the store, the
 * session table, query cursors, Bulk jobs, change events, CometD, faults, the
 * public base URL and the API request counters.
 *
 * ctx_of() is the one typed way from a request to it. Handler modules include
 * this header, never server.h, so none of them depends on the module that
 * routes requests to them. ctx owns nothing: server.c builds and frees what
 * the pointers point at.
 */
#ifndef CTX_H
#define CTX_H

#include <stdatomic.h>

#include "http.h"

typedef struct store store;
typedef struct auth auth;
typedef struct lf_cursors lf_cursors;
typedef struct lf_bulk lf_bulk;
typedef struct lf_events lf_events;
typedef struct lf_cometd lf_cometd;
typedef struct lf_faults lf_faults;

typedef struct lf_server {
    store *st;
    auth *auth;
    lf_cursors *cursors;
    lf_bulk *bulk;
    lf_events *events;
    lf_cometd *cometd;
    lf_faults *faults;
    http_server *http;
    char base_url[256]; /* "http://127.0.0.1:8111" (https:// with TLS), no trailing slash */
    char *tls_cert_pem; /* HTTPS: the certificate and key served (NULL: plain HTTP) */
    char *tls_key_pem;
    atomic_llong api_used;  /* API requests counted today (UTC) */
    atomic_llong api_day;   /* the UTC day api_used counts, days since epoch */
    atomic_llong api_limit; /* today's allowance (faults may lower it) */
} lf_server;

/* The org a request was made to (http_config.ctx, set by server_start). */
lf_server *ctx_of(const http_req *req);

#endif
