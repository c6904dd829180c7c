/*
 * resolve: names and types: field paths resolved against the schema (parent
 * relationships become joins), literals checked against field types and
 * converted to bound parameters (IDs normalised, dates and date literals
 * such as TODAY turned into values or ranges).
 */
#include "resolve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "parser.h"
#include "sfid.h"
#include "util.h"
/* ------------------------------------------------------------------------ */
/* Names                                                                     */

bool
res_span_is(const compiler *c, const token *t, const char *name)
{
    size_t n = strlen(name);
    return t->len == n && strncasecmp(c->q + t->pos, name, n) == 0;
}

static int
field_index(const compiler *c, const lf_object *o, const token *t)
{
    for (size_t i = 0; i < o->nfields; i++)
        if (res_span_is(c, t, o->fields[i]->name))
            return (int)i;
    return -1;
}

static const lf_field *
rel_field(const compiler *c, const lf_object *o, const token *t)
{
    for (size_t i = 0; i < o->nfields; i++) {
        const lf_field *f = o->fields[i];
        if (f->type == FT_REFERENCE && f->relationship_name &&
            res_span_is(c, t, f->relationship_name))
            return f;
    }
    return NULL;
}

/* t<rel+1>."Field" */
void
res_put_col(sb *s, int rel, const lf_field *f)
{
    sb_printf(s, "t%d.", rel + 1);
    sb_sql_ident(s, f->name);
}

void
res_path_text(const compiler *c, const fpath *p, char *out, size_t outsz)
{
    token t = {TK_IDENT, p->pos, p->end - p->pos};
    ast_tok_text(c, &t, out, outsz);
}

/* The join for following ref from rel parent (-1: the FROM object), made once. */
static int
get_rel(compiler *c, int parent, const lf_field *ref, const lf_object *target, size_t pos)
{
    for (int i = 0; i < c->nrels; i++)
        if (c->rels[i].parent == parent && c->rel_ref[i] == ref)
            return i;
    if (c->nrels == SOQL_MAX_RELS)
        return ast_fail_at(c, pos, "MALFORMED_QUERY",
                           "SOQL statements cannot query more than %d child-to-parent "
                           "relationships",
                           SOQL_MAX_RELS);
    soql_rel *r = &c->rels[c->nrels];
    r->name = ref->relationship_name;
    r->object = target;
    r->parent = parent;
    r->id_col = 0;
    c->rel_ref[c->nrels] = ref;
    return c->nrels++;
}

