/*
 * catalog: sfbridge's own state, kept in Postgres next to the data.
 *
 * <schema>._sfbridge_connection (one row: org, API version, connection state),
 * <schema>._sfbridge_mapping (one row per mapping: configuration, state,
 * watermark, load progress, counters) and Heroku Connect's <schema>._hcmeta.
 * Because all of it is in the database, a restart on another machine carries
 * on where the last one stopped.
 */
#ifndef CATALOG_H
#define CATALOG_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "err.h"

#define CAT_VERSION 1

typedef struct map_field {
    char *name;   /* Salesforce API name, "Birthdate__c" */
    char *column; /* Postgres column, "birthdate__c" ("sfid" for Id) */
    char *sftype; /* describe type, "date" */
    char *pgtype; /* Postgres type, "date" */
    bool  createable; /* may be set on insert */
    bool  updateable; /* may be set on update */
    char *ref_to;     /* reference and relationship fields: the parent object, else NULL */
    char *via;        /* relationship fields ("School__r.External_Id__c"): the lookup, "School__c" */
} map_field;

typedef struct mapping {
    char      *object;       /* "Teacher__c" */
    char      *table;        /* "teacher__c" */
    bool       read_write;
    bool       notify;       /* sf_notify_enabled (accelerated sync) */
    bool       tombstones;   /* keep deleted rows as isdeleted = true */
    bool       paused;
    bool       loaded;       /* initial load finished */
    int        poll_seconds;
    long       max_daily;    /* sf_max_daily_api_calls */
    map_field *fields;
    size_t     nfields;
    json_t    *indexes;      /* {"Field": {"unique": bool}} */
    json_t    *resync;       /* fields awaiting backfill (array) or NULL */
    char      *upsert_field;
    char      *state;
    char      *watermark;    /* "YYYY-MM-DD HH:MM:SS.mmm" UTC or NULL */
    char      *load_job;
    char      *load_locator;
    char      *load_wm;
    int64_t    load_done;
    int64_t    load_total;   /* -1 unknown */
    int        errors;       /* consecutive failures */
    char      *last_error;
    char      *applied_at;
    int64_t    api_calls;    /* today's */
    int64_t    next_poll_ms; /* next_poll_at, ms since epoch; 0 = now */
    int64_t    last_drift_ms;/* last_drift_at, ms since epoch; 0 = never */
} mapping;

/* Create the schema and the state tables if missing (idempotent). */
int  cat_ensure(PGconn *c, const char *schema, err_t *e);
/* Record which org this schema is connected to; refuses another org. */
int  cat_set_org(PGconn *c, const char *schema, const char *org_id, const char *instance_url,
                 const char *api_version, err_t *e);
int  cat_get_org(PGconn *c, const char *schema, char **org_id, char **api_version, err_t *e);
int  cat_set_conn_state(PGconn *c, const char *schema, const char *state, const char *error, err_t *e);
int  cat_conn_paused(PGconn *c, const char *schema, bool *paused, err_t *e);

/* Load all mappings (object NULL) or one; *n = 0 when none. */
int  cat_load(PGconn *c, const char *schema, const char *object, mapping **out, size_t *n, err_t *e);
int  cat_insert(PGconn *c, const char *schema, const mapping *m, err_t *e);
/* Write the configuration columns of m (fields, indexes, access, ...). */
int  cat_update_config(PGconn *c, const char *schema, const mapping *m, err_t *e);
int  cat_set_state(PGconn *c, const char *schema, const char *object, const char *state,
                   const char *error, err_t *e);
int  cat_delete(PGconn *c, const char *schema, const char *object, err_t *e);
/* Wake a running daemon (NOTIFY sfbridge_control). */
int  cat_notify(PGconn *c, const char *schema, err_t *e);

json_t *cat_fields_json(const mapping *m);
int     cat_fields_parse(json_t *arr, mapping *m, err_t *e);
const map_field *cat_field(const mapping *m, const char *sf_name); /* case-insensitive */

void map_field_clear(map_field *f);
void mapping_clear(mapping *m);
void mapping_free_all(mapping *ms, size_t n);

#endif
