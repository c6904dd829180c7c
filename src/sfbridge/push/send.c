/*
 * send: operations to Salesforce (see send.h).
 */
#include "send.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "ddl.h"
#include "log.h"
#include "sb.h"
#include "sfbulk.h"
#include "util.h"

bool
send_transient_code(const char *code)
{
    return code &&
           (strcmp(code, "UNABLE_TO_LOCK_ROW") == 0 ||
            strcmp(code, "REQUEST_LIMIT_EXCEEDED") == 0 || strcmp(code, "SERVER_UNAVAILABLE") == 0);
}

/* ---- sObject Collections ----------------------------------------------------- */

/* The request for one collection: method, path and body. */
static const char *
collection_request(const char *api_version, const mapping *m, op **ops, size_t n, sb *path,
                   sb *body)
{
    op_kind kind = ops[0]->kind;
    if (kind == OP_DELETE) {
        sb_printf(path, "/services/data/v%s/composite/sobjects?ids=", api_version);
        for (size_t i = 0; i < n; i++)
            sb_printf(path, "%s%s", i ? "," : "", ops[i]->sfid);
        sb_puts(path, "&allOrNone=false");
        return "DELETE";
    }
    json_t *recs = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append(recs, ops[i]->rec);
    json_t *b = json_pack("{s:b,s:o}", "allOrNone", 0, "records", recs);
    char *txt = json_dumps(b, JSON_COMPACT);
    sb_puts(body, txt);
    free(txt);
    json_decref(b);
    if (kind == OP_UPSERT) {
        sb_printf(path, "/services/data/v%s/composite/sobjects/%s/%s", api_version, m->object,
                  m->upsert_field);
        return "PATCH";
    }
    sb_printf(path, "/services/data/v%s/composite/sobjects", api_version);
    return kind == OP_INSERT ? "POST" : "PATCH";
}

/* The request failed as a whole (or its reply does not fit it). */
static void
collection_failed(const mapping *m, op **ops, size_t n, const char *method, int rc, err_t *e)
{
    op_kind kind = ops[0]->kind;
    char why[ERR_MSG_MAX + 80];
    snprintf(why, sizeof why, "%s: %s", rc != 0 ? e->code : "BAD_RESPONSE",
             rc != 0 ? e->msg : "the collection reply does not match the request");
    for (size_t i = 0; i < n; i++) {
        if (rc != 0 && err_class_of(e) == ERR_PERMANENT)
            op_set_failed(ops[i], e->code, e->msg, NULL);
        else
            op_set_retry(ops[i], why, op_kind_creates(kind)); /* an insert may have happened */
    }
    log_warn("writer: %s %s of %zu %s records failed: %s", method,
             kind == OP_DELETE ? "delete" : "write", n, m->object, why);
}

/* One record's answer in a collection reply. */
static void
collection_result(op *o, op_kind kind, json_t *r, writer_stats *st)
{
    if (json_is_true(json_object_get(r, "success"))) {
        const char *id = json_string_value(json_object_get(r, "id"));
        if (id && op_kind_creates(kind)) {
            free(o->new_sfid);
            o->new_sfid = xstrdup(id);
        }
        op_set_ok(o, kind == OP_INSERT ? HC_INSERTED
                     : kind == OP_UPSERT
                         ? (json_is_false(json_object_get(r, "created")) ? HC_UPDATED : HC_INSERTED)
                     : kind == OP_UPDATE ? HC_UPDATED
                                         : HC_DELETED);
        st->sent++;
        return;
    }
    json_t *err = json_array_get(json_object_get(r, "errors"), 0);
    const char *code = json_string_value(json_object_get(err, "statusCode"));
    const char *msg = json_string_value(json_object_get(err, "message"));
    if (kind == OP_DELETE && code &&
        (strcmp(code, "ENTITY_IS_DELETED") == 0 ||
         strcmp(code, "INVALID_CROSS_REFERENCE_KEY") == 0)) {
        op_set_ok(o, HC_DELETED); /* already gone: the delete is done */
        return;
    }
    if (send_transient_code(code)) {
        op_set_retry(o, msg ? msg : code, false);
        return;
    }
    op_set_failed(o, code ? code : "UNKNOWN_ERROR", msg ? msg : "Salesforce refused the record",
                  json_object_get(err, "fields"));
    st->failed++;
}

