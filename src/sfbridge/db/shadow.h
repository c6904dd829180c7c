/*
 * shadow: the table an initial Bulk load fills before apps see any of it.
 *
 * A mapping's first load COPYs Salesforce's Bulk results into
 * <schema>._sfbridge_load_<table> (ddl.h's DDL_SHADOW), a table with the
 * mapping's columns and primary key but no other index and no trigger, a
 * transaction per results page, so a crash resumes from the last page. When
 * the last page is in, the shadow's indexes are built (by sort, not per row)
 * and, in the transaction that marks the load done, the shadow takes the
 * table's place: apps see an empty table, then the whole load, never a part.
 *
 * The swap drops the mapping's table and renames the shadow in its place, so
 * it is only done when the table is empty and nothing but sfbridge's own
 * objects hang on it (no view, foreign key, policy, publication, app index
 * or trigger, comment, column privilege, or column the mapping lacks); its
 * table privileges are copied over. Otherwise the caller moves the rows in
 * (an upsert, the same as a page's) and drops the shadow.
 */
#ifndef SHADOW_H
#define SHADOW_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "catalog.h"
#include "err.h"
#include "sb.h"

/* The shadow's schema-qualified, quoted name. */
void shadow_qname(sb *out, const char *schema, const mapping *m);
/* Drop and create the shadow, empty (in the caller's transaction). */
int shadow_create(PGconn *c, const char *schema, const mapping *m, err_t *e);
/* What became of a load's shadow while the load was away (a kill, a restart). */
typedef enum shadow_fit {
    SHADOW_FITS,    /* there, with the columns m maps: the load may go on */
    SHADOW_MISSING, /* dropped behind sfbridge's back: its pages are gone */
    SHADOW_STALE,   /* m's fields changed since the load began (`mapping edit` while
                     * the load was stopped): the pages Salesforce holds lack them */
} shadow_fit;
/* Look at the shadow: *fit says whether the load it holds may go on. */
int shadow_check(PGconn *c, const char *schema, const mapping *m, shadow_fit *fit, err_t *e);
/* Build the shadow's indexes (in a transaction of their own; idempotent). */
int shadow_index(PGconn *c, const char *schema, const mapping *m, err_t *e);
/* In the caller's transaction: lock the table and, when it may be replaced,
 * put the shadow in its place (*swapped = true). When it may not, leave both
 * (*swapped = false): the caller moves the rows and calls shadow_drop. */
int shadow_swap(PGconn *c, const char *schema, const mapping *m, bool *swapped, err_t *e);
/* Drop the shadow if there is one. */
int shadow_drop(PGconn *c, const char *schema, const mapping *m, err_t *e);

#endif
