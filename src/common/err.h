/*
 * err: the project's one error convention.
 *
 * A function that can fail returns int: 0 on success, -1 on failure. When it
 * fails it fills the caller's err_t (if the caller passed one) with what went
 * wrong, once, where it happened; callers pass the failure up without
 * rewriting it. For localforce the err_t carries exactly what Salesforce would
 * answer: an HTTP status, an errorCode such as "INVALID_FIELD", a message and
 * the fields concerned.
 */
#ifndef ERR_H
#define ERR_H

#include <stdarg.h>

#define ERR_CODE_MAX   64
#define ERR_MSG_MAX    2048
#define ERR_FIELDS_MAX 512

/* What a caller may do about a failure: the class travels inside the error.
 * err_set() makes a failure ERR_PERMANENT; the layer that knows better (the
 * Salesforce client, the Postgres wrapper) marks it with err_class_set(). */
typedef enum err_class {
    ERR_OK = 0,    /* no failure */
    ERR_TRANSIENT, /* try again later: network, 5xx, lock, limits, lost connection */
    ERR_AUTH,      /* credentials refused: NEED_AUTHENTICATION */
    ERR_PERMANENT, /* the request itself is wrong: retrying will not help */
} err_class;

/* On functions that return an error status: the caller must look at it (or
 * cast to void with a comment saying why the failure does not matter). */
#define ERR_MUST_CHECK __attribute__((warn_unused_result))

typedef struct err_t {
    err_class cls;               /* what the caller may do about it */
    int http;                    /* HTTP status to answer with (400 if unsure) */
    char code[ERR_CODE_MAX];     /* Salesforce errorCode, e.g. "INVALID_FIELD" */
    char msg[ERR_MSG_MAX];       /* human-readable message */
    char fields[ERR_FIELDS_MAX]; /* comma-separated field names; "" for none */
} err_t;

/* Fill e (if not NULL) and return -1, so callers can write
 *     return err_set(e, 400, "INVALID_FIELD", "No such column '%s'", name); */
int err_set(err_t *e, int http, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int err_setv(err_t *e, int http, const char *code, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
/* Record the field(s) the error concerns (comma-separated). Returns -1. */
int err_fields(err_t *e, const char *fields);
void err_clear(err_t *e);
/* Mark e's class (no-op for NULL). Returns -1, like err_set. */
int err_class_set(err_t *e, err_class cls);
/* e's class; ERR_OK for NULL or a cleared error. */
err_class err_class_of(const err_t *e);

#endif
