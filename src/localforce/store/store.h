/*
 * store: the org's data. Records, metadata, users and connected apps, kept in
 * one SQLite database (a file, or :memory:).
 *
 * The store applies Salesforce's record semantics: 18-character IDs with the
 * object's key prefix, CreatedDate/LastModifiedDate/SystemModstamp (strictly
 * increasing, millisecond precision, one clock for the whole org), soft delete
 * to the recycle bin (IsDeleted = 1 plus a deletion time for the `deleted`
 * resource), required/unique/external-id fields, type and length checks,
 * picklists, lookups that must point at a live record of the right object, and
 * parent references by external id ({"Teacher__r": {"Email__c": "a@b.c"}}).
 * Every failure is reported as Salesforce reports it (see err.h): http status,
 * errorCode, message, fields.
 *
 * Tables: object X is SQLite table "X" with columns
 *     _rowid INTEGER PRIMARY KEY  -- the ID's sequence number
 *     "Id" TEXT UNIQUE, "IsDeleted" INTEGER, "CreatedDate" INTEGER (ms), ...
 *     one column per field (see schema.h for storage classes)
 *     _deleted_at INTEGER          -- ms when moved to the recycle bin, else NULL
 * Metadata lives in _lf_* tables so a database file can be reopened.
 *
 * Concurrency: one SQLite connection guarded by one recursive mutex. Every
 * public function takes the lock itself; store_lock()/store_unlock() group
 * several calls (a transaction, or stepping a query cursor).
 */
#ifndef STORE_H
#define STORE_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "sb.h"
#include "schema.h"

typedef struct store store;

typedef struct lf_user {
    char id[19]; /* User record Id, prefix 005 */
    char *username;
    char *password; /* kept in memory only, never logged */
    char *first_name, *last_name, *email;
    bool active;
} lf_user;

typedef struct lf_app { /* a connected app (OAuth client) */
    char *name;
    char *client_id;
    char *client_secret;
    char *run_as;   /* username for the client-credentials flow, or NULL */
    char *jwt_cert; /* PEM X.509 certificate of the JWT bearer flow, or NULL */
    char **preauth; /* usernames pre-authorized for the app (JWT bearer flow) */
    size_t npreauth;
} lf_app;

/* Who is making a change (for CreatedById/LastModifiedById and, later, CDC). */
typedef struct lf_actor {
    const char *user_id; /* 18-char User Id */
    const char *origin;  /* e.g. "com/salesforce/api/rest/59.0;client=x", or NULL */
} lf_actor;

/* Open (creating if needed) the database at path, or ":memory:". */
int store_open(const char *path, store **out, err_t *e);
/* Apply an org definition file: objects and fields not yet in the database are
 * created; users and connected apps are (re)loaded; seed records are inserted
 * for objects created by this call. Errors name the object/field at fault. */
int store_load_org_file(store *st, const char *path, err_t *e);
int store_load_org_json(store *st, json_t *org, err_t *e);
void store_close(store *st);

void store_lock(store *st);
void store_unlock(store *st);
sqlite3 *store_db(store *st);             /* caller holds the lock */
const lf_schema *store_schema(store *st); /* caller holds the lock while using it */

const char *store_org_id(store *st); /* 18-char Organization Id (prefix 00D) */
const char *store_org_name(store *st);
const lf_user *store_user_by_name(store *st, const char *username);
const lf_user *store_user_by_id(store *st, const char *id);
const lf_app *store_app(store *st, const char *client_id);
int64_t store_session_ttl_s(store *st);   /* from the org file settings, default 7200 */
int64_t store_daily_api_limit(store *st); /* default 100000 */

/* Next SystemModstamp: max(now, last + 1) ms. */
int64_t store_next_modstamp(store *st);

/* Transactions, for allOrNone collections. Nest with savepoints. */
int store_begin(store *st, err_t *e);
int store_commit(store *st, err_t *e);
void store_rollback(store *st);

/* Records. rec is a JSON object of field name -> value ("attributes" ignored).
 * Field names are case-insensitive. Values: strings, numbers, booleans, null. */
int store_create(store *st, const lf_actor *a, const char *obj, json_t *rec, char id_out[19],
                 err_t *e);
int store_update(store *st, const lf_actor *a, const char *obj, const char *id, json_t *rec,
                 err_t *e);
