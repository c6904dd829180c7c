/*
 * cometd: the Streaming API, Bayeux long polling at /cometd/NN.N as
 * Salesforce speaks it (handshake, connect, subscribe, unsubscribe,
 * disconnect, the replay extension), delivering the events of events.h.
 * Long polls are parked with http_defer(), never holding a thread.
 */
#ifndef COMETD_H
#define COMETD_H

#include "err.h"
#include "events.h"
#include "http.h"

typedef struct lf_cometd lf_cometd;

lf_cometd *cometd_new(lf_events *ev, err_t *e);
/* Answer every parked long poll now (before the HTTP server stops). */
void       cometd_shutdown(lf_cometd *c);
void       cometd_free(lf_cometd *c);

void cometd_handle(http_req *req, http_resp *resp); /* POST /cometd/{ver}[/{type}] */

#endif
