/*
 * records: the public record API: create, update, delete, undelete, upsert by
 * external id, get as REST JSON, the replication windows (`updated`,
 * `deleted`), bulk loads, counts and the change hook.
 */
#include "records.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "convert.h"
#include "fmt.h"
#include "sfid.h"
#include "util.h"
#include "write.h"
/* Records: public API                                                      */

int
store_create(store *st, const lf_actor *a, const char *obj, json_t *rec, char id_out[19], err_t *e)
{
    store_lock(st);
    objinfo *oi = wr_need_object(st, obj, e);
    bool opened;
    int rc = -1;
    if (oi && wr_hooked_begin(st, oi, &opened, e) == 0)
        rc = wr_hooked_end(st, opened, wr_create(st, oi, a, rec, 0, -1, NULL, id_out, e), e);
    store_unlock(st);
    return rc;
}

/* Under the store's lock: the object, its row to write (rowid, id18) and the
 * hooked transaction begun. NULL (the error in e) if any of those fails. */
static objinfo *
open_row(store *st, const char *obj, const char *id, int64_t *rowid, char id18[19], bool *opened,
         err_t *e)
{
    objinfo *oi = wr_need_object(st, obj, e);
    if (oi && wr_find_row(st, oi, id, FIND_WRITE, rowid, id18, e) == 0 &&
        wr_hooked_begin(st, oi, opened, e) == 0)
        return oi;
    return NULL;
}

int
store_update(store *st, const lf_actor *a, const char *obj, const char *id, json_t *rec, err_t *e)
{
    int64_t rowid = 0;
    char id18[19];
    store_lock(st);
    int rc = -1;
    bool opened;
    objinfo *oi = open_row(st, obj, id, &rowid, id18, &opened, e);
    if (oi)
        rc = wr_hooked_end(st, opened, wr_update(st, oi, a, rowid, id18, rec, 0, -1, e), e);
    store_unlock(st);
    return rc;
}

/* Run s, which moves the record at rowid into (DELETE) or out of (UNDELETE)
 * the recycle bin with ?1 = rowid and ?2 = its new SystemModstamp, and report
 * the change. */
static int
bin_move(store *st, objinfo *oi, sqlite3_stmt *s, int64_t rowid, lf_change_type type,
         const char *id18, const lf_actor *a, err_t *e)
{
    int64_t stamp = stdb_next_stamp(st);
    sqlite3_bind_int64(s, 1, rowid);
    sqlite3_bind_int64(s, 2, stamp);
    int rc = sqlite3_step(s) == SQLITE_DONE
                 ? 0
                 : stdb_fail(st, e, type == LF_CHANGE_DELETE ? "delete" : "undelete");
    sqlite3_reset(s);
    if (rc == 0)
        rc = wr_fire_change(st, oi, type, id18, a, stamp, NULL, 0, e);
    return rc;
}

