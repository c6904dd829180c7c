/*
 * diagnose: `sfbridge diagnose [OBJECT]`, Heroku Connect's connect:diagnose
 * and more. Each check looks at the catalog, Postgres and Salesforce's
 * describe and says GREEN, YELLOW or RED with the reason and, unless green,
 * how to fix it. The checks are a table; each is one small function.
 */
#ifndef DIAGNOSE_H
#define DIAGNOSE_H

#include <stdbool.h>
#include <stdio.h>

#include "app.h"
#include "err.h"

typedef enum { DIAG_GREEN = 0, DIAG_YELLOW = 1, DIAG_RED = 2 } diag_color;

/* Run every check (of one mapping's, when object is set) and print them as
 * text or JSON; *worst gets the worst color. -1 only when nothing could be
 * checked (no database, an unknown object). */
int diagnose_run(app *a, const char *object, bool json, FILE *out, diag_color *worst,
                 err_t *e) ERR_MUST_CHECK;

#endif
