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

typedef struct err_t {
    int  http;                   /* HTTP status to answer with (400 if unsure) */
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

#endif
