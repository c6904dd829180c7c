/*
 * browse: the Explorer's reading of a mapped table (see browse.h).
 */
#include "browse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg.h"
#include "sb.h"
#include "util.h"

#define EXACT_BELOW 100000 /* rows; above, pg_class's estimate (as status does) */
#define MAX_PARAMS  8

/* The table's columns: name and type (format_type: a quoted SQL type). */
typedef struct cols {
    PGresult *r;
    int n;
} cols;

static int
load_cols(PGconn *c, const char *qtable, cols *out, err_t *e)
{
    const char *p[] = {qtable};
    out->r = pg_query(c, e,
                      "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
                      " WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped"
                      " ORDER BY attnum",
                      1, p);
    out->n = out->r ? PQntuples(out->r) : 0;
    return out->r ? 0 : -1;
}

/* The index of column name (-1: not the table's). */
static int
col_index(const cols *cs, const char *name)
{
    for (int i = 0; name && i < cs->n; i++)
        if (strcmp(PQgetvalue(cs->r, i, 0), name) == 0)
            return i;
    return -1;
}

static bool
textual(const char *type)
{
    return strncmp(type, "character varying", 17) == 0 || strcmp(type, "text") == 0 ||
           strncmp(type, "character(", 10) == 0;
}

/* A statement with numbered parameters being built. */
typedef struct stmt {
    sb sql;
    const char *p[MAX_PARAMS];
    int n;
    char sfid18[19]; /* a searched Id, in its 18-character form */
} stmt;

/* Whether q looks like a Salesforce Id (15 or 18 letters and digits, with a
 * digit); its 18-character form into out. */