/* Resolve a field path: walk its relationships (adding joins) to the field. */
int
res_path(compiler *c, const fpath *p, fref *out)
{
    const lf_object *o = c->obj;
    int rel = -1, i = 0, n = p->nseg;
    char buf[ERR_TOKEN_MAX + 1];
    /* "Account.Name" FROM Account, or "a.Name" FROM Account a */
    if (n >= 2 && rel_field(c, o, &p->seg[0]) == NULL &&
        ((c->alias_tok.k == TK_IDENT && c->alias_tok.len == p->seg[0].len &&
          strncasecmp(c->q + c->alias_tok.pos, c->q + p->seg[0].pos, p->seg[0].len) == 0) ||
         res_span_is(c, &p->seg[0], o->name)))
        i = 1;
    if (n - 1 - i > SOQL_MAX_HOPS)
        return parse_too_many_levels(c, p->pos);
    for (; i < n - 1; i++) {
        const lf_field *ref = rel_field(c, o, &p->seg[i]);
        const lf_object *target = ref && ref->reference_to ? schema_object(c->s, ref->reference_to)
                                                           : NULL;
        if (target == NULL) {
            ast_tok_text(c, &p->seg[i], buf, sizeof buf);
            return ast_fail_at(c, p->pos, "INVALID_FIELD",
                               "Didn't understand relationship '%s' in field path. If you are "
                               "attempting to use a custom relationship, be sure to append the "
                               "'__r' "
                               "after the custom relationship name. Please reference your WSDL or "
                               "the "
                               "describe call for the appropriate names.",
                               buf);
        }
        if ((rel = get_rel(c, rel, ref, target, p->pos)) < 0)
            return -1;
        o = target;
    }
    int fi = field_index(c, o, &p->seg[n - 1]);
    if (fi < 0) {
        ast_tok_text(c, &p->seg[n - 1], buf, sizeof buf);
        return ast_fail_at(c, p->pos, "INVALID_FIELD",
                           "No such column '%s' on entity '%s'. If you are attempting to use a "
                           "custom "
                           "field, be sure to append the '__c' after the custom field name. Please "
                           "reference your WSDL or the describe call for the appropriate names.",
                           buf, o->name);
    }
    out->rel = rel;
    out->f = o->fields[fi];
    out->idx = fi;
    out->o = o;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Literals                                                                  */

static const struct {
    const char *type; /* as Salesforce names it in type errors */
    bool quoted;      /* literals of this type are quoted */
} fclass_info[] = {
    [FC_TEXT] = {"string", true},  [FC_ID] = {"id", true},
    [FC_MULTI] = {"string", true}, [FC_BOOL] = {"boolean", false},
    [FC_INT] = {"integer", false}, [FC_REAL] = {"double", false},
    [FC_DATE] = {"date", false},   [FC_DATETIME] = {"dateTime", false},
};

fclass
res_field_class(const lf_field *f)
{
    switch (f->type) {
    case FT_ID:
    case FT_REFERENCE: return FC_ID;
    case FT_MULTIPICKLIST: return FC_MULTI;
    default: break;
    }
    switch (lf_types[f->type].storage) {
    case ST_BOOL: return FC_BOOL;
    case ST_INT: return FC_INT;
    case ST_REAL: return FC_REAL;
    case ST_DATE: return FC_DATE;
    case ST_DATETIME: return FC_DATETIME;
    default: return FC_TEXT;
    }
}

const char *
res_field_type_name(const lf_field *f)
{
    fclass fc = res_field_class(f);
    return fc == FC_ID ? "id" : lf_types[f->type].name;
}

int
res_type_error(compiler *c, const lf_field *f, const value *v)
{
    fclass fc = res_field_class(f);
    return ast_fail_at(c, v->tok.pos, "INVALID_FIELD",
                       "value of filter criterion for field '%s' must be of type %s and should "
                       "%sbe "
                       "enclosed in quotes",
                       f->name, fclass_info[fc].type, fclass_info[fc].quoted ? "" : "not ");
}

/* Add a bound parameter (takes s). Returns its number (?N), or -1. */
int
res_add_param(compiler *c, size_t pos, soql_ptype type, int64_t i, double r, char *s)
{
    if (c->nparams == SOQL_MAX_PARAMS) {
        free(s);
        return ast_fail_at(c, pos, "MALFORMED_QUERY", "too many values in the query: at most %d",
                           SOQL_MAX_PARAMS);
    }
    if (c->nparams == c->cap_params) {
        c->cap_params = c->cap_params ? c->cap_params * 2 : 16;
        c->params = xrealloc(c->params, (size_t)c->cap_params * sizeof *c->params);
    }
    soql_param *p = &c->params[c->nparams++];
    p->type = type;
    p->i = i;
    p->r = r;
    p->s = s;
    return c->nparams;
}

static int64_t
floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void
civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* First day of the month k months after y-m. */
static int64_t
month_start(int64_t y, int m, int64_t k)
{
    int64_t t = y * 12 + (m - 1) + k;
    int64_t yy = floor_div(t, 12);
    return days_from_civil(yy, (int)(t - yy * 12) + 1, 1);
}

/* The days [lo, hi) a date literal such as TODAY or LAST_N_DAYS:7 stands for (UTC). */
static void
date_range(const compiler *c, const value *v, int64_t *lo, int64_t *hi)
{
    int64_t d0 = floor_div(c->now_ms, MS_PER_DAY), y, n = v->n;
    int m, d;
    civil_from_days(d0, &y, &m, &d);
    switch (v->fn) {
    case DF_TODAY: *lo = d0, *hi = d0 + 1; break;
    case DF_YESTERDAY: *lo = d0 - 1, *hi = d0; break;
    case DF_TOMORROW: *lo = d0 + 1, *hi = d0 + 2; break;
    case DF_LAST_N_DAYS: *lo = d0 - n, *hi = d0 + 1; break;
    case DF_LAST_90_DAYS: *lo = d0 - 90, *hi = d0 + 1; break;
    case DF_NEXT_N_DAYS: *lo = d0 + 1, *hi = d0 + 1 + n; break;
    case DF_NEXT_90_DAYS: *lo = d0 + 1, *hi = d0 + 91; break;
    case DF_N_DAYS_AGO: *lo = d0 - n, *hi = d0 - n + 1; break;
    case DF_THIS_MONTH: *lo = month_start(y, m, 0), *hi = month_start(y, m, 1); break;
    case DF_LAST_MONTH: *lo = month_start(y, m, -1), *hi = month_start(y, m, 0); break;
    case DF_NEXT_MONTH: *lo = month_start(y, m, 1), *hi = month_start(y, m, 2); break;
    case DF_LAST_N_MONTHS: *lo = month_start(y, m, -n), *hi = month_start(y, m, 0); break;
    case DF_NEXT_N_MONTHS: *lo = month_start(y, m, 1), *hi = month_start(y, m, 1 + n); break;
    case DF_THIS_YEAR: *lo = days_from_civil(y, 1, 1), *hi = days_from_civil(y + 1, 1, 1); break;
    case DF_LAST_YEAR: *lo = days_from_civil(y - 1, 1, 1), *hi = days_from_civil(y, 1, 1); break;
    case DF_NEXT_YEAR:
        *lo = days_from_civil(y + 1, 1, 1), *hi = days_from_civil(y + 2, 1, 1);
        break;
    case DF_LAST_N_YEARS: *lo = days_from_civil(y - n, 1, 1), *hi = days_from_civil(y, 1, 1); break;
    case DF_NEXT_N_YEARS:
        *lo = days_from_civil(y + 1, 1, 1), *hi = days_from_civil(y + 1 + n, 1, 1);
        break;
    }
}

static char *
date_text(int64_t days)
{
    int64_t y;
    int m, d;
    char buf[40];
    civil_from_days(days, &y, &m, &d);
    snprintf(buf, sizeof buf, "%04lld-%02d-%02d", (long long)y, m, d);
    return xstrdup(buf);
}

/* An 18-character ID's checksum must be the one its (case-restored) first 15
 * characters give; sfid_normalize only uses it to restore case. */
static bool
checksum_matches(const char *s, size_t len, const char id[19])
{
    if (len != 18)
        return true;
    for (int i = 15; i < 18; i++) {
        char ch = s[i];
        if ((ch >= 'a' && ch <= 'z' ? ch - 32 : ch) != id[i])
            return false;
    }
    return true;
}

/* Check literal v against field f and bind it. mode: how to decode strings;
 * eq: for = != IN NOT IN, where '' means null (the store keeps no empty
 * strings, and Salesforce treats a blank text or id as null). */
int
res_convert(compiler *c, const lf_field *f, const value *v, decmode mode, bool eq, cval *out)
{
    size_t pos = v->tok.pos;
    fclass fc = res_field_class(f);
    out->k = CV_PARAM;
    out->p = out->p2 = -1;
    if (v->k == V_NULL) {
        out->k = CV_NULL;
        return 0;
    }
    switch (fc) {
    case FC_TEXT:
    case FC_MULTI:
    case FC_ID: {
        if (v->k != V_STRING)
            return res_type_error(c, f, v);
        sb b = SB_INIT;
        if (lex_decode_string(c, &v->tok, fc == FC_ID ? DEC_PLAIN : mode, &b) != 0) {
            sb_free(&b);
            return -1;
        }
        if (b.len == 0 && (eq || fc == FC_ID)) {
            sb_free(&b);
            out->k = CV_NULL;
            return 0;
        }
        if (fc != FC_ID) {
            out->p = res_add_param(c, pos, SP_TEXT, 0, 0, sb_steal(&b));
            break;
        }
        char id[19];
        if (sfid_normalize(sb_str(&b), id) != 0 || !checksum_matches(sb_str(&b), b.len, id)) {
            char buf[ERR_TOKEN_MAX + 1];
            ast_cut_text(sb_str(&b), b.len, buf, sizeof buf);
            sb_free(&b);
            return ast_fail_at(c, pos, "INVALID_QUERY_FILTER_OPERATOR", "invalid ID field: %s",
                               buf);
        }
        sb_free(&b);
        out->p = res_add_param(c, pos, SP_TEXT, 0, 0, xstrdup(id));
        break;
    }
    case FC_BOOL:
        if (v->k != V_TRUE && v->k != V_FALSE)
            return res_type_error(c, f, v);
        out->p = res_add_param(c, pos, SP_INT, v->k == V_TRUE, 0, NULL);
        break;
    case FC_INT:
    case FC_REAL: {
        if (v->k != V_NUMBER)
            return res_type_error(c, f, v);
        char *txt = xstrndup(c->q + pos, v->tok.len);
        int64_t i;
        double r;
        if (strchr(txt, '.') == NULL && util_parse_i64(txt, &i) == 0) {
            out->p = res_add_param(c, pos, SP_INT, i, 0, NULL);
        } else if (util_parse_double(txt, &r) == 0) {
            out->p = res_add_param(c, pos, SP_REAL, 0, r, NULL);
        } else {
            free(txt);
            return ast_fail_at(c, pos, "NUMBER_OUTSIDE_VALID_RANGE",
                               "value of filter criterion for field '%s' is out of range", f->name);
        }
        free(txt);
        break;
    }
    case FC_DATE:
    case FC_DATETIME: {
        bool dt = fc == FC_DATETIME;
        if (v->k == V_DATEFN) {
            int64_t lo = 0, hi = 0;
            date_range(c, v, &lo, &hi);
            out->k = CV_RANGE;
            if (dt) {
                out->p = res_add_param(c, pos, SP_INT, lo * MS_PER_DAY, 0, NULL);
                out->p2 = out->p < 0 ? -1 : res_add_param(c, pos, SP_INT, hi * MS_PER_DAY, 0, NULL);
            } else {
                out->p = res_add_param(c, pos, SP_TEXT, 0, 0, date_text(lo));
                out->p2 = out->p < 0 ? -1 : res_add_param(c, pos, SP_TEXT, 0, 0, date_text(hi));
            }
            if (out->p2 < 0)
                return -1;
            break;
        }
        if (v->k == V_DATE && !dt) {
            out->p = res_add_param(c, pos, SP_TEXT, 0, 0, xstrndup(c->q + pos, 10));
        } else if (dt && (v->k == V_DATE || v->k == V_DATETIME)) {
            char *txt = xstrndup(c->q + pos, v->tok.len);
            int64_t ms = 0;
            util_parse_datetime(txt, &ms); /* validated by the tokenizer */
            free(txt);
            out->p = res_add_param(c, pos, SP_INT, ms, 0, NULL);
        } else {
            return res_type_error(c, f, v);
        }
        break;
    }
    }
    return out->p < 0 ? -1 : 0;
}
