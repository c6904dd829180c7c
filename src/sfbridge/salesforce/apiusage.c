/*
 * apiusage: the org's daily API request allowance (see apiusage.h).
 */
#include "apiusage.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A non-negative decimal number within a long at p: its end, or NULL. */
static const char *
number(const char *p, long *out)
{
    if (!isdigit((unsigned char)*p))
        return NULL; /* no sign, no spaces: strtol would take both */
    char *end;
    errno = 0;
    long v = strtol(p, &end, 10);
    if (errno)
        return NULL;
    *out = v;
    return end;
}

/* The value of the item `name` in a "a=1; b=2, c=3" list, or NULL: a whole
 * item, so "api-usage" is not found in "per-app-api-usage". */
static const char *
item(const char *v, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = v; (p = strstr(p, name)) != NULL; p += n)
        if ((p == v || strchr(" \t;,", p[-1])) && p[n] == '=')
            return p + n + 1;
    return NULL;
}

int
au_parse(const char *v, long *used, long *max)
{
    const char *p = v ? item(v, "api-usage") : NULL;
    long u, m;
    if (!p || !(p = number(p, &u)) || *p != '/' || !(p = number(p + 1, &m)) || m <= 0)
        return -1;
    if (*p && !strchr(";,", *p) && !isspace((unsigned char)*p))
        return -1;
    *used = u;
    *max = m;
    return 0;
}

bool
au_reached(long used, long max, long pct)
{
    if (max <= 0)
        return false;
    /* used / max >= pct / 100 in long double: no product can overflow, and it
     * is exact for any figures below 2^57 */
    return (long double)used * 100 >= (long double)pct * (long double)max;
}
