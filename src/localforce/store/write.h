/*
 * write: writing one record: applying a JSON record to the scratch values, required
 * and unique checks, audit fields, INSERT/UPDATE through the cached statements,
 * and the change hook around each write.
 */
#ifndef WRITE_H
#define WRITE_H

#include "objcache.h"

/* wr_find_row modes: a malformed id answers NOT_FOUND when reading, MALFORMED_ID when writing. */
enum { FIND_GET, FIND_WRITE };

int wr_fire_change(store *st, objinfo *oi, lf_change_type type, const char *id, const lf_actor *a,
                   int64_t stamp, const lf_field *const *changed, size_t nchanged, err_t *e);
int wr_hooked_begin(store *st, const objinfo *oi, bool *opened, err_t *e);
int wr_hooked_end(store *st, bool opened, int rc, err_t *e);
int wr_create(store *st, objinfo *oi, const lf_actor *a, json_t *rec, int64_t stamp, int force_ix,
              const val *force, char id_out[19], err_t *e);
int wr_update(store *st, objinfo *oi, const lf_actor *a, int64_t rowid, const char *id18,
              json_t *rec, int64_t stamp, int skip_ix, err_t *e);
int wr_find_row(store *st, objinfo *oi, const char *id, int mode, int64_t *rowid, char id18[19],
                err_t *e);
objinfo *wr_need_object(store *st, const char *obj, err_t *e);

#endif
