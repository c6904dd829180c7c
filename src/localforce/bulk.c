/*
 * bulk: Bulk API 2.0 (being written). See bulk.h.
 */
#include "bulk.h"

#include <stdlib.h>

#include "util.h"

struct lf_bulk {
    store *st;
};

lf_bulk *
bulk_new(store *st, err_t *e)
{
    (void)e;
    lf_bulk *b = xcalloc(1, sizeof *b);
    b->st = st;
    return b;
}

void
bulk_free(lf_bulk *b)
{
    free(b);
}

static void
not_yet(http_req *req, http_resp *resp)
{
    (void)req;
    http_errorf(resp, 501, "NOT_SUPPORTED", "Bulk API 2.0 is not available yet in localforce");
}

void bulk_query_create(http_req *req, http_resp *resp) { not_yet(req, resp); }
void bulk_query_list(http_req *req, http_resp *resp) { not_yet(req, resp); }
void bulk_query_job(http_req *req, http_resp *resp) { not_yet(req, resp); }
void bulk_query_results(http_req *req, http_resp *resp) { not_yet(req, resp); }
void bulk_ingest_create(http_req *req, http_resp *resp) { not_yet(req, resp); }
void bulk_ingest_list(http_req *req, http_resp *resp) { not_yet(req, resp); }
void bulk_ingest_job(http_req *req, http_resp *resp) { not_yet(req, resp); }
void bulk_ingest_upload(http_req *req, http_resp *resp) { not_yet(req, resp); }
void bulk_ingest_results(http_req *req, http_resp *resp) { not_yet(req, resp); }
