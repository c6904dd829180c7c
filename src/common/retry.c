/*
 * retry: the one backoff rule (see retry.h).
 */
#include "retry.h"

#include <stdint.h>

#include "util.h"

const retry_policy retry_presets[RETRY_KIND_COUNT] = {
    [RETRY_POLL] = {"poll", 1000, 300000, RETRY_JITTER_EQUAL},
    [RETRY_WRITE] = {"write", 500, 300000, RETRY_JITTER_EQUAL},
    [RETRY_STREAM] = {"stream", 500, 300000, RETRY_JITTER_NONE},
    [RETRY_PG] = {"postgres", 1000, 300000, RETRY_JITTER_EQUAL},
    [RETRY_HTTP] = {"http", 250, 8000, RETRY_JITTER_FULL},
    [RETRY_WEBHOOK] = {"webhook", 1000, 600000, RETRY_JITTER_EQUAL},
};

long
retry_ceiling_ms(const retry_policy *p, int failures, long cap_ms)
{
    long cap = cap_ms > 0 ? cap_ms : p->cap_ms;
    long d = p->first_ms > 0 ? p->first_ms : 1;
    for (int i = 1; i < failures && d < cap; i++)
        d *= 2;
    return d > cap ? cap : d;
}

long
retry_delay_ms(const retry_policy *p, int failures, long cap_ms)
{
    long d = retry_ceiling_ms(p, failures, cap_ms);
    uint64_t r;
    switch (p->jitter) {
    case RETRY_JITTER_EQUAL:
        util_random(&r, sizeof r);
        return d / 2 + (long)(r % (uint64_t)(d / 2 + 1));
    case RETRY_JITTER_FULL: util_random(&r, sizeof r); return (long)(r % (uint64_t)(d + 1));
    case RETRY_JITTER_NONE:
    default: return d;
    }
}
