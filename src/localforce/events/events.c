/*
 * events: the change event log behind Change Data Capture and PushTopics.
 * See events.h.
 *
 * The store's change hook calls on_change() inside the writing transaction:
 * it reads the changed record back (same connection, same transaction),
 * builds the CDC event JSON (reference 7.4) and one PushTopic event per
 * matching topic, and inserts them into _lf_events with replayIds from an
 * in-memory counter. The tx hook tracks transaction levels: sequence numbers
 * restart per outermost transaction and rewind with a rolled-back savepoint;
 * after the outermost COMMIT the newest replayId is published (an atomic)
 * and the listener is called. A rollback leaves holes in the replayIds,
 * never a reused one.
 *
 * Replay bounds: purged_upto (kept in _lf_events_state) is the highest
 * replayId ever purged; a replay from N is valid when purged_upto <= N <=
 * newest, since then every event after N is still there.
 *
 * PushTopics: the topics are read from the PushTopic table and compiled
 * (soql.h, with queryAll semantics so a deleted record still matches) when
 * first needed and again after any PushTopic change, rollback or schema
 * change. A record matches a topic when the topic's rows, restricted to the
 * record's Id, are not empty; the row is the event's sobject.
 */
#include "events.h"

#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fmt.h"
#include "log.h"
#include "soql.h"
#include "util.h"

#define DEFAULT_RETENTION_S (72LL * 3600)
#define LIVE_KEEP_MS        (10LL * 60 * 1000) /* without retention: rows kept for live delivery */
#define PURGE_EVERY_MS      60000
#define TX_DEPTH_MAX        64
#define ALL_CHANGES         "/data/ChangeEvents"

enum { NFF_ALL, NFF_REFERENCED, NFF_SELECT, NFF_WHERE };

typedef struct topic {
    char *name;    /* as stored */
    char *channel; /* "/topic/<name>" */
    soql_plan *plan;
    sqlite3_stmt *match;  /* the plan's rows WHERE "Id" = ?<nparams+1> */
    const lf_field **sel; /* root fields of the SELECT list */
    size_t nsel;
    const lf_field **where; /* fields named in the WHERE clause */
    size_t nwhere;
    int notify; /* NFF_* */
    bool on_create, on_update, on_delete, on_undelete, active;
} topic;

/* Per object: its schema id and "SELECT <every field> FROM <object> WHERE Id = ?1". */
typedef struct rowstmt {
    const lf_object *object;
    size_t nfields;
    sqlite3_stmt *stmt;
    char sid[23];
} rowstmt;

struct lf_events {
    store *st;
    lf_events_config cfg;
    int64_t keep_ms;
    bool replay_off;
    /* Everything below is guarded by the store lock. */
    int64_t next_replay;
    int64_t purged_upto;
    int64_t last_purge_ms;
    int depth; /* open transaction levels */
    int seq;   /* CDC events so far in this transaction */
    int seq_at[TX_DEPTH_MAX + 2];
    char txkey[40]; /* "" until the transaction's first event */
    int64_t commit_no;
    int64_t ntx;
    bool tx_events; /* events written, not yet published */
    sqlite3_stmt *ins, *fetch_all, *fetch_one;
    rowstmt *rows;
    size_t nrows, caprows;
    topic *topics;
    size_t ntopics;
    bool topics_loaded;
    size_t schema_sig;
    void (*listener)(void *ctx);
    void *lctx;
    atomic_llong last; /* newest committed replayId */
};

static const char pushtopic_def[] =
    "{\"label\":\"Push Topic\",\"label_plural\":\"Push Topics\",\"key_prefix\":\"0IF\",\"fields\":{"
    "\"Name\":{\"type\":\"string\",\"length\":25,\"required\":true,\"unique\":true,"
    "\"label\":\"Topic Name\"},"
    "\"Query\":{\"type\":\"string\",\"length\":1300,\"required\":true,\"label\":\"SOQL Query\"},"
    "\"ApiVersion\":{\"type\":\"double\",\"precision\":18,\"scale\":1,\"required\":true,"
    "\"label\":\"API Version\"},"
    "\"Description\":{\"type\":\"string\",\"length\":400,\"label\":\"Description\"},"
    "\"IsActive\":{\"type\":\"boolean\",\"default\":true,\"label\":\"Is Active\"},"
    "\"NotifyForFields\":{\"type\":\"picklist\",\"values\":[\"All\",\"Referenced\",\"Select\","
    "\"Where\"],\"restricted\":true,\"default\":\"Referenced\",\"label\":\"Notify For Fields\"},"
    "\"NotifyForOperationCreate\":{\"type\":\"boolean\",\"default\":true,\"label\":\"Create\"},"
    "\"NotifyForOperationUpdate\":{\"type\":\"boolean\",\"default\":true,\"label\":\"Update\"},"
    "\"NotifyForOperationDelete\":{\"type\":\"boolean\",\"default\":true,\"label\":\"Delete\"},"
    "\"NotifyForOperationUndelete\":{\"type\":\"boolean\",\"default\":true,"
    "\"label\":\"Undelete\"}}}";

static const char *const change_names[] = {"CREATE", "UPDATE", "DELETE", "UNDELETE"};
static const char *const topic_types[] = {"created", "updated", "deleted", "undeleted"};

/* ----- small helpers ------------------------------------------------------ */

