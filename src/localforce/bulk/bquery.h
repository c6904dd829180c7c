/*
 * bquery: Bulk query jobs: creation (the SOQL is compiled at once), the worker's
 * count, and result pages streamed as CSV from an open statement; a page read
 * to its end parks its statement, positioned at the next page.
 */
#ifndef BQUERY_H
#define BQUERY_H

#include "jobs.h"

void bq_run(lf_bulk *b, const char *id);
void bq_cursor_free(qcursor *c);
void bq_park_expire(lf_bulk *b, const char *job_id);

#endif
