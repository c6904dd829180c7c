/*
 * store: the org's data in SQLite. Records with Salesforce's write semantics,
 * the tables and metadata behind the schema, users and connected apps. See
 * store.h.
 *
 * Per object the store keeps an objinfo: case-insensitive hash indexes of the
 * field and relationship names, the required/unique/defaulted field lists and
 * cached prepared statements, so a create is one INSERT with every column
 * bound and no schema scans. Values travel as `val`s (one per field, in
 * describe order) between the JSON record, validation and SQLite.
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

#include "fmt.h"
#include "log.h"
#include "sfid.h"
#include "util.h"

#define FORMAT_VERSION      1
#define DAY_MS              86400000LL
#define MINUTE_MS           60000LL
#define MAX_REPLICATION_IDS 600000
#define MAX_MATCHES         1000

/* ------------------------------------------------------------------------ */
/* Types                                                                    */

enum { V_UNSET, V_NULL, V_INT, V_REAL, V_TEXT };

typedef struct val {
    int         kind;
    int64_t     i;
    double      r;
    const char *s;   /* V_TEXT: NUL-terminated, n bytes; points at buf, own or elsewhere */
    size_t      n;
    char       *own; /* heap string owned by this val */
    char        buf[40];
} val;

typedef struct namemap {
    int   *slots; /* field index + 1; 0 = empty */
    size_t mask;
} namemap;

typedef struct objinfo {
    lf_object     *o;
    size_t         nf; /* o->nfields when built; the arrays below have nf entries */
    namemap        byname, byrel;
    int            ix_id, ix_deleted, ix_name, ix_created, ix_createdby, ix_modified,
                   ix_modifiedby, ix_stamp, ix_owner, ix_first, ix_last;
    bool           computed_name;
    bool           is_user;
    int           *required;
    size_t         nrequired;
    int           *unique;
    size_t         nunique;
    int           *defaulted;
    size_t         ndefaulted;
    val           *defaults; /* per field; V_UNSET when the field has none */
    val           *vals;     /* scratch for the record being written */
    unsigned char *given;    /* scratch: 1 = set by name, 2 = set by relationship */
    int64_t        next_rowid; /* 0 = not known yet */
    sqlite3_stmt  *ins, *sel, *upd, *del, *live;
    sqlite3_stmt **ext; /* per field: live rows by value */
} objinfo;

struct store {
    pthread_mutex_t mu;
    sqlite3        *db;
    lf_schema       schema;
    objinfo       **oi; /* parallel to schema.objects */
    size_t          cap_oi;
    char            org_id[19];
    char           *org_name;
    int64_t         session_ttl_s, api_limit, created_ms, last_stamp;
    int64_t         tx_stamp;         /* the stamp of the open transaction, 0 if none yet */
    lf_user       **users;
    size_t          nusers;
    lf_app        **apps;
    size_t          napps;
    char            default_user[19]; /* acts for changes without an actor */
    int             tx_depth;
    lf_change_hook  hook;             /* change events (store.h); zeroed when unset */
};

static const char not_found_msg[] = "The requested resource does not exist";

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */

static int
db_error(store *st, err_t *e, const char *what)
{
    return err_set(e, 500, "UNKNOWN_EXCEPTION", "%s: %s", what, sqlite3_errmsg(st->db));
}

static int
sql_exec(store *st, const char *sql, err_t *e)
{
    char *msg = NULL;
    if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        err_set(e, 500, "UNKNOWN_EXCEPTION", "database error: %s", msg ? msg : "?");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static sqlite3_stmt *
prep(store *st, const char *sql, bool persistent, err_t *e)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v3(st->db, sql, -1, persistent ? SQLITE_PREPARE_PERSISTENT : 0, &s,
                           NULL) != SQLITE_OK) {
        db_error(st, e, "prepare");
        sqlite3_finalize(s);
        return NULL;
    }
    return s;
}

static size_t
utf8_chars(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            c++;
    return c;
}

static int64_t
floor_minute(int64_t ms)
{
    return ms >= 0 ? ms - ms % MINUTE_MS : ms - (MINUTE_MS + ms % MINUTE_MS) % MINUTE_MS;
}

static int64_t
next_stamp(store *st)
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
static void
err_prefix(err_t *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
err_prefix(err_t *e, const char *fmt, ...)
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
/* Values                                                                   */

static void
val_reset(val *v)
{
    free(v->own);
    v->own = NULL;
    v->kind = V_UNSET;
}

static void
val_null(val *v)
{
    val_reset(v);
    v->kind = V_NULL;
}

static void
val_int(val *v, int64_t i)
{
    val_reset(v);
    v->kind = V_INT;
    v->i = i;
}

static void
val_real(val *v, double r)
{
    val_reset(v);
    v->kind = V_REAL;
    v->r = r;
}

/* Text that outlives the val (schema strings, JSON being processed). */
static void
val_text_ref(val *v, const char *s, size_t n)
{
    val_reset(v);
    v->kind = V_TEXT;
    v->s = s;
    v->n = n;
}

/* Text copied into the val. */
static void
val_text_copy(val *v, const char *s, size_t n)
{
    val_reset(v);
    v->kind = V_TEXT;
    if (n < sizeof v->buf) {
        memcpy(v->buf, s, n);
        v->buf[n] = '\0';
        v->s = v->buf;
    } else {
        v->own = xstrndup(s, n);
        v->s = v->own;
    }
    v->n = n;
}

static void
val_text_take(val *v, char *s)
{
    val_reset(v);
    v->kind = V_TEXT;
    v->own = s;
    v->s = s;
    v->n = strlen(s);
}

/* dst refers to src's value (src must outlive dst's use). */
static void
val_ref(val *dst, const val *src)
{
    val_reset(dst);
    dst->kind = src->kind;
    dst->i = src->i;
    dst->r = src->r;
    dst->s = src->s;
    dst->n = src->n;
}

static bool
val_empty(const val *v)
{
    return v->kind == V_UNSET || v->kind == V_NULL;
}

/* A deep copy (dst is reset first), for the change hook's before-image. */
static void
val_copy(val *dst, const val *src)
{
    if (src->kind == V_TEXT) {
        val_text_copy(dst, src->s, src->n);
    } else {
        val_reset(dst);
        dst->kind = src->kind;
        dst->i = src->i;
        dst->r = src->r;
    }
}

/* Same stored value? (Unset and null are the same.) */
static bool
val_same(const val *a, const val *b)
{
    int ka = a->kind == V_UNSET ? V_NULL : a->kind, kb = b->kind == V_UNSET ? V_NULL : b->kind;
    if (ka != kb)
        return false;
    switch (ka) {
    case V_INT: return a->i == b->i;
    case V_REAL: return a->r == b->r;
    case V_TEXT: return a->n == b->n && memcmp(a->s, b->s, a->n) == 0;
    default: return true;
    }
}

static void
bind_val(sqlite3_stmt *s, int idx, const val *v)
{
    switch (v->kind) {
    case V_INT: sqlite3_bind_int64(s, idx, v->i); break;
    case V_REAL: sqlite3_bind_double(s, idx, v->r); break;
    case V_TEXT: sqlite3_bind_text(s, idx, v->s, (int)v->n, SQLITE_STATIC); break;
    default: sqlite3_bind_null(s, idx); break;
    }
}

/* Column col of the current row into v (copied). */
static void
column_val(sqlite3_stmt *s, int col, lf_storage storage, val *v)
{
    int t = sqlite3_column_type(s, col);
    if (t == SQLITE_NULL) {
        val_null(v);
        return;
    }
    switch (storage) {
    case ST_INT:
    case ST_BOOL:
    case ST_DATETIME: val_int(v, sqlite3_column_int64(s, col)); break;
    case ST_REAL: val_real(v, sqlite3_column_double(s, col)); break;
    default:
        val_text_copy(v, (const char *)sqlite3_column_text(s, col),
                      (size_t)sqlite3_column_bytes(s, col));
    }
}

/* ------------------------------------------------------------------------ */
/* Name index                                                               */

static uint32_t
hash_ci(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (unsigned char)tolower((unsigned char)*s);
        h *= 16777619u;
    }
    return h;
}

static const char *
map_key(const lf_field *f, bool rel)
{
    if (!rel)
        return f->name;
    return f->type == FT_REFERENCE ? f->relationship_name : NULL;
}

static void
namemap_init(namemap *m, const lf_object *o, bool rel)
{
    size_t cap = 16;
    while (cap < o->nfields * 2 + 2)
        cap *= 2;
    m->slots = xcalloc(cap, sizeof *m->slots);
    m->mask = cap - 1;
    for (size_t i = 0; i < o->nfields; i++) {
        const char *k = map_key(o->fields[i], rel);
        if (k == NULL)
            continue;
        size_t h = hash_ci(k) & m->mask;
        while (m->slots[h])
            h = (h + 1) & m->mask;
        m->slots[h] = (int)i + 1;
    }
}

static int
namemap_get(const namemap *m, const lf_object *o, const char *key, bool rel)
{
    for (size_t h = hash_ci(key) & m->mask; m->slots[h]; h = (h + 1) & m->mask) {
        const char *k = map_key(o->fields[m->slots[h] - 1], rel);
        if (strcasecmp(k, key) == 0)
            return m->slots[h] - 1;
    }
    return -1;
}

/* ------------------------------------------------------------------------ */
/* Per-object cache                                                         */

static int
field_index(const lf_object *o, const char *name)
{
    for (size_t i = 0; i < o->nfields; i++)
        if (strcmp(o->fields[i]->name, name) == 0)
            return (int)i;
    return -1;
}

/* The default of a field as a val (text defaults refer to the schema string). */
static void
default_val(const lf_field *f, val *v)
{
    const char *d = f->default_value;
    if (lf_types[f->type].storage == ST_BOOL) {
        val_int(v, d && strcmp(d, "true") == 0);
        return;
    }
    if (d == NULL)
        return;
    switch (lf_types[f->type].storage) {
    case ST_INT: {
        int64_t i;
        if (util_parse_i64(d, &i) == 0)
            val_int(v, i);
        break;
    }
    case ST_REAL: {
        double r;
        if (util_parse_double(d, &r) == 0)
            val_real(v, r);
        break;
    }
    case ST_DATETIME: {
        int64_t ms;
        if (util_parse_datetime(d, &ms) == 0)
            val_int(v, ms);
        break;
    }
    default: val_text_ref(v, d, strlen(d)); break;
    }
}

static objinfo *
objinfo_new(lf_object *o)
{
    objinfo *oi = xcalloc(1, sizeof *oi);
    size_t nf = o->nfields;
    oi->o = o;
    oi->nf = nf;
    namemap_init(&oi->byname, o, false);
    namemap_init(&oi->byrel, o, true);
    oi->ix_id = field_index(o, "Id");
    oi->ix_deleted = field_index(o, "IsDeleted");
    oi->ix_name = field_index(o, "Name");
    oi->ix_created = field_index(o, "CreatedDate");
    oi->ix_createdby = field_index(o, "CreatedById");
    oi->ix_modified = field_index(o, "LastModifiedDate");
    oi->ix_modifiedby = field_index(o, "LastModifiedById");
    oi->ix_stamp = field_index(o, "SystemModstamp");
    oi->ix_owner = field_index(o, "OwnerId");
    oi->ix_first = field_index(o, "FirstName");
    oi->ix_last = field_index(o, "LastName");
    oi->is_user = strcmp(o->name, "User") == 0;
    oi->computed_name = oi->ix_name >= 0 && oi->ix_first >= 0 && oi->ix_last >= 0 &&
                        !o->fields[oi->ix_name]->createable &&
                        !o->fields[oi->ix_name]->updateable;
    oi->required = xcalloc(nf, sizeof *oi->required);
    oi->unique = xcalloc(nf, sizeof *oi->unique);
    oi->defaulted = xcalloc(nf, sizeof *oi->defaulted);
    oi->defaults = xcalloc(nf, sizeof *oi->defaults);
    oi->vals = xcalloc(nf, sizeof *oi->vals);
    oi->given = xcalloc(nf, 1);
    oi->ext = xcalloc(nf, sizeof *oi->ext);
    for (size_t i = 0; i < nf; i++) {
        const lf_field *f = o->fields[i];
        lf_storage stg = lf_types[f->type].storage;
        if (f->required && f->createable && stg != ST_BOOL)
            oi->required[oi->nrequired++] = (int)i;
        if (f->unique)
            oi->unique[oi->nunique++] = (int)i;
        if (!f->system) {
            default_val(f, &oi->defaults[i]);
            if (oi->defaults[i].kind != V_UNSET)
                oi->defaulted[oi->ndefaulted++] = (int)i;
        }
    }
    return oi;
}

static void
objinfo_free(objinfo *oi)
{
    if (oi == NULL)
        return;
    sqlite3_finalize(oi->ins);
    sqlite3_finalize(oi->sel);
    sqlite3_finalize(oi->upd);
    sqlite3_finalize(oi->del);
    sqlite3_finalize(oi->live);
    for (size_t i = 0; i < oi->nf; i++) {
        sqlite3_finalize(oi->ext[i]);
        val_reset(&oi->vals[i]);
    }
    free(oi->ext);
    free(oi->vals);
    free(oi->byname.slots);
    free(oi->byrel.slots);
    free(oi->required);
    free(oi->unique);
    free(oi->defaulted);
    free(oi->defaults);
    free(oi->given);
    free(oi);
}

static size_t
oi_index(store *st, const lf_object *o)
{
    for (size_t i = 0; i < st->schema.nobjects; i++)
        if (st->schema.objects[i] == o)
            return i;
    return (size_t)-1;
}

