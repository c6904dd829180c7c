/*
 * retry: the one backoff rule. Every loop that tries again after a failure
 * (a mapping's poll, the writer's sends, the stream's reconnects, Postgres
 * reconnects, the Salesforce client's in-call retries) takes its delay from a
 * retry_policy: capped exponential growth from a first delay, with a jitter
 * kind. The presets below are the table of those loops; the cap may be
 * overridden per call from the SFBRIDGE_BACKOFF_CAP_MS setting.
 */
#ifndef RETRY_H
#define RETRY_H

typedef enum retry_jitter {
    RETRY_JITTER_NONE,  /* exactly the exponential delay */
    RETRY_JITTER_EQUAL, /* half fixed, half random: [d/2, d] */
    RETRY_JITTER_FULL,  /* random(0, d) (AWS's "full jitter") */
} retry_jitter;

typedef struct retry_policy {
    const char *name; /* for logs and tests */
    long first_ms;    /* the delay after the first failure */
    long cap_ms;      /* the largest delay */
    retry_jitter jitter;
} retry_policy;

typedef enum retry_kind {
    RETRY_POLL,    /* a mapping's failed pull: next attempt of that mapping */
    RETRY_WRITE,   /* a trigger-log entry whose send failed transiently */
    RETRY_STREAM,  /* the CometD client reconnecting */
    RETRY_PG,      /* reconnecting to Postgres */
    RETRY_HTTP,    /* a Salesforce request retried inside one call */
    RETRY_WEBHOOK, /* a notification the webhook did not take */
    RETRY_KIND_COUNT
} retry_kind;

extern const retry_policy retry_presets[RETRY_KIND_COUNT];

/* The delay before the next attempt after `failures` consecutive failures
 * (1 = the first failure): first_ms * 2^(failures-1), at most the cap
 * (cap_ms > 0 overrides the policy's), then jittered. failures < 1 counts as 1. */
long retry_delay_ms(const retry_policy *p, int failures, long cap_ms);
/* The same without jitter: the upper bound of retry_delay_ms. */
long retry_ceiling_ms(const retry_policy *p, int failures, long cap_ms);

#endif
