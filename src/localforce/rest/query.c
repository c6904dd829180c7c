/*
 * query: REST query execution and server-side cursors. See query.h.
 *
 * A cursor is an open SQLite statement positioned after the last row sent.
 * Paging is therefore one pass over the data whatever the result size, and
 * memory stays flat. The cursor also keeps the last page it served, so a
 * client that lost a response over a bad link and asks for the same page
 * again gets exactly the same page back (nothing lost, nothing repeated).
 *
 * Locators look like Salesforce's: "01g" + 15 characters (an 18-character ID), then "-<offset>".
 * Cursors idle for CURSOR_IDLE_MS are closed; so is the oldest one when
 * CURSOR_MAX are open. All cursor state is guarded by the store lock, since
 * stepping a statement needs it anyway.
 *
 * query_columns() answers columns=true: the compiled plan's columns described
 * as Salesforce's query metadata, without running the query.
 */
#include "query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmt.h"
#include "log.h"
#include "sfid.h"
#include "soql.h"
#include "util.h"

#define CURSOR_IDLE_MS (15 * 60 * 1000)
#define CURSOR_MAX     1000
/* Deeper than any relationship path SOQL accepts (5 levels). */
#define SOQL_COLS_MAX_DEPTH 16

typedef struct cursor {
    char id[19]; /* "01g..." */
    store *st;
    soql_plan *plan;
    sqlite3_stmt *stmt; /* NULL once the last row was sent */
    bool pending;       /* stmt holds a row not yet sent */
    int64_t total;      /* totalSize */
    int64_t sent;       /* rows sent so far (offset of the next page) */
    int batch;
    int64_t last_used;   /* monotonic ms */
    int64_t last_offset; /* offset of the cached page, -1 if none */
    sb last_page;        /* the body of the last page served */
    struct cursor *next;
} cursor;

struct lf_cursors {
    store *st;
    cursor *head;
    int count;
    uint64_t seq;
};

lf_cursors *
cursors_new(store *st)
{
    lf_cursors *c = xcalloc(1, sizeof *c);
    c->st = st;
    uint32_t r;
    util_random(&r, sizeof r);
    c->seq = r % 1000000; /* locators differ between server runs */
    return c;
}

static void
cursor_free(cursor *cur)
{
    if (cur->stmt)
        sqlite3_finalize(cur->stmt);
    soql_plan_free(cur->plan);
    sb_free(&cur->last_page);
    free(cur);
}

static void
unlink_cursor(lf_cursors *c, cursor *cur)
{
    for (cursor **pp = &c->head; *pp; pp = &(*pp)->next)
        if (*pp == cur) {
            *pp = cur->next;
            c->count--;
            return;
        }
}

void
cursors_close_all(lf_cursors *c)
{
    store_lock(c->st);
    while (c->head) {
        cursor *cur = c->head;
        c->head = cur->next;
        cursor_free(cur);
    }
    c->count = 0;
    store_unlock(c->st);
}

void
cursors_free(lf_cursors *c)
{
    if (c == NULL)
        return;
    cursors_close_all(c);
    free(c);
}

int
cursors_open_count(lf_cursors *c)
{
    store_lock(c->st);
    int n = c->count;
    store_unlock(c->st);
    return n;
}

/* Drop idle cursors, and the oldest ones beyond CURSOR_MAX. Store lock held. */
static void
expire_cursors(lf_cursors *c)
{
    int64_t now = util_mono_ms();
    for (cursor **pp = &c->head; *pp;) {
        cursor *cur = *pp;
        if (now - cur->last_used > CURSOR_IDLE_MS) {
            *pp = cur->next;
            c->count--;
            cursor_free(cur);
        } else {
            pp = &cur->next;
        }
    }
    while (c->count >= CURSOR_MAX) {
        cursor *oldest = c->head;
        for (cursor *cur = c->head; cur; cur = cur->next)
            if (cur->last_used < oldest->last_used)
                oldest = cur;
        unlink_cursor(c, oldest);
        cursor_free(oldest);
    }
}

