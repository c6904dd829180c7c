/*
 * tlog: the trigger log, <schema>._trigger_log and _trigger_log_archive.
 *
 * The one module that knows the two tables' columns and states and writes SQL
 * against them: their DDL, the writer's claim, housekeeping (Heroku Connect's
 * REQUEUE, the move of finished entries to the archive, pruning), requeue
 * (`sfbridge retry`), recovery (PENDING -> NEW, outcome unknown), the
 * recording of outcomes, and the questions pulls and `status` ask of it.
 * Entries are written by the capture triggers (capture.c's logger function,
 * which takes its state names from here) and by this module only.
 *
 * Functions take the schema unquoted; the tables' names are built here.
 * tlog_sql_* are pure builders (no connection), for statements that other
 * modules embed in their own and for the unit tests.
 */
#ifndef TLOG_H
#define TLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "err.h"
#include "sb.h"

/* An entry's state (the `state` column, varchar(8)): Heroku Connect's names. */
typedef enum tlog_state {
    TLOG_NEW,      /* captured, waiting to be sent (or waiting out a retry: sfb_retry_at) */
    TLOG_PENDING,  /* claimed by the writer: being sent */
    TLOG_SUCCESS,  /* Salesforce accepted it (the last entry of a folded record) */
    TLOG_FAILED,   /* Salesforce refused it; kept in the log a day, `sfbridge retry` requeues */
    TLOG_MERGED,   /* folded into a later entry of the same record that was sent */
    TLOG_IGNORE,   /* set by the logger: nothing to send (archived as IGNORED) */
    TLOG_IGNORED,  /* nothing was sent: mapping removed, conflict lost, never-sent record */
    TLOG_READONLY, /* captured on a read-only mapping: never sent */
    TLOG_REQUEUE,  /* set by hand (Heroku Connect's convention): send again */
    TLOG_REQUEUED, /* an archived entry that a requeue copied back into the log */
    TLOG_STATE_COUNT
} tlog_state;

/* "NEW", ...; NULL for a value out of range. */
const char *tlog_state_name(tlog_state s);
/* The state named name (exact, as stored); -1 when it is not one. */
ERR_MUST_CHECK int tlog_state_parse(const char *name, tlog_state *out);

/* An entry's action (the `action` column): TG_OP of the captured change. */
typedef enum tlog_action { TLOG_INSERT, TLOG_UPDATE, TLOG_DELETE, TLOG_ACTION_COUNT } tlog_action;

/* "INSERT", ...; NULL out of range. */
const char *tlog_action_name(tlog_action a);

/* ---- DDL ---------------------------------------------------------------- */

/* The statements creating or upgrading both tables, their indexes and the
 * NOTIFY that wakes the writer (on the channel given as an SQL literal,
 * "'schema.hc_trigger_log'": capture names it); idempotent. Pure. */
void tlog_sql_ddl(sb *out, const char *schema, const char *channel_lit);
/* Run them. The caller holds the transaction and the DDL lock (cap_ensure). */
ERR_MUST_CHECK int tlog_ensure(PGconn *c, const char *schema, const char *channel_lit, err_t *e);

/* ---- the writer's side ---------------------------------------------------- */

/* One claimed entry. */
typedef struct tlog_entry {
    int64_t id;
    char *table; /* table_name */
    int record_id;
    tlog_action action;
    char *sfid;       /* NULL when the log has none */
    bool unknown;     /* sfb_unknown: an earlier attempt's outcome was lost */
    int attempts;     /* sfb_attempts */
    char *payload;    /* sfb_payload as text (what an earlier attempt sent), or NULL */
    char sent_at[40]; /* sfb_sent_at (now if never sent), ISO 8601 UTC */
} tlog_entry;

void tlog_entries_free(tlog_entry *es, size_t n);

/* The claim statement (see tlog_claim). Pure. */
void tlog_sql_claim(sb *out, const char *schema, int limit);
/* Mark up to `limit` due NEW entries PENDING and return them in id order:
 * never an entry whose record has an earlier entry in flight or waiting out
 * a retry, never one a concurrent claim holds. */
ERR_MUST_CHECK int tlog_claim(PGconn *c, const char *schema, int limit, tlog_entry **out, size_t *n,
                              err_t *e);
/* Entries of a mapping that no longer exists: IGNORED with `why`. */
/* An insert whose outcome was unknown was found in Salesforce as sfid: its
 * entries name the record from now on (no longer unknown), so whatever
 * happens next (a retried follow-up update, a crash) never looks for it, or
 * inserts it, again. */
