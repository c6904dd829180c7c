/*
 * catalog: sfbridge's own state, kept in Postgres next to the data.
 *
 * <schema>._sfbridge_connection (one row: org, API version, connection state),
 * <schema>._sfbridge_mapping (one row per mapping: configuration, state,
 * watermark, load progress, counters) and Heroku Connect's <schema>._hcmeta.
 * Because all of it is in the database, a restart on another machine carries
 * on where the last one stopped.
 *
 * This module owns those tables: no other file writes SQL against them. Each
 * write others need is a typed function here; where a write must be part of a
 * bigger statement (a page of rows and the watermark it moves), a cat_sql_*
 * builder appends the catalog's part. A mapping's state changes only through
 * fsm_fire (fsm.h), which runs cat_transition.
 */
#ifndef CATALOG_H
#define CATALOG_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "err.h"
#include "fsm.h"
#include "sb.h"

#define CAT_VERSION 1

typedef struct map_field {
    char *name;      /* Salesforce API name, "Birthdate__c" */
    char *column;    /* Postgres column, "birthdate__c" ("sfid" for Id) */
    char *sftype;    /* describe type, "date" */
    char *pgtype;    /* Postgres type, "date" */
    bool createable; /* may be set on insert */
    bool updateable; /* may be set on update */
    char *ref_to;    /* reference and relationship fields: the parent object, else NULL */
    char *via;       /* relationship fields ("School__r.External_Id__c"): the lookup, "School__c" */
} map_field;

typedef struct mapping {
    char *object; /* "Teacher__c" */
    char *table;  /* "teacher__c" */
    bool read_write;
    bool notify;     /* sf_notify_enabled (accelerated sync) */
    bool tombstones; /* keep deleted rows as isdeleted = true */
    bool paused;
    bool loaded; /* initial load finished */
    int poll_seconds;
    long max_daily; /* sf_max_daily_api_calls */
    map_field *fields;
    size_t nfields;
    json_t *indexes; /* {"Field": {"unique": bool}} */
    json_t *resync;  /* fields awaiting backfill (array) or NULL */
    char *upsert_field;
    map_state state;
    char *watermark; /* "YYYY-MM-DD HH:MM:SS.mmm" UTC or NULL */
    char *load_job;
    char *load_locator;
    char *load_wm;
    int64_t load_done;
    int64_t load_total; /* -1 unknown */
    int errors;         /* consecutive failures */
    char *last_error;
    char *applied_at;
    int64_t api_calls;     /* today's */
    int64_t next_poll_ms;  /* next_poll_at, ms since epoch; 0 = now */
    int64_t last_drift_ms; /* last_drift_at, ms since epoch; 0 = never */
    char *bad;             /* why the row cannot be synced (cat_load_any), else NULL */
    int64_t replay_id;     /* accelerated sync: the last replay id committed; -1 none */
    char *stream_channel;  /* the channel it subscribes to (CDC or PushTopic), or NULL */
    bool overlap_settled;  /* a poll read the overlap before the watermark after no change
                              stamped in it could still be committed: polls ask for newer only */
} mapping;

/* Columns written together with a state change (fsm_fire): assignments with
 * their parameters ($1 is the object name). Built by the cat_cols_* functions,
 * freed by cat_transition. */
typedef struct cat_cols {
    sb set;          /* ", col = expr" ... */
    char *params[8]; /* $2 ... */
    int n;
} cat_cols;

/* Create the schema and the state tables if missing (idempotent). */
int cat_ensure(PGconn *c, const char *schema, err_t *e) ERR_MUST_CHECK;
/* 0 when the schema has sfbridge's catalog; NOT_SET_UP naming `sfbridge init`
 * when not. Reads only (for status, which never creates anything). */
int cat_check_exists(PGconn *c, const char *schema, err_t *e) ERR_MUST_CHECK;

/* ---- _sfbridge_connection, _hcmeta (catalog_conn.c) ---- */
/* Record which org this schema is connected to; refuses another org. */
int cat_set_org(PGconn *c, const char *schema, const char *org_id, const char *instance_url,
                const char *api_version, err_t *e) ERR_MUST_CHECK;