/* Write the fields of one object level (rel r, -1 for the root) of the current row. */
static void
write_level(sb *out, const soql_plan *p, sqlite3_stmt *stmt, int r, const char *ver)
{
    /* Which child relationships of r have been written at this level. */
    bool done_rel[64] = {false};
    for (int i = 0; i < p->ncols; i++) {
        const soql_col *col = &p->cols[i];
        if (col->rel == r) {
            sb_putc(out, ',');
            sb_json_str(out, col->field->name);
            sb_putc(out, ':');
            fmt_value(out, col->field, stmt, col->sql_col);
            continue;
        }
        /* Is col below r? Find the child of r on its path. */
        int child = col->rel;
        while (child >= 0 && p->rels[child].parent != r)
            child = p->rels[child].parent;
        if (child < 0 || child >= 64 || done_rel[child])
            continue;
        done_rel[child] = true;
        const soql_rel *rel = &p->rels[child];
        sb_putc(out, ',');
        sb_json_str(out, rel->name);
        sb_putc(out, ':');
        if (sqlite3_column_type(stmt, rel->id_col) == SQLITE_NULL) {
            sb_puts(out, "null");
            continue;
        }
        sb_puts(out, "{\"attributes\":");
        fmt_attributes(out, rel->object->name, ver,
                       (const char *)sqlite3_column_text(stmt, rel->id_col));
        write_level(out, p, stmt, child, ver);
        sb_putc(out, '}');
    }
}

static void
write_row(sb *out, const soql_plan *p, sqlite3_stmt *stmt, const char *ver)
{
    sb_puts(out, "{\"attributes\":");
    fmt_attributes(out, p->object->name, ver, (const char *)sqlite3_column_text(stmt, 0));
    write_level(out, p, stmt, -1, ver);
    sb_putc(out, '}');
}

static int
sqlite_fail(store *st, err_t *e, const char *what)
{
    const char *m = sqlite3_errmsg(store_db(st));
    log_error("query: %s: %s", what, m);
    return err_set(e, 500, "UNKNOWN_EXCEPTION", "An unexpected error occurred: %s", m);
}

/* Write one page from cur into out (store lock held). */
static int
write_page(lf_cursors *c, cursor *cur, const char *ver, sb *out, err_t *e)
{
    sb_puts(out, "{\"totalSize\":");
    sb_put_i64(out, cur->total);
    sb page = SB_INIT;
    int n = 0;
    int rc = SQLITE_ROW;
    while (n < cur->batch) {
        if (!cur->pending) {
            rc = sqlite3_step(cur->stmt);
            if (rc != SQLITE_ROW)
                break;
        }
        cur->pending = false;
        if (n)
            sb_putc(&page, ',');
        write_row(&page, cur->plan, cur->stmt, ver);
        n++;
    }
    if (n == cur->batch) {
        rc = sqlite3_step(cur->stmt); /* look ahead: is there more? */
        cur->pending = rc == SQLITE_ROW;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        sb_free(&page);
        return sqlite_fail(c->st, e, "step");
    }
    cur->sent += n;
    bool done = !cur->pending;
    sb_puts(out, done ? ",\"done\":true" : ",\"done\":false");
    if (!done) {
        sb_printf(out, ",\"nextRecordsUrl\":\"/services/data/v%s/query/%s-%lld\"", ver, cur->id,
                  (long long)cur->sent);
    }
    sb_puts(out, ",\"records\":[");
    sb_append(out, page.buf ? page.buf : "", page.len);
    sb_puts(out, "]}");
    sb_free(&page);
    if (done) {
        sqlite3_finalize(cur->stmt);
        cur->stmt = NULL;
    }
    return 0;
}

static int64_t
run_count(store *st, const soql_plan *p, err_t *e)
{
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(store_db(st), p->count_sql, -1, &stmt, NULL) != SQLITE_OK)
        return sqlite_fail(st, e, "prepare count");
    int64_t n = -1;
    if (soql_bind(stmt, p) == 0 && sqlite3_step(stmt) == SQLITE_ROW)
        n = sqlite3_column_int64(stmt, 0);
    else
        sqlite_fail(st, e, "count");
    sqlite3_finalize(stmt);
    return n;
}