static objinfo *
oi_find(store *st, const char *name)
{
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < st->schema.nobjects; i++)
        if (strcasecmp(st->schema.objects[i]->name, name) == 0)
            return st->oi[i];
    return NULL;
}

static objinfo *
oi_of(store *st, const lf_object *o)
{
    size_t i = oi_index(st, o);
    return i == (size_t)-1 ? NULL : st->oi[i];
}

/* Add an object to the schema together with its cache. */
static int
add_object_mem(store *st, lf_object *o, err_t *e)
{
    if (schema_add_object(&st->schema, o, e))
        return -1;
    if (st->schema.nobjects > st->cap_oi) {
        st->cap_oi = st->schema.cap_objects;
        st->oi = xrealloc(st->oi, st->cap_oi * sizeof *st->oi);
    }
    st->oi[st->schema.nobjects - 1] = objinfo_new(o);
    return 0;
}

/* After the object's fields changed. */
static void
oi_rebuild(store *st, size_t i)
{
    objinfo_free(st->oi[i]);
    st->oi[i] = objinfo_new(st->schema.objects[i]);
}

static sqlite3_stmt *
oi_ins(store *st, objinfo *oi, err_t *e)
{
    if (oi->ins)
        return oi->ins;
    const lf_object *o = oi->o;
    sb s = SB_INIT;
    sb_puts(&s, "INSERT INTO ");
    sb_sql_ident(&s, o->name);
    sb_puts(&s, " (\"_rowid\"");
    for (size_t i = 0; i < o->nfields; i++) {
        sb_putc(&s, ',');
        sb_sql_ident(&s, o->fields[i]->name);
    }
    sb_puts(&s, ") VALUES (?1");
    for (size_t i = 0; i < o->nfields; i++)
        sb_printf(&s, ",?%zu", i + 2);
    sb_putc(&s, ')');
    oi->ins = prep(st, s.buf, true, e);
    sb_free(&s);
    return oi->ins;
}

static sqlite3_stmt *
oi_sel(store *st, objinfo *oi, err_t *e)
{
    if (oi->sel)
        return oi->sel;
    const lf_object *o = oi->o;
    sb s = SB_INIT;
    sb_puts(&s, "SELECT \"_rowid\"");
    for (size_t i = 0; i < o->nfields; i++) {
        sb_putc(&s, ',');
        sb_sql_ident(&s, o->fields[i]->name);
    }
    sb_puts(&s, ",\"_deleted_at\" FROM ");
    sb_sql_ident(&s, o->name);
    sb_puts(&s, " WHERE \"_rowid\" = ?1");
    oi->sel = prep(st, s.buf, true, e);
    sb_free(&s);
    return oi->sel;
}

static sqlite3_stmt *
oi_upd(store *st, objinfo *oi, err_t *e)
{
    if (oi->upd)
        return oi->upd;
    const lf_object *o = oi->o;
    sb s = SB_INIT;
    sb_puts(&s, "UPDATE ");
    sb_sql_ident(&s, o->name);
    sb_puts(&s, " SET ");
    bool first = true;
    for (size_t i = 0; i < o->nfields; i++) {
        if ((int)i == oi->ix_id || (int)i == oi->ix_created || (int)i == oi->ix_createdby)
            continue;
        if (!first)
            sb_putc(&s, ',');
        first = false;
        sb_sql_ident(&s, o->fields[i]->name);
        sb_printf(&s, "=?%zu", i + 2);
    }
    sb_puts(&s, " WHERE \"_rowid\" = ?1");
    oi->upd = prep(st, s.buf, true, e);
    sb_free(&s);
    return oi->upd;
}

static sqlite3_stmt *
oi_del(store *st, objinfo *oi, err_t *e)
{
    if (oi->del)
        return oi->del;
    sb s = SB_INIT;
    sb_puts(&s, "UPDATE ");
    sb_sql_ident(&s, oi->o->name);
    sb_puts(&s, " SET \"IsDeleted\" = 1, \"_deleted_at\" = ?2, \"SystemModstamp\" = ?2 "
                "WHERE \"_rowid\" = ?1");
    oi->del = prep(st, s.buf, true, e);
    sb_free(&s);
    return oi->del;
}

static sqlite3_stmt *
oi_live(store *st, objinfo *oi, err_t *e)
{
    if (oi->live)
        return oi->live;
    sb s = SB_INIT;
    sb_puts(&s, "SELECT \"Id\", \"IsDeleted\" FROM ");
    sb_sql_ident(&s, oi->o->name);
    sb_puts(&s, " WHERE \"_rowid\" = ?1");
    oi->live = prep(st, s.buf, true, e);
    sb_free(&s);
    return oi->live;
}

/* Live rows whose field ix equals ?1 (case-insensitively unless case-sensitive). */
static sqlite3_stmt *
oi_ext(store *st, objinfo *oi, int ix, err_t *e)
{
    if (oi->ext[ix])
        return oi->ext[ix];
    const lf_field *f = oi->o->fields[ix];
    sb s = SB_INIT;
    sb_puts(&s, "SELECT \"_rowid\", \"Id\" FROM ");
    sb_sql_ident(&s, oi->o->name);
    sb_puts(&s, " WHERE ");
    sb_sql_ident(&s, f->name);
    sb_puts(&s, " = ?1");
    if (f->case_sensitive)
        sb_puts(&s, " COLLATE BINARY");
    sb_printf(&s, " AND \"IsDeleted\" = 0 ORDER BY \"_rowid\" LIMIT %d", MAX_MATCHES + 1);
    oi->ext[ix] = prep(st, s.buf, true, e);
    sb_free(&s);
    return oi->ext[ix];
}

static int
oi_next_rowid(store *st, objinfo *oi, int64_t *out, err_t *e)
{
    if (oi->next_rowid == 0) {
        sb s = SB_INIT;
        sb_puts(&s, "SELECT COALESCE(MAX(\"_rowid\"), 0) + 1 FROM ");
        sb_sql_ident(&s, oi->o->name);
        sqlite3_stmt *q = prep(st, s.buf, false, e);
        sb_free(&s);
        if (q == NULL)
            return -1;
        if (sqlite3_step(q) != SQLITE_ROW) {
            sqlite3_finalize(q);
            return db_error(st, e, "next id");
        }
        oi->next_rowid = sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
    }
    *out = oi->next_rowid++;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Transactions                                                             */

static void
tx_notify(store *st, lf_tx_event what, int depth)
{
    if (st->hook.tx)
        st->hook.tx(st->hook.ctx, st, what, depth);
}

static int
tx_begin(store *st, err_t *e)
{
    char sql[64];
    if (st->tx_depth == 0)
        snprintf(sql, sizeof sql, "BEGIN");
    else
        snprintf(sql, sizeof sql, "SAVEPOINT lf%d", st->tx_depth);
    if (sql_exec(st, sql, e))
        return -1;
    st->tx_depth++;
    tx_notify(st, LF_TX_BEGIN, st->tx_depth);
    return 0;
}

static void
tx_rollback(store *st)
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

static int
tx_commit(store *st, err_t *e)
{
    char sql[64];
    if (st->tx_depth <= 0)
        return err_set(e, 500, "UNKNOWN_EXCEPTION", "commit without a transaction");
    if (st->tx_depth == 1)
        snprintf(sql, sizeof sql, "COMMIT");
    else
        snprintf(sql, sizeof sql, "RELEASE lf%d", st->tx_depth - 1);
    if (sql_exec(st, sql, e)) {
        tx_rollback(st);
        return -1;
    }
    st->tx_depth--;
    if (st->tx_depth == 0)
        st->tx_stamp = 0;
    tx_notify(st, LF_TX_COMMIT, st->tx_depth + 1);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Conversion of JSON values to stored values, with Salesforce's errors     */

static const char *
json_token(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "START_OBJECT";
    case JSON_ARRAY: return "START_ARRAY";
    case JSON_STRING: return "VALUE_STRING";
    case JSON_INTEGER: return "VALUE_NUMBER_INT";
    case JSON_REAL: return "VALUE_NUMBER_FLOAT";
    case JSON_TRUE: return "VALUE_TRUE";
    case JSON_FALSE: return "VALUE_FALSE";
    default: return "VALUE_NULL";
    }
}

static int
deser_error(const lf_field *f, json_t *v, err_t *e)
{
    char text[128];
    switch (json_typeof(v)) {
    case JSON_OBJECT: snprintf(text, sizeof text, "{"); break;
    case JSON_ARRAY: snprintf(text, sizeof text, "["); break;
    case JSON_STRING: snprintf(text, sizeof text, "%.100s", json_string_value(v)); break;
    case JSON_INTEGER: snprintf(text, sizeof text, "%" JSON_INTEGER_FORMAT, json_integer_value(v)); break;
    case JSON_REAL: snprintf(text, sizeof text, "%.17g", json_real_value(v)); break;
    case JSON_TRUE: snprintf(text, sizeof text, "true"); break;
    case JSON_FALSE: snprintf(text, sizeof text, "false"); break;
    default: snprintf(text, sizeof text, "null"); break;
    }
    const char *tname;
    switch (f->type) {
    case FT_CURRENCY:
    case FT_PERCENT:
    case FT_DOUBLE: tname = "double"; break;
    case FT_INT: tname = "int"; break;
    case FT_BOOLEAN: tname = "boolean"; break;
    case FT_DATE: tname = "date"; break;
    case FT_DATETIME: tname = "datetime"; break;
    case FT_TIME: tname = "time"; break;
    case FT_ID:
    case FT_REFERENCE: tname = "id"; break;
    default: tname = "string"; break;
    }
    err_set(e, 400, "JSON_PARSER_ERROR",
            "Cannot deserialize instance of %s from %s value %s or request may be missing a "
            "required field (field %s)",
            tname, json_token(v), text, f->name);
    return err_fields(e, f->name);
}

static int
range_error(const lf_field *f, const char *text, err_t *e)
{
    err_set(e, 400, "NUMBER_OUTSIDE_VALID_RANGE",
            "%s: value outside of valid range on numeric field: %s", f->label, text);
    return err_fields(e, f->name);
}

/* local@domain.tld, printable ASCII without spaces, as Salesforce roughly checks it. */
static bool
valid_email(const char *s, size_t n)
{
    const char *at = memchr(s, '@', n);
    if (at == NULL || at == s || memchr(at + 1, '@', n - (size_t)(at + 1 - s)))
        return false;
    for (const char *p = s; p < at; p++)
        if (!isalnum((unsigned char)*p) && !strchr("!#$%&'*+-/=?^_`{|}~.", *p))
            return false;
    if (s[0] == '.' || at[-1] == '.' || strstr(s, ".."))
        return false;
    const char *d = at + 1, *end = s + n;
    bool dot = false;
    if (d == end || *d == '.' || *d == '-' || end[-1] == '.' || end[-1] == '-')
        return false;
    for (const char *p = d; p < end; p++) {
        if (*p == '.') {
            if (p[1] == '.' || p[1] == '-' || p[-1] == '-')
                return false;
            dot = true;
        } else if (!isalnum((unsigned char)*p) && *p != '-') {
            return false;
        }
    }
    return dot;
}

static const char *
picklist_canon(const lf_field *f, const char *v, size_t n)
{
    for (size_t i = 0; i < f->npicklist; i++)
        if (strlen(f->picklist[i]) == n && strncasecmp(f->picklist[i], v, n) == 0)
            return f->picklist[i];
    return NULL;
}

static int
picklist_error(const lf_field *f, const char *v, size_t n, err_t *e)
{
    err_set(e, 400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            "%s: bad value for restricted picklist field: %.*s", f->label, (int)(n > 255 ? 255 : n),
            v);
    return err_fields(e, f->name);
}

/* "<label> ID" unless the label already says so. */
static void
id_label(const lf_field *f, char *out, size_t n)
{
    size_t l = strlen(f->label);
    if (l >= 3 && strcmp(f->label + l - 3, " ID") == 0)
        snprintf(out, n, "%s", f->label);
    else
        snprintf(out, n, "%s ID", f->label);
}

/* 0 missing, 1 live, 2 deleted, -1 error. id18 is normalised. */
static int
row_status(store *st, objinfo *oi, const char *id18, int64_t *rowid, err_t *e)
{
    int64_t seq = sfid_seq(id18);
    if (seq <= 0 || !sfid_has_prefix(id18, oi->o->key_prefix))
        return 0;
    sqlite3_stmt *q = oi_live(st, oi, e);
    if (q == NULL)
        return -1;
    sqlite3_bind_int64(q, 1, seq);
    int rc = sqlite3_step(q), res;
    if (rc == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(q, 0);
        res = id && strcmp(id, id18) == 0 ? (sqlite3_column_int64(q, 1) ? 2 : 1) : 0;
    } else if (rc == SQLITE_DONE) {
        res = 0;
    } else {
        res = db_error(st, e, "lookup");
    }
    sqlite3_reset(q);
    if (rowid)
        *rowid = seq;
    return res;
}

/* A lookup value: a live record of the referenced object. */
static int
convert_reference(store *st, const lf_field *f, const char *s, size_t n, val *out, err_t *e)
{
    char id[19], lbl[300];
    if (n == 0) {
        val_null(out);
        return 0;
    }
    if (n > 18 || sfid_normalize(s, id)) {
        err_set(e, 400, "MALFORMED_ID", "%s: id value of incorrect type: %.*s", f->label,
                (int)(n > 100 ? 100 : n), s);
        return err_fields(e, f->name);
    }
    objinfo *target = oi_find(st, f->reference_to);
    int status = target ? row_status(st, target, id, NULL, e) : 0;
    if (status < 0)
        return -1;
    if (status != 1) {
        id_label(f, lbl, sizeof lbl);
        err_set(e, 400, "FIELD_INTEGRITY_EXCEPTION", "%s: id value of incorrect type: %s", lbl,
                id);
        return err_fields(e, f->name);
    }
    val_text_copy(out, id, 18);
    return 0;
}

static bool
two_digits(const char *p, int max, int *out)
{
    if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]))
        return false;
    *out = (p[0] - '0') * 10 + (p[1] - '0');
    return *out <= max;
}

