/*
 * api_int: what the management API's handler files share (api.c: the
 * listener, routing and the API v3 core; dashapi.c: the dashboard's calls).
 * Every handler takes a call and answers a reply; failures are
 * {"error": CODE, "message": TEXT} with the err_t's status.
 */
#ifndef API_INT_H
#define API_INT_H

#include <stdbool.h>
#include <pthread.h>
#include <stdint.h>

#include <jansson.h>
#include <microhttpd.h>

#include "api.h"
#include "app.h"
#include "err.h"
#include "oauthweb.h"
#include "sb.h"

#define BODY_LIMIT    (1u << 20) /* an import's export JSON at most; more is refused */
#define ERRORS_HOURS  24
#define CONNECTION_ID "default"

struct api {
    struct MHD_Daemon *mhd;
    pthread_mutex_t mu; /* held while a request is answered, and by api_update */
    app a;              /* its own settings and connections; one request at a time */
    int port;
    int64_t started_ms;
    char *config_path;  /* the daemon's settings file (the credentials file sits beside it) */
    oauthweb_flow flow; /* "Set up connection": the authorization under way, if any */
    int64_t flow_ms;    /* when it began (0: none) */
};

/* What a handler answers. */
typedef struct reply {
    unsigned status;
    char *body; /* owned (NULL: none) */
    size_t len; /* 0: strlen(body) */
    const char *ctype;
    const unsigned char *fixed; /* instead of body: bytes that outlive the reply (built-in files) */
    bool challenge;             /* a 401 that asks a browser for the token (WWW-Authenticate) */
} reply;

typedef struct call {
    api *s;
    struct MHD_Connection *conn;
    const char *method;
    const char *arg[2]; /* the {} segments of the route, in order */
    const sb *body;     /* the request's body */
} call;

typedef reply (*route_fn)(call *c);

reply api_json(unsigned status, json_t *j); /* takes j */
reply api_error(unsigned status, const char *code, const char *msg);
reply api_err(const err_t *e);
/* A lost Postgres connection is opened again by the next request. */
void api_forget_pg(api *s);
/* The status document (status --json); NULL with e filled. */
json_t *api_status_doc(api *s, err_t *e);
bool api_known_connection(const call *c);
reply api_no_connection(const call *c);
/* arg[0]'s entry of the status document (NULL: not mapped, *fail says so; *st to free). */
json_t *api_find_mapping(call *c, const char *object, json_t **st, reply *fail);
/* A query-string argument (NULL: absent). */
const char *api_arg(const call *c, const char *name);
/* The body as a JSON object; NULL with *fail filled. */
json_t *api_body_json(const call *c, reply *fail);

/* dashapi.c */
reply dash_objects(call *c);
reply dash_object(call *c);
reply dash_create_mapping(call *c);
reply dash_edit_mapping(call *c);
reply dash_remove_mapping(call *c);
reply dash_records(call *c);
reply dash_record(call *c);
reply dash_retry(call *c);
reply dash_activity(call *c);
reply dash_authorize(call *c);
reply dash_oauth_callback(call *c);

#endif