int
query_run(lf_cursors *c, const char *q, bool all_rows, int batch, const char *ver, sb *out,
          err_t *e)
{
    if (batch < 200)
        batch = 200;
    if (batch > 2000)
        batch = 2000;
    store_lock(c->st);
    soql_plan *plan = NULL;
    cursor *cur = NULL;
    if (soql_compile(store_schema(c->st), q, all_rows, util_now_ms(), &plan, e) != 0)
        goto fail;
    int64_t total = run_count(c->st, plan, e);
    if (total < 0)
        goto fail;
    if (plan->count_only) {
        sb_printf(out, "{\"totalSize\":%lld,\"done\":true,\"records\":[]}", (long long)total);
        soql_plan_free(plan);
        store_unlock(c->st);
        return 0;
    }
    cur = xcalloc(1, sizeof *cur);
    cur->st = c->st;
    cur->plan = plan;
    cur->total = total;
    cur->batch = batch;
    cur->last_offset = -1;
    plan = NULL;
    if (sqlite3_prepare_v2(store_db(c->st), cur->plan->sql, -1, &cur->stmt, NULL) != SQLITE_OK) {
        sqlite_fail(c->st, e, "prepare");
        goto fail;
    }
    if (soql_bind(cur->stmt, cur->plan) != 0) {
        sqlite_fail(c->st, e, "bind");
        goto fail;
    }
    sfid_make("01g", ++c->seq, cur->id);
    if (write_page(c, cur, ver, out, e) != 0)
        goto fail;
    if (cur->stmt == NULL) { /* everything fitted in one page */
        cursor_free(cur);
    } else {
        expire_cursors(c);
        cur->last_used = util_mono_ms();
        cur->next = c->head;
        c->head = cur;
        c->count++;
    }
    store_unlock(c->st);
    return 0;
fail:
    soql_plan_free(plan);
    if (cur)
        cursor_free(cur);
    store_unlock(c->st);
    return -1;
}

int
query_more(lf_cursors *c, const char *locator, const char *ver, sb *out, err_t *e)
{
    const char *dash = strrchr(locator, '-');
    int64_t offset;
    if (dash == NULL || dash - locator != 18 || strncmp(locator, "01g", 3) != 0 ||
        util_parse_i64(dash + 1, &offset) != 0 || offset < 0)
        return err_set(e, 400, "INVALID_QUERY_LOCATOR", "invalid query locator");
    store_lock(c->st);
    expire_cursors(c);
    cursor *cur = c->head;
    while (cur && strncmp(cur->id, locator, 18) != 0)
        cur = cur->next;
    if (cur == NULL) {
        store_unlock(c->st);
        return err_set(e, 400, "INVALID_QUERY_LOCATOR", "invalid query locator");
    }
    cur->last_used = util_mono_ms();
    int rc = 0;
    if (offset == cur->last_offset) {
        /* A repeat of the last page (the client lost our answer): same bytes again. */
        sb_append(out, cur->last_page.buf ? cur->last_page.buf : "", cur->last_page.len);
    } else if (offset != cur->sent || cur->stmt == NULL) {
        rc = err_set(e, 400, "INVALID_QUERY_LOCATOR", "invalid query locator");
    } else {
        size_t start = out->len;
        rc = write_page(c, cur, ver, out, e);
        if (rc == 0) {
            cur->last_offset = offset;
            sb_clear(&cur->last_page);
            sb_append(&cur->last_page, out->buf + start, out->len - start);
        }
    }
    store_unlock(c->st);
    return rc;
}

/* ----- columns=true ------------------------------------------------------ */

/* Apex's type for a field's values, as columnMetadata's "apexType" names it. */
static const char *
apex_type(lf_ftype t)
{
    switch (t) {
    case FT_ID:
    case FT_REFERENCE: return "Id";
    case FT_BOOLEAN: return "Boolean";
    case FT_INT: return "Integer";
    case FT_DOUBLE:
    case FT_CURRENCY:
    case FT_PERCENT: return "Decimal";
    case FT_DATE: return "Date";
    case FT_DATETIME: return "Datetime";
    case FT_TIME: return "Time";
    default: return "String";
    }
}