/* HH:MM[:SS[.f[f[f]]]][Z] -> "HH:MM:SS.fffZ" in out[16]. */
static int
parse_time(const char *s, size_t n, char out[16])
{
    int hh, mi, ss = 0, ms = 0;
    size_t i = 5;
    if (n < 5 || !two_digits(s, 23, &hh) || s[2] != ':' || !two_digits(s + 3, 59, &mi))
        return -1;
    if (i < n && s[i] == ':') {
        if (n < i + 3 || !two_digits(s + i + 1, 59, &ss))
            return -1;
        i += 3;
        if (i < n && s[i] == '.') {
            int digits = 0;
            for (i++; i < n && isdigit((unsigned char)s[i]); i++, digits++)
                if (digits < 3)
                    ms = ms * 10 + (s[i] - '0');
            if (digits == 0 || digits > 9)
                return -1;
            for (; digits < 3; digits++)
                ms *= 10;
        }
    }
    if (i < n && s[i] == 'Z')
        i++;
    if (i != n)
        return -1;
    snprintf(out, 16, "%02d:%02d:%02d.%03dZ", hh, mi, ss, ms);
    return 0;
}

static int
convert_text(store *st, const lf_field *f, json_t *v, val *out, err_t *e)
{
    char num[40];
    const char *s;
    size_t n;
    switch (json_typeof(v)) {
    case JSON_STRING:
        s = json_string_value(v);
        n = json_string_length(v);
        break;
    case JSON_INTEGER:
        n = (size_t)snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        s = num;
        break;
    case JSON_REAL: {
        sb t = SB_INIT;
        sb_json_double(&t, json_real_value(v));
        n = (size_t)snprintf(num, sizeof num, "%s", sb_str(&t));
        sb_free(&t);
        s = num;
        break;
    }
    case JSON_TRUE:
    case JSON_FALSE:
        s = json_is_true(v) ? "true" : "false";
        n = strlen(s);
        break;
    default: return deser_error(f, v, e);
    }
    if (f->type == FT_REFERENCE || f->type == FT_ID)
        return convert_reference(st, f, s, n, out, e);
    if (n == 0 || memchr(s, '\0', n)) {
        if (n == 0) {
            val_null(out);
            return 0;
        }
        return deser_error(f, v, e);
    }
    if (f->type == FT_TIME) {
        char buf[16];
        if (parse_time(s, n, buf))
            return deser_error(f, v, e);
        val_text_copy(out, buf, strlen(buf));
        return 0;
    }
    if (f->length > 0 && n > (size_t)f->length && utf8_chars(s, n) > (size_t)f->length) {
        err_set(e, 400, "STRING_TOO_LONG", "%s: data value too large: %.*s (max length=%d)",
                f->name, (int)(n > 300 ? 300 : n), s, f->length);
        return err_fields(e, f->name);
    }
    switch (f->type) {
    case FT_EMAIL:
        if (!valid_email(s, n)) {
            err_set(e, 400, "INVALID_EMAIL_ADDRESS", "%s: invalid email address: %.*s", f->label,
                    (int)(n > 255 ? 255 : n), s);
            return err_fields(e, f->name);
        }
        break;
    case FT_PICKLIST:
        if (f->restricted_picklist) {
            const char *c = picklist_canon(f, s, n);
            if (c == NULL)
                return picklist_error(f, s, n, e);
            val_text_ref(out, c, strlen(c));
            return 0;
        }
        break;
    case FT_MULTIPICKLIST:
        if (f->restricted_picklist) {
            sb m = SB_INIT;
            const char *p = s, *end = s + n;
            while (p <= end) {
                const char *q = memchr(p, ';', (size_t)(end - p));
                if (q == NULL)
                    q = end;
                const char *c = picklist_canon(f, p, (size_t)(q - p));
                if (c == NULL) {
                    sb_free(&m);
                    return picklist_error(f, p, (size_t)(q - p), e);
                }
                if (m.len)
                    sb_putc(&m, ';');
                sb_puts(&m, c);
                p = q + 1;
            }
            val_text_take(out, sb_steal(&m));
            return 0;
        }
        break;
    default: break;
    }
    if (s == num || json_typeof(v) != JSON_STRING)
        val_text_copy(out, s, n);
    else
        val_text_ref(out, s, n);
    return 0;
}

/* Round to the field's scale and check its precision. */
static int
convert_real(const lf_field *f, double r, json_t *v, val *out, err_t *e)
{
    if (!isfinite(r))
        return deser_error(f, v, e);
    if (f->scale <= 15) {
        double m = pow(10.0, f->scale);
        double x = r * m;
        if (fabs(x) < 9007199254740992.0)
            r = round(x) / m;
    }
    int digits = f->precision - f->scale;
    if (digits < 1)
        digits = 1;
    if (fabs(r) >= pow(10.0, digits)) {
        char t[40];
        snprintf(t, sizeof t, "%.17g", r);
        return range_error(f, t, e);
    }
    val_real(out, r);
    return 0;
}

/* Convert v, a value given for field f, into out. */
static int
convert(store *st, const lf_field *f, json_t *v, val *out, err_t *e)
{
    lf_storage stg = lf_types[f->type].storage;
    if (json_is_null(v)) {
        if (stg == ST_BOOL)
            val_int(out, 0);
        else
            val_null(out);
        return 0;
    }
    switch (stg) {
    case ST_TEXT: return convert_text(st, f, v, out, e);
    case ST_BOOL:
        if (json_is_boolean(v)) {
            val_int(out, json_is_true(v));
            return 0;
        }
        if (json_is_string(v) && (strcasecmp(json_string_value(v), "true") == 0 ||
                                  strcasecmp(json_string_value(v), "false") == 0)) {
            val_int(out, strcasecmp(json_string_value(v), "true") == 0);
            return 0;
        }
        return deser_error(f, v, e);
    case ST_INT: {
        int64_t i;
        if (json_is_integer(v)) {
            i = json_integer_value(v);
        } else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
                   fabs(json_real_value(v)) < 9.2e18) {
            i = (int64_t)json_real_value(v);
        } else if (json_is_string(v) && util_parse_i64(json_string_value(v), &i) == 0) {
            /* numeric string: accepted */
        } else {
            return deser_error(f, v, e);
        }
        int64_t lim = 1;
        for (int k = 0; k < f->precision && k < 18; k++)
            lim *= 10;
        if (i >= lim || i <= -lim) {
            char t[32];
            snprintf(t, sizeof t, "%" PRId64, i);
            return range_error(f, t, e);
        }
        val_int(out, i);
        return 0;
    }
    case ST_REAL: {
        double r;
        if (json_is_number(v))
            r = json_number_value(v);
        else if (!json_is_string(v) || util_parse_double(json_string_value(v), &r))
            return deser_error(f, v, e);
        return convert_real(f, r, v, out, e);
    }
    case ST_DATE: {
        int y, m, d;
        const char *s = json_string_value(v);
        if (s == NULL || util_parse_date(s, &y, &m, &d))
            return deser_error(f, v, e);
        if (s[10] == 'T') {
            int64_t ms;
            char buf[32];
            if (util_parse_datetime(s, &ms))
                return deser_error(f, v, e);
            util_fmt_datetime(ms, buf);
            val_text_copy(out, buf, 10);
        } else {
            val_text_copy(out, s, 10);
        }
        return 0;
    }
    case ST_DATETIME: {
        int64_t ms;
        if (!json_is_string(v) || util_parse_datetime(json_string_value(v), &ms))
            return deser_error(f, v, e);
        val_int(out, ms);
        return 0;
    }
    }
    return deser_error(f, v, e);
}

/* Live rows of oi whose field ix equals key: up to max rowids/ids, *count = how many
 * (at most MAX_MATCHES + 1). exclude: a rowid to skip (0 = none). */
static int
ext_lookup(store *st, objinfo *oi, int ix, const val *key, int64_t exclude, int64_t *rowids,
           char (*ids)[19], int max, int *count, err_t *e)
{
    sqlite3_stmt *q = oi_ext(st, oi, ix, e);
    if (q == NULL)
        return -1;
    bind_val(q, 1, key);
    int n = 0, rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int64_t r = sqlite3_column_int64(q, 0);
        if (r == exclude)
            continue;
        if (n < max) {
            if (rowids)
                rowids[n] = r;
            if (ids)
                snprintf(ids[n], 19, "%s", (const char *)sqlite3_column_text(q, 1));
        }
        n++;
    }
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    if (rc != SQLITE_DONE)
        return db_error(st, e, "lookup");
    *count = n;
    return 0;
}

