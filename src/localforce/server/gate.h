/*
 * gate: the checks every API route (/services/data/vNN.N/...) passes before
 * its handler: a known version, a session (auth_check), the daily API limit;
 * and the Sforce-Limit-Info header its answer carries. gate_dispatch() runs a
 * request through them and its handler, for server.c and for modules that
 * take a request over and run it later (a delayed request in faults.c).
 * gate may touch: ctx (the counters), auth (sessions), http.
 */
#ifndef GATE_H
#define GATE_H

#include <stdbool.h>

#include "http.h"

/* Is route one of /services/data/vNN.N/...? */
bool gate_is_api(const http_route *route);
/* The API checks: version, session, daily limit. false: resp holds the refusal. */
bool gate_check(const http_route *route, http_req *req, http_resp *resp);
/* Sforce-Limit-Info on an API route's answer. */
void gate_after(const http_route *route, http_req *req, http_resp *resp);
/* gate_check, the route's handler, and gate_after unless the handler parked
 * the request (a parked request's owner answers it later). */
void gate_dispatch(const http_route *route, http_req *req, http_resp *resp);

#endif
