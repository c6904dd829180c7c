/*
 * tables: the SQLite tables behind the schema: CREATE TABLE/ALTER TABLE per object
 * and field, field indexes, object definitions in _lf_objects, key prefix
 * assignment, schema changes that can be undone, and the admin API that adds
 * objects and fields (store_add_object, store_add_field).
 */
#include "tables.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"
#include "write.h"
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
    int rc = stdb_exec(st, s.buf, e);
    if (rc && f->unique && e)
        err_set(e, 400, "DUPLICATE_VALUE",
                "duplicate value found: %s has duplicate values in existing records", f->name);
    sb_free(&name);
    sb_free(&s);
    return rc;
}

int
tbl_create_table(store *st, const lf_object *o, err_t *e)
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
    int rc = stdb_exec(st, s.buf, e);
    for (int k = 0; k < 2 && rc == 0; k++) {
        sb name = SB_INIT;
        sb_clear(&s);
        sb_printf(&name, "%s__%s", o->name, k == 0 ? "stamp" : "deleted");
        sb_puts(&s, "CREATE INDEX ");
        sb_sql_ident(&s, name.buf);
        sb_puts(&s, " ON ");
        sb_sql_ident(&s, o->name);
        sb_puts(&s, k == 0 ? "(\"SystemModstamp\")" : "(\"_deleted_at\") WHERE \"IsDeleted\" = 1");
        rc = stdb_exec(st, s.buf, e);
        sb_free(&name);
    }
    sb_free(&s);
    for (size_t i = 0; i < o->nfields && rc == 0; i++)
        rc = create_field_index(st, o, o->fields[i], e);
    return rc;
}

int
tbl_add_column(store *st, const lf_object *o, const lf_field *f, err_t *e)
{
    sb s = SB_INIT;
    sb_puts(&s, "ALTER TABLE ");
    sb_sql_ident(&s, o->name);
    sb_puts(&s, " ADD COLUMN ");
    column_def(&s, f);
    int rc = stdb_exec(st, s.buf, e);
    if (rc == 0 && f->default_value && lf_types[f->type].storage != ST_BOOL) {
        val d = {0};
        oi_default_val(f, &d);
        sb_clear(&s);
        sb_puts(&s, "UPDATE ");
        sb_sql_ident(&s, o->name);
        sb_puts(&s, " SET ");
        sb_sql_ident(&s, f->name);
        sb_puts(&s, " = ?1");
        sqlite3_stmt *q = stdb_prep(st, s.buf, false, e);
        if (q == NULL) {
            rc = -1;
        } else {
            val_bind(q, 1, &d);
            if (sqlite3_step(q) != SQLITE_DONE)
                rc = stdb_fail(st, e, "set default");
            sqlite3_finalize(q);
        }
        val_reset(&d);
    }
    sb_free(&s);
    return rc ? rc : create_field_index(st, o, f, e);
}

int
tbl_save_object_def(store *st, const lf_object *o, err_t *e)
{
    json_t *j = schema_object_to_json(o);
    char *def = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    sqlite3_stmt *q = stdb_prep(st,
                                "INSERT INTO _lf_objects(name, pos, def) VALUES (?1, ?2, ?3) "
                                "ON CONFLICT(name) DO UPDATE SET def = excluded.def",
                                false, e);
    int rc = -1;
    if (q) {
        sqlite3_bind_text(q, 1, o->name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, (int64_t)oi_index(st, o));
        sqlite3_bind_text(q, 3, def, -1, SQLITE_STATIC);
        rc = sqlite3_step(q) == SQLITE_DONE ? 0 : stdb_fail(st, e, "save object");
        sqlite3_finalize(q);
    }
    free(def);
    return rc;
}
/* ------------------------------------------------------------------------ */
/* Schema changes with undo                                                 */

void
tbl_snap_take(store *st, snap *s)
{
    s->nobjects = st->schema.nobjects;
    s->nfields = xcalloc(s->nobjects ? s->nobjects : 1, sizeof *s->nfields);
    for (size_t i = 0; i < s->nobjects; i++)
        s->nfields[i] = st->schema.objects[i]->nfields;
    memcpy(s->default_user, st->default_user, sizeof s->default_user);
}

/* Forget objects and fields added since the snapshot (after a rollback). */
void
tbl_snap_restore(store *st, snap *s)
{
    while (st->schema.nobjects > s->nobjects) {
        size_t i = --st->schema.nobjects;
        lf_object *o = st->schema.objects[i];
        oi_free(st->oi[i]);
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

void
tbl_snap_free(snap *s)
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
void
tbl_assign_prefix(store *st, lf_object *o, char (*reserved)[4], size_t nreserved)
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
int
tbl_check_relationships(const lf_object *o, err_t *e)
{
    char opath[256];
    snprintf(opath, sizeof opath, "objects.%s", o->name);
    return schema_check_relationships(o, opath, "", e);
}

/* Create o's table and metadata row and add it to the schema. */
int
tbl_install_object(store *st, lf_object *o, err_t *e)
{
    if (oi_add_object(st, o, e)) {
        object_free(o);
        return -1;
    }
    if (tbl_create_table(st, o, e) || tbl_save_object_def(st, o, e))
        return -1;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Admin                                                                    */

static int
add_field_locked(store *st, const char *obj, const char *field, json_t *def, err_t *e)
{
    objinfo *oi = wr_need_object(st, obj, e);
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
    if (tbl_check_relationships(o, e) || schema_validate(&st->schema, e)) {
        field_free(o->fields[--o->nfields]);
        return -1;
    }
    if (stdb_tx_begin(st, e)) {
        field_free(o->fields[--o->nfields]);
        return -1;
    }
    if (tbl_add_column(st, o, f, e) || tbl_save_object_def(st, o, e) || stdb_tx_commit(st, e)) {
        if (st->tx_depth > 0)
            stdb_tx_rollback(st);
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
        tbl_assign_prefix(st, o, NULL, 0);
    snap sn;
    tbl_snap_take(st, &sn);
    if (stdb_tx_begin(st, e)) {
        object_free(o);
        tbl_snap_free(&sn);
        return -1;
    }
    if (tbl_install_object(st, o, e) || schema_validate(&st->schema, e) || stdb_tx_commit(st, e)) {
        if (st->tx_depth > 0)
            stdb_tx_rollback(st);
        tbl_snap_restore(st, &sn);
        tbl_snap_free(&sn);
        return -1;
    }
    tbl_snap_free(&sn);
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
