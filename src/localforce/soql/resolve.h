/*
 * resolve: names and types: field paths resolved against the schema (parent
 * relationships become joins), literals checked against field types and
 * converted to bound parameters (IDs normalised, dates and date literals
 * such as TODAY turned into values or ranges).
 */
#ifndef RESOLVE_H
#define RESOLVE_H

#include "ast.h"
#include "lexer.h"

typedef struct fref {
    int rel; /* -1: the FROM object */
    const lf_field *f;
    int idx;            /* f's index in o->fields */
    const lf_object *o; /* the object f belongs to */
} fref;

typedef enum { FC_TEXT, FC_ID, FC_MULTI, FC_BOOL, FC_INT, FC_REAL, FC_DATE, FC_DATETIME } fclass;

/* A value converted for comparison with a field: null, one parameter, or a
 * range of two ([lo, hi), for date literals such as TODAY). */
typedef enum { CV_NULL, CV_PARAM, CV_RANGE } cvkind;

typedef struct cval {
    cvkind k;
    int p, p2;
} cval;

bool res_span_is(const compiler *c, const token *t, const char *name);
void res_put_col(sb *s, int rel, const lf_field *f);
void res_path_text(const compiler *c, const fpath *p, char *out, size_t outsz);
int res_path(compiler *c, const fpath *p, fref *out);
fclass res_field_class(const lf_field *f);
const char *res_field_type_name(const lf_field *f);
int res_type_error(compiler *c, const lf_field *f, const value *v);
int res_add_param(compiler *c, size_t pos, soql_ptype type, int64_t i, double r, char *s);
int res_convert(compiler *c, const lf_field *f, const value *v, decmode mode, bool eq, cval *out);

#endif
