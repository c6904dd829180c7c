/*
 * tables: the SQLite tables behind the schema: CREATE TABLE/ALTER TABLE per object
 * and field, field indexes, object definitions in _lf_objects, key prefix
 * assignment, schema changes that can be undone, and the admin API that adds
 * objects and fields (store_add_object, store_add_field).
 */
#ifndef TABLES_H
#define TABLES_H

#include "objcache.h"

/* What a schema change may undo: the schema's sizes before it. */
typedef struct snap {
    size_t nobjects;
    size_t *nfields;
    char default_user[19];
} snap;

int tbl_create_table(store *st, const lf_object *o, err_t *e);
int tbl_add_column(store *st, const lf_object *o, const lf_field *f, err_t *e);
int tbl_save_object_def(store *st, const lf_object *o, err_t *e);
void tbl_snap_take(store *st, snap *s);
void tbl_snap_restore(store *st, snap *s);
void tbl_snap_free(snap *s);
void tbl_assign_prefix(store *st, lf_object *o, char (*reserved)[4], size_t nreserved);
int tbl_install_object(store *st, lf_object *o, err_t *e);
int tbl_check_relationships(const lf_object *o, err_t *e);

#endif