static int
db_fail(lf_events *ev, err_t *e, const char *what)
{
    const char *m = sqlite3_errmsg(store_db(ev->st));
    log_error("events: %s: %s", what, m);
    return err_set(e, 500, "UNKNOWN_EXCEPTION", "change events: %s: %s", what, m);
}

static sqlite3_stmt *
prepare(lf_events *ev, const char *sql, bool persistent, err_t *e)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v3(store_db(ev->st), sql, -1, persistent ? SQLITE_PREPARE_PERSISTENT : 0,
                           &s, NULL) != SQLITE_OK) {
        db_fail(ev, e, "prepare");
        sqlite3_finalize(s);
        return NULL;
    }
    return s;
}

static bool
is_pushtopic(const lf_object *o)
{
    return strcasecmp(o->name, "PushTopic") == 0;
}

/* SQL NULL, or an empty text (which Salesforce shows as null). */
static bool
col_is_null(sqlite3_stmt *s, int col)
{
    int t = sqlite3_column_type(s, col);
    return t == SQLITE_NULL || (t == SQLITE_TEXT && sqlite3_column_bytes(s, col) == 0);
}

/* A value as CDC writes it: as REST does, but datetimes in UTC with a Z. */
static void
cdc_value(sb *out, const lf_field *f, sqlite3_stmt *s, int col)
{
    if (lf_types[f->type].storage == ST_DATETIME && !col_is_null(s, col)) {
        char buf[32];
        util_fmt_datetime_z(sqlite3_column_int64(s, col), buf);
        sb_json_str(out, buf);
        return;
    }
    fmt_value(out, f, s, col);
}

void
events_cdc_channel(const char *object, sb *out)
{
    size_t n = strlen(object);
    sb_puts(out, "/data/");
    if (n > 3 && strcasecmp(object + n - 3, "__c") == 0)
        sb_append(out, object, n - 1); /* Foo__c -> Foo__ */
    else
        sb_puts(out, object);
    sb_puts(out, "ChangeEvent");
}

/* A stable 22-character schema id per object layout (name, fields, types). */
static void
schema_id(const lf_object *o, char out[23])
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint64_t h[2] = {0xcbf29ce484222325ULL, 0x84222325cbf29ce4ULL};
    for (int k = 0; k < 2; k++) {
        for (const char *p = o->name; *p; p++)
            h[k] = (h[k] ^ (unsigned char)*p) * 0x100000001b3ULL;
        for (size_t i = 0; i < o->nfields; i++) {
            for (const char *p = o->fields[i]->name; *p; p++)
                h[k] = (h[k] ^ (unsigned char)*p) * 0x100000001b3ULL;
            h[k] = (h[k] ^ (unsigned)(o->fields[i]->type + 1 + k)) * 0x100000001b3ULL;
        }
    }
    unsigned char b[18] = {0};
    for (int i = 0; i < 8; i++) {
        b[i] = (unsigned char)(h[0] >> (8 * i));
        b[8 + i] = (unsigned char)(h[1] >> (8 * i));
    }
    for (int i = 0; i < 22; i++) {
        int bit = i * 6, byte = bit / 8, off = bit % 8;
        unsigned v = ((unsigned)b[byte] << 8 | b[byte + 1]) >> (10 - off);
        out[i] = b64[v & 63];
    }
    out[22] = '\0';
}

static size_t
schema_signature(const lf_schema *s)
{
    size_t sig = s->nobjects * 1000003u;
    for (size_t i = 0; i < s->nobjects; i++)
        sig = sig * 31u + s->objects[i]->nfields + (size_t)(uintptr_t)s->objects[i];
    return sig;
}

/* ----- state ---------------------------------------------------------------- */

static int
state_put(lf_events *ev, const char *key, int64_t v, err_t *e)
{
    sqlite3_stmt *s = prepare(ev,
                              "INSERT INTO _lf_events_state (key, value) VALUES (?1, ?2) "
                              "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                              false, e);
    if (s == NULL)
        return -1;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, v);
    int rc = sqlite3_step(s) == SQLITE_DONE ? 0 : db_fail(ev, e, "save state");
    sqlite3_finalize(s);
    return rc;
}

