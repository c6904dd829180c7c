/*
 * convert: JSON values to stored values with Salesforce's checks and errors: type,
 * length, range, email, picklist, date/time formats, lookups that must point at
 * a live record of the right object, and parent references by external id.
 */
#ifndef CONVERT_H
#define CONVERT_H

#include "objcache.h"

int conv_row_status(store *st, objinfo *oi, const char *id18, int64_t *rowid, err_t *e);
int conv_value(store *st, const lf_field *f, json_t *v, val *out, err_t *e);
int conv_ext_lookup(store *st, objinfo *oi, int ix, const val *key, int64_t exclude,
                    int64_t *rowids, char (*ids)[19], int max, int *count, err_t *e);
int conv_resolve_relationship(store *st, const lf_field *f, json_t *v, val *out, err_t *e);

#endif
