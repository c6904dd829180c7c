/*
 * err: the project's one error convention. See err.h.
 */
#include "err.h"

#include <stdio.h>
#include <string.h>

int
err_setv(err_t *e, int http, const char *code, const char *fmt, va_list ap)
{
    if (e == NULL)
        return -1;
    e->cls = ERR_PERMANENT;
    e->http = http;
    snprintf(e->code, sizeof e->code, "%s", code ? code : "UNKNOWN_EXCEPTION");
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    e->fields[0] = '\0';
    return -1;
}

int
err_set(err_t *e, int http, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_setv(e, http, code, fmt, ap);
    va_end(ap);
    return -1;
}

int
err_fields(err_t *e, const char *fields)
{
    if (e)
        snprintf(e->fields, sizeof e->fields, "%s", fields ? fields : "");
    return -1;
}

void
err_clear(err_t *e)
{
    if (e)
        memset(e, 0, sizeof *e);
}

int
err_class_set(err_t *e, err_class cls)
{
    if (e)
        e->cls = cls;
    return -1;
}

err_class
err_class_of(const err_t *e)
{
    return e ? e->cls : ERR_OK;
}