static bool
sfid_shaped(const char *q, char out[19])
{
    static const char suffix[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    size_t n = strlen(q);
    bool digit = false;
    if (n != 15 && n != 18)
        return false;
    for (size_t i = 0; i < n; i++) {
        bool alpha = (q[i] >= 'a' && q[i] <= 'z') || (q[i] >= 'A' && q[i] <= 'Z');
        bool num = q[i] >= '0' && q[i] <= '9';
        if (!alpha && !num)
            return false;
        digit = digit || num;
    }
    if (!digit)
        return false;
    memcpy(out, q, n);
    out[18] = '\0';
    for (int chunk = 0; n == 15 && chunk < 3; chunk++) {
        int bits = 0;
        for (int i = 0; i < 5; i++)
            if (q[chunk * 5 + i] >= 'A' && q[chunk * 5 + i] <= 'Z')
                bits |= 1 << i;
        out[15 + chunk] = suffix[bits];
    }
    return true;
}

/* A new parameter: its number. */
static int
param_num(stmt *s, const char *value)
{
    s->p[s->n++] = value;
    return s->n;
}

/* Append "$N" for value (a new parameter). */
static void
param(stmt *s, const char *value)
{
    sb_printf(&s->sql, "$%d", param_num(s, value));
}

static void
col_ref(sb *out, const char *name)
{
    sb_puts(out, "t.");
    sb_sql_ident(out, name);
}

/* The filter and the search, as " AND ..." conditions. */
static void
where_filters(stmt *s, const browse_query *q, const cols *cs)
{
    if (q->field) {
        sb_puts(&s->sql, " AND ");
        col_ref(&s->sql, q->field);
        sb_puts(&s->sql, "::text = ");
        param(s, q->value ? q->value : "");
    }
    if (q->q && sfid_shaped(q->q, s->sfid18)) {
        /* An Id: the sfid index answers at once (a 15-character Id as its 18). */
        sb_puts(&s->sql, " AND t.sfid = ");
        param(s, s->sfid18);
    } else if (q->q && *q->q) {
        int qp = param_num(s, q->q);
        sb_printf(&s->sql, " AND (t.id::text = $%d", qp);
        for (int i = 0; i < cs->n; i++) {
            if (!textual(PQgetvalue(cs->r, i, 1)))
                continue;
            sb_puts(&s->sql, " OR strpos(lower(");
            col_ref(&s->sql, PQgetvalue(cs->r, i, 0));
            sb_printf(&s->sql, "), lower($%d)) > 0", qp);
        }
        sb_puts(&s->sql, ")");
    }
}

static json_t *
row_json(PGresult *r, int row, const cols *cs)
{
    json_t *o = json_object();
    for (int i = 0; i < cs->n; i++)
        json_object_set_new(o, PQgetvalue(cs->r, i, 0),
                            PQgetisnull(r, row, i) ? json_null()
                                                   : json_string(PQgetvalue(r, row, i)));
    return o;
}

/* SELECT every column as text FROM the table t. */
static void
select_all(sb *out, const cols *cs, const char *qtable)
{
    sb_puts(out, "SELECT ");
    for (int i = 0; i < cs->n; i++) {
        if (i)
            sb_puts(out, ", ");
        col_ref(out, PQgetvalue(cs->r, i, 0));
        sb_puts(out, "::text");
    }
    sb_printf(out, " FROM %s t WHERE true", qtable);
}

/* The count: exact below EXACT_BELOW rows, else the planner's estimate. */
static int
count_rows(PGconn *c, const char *qtable, const stmt *filters, json_t *out, err_t *e)
{
    const char *p[] = {qtable};
    PGresult *r = pg_query(c, e, "SELECT reltuples::bigint FROM pg_class WHERE oid = $1::regclass",
                           1, p);
    if (!r)
        return -1;
    long long est = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    if (est >= EXACT_BELOW) {
        json_object_set_new(out, "estimated_count", json_integer(est));
        json_object_set_new(out, "exact", json_false());
        return 0;
    }
    sb s = SB_INIT;
    sb_printf(&s, "SELECT count(*) FROM %s t WHERE true%s", qtable, sb_str(&filters->sql));
    r = pg_query(c, e, sb_str(&s), filters->n, filters->p);
    sb_free(&s);
    if (!r)
        return -1;
    json_object_set_new(out, "estimated_count", json_integer(atoll(PQgetvalue(r, 0, 0))));
    json_object_set_new(out, "exact", json_true());
    PQclear(r);
    return 0;
}

static json_t *
columns_json(const cols *cs)
{
    json_t *a = json_array();
    for (int i = 0; i < cs->n; i++)
        json_array_append_new(a, json_pack("{s:s, s:s}", "name", PQgetvalue(cs->r, i, 0), "type",
                                           PQgetvalue(cs->r, i, 1)));
    return a;
}

/* Where a page starts: after the row (value, id) of the page before. */
typedef struct cursor {
    bool set;
    char id[24];
    const char *value; /* the sort column's value (NULL: null, or sorted by id) */
} cursor;

static bool
by_id(const browse_query *q)
{
    return !q->sort || strcmp(q->sort, "id") == 0;
}

static int
parse_cursor(const browse_query *q, json_t *cur, cursor *k, err_t *e)
{
    memset(k, 0, sizeof *k);
    if (!q->after)
        return 0;
    bool id_only = by_id(q);
    json_t *jid = json_array_get(cur, id_only ? 0 : 1), *jv = json_array_get(cur, 0);
    if (!json_is_array(cur) || json_array_size(cur) != (id_only ? 1u : 2u) ||
        !json_is_integer(jid) || (!id_only && !json_is_string(jv) && !json_is_null(jv)))
        return err_set(e, 400, "BAD_REQUEST", "after is not a cursor this listing gave");
    k->set = true;
    snprintf(k->id, sizeof k->id, "%lld", (long long)json_integer_value(jid));
    k->value = id_only ? NULL : json_string_value(jv);
    return 0;
}

/* One region of the order, after the cursor, at most limit rows: the rows
 * whose sort column is not null, in (column, id) order (an index on the
 * column serves it), or those where it is null, in id order (they come
 * last); sorted by id, the whole table. */
static PGresult *
region(PGconn *c, const char *qtable, const cols *cs, const stmt *filters, const browse_query *q,
       const cursor *k, bool nulls, int limit, err_t *e)
{
    stmt s = {SB_INIT, {0}, filters->n, ""};
    memcpy(s.p, filters->p, sizeof s.p); /* (they may point into filters, which lives on) */
    select_all(&s.sql, cs, qtable);
    sb_puts(&s.sql, sb_str(&filters->sql));
    const char *op = q->desc ? "<" : ">", *dir = q->desc ? "DESC" : "ASC";
    char lim[16];
    sb col = SB_INIT;
    if (!by_id(q))
        col_ref(&col, q->sort);
    if (!by_id(q) && !nulls) {
        sb_printf(&s.sql, " AND %s IS NOT NULL", sb_str(&col));
        if (k->set) {
            const char *type = PQgetvalue(cs->r, col_index(cs, q->sort), 1);
            int vp = param_num(&s, k->value), ip = param_num(&s, k->id);
            sb_printf(&s.sql, " AND (%s, t.id) %s (CAST($%d AS %s), $%d::int)", sb_str(&col), op,
                      vp, type, ip);
        }
        sb_printf(&s.sql, " ORDER BY %s %s, t.id %s", sb_str(&col), dir, dir);
    } else {
        if (!by_id(q))
            sb_printf(&s.sql, " AND %s IS NULL", sb_str(&col));
        if (k->set && !k->value) {
            sb_printf(&s.sql, " AND t.id %s ", op);
            param(&s, k->id);
            sb_puts(&s.sql, "::int");
        }
        sb_printf(&s.sql, " ORDER BY t.id %s", dir);
    }
    snprintf(lim, sizeof lim, "%d", limit);
    sb_puts(&s.sql, " LIMIT ");
    param(&s, lim);
    sb_puts(&s.sql, "::int");
    PGresult *r = pg_query(c, e, sb_str(&s.sql), s.n, s.p);
    sb_free(&s.sql);
    sb_free(&col);
    return r;
}

/* A cursor whose value the sort column's type refuses (SQLSTATE class 22,
 * data exception: an edited or stale cursor) is the caller's mistake. */
static void
cursor_refused(err_t *e)
{
    if (strncmp(e->code, "22", 2) != 0)
        return;
    char why[ERR_MSG_MAX];
    snprintf(why, sizeof why, "%s", e->msg);
    err_set(e, 400, "BAD_REQUEST", "after is not a cursor this listing gave: %s", why);
}

/* The cursor of the page after the one ending with row (a JSON object of texts). */
static json_t *
next_cursor(json_t *row, const browse_query *q)
{
    json_int_t id = (json_int_t)atoll(json_string_value(json_object_get(row, "id")));
    json_t *cur = by_id(q) ? json_pack("[I]", id)
                           : json_pack("[O, I]", json_object_get(row, q->sort), id);
    char *txt = json_dumps(cur, JSON_COMPACT);
    json_decref(cur);
    json_t *s = json_string(txt);
    free(txt);
    return s;
}

json_t *
browse_page(PGconn *c, const browse_query *q, err_t *e)
{
    json_t *out = NULL, *cur = NULL, *rows = json_array();
    sb qt = SB_INIT;
    cols cs = {0};
    stmt filters = {SB_INIT, {0}, 0, ""};
    cursor k;
    PGresult *r[2] = {NULL, NULL};
    pg_qname(&qt, q->schema, q->table);
    if (load_cols(c, sb_str(&qt), &cs, e) != 0)
        goto out;
    if (col_index(&cs, "id") < 0) {
        err_set(e, 400, "BAD_TABLE", "%s has no id column to page by", q->table);
        goto out;
    }
    const char *bad = q->sort && col_index(&cs, q->sort) < 0     ? q->sort
                      : q->field && col_index(&cs, q->field) < 0 ? q->field
                                                                 : NULL;
    if (bad) {
        err_set(e, 400, "BAD_REQUEST", "%s has no column %s", q->table, bad);
        goto out;
    }
    cur = q->after ? json_loads(q->after, 0, NULL) : NULL;
    if (parse_cursor(q, cur, &k, e) != 0)
        goto out;
    where_filters(&filters, q, &cs);
    /* One row more than the page says whether another follows. */
    int want = q->limit + 1, got = 0;
    bool in_nulls = !by_id(q) && k.set && !k.value;
    if (!in_nulls && !(r[0] = region(c, sb_str(&qt), &cs, &filters, q, &k, false, want, e))) {
        cursor_refused(e);
        goto out;
    }
    got = r[0] ? PQntuples(r[0]) : 0;
    if (!by_id(q) && got < want &&
        !(r[1] = region(c, sb_str(&qt), &cs, &filters, q, in_nulls ? &k : &(cursor){0}, true,
                        want - got, e))) {
        cursor_refused(e);
        goto out;
    }
    for (int i = 0; i < 2; i++)
        for (int j = 0; r[i] && j < PQntuples(r[i]); j++)
            json_array_append_new(rows, row_json(r[i], j, &cs));
    bool more = json_array_size(rows) > (size_t)q->limit;
    if (more)
        json_array_remove(rows, json_array_size(rows) - 1);
    out = json_pack("{s:o, s:O, s:o}", "columns", columns_json(&cs), "results", rows, "next",
                    more ? next_cursor(json_array_get(rows, json_array_size(rows) - 1), q)
                         : json_null());
    if (count_rows(c, sb_str(&qt), &filters, out, e) != 0) {
        json_decref(out);
        out = NULL;
    }
out:
    PQclear(r[0]);
    PQclear(r[1]);
    PQclear(cs.r);
    json_decref(cur);
    json_decref(rows);
    sb_free(&qt);
    sb_free(&filters.sql);
    return out;
}

json_t *
browse_record(PGconn *c, const char *schema, const char *table, const char *id, int64_t *rid,
              err_t *e)
{
    json_t *out = NULL;
    sb qt = SB_INIT, s = SB_INIT;
    cols cs = {0};
    PGresult *r = NULL;
    int64_t n;
    bool by_id = util_parse_i64(id, &n) == 0;
    pg_qname(&qt, schema, table);
    if (load_cols(c, sb_str(&qt), &cs, e) != 0)
        goto out;
    if (!by_id && col_index(&cs, "sfid") < 0) {
        err_set(e, 404, "NOT_FOUND", "no row of %s with id %s", table, id);
        goto out;
    }
    select_all(&s, &cs, sb_str(&qt));
    sb_puts(&s, by_id ? " AND t.id = $1::int" : " AND t.sfid = $1 LIMIT 1");
    const char *p[] = {id};
    if (by_id && (n < 1 || n > 2147483647)) {
        err_set(e, 404, "NOT_FOUND", "no row of %s with id %s", table, id);
        goto out;
    }
    r = pg_query(c, e, sb_str(&s), 1, p);
    if (!r)
        goto out;
    if (PQntuples(r) == 0) {
        err_set(e, 404, "NOT_FOUND", "no row of %s with id or sfid %s", table, id);
        goto out;
    }
    out = row_json(r, 0, &cs);
    *rid = atoll(PQgetvalue(r, 0, col_index(&cs, "id")));
out:
    PQclear(r);
    PQclear(cs.r);
    sb_free(&qt);
    sb_free(&s);
    return out;
}
