/*
 * sfapi_int: what sfapi.c lends the other files of the Salesforce client
 * (sfbulk.c): one request to the instance and the helpers that build it.
 * Not for use outside src/sfbridge/salesforce/.
 */
#ifndef SFAPI_INT_H
#define SFAPI_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"
#include "sb.h"
#include "sfapi.h"

#define LOCATOR_MAX 1024

/* One exchange's answer, as sfapi_call fills it. */
typedef struct sfapi_resp {
    sfapi *c;
    long status;     /* from the last status line */
    sb body;         /* buffered body (non-streamed, or any non-2xx) */
    bool too_big;    /* a 2xx body went over BODY_MAX: transfer aborted */
    sfapi_sink sink; /* when set, 2xx bodies go here */
    void *sink_ctx;
    err_t sink_err; /* what the sink reported */
    bool sink_failed;
    uint64_t delivered; /* bytes handed to the sink */
    bool has_locator;
    bool locator_bad; /* a Sforce-Locator too long to keep */
    char locator[LOCATOR_MAX];
    long nrecords;   /* Sforce-NumberOfRecords, -1 if absent */
    int64_t sent_ms; /* our clock when the request went out */
} sfapi_resp;

/* One request to the instance. */
typedef struct sfapi_req {
    const char *method;
    const char *path;         /* relative to the instance, starts with '/' */
    const char *body;         /* JSON, or NULL */
    const char *content_type; /* of body; NULL: JSON */
    const char *accept;       /* NULL: application/json */
    const char *extra;        /* one more header line, or NULL */
    sfapi_sink sink;          /* results streaming, or NULL */
    void *sink_ctx;
} sfapi_req;

/* Sends q to the instance until it succeeds, fails for good or runs out of
 * retries (logging in first, and again once on a 401). 0: r holds a 2xx
 * answer (free r->body). -1: e filled, its class set. */
int sfapi_call(sfapi *c, const sfapi_req *q, sfapi_resp *r, err_t *e);
/* sfapi_call for a JSON reply; *out is the parsed body (NULL if empty and
 * allowed), *status (if given) the answer's status. */
int sfapi_call_json(sfapi *c, const sfapi_req *q, bool want_object, bool allow_empty, long *status,
                    json_t **out, err_t *e);
/* "/services/data/vNN.N" + rest into out. */
void sfapi_data_path(const sfapi *c, sb *out, const char *rest);
/* Appends s URL-escaped to out. */
void sfapi_put_escaped(sfapi *c, sb *out, const char *s);
/* 0 when a path the server handed us points inside prefix on the instance
 * (no "..", no spaces or controls); -1 with e (INVALID_PATH, permanent). */
int sfapi_check_path(sfapi *c, const char *path, const char *prefix, err_t *e);
/* Sleeps ms milliseconds, through signals. */
void sfapi_sleep_ms(long ms);

#endif
