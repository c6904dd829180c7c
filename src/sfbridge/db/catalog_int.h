/*
 * catalog_int: what the catalog's files (catalog.c, catalog_conn.c,
 * catalog_state.c) share; not for use outside the catalog module.
 */
#ifndef CATALOG_INT_H
#define CATALOG_INT_H

#include <libpq-fe.h>

#include "err.h"

/* tmpl with %1$s replaced by the quoted schema (caller frees). */
char *cat_qsql(const char *schema, const char *tmpl);
int cat_run(PGconn *c, const char *schema, const char *tmpl, int n, const char *const *params,
            err_t *e);
PGresult *cat_query(PGconn *c, const char *schema, const char *tmpl, int n,
                    const char *const *params, err_t *e);

#endif
