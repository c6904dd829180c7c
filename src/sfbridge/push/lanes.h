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
 * mapping, one kind, distinct records, no two upserts of one key).
 *
 * Around each send a lane runs the writer's hooks on its own thread: before
 * (remember what is sent) and after (record what came back), each on a
 * Postgres connection the hook takes for itself, so outcomes are recorded
 * side by side, not one after the other on the writer's connection.
 */
#ifndef LANES_H
#define LANES_H

#include <stddef.h>

#include "catalog.h"
#include "config.h"
#include "err.h"
#include "fold.h"
#include "writer.h"

/* One collection: what to send, and what came of it. */
typedef struct lane_job {
    const mapping *m;
    op **ops; /* owned array (the ops themselves are the batch's) */
    size_t n;
    bool remember;   /* run the before hook (inserts and upserts: what is sent is kept first) */
    writer_stats st; /* this collection's counts, added to the pass's by the writer */
    bool *skipped;   /* owned, NULL or one per op: its row an app held locked, left for later */
    int rc;          /* 0, or -1 when a hook failed (e says why) */
    err_t e;
} lane_job;

/* The writer's steps around a send, run on the lane's thread. before: 0, or
 * -1 with e filled and nothing sent (the ops stay undecided); after: the
 * outcome recorded, 0 or -1 with e filled. */
typedef struct lane_hooks {
    int (*before)(void *ctx, lane_job *j, err_t *e);
    int (*after)(void *ctx, lane_job *j, err_t *e);
    void *ctx;
} lane_hooks;

typedef struct lanes lanes;

/* max: the most collections in flight (SFBRIDGE_WRITE_CONCURRENCY); hooks copied. */
lanes *lanes_new(const cfg *c, int max, const lane_hooks *hooks);
/* Waits for what is in flight, stops the threads. */
void lanes_free(lanes *l);
/* How many collections may be in flight now (1 to max). */
int lanes_limit(const lanes *l);
/* Collections sent and not yet taken back with lanes_done. */
int lanes_in_flight(const lanes *l);
/* Send job (taken) on the next free lane; the caller keeps within the limit. */
void lanes_send(lanes *l, lane_job *job);
/* The next collection that came back and went through the after hook
 * (waiting for one), the limit adapted to it; NULL when none is in flight. The caller frees it
 * (lane_job_free). */
lane_job *lanes_done(lanes *l);
void lane_job_free(lane_job *j);

#endif
