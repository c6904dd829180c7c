/*
 * sfbulk: Salesforce's Bulk API 2.0 through an sfapi client: query jobs
 * (create, wait, results page by page or listed ahead for fetching side by
 * side, delete) and ingest jobs in one call. Each call is one or more
 * sfapi_call()s, with sfapi's login, retries and error classes.
 */
#ifndef SFBULK_H
#define SFBULK_H

#include <stdbool.h>

#include "err.h"
#include "sb.h"
#include "sfapi.h"

/* Bulk API 2.0 query job. Creates the job (operation "query" or "queryAll"),
 * and returns its id (caller frees). */
int sfbulk_query_create(sfapi *c, const char *soql, bool all, char **job_id,
                        err_t *e) ERR_MUST_CHECK;
/* Polls the job (with growing intervals, 50 ms up to 2 s, until timeout_ms;
 * 0 = 30 min) until JobComplete. Failed/Aborted → ERR_PERMANENT with the
 * job's errorMessage. *records = numberRecordsProcessed (the records its
 * results hold), -1 when the answer does not say. */
int sfbulk_query_wait(sfapi *c, const char *job_id, long timeout_ms, long *records,
                      err_t *e) ERR_MUST_CHECK;

/* GET .../jobs/query/ID/results?maxRecords=N[&locator=L]. locator NULL or ""
 * for the first page. The CSV (header line included) goes to sink as it
 * arrives. On success *next_locator is the Sforce-Locator header (NULL when it
 * is "null", i.e. this was the last page; caller frees) and *nrecords the
 * Sforce-NumberOfRecords header. Transient failures are retried here only
 * while nothing has reached the sink; once data was delivered a failure is
 * returned (ERR_TRANSIENT) and the caller must discard what it got and ask
 * for the same page again. */
int sfbulk_query_results(sfapi *c, const char *job_id, const char *locator, long max_records,
                         sfapi_sink sink, void *ctx, char **next_locator, long *nrecords,
                         err_t *e) ERR_MUST_CHECK;
/* Up to five results pages of a complete query job, listed ahead so that they
 * can be fetched side by side: GET .../jobs/query/ID/resultPages (API 58.0
 * and later), or the listing after it (listing: the `next` of the one before;
 * NULL for the first). */
typedef struct sfbulk_pages {
    char **url; /* each page's resultUrl, in page order (five at most today); set on success */
    size_t n;
    char *next; /* the next listing's URL; NULL when this one lists the last page */
} sfbulk_pages;
int sfbulk_query_pages(sfapi *c, const char *job_id, const char *listing, sfbulk_pages *out,
                       err_t *e) ERR_MUST_CHECK;
void sfbulk_pages_free(sfbulk_pages *p);
/* A listing's body (what sfbulk_query_pages reads; for the fuzzer). */
int sfbulk_pages_parse(const char *body, size_t len, sfbulk_pages *out, err_t *e) ERR_MUST_CHECK;
/* One page a listing named: its CSV to sink as sfbulk_query_results sends it,
 * *nrecords from Sforce-NumberOfRecords. url must be a path under
 * /services/data/ (the listing is the server's word, checked like any). */
int sfbulk_query_results_at(sfapi *c, const char *url, sfapi_sink sink, void *ctx, long *nrecords,
                            err_t *e) ERR_MUST_CHECK;
/* DELETE the job (best effort cleanup). */
int sfbulk_query_delete(sfapi *c, const char *job_id, err_t *e) ERR_MUST_CHECK;

/* Bulk API 2.0 ingest job in one call: create (operation "insert", "upsert"
 * with ext_field, "update" or "delete"), upload csv (header line first, LF line
 * endings), close, and wait until it is JobComplete. Returns the job id and the
 * counts. Not retried inside: an upload whose outcome is unknown is the
 * caller's to resolve. */
int sfbulk_ingest(sfapi *c, const char *object, const char *operation, const char *ext_field,
                  const char *csv, long timeout_ms, char **job_id, long *processed, long *failed,
                  err_t *e) ERR_MUST_CHECK;
/* The job's successfulResults (failed false) or failedResults CSV, appended to csv. */
int sfbulk_ingest_results(sfapi *c, const char *job_id, bool failed, sb *csv,
                          err_t *e) ERR_MUST_CHECK;

#endif
