/*
 * ddl: from a Salesforce describe to a Heroku Connect table.
 *
 * Resolves the fields a mapping asks for against the object's describe
 * (unknown, unreadable and unsupported fields are refused by name), maps
 * Salesforce types to the Postgres types Heroku Connect uses (one table,
 * ddl.c's type_map), and writes the CREATE/ALTER statements with Heroku
 * Connect's names: lowercased identifiers, id serial primary key, sfid
 * varchar(18) with hcu_idx_<table>_sfid, hc_idx_<table>_systemmodstamp, the
 * status columns _hc_lastop/_hc_err and the status trigger.
 */
#ifndef DDL_H
#define DDL_H

#include <stdbool.h>

#include <jansson.h>

#include "catalog.h"
#include "err.h"
#include "sb.h"

/* Looks up the describe of a parent object, for relationship fields such as
 * "School__r.External_Id__c" (a child naming its parent by external id).
 * Returns a new reference or NULL with e filled. */
typedef struct ddl_parents {
    json_t *(*describe)(void *ctx, const char *object, err_t *e);
    void *ctx;
} ddl_parents;

/* Resolve wanted fields (names as the user typed them; NULL/0 with all=true
 * for every supported field) against describe into m->fields, with the
 * always-mapped system fields first. Also sets m->object (canonical name)
 * and m->table. Fails naming the first unknown or unsupported field, the
 * object when it cannot be synced (no SystemModstamp), before any change. */
int ddl_resolve(json_t *describe, const char *const *wanted, size_t nwanted, bool all, mapping *m,
                const ddl_parents *parents, err_t *e);
/* Append to m->fields the resolved fields not already in it; names appended
 * to *added (a JSON array, created if NULL). */
int ddl_add_fields(json_t *describe, const char *const *wanted, size_t n, mapping *m,
                   json_t **added, const ddl_parents *parents, err_t *e);
/* Check that field is usable as the mapping's unique identifier (an external id). */
int ddl_check_upsert_field(json_t *describe, const char *field, char **canonical, err_t *e);
/* Postgres type for a describe field; NULL when unsupported. */
const char *ddl_pg_type(json_t *field, char *buf, size_t n);

/* Heroku Connect's row status, `_hc_lastop`: the one definition of its values
 * (C strings; in SQL text as "'" HC_SYNCED "'"). */
#define HC_PENDING  "PENDING"  /* an app's change waits to be written */
#define HC_SYNCED   "SYNCED"   /* as Salesforce has it (pulled) */
#define HC_INSERTED "INSERTED" /* written: created in Salesforce */
#define HC_UPDATED  "UPDATED"  /* written: updated in Salesforce */
#define HC_DELETED  "DELETED"  /* written: deleted in Salesforce */
#define HC_FAILED   "FAILED"   /* Salesforce refused the change (_hc_err says why) */

/* Statements creating the table and its indexes. */
void ddl_create_table(sb *out, const char *schema, const mapping *m);
/* The table alone, named `name` (the mapping's table or its load shadow):
 * columns and primary key, no other index, no trigger. */
void ddl_create_heap(sb *out, const char *schema, const char *name, const mapping *m);
/* The names of the columns ddl_create_heap makes, in order, as a text[] literal. */
void ddl_heap_columns(sb *out, const mapping *m);
/* One of the indexes sfbridge makes on a mapping's table (besides the key). */
typedef struct ddl_index {
    const char *column; /* borrowed from the mapping */
    bool unique;
} ddl_index;
/* The table's own indexes, sfid and systemmodstamp first, then the mapping's
 * indexes and its unique identifier: up to max in out (NULL, 0 to count);
 * returns how many there are. */
size_t ddl_own_indexes(const mapping *m, ddl_index out[], size_t max);
/* CREATE INDEX IF NOT EXISTS for all of them on table `on`, named after it. */
void ddl_create_own_indexes(sb *out, const char *schema, const char *on, const mapping *m);
/* (Re)create Heroku Connect's status trigger hc_<table>_status_trigger. */
void ddl_status_trigger(sb *out, const char *schema, const mapping *m);
/* A name sfbridge derives (trigger, function, index): prefix + base + suffix,
 * Heroku Connect's name when it fits Postgres's 63 bytes; otherwise base is
 * shortened and followed by '_' and 8 hex digits of a hash of the whole base,
 * so the name is unique, deterministic and never truncated by Postgres.
 * prefix + suffix must leave room for the hash (they are short constants). */
void ddl_name(char out[64], const char *prefix, const char *base, const char *suffix);
/* The same within `limit` bytes (out holds limit + 1): PushTopic names, 25. */
void ddl_name_within(char *out, size_t limit, const char *prefix, const char *base,
                     const char *suffix);
/* hc_idx_<table>_<column> or hcu_idx_..., as ddl_name shortens it. */
void ddl_index_name(char out[64], const char *table, const char *column, bool unique);
/* The names of a mapping's capture objects (status function and trigger,
 * logger function and trigger, truncate trigger). */
#define DDL_STATUS_FN(out, table)        ddl_name(out, "hc_", table, "_status")
#define DDL_STATUS_TRIGGER(out, table)   ddl_name(out, "hc_", table, "_status_trigger")
#define DDL_LOGGER_FN(out, table)        ddl_name(out, "hc_", table, "_logger")
#define DDL_LOG_TRIGGER(out, table)      ddl_name(out, "hc_", table, "_logtrigger")
#define DDL_TRUNCATE_TRIGGER(out, table) ddl_name(out, "hc_", table, "_truncate")
/* The table an initial Bulk load fills before the mapping's table (shadow.c). */
#define DDL_SHADOW(out, table) ddl_name(out, "_sfbridge_load_", table, "")
/* Statements that pin the search_path of the functions created between them
 * to pg_catalog and hstore's schema (CREATE FUNCTION ... SET search_path FROM
 * CURRENT), so capture works whatever an app session's search_path is, and
 * restore the session's path afterwards. Inside a transaction. */
void ddl_pin_path_begin(sb *out);
void ddl_pin_path_end(sb *out);
/* CREATE [UNIQUE] INDEX IF NOT EXISTS for each entry of m->indexes (and the upsert field). */
void ddl_create_indexes(sb *out, const char *schema, const mapping *m);
/* ALTER TABLE ADD COLUMN for the fields named in added. */
void ddl_add_columns(sb *out, const char *schema, const mapping *m, json_t *added);
/* Lowercase copy of a Salesforce name ("Id" becomes "sfid", "School__r.Ext__c"
 * becomes "school__r__ext__c", Heroku Connect's relationship column). */
char *ddl_column_name(const char *sf_name);

#endif
