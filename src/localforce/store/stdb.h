/*
 * stdb: the store's core, shared by its modules: struct store (the one SQLite
 * connection and its recursive lock, the schema and per-object caches, the org's
 * settings, the change hook), SQLite helpers that report failures as err_t, the
 * org's modstamp clock, transaction nesting (savepoints) with the hook's tx
 * events, the _lf_meta key/value table, and store_lock/store_unlock. Internal
 * to src/localforce/store/.
 */
#ifndef STDB_H
#define STDB_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include "err.h"
#include "store.h"

#define FORMAT_VERSION      1
#define DAY_MS              86400000LL
#define MINUTE_MS           60000LL
#define MAX_REPLICATION_IDS 600000
#define MAX_MATCHES         1000

typedef struct objinfo objinfo;

struct store {
    pthread_mutex_t mu;
    sqlite3 *db;
    lf_schema schema;
    objinfo **oi; /* parallel to schema.objects */
    size_t cap_oi;
    char org_id[19];
    char *org_name;
    int64_t session_ttl_s, api_limit, created_ms, last_stamp;
    int64_t tx_stamp; /* the stamp of the open transaction, 0 if none yet */
    lf_user **users;
    size_t nusers;
    lf_app **apps;
    size_t napps;
    char default_user[19]; /* acts for changes without an actor */
    int tx_depth;
    lf_change_hook hook; /* change events (store.h); zeroed when unset */
};

static const char not_found_msg[] = "The requested resource does not exist";

int stdb_fail(store *st, err_t *e, const char *what);
int stdb_exec(store *st, const char *sql, err_t *e);
sqlite3_stmt *stdb_prep(store *st, const char *sql, bool persistent, err_t *e);
size_t stdb_utf8_chars(const char *s, size_t n);
int64_t stdb_floor_minute(int64_t ms);
int64_t stdb_next_stamp(store *st);
void stdb_err_prefix(err_t *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int stdb_tx_begin(store *st, err_t *e);
void stdb_tx_rollback(store *st);
int stdb_tx_commit(store *st, err_t *e);
int stdb_meta_put(store *st, const char *key, const char *text, int64_t num, err_t *e);
int stdb_meta_get(store *st, const char *key, char **text, int64_t *num, err_t *e);
int stdb_save_org_meta(store *st, err_t *e);

#endif
