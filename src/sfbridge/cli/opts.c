/*
 * opts: the one command-line parser (see opts.h).
 */
#include "opts.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static size_t
count(const opt_spec *t)
{
    size_t n = 0;
    while (t && t[n].name)
        n++;
    return n;
}

/* The spec named name (length len) in t, or NULL. */
static const opt_spec *
find(const opt_spec *t, const char *name, size_t len)
{
    for (size_t i = 0; t && t[i].name; i++)
        if (strlen(t[i].name) == len && strncmp(t[i].name, name, len) == 0)
            return &t[i];
    return NULL;
}

static size_t
min3(size_t a, size_t b, size_t c)
{
    size_t m = a < b ? a : b;
    return m < c ? m : c;
}

/* Edit distance of a and b, a swap of two neighbours counting as one edit
 * (optimal string alignment; the CLI's names are short). */
static size_t
distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 31 || lb > 31)
        return SIZE_MAX;
    size_t d[32][32];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            d[i][j] = min3(d[i - 1][j] + 1, d[i][j - 1] + 1,
                           d[i - 1][j - 1] + (a[i - 1] != b[j - 1]));
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < d[i][j])
                d[i][j] = d[i - 2][j - 2] + 1;
        }
    return d[la][lb];
}

const char *
opts_nearest(const char *word, const char *const *words, size_t n)
{
    const char *best = NULL;
    size_t best_d = SIZE_MAX, wl = strlen(word);
    for (size_t i = 0; i < n; i++) {
        size_t d = distance(word, words[i]);
        /* A word that starts the name ("--acc" for --access) is near too. */
        if (wl >= 3 && strncmp(words[i], word, wl) == 0)
            d = 1;
        if (d < best_d) {
            best_d = d;
            best = words[i];
        }
    }
    size_t limit = wl <= 4 ? 1 : wl <= 8 ? 2 : 3;
    return best_d <= limit ? best : NULL;
}

static int
unknown_option(const opts *o, const char *arg, size_t len, err_t *e)
{
    size_t ns = count(o->spec), ng = count(o->global);
    const char **names = xcalloc(ns + ng + 1, sizeof *names);
    for (size_t i = 0; i < ns; i++)
        names[i] = o->spec[i].name;
    for (size_t i = 0; i < ng; i++)
        names[ns + i] = o->global[i].name;
    char word[64];
    snprintf(word, sizeof word, "%.*s", (int)(len < 63 ? len : 63), arg);
    const char *near = opts_nearest(word, names, ns + ng);
    if (near)
        err_set(e, 400, "BAD_USAGE", "unknown option '--%s'; did you mean --%s?", word, near);
    else
        err_set(e, 400, "BAD_USAGE", "unknown option '--%s'", word);
    free(names);
    return -1;
}

static void
push(const char ***list, size_t *n, const char *s)
{
    *list = xrealloc(*list, (*n + 1) * sizeof **list);
    (*list)[(*n)++] = s;
}