int cat_get_org(PGconn *c, const char *schema, char **org_id, char **api_version,
                err_t *e) ERR_MUST_CHECK;
int cat_set_conn_state(PGconn *c, const char *schema, conn_state state, const char *error,
                       err_t *e) ERR_MUST_CHECK;
int cat_conn_paused(PGconn *c, const char *schema, bool *paused, err_t *e) ERR_MUST_CHECK;
/* pause / resume the connection (resume also clears its state and error). */
int cat_set_conn_paused(PGconn *c, const char *schema, bool paused, err_t *e) ERR_MUST_CHECK;
/* The daemon is alive (pid, host, now) and doing `state`; CS_IDLE keeps an
 * OFFLINE or NEED_AUTHENTICATION shown until something succeeds. */
int cat_heartbeat(PGconn *c, const char *schema, conn_state state, err_t *e) ERR_MUST_CHECK;
/* The daemon stopped: `status` no longer says running. error: why, or NULL. */
int cat_heartbeat_clear(PGconn *c, const char *schema, const char *error, err_t *e) ERR_MUST_CHECK;
/* Wake a running daemon (NOTIFY sfbridge_control). */
int cat_notify(PGconn *c, const char *schema, err_t *e) ERR_MUST_CHECK;

/* ---- _sfbridge_mapping: configuration (catalog.c) ---- */
/* Load the usable mappings (object NULL: all, else that one); *n = 0 when
 * none. A row that cannot be read (see cat_load_any) is left out. */
int cat_load(PGconn *c, const char *schema, const char *object, mapping **out, size_t *n,
             err_t *e) ERR_MUST_CHECK;
/* The same with unusable rows too, each with m->bad saying why (fields not a
 * list of complete fields, no Id, unknown state) and only its name, state and
 * flags filled. */
int cat_load_any(PGconn *c, const char *schema, const char *object, mapping **out, size_t *n,
                 err_t *e) ERR_MUST_CHECK;
int cat_insert(PGconn *c, const char *schema, const mapping *m, err_t *e) ERR_MUST_CHECK;
/* Write the configuration columns of m (fields, indexes, access, ...), not the state. */
int cat_update_config(PGconn *c, const char *schema, const mapping *m, err_t *e) ERR_MUST_CHECK;
int cat_delete(PGconn *c, const char *schema, const char *object, err_t *e) ERR_MUST_CHECK;
int cat_set_paused(PGconn *c, const char *schema, const char *object, bool paused,
                   err_t *e) ERR_MUST_CHECK;

/* ---- _sfbridge_mapping: state and progress (catalog_state.c) ---- */
/* Run one state change (fsm_fire's statement): state = state_expr (SQL on the
 * row's state and loaded) and cols, in one UPDATE; before and after are the
 * row's states around it. cols may be NULL; it is freed. */
int cat_transition(PGconn *c, const char *schema, const char *object, const char *state_expr,
                   cat_cols *cols, map_state *before, map_state *after, err_t *e) ERR_MUST_CHECK;
void cat_cols_free(cat_cols *cols);
/* The columns of each state change that carries more than the state. */
void cat_cols_takeover(cat_cols *c); /* loaded, drift clock started */
void cat_cols_load_started(cat_cols *c, int64_t total, const char *load_wm, const char *job);
void cat_cols_load_restart(cat_cols *c);
void cat_cols_load_finished(cat_cols *c, int poll_seconds);
void cat_cols_reload_request(cat_cols *c);
void cat_cols_reload_finished(cat_cols *c, const char *maxstamp);
void cat_cols_backfill_finished(cat_cols *c);
/* settled_before (NULL: unknown): a time ("YYYY-MM-DDTHH:MM:SS.mmmZ", UTC)
 * before which every change Salesforce stamped was committed when the poll's
 * query ran (its start on Salesforce's clock minus the overlap). A watermark
 * not later than it has had its overlap window read completely. */
