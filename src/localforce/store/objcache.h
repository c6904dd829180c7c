/*
 * objcache: the per-object cache (objinfo): case-insensitive field and relationship
 * name indexes, required/unique/defaulted field lists, field defaults, scratch
 * values for the record being written, and the object's prepared statements.
 */
#ifndef OBJCACHE_H
#define OBJCACHE_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include "schema.h"
#include "stdb.h"
#include "value.h"

typedef struct namemap {
    int *slots; /* field index + 1; 0 = empty */
    size_t mask;
} namemap;

typedef struct objinfo {
    lf_object *o;
    size_t nf; /* o->nfields when built; the arrays below have nf entries */
    namemap byname, byrel;
    int ix_id, ix_deleted, ix_name, ix_created, ix_createdby, ix_modified, ix_modifiedby, ix_stamp,
        ix_owner, ix_first, ix_last;
    bool computed_name;
    bool name_from_id; /* a custom object's Name, created empty, becomes the Id */
    bool is_user;
    int *required;
    size_t nrequired;
    int *unique;
    size_t nunique;
    int *defaulted;
    size_t ndefaulted;
    val *defaults;        /* per field; V_UNSET when the field has none */
    val *vals;            /* scratch for the record being written */
    unsigned char *given; /* scratch: 1 = set by name, 2 = set by relationship */
    int64_t next_rowid;   /* 0 = not known yet */
    sqlite3_stmt *ins, *sel, *upd, *del, *live;
    sqlite3_stmt **ext; /* per field: live rows by value */
} objinfo;

int oi_map_get(const namemap *m, const lf_object *o, const char *key, bool rel);
void oi_default_val(const lf_field *f, val *v);
void oi_free(objinfo *oi);
size_t oi_index(store *st, const lf_object *o);
objinfo *oi_find(store *st, const char *name);
objinfo *oi_of(store *st, const lf_object *o);
int oi_add_object(store *st, lf_object *o, err_t *e);
void oi_rebuild(store *st, size_t i);
sqlite3_stmt *oi_ins(store *st, objinfo *oi, err_t *e);
sqlite3_stmt *oi_sel(store *st, objinfo *oi, err_t *e);
sqlite3_stmt *oi_upd(store *st, objinfo *oi, err_t *e);
sqlite3_stmt *oi_del(store *st, objinfo *oi, err_t *e);
sqlite3_stmt *oi_live(store *st, objinfo *oi, err_t *e);
sqlite3_stmt *oi_ext(store *st, objinfo *oi, int ix, err_t *e);
int oi_next_rowid(store *st, objinfo *oi, int64_t *out, err_t *e);

#endif
