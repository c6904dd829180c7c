/*
 * cometd: the Streaming API, Bayeux long polling at /cometd/NN.N as
 * Salesforce speaks it (handshake, connect, subscribe, unsubscribe,
 * disconnect, the replay extension), delivering the events of events.h.
 * Long polls are parked with http_defer(), never holding a thread.
 *
 * The Bayeux logic is a function of the parsed messages (cometd_process),
 * so tests and the fuzzer drive it without sockets. A connect that has to
 * wait comes back as a hold; the HTTP handler parks it, and one delivery
 * thread answers parked connects when events are committed (events.h calls
 * back after each commit), when they time out, or at shutdown.
 */
#ifndef COMETD_H
#define COMETD_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "events.h"
#include "http.h"
#include "sb.h"

#define COMETD_MAX_BODY 32768 /* bigger requests get 413 */

typedef struct lf_cometd lf_cometd;

typedef struct lf_cometd_config {
    int64_t timeout_ms;       /* how long a connect is held (advice.timeout); 0 = 110000, or
                                 LOCALFORCE_COMETD_TIMEOUT_MS from the environment */
    int64_t expire_ms;        /* a client that does not come back within this is dropped;
                                 0 = 110000 */
    int64_t expire_events_ms; /* ... after a connect that carried events; 0 = 40000 */
    int max_clients;          /* 0 = 1000 */
    bool no_thread;           /* tests: no delivery thread (nothing is ever parked) */
} lf_cometd_config;

lf_cometd *cometd_new(lf_events *ev, err_t *e);
lf_cometd *cometd_new_config(lf_events *ev, const lf_cometd_config *cfg, err_t *e);
/* Answer every parked long poll now (before the HTTP server stops). */
void cometd_shutdown(lf_cometd *c);
void cometd_free(lf_cometd *c);

void cometd_handle(http_req *req, http_resp *resp); /* POST /cometd/{ver}[/{type}] */

/* The replies to one request, built by cometd_process. */
typedef struct cometd_reply {
    int status; /* HTTP status: 200, or 400 / 413 for a body that is not Bayeux */
    sb body;    /* the reply messages so far, comma-separated, no brackets */
    int n;      /* how many */
    bool hold;  /* a connect waits for events: client_id, connect_id */
    char client_id[40];
    char *connect_id; /* the held connect's "id" as JSON text, or NULL */
} cometd_reply;

/* Bayeux for one request: msgs is the parsed body (an array of messages, or
 * one message object); user_id the authenticated user, or NULL when the
 * request had no valid session. Fills r (cometd_reply_free it). */
void cometd_process(lf_cometd *c, json_t *msgs, const char *user_id, cometd_reply *r);
/* The same from the raw body: size limit, JSON parsing, then cometd_process. */
void cometd_process_body(lf_cometd *c, const char *body, size_t len, const char *user_id,
                         cometd_reply *r);
/* The whole answer as a JSON array into out; a held connect is answered at
 * once with whatever events are pending. Frees r's contents. */
void cometd_finish(lf_cometd *c, cometd_reply *r, sb *out);
void cometd_reply_free(cometd_reply *r);

/* Clients known now (tests). */
int cometd_client_count(lf_cometd *c);

#endif