void cat_cols_poll_finished(cat_cols *c, int poll_seconds, const char *settled_before);
void cat_cols_budget_spent(cat_cols *c);
void cat_cols_failure(cat_cols *c, const char *error, long retry_ms);
void cat_cols_bad_row(cat_cols *c, const char *reason);
void cat_cols_resume(cat_cols *c);
/* A load page's progress, committed with the page (Bulk: COPY then this). */
int cat_load_progress(PGconn *c, const char *schema, const char *object, const char *locator,
                      int64_t rows, err_t *e) ERR_MUST_CHECK;
/* A Bulk load's total once its job is complete: the records the job returned. */
int cat_load_total(PGconn *c, const char *schema, const char *object, int64_t total,
                   err_t *e) ERR_MUST_CHECK;
/* A reload's progress: via "rest" or "bulk" when it starts (done 0 of total,
 * started now), NULL for the rows staged since (total then unused). */
int cat_reload_progress(PGconn *c, const char *schema, const char *object, int64_t done,
                        int64_t total, const char *via, err_t *e) ERR_MUST_CHECK;
/* Try the mapping again in a second (a poll put off while the writer settles). */
int cat_poll_soon(PGconn *c, const char *schema, const char *object, err_t *e) ERR_MUST_CHECK;
/* Salesforce's count of the object's records (status shows it beside Postgres's). */
int cat_sf_rows(PGconn *c, const char *schema, const char *object, int64_t n,
                err_t *e) ERR_MUST_CHECK;
/* The mapping's drift check is due (the daemon runs it at its next pass). */
int cat_drift_soon(PGconn *c, const char *schema, const char *object, err_t *e) ERR_MUST_CHECK;
int cat_drift_done(PGconn *c, const char *schema, const char *object, int64_t repairs,
                   err_t *e) ERR_MUST_CHECK;
int cat_watermark(PGconn *c, const char *schema, const char *object, char **wm,
                  err_t *e) ERR_MUST_CHECK;
int cat_api_used(PGconn *c, const char *schema, const char *object, uint64_t calls,
                 err_t *e) ERR_MUST_CHECK;
/* The UPDATE a page-applying statement ends with, as a CTE named wm ("wm AS
 * (UPDATE ... RETURNING 1)"), $2 = the object: for a poll page, the watermark
 * moves to max_expr and rows_synced grows by count_expr; for a load page, the
 * resume position becomes $3 and load_done and rows_synced grow by count_expr. */
void cat_sql_poll_page(sb *out, const char *schema, const char *max_expr, const char *count_expr);
void cat_sql_load_page(sb *out, const char *schema, const char *count_expr);

/* ---- streaming columns of _sfbridge_mapping ---- */
int cat_stream_state(PGconn *c, const char *schema, const char *object, stream_state st,
                     const char *error, err_t *e) ERR_MUST_CHECK;
int cat_stream_subscribed(PGconn *c, const char *schema, const char *object, const char *channel,
                          err_t *e) ERR_MUST_CHECK;
int cat_stream_fallback_done(PGconn *c, const char *schema, const char *object,
                             err_t *e) ERR_MUST_CHECK;
/* Every streamed mapping is reconnecting (error: why). */
int cat_streams_connecting(PGconn *c, const char *schema, const char *error,
                           err_t *e) ERR_MUST_CHECK;
/* The daemon stopped cleanly: no stream, and no error to show. */
int cat_streams_stopped(PGconn *c, const char *schema, err_t *e) ERR_MUST_CHECK;
/* A batch of events applied (in the batch's transaction). */
int cat_stream_applied(PGconn *c, const char *schema, const char *object, int64_t replay_id,
                       int64_t lag_ms, int64_t events, err_t *e) ERR_MUST_CHECK;
/* The mapping no longer streams: forget its channel and position. */
int cat_stream_forget(PGconn *c, const char *schema, const char *object, err_t *e) ERR_MUST_CHECK;

json_t *cat_fields_json(const mapping *m);
int cat_fields_parse(json_t *arr, mapping *m, err_t *e) ERR_MUST_CHECK;
const map_field *cat_field(const mapping *m, const char *sf_name); /* case-insensitive */

void map_field_clear(map_field *f);
void mapping_clear(mapping *m);
void mapping_free_all(mapping *ms, size_t n);

#endif