int store_delete(store *st, const lf_actor *a, const char *obj, const char *id, err_t *e);
/* Restore a deleted record from the recycle bin (IsDeleted false again, a new
 * SystemModstamp, an UNDELETE change event); UNDELETE_FAILED when it is not
 * deleted. */
int store_undelete(store *st, const lf_actor *a, const char *obj, const char *id, err_t *e);
/* Upsert by external id. On several matches fails with http 300, code
 * MULTIPLE_CHOICES, and fills matches (if not NULL) with a JSON array of
 * record URLs for version ver. ext_field "Id" with NULL value creates. */
int store_upsert(store *st, const lf_actor *a, const char *obj, const char *ext_field,
                 const char *ext_value, json_t *rec, const char *ver, char id_out[19],
                 bool *created, sb *matches, err_t *e);
/* Write one live record as REST JSON (with "attributes") into out. fields is a
 * comma-separated list or NULL for all. ver is like "59.0". */
int store_get(store *st, const char *obj, const char *id, const char *fields, const char *ver,
              sb *out, err_t *e);
/* Find the object an ID belongs to (by key prefix) and check it exists. */
const lf_object *store_object_for_id(store *st, const char *id);

/* Replication: `updated` and `deleted` between start and end (ms), as REST JSON. */
int store_updated(store *st, const char *obj, int64_t start, int64_t end, sb *out, err_t *e);
int store_deleted(store *st, const char *obj, int64_t start, int64_t end, sb *out, err_t *e);

/* Admin: add a field to an existing object (ALTER TABLE; existing rows get the
 * default or NULL), add an object, and load many records fast (one transaction;
 * rows validated as by store_create; stops at the first bad row and reports it
 * with its index). */
int store_add_field(store *st, const char *obj, const char *field, json_t *def, err_t *e);
int store_add_object(store *st, const char *obj, json_t *def, err_t *e);
int store_load_records(store *st, const lf_actor *a, const char *obj, json_t *records,
                       int64_t ago_ms, int64_t *loaded, err_t *e);
/* Number of live (or all, if all_rows) records of an object; -1 if unknown. */
int64_t store_count(store *st, const char *obj, bool all_rows);

/* Change hook, for change events (events.h). While a hook is set, a record
 * write made outside a transaction runs in one of its own, so the rows the
 * hook writes always commit or roll back together with the change.
 *
 * change() is called under the store lock, inside that transaction, right
 * after a create, update or delete was written; returning -1 (with e filled)
 * fails the write. Outside a caller's transaction the write is then rolled
 * back; inside one it is rolled back on its own only for objects for which
 * refuses(o) is true (each such write gets a savepoint: a savepoint per
 * record would cost every bulk write for nothing). For an UPDATE, changed
 * lists the fields whose stored value differs from before (SystemModstamp,
 * Id and the Created* fields never appear). tx() reports each transaction level:
 * LF_TX_BEGIN after level depth opened (1 = the outermost), LF_TX_COMMIT after
 * it was released (for depth 1: after COMMIT succeeded), LF_TX_ROLLBACK after
 * it was rolled back. Any of them may be NULL. */
typedef enum {
    LF_CHANGE_CREATE,
    LF_CHANGE_UPDATE,
    LF_CHANGE_DELETE,
    LF_CHANGE_UNDELETE
} lf_change_type;

typedef struct lf_change {
    lf_change_type type;
    const lf_object *object;
    const char *id;                 /* 18-char record Id */
    const char *user_id;            /* the actor's user, else the org's default user, or NULL */
    const char *origin;             /* lf_actor.origin, or NULL */
    int64_t commit_ms;              /* the transaction's time (the record's SystemModstamp) */
    const lf_field *const *changed; /* UPDATE only */
    size_t nchanged;
} lf_change;

typedef enum { LF_TX_BEGIN, LF_TX_COMMIT, LF_TX_ROLLBACK } lf_tx_event;

typedef struct lf_change_hook {
    int (*change)(void *ctx, store *st, const lf_change *c, err_t *e);
    void (*tx)(void *ctx, store *st, lf_tx_event what, int depth);
    bool (*refuses)(void *ctx, const lf_object *o);
    void *ctx;
} lf_change_hook;

/* Install (or with NULL remove) the hook; takes the store lock. */
void store_set_change_hook(store *st, const lf_change_hook *h);

#endif
