/*
 * write: writing one record: applying a JSON record to the scratch values, required
 * and unique checks, audit fields, INSERT/UPDATE through the cached statements,
 * and the change hook around each write.
 */
#include "write.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "convert.h"
#include "sfid.h"
#include "util.h"
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
        int ix = oi_map_get(&oi->byname, o, key, false);
        if (ix < 0) {
            if (strcasecmp(key, "attributes") == 0)
                continue;
            int rx = oi_map_get(&oi->byrel, o, key, true);
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
            if (conv_resolve_relationship(st, f, v, &oi->vals[rx], e)) {
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
        if (conv_value(st, f, v, &oi->vals[ix], e)) {
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

/* skip: a field the write fills itself when empty (-1 for none). */
static int
check_required(objinfo *oi, int skip, err_t *e)
{
    sb names = SB_INIT, fields = SB_INIT;
    for (size_t k = 0; k < oi->nrequired; k++) {
        int ix = oi->required[k];
        if (ix == skip || !val_empty(&oi->vals[ix]))
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
        if (conv_ext_lookup(st, oi, ix, &oi->vals[ix], self, NULL, ids, 1, &n, e))
            return -1;
        if (n > 0) {
            const char *name = oi->o->fields[ix]->name;
            err_set(e, 400, "DUPLICATE_VALUE",
                    "duplicate value found: %s duplicates value on record with id: %s", name,
                    ids[0]);
            return err_fields(e, name);
        }
    }
    return err_set(e, 400, "DUPLICATE_VALUE", "duplicate value found: %s", sqlite3_errmsg(st->db));
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
int
wr_fire_change(store *st, objinfo *oi, lf_change_type type, const char *id, const lf_actor *a,
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
int
wr_hooked_begin(store *st, const objinfo *oi, bool *opened, err_t *e)
{
    *opened = false;
    if (st->hook.change == NULL)
        return 0;
    if (st->tx_depth > 0 &&
        (oi == NULL || st->hook.refuses == NULL || !st->hook.refuses(st->hook.ctx, oi->o)))
        return 0;
    if (stdb_tx_begin(st, e))
        return -1;
    *opened = true;
    return 0;
}

int
wr_hooked_end(store *st, bool opened, int rc, err_t *e)
{
    if (!opened)
        return rc;
    if (rc != 0) {
        stdb_tx_rollback(st);
        return rc;
    }
    return stdb_tx_commit(st, e);
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
    return stdb_fail(st, e, "write");
}

int
wr_create(store *st, objinfo *oi, const lf_actor *a, json_t *rec, int64_t stamp, int force_ix,
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
    /* A custom object's record created without a Name is named by its Id (the
     * 15-character one), as Salesforce does. */
    bool name_id = oi->name_from_id && val_empty(&oi->vals[oi->ix_name]);
    if (check_required(oi, name_id ? oi->ix_name : -1, e))
        goto out;
    compute_name(oi);

    char id[19];
    int64_t rowid = 0;
    for (int attempt = 0;; attempt++) {
        if (oi_next_rowid(st, oi, &rowid, e))
            goto out;
        sfid_make(o->key_prefix, (uint64_t)rowid, id);
        if (stamp == 0)
            stamp = stdb_next_stamp(st);
        const char *uid = actor_user(st, a);
        if (uid == NULL && oi->is_user)
            uid = id;
        val_text_ref(&oi->vals[oi->ix_id], id, 18);
        if (name_id)
            val_text_ref(&oi->vals[oi->ix_name], id, 15);
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
            val_bind(ins, (int)i + 2, &oi->vals[i]);
        int w = step_write(st, oi, ins, rowid, e);
        if (w < 0)
            goto out;
        if (w == 0)
            break;
        if (attempt > 0) {
            stdb_fail(st, e, "insert");
            goto out;
        }
        oi->next_rowid = 0;
    }
    if (wr_fire_change(st, oi, LF_CHANGE_CREATE, id, a, stamp, NULL, 0, e))
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
                                 : stdb_fail(st, e, "read");
    }
    for (size_t i = 0; i < oi->o->nfields; i++)
        val_column(q, (int)i + 1, lf_types[oi->o->fields[i]->type].storage, &oi->vals[i]);
    sqlite3_reset(q);
    return 0;
}

int
wr_update(store *st, objinfo *oi, const lf_actor *a, int64_t rowid, const char *id18, json_t *rec,
          int64_t stamp, int skip_ix, err_t *e)
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
    if (check_required(oi, -1, e))
        goto out;
    compute_name(oi);
    if (stamp == 0)
        stamp = stdb_next_stamp(st);
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
            val_bind(upd, (int)i + 2, &oi->vals[i]);
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
        int hr = wr_fire_change(st, oi, LF_CHANGE_UPDATE, id18, a, stamp, changed, n, e);
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

/* The live row of id in oi, with Salesforce's errors for each kind of miss. */
int
wr_find_row(store *st, objinfo *oi, const char *id, int mode, int64_t *rowid, char id18[19],
            err_t *e)
{
    if (id == NULL || sfid_normalize(id, id18) || !sfid_has_prefix(id18, oi->o->key_prefix)) {
        if (mode == FIND_GET)
            return err_set(e, 404, "NOT_FOUND", not_found_msg);
        err_set(e, 400, "MALFORMED_ID", "%s ID: id value of incorrect type: %.100s", oi->o->label,
                id ? id : "null");
        return err_fields(e, "Id");
    }
    int s = conv_row_status(st, oi, id18, rowid, e);
    if (s < 0)
        return -1;
    if (s == 0)
        return err_set(e, 404, "NOT_FOUND", not_found_msg);
    if (s == 2)
        return err_set(e, 404, "ENTITY_IS_DELETED", "entity is deleted");
    return 0;
}

objinfo *
wr_need_object(store *st, const char *obj, err_t *e)
{
    objinfo *oi = oi_find(st, obj);
    if (oi == NULL)
        err_set(e, 404, "NOT_FOUND", not_found_msg);
    return oi;
}