/* {"Teacher__r": {"Email__c": "x"}}: the parent's Id into out. */
static int
resolve_relationship(store *st, const lf_field *f, json_t *v, val *out, err_t *e)
{
    if (json_is_null(v)) {
        val_null(out);
        return 0;
    }
    objinfo *poi = oi_find(st, f->reference_to);
    if (!json_is_object(v) || poi == NULL) {
        err_set(e, 400, "INVALID_FIELD",
                "The value provided for foreign key reference %s is not a nested SObject",
                f->relationship_name);
        return err_fields(e, f->relationship_name);
    }
    const char *key = NULL, *k;
    json_t *kv = NULL, *x;
    int nkeys = 0;
    json_object_foreach(v, k, x) {
        if (strcasecmp(k, "attributes") == 0)
            continue;
        key = k;
        kv = x;
        nkeys++;
    }
    if (nkeys != 1) {
        err_set(e, 400, "INVALID_FIELD",
                "Foreign key reference %s must name exactly one external ID field of %s",
                f->relationship_name, poi->o->name);
        return err_fields(e, f->relationship_name);
    }
    int ix = namemap_get(&poi->byname, poi->o, key, false);
    const lf_field *pf = ix >= 0 ? poi->o->fields[ix] : NULL;
    if (pf == NULL || !(pf->external_id || ix == poi->ix_id)) {
        err_set(e, 400, "INVALID_FIELD",
                "Field %s is not an external ID field of %s (foreign key reference %s)", key,
                poi->o->name, f->relationship_name);
        return err_fields(e, f->relationship_name);
    }
    if (ix == poi->ix_id) {
        if (!json_is_string(kv))
            return deser_error(f, kv, e);
        return convert_reference(st, f, json_string_value(kv), json_string_length(kv), out, e);
    }
    val key_val = {0};
    if (convert(st, pf, kv, &key_val, e))
        return -1;
    char ids[2][19];
    int n = 0;
    int rc = val_empty(&key_val) ? 0 : ext_lookup(st, poi, ix, &key_val, 0, NULL, ids, 2, &n, e);
    char shown[128];
    if (key_val.kind == V_TEXT)
        snprintf(shown, sizeof shown, "%.100s", key_val.s);
    else if (key_val.kind == V_INT)
        snprintf(shown, sizeof shown, "%" PRId64, key_val.i);
    else if (key_val.kind == V_REAL)
        snprintf(shown, sizeof shown, "%.17g", key_val.r);
    else
        snprintf(shown, sizeof shown, "null");
    val_reset(&key_val);
    if (rc)
        return -1;
    if (n == 0) {
        err_set(e, 400, "INVALID_FIELD",
                "Foreign key external ID: %s not found for field %s in entity %s", shown,
                pf->name, poi->o->name);
        return err_fields(e, f->relationship_name);
    }
    if (n > 1) {
        err_set(e, 400, "INVALID_FIELD",
                "Foreign key external ID: %s matches more than one record for field %s in "
                "entity %s",
                shown, pf->name, poi->o->name);
        return err_fields(e, f->relationship_name);
    }
    val_text_copy(out, ids[0], 18);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Writing records                                                          */

static void
scratch_clear(objinfo *oi)
{
    for (size_t i = 0; i < oi->o->nfields; i++) {
        val_reset(&oi->vals[i]);
        oi->given[i] = 0;
    }
}

/* Fill oi->vals from rec. skip_ix: a field the caller sets itself (upsert's
 * external id), which rec may repeat. self_id: on update, the record's Id,
 * which rec may repeat. */
static int
apply_rec(store *st, objinfo *oi, json_t *rec, bool creating, int skip_ix, const char *self_id,
          err_t *e)
{
    const lf_object *o = oi->o;
    if (!json_is_object(rec))
        return err_set(e, 400, "JSON_PARSER_ERROR", "The record must be a JSON object");
    sb bad = SB_INIT;
    bool by_rel = false;
    const char *key;
    json_t *v;
    json_object_foreach(rec, key, v) {
        int ix = namemap_get(&oi->byname, o, key, false);
        if (ix < 0) {
            if (strcasecmp(key, "attributes") == 0)
                continue;
            int rx = namemap_get(&oi->byrel, o, key, true);
            if (rx < 0) {
                sb_free(&bad);
                return err_set(e, 400, "INVALID_FIELD", "No such column '%s' on sobject of type %s",
                               key, o->name);
            }
            const lf_field *f = o->fields[rx];
            if (!(creating ? f->createable : f->updateable)) {
                sb_printf(&bad, "%s%s", bad.len ? ", " : "", f->name);
                continue;
            }
            if (resolve_relationship(st, f, v, &oi->vals[rx], e)) {
                sb_free(&bad);
                return -1;
            }
            oi->given[rx] |= 2;
            by_rel = true;
            continue;
        }
        if (ix == skip_ix)
            continue;
        const lf_field *f = o->fields[ix];
        if (self_id && ix == oi->ix_id) {
            char n[19];
            if (json_is_string(v) && sfid_normalize(json_string_value(v), n) == 0 &&
                strcmp(n, self_id) == 0)
                continue;
        }
        if (!(creating ? f->createable : f->updateable)) {
            sb_printf(&bad, "%s%s", bad.len ? ", " : "", f->name);
            continue;
        }
        if (convert(st, f, v, &oi->vals[ix], e)) {
            sb_free(&bad);
            return -1;
        }
        oi->given[ix] |= 1;
    }
    if (bad.len) {
        err_set(e, 400, "INVALID_FIELD_FOR_INSERT_UPDATE",
                "Unable to create/update fields: %s. Please check the security settings of this "
                "field and verify that it is read/write for your profile or permission set.",
                bad.buf);
        /* fields: the same names, comma-separated without the spaces */
        sb f = SB_INIT;
        for (const char *p = bad.buf; *p; p++)
            if (*p != ' ')
                sb_putc(&f, *p);
        err_fields(e, f.buf);
        sb_free(&f);
        sb_free(&bad);
        return -1;
    }
    if (by_rel) {
        for (size_t i = 0; i < o->nfields; i++)
            if (oi->given[i] == 3) {
                err_set(e, 400, "INVALID_FIELD",
                        "Cannot specify both an external ID reference %s and a salesforce id, %s",
                        o->fields[i]->relationship_name, o->fields[i]->name);
                return err_fields(e, o->fields[i]->name);
            }
    }
    return 0;
}

static int
check_required(objinfo *oi, err_t *e)
{
    sb names = SB_INIT, fields = SB_INIT;
    for (size_t k = 0; k < oi->nrequired; k++) {
        int ix = oi->required[k];
        if (!val_empty(&oi->vals[ix]))
            continue;
        const char *n = oi->o->fields[ix]->name;
        sb_printf(&names, "%s%s", names.len ? ", " : "", n);
        sb_printf(&fields, "%s%s", fields.len ? "," : "", n);
    }
    if (names.len == 0)
        return 0;
    err_set(e, 400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [%s]", names.buf);
    err_fields(e, fields.buf);
    sb_free(&names);
    sb_free(&fields);
    return -1;
}

/* Contact-style Name = "First Last". */
static void
compute_name(objinfo *oi)
{
    if (!oi->computed_name)
        return;
    const val *fi = &oi->vals[oi->ix_first], *la = &oi->vals[oi->ix_last];
    bool hf = fi->kind == V_TEXT && fi->n, hl = la->kind == V_TEXT && la->n;
    val *nm = &oi->vals[oi->ix_name];
    if (!hf && !hl) {
        val_null(nm);
        return;
    }
    sb s = SB_INIT;
    if (hf)
        sb_append(&s, fi->s, fi->n);
    if (hf && hl)
        sb_putc(&s, ' ');
    if (hl)
        sb_append(&s, la->s, la->n);
    val_text_take(nm, sb_steal(&s));
}

/* Which unique field a failed write collided on. */
static int
duplicate_error(store *st, objinfo *oi, int64_t self, err_t *e)
{
    for (size_t k = 0; k < oi->nunique; k++) {
        int ix = oi->unique[k];
        if (val_empty(&oi->vals[ix]))
            continue;
        char ids[1][19];
        int n = 0;
        if (ext_lookup(st, oi, ix, &oi->vals[ix], self, NULL, ids, 1, &n, e))
            return -1;
        if (n > 0) {
            const char *name = oi->o->fields[ix]->name;
            err_set(e, 400, "DUPLICATE_VALUE",
                    "duplicate value found: %s duplicates value on record with id: %s", name,
                    ids[0]);
            return err_fields(e, name);
        }
    }
    return err_set(e, 400, "DUPLICATE_VALUE", "duplicate value found: %s",
                   sqlite3_errmsg(st->db));
}

static const char *
actor_user(store *st, const lf_actor *a)
{
    if (a && a->user_id && a->user_id[0])
        return a->user_id;
    return st->default_user[0] ? st->default_user : NULL;
}

static void
set_user_val(val *v, const char *uid)
{
    if (uid)
        val_text_ref(v, uid, strlen(uid));
    else
        val_null(v);
}

/* Tell the change hook (if any) about a write just made. */
static int
fire_change(store *st, objinfo *oi, lf_change_type type, const char *id, const lf_actor *a,
            int64_t stamp, const lf_field *const *changed, size_t nchanged, err_t *e)
{
    if (st->hook.change == NULL)
        return 0;
    lf_change c = {
        .type = type,
        .object = oi->o,
        .id = id,
        .user_id = actor_user(st, a),
        .origin = a ? a->origin : NULL,
        .commit_ms = stamp,
        .changed = changed,
        .nchanged = nchanged,
    };
    if (c.user_id == NULL && oi->is_user)
        c.user_id = id;
    return st->hook.change(st->hook.ctx, st, &c, e);
}

/* With a change hook, a write outside a transaction gets one, so the hook's
 * rows and the change commit or roll back together; inside one it gets a
 * savepoint when the hook may refuse writes to its object (see store.h). */
static int
hooked_begin(store *st, const objinfo *oi, bool *opened, err_t *e)
{
    *opened = false;
    if (st->hook.change == NULL)
        return 0;
    if (st->tx_depth > 0 &&
        (oi == NULL || st->hook.refuses == NULL || !st->hook.refuses(st->hook.ctx, oi->o)))
        return 0;
    if (tx_begin(st, e))
        return -1;
    *opened = true;
    return 0;
}

static int
hooked_end(store *st, bool opened, int rc, err_t *e)
{
    if (!opened)
        return rc;
    if (rc != 0) {
        tx_rollback(st);
        return rc;
    }
    return tx_commit(st, e);
}

/* Step a bound write; on a constraint failure report the duplicate. */
static int
step_write(store *st, objinfo *oi, sqlite3_stmt *s, int64_t rowid, err_t *e)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc == SQLITE_DONE)
        return 0;
    if ((rc & 0xff) == SQLITE_CONSTRAINT || sqlite3_errcode(st->db) == SQLITE_CONSTRAINT) {
        if (sqlite3_extended_errcode(st->db) == SQLITE_CONSTRAINT_PRIMARYKEY)
            return 1; /* the caller retries with a fresh rowid */
        return duplicate_error(st, oi, rowid, e);
    }
    return db_error(st, e, "write");
}

static int
rec_create(store *st, objinfo *oi, const lf_actor *a, json_t *rec, int64_t stamp, int force_ix,
           const val *force, char id_out[19], err_t *e)
{
    const lf_object *o = oi->o;
    int rc = -1;
    sqlite3_stmt *ins = oi_ins(st, oi, e);
    if (ins == NULL)
        return -1;
    if (apply_rec(st, oi, rec, true, force_ix, NULL, e))
        goto out;
    if (force_ix >= 0) {
        val_ref(&oi->vals[force_ix], force);
        oi->given[force_ix] |= 1;
    }
    for (size_t k = 0; k < oi->ndefaulted; k++) {
        int ix = oi->defaulted[k];
        if (oi->vals[ix].kind == V_UNSET)
            val_ref(&oi->vals[ix], &oi->defaults[ix]);
    }
    if (check_required(oi, e))
        goto out;
    compute_name(oi);

    char id[19];
    int64_t rowid = 0;
    for (int attempt = 0;; attempt++) {
        if (oi_next_rowid(st, oi, &rowid, e))
            goto out;
        sfid_make(o->key_prefix, (uint64_t)rowid, id);
        if (stamp == 0)
            stamp = next_stamp(st);
        const char *uid = actor_user(st, a);
        if (uid == NULL && oi->is_user)
            uid = id;
        val_text_ref(&oi->vals[oi->ix_id], id, 18);
        val_int(&oi->vals[oi->ix_deleted], 0);
        val_int(&oi->vals[oi->ix_created], stamp);
        val_int(&oi->vals[oi->ix_modified], stamp);
        val_int(&oi->vals[oi->ix_stamp], stamp);
        set_user_val(&oi->vals[oi->ix_createdby], uid);
        set_user_val(&oi->vals[oi->ix_modifiedby], uid);
        if (val_empty(&oi->vals[oi->ix_owner]))
            set_user_val(&oi->vals[oi->ix_owner], uid);
        sqlite3_bind_int64(ins, 1, rowid);
        for (size_t i = 0; i < o->nfields; i++)
            bind_val(ins, (int)i + 2, &oi->vals[i]);
        int w = step_write(st, oi, ins, rowid, e);
        if (w < 0)
            goto out;
        if (w == 0)
            break;
        if (attempt > 0) {
            db_error(st, e, "insert");
            goto out;
        }
        oi->next_rowid = 0;
    }
    if (fire_change(st, oi, LF_CHANGE_CREATE, id, a, stamp, NULL, 0, e))
        goto out;
    memcpy(id_out, id, 19);
    rc = 0;
out:
    scratch_clear(oi);
    return rc;
}

/* Load row rowid into oi->vals. */
static int
load_row(store *st, objinfo *oi, int64_t rowid, err_t *e)
{
    sqlite3_stmt *q = oi_sel(st, oi, e);
    if (q == NULL)
        return -1;
    sqlite3_bind_int64(q, 1, rowid);
    int rc = sqlite3_step(q);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(q);
        return rc == SQLITE_DONE ? err_set(e, 404, "NOT_FOUND", not_found_msg)
                                 : db_error(st, e, "read");
    }
    for (size_t i = 0; i < oi->o->nfields; i++)
        column_val(q, (int)i + 1, lf_types[oi->o->fields[i]->type].storage, &oi->vals[i]);
    sqlite3_reset(q);
    return 0;
}

static int
rec_update(store *st, objinfo *oi, const lf_actor *a, int64_t rowid, const char *id18,
           json_t *rec, int64_t stamp, int skip_ix, err_t *e)
{
    const lf_object *o = oi->o;
    int rc = -1;
    val *before = NULL; /* the row as it was, when a change hook wants to know what changed */
    sqlite3_stmt *upd = oi_upd(st, oi, e);
    if (upd == NULL)
        return -1;
    if (load_row(st, oi, rowid, e))
        goto out;
    if (st->hook.change) {
        before = xcalloc(o->nfields, sizeof *before);
        for (size_t i = 0; i < o->nfields; i++)
            val_copy(&before[i], &oi->vals[i]);
    }
    if (apply_rec(st, oi, rec, false, skip_ix, id18, e))
        goto out;
    if (check_required(oi, e))
        goto out;
    compute_name(oi);
    if (stamp == 0)
        stamp = next_stamp(st);
    const char *uid = actor_user(st, a);
    val_int(&oi->vals[oi->ix_modified], stamp);
    val_int(&oi->vals[oi->ix_stamp], stamp);
    if (uid || !oi->is_user)
        set_user_val(&oi->vals[oi->ix_modifiedby], uid);
    if (val_empty(&oi->vals[oi->ix_owner]) && uid)
        set_user_val(&oi->vals[oi->ix_owner], uid);
    sqlite3_bind_int64(upd, 1, rowid);
    for (size_t i = 0; i < o->nfields; i++)
        if ((int)i != oi->ix_id && (int)i != oi->ix_created && (int)i != oi->ix_createdby)
            bind_val(upd, (int)i + 2, &oi->vals[i]);
    if (step_write(st, oi, upd, rowid, e))
        goto out;
    if (before) {
        const lf_field **changed = xcalloc(o->nfields, sizeof *changed);
        size_t n = 0;
        for (size_t i = 0; i < o->nfields; i++) {
            int ix = (int)i;
            if (ix == oi->ix_id || ix == oi->ix_created || ix == oi->ix_createdby ||
                ix == oi->ix_stamp)
                continue;
            if (!val_same(&before[i], &oi->vals[i]))
                changed[n++] = o->fields[i];
        }
        int hr = fire_change(st, oi, LF_CHANGE_UPDATE, id18, a, stamp, changed, n, e);
        free(changed);
        if (hr)
            goto out;
    }
    rc = 0;
out:
    if (before) {
        for (size_t i = 0; i < o->nfields; i++)
            val_reset(&before[i]);
        free(before);
    }
    scratch_clear(oi);
    return rc;
}

enum { FIND_GET, FIND_WRITE };

/* The live row of id in oi, with Salesforce's errors for each kind of miss. */
static int
find_row(store *st, objinfo *oi, const char *id, int mode, int64_t *rowid, char id18[19],
         err_t *e)
{
    if (id == NULL || sfid_normalize(id, id18) || !sfid_has_prefix(id18, oi->o->key_prefix)) {
        if (mode == FIND_GET)
            return err_set(e, 404, "NOT_FOUND", not_found_msg);
        err_set(e, 400, "MALFORMED_ID", "%s ID: id value of incorrect type: %.100s",
                oi->o->label, id ? id : "null");
        return err_fields(e, "Id");
    }
    int s = row_status(st, oi, id18, rowid, e);
    if (s < 0)
        return -1;
    if (s == 0)
        return err_set(e, 404, "NOT_FOUND", not_found_msg);
    if (s == 2)
        return err_set(e, 404, "ENTITY_IS_DELETED", "entity is deleted");
    return 0;
}

