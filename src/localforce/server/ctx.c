/*
 * ctx: the running org as request handlers see it. See ctx.h.
 */
#include "ctx.h"

lf_server *
ctx_of(const http_req *req)
{
    return req->ctx;
}