void
send_collection(sfapi *sf, const char *api_version, const mapping *m, op **ops, size_t n,
                writer_stats *st)
{
    op_kind kind = ops[0]->kind;
    sb path = SB_INIT; /* 200 ids do not fit a fixed buffer */
    sb body = SB_INIT;
    const char *method = collection_request(api_version, m, ops, n, &path, &body);
    long status = 0;
    json_t *res = NULL;
    err_t e;
    err_clear(&e);
    uint64_t before = sfapi_calls(sf);
    int rc = sfapi_rest(sf, method, sb_str(&path), kind == OP_DELETE ? NULL : sb_str(&body),
                        &status, &res, &e);
    st->api_calls += (int64_t)(sfapi_calls(sf) - before);
    sb_free(&body);
    sb_free(&path);
    if (rc != 0 || !json_is_array(res) || json_array_size(res) != n)
        collection_failed(m, ops, n, method, rc, &e);
    else
        for (size_t i = 0; i < n; i++)
            collection_result(ops[i], kind, json_array_get(res, i), st);
    json_decref(res);
}

/* ---- Bulk API 2.0 for large upserts --------------------------------------------- */

static int
cmp_op_key(const void *a, const void *b)
{
    const op *const *x = a, *const *y = b;
    return strcmp(json_string_value(json_object_get((*x)->rec, "_k")),
                  json_string_value(json_object_get((*y)->rec, "_k")));
}

/* Flatten a record for CSV: "School__r": {"External_Id__c": v} -> "School__r.External_Id__c". */
static void
flat_put(json_t *flat, const char *key, json_t *v)
{
    if (json_is_object(v)) {
        const char *k2;
        json_t *v2;
        json_object_foreach(v, k2, v2) {
            char name[600];
            snprintf(name, sizeof name, "%s.%s", key, k2);
            json_object_set(flat, name, v2);
        }
    } else {
        json_object_set(flat, key, v);
    }
}

static void
csv_value(sb *out, json_t *v)
{
    if (!v || json_is_null(v))
        return; /* empty: no value */
    if (json_is_string(v)) {
        csv_put_str(out, json_string_value(v));
    } else if (json_is_boolean(v)) {
        sb_puts(out, json_is_true(v) ? "true" : "false");
    } else if (json_is_integer(v)) {
        sb_put_i64(out, json_integer_value(v));
    } else if (json_is_real(v)) {
        sb_printf(out, "%.17g", json_real_value(v));
    }
}

/* The upload: a header of every column any record sets, a line per record.
 * Each op's record gets its sort key "_k" (the external id value). */
static void
bulk_csv(const mapping *m, op **ops, size_t n, sb *csv)
{
    json_t *cols = json_object(); /* column -> index */
    json_t **flat = xcalloc(n, sizeof *flat);
    for (size_t i = 0; i < n; i++) {
        flat[i] = json_object();
        const char *k;
        json_t *v;
        json_object_foreach(ops[i]->rec, k, v) {
            if (strcmp(k, "attributes") != 0)
                flat_put(flat[i], k, v);
        }
        json_object_foreach(flat[i], k, v) {
            if (!json_object_get(cols, k))
                json_object_set_new(cols, k, json_integer((json_int_t)json_object_size(cols)));
        }
    }
    size_t nc = json_object_size(cols);
    const char **names = xcalloc(nc + 1, sizeof *names);
    const char *k;
    json_t *v;
    json_object_foreach(cols, k, v)
        names[json_integer_value(v)] = k;
    for (size_t c = 0; c < nc; c++) {
        if (c)
            sb_putc(csv, ',');
        csv_put_str(csv, names[c]);
    }
    sb_putc(csv, '\n');
    for (size_t i = 0; i < n; i++) {
        for (size_t c = 0; c < nc; c++) {
            if (c)
                sb_putc(csv, ',');
            csv_value(csv, json_object_get(flat[i], names[c]));
        }
        sb_putc(csv, '\n');
        json_object_set(ops[i]->rec, "_k", json_object_get(flat[i], m->upsert_field));
        json_decref(flat[i]);
    }
    free(flat);
    free(names);
    json_decref(cols);
}

/* One result row: pass 0 successes (sf__Id, sf__Created, ...), pass 1
 * failures (sf__Id, sf__Error, ...). */
