/*
 * opts: the one command-line parser of sfbridge. A command declares its
 * options in a table (opt_spec) and how many arguments it takes (opt_args);
 * opts_parse checks argv against that table and the global options, which
 * may come before or after the command. Every mistake gets one sentence that
 * names it ("--watch needs a value (SECONDS)", "unknown option '--pol'; did
 * you mean --poll?"), as an err_t with code BAD_USAGE; the caller prints it
 * with the command's usage and exits 2.
 */
#ifndef OPTS_H
#define OPTS_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

typedef enum {
    OPT_FLAG,  /* --json */
    OPT_INT,   /* --poll 60: a whole number from lo to hi */
    OPT_STR,   /* --out FILE: the last one given wins */
    OPT_LIST,  /* --fields A,B --fields C: comma lists, joined */
    OPT_MULTI, /* --index A --index B:unique: each occurrence one value */
} opt_kind;

typedef struct opt_spec {
    const char *name; /* without the dashes: "poll" */
    opt_kind kind;
    const char *value; /* the value's name in messages: "SECONDS" */
    long lo, hi;       /* OPT_INT's range */
} opt_spec;

#define OPT_END                    \
    {                              \
        NULL, OPT_FLAG, NULL, 0, 0 \
    }

/* Positional arguments: how many, and what to say when they are missing. */
typedef struct opt_args {
    int min, max;     /* max -1: any number */
    const char *what; /* "the Salesforce object", "trigger log ids" */
    bool numbers;     /* each must be a whole number above 0 */
} opt_args;

typedef struct opt_val {
    bool set;
    long num;          /* OPT_INT */
    const char *str;   /* OPT_STR, OPT_INT: the text given (last one) */
    const char **list; /* OPT_LIST, OPT_MULTI; points into argv */
    size_t n;
} opt_val;

typedef struct opts {
    const opt_spec *spec;   /* the command's table */
    const opt_spec *global; /* the global table */
    opt_val *v;             /* one per spec entry */
    opt_val *g;             /* one per global entry */
    const char **args;      /* positional arguments, in order */
    size_t nargs;
    bool help; /* -h or --help was given */
} opts;

/* Parse argv[0..argc) (the words after the command). OPT_LIST values are
 * split in place (argv's strings are writable). 0, or -1 with
 * e (code BAD_USAGE, one sentence). Free with opts_free either way. */
int opts_parse(opts *o, const opt_spec *spec, const opt_spec *global, const opt_args *args,
               int argc, char **argv, err_t *e) ERR_MUST_CHECK;
void opts_free(opts *o);

/* The value of option name (of the command or global); never NULL for a name
 * in the tables (an unset option has set = false). */
const opt_val *opts_get(const opts *o, const char *name);
bool opts_flag(const opts *o, const char *name);
const char *opts_str(const opts *o, const char *name); /* NULL when not given */

/* The entry of words nearest to word (a typo's likely meaning), or NULL
 * when none is near. */
const char *opts_nearest(const char *word, const char *const *words, size_t n);

#endif
