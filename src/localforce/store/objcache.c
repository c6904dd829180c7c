/*
 * objcache: the per-object cache (objinfo): case-insensitive field and relationship
 * name indexes, required/unique/defaulted field lists, field defaults, scratch
 * values for the record being written, and the object's prepared statements.
 */
#include "objcache.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

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

int
oi_map_get(const namemap *m, const lf_object *o, const char *key, bool rel)
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
void
oi_default_val(const lf_field *f, val *v)
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
                        !o->fields[oi->ix_name]->createable && !o->fields[oi->ix_name]->updateable;
    oi->name_from_id = o->custom && oi->ix_name >= 0 && !oi->computed_name &&
                       o->fields[oi->ix_name]->createable;
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
            oi_default_val(f, &oi->defaults[i]);
            if (oi->defaults[i].kind != V_UNSET)
                oi->defaulted[oi->ndefaulted++] = (int)i;
        }
    }
    return oi;
}

void
oi_free(objinfo *oi)
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

size_t
oi_index(store *st, const lf_object *o)
{
    for (size_t i = 0; i < st->schema.nobjects; i++)
        if (st->schema.objects[i] == o)
            return i;
    return (size_t)-1;
}

objinfo *
oi_find(store *st, const char *name)
{
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < st->schema.nobjects; i++)
        if (strcasecmp(st->schema.objects[i]->name, name) == 0)
            return st->oi[i];
    return NULL;
}

objinfo *
oi_of(store *st, const lf_object *o)
{
    size_t i = oi_index(st, o);
    return i == (size_t)-1 ? NULL : st->oi[i];
}

/* Add an object to the schema together with its cache. */
int
oi_add_object(store *st, lf_object *o, err_t *e)
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
void
oi_rebuild(store *st, size_t i)
{
    oi_free(st->oi[i]);
    st->oi[i] = objinfo_new(st->schema.objects[i]);
}

/* Prepare the statement in s into the cache slot *slot (NULL on error) and free s. */
static sqlite3_stmt *
cache_prep(store *st, sqlite3_stmt **slot, sb *s, err_t *e)
{
    *slot = stdb_prep(st, s->buf, true, e);
    sb_free(s);
    return *slot;
}

/* ",col" for each of the object's fields, in order. */
static void
put_columns(sb *s, const lf_object *o)
{
    for (size_t i = 0; i < o->nfields; i++) {
        sb_putc(s, ',');
        sb_sql_ident(s, o->fields[i]->name);
    }
}

sqlite3_stmt *
oi_ins(store *st, objinfo *oi, err_t *e)
{
    if (oi->ins)
        return oi->ins;
    const lf_object *o = oi->o;
    sb s = SB_INIT;
    sb_puts(&s, "INSERT INTO ");
    sb_sql_ident(&s, o->name);
    sb_puts(&s, " (\"_rowid\"");
    put_columns(&s, o);
    sb_puts(&s, ") VALUES (?1");
    for (size_t i = 0; i < o->nfields; i++)
        sb_printf(&s, ",?%zu", i + 2);
    sb_putc(&s, ')');
    return cache_prep(st, &oi->ins, &s, e);
}

sqlite3_stmt *
oi_sel(store *st, objinfo *oi, err_t *e)
{
    if (oi->sel)
        return oi->sel;
    const lf_object *o = oi->o;
    sb s = SB_INIT;
    sb_puts(&s, "SELECT \"_rowid\"");
    put_columns(&s, o);
    sb_puts(&s, ",\"_deleted_at\" FROM ");
    sb_sql_ident(&s, o->name);
    sb_puts(&s, " WHERE \"_rowid\" = ?1");
    return cache_prep(st, &oi->sel, &s, e);
}

sqlite3_stmt *
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
    return cache_prep(st, &oi->upd, &s, e);
}

sqlite3_stmt *
oi_del(store *st, objinfo *oi, err_t *e)
{
    if (oi->del)
        return oi->del;
    sb s = SB_INIT;
    sb_puts(&s, "UPDATE ");
    sb_sql_ident(&s, oi->o->name);
    sb_puts(&s, " SET \"IsDeleted\" = 1, \"_deleted_at\" = ?2, \"SystemModstamp\" = ?2 "
                "WHERE \"_rowid\" = ?1");
    return cache_prep(st, &oi->del, &s, e);
}

sqlite3_stmt *
oi_live(store *st, objinfo *oi, err_t *e)
{
    if (oi->live)
        return oi->live;
    sb s = SB_INIT;
    sb_puts(&s, "SELECT \"Id\", \"IsDeleted\" FROM ");
    sb_sql_ident(&s, oi->o->name);
    sb_puts(&s, " WHERE \"_rowid\" = ?1");
    return cache_prep(st, &oi->live, &s, e);
}

/* Live rows whose field ix equals ?1 (case-insensitively unless case-sensitive). */
sqlite3_stmt *
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
    return cache_prep(st, &oi->ext[ix], &s, e);
}

int
oi_next_rowid(store *st, objinfo *oi, int64_t *out, err_t *e)
{
    if (oi->next_rowid == 0) {
        sb s = SB_INIT;
        sb_puts(&s, "SELECT COALESCE(MAX(\"_rowid\"), 0) + 1 FROM ");
        sb_sql_ident(&s, oi->o->name);
        sqlite3_stmt *q = stdb_prep(st, s.buf, false, e);
        sb_free(&s);
        if (q == NULL)
            return -1;
        if (sqlite3_step(q) != SQLITE_ROW) {
            sqlite3_finalize(q);
            return stdb_fail(st, e, "next id");
        }
        oi->next_rowid = sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
    }
    *out = oi->next_rowid++;
    return 0;
}