static void
bulk_result(op *o, int pass, const csv_row *row, writer_stats *st)
{
    if (pass == 0) {
        free(o->new_sfid);
        o->new_sfid = xstrdup(row->field[0]);
        op_set_ok(o, strcmp(row->field[1], "true") == 0 ? HC_INSERTED : HC_UPDATED);
        st->sent++;
        return;
    }
    /* "STATUS_CODE:message" */
    char code[64] = "UNKNOWN_ERROR";
    const char *err = row->field[1], *colon = strchr(err, ':');
    if (colon && (size_t)(colon - err) < sizeof code)
        snprintf(code, sizeof code, "%.*s", (int)(colon - err), err);
    if (send_transient_code(code)) {
        op_set_retry(o, err, false);
    } else {
        op_set_failed(o, code, colon ? colon + 1 : err, NULL);
        st->failed++;
    }
}

/* The results of one pass, matched to ops (sorted by key) by the external id. */
static void
bulk_results(const mapping *m, op **ops, size_t n, int pass, const sb *body, writer_stats *st)
{
    csv_reader *r = csv_reader_new(NULL);
    csv_feed(r, body->buf ? body->buf : "", body->len);
    csv_finish(r);
    csv_row row;
    long kcol = -1;
    while (csv_next(r, &row) == CSV_ROW) {
        if (row.index == 0) {
            for (size_t c = 0; c < row.nfields; c++)
                if (util_streq_ci(row.field[c], m->upsert_field))
                    kcol = (long)c;
            continue;
        }
        if (kcol < 0 || (size_t)kcol >= row.nfields || row.nfields < 2)
            break;
        json_t *key = json_string(row.field[kcol]);
        op probe_op = {.rec = json_pack("{s:O}", "_k", key)};
        op *probe = &probe_op, **hit = bsearch(&probe, ops, n, sizeof *ops, cmp_op_key);
        json_decref(probe_op.rec);
        json_decref(key);
        if (hit && (*hit)->out == OUT_NONE)
            bulk_result(*hit, pass, &row, st);
    }
    csv_reader_free(r);
}

void
send_bulk_upsert(sfapi *sf, const mapping *m, op **ops, size_t n, writer_stats *st)
{
    sb csv = SB_INIT, ok = SB_INIT, bad = SB_INIT;
    bulk_csv(m, ops, n, &csv);
    char *job = NULL;
    long processed = 0, failed = 0;
    err_t e;
    err_clear(&e);
    uint64_t before = sfapi_calls(sf);
    int rc = sfbulk_ingest(sf, m->object, "upsert", m->upsert_field, sb_str(&csv), 0, &job,
                           &processed, &failed, &e);
    if (rc == 0)
        rc = sfbulk_ingest_results(sf, job, false, &ok, &e);
    if (rc == 0 && failed)
        rc = sfbulk_ingest_results(sf, job, true, &bad, &e);
    st->api_calls += (int64_t)(sfapi_calls(sf) - before);
    if (rc != 0) {
        log_warn("writer: Bulk API upsert of %zu %s records failed (%s: %s); falling back to "
                 "collections",
                 n, m->object, e.code, e.msg);
    } else {
        qsort(ops, n, sizeof *ops, cmp_op_key);
        bulk_results(m, ops, n, 0, &ok, st);
        bulk_results(m, ops, n, 1, &bad, st);
        log_info("writer: Bulk API job %s upserted %ld %s records (%ld failed)", job,
                 processed - failed, m->object, failed);
    }
    for (size_t i = 0; i < n; i++)
        json_object_del(ops[i]->rec, "_k");
    sb_free(&csv);
    sb_free(&ok);
    sb_free(&bad);
    free(job);
}

/* ---- the look for an insert whose outcome was lost ------------------------------- */

