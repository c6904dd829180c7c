/*
 * server: one running localforce org. Ties the store, the session table, the
 * query cursors and the HTTP front together, owns the route table and counts
 * API requests for Sforce-Limit-Info and the daily limit.
 */
#ifndef SERVER_H
#define SERVER_H

#include <stdatomic.h>
#include <stdint.h>

#include "auth.h"
#include "bulk.h"
#include "cometd.h"
#include "events.h"
#include "faults.h"
#include "http.h"
#include "query.h"
#include "store.h"

typedef struct lf_server_config {
    const char *listen_host;      /* default "127.0.0.1" */
    uint16_t    listen_port;      /* 0 = any free port */
    const char *org_file;         /* may be NULL if the database already holds an org */
    const char *db_path;          /* SQLite file or ":memory:" */
    int64_t     session_ttl_s;    /* 0 = the org file's setting */
    unsigned    threads;          /* HTTP worker threads, default 4 */
    const char *public_url;       /* base URL clients use; default http://host:port */
    const char *faults_spec;      /* --faults: injected faults from the start, or NULL */
    lf_events_config events;      /* CDC retention and GAP events */
} lf_server_config;

typedef struct lf_server {
    store         *st;
    auth          *auth;
    lf_cursors    *cursors;
    lf_bulk       *bulk;
    lf_events     *events;
    lf_cometd     *cometd;
    lf_faults     *faults;
    http_server   *http;
    char           base_url[256]; /* "http://127.0.0.1:8111", no trailing slash */
    atomic_llong   api_used;      /* API requests counted today (UTC) */
    atomic_llong   api_day;       /* the UTC day api_used counts, days since epoch */
    atomic_llong   api_limit;     /* today's allowance (faults may lower it) */
} lf_server;

int  server_start(const lf_server_config *cfg, lf_server **out, err_t *e);
/* Run a request through the API checks (version, session, daily limit), its
 * handler and the after hook, as the server does. For modules that take a
 * request over (a delayed request in faults.c) and run it later themselves. */
void server_dispatch(const http_route *route, http_req *req, http_resp *resp);
void server_stop(lf_server *srv);

#endif
