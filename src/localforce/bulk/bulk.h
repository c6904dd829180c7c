/*
 * bulk: Bulk API 2.0 under /services/data/vNN.N/jobs/ — query jobs (query and
 * queryAll) whose results stream out as CSV page by page with Sforce-Locator,
 * and ingest jobs (insert, update, upsert, delete) that take CSV uploads and
 * report successfulResults / failedResults / unprocessedrecords. Jobs are kept
 * in the org's database. Handlers for server.c's route table; ctx_of(req) (ctx.h) is the
 * lf_server, req->auth the caller's lf_session.
 */
#ifndef BULK_H
#define BULK_H

#include "err.h"
#include "http.h"
#include "store.h"

typedef struct lf_bulk lf_bulk;

lf_bulk *bulk_new(store *st, err_t *e);
void bulk_free(lf_bulk *b);
/* Rows per page a resultPages listing names (--result-page-rows; 0: 100,000). */
void bulk_set_result_page_rows(lf_bulk *b, int64_t rows);

void bulk_query_create(http_req *req, http_resp *resp);       /* POST   jobs/query */
void bulk_query_list(http_req *req, http_resp *resp);         /* GET    jobs/query */
void bulk_query_job(http_req *req, http_resp *resp);          /* GET|PATCH|DELETE jobs/query/{id} */
void bulk_query_results(http_req *req, http_resp *resp);      /* GET    jobs/query/{id}/results */
void bulk_query_result_pages(http_req *req, http_resp *resp); /* GET jobs/query/{id}/resultPages */
void bulk_ingest_create(http_req *req, http_resp *resp);      /* POST   jobs/ingest */
void bulk_ingest_list(http_req *req, http_resp *resp);        /* GET    jobs/ingest */
void bulk_ingest_job(http_req *req, http_resp *resp);    /* GET|PATCH|DELETE jobs/ingest/{id} */
void bulk_ingest_upload(http_req *req, http_resp *resp); /* PUT    jobs/ingest/{id}/batches */
void bulk_ingest_results(http_req *req,
                         http_resp *resp); /* GET    jobs/ingest/{id}/{successfulResults|
                                               failedResults|unprocessedrecords} */

#endif