ERR_MUST_CHECK int tlog_adopt(PGconn *c, const char *schema, const int64_t *ids, size_t n,
                              const char *sfid, err_t *e);
ERR_MUST_CHECK int tlog_ignore(PGconn *c, const char *schema, const int64_t *ids, size_t n,
                               const char *why, err_t *e);
/* Put every PENDING entry back to NEW, due again in `delay_s` seconds
 * (nothing of the claim was sent). */
ERR_MUST_CHECK int tlog_unclaim(PGconn *c, const char *schema, int delay_s, err_t *e);
/* Fresh planner statistics for the log (a large backlog). */
ERR_MUST_CHECK int tlog_analyze(PGconn *c, const char *schema, err_t *e);

/* The recovery statement (see tlog_recover). Pure. */
void tlog_sql_recover(sb *out, const char *schema);
/* Entries a dead or disconnected writer left PENDING become NEW; a sent
 * insert (its payload is remembered before sending) becomes of unknown outcome. */
ERR_MUST_CHECK int tlog_recover(PGconn *c, const char *schema, err_t *e);

/* Heroku Connect's REQUEUE states, then finished entries to the archive. Pure. */
void tlog_sql_housekeeping(sb *out, const char *schema);
ERR_MUST_CHECK int tlog_housekeeping(PGconn *c, const char *schema, err_t *e);
/* Archived entries older than `days` days are deleted. */
ERR_MUST_CHECK int tlog_prune_archive(PGconn *c, const char *schema, long days, err_t *e);

/* sfbridge retry: FAILED entries (all, or these ids, in the log or the
 * archive) back to NEW, in one transaction. The entries of the mapped
 * tables[0..ntables) first take their row's current values (the row as
 * fixed since the failure). *n gets how many; missing (if not NULL) the
 * given ids that name no FAILED entry, comma-separated. */
ERR_MUST_CHECK int tlog_requeue(PGconn *c, const char *schema, const char *const *ids, size_t nids,
                                bool all, const char *const *tables, size_t ntables, int64_t *n,
                                sb *missing, err_t *e);

/* The captured values of entries ids[0..n) as JSON text (hstore_to_json):
 * a result of (id bigint, values text) rows, caller PQclear's; NULL with e filled. */
PGresult *tlog_values(PGconn *c, const char *schema, const int64_t *ids, size_t n, err_t *e);
/* The sfid an earlier successful write of these records of `table` got (log
 * or archive, latest first): (record_id int, sfid text) rows; NULL with e filled. */
PGresult *tlog_written_sfids(PGconn *c, const char *schema, const char *table, const int *rids,
                             size_t n, err_t *e);

/* Before an insert is sent, its entries remember the payload (and when). */
ERR_MUST_CHECK int tlog_remember_payloads(PGconn *c, const char *schema, const int64_t *ids,
                                          const char *const *payloads, size_t n, err_t *e);

/* One entry's outcome. */
typedef struct tlog_outcome {
    int64_t id;
    tlog_state state;    /* SUCCESS, MERGED, IGNORED (archived); FAILED; NEW (retry) */
    const char *sfid;    /* NULL keeps the entry's */
    const char *message; /* sf_message */
    long delay_ms;       /* NEW: when to try again */
    bool unknown;        /* sfb_unknown */
} tlog_outcome;

/* The outcome statement (parameters: arrays of ids, states, sfids, messages,
 * delays, unknowns). Pure. */
void tlog_sql_outcomes(sb *out, const char *schema);
/* Record outcomes: finished entries go straight to the archive (one write,
 * not an update now and a move later); FAILED stay in the log; NEW wait for
 * their retry (attempts + 1). */
ERR_MUST_CHECK int tlog_record_outcomes(PGconn *c, const char *schema, const tlog_outcome *o,
                                        size_t n, err_t *e);
/* Earlier FAILED entries of these records, now written, become MERGED. */
ERR_MUST_CHECK int tlog_supersede_failures(PGconn *c, const char *schema, const char *table,
                                           const int *rids, size_t n, err_t *e);

/* Entries waiting out a retry now. */
/* Entries to send now or in flight (not those waiting out a retry delay). */
ERR_MUST_CHECK int tlog_waiting(PGconn *c, const char *schema, int64_t *n, err_t *e);
ERR_MUST_CHECK int tlog_retrying(PGconn *c, const char *schema, int64_t *n, err_t *e);
/* Milliseconds until the next retry is due (>= 0), or -1 when none waits. */
ERR_MUST_CHECK int tlog_next_retry_ms(PGconn *c, const char *schema, int64_t *ms, err_t *e);

