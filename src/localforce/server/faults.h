/*
 * faults: a bad network and a strained org, on demand. Set at start-up with
 * --faults SPEC and changed while running through /admin/faults. Each fault
 * can be limited to a path pattern; turning faults off brings normal service
 * back at once (parked requests are answered or released).
 *
 * Faults: added latency with jitter; a share of requests answered 500 or 503;
 * connections reset in the middle of a response; requests accepted but never
 * answered (an offline link); REQUEST_LIMIT_EXCEEDED once a daily API budget
 * is spent; UNABLE_TO_LOCK_ROW on a share of writes; expiry of every session.
 */
#ifndef FAULTS_H
#define FAULTS_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "http.h"

typedef struct lf_faults lf_faults;

typedef enum {
    FAULT_PASS,     /* no fault: run the route's handler as usual */
    FAULT_ANSWERED, /* resp has been filled (an injected error); skip the handler */
    FAULT_TAKEN,    /* the request was deferred; faults will run or drop it later */
} fault_verdict;

/* spec: the --faults syntax (see docs/localforce.md); NULL or "" for none. */
lf_faults *faults_new(const char *spec, err_t *e);
/* Release every parked request (before the HTTP server stops). */
void faults_shutdown(lf_faults *f);
void faults_free(lf_faults *f);

/* Called by server.c before each route's handler, after authentication. */
fault_verdict faults_before(lf_faults *f, const http_route *route, http_req *req, http_resp *resp);

void faults_admin(http_req *req, http_resp *resp); /* GET|PUT|POST|DELETE /admin/faults */

/* What the active rules do to one request, drawn from the faults' PRNG as
 * faults_before() would draw it (tests use it to check rates and patterns). */
typedef struct fault_plan {
    int delay_ms;     /* latency + jitter of every matching rule, summed */
    bool offline;     /* park the request until offline is turned off */
    int error_status; /* 500 or 503 when an injected error answers it, else 0 */
    bool lock;        /* a write answered UNABLE_TO_LOCK_ROW */
    bool reset;       /* the response is cut mid-body */
} fault_plan;
void faults_plan(lf_faults *f, const char *method, const char *path, fault_plan *out);
/* Restart the PRNG from seed (also LOCALFORCE_FAULTS_SEED, and "seed" in PUT). */
void faults_seed(lf_faults *f, uint64_t seed);

#endif