static objinfo *
need_object(store *st, const char *obj, err_t *e)
{
    objinfo *oi = oi_find(st, obj);
    if (oi == NULL)
        err_set(e, 404, "NOT_FOUND", not_found_msg);
    return oi;
}

/* ------------------------------------------------------------------------ */
/* Tables and metadata                                                      */

static void
column_def(sb *s, const lf_field *f)
{
    sb_sql_ident(s, f->name);
    switch (lf_types[f->type].storage) {
    case ST_TEXT:
        if (f->type == FT_ID)
            sb_puts(s, " TEXT UNIQUE");
        else if (f->type == FT_REFERENCE)
            sb_puts(s, " TEXT");
        else
            sb_puts(s, " TEXT COLLATE NOCASE");
        break;
    case ST_DATE: sb_puts(s, " TEXT"); break;
    case ST_INT:
    case ST_DATETIME: sb_puts(s, " INTEGER"); break;
    case ST_REAL: sb_puts(s, " REAL"); break;
    case ST_BOOL:
        sb_printf(s, " INTEGER NOT NULL DEFAULT %d",
                  f->default_value && strcmp(f->default_value, "true") == 0);
        break;
    }
}

static int
create_field_index(store *st, const lf_object *o, const lf_field *f, err_t *e)
{
    if (!f->unique && !f->external_id)
        return 0;
    sb name = SB_INIT, s = SB_INIT;
    sb_printf(&name, "%s__%s_%s", o->name, f->unique ? "u" : "x", f->name);
    sb_puts(&s, f->unique ? "CREATE UNIQUE INDEX " : "CREATE INDEX ");
    sb_sql_ident(&s, name.buf);
    sb_puts(&s, " ON ");
    sb_sql_ident(&s, o->name);
    sb_putc(&s, '(');
    sb_sql_ident(&s, f->name);
    if (f->case_sensitive)
        sb_puts(&s, " COLLATE BINARY");
    sb_puts(&s, ") WHERE \"IsDeleted\" = 0");
    int rc = sql_exec(st, s.buf, e);
    if (rc && f->unique && e)
        err_set(e, 400, "DUPLICATE_VALUE",
                "duplicate value found: %s has duplicate values in existing records", f->name);
    sb_free(&name);
    sb_free(&s);
    return rc;
}

static int
create_table(store *st, const lf_object *o, err_t *e)
{
    sb s = SB_INIT;
    sb_puts(&s, "CREATE TABLE ");
    sb_sql_ident(&s, o->name);
    sb_puts(&s, " (\"_rowid\" INTEGER PRIMARY KEY");
    for (size_t i = 0; i < o->nfields; i++) {
        sb_puts(&s, ", ");
        column_def(&s, o->fields[i]);
    }
    sb_puts(&s, ", \"_deleted_at\" INTEGER)");
    int rc = sql_exec(st, s.buf, e);
    for (int k = 0; k < 2 && rc == 0; k++) {
        sb name = SB_INIT;
        sb_clear(&s);
        sb_printf(&name, "%s__%s", o->name, k == 0 ? "stamp" : "deleted");
        sb_puts(&s, "CREATE INDEX ");
        sb_sql_ident(&s, name.buf);
        sb_puts(&s, " ON ");
        sb_sql_ident(&s, o->name);
        sb_puts(&s, k == 0 ? "(\"SystemModstamp\")" : "(\"_deleted_at\") WHERE \"IsDeleted\" = 1");
        rc = sql_exec(st, s.buf, e);
        sb_free(&name);
    }
    sb_free(&s);
    for (size_t i = 0; i < o->nfields && rc == 0; i++)
        rc = create_field_index(st, o, o->fields[i], e);
    return rc;
}

static int
add_column(store *st, const lf_object *o, const lf_field *f, err_t *e)
{
    sb s = SB_INIT;
    sb_puts(&s, "ALTER TABLE ");
    sb_sql_ident(&s, o->name);
    sb_puts(&s, " ADD COLUMN ");
    column_def(&s, f);
    int rc = sql_exec(st, s.buf, e);
    if (rc == 0 && f->default_value && lf_types[f->type].storage != ST_BOOL) {
        val d = {0};
        default_val(f, &d);
        sb_clear(&s);
        sb_puts(&s, "UPDATE ");
        sb_sql_ident(&s, o->name);
        sb_puts(&s, " SET ");
        sb_sql_ident(&s, f->name);
        sb_puts(&s, " = ?1");
        sqlite3_stmt *q = prep(st, s.buf, false, e);
        if (q == NULL) {
            rc = -1;
        } else {
            bind_val(q, 1, &d);
            if (sqlite3_step(q) != SQLITE_DONE)
                rc = db_error(st, e, "set default");
            sqlite3_finalize(q);
        }
        val_reset(&d);
    }
    sb_free(&s);
    return rc ? rc : create_field_index(st, o, f, e);
}

static int
save_object_def(store *st, const lf_object *o, err_t *e)
{
    json_t *j = schema_object_to_json(o);
    char *def = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    sqlite3_stmt *q = prep(st,
                           "INSERT INTO _lf_objects(name, pos, def) VALUES (?1, ?2, ?3) "
                           "ON CONFLICT(name) DO UPDATE SET def = excluded.def",
                           false, e);
    int rc = -1;
    if (q) {
        sqlite3_bind_text(q, 1, o->name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, (int64_t)oi_index(st, o));
        sqlite3_bind_text(q, 3, def, -1, SQLITE_STATIC);
        rc = sqlite3_step(q) == SQLITE_DONE ? 0 : db_error(st, e, "save object");
        sqlite3_finalize(q);
    }
    free(def);
    return rc;
}

static int
meta_put(store *st, const char *key, const char *text, int64_t num, err_t *e)
{
    sqlite3_stmt *q = prep(st, "INSERT OR REPLACE INTO _lf_meta(key, value) VALUES (?1, ?2)",
                           false, e);
    if (q == NULL)
        return -1;
    sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
    if (text)
        sqlite3_bind_text(q, 2, text, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(q, 2, num);
    int rc = sqlite3_step(q) == SQLITE_DONE ? 0 : db_error(st, e, "save metadata");
    sqlite3_finalize(q);
    return rc;
}

/* 1 found (text copied into *text if given, number into *num), 0 absent, -1 error. */
static int
meta_get(store *st, const char *key, char **text, int64_t *num, err_t *e)
{
    sqlite3_stmt *q = prep(st, "SELECT value FROM _lf_meta WHERE key = ?1", false, e);
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
        res = db_error(st, e, "read metadata");
    }
    sqlite3_finalize(q);
    return res;
}

static int
save_org_meta(store *st, err_t *e)
{
    if (meta_put(st, "org_id", st->org_id, 0, e) || meta_put(st, "org_name", st->org_name, 0, e) ||
        meta_put(st, "session_ttl_s", NULL, st->session_ttl_s, e) ||
        meta_put(st, "daily_api_limit", NULL, st->api_limit, e) ||
        meta_put(st, "created_ms", NULL, st->created_ms, e))
        return -1;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Schema changes with undo                                                 */

typedef struct snap {
    size_t  nobjects;
    size_t *nfields;
    char    default_user[19];
} snap;

static void
snap_take(store *st, snap *s)
{
    s->nobjects = st->schema.nobjects;
    s->nfields = xcalloc(s->nobjects ? s->nobjects : 1, sizeof *s->nfields);
    for (size_t i = 0; i < s->nobjects; i++)
        s->nfields[i] = st->schema.objects[i]->nfields;
    memcpy(s->default_user, st->default_user, sizeof s->default_user);
}

/* Forget objects and fields added since the snapshot (after a rollback). */
static void
snap_restore(store *st, snap *s)
{
    while (st->schema.nobjects > s->nobjects) {
        size_t i = --st->schema.nobjects;
        lf_object *o = st->schema.objects[i];
        objinfo_free(st->oi[i]);
        object_free(o);
    }
    for (size_t i = 0; i < s->nobjects; i++) {
        lf_object *o = st->schema.objects[i];
        while (o->nfields > s->nfields[i])
            field_free(o->fields[--o->nfields]);
        if (st->oi[i]->nf != o->nfields)
            oi_rebuild(st, i);
    }
    memcpy(st->default_user, s->default_user, sizeof s->default_user);
}

static void
snap_free(snap *s)
{
    free(s->nfields);
    s->nfields = NULL;
}

static bool
prefix_taken(store *st, const char *p, char (*extra)[4], size_t nextra)
{
    if (schema_object_by_prefix(&st->schema, p))
        return true;
    for (size_t i = 0; i < nextra; i++)
        if (memcmp(extra[i], p, 3) == 0)
            return true;
    return false;
}

/* The next free custom-object key prefix: a01, a02, ... a0z, a10, ... */
static void
assign_prefix(store *st, lf_object *o, char (*reserved)[4], size_t nreserved)
{
    static const char b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    for (int n = 1; n < 62 * 62; n++) {
        char p[4] = {'a', b62[n / 62], b62[n % 62], '\0'};
        if (!prefix_taken(st, p, reserved, nreserved)) {
            memcpy(o->key_prefix, p, 4);
            return;
        }
    }
}

/* Relationship names of o must not collide with field names or each other. */
static int
check_relationships(const lf_object *o, err_t *e)
{
    for (size_t i = 0; i < o->nfields; i++) {
        const lf_field *f = o->fields[i];
        if (f->type != FT_REFERENCE || f->relationship_name == NULL)
            continue;
        const lf_field *g = object_field(o, f->relationship_name);
        const lf_field *h = object_field_by_relationship(o, f->relationship_name);
        if (g || h != f)
            return err_set(e, 400, "INVALID_FIELD",
                           "objects.%s.fields.%s: relationship name '%s' is already used by %s",
                           o->name, f->name, f->relationship_name, g ? g->name : h->name);
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Users and apps                                                           */

static void
user_free(lf_user *u)
{
    if (u == NULL)
        return;
    free(u->username);
    free(u->password);
    free(u->first_name);
    free(u->last_name);
    free(u->email);
    free(u);
}

static void
app_free(lf_app *a)
{
    if (a == NULL)
        return;
    free(a->name);
    free(a->client_id);
    free(a->client_secret);
    free(a->run_as);
    free(a);
}

static void
users_clear(store *st)
{
    for (size_t i = 0; i < st->nusers; i++)
        user_free(st->users[i]);
    free(st->users);
    st->users = NULL;
    st->nusers = 0;
}

static void
apps_clear(store *st)
{
    for (size_t i = 0; i < st->napps; i++)
        app_free(st->apps[i]);
    free(st->apps);
    st->apps = NULL;
    st->napps = 0;
}

static char *
col_strdup(sqlite3_stmt *q, int col)
{
    const char *s = (const char *)sqlite3_column_text(q, col);
    return s ? xstrdup(s) : NULL;
}

/* The in-memory user list from the User table (passwords unset). */
static int
users_load(store *st, err_t *e)
{
    sqlite3_stmt *q = prep(st,
                           "SELECT \"Id\", \"Username\", \"FirstName\", \"LastName\", \"Email\", "
                           "\"IsActive\" FROM \"User\" WHERE \"IsDeleted\" = 0 ORDER BY \"_rowid\"",
                           false, e);
    if (q == NULL)
        return -1;
    users_clear(st);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        lf_user *u = xcalloc(1, sizeof *u);
        snprintf(u->id, sizeof u->id, "%s", (const char *)sqlite3_column_text(q, 0));
        u->username = col_strdup(q, 1);
        u->first_name = col_strdup(q, 2);
        u->last_name = col_strdup(q, 3);
        u->email = col_strdup(q, 4);
        u->active = sqlite3_column_int(q, 5) != 0;
        if (u->username == NULL) {
            user_free(u);
            continue;
        }
        if (st->nusers == cap) {
            cap = cap ? cap * 2 : 8;
            st->users = xrealloc(st->users, cap * sizeof *st->users);
        }
        st->users[st->nusers++] = u;
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE)
        return db_error(st, e, "load users");
    return 0;
}

static lf_user *
user_find(store *st, const char *username)
{
    for (size_t i = 0; i < st->nusers; i++)
        if (strcasecmp(st->users[i]->username, username) == 0)
            return st->users[i];
    return NULL;
}

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

/* Create o's table and metadata row and add it to the schema. */
static int
install_object(store *st, lf_object *o, err_t *e)
{
    if (add_object_mem(st, o, e)) {
        object_free(o);
        return -1;
    }
    if (create_table(st, o, e) || save_object_def(st, o, e))
        return -1;
    return 0;
}

static int
restore_schema(store *st, err_t *e)
{
    sqlite3_stmt *q = prep(st, "SELECT name, def FROM _lf_objects ORDER BY pos", false, e);
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
        if (add_object_mem(st, o, e)) {
            object_free(o);
            sqlite3_finalize(q);
            return -1;
        }
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE)
        return db_error(st, e, "load schema");
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
    if (sql_exec(st, "PRAGMA journal_mode=WAL", e) || sql_exec(st, "PRAGMA synchronous=NORMAL", e) ||
        sql_exec(st, "PRAGMA temp_store=MEMORY", e) || sql_exec(st, "PRAGMA cache_size=-65536", e) ||
        sql_exec(st, "PRAGMA foreign_keys=OFF", e))
        return -1;
    return sql_exec(st,
                    "CREATE TABLE IF NOT EXISTS _lf_meta (key TEXT PRIMARY KEY, value);"
                    "CREATE TABLE IF NOT EXISTS _lf_objects (name TEXT PRIMARY KEY COLLATE NOCASE,"
                    " pos INTEGER NOT NULL, def TEXT NOT NULL)",
                    e);
}

static int
init_org(store *st, err_t *e)
{
    int64_t ver = 0;
    int r = meta_get(st, "format", NULL, &ver, e);
    if (r < 0)
        return -1;
    if (r == 1 && ver != FORMAT_VERSION)
        return err_set(e, 500, "UNKNOWN_EXCEPTION",
                       "database format %lld is not supported (expected %d)", (long long)ver,
                       FORMAT_VERSION);
    char *text = NULL;
    if ((r = meta_get(st, "org_id", &text, NULL, e)) < 0)
        return -1;
    if (r == 1 && sfid_normalize(text, st->org_id) == 0 && sfid_has_prefix(st->org_id, "00D")) {
        free(text);
        text = NULL;
        if (meta_get(st, "org_name", &st->org_name, NULL, e) < 0 ||
            meta_get(st, "session_ttl_s", NULL, &st->session_ttl_s, e) < 0 ||
            meta_get(st, "daily_api_limit", NULL, &st->api_limit, e) < 0 ||
            meta_get(st, "created_ms", NULL, &st->created_ms, e) < 0 ||
            meta_get(st, "last_stamp", NULL, &st->last_stamp, e) < 0)
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
    if (tx_begin(st, e))
        return -1;
    if (install_object(st, user, e) || save_org_meta(st, e) ||
        meta_put(st, "format", NULL, FORMAT_VERSION, e)) {
        tx_rollback(st);
        return -1;
    }
    return tx_commit(st, e);
}

/* The modstamp high-water mark: the stored one or the newest record's. */
static int
init_stamp(store *st, err_t *e)
{
    for (size_t i = 0; i < st->schema.nobjects; i++) {
        sb s = SB_INIT;
        sb_puts(&s, "SELECT MAX(\"SystemModstamp\") FROM ");
        sb_sql_ident(&s, st->schema.objects[i]->name);
        sqlite3_stmt *q = prep(st, s.buf, false, e);
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
            tx_rollback(st);
        if (st->org_name)
            meta_put(st, "last_stamp", NULL, st->last_stamp, NULL);
        for (size_t i = 0; i < st->schema.nobjects; i++)
            objinfo_free(st->oi[i]);
        if (sqlite3_close(st->db) != SQLITE_OK)
            log_error("store: close: %s", sqlite3_errmsg(st->db));
    }
    free(st->oi);
    schema_free(&st->schema);
    users_clear(st);
    apps_clear(st);
    free(st->org_name);
    pthread_mutex_destroy(&st->mu);
    free(st);
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

const lf_user *
store_user_by_name(store *st, const char *username)
{
    if (username == NULL)
        return NULL;
    store_lock(st);
    const lf_user *u = user_find(st, username);
    store_unlock(st);
    return u && u->password ? u : NULL;
}

const lf_user *
store_user_by_id(store *st, const char *id)
{
    char id18[19];
    const lf_user *u = NULL;
    if (id == NULL || sfid_normalize(id, id18))
        return NULL;
    store_lock(st);
    for (size_t i = 0; i < st->nusers && u == NULL; i++)
        if (strcmp(st->users[i]->id, id18) == 0)
            u = st->users[i];
    store_unlock(st);
    return u;
}

const lf_app *
store_app(store *st, const char *client_id)
{
    const lf_app *a = NULL;
    if (client_id == NULL)
        return NULL;
    store_lock(st);
    for (size_t i = 0; i < st->napps && a == NULL; i++)
        if (strcmp(st->apps[i]->client_id, client_id) == 0)
            a = st->apps[i];
    store_unlock(st);
    return a;
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
    int64_t v = next_stamp(st);
    store_unlock(st);
    return v;
}

int
store_begin(store *st, err_t *e)
{
    store_lock(st);
    if (tx_begin(st, e)) {
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
    int rc = tx_commit(st, e);
    store_unlock(st);
    store_unlock(st); /* the lock store_begin took */
    return rc;
}

void
store_rollback(store *st)
{
    store_lock(st);
    if (st->tx_depth > 0) {
        tx_rollback(st);
        store_unlock(st); /* the lock store_begin took */
    }
    store_unlock(st);
}

/* ------------------------------------------------------------------------ */
/* Org definition file                                                      */

static int
org_error(err_t *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
org_error(err_t *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_setv(e, 400, "INVALID_FIELD", fmt, ap);
    va_end(ap);
    return -1;
}

/* Every key of obj must be in keys[]; path names obj in the error. */
static int
check_keys(json_t *obj, const char *path, const char *const *keys, size_t nkeys, err_t *e)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        size_t i;
        for (i = 0; i < nkeys; i++)
            if (strcmp(keys[i], k) == 0)
                break;
        if (i == nkeys)
            return org_error(e, "%s: unknown key '%s'", path, k);
    }
    return 0;
}

/* Optional string member; NULL if absent. -1 if present but not a non-empty string. */
static int
opt_string(json_t *obj, const char *key, const char *path, const char **out, err_t *e)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (v == NULL)
        return 0;
    if (!json_is_string(v) || json_string_length(v) == 0)
        return org_error(e, "%s.%s: must be a non-empty string", path, key);
    *out = json_string_value(v);
    return 0;
}

static int
opt_positive(json_t *obj, const char *key, const char *path, int64_t *out, err_t *e)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) <= 0)
        return org_error(e, "%s.%s: must be a positive integer", path, key);
    *out = json_integer_value(v);
    return 0;
}

