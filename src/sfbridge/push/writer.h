/*
 * writer: Postgres -> Salesforce. Claims NEW trigger-log entries in commit
 * order, folds each record's entries into one operation, sends them in sObject
 * Collections (upserts by the unique identifier where there is one), records
 * each outcome on the entry and the row, retries transient failures with
 * capped backoff while keeping each record's order, and never repeats an insert
 * whose outcome is unknown without first looking for it in Salesforce.
 *
 * The work is split: tlog (db/) owns the trigger log, fold the folding, send
 * the Salesforce requests, recorder the outcomes; this module the pass and
 * the thread. `sfbridge run` runs it on its own thread with its own Postgres connection
 * and Salesforce client, woken by NOTIFY "<schema>.hc_trigger_log";
 * `sfbridge push` runs one pass in the foreground.
 */
#ifndef WRITER_H
#define WRITER_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "err.h"
#include "sb.h"

typedef struct writer writer;

typedef struct writer_stats {
    int64_t sent;     /* records Salesforce accepted */
    int64_t failed;   /* records refused (FAILED) */
    int64_t retrying; /* entries waiting for a retry */
    int64_t api_calls;
} writer_stats;

writer *writer_new(const cfg *c, volatile sig_atomic_t *stop);
void writer_free(writer *w);
/* Everything due now, then return. 0 ok (some entries may wait for a
 * retry: see st->retrying), -1 when Postgres or the login failed. */
ERR_MUST_CHECK int writer_pass(writer *w, writer_stats *st, err_t *e);
/* The writer thread: passes until *stop, waiting on NOTIFY in between. */
ERR_MUST_CHECK int writer_start(writer *w);
void writer_join(writer *w);

/* Entries a dead writer left in flight (PENDING) become NEW with an unknown
 * outcome (tlog_recover). Call once, holding the schema lock, before any pull. */
ERR_MUST_CHECK int writer_recover(void *pgconn, const char *schema, err_t *e);

/* sfbridge retry: FAILED entries (all, or these ids, from the log or the
 * archive) back to NEW with their row's current values (tlog_requeue). *n
 * gets how many; missing the ids that name no FAILED entry. */
ERR_MUST_CHECK int writer_requeue(void *pgconn, const char *schema, const char *const *ids,
                                  size_t nids, bool all, int64_t *n, sb *missing, err_t *e);

#endif
