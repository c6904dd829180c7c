/*
 * lanes: the writer's concurrent senders. A real org answers a collection
 * call in hundreds of milliseconds to seconds, so one collection at a time
 * leaves the writer waiting on round trips; up to SFBRIDGE_WRITE_CONCURRENCY
 * collections are in flight at once here, each sent by a thread of its own
 * with its own Salesforce client (a libcurl handle is never shared),
 * threads started as they are first needed.
 *
 * The limit adapts as TCP's window does: a collection that comes back with
 * a transient failure (REQUEST_LIMIT_EXCEEDED, UNABLE_TO_LOCK_ROW, a 503, a
 * timeout: entries to retry) halves it, and each run of `limit` clean ones
 * adds one, up to the setting. Ordering is the writer's: it hands the lanes
 * only collections that may be written in any order among themselves (one
 * mapping, one kind, distinct records, no two upserts of one key), and it
 * records each outcome as it comes back.
 */
#ifndef LANES_H
#define LANES_H

#include <stddef.h>

#include "catalog.h"
#include "config.h"
#include "fold.h"
#include "writer.h"

/* One collection: what to send, and what came of it. */
typedef struct lane_job {
    const mapping *m;
    op **ops; /* owned array (the ops themselves are the batch's) */
    size_t n;
    writer_stats st; /* this collection's counts, added to the pass's by the writer */
} lane_job;

typedef struct lanes lanes;

/* max: the most collections in flight (SFBRIDGE_WRITE_CONCURRENCY). */
lanes *lanes_new(const cfg *c, int max);
/* Waits for what is in flight, stops the threads. */
void lanes_free(lanes *l);
/* How many collections may be in flight now (1 to max). */
int lanes_limit(const lanes *l);
/* Collections sent and not yet taken back with lanes_done. */
int lanes_in_flight(const lanes *l);
/* Send job (taken) on the next free lane; the caller keeps within the limit. */
void lanes_send(lanes *l, lane_job *job);
/* The next collection that came back (waiting for one), the limit adapted
 * to it; NULL when none is in flight. The caller frees it (lane_job_free). */
lane_job *lanes_done(lanes *l);
void lane_job_free(lane_job *j);

#endif