typedef struct org_plan {
    const char *org_name;
    char        org_id[19];
    int64_t     ttl, limit;
    json_t     *users, *apps, *objects, *records;
} org_plan;

/* Validate what can be checked before touching the store. */
static int
org_parse(store *st, json_t *org, org_plan *p, err_t *e)
{
    static const char *const top[] = {"organization", "settings", "connected_apps",
                                       "users", "objects", "records"};
    static const char *const org_keys[] = {"name", "id"};
    static const char *const set_keys[] = {"session_ttl_seconds", "daily_api_limit"};
    static const char *const user_keys[] = {"username", "password", "first_name",
                                            "last_name", "email", "active"};
    static const char *const app_keys[] = {"name", "client_id", "client_secret", "run_as"};
    memset(p, 0, sizeof *p);
    p->ttl = 7200;
    p->limit = 100000;
    if (!json_is_object(org))
        return org_error(e, "the org definition must be a JSON object");
    if (check_keys(org, "(top level)", top, 6, e))
        return -1;

    json_t *o = json_object_get(org, "organization");
    if (o) {
        const char *id;
        if (!json_is_object(o))
            return org_error(e, "organization: must be a JSON object");
        if (check_keys(o, "organization", org_keys, 2, e) ||
            opt_string(o, "name", "organization", &p->org_name, e) ||
            opt_string(o, "id", "organization", &id, e))
            return -1;
        if (id && (sfid_normalize(id, p->org_id) || !sfid_has_prefix(p->org_id, "00D")))
            return org_error(e, "organization.id: '%s' is not a 15- or 18-character ID with "
                                "prefix 00D", id);
    }
    json_t *s = json_object_get(org, "settings");
    if (s) {
        if (!json_is_object(s))
            return org_error(e, "settings: must be a JSON object");
        if (check_keys(s, "settings", set_keys, 2, e) ||
            opt_positive(s, "session_ttl_seconds", "settings", &p->ttl, e) ||
            opt_positive(s, "daily_api_limit", "settings", &p->limit, e))
            return -1;
    }

    p->users = json_object_get(org, "users");
    if (p->users && !json_is_array(p->users))
        return org_error(e, "users: must be an array");
    for (size_t i = 0; i < json_array_size(p->users); i++) {
        json_t *u = json_array_get(p->users, i);
        char path[64];
        const char *un, *pw, *x;
        snprintf(path, sizeof path, "users[%zu]", i);
        if (!json_is_object(u))
            return org_error(e, "%s: must be a JSON object", path);
        if (check_keys(u, path, user_keys, 6, e) || opt_string(u, "username", path, &un, e) ||
            opt_string(u, "password", path, &pw, e) || opt_string(u, "first_name", path, &x, e) ||
            opt_string(u, "last_name", path, &x, e) || opt_string(u, "email", path, &x, e))
            return -1;
        if (un == NULL || pw == NULL)
            return org_error(e, "%s: 'username' and 'password' are required", path);
        json_t *act = json_object_get(u, "active");
        if (act && !json_is_boolean(act))
            return org_error(e, "%s.active: must be true or false", path);
        for (size_t j = 0; j < i; j++)
            if (strcasecmp(json_string_value(json_object_get(json_array_get(p->users, j),
                                                             "username")),
                           un) == 0)
                return org_error(e, "%s: username '%s' is listed twice", path, un);
    }

    p->apps = json_object_get(org, "connected_apps");
    if (p->apps && !json_is_array(p->apps))
        return org_error(e, "connected_apps: must be an array");
    for (size_t i = 0; i < json_array_size(p->apps); i++) {
        json_t *a = json_array_get(p->apps, i);
        char path[64];
        const char *cid, *sec, *run, *name;
        snprintf(path, sizeof path, "connected_apps[%zu]", i);
        if (!json_is_object(a))
            return org_error(e, "%s: must be a JSON object", path);
        if (check_keys(a, path, app_keys, 4, e) || opt_string(a, "name", path, &name, e) ||
            opt_string(a, "client_id", path, &cid, e) ||
            opt_string(a, "client_secret", path, &sec, e) || opt_string(a, "run_as", path, &run, e))
            return -1;
        if (cid == NULL || sec == NULL)
            return org_error(e, "%s: 'client_id' and 'client_secret' are required", path);
        for (size_t j = 0; j < i; j++)
            if (strcmp(json_string_value(json_object_get(json_array_get(p->apps, j), "client_id")),
                       cid) == 0)
                return org_error(e, "%s: client_id '%s' is listed twice", path, cid);
        if (run) {
            bool found = user_find(st, run) != NULL;
            for (size_t j = 0; j < json_array_size(p->users) && !found; j++)
                found = strcasecmp(json_string_value(json_object_get(
                                       json_array_get(p->users, j), "username")),
                                   run) == 0;
            if (!found)
                return org_error(e, "%s.run_as: '%s' is not one of the users", path, run);
        }
    }

    p->objects = json_object_get(org, "objects");
    if (p->objects && !json_is_object(p->objects))
        return org_error(e, "objects: must be a JSON object");
    p->records = json_object_get(org, "records");
    if (p->records && !json_is_object(p->records))
        return org_error(e, "records: must be a JSON object");
    return 0;
}

/* Declared objects and fields not yet in the schema: into memory and SQLite.
 * created[] receives the objects created now. */
static int
org_apply_objects(store *st, org_plan *p, lf_object ***created, size_t *ncreated, err_t *e)
{
    size_t n = json_object_size(p->objects);
    char (*reserved)[4] = xcalloc(n ? n : 1, sizeof *reserved);
    size_t nreserved = 0;
    const char *name;
    json_t *def;
    json_object_foreach(p->objects, name, def) {
        json_t *kp = json_is_object(def) ? json_object_get(def, "key_prefix") : NULL;
        if (json_is_string(kp) && json_string_length(kp) == 3)
            memcpy(reserved[nreserved++], json_string_value(kp), 4);
    }
    *created = xcalloc(n ? n : 1, sizeof **created);
    *ncreated = 0;
    /* Existing objects that get fields: index -> field count before. */
    size_t nexist = st->schema.nobjects;
    size_t *before = xcalloc(nexist ? nexist : 1, sizeof *before);
    for (size_t i = 0; i < nexist; i++)
        before[i] = st->schema.objects[i]->nfields;
    int rc = -1;

    json_object_foreach(p->objects, name, def) {
        lf_object *tmp = schema_object_from_json(name, def, e);
        if (tmp == NULL)
            goto out;
        lf_object *ex = schema_object(&st->schema, tmp->name);
        if (ex == NULL) {
            if (tmp->key_prefix[0] == '\0')
                assign_prefix(st, tmp, reserved, nreserved);
            if (add_object_mem(st, tmp, e)) {
                object_free(tmp);
                goto out;
            }
            (*created)[(*ncreated)++] = tmp;
            continue;
        }
        if (oi_index(st, ex) >= nexist) {
            org_error(e, "objects.%s: declared twice", name);
            object_free(tmp);
            goto out;
        }
        for (size_t i = 0; i < tmp->nfields; i++) {
            lf_field *f = tmp->fields[i];
            if (f->system || strcmp(f->name, "OwnerId") == 0 || strcmp(f->name, "Name") == 0 ||
                object_field(ex, f->name))
                continue;
            tmp->fields[i] = NULL;
            object_add_field(ex, f, NULL);
        }
        object_free(tmp);
        if (check_relationships(ex, e))
            goto out;
    }
    if (schema_validate(&st->schema, e))
        goto out;
    for (size_t i = 0; i < nexist; i++) {
        lf_object *o = st->schema.objects[i];
        if (o->nfields == before[i])
            continue;
        for (size_t k = before[i]; k < o->nfields; k++)
            if (add_column(st, o, o->fields[k], e))
                goto out;
        if (save_object_def(st, o, e))
            goto out;
        oi_rebuild(st, i);
        before[i] = o->nfields;
    }
    for (size_t i = 0; i < *ncreated; i++)
        if (create_table(st, (*created)[i], e) || save_object_def(st, (*created)[i], e))
            goto out;
    rc = 0;
out:
    free(reserved);
    free(before);
    return rc;
}

