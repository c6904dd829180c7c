/*
 * typed: text values typed by column (see typed.h).
 */
#include "typed.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const map_field *
typed_field(const mapping *m, const char *col)
{
    for (size_t i = 0; i < m->nfields; i++)
        if (strcmp(m->fields[i].column, col) == 0)
            return &m->fields[i];
    return NULL;
}

static bool
numeric_type(const char *t)
{
    return strcmp(t, "integer") == 0 || strcmp(t, "bigint") == 0 || strcmp(t, "smallint") == 0 ||
           strcmp(t, "double precision") == 0 || strcmp(t, "real") == 0 ||
           strncmp(t, "numeric", 7) == 0;
}

static json_t *
typed_number(const char *s, json_t *v)
{
    char *end = NULL;
    errno = 0;
    long long i = strtoll(s, &end, 10);
    if (*s && end && *end == '\0' && errno == 0)
        return json_integer(i);
    errno = 0;
    double d = strtod(s, &end);
    if (*s && end && *end == '\0' && errno == 0 && isfinite(d))
        return json_real(d);
    return json_incref(v);
}

static json_t *
typed_timestamp(const char *s, json_t *v)
{
    char buf[64];
    size_t n = strlen(s);
    if (n < 11 || n >= sizeof buf - 4 || s[10] != ' ')
        return json_incref(v);
    memcpy(buf, s, n + 1);
    buf[10] = 'T';
    /* "+05" (an offset without minutes) -> "+05:00" */
    if (n > 3 && (buf[n - 3] == '+' || buf[n - 3] == '-') && buf[n - 2] >= '0' &&
        buf[n - 1] >= '0' && buf[n - 2] <= '9' && buf[n - 1] <= '9')
        memcpy(buf + n, ":00", 4);
    return json_string(buf);
}

json_t *
typed_value(const map_field *f, json_t *v)
{
    const char *s = json_string_value(v);
    const char *t = f ? f->pgtype : NULL;
    if (!s || !t)
        return json_incref(v);
    if (strcmp(t, "boolean") == 0) {
        if (strcmp(s, "t") == 0 || strcmp(s, "true") == 0)
            return json_true();
        if (strcmp(s, "f") == 0 || strcmp(s, "false") == 0)
            return json_false();
        return json_incref(v);
    }
    if (numeric_type(t))
        return typed_number(s, v);
    if (strncmp(t, "timestamp", 9) == 0)
        return typed_timestamp(s, v);
    return json_incref(v);
}

json_t *
typed_values(const mapping *m, json_t *raw)
{
    if (!json_is_object(raw))
        return raw;
    const char *col;
    json_t *v;
    json_object_foreach(raw, col, v) {
        if (json_is_string(v))
            json_object_set_new(raw, col, typed_value(typed_field(m, col), v));
    }
    return raw;
}

json_t *
typed_sf_value(const map_field *f, json_t *v)
{
    if (json_is_string(v) &&
        (strcmp(f->sftype, "datetime") == 0 || strcmp(f->sftype, "time") == 0)) {
        const char *s = json_string_value(v);
        size_t n = strlen(s);
        bool zoned = n && (s[n - 1] == 'Z' || strchr(s + (n > 10 ? n - 6 : 0), '+'));
        char buf[64];
        if (strcmp(f->sftype, "time") == 0 && n == 8)
            snprintf(buf, sizeof buf, "%s.000Z", s);
        else
            snprintf(buf, sizeof buf, "%s%s", s, zoned ? "" : "Z");
        return json_string(buf);
    }
    return json_incref(v);
}
