/*
 * browse: reading a mapped table page by page for the Explorer (the
 * dashboard): keyset paging on any column (never OFFSET, so the millionth
 * row costs what the first does when the column is indexed; id always is),
 * a filter on one column, a search across the text columns, and estimated
 * counts above 100,000 rows. It only reads; columns are checked against
 * the table's own and quoted, values go as parameters.
 */
#ifndef BROWSE_H
#define BROWSE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "err.h"

#define BROWSE_DEFAULT_LIMIT 50
#define BROWSE_MAX_LIMIT     500

typedef struct browse_query {
    const char *schema, *table;
    const char *sort;  /* a column (NULL: id) */
    bool desc;         /* descending */
    const char *after; /* the cursor of the page before ("next" of its answer), or NULL */
    const char *field; /* filter: field = value (as text) */
    const char *value;
    const char *q; /* search: sfid, id, or text in any text column */
    int limit;     /* 1 to BROWSE_MAX_LIMIT */
} browse_query;

/* {columns:[{name, type}], results:[{column: text|null}], next: cursor|null,
 * estimated_count, exact}. NULL with e filled (400 for a column that is not
 * the table's, or a bad cursor). */
json_t *browse_page(PGconn *c, const browse_query *q, err_t *e);

/* One row by its id or sfid ({column: text|null}); its id into *rid. 404
 * NOT_FOUND when no row has it. */
json_t *browse_record(PGconn *c, const char *schema, const char *table, const char *id,
                      int64_t *rid, err_t *e);

#endif