/* Users of the file into the User table; returns the first one's Id in first_id. */
static int
org_apply_users(store *st, org_plan *p, err_t *e)
{
    objinfo *uoi = oi_find(st, "User");
    for (size_t i = 0; i < json_array_size(p->users); i++) {
        json_t *u = json_array_get(p->users, i);
        const char *un = json_string_value(json_object_get(u, "username"));
        const char *fn = json_string_value(json_object_get(u, "first_name"));
        const char *ln = json_string_value(json_object_get(u, "last_name"));
        const char *em = json_string_value(json_object_get(u, "email"));
        json_t *act = json_object_get(u, "active");
        char local[128];
        if (ln == NULL) {
            snprintf(local, sizeof local, "%s", un);
            char *at = strchr(local, '@');
            if (at && at != local)
                *at = '\0';
            ln = local;
        }
        if (em == NULL)
            em = un;
        bool active = act == NULL || json_is_true(act);
        json_t *rec = json_object();
        json_object_set_new(rec, "Username", json_string(un));
        json_object_set_new(rec, "FirstName", fn ? json_string(fn) : json_null());
        json_object_set_new(rec, "LastName", json_string(ln));
        json_object_set_new(rec, "Email", json_string(em));
        json_object_set_new(rec, "IsActive", json_boolean(active));
        lf_user *cur = user_find(st, un);
        char id[19];
        int rc;
        if (cur == NULL) {
            rc = rec_create(st, uoi, NULL, rec, 0, -1, NULL, id, e);
        } else {
            memcpy(id, cur->id, 19);
            bool same = util_streq_ci(cur->last_name, ln) && util_streq_ci(cur->email, em) &&
                        cur->active == active &&
                        ((fn == NULL && cur->first_name == NULL) ||
                         util_streq_ci(cur->first_name, fn));
            rc = same ? 0
                      : rec_update(st, uoi, NULL, sfid_seq(cur->id), cur->id, rec, 0, -1, e);
        }
        json_decref(rec);
        if (rc) {
            err_prefix(e, "users[%zu]", i);
            return -1;
        }
        if (i == 0)
            memcpy(st->default_user, id, 19);
    }
    return 0;
}

static int
load_records_locked(store *st, objinfo *oi, const lf_actor *a, json_t *records, int64_t *loaded,
                    const char *what, err_t *e);

static int
org_apply_records(store *st, org_plan *p, lf_object **created, size_t ncreated, err_t *e)
{
    const char *name;
    json_t *recs;
    json_object_foreach(p->records, name, recs) {
        objinfo *oi = oi_find(st, name);
        if (oi == NULL)
            return org_error(e, "records.%s: unknown object", name);
        bool is_new = false;
        for (size_t i = 0; i < ncreated && !is_new; i++)
            is_new = created[i] == oi->o;
        if (!json_is_array(recs))
            return org_error(e, "records.%s: must be an array", name);
        if (!is_new)
            continue;
        char what[256];
        snprintf(what, sizeof what, "records.%.200s", name);
        int64_t n;
        if (load_records_locked(st, oi, NULL, recs, &n, what, e))
            return -1;
    }
    return 0;
}

static void
org_commit_memory(store *st, org_plan *p)
{
    /* passwords */
    for (size_t i = 0; i < json_array_size(p->users); i++) {
        json_t *u = json_array_get(p->users, i);
        lf_user *cur = user_find(st, json_string_value(json_object_get(u, "username")));
        if (cur) {
            free(cur->password);
            cur->password = xstrdup(json_string_value(json_object_get(u, "password")));
        }
    }
    apps_clear(st);
    size_t n = json_array_size(p->apps);
    st->apps = xcalloc(n ? n : 1, sizeof *st->apps);
    for (size_t i = 0; i < n; i++) {
        json_t *a = json_array_get(p->apps, i);
        lf_app *app = xcalloc(1, sizeof *app);
        const char *name = json_string_value(json_object_get(a, "name"));
        const char *run = json_string_value(json_object_get(a, "run_as"));
        app->client_id = xstrdup(json_string_value(json_object_get(a, "client_id")));
        app->client_secret = xstrdup(json_string_value(json_object_get(a, "client_secret")));
        app->name = xstrdup(name ? name : app->client_id);
        if (run) {
            lf_user *u = user_find(st, run);
            app->run_as = xstrdup(u ? u->username : run);
        }
        st->apps[st->napps++] = app;
    }
}

static int
load_org_locked(store *st, json_t *org, err_t *e)
{
    org_plan p;
    if (org_parse(st, org, &p, e))
        return -1;
    if (st->tx_depth > 0)
        return err_set(e, 500, "UNKNOWN_EXCEPTION", "cannot load an org inside a transaction");
    snap sn;
    snap_take(st, &sn);
    char *old_name = st->org_name;
    char old_id[19];
    int64_t old_ttl = st->session_ttl_s, old_limit = st->api_limit;
    memcpy(old_id, st->org_id, sizeof old_id);
    lf_object **created = NULL;
    size_t ncreated = 0;
    if (tx_begin(st, e)) {
        snap_free(&sn);
        return -1;
    }
    if (p.org_name)
        st->org_name = xstrdup(p.org_name);
    if (p.org_id[0])
        memcpy(st->org_id, p.org_id, sizeof st->org_id);
    st->session_ttl_s = p.ttl;
    st->api_limit = p.limit;
    int rc = -1;
    if (org_apply_objects(st, &p, &created, &ncreated, e) || save_org_meta(st, e) ||
        org_apply_users(st, &p, e) || users_load(st, e) ||
        org_apply_records(st, &p, created, ncreated, e) || tx_commit(st, e)) {
        if (st->tx_depth > 0)
            tx_rollback(st);
        snap_restore(st, &sn);
        if (st->org_name != old_name) {
            free(st->org_name);
            st->org_name = old_name;
        }
        memcpy(st->org_id, old_id, sizeof old_id);
        st->session_ttl_s = old_ttl;
        st->api_limit = old_limit;
        users_load(st, NULL);
    } else {
        if (st->org_name != old_name)
            free(old_name);
        org_commit_memory(st, &p);
        rc = 0;
    }
    free(created);
    snap_free(&sn);
    return rc;
}

int
store_load_org_json(store *st, json_t *org, err_t *e)
{
    store_lock(st);
    int rc = load_org_locked(st, org, e);
    store_unlock(st);
    return rc;
}