/* Store one option's value; value is NULL for a flag. */
static int
take(const opt_spec *s, opt_val *v, char *value, err_t *e)
{
    int64_t num;
    v->set = true;
    switch (s->kind) {
    case OPT_FLAG: return 0;
    case OPT_INT:
        if (util_parse_i64(value, &num) != 0 || num < s->lo || num > s->hi)
            return err_set(e, 400, "BAD_USAGE",
                           "--%s must be a whole number from %ld to %ld, not '%s'", s->name, s->lo,
                           s->hi, value);
        v->num = (long)num;
        v->str = value;
        return 0;
    case OPT_STR:
        if (!*value)
            return err_set(e, 400, "BAD_USAGE", "--%s needs a value (%s), not an empty one",
                           s->name, s->value);
        v->str = value;
        return 0;
    case OPT_LIST: {
        char *save = NULL;
        for (char *tok = strtok_r(value, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            while (*tok == ' ')
                tok++;
            if (*tok)
                push(&v->list, &v->n, tok);
        }
        if (!v->n)
            return err_set(e, 400, "BAD_USAGE", "--%s needs a value (%s)", s->name, s->value);
        return 0;
    }
    case OPT_MULTI: push(&v->list, &v->n, value); return 0;
    }
    return 0;
}

/* One "--name" or "--name=value" at argv[*i]; may consume argv[*i + 1]. */
static int
option(opts *o, int argc, char **argv, int *i, err_t *e)
{
    char *arg = argv[*i] + 2, *eq = strchr(arg, '=');
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
    const opt_spec *s = find(o->spec, arg, len);
    opt_val *v = s ? &o->v[s - o->spec] : NULL;
    if (!s && (s = find(o->global, arg, len)) != NULL)
        v = &o->g[s - o->global];
    if (!s)
        return unknown_option(o, arg, len, e);
    if (s->kind == OPT_FLAG) {
        if (eq)
            return err_set(e, 400, "BAD_USAGE", "--%s takes no value", s->name);
        return take(s, v, NULL, e);
    }
    char *value = eq ? eq + 1 : NULL;
    if (!value) {
        /* "--watch --json": the next word is an option, not the value. */
        if (*i + 1 >= argc || strncmp(argv[*i + 1], "--", 2) == 0)
            return err_set(e, 400, "BAD_USAGE", "--%s needs a value (%s)", s->name, s->value);
        value = argv[++*i];
    }
    return take(s, v, value, e);
}

static int
check_args(const opts *o, const opt_args *a, err_t *e)
{
    opt_args none = {0, 0, "arguments", false};
    if (!a)
        a = &none;
    if (a->numbers)
        for (size_t i = 0; i < o->nargs; i++) {
            int64_t v;
            if (util_parse_i64(o->args[i], &v) != 0 || v <= 0)
                return err_set(e, 400, "BAD_USAGE", "%s are whole numbers, not '%s'", a->what,
                               o->args[i]);
        }
    if ((int)o->nargs < a->min)
        return err_set(e, 400, "BAD_USAGE", "name %s", a->what);
    if (a->max >= 0 && (int)o->nargs > a->max) {
        if (a->max == 0)
            return err_set(e, 400, "BAD_USAGE", "unexpected argument '%s'", o->args[0]);
        return err_set(e, 400, "BAD_USAGE", "unexpected argument '%s' (at most %d: %s)",
                       o->args[a->max], a->max, a->what);
    }
    return 0;
}

int
opts_parse(opts *o, const opt_spec *spec, const opt_spec *global, const opt_args *args, int argc,
           char **argv, err_t *e)
{
    memset(o, 0, sizeof *o);
    o->spec = spec;
    o->global = global;
    o->v = xcalloc(count(spec) + 1, sizeof *o->v);
    o->g = xcalloc(count(global) + 1, sizeof *o->g);
    bool only_args = false;
    for (int i = 0; i < argc; i++) {
        char *a = argv[i];
        if (only_args || a[0] != '-' || strcmp(a, "-") == 0) {
            push(&o->args, &o->nargs, a);
        } else if (strcmp(a, "--") == 0) {
            only_args = true;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            o->help = true;
        } else if (a[1] != '-') {
            return err_set(e, 400, "BAD_USAGE", "unknown option '%s' (options are --words)", a);
        } else if (option(o, argc, argv, &i, e) != 0) {
            return -1;
        }
    }
    return o->help ? 0 : check_args(o, args, e);
}

void
opts_free(opts *o)
{
    for (size_t i = 0; o->spec && o->spec[i].name; i++)
        free(o->v[i].list);
    for (size_t i = 0; o->global && o->global[i].name; i++)
        free(o->g[i].list);
    free(o->v);
    free(o->g);
    free(o->args);
    memset(o, 0, sizeof *o);
}

const opt_val *
opts_get(const opts *o, const char *name)
{
    static const opt_val unset = {0};
    const opt_spec *s = find(o->spec, name, strlen(name));
    if (s)
        return &o->v[s - o->spec];
    s = find(o->global, name, strlen(name));
    return s ? &o->g[s - o->global] : &unset;
}

bool
opts_flag(const opts *o, const char *name)
{
    return opts_get(o, name)->set;
}

const char *
opts_str(const opts *o, const char *name)
{
    const opt_val *v = opts_get(o, name);
    return v->set ? v->str : NULL;
}
