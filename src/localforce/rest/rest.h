/*
 * rest: the REST API under /services/data/vNN.N/ (versions, resource map,
 * describe, records, upsert, query, updated/deleted, collections, composite tree,
 * limits).
 * Handlers for the route table in server.c; ctx_of(req) (ctx.h) is the lf_server and
 * req->auth the caller's lf_session.
 */
#ifndef REST_H
#define REST_H

#include "http.h"

void rest_versions(http_req *req, http_resp *resp);
void rest_resources(http_req *req, http_resp *resp);
void rest_describe_global(http_req *req, http_resp *resp);
void rest_sobject_info(http_req *req, http_resp *resp);
void rest_describe(http_req *req, http_resp *resp);
void rest_create(http_req *req, http_resp *resp);
void rest_record(http_req *req, http_resp *resp);         /* GET/PATCH/DELETE by Id */
void rest_by_external_id(http_req *req, http_resp *resp); /* GET/PATCH/DELETE by ext id */
void rest_updated(http_req *req, http_resp *resp);
void rest_deleted(http_req *req, http_resp *resp);
void rest_query(http_req *req, http_resp *resp);
void rest_query_all(http_req *req, http_resp *resp);
void rest_query_more(http_req *req, http_resp *resp);
void rest_collection(http_req *req, http_resp *resp); /* POST/PATCH/DELETE composite/sobjects */
void rest_collection_upsert(http_req *req, http_resp *resp);
void rest_collection_retrieve(http_req *req, http_resp *resp);
void rest_composite_tree(http_req *req, http_resp *resp); /* POST composite/tree/{Obj} */
void rest_limits(http_req *req, http_resp *resp);

#endif