static int64_t
single_int(lf_events *ev, const char *sql, int64_t bind, int64_t dflt)
{
    sqlite3_stmt *s = prepare(ev, sql, false, NULL);
    int64_t v = dflt;
    if (s == NULL)
        return dflt;
    if (strchr(sql, '?'))
        sqlite3_bind_int64(s, 1, bind);
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

/* Purges run at most once a minute, or once per retention period when that
 * is shorter, so a replay id past a short retention is refused promptly. */
static bool
purge_due(const lf_events *ev, int64_t now)
{
    int64_t every = ev->keep_ms < PURGE_EVERY_MS ? ev->keep_ms : PURGE_EVERY_MS;
    return now - ev->last_purge_ms >= every;
}

/* Delete events past retention (store lock held; inside a transaction or not). */
static void
purge_locked(lf_events *ev, int64_t now)
{
    ev->last_purge_ms = now;
    /* created grows with replayId, so the scan stops at the first row kept:
     * its cost is the rows purged, and no index on created is needed. */
    int64_t keep = single_int(ev,
                              "SELECT replayId FROM _lf_events WHERE created >= ?1 "
                              "ORDER BY replayId LIMIT 1",
                              now - ev->keep_ms, 0);
    int64_t m = keep > 0 ? keep - 1 : single_int(ev, "SELECT max(replayId) FROM _lf_events", 0, 0);
    if (m <= ev->purged_upto && keep > 0)
        return;
    if (m <= 0)
        return;
    sqlite3_stmt *d = prepare(ev, "DELETE FROM _lf_events WHERE replayId <= ?1", false, NULL);
    if (d == NULL)
        return;
    sqlite3_bind_int64(d, 1, m);
    int rc = sqlite3_step(d);
    sqlite3_finalize(d);
    if (rc != SQLITE_DONE) {
        db_fail(ev, NULL, "purge");
        return;
    }
    if (m > ev->purged_upto) {
        ev->purged_upto = m;
        state_put(ev, "purged_upto", m, NULL);
    }
}

/* ----- the record as stored -------------------------------------------------- */

static void
rows_clear(lf_events *ev)
{
    for (size_t i = 0; i < ev->nrows; i++)
        sqlite3_finalize(ev->rows[i].stmt);
    ev->nrows = 0;
}

/* The cache entry of an object (its layout may have changed since). */
static rowstmt *
row_cache(lf_events *ev, const lf_object *o)
{
    rowstmt *r = NULL;
    for (size_t i = 0; i < ev->nrows && r == NULL; i++)
        if (ev->rows[i].object == o)
            r = &ev->rows[i];
    if (r && r->nfields != o->nfields) {
        sqlite3_finalize(r->stmt);
        r->stmt = NULL;
        schema_id(o, r->sid);
        r->nfields = o->nfields;
    }
    if (r == NULL) {
        if (ev->nrows == ev->caprows) {
            ev->caprows = ev->caprows ? ev->caprows * 2 : 8;
            ev->rows = xrealloc(ev->rows, ev->caprows * sizeof *ev->rows);
        }
        r = &ev->rows[ev->nrows++];
        memset(r, 0, sizeof *r);
        r->object = o;
        r->nfields = o->nfields;
        schema_id(o, r->sid);
    }
    return r;
}

/* The record's row (every field, in describe order), stepped; NULL if missing. */
static sqlite3_stmt *
read_row(lf_events *ev, const lf_object *o, const char *id, err_t *e)
{
    rowstmt *r = row_cache(ev, o);
    if (r->stmt == NULL) {
        sb q = SB_INIT;
        sb_puts(&q, "SELECT ");
        for (size_t i = 0; i < o->nfields; i++) {
            if (i)
                sb_putc(&q, ',');
            sb_sql_ident(&q, o->fields[i]->name);
        }
        sb_puts(&q, " FROM ");
        sb_sql_ident(&q, o->name);
        sb_puts(&q, " WHERE \"Id\" = ?1");
        r->stmt = prepare(ev, q.buf, true, e);
        sb_free(&q);
        if (r->stmt == NULL)
            return NULL;
    }
    sqlite3_bind_text(r->stmt, 1, id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(r->stmt);
    if (rc == SQLITE_ROW)
        return r->stmt;
    sqlite3_reset(r->stmt);
    if (rc == SQLITE_DONE)
        err_set(e, 500, "UNKNOWN_EXCEPTION", "change events: %s %s is not there", o->name, id);
    else
        db_fail(ev, e, "read the changed record");
    return NULL;
}

static int
field_index(const lf_object *o, const char *name)
{
    for (size_t i = 0; i < o->nfields; i++)
        if (strcmp(o->fields[i]->name, name) == 0)
            return (int)i;
    return -1;
}

/* Contact-style objects: Name is made of FirstName and LastName and is
 * written as the compound {"FirstName":..,"LastName":..}. */
static bool
compound_name(const lf_object *o, int *ixn, int *ixf, int *ixl)
{
    *ixn = field_index(o, "Name");
    *ixf = field_index(o, "FirstName");
    *ixl = field_index(o, "LastName");
    return *ixn >= 0 && *ixf >= 0 && *ixl >= 0 && !o->fields[*ixn]->createable &&
           !o->fields[*ixn]->updateable;
}

/* Never in a change event. */
static bool
skipped_field(const lf_field *f)
{
    return strcmp(f->name, "Id") == 0 || strcmp(f->name, "IsDeleted") == 0 ||
           strcmp(f->name, "SystemModstamp") == 0;
}

/* ----- CDC events -------------------------------------------------------------- */

static void
new_transaction(lf_events *ev, int64_t commit_ms)
{
    unsigned char r[16];
    util_random(r, sizeof r);
    static const char hex[] = "0123456789abcdef";
    char *p = ev->txkey;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[r[i] >> 4];
        *p++ = hex[r[i] & 15];
    }
    *p = '\0';
    ev->ntx++;
    ev->commit_no = commit_ms * 1000 + ev->ntx % 1000;
}

static int
insert_event(lf_events *ev, int64_t replay, const char *channel, bool cdc, const sb *data, err_t *e)
{
    if (ev->ins == NULL &&
        (ev->ins = prepare(ev,
                           "INSERT INTO _lf_events (replayId, channel, cdc, created, data) "
                           "VALUES (?1, ?2, ?3, ?4, ?5)",
                           true, e)) == NULL)
        return -1;
    sqlite3_bind_int64(ev->ins, 1, replay);
    sqlite3_bind_text(ev->ins, 2, channel, -1, SQLITE_STATIC);
    sqlite3_bind_int(ev->ins, 3, cdc);
    sqlite3_bind_int64(ev->ins, 4, util_now_ms());
    sqlite3_bind_text(ev->ins, 5, sb_str(data), (int)data->len, SQLITE_STATIC);
    int rc = sqlite3_step(ev->ins);
    sqlite3_reset(ev->ins);
    sqlite3_clear_bindings(ev->ins);
    return rc == SQLITE_DONE ? 0 : db_fail(ev, e, "write an event");
}

/* The fields of the event body, and the header's changedFields / nulledFields. */
static void
cdc_body(const lf_object *o, const lf_change *c, sqlite3_stmt *row, sb *body, sb *changed,
         sb *nulled)
{
    int ixn, ixf, ixl;
    bool compound = compound_name(o, &ixn, &ixf, &ixl);
    unsigned char *pick = xcalloc(o->nfields, 1);
    if (c->type == LF_CHANGE_UPDATE) {
        for (size_t k = 0; k < c->nchanged; k++) {
            int ix = field_index(o, c->changed[k]->name);
            if (ix >= 0)
                pick[ix] = 1;
        }
        int lm = field_index(o, "LastModifiedDate");
        if (lm >= 0)
            pick[lm] = 1; /* always: the update moved it */
    } else {
        for (size_t i = 0; i < o->nfields; i++)
            pick[i] = !col_is_null(row, (int)i);
    }
    bool update = c->type == LF_CHANGE_UPDATE;
    for (size_t i = 0; i < o->nfields; i++) {
        const lf_field *f = o->fields[i];
        int ix = (int)i;
        if (skipped_field(f))
            continue;
        if (compound && (ix == ixf || ix == ixl))
            continue; /* written inside Name */
        if (compound && ix == ixn) {
            if (!pick[ixf] && !pick[ixl])
                continue;
            sb_puts(body, ",\"Name\":{");
            bool first = true;
            for (int part = 0; part < 2; part++) {
                int px = part ? ixl : ixf;
                if (!pick[px])
                    continue;
                const char *pn = o->fields[px]->name;
                sb_printf(body, "%s\"%s\":", first ? "" : ",", pn);
                cdc_value(body, o->fields[px], row, px);
                first = false;
                if (update) {
                    sb_printf(changed, "%s\"Name.%s\"", changed->len ? "," : "", pn);
                    if (col_is_null(row, px))
                        sb_printf(nulled, "%s\"Name.%s\"", nulled->len ? "," : "", pn);
                }
            }
            sb_putc(body, '}');
            continue;
        }
        if (!pick[i])
            continue;
        sb_putc(body, ',');
        sb_json_str(body, f->name);
        sb_putc(body, ':');
        cdc_value(body, f, row, ix);
        if (update) {
            if (changed->len)
                sb_putc(changed, ',');
            sb_json_str(changed, f->name);
            if (col_is_null(row, ix)) {
                if (nulled->len)
                    sb_putc(nulled, ',');
                sb_json_str(nulled, f->name);
            }
        }
    }
    free(pick);
}

static int
cdc_event(lf_events *ev, const lf_change *c, err_t *e)
{
    const lf_object *o = c->object;
    sqlite3_stmt *row = NULL;
    bool full = !ev->cfg.gap_events && c->type != LF_CHANGE_DELETE;
    if (full && (row = read_row(ev, o, c->id, e)) == NULL)
        return -1;
    sb body = SB_INIT, changed = SB_INIT, nulled = SB_INIT;
    if (row) {
        cdc_body(o, c, row, &body, &changed, &nulled);
        sqlite3_reset(row);
    }
    int64_t replay = ev->next_replay++;
    const char *sid = row_cache(ev, o)->sid;
    sb d = SB_INIT;
    sb_puts(&d, "{\"schema\":\"");
    sb_puts(&d, sid);
    sb_puts(&d, "\",\"payload\":{\"ChangeEventHeader\":{\"entityName\":");
    sb_json_str(&d, o->name);
    sb_puts(&d, ",\"recordIds\":[");
    sb_json_str(&d, c->id);
    sb_puts(&d, ev->cfg.gap_events ? "],\"changeType\":\"GAP_" : "],\"changeType\":\"");
    sb_puts(&d, change_names[c->type]);
    sb_puts(&d, "\",\"changeOrigin\":");
    sb_json_str(&d, c->origin ? c->origin : "");
    sb_puts(&d, ",\"transactionKey\":\"");
    sb_puts(&d, ev->txkey);
    sb_puts(&d, "\",\"sequenceNumber\":");
    sb_put_i64(&d, ev->seq);
    sb_puts(&d, ",\"commitTimestamp\":");
    sb_put_i64(&d, c->commit_ms);
    sb_puts(&d, ",\"commitNumber\":");
    sb_put_i64(&d, ev->commit_no);
    sb_puts(&d, ",\"commitUser\":");
    if (c->user_id)
        sb_json_str(&d, c->user_id);
    else
        sb_puts(&d, "null");
    sb_puts(&d, ",\"nulledFields\":[");
    sb_append(&d, sb_str(&nulled), nulled.len);
    sb_puts(&d, "],\"diffFields\":[],\"changedFields\":[");
    sb_append(&d, sb_str(&changed), changed.len);
    sb_puts(&d, "]}");
    sb_append(&d, sb_str(&body), body.len);
    sb_puts(&d, "},\"event\":{\"replayId\":");
    sb_put_i64(&d, replay);
    sb_puts(&d, "}}");
    sb ch = SB_INIT;
    events_cdc_channel(o->name, &ch);
    int rc = insert_event(ev, replay, ch.buf, true, &d, e);
    sb_free(&ch);
    sb_free(&d);
    sb_free(&body);
    sb_free(&changed);
    sb_free(&nulled);
    return rc;
}

/* ----- PushTopics ------------------------------------------------------------- */

static void
topic_free(topic *t)
{
    free(t->name);
    free(t->channel);
    soql_plan_free(t->plan);
    sqlite3_finalize(t->match);
    free(t->sel);
    free(t->where);
    memset(t, 0, sizeof *t);
}

static void
topics_clear(lf_events *ev)
{
    for (size_t i = 0; i < ev->ntopics; i++)
        topic_free(&ev->topics[i]);
    free(ev->topics);
    ev->topics = NULL;
    ev->ntopics = 0;
    ev->topics_loaded = false;
}

static void
add_field_once(const lf_field ***list, size_t *n, const lf_field *f)
{
    for (size_t i = 0; i < *n; i++)
        if ((*list)[i] == f)
            return;
    *list = xrealloc(*list, (*n + 1) * sizeof **list);
    (*list)[(*n)++] = f;
}

static bool
word_is(const char *p, size_t n, const char *w)
{
    return strlen(w) == n && strncasecmp(p, w, n) == 0;
}

/* The fields a query's WHERE clause names (a token scan; literals skipped). */
static void
scan_where(topic *t, const char *q)
{
    const lf_object *o = t->plan->object;
    bool in_where = false;
    const char *p = q;
    while (*p) {
        if (*p == '\'') {
            for (p++; *p && *p != '\''; p++)
                if (*p == '\\' && p[1])
                    p++;
            if (*p)
                p++;
            continue;
        }
        if (isalpha((unsigned char)*p) || *p == '_') {
            const char *s = p;
            while (isalnum((unsigned char)*p) || *p == '_' || *p == '.')
                p++;
            size_t n = (size_t)(p - s);
            if (!in_where) {
                in_where = word_is(s, n, "WHERE");
                continue;
            }
            if (word_is(s, n, "ORDER") || word_is(s, n, "LIMIT") || word_is(s, n, "OFFSET") ||
                word_is(s, n, "GROUP"))
                break;
            char name[128];
            if (n < sizeof name) {
                memcpy(name, s, n);
                name[n] = '\0';
                const lf_field *f = object_field(o, name);
                if (f)
                    add_field_once(&t->where, &t->nwhere, f);
            }
            continue;
        }
        p++;
    }
}

/* Compile a topic's query and its one-record match statement. */
static int
topic_compile(lf_events *ev, const char *query, topic *t, err_t *e)
{
    if (query == NULL || *query == '\0') {
        err_set(e, 400, "INVALID_FIELD", "The PushTopic query is empty");
        return err_fields(e, "Query");
    }
    if (soql_compile(store_schema(ev->st), query, true, util_now_ms(), &t->plan, e) != 0)
        return -1;
    const soql_plan *p = t->plan;
    const char *why = NULL;
    if (p->count_only)
        why = "aggregate queries are not supported";
    else if (p->nrels > 0)
        why = "relationships are not supported; reference the ID field instead";
    else if (p->limit >= 0 || p->offset > 0)
        why = "LIMIT and OFFSET are not supported";
    else if (is_pushtopic(p->object))
        why = "PushTopic itself cannot be a topic's object";
    if (why) {
        err_set(e, 400, "INVALID_FIELD", "Invalid PushTopic query: %s", why);
        return err_fields(e, "Query");
    }
    for (int i = 0; i < p->ncols; i++)
        if (p->cols[i].rel < 0)
            add_field_once(&t->sel, &t->nsel, p->cols[i].field);
    scan_where(t, query);
    sb q = SB_INIT;
    sb_printf(&q, "SELECT * FROM (%s) WHERE \"Id\" = ?%d", p->sql, p->nparams + 1);
    t->match = prepare(ev, q.buf, true, e);
    sb_free(&q);
    if (t->match == NULL)
        return -1;
    (void)soql_bind(t->match, p);
    return 0;
}

static const char *
col_text(sqlite3_stmt *s, int col)
{
    const char *t = (const char *)sqlite3_column_text(s, col);
    return t ? t : "";
}

/* (Re)load the topics if a PushTopic or the schema changed since last time. */
static void
topics_load(lf_events *ev)
{
    const lf_schema *s = store_schema(ev->st);
    size_t sig = schema_signature(s);
    if (ev->topics_loaded && sig == ev->schema_sig)
        return;
    topics_clear(ev);
    ev->topics_loaded = true;
    ev->schema_sig = sig;
    if (schema_object(s, "PushTopic") == NULL)
        return;
    sqlite3_stmt *q = prepare(ev,
                              "SELECT \"Name\", \"Query\", \"NotifyForFields\", "
                              "\"NotifyForOperationCreate\", \"NotifyForOperationUpdate\", "
                              "\"NotifyForOperationDelete\", \"NotifyForOperationUndelete\", "
                              "\"IsActive\" FROM \"PushTopic\" WHERE \"IsDeleted\" = 0 "
                              "ORDER BY \"_rowid\"",
                              false, NULL);
    if (q == NULL)
        return;
    size_t cap = 0;
    while (sqlite3_step(q) == SQLITE_ROW) {
        topic t = {0};
        err_t e;
        const char *name = col_text(q, 0);
        if (topic_compile(ev, col_text(q, 1), &t, &e) != 0) {
            log_warn("events: PushTopic %s: its query no longer compiles: %s", name, e.msg);
            topic_free(&t);
            continue;
        }
        t.name = xstrdup(name);
        sb ch = SB_INIT;
        sb_printf(&ch, "/topic/%s", name);
        t.channel = sb_steal(&ch);
        const char *nff = col_text(q, 2);
        t.notify = strcasecmp(nff, "All") == 0      ? NFF_ALL
                   : strcasecmp(nff, "Select") == 0 ? NFF_SELECT
                   : strcasecmp(nff, "Where") == 0  ? NFF_WHERE
                                                    : NFF_REFERENCED;
        t.on_create = sqlite3_column_int(q, 3) != 0;
        t.on_update = sqlite3_column_int(q, 4) != 0;
        t.on_delete = sqlite3_column_int(q, 5) != 0;
        t.on_undelete = sqlite3_column_int(q, 6) != 0;
        t.active = sqlite3_column_int(q, 7) != 0;
        if (ev->ntopics == cap) {
            cap = cap ? cap * 2 : 4;
            ev->topics = xrealloc(ev->topics, cap * sizeof *ev->topics);
        }
        ev->topics[ev->ntopics++] = t;
    }
    sqlite3_finalize(q);
}

static bool
in_list(const lf_field *const *list, size_t n, const lf_field *f)
{
    for (size_t i = 0; i < n; i++)
        if (list[i] == f || strcmp(list[i]->name, f->name) == 0)
            return true;
    return false;
}

/* Does the change concern the topic (before looking at the record)? */
static bool
topic_wants(const topic *t, const lf_change *c)
{
    if (!t->active || t->plan->object != c->object)
        return false;
    switch (c->type) {
    case LF_CHANGE_CREATE: return t->on_create;
    case LF_CHANGE_DELETE: return t->on_delete;
    case LF_CHANGE_UNDELETE: return t->on_undelete;
    case LF_CHANGE_UPDATE: break;
    }
    if (!t->on_update)
        return false;
    if (t->notify == NFF_ALL || (t->notify == NFF_WHERE && t->nwhere == 0))
        return true;
    for (size_t i = 0; i < c->nchanged; i++) {
        const lf_field *f = c->changed[i];
        if (t->notify != NFF_WHERE && in_list(t->sel, t->nsel, f))
            return true;
        if (t->notify != NFF_SELECT && in_list(t->where, t->nwhere, f))
            return true;
    }
    return false;
}

static int
topic_event(lf_events *ev, topic *t, const lf_change *c, err_t *e)
{
    sqlite3_stmt *m = t->match;
    sqlite3_bind_text(m, t->plan->nparams + 1, c->id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(m);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(m);
        return rc == SQLITE_DONE ? 0 : db_fail(ev, e, "match a PushTopic");
    }
    int64_t replay = ev->next_replay++;
    char when[32];
    util_fmt_datetime_z(c->commit_ms, when);
    sb d = SB_INIT;
    sb_printf(&d,
              "{\"event\":{\"createdDate\":\"%s\",\"replayId\":%lld,\"type\":\"%s\"},"
              "\"sobject\":{\"Id\":",
              when, (long long)replay, topic_types[c->type]);
    sb_json_str(&d, col_text(m, 0));
    for (int i = 0; i < t->plan->ncols; i++) {
        const soql_col *col = &t->plan->cols[i];
        if (col->rel >= 0 || strcmp(col->field->name, "Id") == 0)
            continue;
        sb_putc(&d, ',');
        sb_json_str(&d, col->field->name);
        sb_putc(&d, ':');
        fmt_value(&d, col->field, m, col->sql_col);
    }
    sb_puts(&d, "}}");
    sqlite3_reset(m);
    rc = insert_event(ev, replay, t->channel, false, &d, e);
    sb_free(&d);
    return rc;
}

static int
topic_events(lf_events *ev, const lf_change *c, err_t *e)
{
    topics_load(ev);
    for (size_t i = 0; i < ev->ntopics; i++)
        if (topic_wants(&ev->topics[i], c) && topic_event(ev, &ev->topics[i], c, e))
            return -1;
    return 0;
}

/* A PushTopic was saved: refuse a query that cannot be a topic's. */
static int
pushtopic_changed(lf_events *ev, const lf_change *c, err_t *e)
{
    ev->topics_loaded = false;
    if (c->type == LF_CHANGE_DELETE)
        return 0;
    sqlite3_stmt *row = read_row(ev, c->object, c->id, e);
    if (row == NULL)
        return -1;
    int ix = field_index(c->object, "Query");
    char *query = ix >= 0 ? xstrdup(col_text(row, ix)) : NULL;
    sqlite3_reset(row);
    topic t = {0};
    int rc = topic_compile(ev, query, &t, e);
    topic_free(&t);
    free(query);
    return rc;
}

/* ----- the store's hooks -------------------------------------------------------- */

static void
publish(lf_events *ev)
{
    atomic_store(&ev->last, ev->next_replay - 1);
    if (ev->listener)
        ev->listener(ev->lctx);
}

static int
on_change(void *ctx, store *st, const lf_change *c, err_t *e)
{
    lf_events *ev = ctx;
    (void)st;
    if (is_pushtopic(c->object))
        return pushtopic_changed(ev, c, e);
    if (ev->txkey[0] == '\0')
        new_transaction(ev, c->commit_ms);
    ev->seq++;
    if ((!c->object->no_cdc && cdc_event(ev, c, e)) || topic_events(ev, c, e))
        return -1;
    int64_t now = util_now_ms();
    if (purge_due(ev, now))
        purge_locked(ev, now);
    if (ev->depth == 0) { /* not in a transaction: the write is already committed */
        publish(ev);
        ev->txkey[0] = '\0';
        ev->seq = 0;
    } else {
        ev->tx_events = true;
    }
    return 0;
}

static void
on_tx(void *ctx, store *st, lf_tx_event what, int depth)
{
    lf_events *ev = ctx;
    (void)st;
    switch (what) {
    case LF_TX_BEGIN:
        ev->depth = depth;
        if (depth == 1) {
            ev->seq = 0;
            ev->txkey[0] = '\0';
            ev->tx_events = false;
        }
        if (depth >= 0 && depth <= TX_DEPTH_MAX)
            ev->seq_at[depth] = ev->seq;
        break;
    case LF_TX_ROLLBACK:
        ev->depth = depth - 1;
        if (depth >= 0 && depth <= TX_DEPTH_MAX)
            ev->seq = ev->seq_at[depth];
        /* Objects, fields and PushTopics may be gone with it. */
        rows_clear(ev);
        topics_clear(ev);
        if (depth == 1) {
            ev->tx_events = false;
            ev->txkey[0] = '\0';
        }
        break;
    case LF_TX_COMMIT:
        ev->depth = depth - 1;
        if (depth == 1) {
            if (ev->tx_events)
                publish(ev);
            ev->tx_events = false;
            ev->txkey[0] = '\0';
        }
        break;
    }
}

/* Only a PushTopic's save can be refused (a query that cannot be a topic's). */
static bool
refuses(void *ctx, const lf_object *o)
{
    (void)ctx;
    return is_pushtopic(o);
}

/* ----- public ------------------------------------------------------------------- */

lf_events *
events_new(store *st, const lf_events_config *cfg, err_t *e)
{
    lf_events *ev = xcalloc(1, sizeof *ev);
    ev->st = st;
    if (cfg)
        ev->cfg = *cfg;
    if (ev->cfg.retention_s < 0) {
        ev->replay_off = true;
        ev->keep_ms = LIVE_KEEP_MS;
    } else {
        ev->keep_ms = (ev->cfg.retention_s ? ev->cfg.retention_s : DEFAULT_RETENTION_S) * 1000;
    }
    store_lock(st);
    char *msg = NULL;
    if (sqlite3_exec(store_db(st),
                     "CREATE TABLE IF NOT EXISTS _lf_events (replayId INTEGER PRIMARY KEY,"
                     " channel TEXT NOT NULL, cdc INTEGER NOT NULL, created INTEGER NOT NULL,"
                     " data TEXT NOT NULL);"
                     "CREATE TABLE IF NOT EXISTS _lf_events_state (key TEXT PRIMARY KEY, value)",
                     NULL, NULL, &msg) != SQLITE_OK) {
        err_set(e, 500, "UNKNOWN_EXCEPTION", "change events: cannot create tables: %s",
                msg ? msg : "?");
        sqlite3_free(msg);
        store_unlock(st);
        free(ev);
        return NULL;
    }
    ev->purged_upto = single_int(ev, "SELECT value FROM _lf_events_state WHERE key = 'purged_upto'",
                                 0, 0);
    int64_t maxid = single_int(ev, "SELECT max(replayId) FROM _lf_events", 0, 0);
    ev->next_replay = (maxid > ev->purged_upto ? maxid : ev->purged_upto) + 1;
    atomic_init(&ev->last, ev->next_replay - 1);
    if (schema_object(store_schema(st), "PushTopic") == NULL) {
        json_t *def = json_loads(pushtopic_def, 0, NULL);
        int rc = store_add_object(st, "PushTopic", def, e);
        json_decref(def);
        if (rc != 0) {
            store_unlock(st);
            free(ev);
            return NULL;
        }
    }
    lf_change_hook h = {.change = on_change, .tx = on_tx, .refuses = refuses, .ctx = ev};
    store_set_change_hook(st, &h);
    purge_locked(ev, util_now_ms());
    store_unlock(st);
    return ev;
}

void
events_free(lf_events *ev)
{
    if (ev == NULL)
        return;
    store_lock(ev->st);
    store_set_change_hook(ev->st, NULL);
    sqlite3_finalize(ev->ins);
    sqlite3_finalize(ev->fetch_all);
    sqlite3_finalize(ev->fetch_one);
    rows_clear(ev);
    topics_clear(ev);
    store_unlock(ev->st);
    free(ev->rows);
    free(ev);
}

void
events_set_listener(lf_events *ev, void (*fn)(void *ctx), void *ctx)
{
    store_lock(ev->st);
    ev->listener = fn;
    ev->lctx = ctx;
    store_unlock(ev->st);
}

int64_t
events_last(lf_events *ev)
{
    return atomic_load(&ev->last);
}

void
events_purge(lf_events *ev)
{
    store_lock(ev->st);
    purge_locked(ev, util_now_ms());
    store_unlock(ev->st);
}

static int
no_channel(err_t *e, const char *channel)
{
    return err_set(e, 400, "NOT_FOUND",
                   "The channel you requested to subscribe to does not exist {%.200s}", channel);
}

int
events_channel_key(lf_events *ev, const char *channel, char *key, size_t keysz, err_t *e)
{
    if (channel == NULL)
        return no_channel(e, "");
    sb k = SB_INIT;
    int rc = 0;
    if (strcmp(channel, ALL_CHANGES) == 0) {
        sb_puts(&k, ALL_CHANGES);
    } else if (strncmp(channel, "/data/", 6) == 0) {
        const char *base = channel + 6;
        size_t n = strlen(base), sfx = strlen("ChangeEvent");
        char name[128];
        if (n <= sfx || n - sfx + 2 > sizeof name || strcmp(base + n - sfx, "ChangeEvent") != 0 ||
            strchr(base, '/'))
            return no_channel(e, channel);
        n -= sfx;
        memcpy(name, base, n);
        name[n] = '\0';
        if (n > 2 && strcmp(name + n - 2, "__") == 0)
            strcat(name, "c");
        store_lock(ev->st);
        const lf_object *o = schema_object(store_schema(ev->st), name);
        if (o && !is_pushtopic(o) && !o->no_cdc)
            events_cdc_channel(o->name, &k);
        else
            rc = no_channel(e, channel);
        store_unlock(ev->st);
    } else if (strncmp(channel, "/topic/", 7) == 0 && channel[7] && !strchr(channel + 7, '/')) {
        store_lock(ev->st);
        topics_load(ev);
        rc = no_channel(e, channel);
        for (size_t i = 0; i < ev->ntopics; i++)
            if (strcasecmp(ev->topics[i].name, channel + 7) == 0) {
                sb_puts(&k, ev->topics[i].channel);
                rc = 0;
                break;
            }
        store_unlock(ev->st);
    } else {
        rc = no_channel(e, channel);
    }
    if (rc == 0 && k.len >= keysz)
        rc = no_channel(e, channel);
    if (rc == 0)
        memcpy(key, k.buf, k.len + 1);
    sb_free(&k);
    return rc;
}

int
events_replay_start(lf_events *ev, int64_t replay, int64_t *after, err_t *e)
{
    store_lock(ev->st);
    int64_t now = util_now_ms();
    if (ev->depth == 0 && purge_due(ev, now))
        purge_locked(ev, now);
    int64_t last = atomic_load(&ev->last);
    int rc = 0;
    if (replay == -1)
        *after = last;
    else if (replay == -2)
        *after = ev->replay_off ? last : ev->purged_upto;
    else if (replay >= 0 && !ev->replay_off && replay >= ev->purged_upto && replay <= last)
        *after = replay;
    else
        rc = err_set(e, 400, "INVALID_REPLAY_ID",
                     "The replayId {%lld} you provided was invalid. Please provide a valid ID, -2 "
                     "to replay all events, or -1 to replay only new events.",
                     (long long)replay);
    store_unlock(ev->st);
    return rc;
}

int
events_fetch(lf_events *ev, const char *key, const char *channel, int64_t after, int max, sb *out,
             int *count, int64_t *next, err_t *e)
{
    store_lock(ev->st);
    int64_t upto = atomic_load(&ev->last);
    bool all = strcmp(key, ALL_CHANGES) == 0;
    sqlite3_stmt **sp = all ? &ev->fetch_all : &ev->fetch_one;
    if (*sp == NULL)
        *sp = prepare(ev,
                      all ? "SELECT replayId, data FROM _lf_events WHERE replayId > ?1 AND "
                            "replayId <= ?2 AND cdc = 1 ORDER BY replayId LIMIT ?3"
                          : "SELECT replayId, data FROM _lf_events WHERE channel = ?4 AND "
                            "replayId > ?1 AND replayId <= ?2 ORDER BY replayId LIMIT ?3",
                      true, e);
    sqlite3_stmt *s = *sp;
    if (s == NULL) {
        store_unlock(ev->st);
        return -1;
    }
    sqlite3_bind_int64(s, 1, after);
    sqlite3_bind_int64(s, 2, upto);
    sqlite3_bind_int(s, 3, max);
    if (!all)
        sqlite3_bind_text(s, 4, key, -1, SQLITE_STATIC);
    int n = 0, rc;
    int64_t lastid = after;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if ((*count)++ > 0)
            sb_putc(out, ',');
        sb_puts(out, "{\"channel\":");
        sb_json_str(out, channel);
        sb_puts(out, ",\"data\":");
        sb_append(out, sqlite3_column_text(s, 1), (size_t)sqlite3_column_bytes(s, 1));
        sb_putc(out, '}');
        lastid = sqlite3_column_int64(s, 0);
        n++;
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (rc != SQLITE_DONE) {
        int r = db_fail(ev, e, "read events");
        store_unlock(ev->st);
        return r;
    }
    *next = n >= max ? lastid : (upto > after ? upto : after);
    store_unlock(ev->st);
    return 0;
}
