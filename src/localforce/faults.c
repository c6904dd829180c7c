/*
 * faults: injected faults (being written). See faults.h.
 */
#include "faults.h"

#include <stdlib.h>

#include "util.h"

struct lf_faults {
    int unused;
};

lf_faults *
faults_new(const char *spec, err_t *e)
{
    if (spec && *spec)
        return err_set(e, 0, "BAD_FAULTS", "--faults is not available yet"), NULL;
    return xcalloc(1, sizeof(lf_faults));
}

void
faults_shutdown(lf_faults *f)
{
    (void)f;
}

void
faults_free(lf_faults *f)
{
    free(f);
}

fault_verdict
faults_before(lf_faults *f, const http_route *route, http_req *req, http_resp *resp)
{
    (void)f, (void)route, (void)req, (void)resp;
    return FAULT_PASS;
}

void
faults_admin(http_req *req, http_resp *resp)
{
    (void)req;
    http_errorf(resp, 501, "NOT_SUPPORTED", "faults are not available yet in localforce");
}