int
store_load_org_file(store *st, const char *path, err_t *e)
{
    json_error_t je;
    json_t *org = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (org == NULL && je.line > 0)
        return err_set(e, 400, "JSON_PARSER_ERROR", "line %d, column %d: %s", je.line, je.column,
                       je.text);
    if (org == NULL)
        return err_set(e, 400, "JSON_PARSER_ERROR", "%s", je.text);
    int rc = store_load_org_json(st, org, e);
    json_decref(org);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Records: public API                                                      */

int
store_create(store *st, const lf_actor *a, const char *obj, json_t *rec, char id_out[19],
             err_t *e)
{
    store_lock(st);
    objinfo *oi = need_object(st, obj, e);
    bool opened;
    int rc = -1;
    if (oi && hooked_begin(st, oi, &opened, e) == 0)
        rc = hooked_end(st, opened, rec_create(st, oi, a, rec, 0, -1, NULL, id_out, e), e);
    store_unlock(st);
    return rc;
}

int
store_update(store *st, const lf_actor *a, const char *obj, const char *id, json_t *rec,
             err_t *e)
{
    int64_t rowid = 0;
    char id18[19];
    store_lock(st);
    objinfo *oi = need_object(st, obj, e);
    int rc = -1;
    bool opened;
    if (oi && find_row(st, oi, id, FIND_WRITE, &rowid, id18, e) == 0 &&
        hooked_begin(st, oi, &opened, e) == 0)
        rc = hooked_end(st, opened, rec_update(st, oi, a, rowid, id18, rec, 0, -1, e), e);
    store_unlock(st);
    return rc;
}

int
store_delete(store *st, const lf_actor *a, const char *obj, const char *id, err_t *e)
{
    int64_t rowid = 0;
    char id18[19];
    store_lock(st);
    objinfo *oi = need_object(st, obj, e);
    int rc = -1;
    bool opened;
    if (oi && find_row(st, oi, id, FIND_WRITE, &rowid, id18, e) == 0 &&
        hooked_begin(st, oi, &opened, e) == 0) {
        sqlite3_stmt *d = oi_del(st, oi, e);
        if (d) {
            int64_t stamp = next_stamp(st);
            sqlite3_bind_int64(d, 1, rowid);
            sqlite3_bind_int64(d, 2, stamp);
            rc = sqlite3_step(d) == SQLITE_DONE ? 0 : db_error(st, e, "delete");
            sqlite3_reset(d);
            if (rc == 0)
                rc = fire_change(st, oi, LF_CHANGE_DELETE, id18, a, stamp, NULL, 0, e);
        }
        rc = hooked_end(st, opened, rc, e);
    }
    store_unlock(st);
    return rc;
}

int
store_undelete(store *st, const lf_actor *a, const char *obj, const char *id, err_t *e)
{
    int64_t rowid = 0;
    char id18[19];
    store_lock(st);
    objinfo *oi = need_object(st, obj, e);
    int rc = -1;
    bool opened;
    int status = 0;
    if (oi && (id == NULL || sfid_normalize(id, id18) || !sfid_has_prefix(id18, oi->o->key_prefix))) {
        err_set(e, 400, "MALFORMED_ID", "%s ID: id value of incorrect type: %.100s", oi->o->label,
                id ? id : "null");
        oi = NULL;
    }
    if (oi && (status = row_status(st, oi, id18, &rowid, e)) >= 0) {
        if (status == 0)
            err_set(e, 404, "NOT_FOUND", not_found_msg);
        else if (status == 1)
            err_set(e, 400, "UNDELETE_FAILED", "Entity is not in the recycle bin");
        else if (hooked_begin(st, oi, &opened, e) == 0) {
            sb s = SB_INIT;
            sb_puts(&s, "UPDATE ");
            sb_sql_ident(&s, oi->o->name);
            sb_puts(&s, " SET \"IsDeleted\" = 0, \"_deleted_at\" = NULL, \"SystemModstamp\" = ?2 "
                        "WHERE \"_rowid\" = ?1");
            sqlite3_stmt *u = prep(st, s.buf, false, e);
            sb_free(&s);
            if (u) {
                int64_t stamp = next_stamp(st);
                sqlite3_bind_int64(u, 1, rowid);
                sqlite3_bind_int64(u, 2, stamp);
                rc = sqlite3_step(u) == SQLITE_DONE ? 0 : db_error(st, e, "undelete");
                sqlite3_finalize(u);
                if (rc == 0)
                    rc = fire_change(st, oi, LF_CHANGE_UNDELETE, id18, a, stamp, NULL, 0, e);
            }
            rc = hooked_end(st, opened, rc, e);
        }
    }
    store_unlock(st);
    return rc;
}

static int
upsert_locked(store *st, const lf_actor *a, const char *obj, const char *ext_field,
              const char *ext_value, json_t *rec, const char *ver, char id_out[19],
              bool *created, sb *matches, err_t *e)
{
    objinfo *oi = need_object(st, obj, e);
    if (oi == NULL)
        return -1;
    bool made = false;
    int rc = -1;
    int ix = ext_field ? namemap_get(&oi->byname, oi->o, ext_field, false) : -1;
    if (ix >= 0 && ix == oi->ix_id) {
        if (ext_value == NULL || ext_value[0] == '\0') {
            rc = rec_create(st, oi, a, rec, 0, -1, NULL, id_out, e);
            made = true;
        } else {
            int64_t rowid = 0;
            char id18[19];
            rc = find_row(st, oi, ext_value, FIND_WRITE, &rowid, id18, e);
            if (rc == 0)
                rc = rec_update(st, oi, a, rowid, id18, rec, 0, ix, e);
            if (rc == 0)
                memcpy(id_out, id18, 19);
        }
        if (rc == 0 && created)
            *created = made;
        return rc;
    }
    const lf_field *f = ix >= 0 ? oi->o->fields[ix] : NULL;
    if (f == NULL || !f->external_id)
        return err_set(e, 404, "NOT_FOUND",
                       "Provided external ID field does not exist or is not accessible: %s",
                       ext_field ? ext_field : "null");
    if (ext_value == NULL || ext_value[0] == '\0')
        return err_set(e, 404, "NOT_FOUND", not_found_msg);
    json_t *jv = json_string(ext_value);
    if (jv == NULL)
        return err_set(e, 400, "JSON_PARSER_ERROR", "%s: the external id is not valid UTF-8",
                       f->name);
    val key = {0};
    int64_t rows[2];
    char ids[2][19];
    int n = 0;
    if (convert(st, f, jv, &key, e) ||
        ext_lookup(st, oi, ix, &key, 0, rows, ids, 2, &n, e))
        goto out;
    if (n == 0) {
        rc = rec_create(st, oi, a, rec, 0, ix, &key, id_out, e);
        made = true;
    } else if (n == 1) {
        rc = rec_update(st, oi, a, rows[0], ids[0], rec, 0, ix, e);
        if (rc == 0)
            memcpy(id_out, ids[0], 19);
    } else {
        if (matches) {
            /* All matching record URLs, as Salesforce lists them for a 300. */
            sqlite3_stmt *q = oi_ext(st, oi, ix, e);
            if (q == NULL)
                goto out;
            bind_val(q, 1, &key);
            sb_putc(matches, '[');
            int k = 0;
            while (sqlite3_step(q) == SQLITE_ROW && k < MAX_MATCHES) {
                sb url = SB_INIT;
                sb_printf(&url, "/services/data/v%s/sobjects/%s/%s", ver ? ver : "59.0",
                          oi->o->name, (const char *)sqlite3_column_text(q, 1));
                if (k++)
                    sb_putc(matches, ',');
                sb_json_strn(matches, url.buf, url.len);
                sb_free(&url);
            }
            sqlite3_reset(q);
            sqlite3_clear_bindings(q);
            sb_putc(matches, ']');
        }
        err_set(e, 300, "MULTIPLE_CHOICES",
                "More than one record found for external id field %s with value %.200s", f->name,
                ext_value);
        err_fields(e, f->name);
    }
out:
    val_reset(&key);
    json_decref(jv);
    if (rc == 0 && created)
        *created = made;
    return rc;
}

int
store_upsert(store *st, const lf_actor *a, const char *obj, const char *ext_field,
             const char *ext_value, json_t *rec, const char *ver, char id_out[19], bool *created,
             sb *matches, err_t *e)
{
    store_lock(st);
    bool opened;
    int rc = -1;
    if (hooked_begin(st, oi_find(st, obj), &opened, e) == 0)
        rc = hooked_end(st, opened,
                        upsert_locked(st, a, obj, ext_field, ext_value, rec, ver, id_out, created,
                                      matches, e),
                        e);
    store_unlock(st);
    return rc;
}

static int
get_locked(store *st, const char *obj, const char *id, const char *fields, const char *ver,
           sb *out, err_t *e)
{
    objinfo *oi = need_object(st, obj, e);
    if (oi == NULL)
        return -1;
    const lf_object *o = oi->o;
    int *pick = NULL;
    size_t npick = 0;
    if (fields) {
        pick = xcalloc(o->nfields + 1, sizeof *pick);
        unsigned char *seen = xcalloc(o->nfields, 1);
        const char *p = fields;
        while (*p) {
            const char *q = strchr(p, ',');
            size_t len = q ? (size_t)(q - p) : strlen(p);
            while (len && isspace((unsigned char)*p))
                p++, len--;
            while (len && isspace((unsigned char)p[len - 1]))
                len--;
            if (len) {
                char name[256];
                snprintf(name, sizeof name, "%.*s", (int)(len > 255 ? 255 : len), p);
                int ix = len < 256 ? namemap_get(&oi->byname, o, name, false) : -1;
                if (ix < 0) {
                    free(pick);
                    free(seen);
                    return err_set(e, 400, "INVALID_FIELD",
                                   "No such column '%s' on entity '%s'. If you are attempting "
                                   "to use a custom field, be sure to append the '__c' after "
                                   "the custom field name. Please reference your WSDL or the "
                                   "describe call for the appropriate names.",
                                   name, o->name);
                }
                if (!seen[ix]) {
                    seen[ix] = 1;
                    pick[npick++] = ix;
                }
            }
            if (q == NULL)
                break;
            p = q + 1;
        }
        if (!seen[oi->ix_id])
            pick[npick++] = oi->ix_id;
        free(seen);
    }
    int64_t rowid = 0;
    char id18[19];
    int rc = find_row(st, oi, id, FIND_GET, &rowid, id18, e);
    sqlite3_stmt *q = rc == 0 ? oi_sel(st, oi, e) : NULL;
    if (q == NULL) {
        free(pick);
        return -1;
    }
    sqlite3_bind_int64(q, 1, rowid);
    if (sqlite3_step(q) != SQLITE_ROW) {
        sqlite3_reset(q);
        free(pick);
        return db_error(st, e, "read");
    }
    sb_puts(out, "{\"attributes\":");
    fmt_attributes(out, o->name, ver, id18);
    size_t n = pick ? npick : o->nfields;
    for (size_t k = 0; k < n; k++) {
        int ix = pick ? pick[k] : (int)k;
        sb_putc(out, ',');
        sb_json_str(out, o->fields[ix]->name);
        sb_putc(out, ':');
        fmt_value(out, o->fields[ix], q, ix + 1);
    }
    sb_putc(out, '}');
    sqlite3_reset(q);
    free(pick);
    return 0;
}

int
store_get(store *st, const char *obj, const char *id, const char *fields, const char *ver,
          sb *out, err_t *e)
{
    store_lock(st);
    int rc = get_locked(st, obj, id, fields, ver, out, e);
    store_unlock(st);
    return rc;
}

const lf_object *
store_object_for_id(store *st, const char *id)
{
    char id18[19];
    if (id == NULL || sfid_normalize(id, id18))
        return NULL;
    store_lock(st);
    const lf_object *o = schema_object_by_prefix(&st->schema, id18);
    objinfo *oi = o ? oi_of(st, o) : NULL;
    if (oi && row_status(st, oi, id18, NULL, NULL) <= 0)
        o = NULL;
    store_unlock(st);
    return o;
}

/* ------------------------------------------------------------------------ */
/* Replication                                                              */

static int
replication_window(store *st, int64_t start, int64_t end, int64_t max_days, int64_t *from,
                   int64_t *to, err_t *e)
{
    int64_t now = util_now_ms();
    if (start >= end)
        return err_set(e, 400, "INVALID_REPLICATION_DATE",
                       "startDate must chronologically precede endDate");
    if (start < now - max_days * DAY_MS)
        return err_set(e, 400, "INVALID_REPLICATION_DATE",
                       "startDate cannot be more than %lld days ago", (long long)max_days);
    (void)st;
    *from = floor_minute(start);
    *to = floor_minute(end);
    int64_t cap = floor_minute(now);
    if (*to > cap)
        *to = cap;
    if (*to < *from)
        *to = *from;
    return 0;
}

static void
put_datetime(sb *out, int64_t ms)
{
    char buf[32];
    util_fmt_datetime(ms, buf);
    sb_putc(out, '"');
    sb_puts(out, buf);
    sb_putc(out, '"');
}

static int
replication_locked(store *st, const char *obj, int64_t start, int64_t end, bool deleted, sb *out,
                   err_t *e)
{
    objinfo *oi = need_object(st, obj, e);
    int64_t from = 0, to = 0;
    if (oi == NULL || replication_window(st, start, end, deleted ? 15 : 30, &from, &to, e))
        return -1;
    sb s = SB_INIT;
    if (deleted)
        sb_puts(&s, "SELECT \"Id\", \"_deleted_at\" FROM ");
    else
        sb_puts(&s, "SELECT \"Id\", \"SystemModstamp\" FROM ");
    sb_sql_ident(&s, oi->o->name);
    if (deleted)
        sb_printf(&s, " WHERE \"IsDeleted\" = 1 AND \"_deleted_at\" >= ?1 AND \"_deleted_at\" < ?2"
                      " ORDER BY \"_deleted_at\", \"_rowid\" LIMIT %d",
                  MAX_REPLICATION_IDS + 1);
    else
        sb_printf(&s, " WHERE \"SystemModstamp\" >= ?1 AND \"SystemModstamp\" < ?2 AND "
                      "\"IsDeleted\" = 0 ORDER BY \"SystemModstamp\", \"_rowid\" LIMIT %d",
                  MAX_REPLICATION_IDS + 1);
    sqlite3_stmt *q = prep(st, s.buf, false, e);
    sb_free(&s);
    if (q == NULL)
        return -1;
    sqlite3_bind_int64(q, 1, from);
    sqlite3_bind_int64(q, 2, to);
    sb body = SB_INIT;
    sb_puts(&body, deleted ? "{\"deletedRecords\":[" : "{\"ids\":[");
    int rc, n = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (++n > MAX_REPLICATION_IDS)
            break;
        if (n > 1)
            sb_putc(&body, ',');
        const char *id = (const char *)sqlite3_column_text(q, 0);
        if (deleted) {
            sb_puts(&body, "{\"id\":");
            sb_json_str(&body, id);
            sb_puts(&body, ",\"deletedDate\":");
            put_datetime(&body, sqlite3_column_int64(q, 1));
            sb_putc(&body, '}');
        } else {
            sb_json_str(&body, id);
        }
    }
    sqlite3_finalize(q);
    if (n > MAX_REPLICATION_IDS) {
        sb_free(&body);
        return err_set(e, 400, "EXCEEDED_ID_LIMIT",
                       "There are more than %d records in the window: use a shorter one",
                       MAX_REPLICATION_IDS);
    }
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        sb_free(&body);
        return db_error(st, e, "replication");
    }
    sb_putc(&body, ']');
    if (deleted) {
        sb_puts(&body, ",\"earliestDateAvailable\":");
        put_datetime(&body, floor_minute(st->created_ms));
    }
    sb_puts(&body, ",\"latestDateCovered\":");
    put_datetime(&body, to);
    sb_putc(&body, '}');
    sb_append(out, body.buf, body.len);
    sb_free(&body);
    return 0;
}

int
store_updated(store *st, const char *obj, int64_t start, int64_t end, sb *out, err_t *e)
{
    store_lock(st);
    int rc = replication_locked(st, obj, start, end, false, out, e);
    store_unlock(st);
    return rc;
}

int
store_deleted(store *st, const char *obj, int64_t start, int64_t end, sb *out, err_t *e)
{
    store_lock(st);
    int rc = replication_locked(st, obj, start, end, true, out, e);
    store_unlock(st);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Admin                                                                    */

static int
add_field_locked(store *st, const char *obj, const char *field, json_t *def, err_t *e)
{
    objinfo *oi = need_object(st, obj, e);
    if (oi == NULL)
        return -1;
    lf_object *o = oi->o;
    size_t idx = oi_index(st, o);
    lf_field *f = schema_field_from_json(field, def, e);
    if (f == NULL)
        return -1;
    if (o->custom && !f->custom) {
        err_set(e, 400, "INVALID_FIELD", "%s: custom field names must end in __c", f->name);
        field_free(f);
        return -1;
    }
    if (object_add_field(o, f, e)) {
        field_free(f);
        return -1;
    }
    if (check_relationships(o, e) || schema_validate(&st->schema, e)) {
        field_free(o->fields[--o->nfields]);
        return -1;
    }
    if (tx_begin(st, e)) {
        field_free(o->fields[--o->nfields]);
        return -1;
    }
    if (add_column(st, o, f, e) || save_object_def(st, o, e) || tx_commit(st, e)) {
        if (st->tx_depth > 0)
            tx_rollback(st);
        field_free(o->fields[--o->nfields]);
        oi_rebuild(st, idx);
        return -1;
    }
    oi_rebuild(st, idx);
    return 0;
}

int
store_add_field(store *st, const char *obj, const char *field, json_t *def, err_t *e)
{
    store_lock(st);
    int rc = add_field_locked(st, obj, field, def, e);
    store_unlock(st);
    return rc;
}

static int
add_object_locked(store *st, const char *obj, json_t *def, err_t *e)
{
    lf_object *o = schema_object_from_json(obj, def, e);
    if (o == NULL)
        return -1;
    if (o->key_prefix[0] == '\0')
        assign_prefix(st, o, NULL, 0);
    snap sn;
    snap_take(st, &sn);
    if (tx_begin(st, e)) {
        object_free(o);
        snap_free(&sn);
        return -1;
    }
    if (install_object(st, o, e) || schema_validate(&st->schema, e) || tx_commit(st, e)) {
        if (st->tx_depth > 0)
            tx_rollback(st);
        snap_restore(st, &sn);
        snap_free(&sn);
        return -1;
    }
    snap_free(&sn);
    return 0;
}

int
store_add_object(store *st, const char *obj, json_t *def, err_t *e)
{
    store_lock(st);
    int rc = add_object_locked(st, obj, def, e);
    store_unlock(st);
    return rc;
}

static int
load_records_locked(store *st, objinfo *oi, const lf_actor *a, json_t *records, int64_t *loaded,
                    const char *what, err_t *e)
{
    if (!json_is_array(records))
        return err_set(e, 400, "JSON_PARSER_ERROR", "%s: the records must be a JSON array", what);
    if (tx_begin(st, e))
        return -1;
    /* One transaction, one commit timestamp (see store.h). */
    int64_t stamp = next_stamp(st);
    size_t n = json_array_size(records);
    for (size_t i = 0; i < n; i++) {
        char id[19];
        if (rec_create(st, oi, a, json_array_get(records, i), stamp, -1, NULL, id, e)) {
            err_prefix(e, "%s[%zu]", what, i);
            tx_rollback(st);
            return -1;
        }
    }
    if (tx_commit(st, e))
        return -1;
    if (loaded)
        *loaded = (int64_t)n;
    return 0;
}

int
store_load_records(store *st, const lf_actor *a, const char *obj, json_t *records,
                   int64_t *loaded, err_t *e)
{
    store_lock(st);
    objinfo *oi = need_object(st, obj, e);
    int rc = oi ? load_records_locked(st, oi, a, records, loaded, "records", e) : -1;
    store_unlock(st);
    return rc;
}

int64_t
store_count(store *st, const char *obj, bool all_rows)
{
    store_lock(st);
    objinfo *oi = oi_find(st, obj);
    int64_t n = -1;
    if (oi) {
        sb s = SB_INIT;
        sb_puts(&s, "SELECT COUNT(*) FROM ");
        sb_sql_ident(&s, oi->o->name);
        if (!all_rows)
            sb_puts(&s, " WHERE \"IsDeleted\" = 0");
        sqlite3_stmt *q = prep(st, s.buf, false, NULL);
        sb_free(&s);
        if (q && sqlite3_step(q) == SQLITE_ROW)
            n = sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
    }
    store_unlock(st);
    return n;
}

void
store_set_change_hook(store *st, const lf_change_hook *h)
{
    store_lock(st);
    if (h)
        st->hook = *h;
    else
        memset(&st->hook, 0, sizeof st->hook);
    store_unlock(st);
}
