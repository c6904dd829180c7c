/*
 * store: opening and closing the org's database (schema restore, the org's
 * settings, the modstamp clock), and the store's accessors and public
 * transactions. See store.h.
 */
#include "store.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "sfid.h"
#include "tables.h"
#include "users.h"
#include "util.h"
/* ------------------------------------------------------------------------ */
/* Open and close                                                           */

static const char user_def[] =
    "{\"label\":\"User\",\"label_plural\":\"Users\",\"key_prefix\":\"005\",\"fields\":{"
    "\"Username\":{\"type\":\"string\",\"length\":80,\"required\":true,\"unique\":true,"
    "\"label\":\"Username\"},"
    "\"FirstName\":{\"type\":\"string\",\"length\":40,\"label\":\"First Name\"},"
    "\"LastName\":{\"type\":\"string\",\"length\":80,\"required\":true,\"label\":\"Last Name\"},"
    "\"Email\":{\"type\":\"email\",\"length\":128,\"required\":true,\"label\":\"Email\"},"
    "\"IsActive\":{\"type\":\"boolean\",\"default\":true,\"label\":\"Active\"}}}";

static int
restore_schema(store *st, err_t *e)
{
    sqlite3_stmt *q = stdb_prep(st, "SELECT name, def FROM _lf_objects ORDER BY pos", false, e);
    if (q == NULL)
        return -1;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(q, 0);
        json_error_t je;
        json_t *def = json_loads((const char *)sqlite3_column_text(q, 1), 0, &je);
        lf_object *o = def ? schema_object_from_json(name, def, e) : NULL;
        json_decref(def);
        if (def == NULL)
            err_set(e, 500, "UNKNOWN_EXCEPTION", "stored definition of %s is not JSON: %s", name,
                    je.text);
        if (o == NULL) {
            sqlite3_finalize(q);
            return -1;
        }
        if (oi_add_object(st, o, e)) {
            object_free(o);
            sqlite3_finalize(q);
            return -1;
        }
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE)
        return stdb_fail(st, e, "load schema");
    return schema_validate(&st->schema, e);
}

static int
open_db(store *st, const char *path, err_t *e)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX;
    if (sqlite3_open_v2(path, &st->db, flags, NULL) != SQLITE_OK)
        return err_set(e, 500, "UNKNOWN_EXCEPTION", "cannot open database %s: %s", path,
                       st->db ? sqlite3_errmsg(st->db) : "out of memory");
    sqlite3_busy_timeout(st->db, 5000);
    if (stdb_exec(st, "PRAGMA journal_mode=WAL", e) ||
        stdb_exec(st, "PRAGMA synchronous=NORMAL", e) ||
        stdb_exec(st, "PRAGMA temp_store=MEMORY", e) ||
        stdb_exec(st, "PRAGMA cache_size=-65536", e) || stdb_exec(st, "PRAGMA foreign_keys=OFF", e))
        return -1;
    return stdb_exec(st,
                     "CREATE TABLE IF NOT EXISTS _lf_meta (key TEXT PRIMARY KEY, value);"
                     "CREATE TABLE IF NOT EXISTS _lf_objects (name TEXT PRIMARY KEY COLLATE NOCASE,"
                     " pos INTEGER NOT NULL, def TEXT NOT NULL)",
                     e);
}

static int
init_org(store *st, err_t *e)
{
    int64_t ver = 0;
    int r = stdb_meta_get(st, "format", NULL, &ver, e);
    if (r < 0)
        return -1;
    if (r == 1 && ver != FORMAT_VERSION)
        return err_set(e, 500, "UNKNOWN_EXCEPTION",
                       "database format %lld is not supported (expected %d)", (long long)ver,
                       FORMAT_VERSION);
    char *text = NULL;
    if ((r = stdb_meta_get(st, "org_id", &text, NULL, e)) < 0)
        return -1;
    if (r == 1 && sfid_normalize(text, st->org_id) == 0 && sfid_has_prefix(st->org_id, "00D")) {
        free(text);
        text = NULL;
        if (stdb_meta_get(st, "org_name", &st->org_name, NULL, e) < 0 ||
            stdb_meta_get(st, "session_ttl_s", NULL, &st->session_ttl_s, e) < 0 ||
            stdb_meta_get(st, "daily_api_limit", NULL, &st->api_limit, e) < 0 ||
            stdb_meta_get(st, "created_ms", NULL, &st->created_ms, e) < 0 ||
            stdb_meta_get(st, "last_stamp", NULL, &st->last_stamp, e) < 0)
            return -1;
        if (st->org_name == NULL)
            st->org_name = xstrdup("localforce");
        return restore_schema(st, e);
    }
    free(text);
    /* A new org. */
    uint64_t seq;
    util_random(&seq, sizeof seq);
    sfid_make("00D", seq % 839299365868340224ULL, st->org_id);
    st->org_name = xstrdup("localforce");
    st->created_ms = util_now_ms();
    json_t *def = json_loads(user_def, 0, NULL);
    lf_object *user = schema_object_from_json("User", def, e);
    json_decref(def);
    if (user == NULL)
        return -1;
    if (stdb_tx_begin(st, e))
        return -1;
    if (tbl_install_object(st, user, e) || stdb_save_org_meta(st, e) ||
        stdb_meta_put(st, "format", NULL, FORMAT_VERSION, e)) {
        stdb_tx_rollback(st);
        return -1;
    }
    return stdb_tx_commit(st, e);
}

