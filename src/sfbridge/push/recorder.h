/*
 * recorder: the outcomes of sent operations, written to Postgres.
 *
 * An outcome goes to the trigger log (tlog_record_outcomes: finished entries
 * straight to the archive, failures and retries in the log) and to the row
 * (sfid, _hc_lastop, _hc_err), in one transaction per collection.
 *
 * One background thread with a queue (mutex and condition variable, as
 * redis's bio) records on a second connection while the writer sends the next
 * collection; without a second connection the writer records in line on its
 * own. The writer decides when to wait: recorder_wait returns when everything
 * submitted is recorded, and the writer calls it before anything that depends
 * on those outcomes (the next claim, releasing a table lock, reusing the ops).
 */
#ifndef RECORDER_H
#define RECORDER_H

#include <stddef.h>

#include <libpq-fe.h>

#include "catalog.h"
#include "err.h"
#include "fold.h"

typedef struct recorder recorder;

/* Nothing is connected or started until the first recorder_submit. */
recorder *recorder_new(const char *database_url, const char *schema, long backoff_cap_ms);
/* Waits for the queue, stops the thread, closes the second connection. */
void recorder_free(recorder *r);

/* Record ops[0..n) (all of mapping m) now, on pg. 0, or -1 with e filled. */
ERR_MUST_CHECK int recorder_record(const recorder *r, PGconn *pg, const mapping *m, op **ops,
                                   size_t n, err_t *e);
/* Queue ops[0..n) for the thread; they (and m) must stay alive until
 * recorder_wait returns. Waits first for what is queued already. Without a
 * second connection (none can be opened), records in line on pg. A failure
 * is reported by the next recorder_wait. */
void recorder_submit(recorder *r, PGconn *pg, const mapping *m, op **ops, size_t n);
/* Wait until everything submitted is recorded. 0, or -1 with the first
 * failure since the last wait in e (when not NULL). */
ERR_MUST_CHECK int recorder_wait(recorder *r, err_t *e);

#endif
