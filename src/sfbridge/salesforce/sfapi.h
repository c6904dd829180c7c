/*
 * sfapi: sfbridge's Salesforce client, over libcurl.
 *
 * OAuth login (JWT bearer, refresh-token, password or client-credentials
 * grant: sfapi_flow_of says which), REST calls (describe, SOQL
 * query/queryAll with nextRecordsUrl paging), and Bulk API 2.0 query jobs whose
 * CSV results are streamed to a caller's sink without being held in memory.
 * It speaks only the real Salesforce wire formats, so it works unchanged
 * against a real org and against localforce.
 *
 * Every failure carries its class inside the err_t (e->cls, err_class_of):
 *   - an expired or revoked session (401 INVALID_SESSION_ID) is handled here: the
 *     client logs in again once and repeats the call; if that fails the class
 *     is ERR_AUTH (the connection needs new credentials);
 *   - 5xx, connection failures, timeouts, UNABLE_TO_LOCK_ROW, REQUEST_LIMIT_EXCEEDED
 *     and SERVER_UNAVAILABLE are ERR_TRANSIENT: retried here up to
 *     cfg.max_retries times (the RETRY_HTTP policy: capped exponential backoff,
 *     full jitter), then returned to the caller, which schedules its own later retry;
 *   - everything else (MALFORMED_QUERY, INVALID_FIELD, NOT_FOUND, ...) is
 *     ERR_PERMANENT and returned at once.
 * The err_t holds Salesforce's errorCode and message (never a token).
 *
 * One sfapi_t is used by one thread at a time.
 */
#ifndef SFAPI_H
#define SFAPI_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"
#include "sb.h"

typedef struct sfapi_config {
    const char *login_url; /* e.g. https://login.salesforce.com (no trailing /) */
    const char *client_id;
    const char *client_secret; /* may be NULL for public clients */
    const char *username;      /* password grant when username+password set */
    const char *password;      /* password with security token appended, if any */
    const char *refresh_token; /* refresh-token grant when set */
    const char *jwt_key_file;  /* JWT bearer grant (with username) when set: PEM RSA key */
    const char *jwt_audience;  /* the assertion's aud; NULL: from login_url (sfjwt_audience) */
    const char *ca_file;       /* PEM certificates to trust instead of the system's; NULL: system */
    const char *api_version;   /* "60.0" */
    long timeout_ms;           /* per request, whole transfer (streamed Bulk results:
                                  the longest stall, as a slow sink may take longer); 0 = 120000 */
    long connect_timeout_ms;   /* 0 = 10000 */
    int max_retries;           /* transient retries inside one call; -1 = default 4 */
    long backoff_cap_ms;       /* cap of RETRY_HTTP's delay; 0 = the policy's (8000) */
    volatile sig_atomic_t
        *abort_flag; /* when set, a transfer in progress stops (a held CometD connect) */
    volatile sig_atomic_t *wake_flag; /* the same, set by another thread to cut a long poll short */
} sfapi_config;

typedef struct sfapi sfapi;

/* Which grant logs in, from the settings present, first match wins:
 *   jwt_key_file                     JWT bearer (client_id, username; no secret)
 *   refresh_token                    refresh token (client_id, secret if the app wants it)
 *   username and password            password (client_id, client_secret)
 *   client_secret, nothing else      client credentials (My Domain login URL)
 * SFAPI_FLOW_NONE: nothing to log in with. */
typedef enum sfapi_flow {
    SFAPI_FLOW_NONE,
    SFAPI_FLOW_JWT,
    SFAPI_FLOW_REFRESH,
    SFAPI_FLOW_PASSWORD,
    SFAPI_FLOW_CLIENT_CREDENTIALS,
} sfapi_flow;
sfapi_flow sfapi_flow_of(const sfapi_config *cfg);
/* "jwt-bearer", "refresh-token", "password", "client-credentials", "none". */
const char *sfapi_flow_name(sfapi_flow f);

/* Copies every string of cfg. */
sfapi *sfapi_new(const sfapi_config *cfg);
/* A new client with c's settings and its own connection (for another
 * thread); it takes the session c's credentials share (sessions.h), so it
 * costs no login. */
sfapi *sfapi_clone(const sfapi *c);
void sfapi_free(sfapi *c);
/* The API version the client speaks, without the "v" ("60.0"). */
const char *sfapi_api_version(const sfapi *c);

/* Log in (the grant sfapi_flow_of picks). Called
 * lazily by every request when not logged in yet; call it directly to check
 * credentials. */
