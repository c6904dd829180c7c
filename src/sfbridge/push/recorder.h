/*
 * recorder: the outcomes of sent operations, written to Postgres.
 *
 * An outcome goes to the trigger log (tlog_record_outcomes: finished entries
 * straight to the archive, failures and retries in the log) and to the row
 * (sfid, _hc_lastop, _hc_err), in one transaction per collection.
 *
 * The writer records each collection as it comes back from Salesforce, on its
 * own connection, while the other collections in flight are on their way
 * (lanes.c sends them); it records a collection before anything that depends
 * on its outcome (the next claim, releasing a table lock).
 */
#ifndef RECORDER_H
#define RECORDER_H

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

/* Record ops[0..n) (all of mapping m) now, on pg. 0, or -1 with e filled. */
ERR_MUST_CHECK int recorder_record(recorder *r, PGconn *pg, const mapping *m, op **ops, size_t n,
                                   err_t *e);
#endif
