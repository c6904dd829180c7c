/*
 * server: one running localforce org. Ties the store, the session table, the
 * query cursors and the HTTP front together, owns the route table and counts
 * API requests for Sforce-Limit-Info and the daily limit (the struct handlers
 * see is lf_server in ctx.h; the checks are gate.c's).
 */
#ifndef SERVER_H
#define SERVER_H

#include <stdatomic.h>
#include <stdint.h>

#include "auth.h"
#include "bulk.h"
#include "cometd.h"
#include "ctx.h"
#include "events.h"
#include "faults.h"
#include "http.h"
#include "query.h"
#include "store.h"

typedef struct lf_server_config {
    const char *listen_host; /* default "127.0.0.1" */
    uint16_t listen_port;    /* 0 = any free port */
    const char *org_file;    /* may be NULL if the database already holds an org */
    const char *db_path;     /* SQLite file or ":memory:" */
    int64_t session_ttl_s;   /* 0 = the org file's setting */
    unsigned threads;        /* HTTP worker threads, default 4 */
    const char *public_url;  /* base URL clients use; default http://host:port */
    const char *faults_spec; /* --faults: injected faults from the start, or NULL */
    lf_events_config events; /* CDC retention and GAP events */
    const char *tls_cert;    /* --tls-cert/--tls-key: PEM files; HTTPS when both are set */
    const char *tls_key;
    const char *tls_dir;      /* --tls-self-signed: the folder of a self-signed pair (made once) */
    int64_t result_page_rows; /* --result-page-rows: rows per page a resultPages listing names */
} lf_server_config;

int server_start(const lf_server_config *cfg, lf_server **out, err_t *e);
void server_stop(lf_server *srv);

#endif