/* ---- what other modules ask ------------------------------------------------- */

/* The records of table $<table_param> among $<rids_param> (int[]) with an
 * entry NEW or PENDING other than $<own_param> (bigint[]): a SELECT of
 * record_id, for the writer's row update. Pure. */
void tlog_sql_waiting_records(sb *out, const char *schema, const char *table_param,
                              const char *rids_param, const char *own_param);
/* For a pull's conflict check on the row aliased `row` of table `table_lit`
 * (an SQL literal): a LATERAL subquery `(SELECT max(created_at) AS changed_at
 * ...) <alias>` of the row's oldest waiting change. Pure. */
void tlog_sql_pending_change(sb *out, const char *schema, const char *table_lit, const char *row_id,
                             const char *alias);
/* " AND NOT EXISTS ..." conditions: no successful write of the row since
 * `stamp` (log or archive), and none in flight or tried with its answer
 * unknown, so Salesforce's version is not sfbridge's own. Pure. */
void tlog_sql_not_own_write(sb *out, const char *schema, const char *table_lit, const char *row_id,
                            const char *stamp);
/* A boolean expression: the row `row_id` of `table_lit` had a successful
 * write processed after `since` (a timestamptz expression; NULL: false), in
 * the log or its archive. Pure. */
void tlog_sql_written_since(sb *out, const char *schema, const char *table_lit, const char *row_id,
                            const char *since);
/* A boolean expression: the version of the row stamped `stamp` (timestamptz)
 * may be sfbridge's own write's, as a successful write of it was processed
 * at or after that stamp (log or archive). Pure. */
void tlog_sql_own_version(sb *out, const char *schema, const char *table_lit, const char *row_id,
                          const char *stamp);
/* " AND NOT EXISTS ...": no entry of the log or the archive for `table_lit`
 * names the record `sfid_expr` (a delete on its way, a failure kept, an
 * insert that succeeded, a delete that lost a conflict): for the writer's
 * search for records nothing in Postgres knows. Pure. */
void tlog_sql_names_no_sfid(sb *out, const char *schema, const char *table_lit,
                            const char *sfid_expr);
/* "UPDATE ... RETURNING 1": the NEW entries of the rows in CTE `conf` whose
 * conflict Salesforce won become IGNORED. Pure. */
void tlog_sql_ignore_conflicts(sb *out, const char *schema, const char *table_lit,
                               const char *policy_lit);
/* The inserts of `table` whose outcome is unknown (settled or not; FAILED
 * ones too: their records may exist), sent between from_ms and to_ms, other
 * than the records skip_rids[0..nskip): *out is a JSON array of
 * {"payload": what was sent, "sent_at": ISO 8601, "open": not FAILED (its look
 * is yet to conclude)}, one per record. */
ERR_MUST_CHECK int tlog_unknown_inserts(PGconn *c, const char *schema, const char *table,
                                        int64_t from_ms, int64_t to_ms, const int *skip_rids,
                                        size_t nskip, json_t **out, err_t *e);
/* Whether `table` has inserts whose outcome is unknown and not settled. */
ERR_MUST_CHECK int tlog_unsettled_inserts(PGconn *c, const char *schema, const char *table,
                                          bool locked, bool *yes, err_t *e);
/* For `status`: a json_build_object(pending, retrying, failed, last_error)
 * expression over the log of the schema quoted as `qschema`. Pure. */
void tlog_sql_status(sb *out, const char *qschema);

/* The FAILED writes processed in the last `hours` (log and archive, newest
 * first), of one table or all (table NULL), as a JSON array of
 * {id, table_name, record_id, sfid, action, state, message, created_at,
 * processed_at, values}. NULL with e filled. */
/* One table's pending and failed counts, a JSON-valued SQL expression for a
 * statement where table_expr names the table (status). Pure. */
void tlog_sql_table_status(sb *out, const char *qschema, const char *table_expr);
/* The trigger log entries (archived too) of one row, newest first, at most 100. */
json_t *tlog_history_json(PGconn *c, const char *schema, const char *table, int64_t record_id,
                          err_t *e);
json_t *tlog_errors_json(PGconn *c, const char *schema, const char *table, int hours, err_t *e);

#endif