static bool
filterable(const map_field *f)
{
    static const char *const ok[] = {"string",  "email",    "phone",     "url",      "picklist",
                                     "boolean", "int",      "double",    "currency", "percent",
                                     "date",    "datetime", "reference", "id",       "combobox"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (strcmp(f->sftype, ok[i]) == 0)
            return true;
    return false;
}

/* " AND Field = value" for every filterable field the record sets. */
static void
lookup_filters(sb *q, const mapping *m, json_t *rec)
{
    const char *key;
    json_t *v;
    json_object_foreach(rec, key, v) {
        const map_field *f = NULL;
        for (size_t i = 0; i < m->nfields; i++)
            if (strcmp(m->fields[i].name, key) == 0)
                f = &m->fields[i];
        if (!f || !filterable(f))
            continue;
        if (json_is_string(v)) {
            bool quoted = strcmp(f->sftype, "date") != 0 && strcmp(f->sftype, "datetime") != 0;
            sb_printf(q, " AND %s = %s", f->name, quoted ? "'" : "");
            sfapi_soql_escape(q, json_string_value(v));
            if (quoted)
                sb_putc(q, '\'');
        } else if (json_is_boolean(v)) {
            sb_printf(q, " AND %s = %s", f->name, json_is_true(v) ? "true" : "false");
        } else if (json_is_integer(v)) {
            sb_printf(q, " AND %s = %lld", f->name, (long long)json_integer_value(v));
        } else if (json_is_real(v)) {
            char num[64];
            snprintf(num, sizeof num, "%.17g", json_real_value(v));
            sb_printf(q, " AND %s = %s", f->name, num);
        }
    }
}

int
send_lookup_insert(sfapi *sf, const mapping *m, const op *o, json_t **ids, err_t *e)
{
    *ids = NULL;
    json_t *rec = o->sent ? o->sent : o->rec;
    int64_t sent;
    if (util_parse_datetime(o->sent_at, &sent) != 0)
        sent = util_now_ms();
    char since[32];
    util_fmt_datetime_z(sent - SEND_LOOKUP_SKEW_MS, since);
    sb q = SB_INIT;
    const char *ext = m->upsert_field ? json_string_value(json_object_get(rec, m->upsert_field))
                                      : NULL;
    if (ext) {
        /* Keyed by the unique identifier: the record, if it exists, is the one. */
        sb_printf(&q, "SELECT Id FROM %s WHERE %s = '", m->object, m->upsert_field);
        sfapi_soql_escape(&q, ext);
        sb_putc(&q, '\'');
    } else {
        sb_printf(&q, "SELECT Id FROM %s WHERE CreatedById = '", m->object);
        sfapi_soql_escape(&q, sfapi_user_id(sf));
        sb_printf(&q, "' AND CreatedDate >= %s", since);
        lookup_filters(&q, m, rec);
    }
    json_t *page = NULL;
    int rc = sfapi_query(sf, sb_str(&q), false, 0, &page, e);
    log_debug("writer: looking for an insert whose answer was lost: %s -> %s", sb_str(&q),
              rc == 0 ? "answered" : e->msg);
    sb_free(&q);
    if (rc != 0)
        return -1;
    *ids = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(page, "records"), i, r) {
        const char *id = json_string_value(json_object_get(r, "Id"));
        if (id)
            json_array_append_new(*ids, json_string(id));
    }
    json_decref(page);
    return 0;
}

/* sfapi_query_each's page callback: every record into one array. */
static int
gather_page(void *ctx, json_t *records, const char *next, err_t *e)
{
    (void)next;
    (void)e;
    json_array_extend(ctx, records);
    return 0;
}

int
send_lookup_window(sfapi *sf, const mapping *m, json_t *fields, int64_t from_ms, int64_t to_ms,
                   json_t **recs, err_t *e)
{
    *recs = json_array();
    char since[32], until[32];
    util_fmt_datetime_z(from_ms, since);
    util_fmt_datetime_z(to_ms, until);
    sb q = SB_INIT;
    sb_printf(&q, "SELECT Id, CreatedDate");
    size_t i;
    json_t *v;
    json_array_foreach(fields, i, v) {
        const char *name = json_string_value(v);
        /* Only the mapping's own fields, by the names the catalog knows. */
        for (size_t k = 0; name && k < m->nfields; k++)
            if (strcmp(m->fields[k].name, name) == 0 && strcmp(name, "Id") != 0 &&
                strcmp(name, "CreatedDate") != 0 && !strchr(name, '.'))
                sb_printf(&q, ", %s", name);
    }
    sb_printf(&q, " FROM %s WHERE CreatedById = '", m->object);
    sfapi_soql_escape(&q, sfapi_user_id(sf));
    sb_printf(&q, "' AND CreatedDate >= %s AND CreatedDate <= %s", since, until);
    sfapi_query_spec qs = {.soql = sb_str(&q)};
    int rc = sfapi_query_each(sf, &qs, gather_page, *recs, e);
    log_debug("writer: records created around inserts whose answers were lost: %s -> %s",
              sb_str(&q), rc == 0 ? "answered" : e->msg);
    sb_free(&q);
    if (rc != 0) {
        json_decref(*recs);
        *recs = NULL;
    }
    return rc;
}