int
store_delete(store *st, const lf_actor *a, const char *obj, const char *id, err_t *e)
{
    int64_t rowid = 0;
    char id18[19];
    store_lock(st);
    int rc = -1;
    bool opened;
    objinfo *oi = open_row(st, obj, id, &rowid, id18, &opened, e);
    if (oi) {
        sqlite3_stmt *d = oi_del(st, oi, e);
        if (d)
            rc = bin_move(st, oi, d, rowid, LF_CHANGE_DELETE, id18, a, e);
        rc = wr_hooked_end(st, opened, rc, e);
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
    objinfo *oi = wr_need_object(st, obj, e);
    int rc = -1;
    bool opened;
    int status = 0;
    if (oi &&
        (id == NULL || sfid_normalize(id, id18) || !sfid_has_prefix(id18, oi->o->key_prefix))) {
        err_set(e, 400, "MALFORMED_ID", "%s ID: id value of incorrect type: %.100s", oi->o->label,
                id ? id : "null");
        oi = NULL;
    }
    if (oi && (status = conv_row_status(st, oi, id18, &rowid, e)) >= 0) {
        if (status == 0)
            err_set(e, 404, "NOT_FOUND", not_found_msg);
        else if (status == 1)
            err_set(e, 400, "UNDELETE_FAILED", "Entity is not in the recycle bin");
        else if (wr_hooked_begin(st, oi, &opened, e) == 0) {
            sb s = SB_INIT;
            sb_puts(&s, "UPDATE ");
            sb_sql_ident(&s, oi->o->name);
            sb_puts(&s, " SET \"IsDeleted\" = 0, \"_deleted_at\" = NULL, \"SystemModstamp\" = ?2 "
                        "WHERE \"_rowid\" = ?1");
            sqlite3_stmt *u = stdb_prep(st, s.buf, false, e);
            sb_free(&s);
            if (u) {
                rc = bin_move(st, oi, u, rowid, LF_CHANGE_UNDELETE, id18, a, e);
                sqlite3_finalize(u);
            }
            rc = wr_hooked_end(st, opened, rc, e);
        }
    }
    store_unlock(st);
    return rc;
}

static int
upsert_locked(store *st, const lf_actor *a, const char *obj, const char *ext_field,
              const char *ext_value, json_t *rec, const char *ver, char id_out[19], bool *created,
              sb *matches, err_t *e)
{
    objinfo *oi = wr_need_object(st, obj, e);
    if (oi == NULL)
        return -1;
    bool made = false;
    int rc = -1;
    int ix = ext_field ? oi_map_get(&oi->byname, oi->o, ext_field, false) : -1;
    if (ix >= 0 && ix == oi->ix_id) {
        if (ext_value == NULL || ext_value[0] == '\0') {
            rc = wr_create(st, oi, a, rec, 0, -1, NULL, id_out, e);
            made = true;
        } else {
            int64_t rowid = 0;
            char id18[19];
            rc = wr_find_row(st, oi, ext_value, FIND_WRITE, &rowid, id18, e);
            if (rc == 0)
                rc = wr_update(st, oi, a, rowid, id18, rec, 0, ix, e);
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
    if (conv_value(st, f, jv, &key, e) || conv_ext_lookup(st, oi, ix, &key, 0, rows, ids, 2, &n, e))
        goto out;
    if (n == 0) {
        rc = wr_create(st, oi, a, rec, 0, ix, &key, id_out, e);
        made = true;
    } else if (n == 1) {
        rc = wr_update(st, oi, a, rows[0], ids[0], rec, 0, ix, e);
        if (rc == 0)
            memcpy(id_out, ids[0], 19);
    } else {
        if (matches) {
            /* All matching record URLs, as Salesforce lists them for a 300. */
            sqlite3_stmt *q = oi_ext(st, oi, ix, e);
            if (q == NULL)
                goto out;
            val_bind(q, 1, &key);
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
    if (wr_hooked_begin(st, oi_find(st, obj), &opened, e) == 0)
        rc = wr_hooked_end(st, opened,
                           upsert_locked(st, a, obj, ext_field, ext_value, rec, ver, id_out,
                                         created, matches, e),
                           e);
    store_unlock(st);
    return rc;
}

static int
get_locked(store *st, const char *obj, const char *id, const char *fields, const char *ver, sb *out,
           err_t *e)
{
    objinfo *oi = wr_need_object(st, obj, e);
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
                int ix = len < 256 ? oi_map_get(&oi->byname, o, name, false) : -1;
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
    int rc = wr_find_row(st, oi, id, FIND_GET, &rowid, id18, e);
    sqlite3_stmt *q = rc == 0 ? oi_sel(st, oi, e) : NULL;
    if (q == NULL) {
        free(pick);
        return -1;
    }
    sqlite3_bind_int64(q, 1, rowid);
    if (sqlite3_step(q) != SQLITE_ROW) {
        sqlite3_reset(q);
        free(pick);
        return stdb_fail(st, e, "read");
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
store_get(store *st, const char *obj, const char *id, const char *fields, const char *ver, sb *out,
          err_t *e)
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
    if (oi && conv_row_status(st, oi, id18, NULL, NULL) <= 0)
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
    *from = stdb_floor_minute(start);
    *to = stdb_floor_minute(end);
    int64_t cap = stdb_floor_minute(now);
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
    objinfo *oi = wr_need_object(st, obj, e);
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
        sb_printf(&s,
                  " WHERE \"IsDeleted\" = 1 AND \"_deleted_at\" >= ?1 AND \"_deleted_at\" < ?2"
                  " ORDER BY \"_deleted_at\", \"_rowid\" LIMIT %d",
                  MAX_REPLICATION_IDS + 1);
    else
        sb_printf(&s,
                  " WHERE \"SystemModstamp\" >= ?1 AND \"SystemModstamp\" < ?2 AND "
                  "\"IsDeleted\" = 0 ORDER BY \"SystemModstamp\", \"_rowid\" LIMIT %d",
                  MAX_REPLICATION_IDS + 1);
    sqlite3_stmt *q = stdb_prep(st, s.buf, false, e);
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
        return stdb_fail(st, e, "replication");
    }
    sb_putc(&body, ']');
    if (deleted) {
        sb_puts(&body, ",\"earliestDateAvailable\":");
        put_datetime(&body, stdb_floor_minute(st->created_ms));
    }
    sb_puts(&body, ",\"latestDateCovered\":");
    put_datetime(&body, to);
    sb_putc(&body, '}');
    sb_append(out, body.buf, body.len);
    sb_free(&body);
    return 0;
}

static int
replication(store *st, const char *obj, int64_t start, int64_t end, bool deleted, sb *out, err_t *e)
{
    store_lock(st);
    int rc = replication_locked(st, obj, start, end, deleted, out, e);
    store_unlock(st);
    return rc;
}

int
store_updated(store *st, const char *obj, int64_t start, int64_t end, sb *out, err_t *e)
{
    return replication(st, obj, start, end, false, out, e);
}

int
store_deleted(store *st, const char *obj, int64_t start, int64_t end, sb *out, err_t *e)
{
    return replication(st, obj, start, end, true, out, e);
}

int
rec_load_locked(store *st, objinfo *oi, const lf_actor *a, json_t *records, int64_t ago_ms,
                int64_t *loaded, const char *what, err_t *e)
{
    if (!json_is_array(records))
        return err_set(e, 400, "JSON_PARSER_ERROR", "%s: the records must be a JSON array", what);
    if (stdb_tx_begin(st, e))
        return -1;
    /* One transaction, one commit timestamp (see store.h); ago_ms: a transaction
     * Salesforce stamped when it began, ago_ms before it commits now. */
    int64_t stamp = ago_ms > 0 ? util_now_ms() - ago_ms : stdb_next_stamp(st);
    size_t n = json_array_size(records);
    for (size_t i = 0; i < n; i++) {
        char id[19];
        if (wr_create(st, oi, a, json_array_get(records, i), stamp, -1, NULL, id, e)) {
            stdb_err_prefix(e, "%s[%zu]", what, i);
            stdb_tx_rollback(st);
            return -1;
        }
    }
    if (stdb_tx_commit(st, e))
        return -1;
    if (loaded)
        *loaded = (int64_t)n;
    return 0;
}

int
store_load_records(store *st, const lf_actor *a, const char *obj, json_t *records, int64_t ago_ms,
                   int64_t *loaded, err_t *e)
{
    store_lock(st);
    objinfo *oi = wr_need_object(st, obj, e);
    int rc = oi ? rec_load_locked(st, oi, a, records, ago_ms, loaded, "records", e) : -1;
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
        sqlite3_stmt *q = stdb_prep(st, s.buf, false, NULL);
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
