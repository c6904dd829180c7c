/*
 * recorder: the outcomes of sent operations, written to Postgres.
 *
 * An outcome goes to the trigger log (tlog_record_outcomes: finished entries
 * straight to the archive, failures and retries in the log) and to the row
 * (sfid, _hc_lastop, _hc_err), in one transaction per collection; rows an
 * app holds locked after it, each in a statement that waits for the app.
 *
 * The writer's lanes record each collection as it comes back from Salesforce,
 * side by side, each on a connection of the writer's pool (these functions may
 * run on several threads at once, on different connections), while the other
 * collections in flight are on their way; rows an app holds locked are left to
 * the writer's own connection. Every collection is recorded before anything
 * that depends on its outcome (the next claim, releasing a table lock).
 */
#ifndef RECORDER_H
#define RECORDER_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "catalog.h"
#include "err.h"
#include "fold.h"

typedef struct recorder recorder;

recorder *recorder_new(const char *schema, long backoff_cap_ms);
/* The records written and refused since the last flush, to the activity table
 * (the dashboard's charts); a failure is only logged. */
void recorder_flush(recorder *r, PGconn *pg);
void recorder_free(recorder *r);

/* Record ops[0..n) (all of mapping m) now, on pg, waiting for rows an app
 * holds locked. 0, or -1 with e filled. */
ERR_MUST_CHECK int recorder_record(recorder *r, PGconn *pg, const mapping *m, op **ops, size_t n,
                                   err_t *e);
/* The same in two steps, so that no connection waits for an app while others
 * could use it: every row no app holds, in one transaction (skipped[i], an
 * array of n the caller gives, set for the ops whose row an app holds; their
 * entries stay PENDING); then those, each waiting for the app. */
ERR_MUST_CHECK int recorder_record_some(recorder *r, PGconn *pg, const mapping *m, op **ops,
                                        size_t n, bool *skipped, err_t *e);
ERR_MUST_CHECK int recorder_record_skipped(recorder *r, PGconn *pg, const mapping *m, op **ops,
                                           size_t n, const bool *skipped, err_t *e);
#endif