/* The modstamp high-water mark: the stored one or the newest record's. */
static int
init_stamp(store *st, err_t *e)
{
    for (size_t i = 0; i < st->schema.nobjects; i++) {
        sb s = SB_INIT;
        sb_puts(&s, "SELECT MAX(\"SystemModstamp\") FROM ");
        sb_sql_ident(&s, st->schema.objects[i]->name);
        sqlite3_stmt *q = stdb_prep(st, s.buf, false, e);
        sb_free(&s);
        if (q == NULL)
            return -1;
        if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int64(q, 0) > st->last_stamp)
            st->last_stamp = sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
    }
    return 0;
}

int
store_open(const char *path, store **out, err_t *e)
{
    store *st = xcalloc(1, sizeof *st);
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&st->mu, &attr);
    pthread_mutexattr_destroy(&attr);
    st->session_ttl_s = 7200;
    st->api_limit = 100000;
    if (path == NULL)
        path = ":memory:";
    if (open_db(st, path, e) || init_org(st, e) || init_stamp(st, e) || users_load(st, e)) {
        store_close(st);
        return -1;
    }
    if (st->nusers)
        memcpy(st->default_user, st->users[0]->id, 19);
    *out = st;
    return 0;
}

void
store_close(store *st)
{
    if (st == NULL)
        return;
    if (st->db) {
        while (st->tx_depth > 0)
            stdb_tx_rollback(st);
        if (st->org_name)
            stdb_meta_put(st, "last_stamp", NULL, st->last_stamp, NULL);
        for (size_t i = 0; i < st->schema.nobjects; i++)
            oi_free(st->oi[i]);
        if (sqlite3_close(st->db) != SQLITE_OK)
            log_error("store: close: %s", sqlite3_errmsg(st->db));
    }
    free(st->oi);
    schema_free(&st->schema);
    users_clear(st);
    users_apps_clear(st);
    free(st->org_name);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

sqlite3 *
store_db(store *st)
{
    return st->db;
}

const lf_schema *
store_schema(store *st)
{
    return &st->schema;
}

const char *
store_org_id(store *st)
{
    return st->org_id;
}

const char *
store_org_name(store *st)
{
    return st->org_name;
}

int64_t
store_session_ttl_s(store *st)
{
    return st->session_ttl_s;
}

int64_t
store_daily_api_limit(store *st)
{
    return st->api_limit;
}

int64_t
store_next_modstamp(store *st)
{
    store_lock(st);
    int64_t v = stdb_next_stamp(st);
    store_unlock(st);
    return v;
}

int
store_begin(store *st, err_t *e)
{
    store_lock(st);
    if (stdb_tx_begin(st, e)) {
        store_unlock(st);
        return -1;
    }
    return 0; /* the lock is held until commit or rollback */
}

/* A failed commit rolls back and ends the transaction (releasing its lock); a
 * store_rollback after it is then harmless. */
int
store_commit(store *st, err_t *e)
{
    store_lock(st);
    if (st->tx_depth <= 0) {
        store_unlock(st);
        return err_set(e, 500, "UNKNOWN_EXCEPTION", "commit without a transaction");
    }
    int rc = stdb_tx_commit(st, e);
    store_unlock(st);
    store_unlock(st); /* the lock store_begin took */
    return rc;
}

void
store_rollback(store *st)
{
    store_lock(st);
    if (st->tx_depth > 0) {
        stdb_tx_rollback(st);
        store_unlock(st); /* the lock store_begin took */
    }
    store_unlock(st);
}
