/*
 * query: REST query execution and server-side cursors.
 *
 * A query runs its compiled plan (soql.h) in SQLite and writes the first page
 * of Salesforce's query JSON ({"totalSize","done","records"[,"nextRecordsUrl"]}).
 * When rows remain, the open SQLite statement is parked in a cursor under a
 * locator id ("01g..."), and GET /query/{locator}-{offset} continues it, so a
 * million-row query costs one pass over the data and flat memory. Cursors idle
 * for too long are closed; a stale locator gets INVALID_QUERY_LOCATOR.
 */
#ifndef QUERY_H
#define QUERY_H

#include <stdbool.h>

#include "err.h"
#include "sb.h"
#include "store.h"

typedef struct lf_cursors lf_cursors;

lf_cursors *cursors_new(store *st);
void cursors_free(lf_cursors *c);
/* Close every open cursor (for example before a schema change). */
void cursors_close_all(lf_cursors *c);
int cursors_open_count(lf_cursors *c);

/* Run q; batch is the page size (200..2000, from Sforce-Query-Options); ver is
 * the API version without its "v" ("59.0"). */
int query_run(lf_cursors *c, const char *q, bool all_rows, int batch, const char *ver, sb *out,
              err_t *e);
/* columns=true: q's column metadata instead of its rows, as Salesforce answers
 * it: {"columnMetadata":[{"aggregate","apexType","booleanType","columnName",
 * "custom","displayName","foreignKeyName","insertable","joinColumns":[...],
 * "numberType","textType","updatable"},...],"entityName","groupBy","idSelected",
 * "keyPrefix"}. A parent path (Owner.Name) is the relationship's column with the
 * field in its joinColumns; SELECT COUNT() has no columns. */
int query_columns(store *st, const char *q, bool all_rows, sb *out, err_t *e);
/* Continue "<locator>-<offset>". */
int query_more(lf_cursors *c, const char *locator, const char *ver, sb *out, err_t *e);

#endif