static bool
is_number(lf_ftype t)
{
    return t == FT_INT || t == FT_DOUBLE || t == FT_CURRENCY || t == FT_PERCENT;
}

static bool
is_text(lf_ftype t)
{
    return t == FT_STRING || t == FT_TEXTAREA || t == FT_EMAIL || t == FT_PHONE || t == FT_URL ||
           t == FT_PICKLIST || t == FT_MULTIPICKLIST;
}

/* One column's keys, in Salesforce's order, up to and including "joinColumns":[ */
static void
column_open(sb *out, const char *name, const char *apex, bool custom, const char *fk, bool ins,
            lf_ftype t, bool is_field)
{
    sb_puts(out, "{\"aggregate\":false,\"apexType\":");
    if (apex)
        sb_json_str(out, apex);
    else
        sb_puts(out, "null");
    sb_printf(out, ",\"booleanType\":%s,\"columnName\":",
              is_field && t == FT_BOOLEAN ? "true" : "false");
    sb_json_str(out, name);
    sb_printf(out, ",\"custom\":%s,\"displayName\":", custom ? "true" : "false");
    sb_json_str(out, name);
    sb_puts(out, ",\"foreignKeyName\":");
    if (fk)
        sb_json_str(out, fk);
    else
        sb_puts(out, "null");
    sb_printf(out, ",\"insertable\":%s,\"joinColumns\":[", ins ? "true" : "false");
}

/* Close a column opened by column_open. */
static void
column_close(sb *out, lf_ftype t, bool is_field, bool upd)
{
    sb_printf(out, "],\"numberType\":%s,\"textType\":%s,\"updatable\":%s}",
              is_field && is_number(t) ? "true" : "false",
              is_field && is_text(t) ? "true" : "false", upd ? "true" : "false");
}

/* Column i of p: a field of the FROM object, or its relationship path with the
 * field at the bottom ("Owner" -> joinColumns ["Name"]), as Salesforce nests it. */
static void
write_column(sb *out, const soql_plan *p, int i)
{
    const soql_col *col = &p->cols[i];
    int chain[SOQL_COLS_MAX_DEPTH];
    int depth = 0;
    for (int r = col->rel; r >= 0 && depth < SOQL_COLS_MAX_DEPTH; r = p->rels[r].parent)
        chain[depth++] = r;
    for (int k = depth - 1; k >= 0; k--) {
        const soql_rel *rel = &p->rels[chain[k]];
        const lf_object *from = rel->parent < 0 ? p->object : p->rels[rel->parent].object;
        const lf_field *ref = object_field_by_relationship(from, rel->name);
        column_open(out, rel->name, NULL, ref && ref->custom, ref ? ref->name : NULL, false,
                    FT_REFERENCE, false);
    }
    const lf_field *f = col->field;
    column_open(out, f->name, apex_type(f->type), f->custom, NULL, f->createable, f->type, true);
    column_close(out, f->type, true, f->updateable);
    for (int k = 0; k < depth; k++)
        column_close(out, FT_REFERENCE, false, false);
}

int
query_columns(store *st, const char *q, bool all_rows, sb *out, err_t *e)
{
    store_lock(st);
    soql_plan *p = NULL;
    if (soql_compile(store_schema(st), q, all_rows, util_now_ms(), &p, e) != 0) {
        store_unlock(st);
        return -1;
    }
    bool id_selected = false;
    sb_puts(out, "{\"columnMetadata\":[");
    for (int i = 0; !p->count_only && i < p->ncols; i++) {
        if (i)
            sb_putc(out, ',');
        write_column(out, p, i);
        id_selected |= p->cols[i].rel < 0 && p->cols[i].field->type == FT_ID;
    }
    sb_puts(out, "],\"entityName\":");
    sb_json_str(out, p->object->name);
    sb_printf(out, ",\"groupBy\":false,\"idSelected\":%s,\"keyPrefix\":",
              id_selected ? "true" : "false");
    sb_json_str(out, p->object->key_prefix);
    sb_putc(out, '}');
    soql_plan_free(p);
    store_unlock(st);
    return 0;
}