int sfapi_login(sfapi *c, err_t *e) ERR_MUST_CHECK;

/* Set (or clear, NULL) the config's wake_flag after sfapi_new. */
void sfapi_set_wake_flag(sfapi *c, volatile sig_atomic_t *flag);
/* Drop the session: the next request logs in again (a CometD handshake
 * refused for authentication, whose reply is no HTTP 401). */
void sfapi_forget_session(sfapi *c);

/* After login: the instance URL ("https://xx.my.salesforce.com"), the org id
 * (18 chars, from the identity URL in the token response) and the user id. */
const char *sfapi_instance_url(const sfapi *c);
const char *sfapi_org_id(const sfapi *c);
const char *sfapi_user_id(const sfapi *c);
/* Salesforce's clock minus ours lies in [*lo_ms, *hi_ms], as the Date header
 * of a recent answer tells; false before any answer. */
bool sfapi_clock_offset(const sfapi *c, int64_t *lo_ms, int64_t *hi_ms);

/* Requests made since sfapi_new (every HTTP request to the instance counts,
 * retries included; the login does not) and the org's figures from the last
 * Sforce-Limit-Info header ("api-usage=used/max") any client of the same
 * credentials got (sessions.h); -1 when none has been seen yet. */
uint64_t sfapi_calls(const sfapi *c);
/* Count the requests a clone of c made as c's (once the clone's thread is
 * done), so the work that lent it counts every request it caused. */
void sfapi_add_calls(sfapi *c, const sfapi *clone);
void sfapi_limit_info(const sfapi *c, long *used, long *max);

/* GET /services/data/vNN.N/sobjects/OBJECT/describe. *out is the parsed body
 * (caller json_decref's it). NOT_FOUND for an unknown object. */
int sfapi_describe(sfapi *c, const char *object, json_t **out, err_t *e) ERR_MUST_CHECK;

/* GET .../query?q=SOQL (or queryAll when all is true). *page is the parsed
 * body: {"totalSize","done","records":[...],"nextRecordsUrl"?}. batch_size > 0
 * sends "Sforce-Query-Options: batchSize=N". */
int sfapi_query(sfapi *c, const char *soql, bool all, int batch_size, json_t **page,
                err_t *e) ERR_MUST_CHECK;
/* GET the page at a nextRecordsUrl ("/services/data/vNN.N/query/01g...-2000"). */
int sfapi_query_more(sfapi *c, const char *next_url, json_t **page, err_t *e) ERR_MUST_CHECK;

/* A whole SOQL query, page by page. */
typedef struct sfapi_query_spec {
    const char *soql;
    bool all;               /* queryAll: deleted and archived records too */
    int batch_size;         /* > 0: Sforce-Query-Options: batchSize=N */
    const char *resume_url; /* when set: start at this nextRecordsUrl instead of running soql */
} sfapi_query_spec;

/* Receives each page's records array and the nextRecordsUrl of the page after
 * it (NULL on the last page). Return 0 to go on, 1 to stop early (the query
 * then succeeds), -1 to fail with e filled (class included). */
typedef int (*sfapi_page_fn)(void *ctx, json_t *records, const char *next, err_t *e);

/* sfapi_query (or sfapi_query_more from resume_url), then sfapi_query_more
 * until the last page, each page handed to fn. A reply without a records
 * array fails BAD_RESPONSE (ERR_PERMANENT). */
int sfapi_query_each(sfapi *c, const sfapi_query_spec *q, sfapi_page_fn fn, void *ctx,
                     err_t *e) ERR_MUST_CHECK;

/* Any REST call: method "GET"/"POST"/"PATCH"/"DELETE", path relative to the
 * instance ("/services/data/v60.0/limits"), body JSON or NULL. *out gets the
 * parsed reply (NULL for an empty body); *status the HTTP status. */
int sfapi_rest(sfapi *c, const char *method, const char *path, const char *body, long *status,
               json_t **out, err_t *e) ERR_MUST_CHECK;

/* Receives the CSV body piece by piece. Return 0 to go on, -1 to abort the
 * transfer; the call then fails with the error the sink put in e (or
 * "ABORTED_BY_SINK" if it left e empty), classed ERR_PERMANENT. */
typedef int (*sfapi_sink)(void *ctx, const char *data, size_t len, err_t *e);

/* Appends s to out as a SOQL string literal body (without the quotes):
 * backslash-escapes \ ' " and control characters as Salesforce requires. */
void sfapi_soql_escape(sb *out, const char *s);

#endif
