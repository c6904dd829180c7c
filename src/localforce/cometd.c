/*
 * cometd: the Streaming API (being written). See cometd.h.
 */
#include "cometd.h"

#include <stdlib.h>

#include "util.h"

struct lf_cometd {
    lf_events *ev;
};

lf_cometd *
cometd_new(lf_events *ev, err_t *e)
{
    (void)e;
    lf_cometd *c = xcalloc(1, sizeof *c);
    c->ev = ev;
    return c;
}

void
cometd_shutdown(lf_cometd *c)
{
    (void)c;
}

void
cometd_free(lf_cometd *c)
{
    free(c);
}

void
cometd_handle(http_req *req, http_resp *resp)
{
    (void)req;
    http_errorf(resp, 501, "NOT_SUPPORTED", "the Streaming API is not available yet in localforce");
}
