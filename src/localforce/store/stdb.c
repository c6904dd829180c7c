/*
 * stdb: the store's core, shared by its modules: struct store (the one SQLite
 * connection and its recursive lock, the schema and per-object caches, the org's
 * settings, the change hook), SQLite helpers that report failures as err_t, the
 * org's modstamp clock, transaction nesting (savepoints) with the hook's tx
 * events, the _lf_meta key/value table, and store_lock/store_unlock. Internal
 * to src/localforce/store/.
 */
#include "stdb.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "util.h"

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */

int
stdb_fail(store *st, err_t *e, const char *what)
{
    return err_set(e, 500, "UNKNOWN_EXCEPTION", "%s: %s", what, sqlite3_errmsg(st->db));
}

int
stdb_exec(store *st, const char *sql, err_t *e)
{
    char *msg = NULL;
    if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        err_set(e, 500, "UNKNOWN_EXCEPTION", "database error: %s", msg ? msg : "?");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

sqlite3_stmt *
stdb_prep(store *st, const char *sql, bool persistent, err_t *e)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v3(st->db, sql, -1, persistent ? SQLITE_PREPARE_PERSISTENT : 0, &s, NULL) !=
        SQLITE_OK) {
        stdb_fail(st, e, "prepare");
        sqlite3_finalize(s);
        return NULL;
    }
    return s;
}

size_t
stdb_utf8_chars(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            c++;
    return c;
}

int64_t
stdb_floor_minute(int64_t ms)
{
    return ms >= 0 ? ms - ms % MINUTE_MS : ms - (MINUTE_MS + ms % MINUTE_MS) % MINUTE_MS;
}

int64_t
stdb_next_stamp(store *st)
{
    /* As in Salesforce, every change one transaction makes carries the same
     * SystemModstamp; each transaction's is later than the one before. So a
     * collection of 200 records costs one millisecond of the clock, and the
     * stamps do not run ahead of real time under load. */
    if (st->tx_depth > 0 && st->tx_stamp)
        return st->tx_stamp;
    int64_t now = util_now_ms();
    st->last_stamp = now > st->last_stamp ? now : st->last_stamp + 1;
    if (st->tx_depth > 0)
        st->tx_stamp = st->last_stamp;
    return st->last_stamp;
}

/* Prefix e's message with "where: " (for errors inside a batch). */
void
stdb_err_prefix(err_t *e, const char *fmt, ...)
{
    if (e == NULL)
        return;
    sb msg = SB_INIT;
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&msg, fmt, ap);
    va_end(ap);
    sb_printf(&msg, ": %s", e->msg);
    snprintf(e->msg, sizeof e->msg, "%s", msg.buf);
    sb_free(&msg);
}

/* ------------------------------------------------------------------------ */
/* Transactions                                                             */

static void
tx_notify(store *st, lf_tx_event what, int depth)
{
    if (st->hook.tx)
        st->hook.tx(st->hook.ctx, st, what, depth);
}

int
stdb_tx_begin(store *st, err_t *e)
{
    char sql[64];
    if (st->tx_depth == 0)
        snprintf(sql, sizeof sql, "BEGIN");
    else
        snprintf(sql, sizeof sql, "SAVEPOINT lf%d", st->tx_depth);
    if (stdb_exec(st, sql, e))
        return -1;
    st->tx_depth++;
    tx_notify(st, LF_TX_BEGIN, st->tx_depth);
    return 0;
}

void
stdb_tx_rollback(store *st)
{
    char sql[96];
    if (st->tx_depth <= 0)
        return;
    st->tx_depth--;
    if (st->tx_depth == 0)
        st->tx_stamp = 0;
    if (st->tx_depth == 0)
        snprintf(sql, sizeof sql, "ROLLBACK");
    else
        snprintf(sql, sizeof sql, "ROLLBACK TO lf%d; RELEASE lf%d", st->tx_depth, st->tx_depth);
    if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        log_error("store: %s failed: %s", sql, sqlite3_errmsg(st->db));
    tx_notify(st, LF_TX_ROLLBACK, st->tx_depth + 1);
    /* The ID counters keep running: an ID a rolled-back insert used (and a client
     * may have seen) is never handed out again. */
}

int
stdb_tx_commit(store *st, err_t *e)
{
    char sql[64];
    if (st->tx_depth <= 0)
        return err_set(e, 500, "UNKNOWN_EXCEPTION", "commit without a transaction");
    if (st->tx_depth == 1)
        snprintf(sql, sizeof sql, "COMMIT");
    else
        snprintf(sql, sizeof sql, "RELEASE lf%d", st->tx_depth - 1);
    if (stdb_exec(st, sql, e)) {
        stdb_tx_rollback(st);
        return -1;
    }
    st->tx_depth--;
    if (st->tx_depth == 0)
        st->tx_stamp = 0;
    tx_notify(st, LF_TX_COMMIT, st->tx_depth + 1);
    return 0;
}

int
stdb_meta_put(store *st, const char *key, const char *text, int64_t num, err_t *e)
{
    sqlite3_stmt *q = stdb_prep(st, "INSERT OR REPLACE INTO _lf_meta(key, value) VALUES (?1, ?2)",
                                false, e);
    if (q == NULL)
        return -1;
    sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
    if (text)
        sqlite3_bind_text(q, 2, text, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(q, 2, num);
    int rc = sqlite3_step(q) == SQLITE_DONE ? 0 : stdb_fail(st, e, "save metadata");
    sqlite3_finalize(q);
    return rc;
}

/* 1 found (text copied into *text if given, number into *num), 0 absent, -1 error. */
int
stdb_meta_get(store *st, const char *key, char **text, int64_t *num, err_t *e)
{
    sqlite3_stmt *q = stdb_prep(st, "SELECT value FROM _lf_meta WHERE key = ?1", false, e);
    if (q == NULL)
        return -1;
    sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q), res = 0;
    if (rc == SQLITE_ROW && sqlite3_column_type(q, 0) != SQLITE_NULL) {
        if (text)
            *text = xstrdup((const char *)sqlite3_column_text(q, 0));
        if (num)
            *num = sqlite3_column_int64(q, 0);
        res = 1;
    } else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        res = stdb_fail(st, e, "read metadata");
    }
    sqlite3_finalize(q);
    return res;
}

int
stdb_save_org_meta(store *st, err_t *e)
{
    if (stdb_meta_put(st, "org_id", st->org_id, 0, e) ||
        stdb_meta_put(st, "org_name", st->org_name, 0, e) ||
        stdb_meta_put(st, "session_ttl_s", NULL, st->session_ttl_s, e) ||
        stdb_meta_put(st, "daily_api_limit", NULL, st->api_limit, e) ||
        stdb_meta_put(st, "created_ms", NULL, st->created_ms, e))
        return -1;
    return 0;
}

void
store_lock(store *st)
{
    pthread_mutex_lock(&st->mu);
}

void
store_unlock(store *st)
{
    pthread_mutex_unlock(&st->mu);
}
