/*
 * sqlgen: SQLite SQL from the resolved AST: WHERE conditions with SOQL's null
 * semantics, the SELECT list and its output columns, ORDER BY, LIMIT/OFFSET,
 * the rows statement and the count statement.
 */
#include "sqlgen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "parser.h"
#include "resolve.h"
#include "util.h"
/* ------------------------------------------------------------------------ */
/* Conditions -> SQL                                                         */

/* terms joined by op. A long chain is cut into parenthesised chunks: SQLite
 * builds a flat chain as a left-deep tree, and limits the tree's depth. */
static void
join_chain(sb *out, char **terms, int n, const char *op)
{
    bool chunked = n > CHAIN_FLAT;
    for (int i = 0; i < n; i++) {
        if (i)
            sb_printf(out, " %s ", op);
        if (chunked && i % CHAIN_CHUNK == 0)
            sb_putc(out, '(');
        sb_puts(out, terms[i]);
        if (chunked && (i % CHAIN_CHUNK == CHAIN_CHUNK - 1 || i == n - 1))
            sb_putc(out, ')');
    }
}

static void
free_terms(char **terms, int n)
{
    for (int i = 0; i < n; i++)
        free(terms[i]);
    free(terms);
}

/* = != < <= > >= LIKE. *nullable: the SQL may be NULL (meaning false). */
static int
emit_simple(compiler *c, const cnode *n, const lf_field *f, const char *x, sb *out, bool *nullable)
{
    static const char *const op_sql[] = {
        [OP_EQ] = "=", [OP_NE] = "!=", [OP_LT] = "<", [OP_LE] = "<=", [OP_GT] = ">", [OP_GE] = ">=",
    };
    cval v;
    if (res_convert(c, f, &n->vals[0], n->op == OP_LIKE ? DEC_LIKE : DEC_PLAIN,
                    n->op == OP_EQ || n->op == OP_NE, &v) != 0)
        return -1;
    if (n->op == OP_LIKE && v.k == CV_PARAM && strlen(c->params[v.p - 1].s) > LIKE_MAX)
        return ast_fail_at(c, n->vals[0].tok.pos, "MALFORMED_QUERY",
                           "LIKE pattern too long: at most %d characters", LIKE_MAX);
    *nullable = true;
    if (v.k == CV_NULL) {
        *nullable = false;
        if (n->op == OP_EQ)
            sb_printf(out, "%s IS NULL", x);
        else if (n->op == OP_NE)
            sb_printf(out, "%s IS NOT NULL", x);
        else
            sb_puts(out, "0");
    } else if (v.k == CV_PARAM) {
        switch (n->op) {
        case OP_EQ: sb_printf(out, "%s IS ?%d", x, v.p), *nullable = false; break;
        case OP_NE: sb_printf(out, "%s IS NOT ?%d", x, v.p), *nullable = false; break;
        case OP_LIKE: sb_printf(out, "%s LIKE ?%d ESCAPE '\\'", x, v.p); break;
        default: sb_printf(out, "%s %s ?%d", x, op_sql[n->op], v.p); break;
        }
    } else {
        switch (n->op) {
        case OP_EQ: sb_printf(out, "(%s >= ?%d AND %s < ?%d)", x, v.p, x, v.p2); break;
        case OP_NE:
            sb_printf(out, "(%s IS NULL OR %s < ?%d OR %s >= ?%d)", x, x, v.p, x, v.p2);
            *nullable = false;
            break;
        case OP_LT: sb_printf(out, "%s < ?%d", x, v.p); break;
        case OP_LE: sb_printf(out, "%s < ?%d", x, v.p2); break;
        case OP_GT: sb_printf(out, "%s >= ?%d", x, v.p2); break;
        default: sb_printf(out, "%s >= ?%d", x, v.p); break; /* OP_GE */
        }
    }
    return 0;
}

/* IN (...) / NOT IN (...) */
static int
emit_in(compiler *c, const cnode *n, const lf_field *f, const char *x, sb *out, bool *nullable)
{
    sb list = SB_INIT;
    bool has_null = false;
    for (int i = 0; i < n->nvals; i++) {
        cval v;
        if (res_convert(c, f, &n->vals[i], DEC_PLAIN, true, &v) != 0) {
            sb_free(&list);
            return -1;
        }
        if (v.k == CV_RANGE) {
            sb_free(&list);
            return ast_unsupported(c, n->vals[i].tok.pos,
                                   "date literals such as TODAY in IN lists");
        }
        if (v.k == CV_NULL) {
            has_null = true;
            continue;
        }
        sb_printf(&list, "%s?%d", list.len ? ", " : "", v.p);
    }
    bool in = n->op == OP_IN;
    *nullable = false;
    if (list.len == 0)
        sb_printf(out, in ? "%s IS NULL" : "%s IS NOT NULL", x);
    else if (in && has_null)
        sb_printf(out, "(%s IS NULL OR %s IN (%s))", x, x, list.buf);
    else if (in)
        sb_printf(out, "%s IN (%s)", x, list.buf), *nullable = true;
    else if (has_null)
        sb_printf(out, "(%s IS NOT NULL AND %s NOT IN (%s))", x, x, list.buf);
    else
        sb_printf(out, "(%s IS NULL OR %s NOT IN (%s))", x, x, list.buf);
    sb_free(&list);
    return 0;
}

/* INCLUDES ('a;b', 'c') on a multipicklist ("a;b;c" in the column): each string
 * is a set of values that must all be present; any of the strings may match. */
static int
emit_includes(compiler *c, const cnode *n, const lf_field *f, const char *x, sb *out,
              bool *nullable)
{
    char **items = xcalloc((size_t)n->nvals, sizeof *items);
    int nitems = 0;
    for (int i = 0; i < n->nvals; i++) {
        const value *v = &n->vals[i];
        if (v->k != V_STRING) {
            free_terms(items, nitems);
            return res_type_error(c, f, v);
        }
        sb b = SB_INIT;
        lex_decode_string(c, &v->tok, DEC_PLAIN, &b); /* validated by the tokenizer */
        const char *s = sb_str(&b);
        size_t nparts = 1;
        for (const char *p = s; *p; p++)
            nparts += *p == ';';
        char **parts = xcalloc(nparts, sizeof *parts);
        int np = 0;
        for (const char *p = s;;) {
            const char *e = strchr(p, ';');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            const char *a = p, *z = p + len;
            while (a < z && *a == ' ')
                a++;
            while (z > a && z[-1] == ' ')
                z--;
            if (z > a) {
                /* ";value;" inside ";" || x || ";", ASCII case-insensitively (as NOCASE) */
                sb pat = SB_INIT;
                sb_putc(&pat, ';');
                for (const char *q = a; q < z; q++)
                    sb_putc(&pat, (char)(*q >= 'A' && *q <= 'Z' ? *q + 32 : *q));
                sb_putc(&pat, ';');
                int pn = res_add_param(c, v->tok.pos, SP_TEXT, 0, 0, sb_steal(&pat));
                if (pn < 0) {
                    free_terms(parts, np);
                    free_terms(items, nitems);
                    sb_free(&b);
                    return -1;
                }
                sb t = SB_INIT;
                sb_printf(&t, "instr(';' || lower(%s) || ';', ?%d) > 0", x, pn);
                parts[np++] = sb_steal(&t);
            }
            if (e == NULL)
                break;
            p = e + 1;
        }
        sb_free(&b);
        sb item = SB_INIT;
        if (np == 0)
            sb_puts(&item, "0");
        else
            join_chain(&item, parts, np, "AND");
        free_terms(parts, np);
        items[nitems++] = sb_steal(&item);
    }
    sb inc = SB_INIT;
    join_chain(&inc, items, nitems, "OR");
    free_terms(items, nitems);
    if (n->op == OP_INCLUDES) {
        sb_printf(out, "(%s)", inc.buf);
        *nullable = true;
    } else {
        sb_printf(out, "(%s IS NULL OR NOT (%s))", x, inc.buf);
        *nullable = false;
    }
    sb_free(&inc);
    return 0;
}

static int
compile_cmp(compiler *c, const cnode *n, sb *out, bool *nullable)
{
    fref r;
    if (res_path(c, &n->path, &r) != 0)
        return -1;
    const lf_field *f = r.f;
    fclass fc = res_field_class(f);
    if (f->type == FT_TEXTAREA && f->length > 255)
        return ast_fail_at(c, n->path.pos, "INVALID_FIELD",
                           "field '%s' can not be filtered in a query call", f->name);
    bool ok = true;
    switch (n->op) {
    case OP_LIKE: ok = fc == FC_TEXT; break;
    case OP_INCLUDES:
    case OP_EXCLUDES:
        if (fc != FC_MULTI)
            return ast_fail_at(c, n->op_pos, "INVALID_QUERY_FILTER_OPERATOR",
                               "includes or excludes operator only valid on multipicklist field");
        break;
    case OP_LT:
    case OP_LE:
    case OP_GT:
    case OP_GE: ok = fc != FC_MULTI && fc != FC_BOOL; break;
    case OP_IN:
    case OP_NOT_IN: ok = fc != FC_MULTI; break;
    default: break;
    }
    if (!ok)
        return ast_fail_at(c, n->op_pos, "INVALID_QUERY_FILTER_OPERATOR",
                           "invalid operator on %s field", res_field_type_name(f));
    sb x = SB_INIT;
    res_put_col(&x, r.rel, f);
    int rc;
    switch (n->op) {
    case OP_IN:
    case OP_NOT_IN: rc = emit_in(c, n, f, x.buf, out, nullable); break;
    case OP_INCLUDES:
    case OP_EXCLUDES: rc = emit_includes(c, n, f, x.buf, out, nullable); break;
    default: rc = emit_simple(c, n, f, x.buf, out, nullable); break;
    }
    sb_free(&x);
    return rc;
}

static int
too_deep(compiler *c, size_t pos)
{
    return ast_fail_at(c, pos, "MALFORMED_QUERY",
                       "conditions are nested too deeply: at most %d nested groups of AND, OR and "
                       "NOT",
                       SOQL_MAX_NEST);
}

/* The conditions of an AND/OR chain, flattened through groups of the same operator. */
static void
collect_chain(compiler *c, const cnode *n, cnkind op, cnode ***list, int *cnt, int *cap)
{
    for (int i = 0; i < n->nkids; i++) {
        cnode *k = n->kids[i];
        if (k->k == op) {
            collect_chain(c, k, op, list, cnt, cap);
        } else {
            *list = ast_grow(c, *list, *cnt, cap, sizeof **list);
            (*list)[(*cnt)++] = k;
        }
    }
}

static int emit_cond(compiler *c, const cnode *n, int nest, sb *out, bool *nullable);

/* An AND/OR chain with as few parentheses as SQL's precedence allows (AND binds
 * tighter than OR; comparisons tighter than both): SQLite's parser has a small
 * fixed stack, and each open parenthesis costs it a few entries. nest counts
 * the parentheses already open. */
static int
emit_chain(compiler *c, const cnode *n, int nest, sb *out, bool *nullable)
{
    cnode **kids = NULL;
    int cnt = 0, cap = 0;
    collect_chain(c, n, n->k, &kids, &cnt, &cap);
    bool chunked = cnt > CHAIN_FLAT;
    if (chunked && ++nest > SOQL_MAX_NEST)
        return too_deep(c, n->pos);
    *nullable = false;
    for (int i = 0; i < cnt; i++) {
        const cnode *k = kids[i];
        bool paren = n->k == CN_AND && k->k == CN_OR, nl;
        if (i)
            sb_puts(out, n->k == CN_AND ? " AND " : " OR ");
        if (chunked && i % CHAIN_CHUNK == 0)
            sb_putc(out, '(');
        if (paren && nest + 1 > SOQL_MAX_NEST)
            return too_deep(c, k->pos);
        if (paren)
            sb_putc(out, '(');
        if (emit_cond(c, k, nest + paren, out, &nl) != 0)
            return -1;
        if (paren)
            sb_putc(out, ')');
        if (chunked && (i % CHAIN_CHUNK == CHAIN_CHUNK - 1 || i == cnt - 1))
            sb_putc(out, ')');
        *nullable = *nullable || nl;
    }
    return 0;
}

static int
emit_cond(compiler *c, const cnode *n, int nest, sb *out, bool *nullable)
{
    switch (n->k) {
    case CN_AND:
    case CN_OR: return emit_chain(c, n, nest, out, nullable);
    case CN_NOT:
        /* SOQL's NOT sees a two-valued condition: NULL (unknown) counts as false,
         * so NOT x is "x IS NOT 1" (true for 0 and NULL). */
        if (nest + 1 > SOQL_MAX_NEST)
            return too_deep(c, n->pos);
        sb_putc(out, '(');
        if (emit_cond(c, n->kids[0], nest + 1, out, nullable) != 0)
            return -1;
        sb_puts(out, ") IS NOT 1");
        *nullable = false;
        return 0;
    default: return compile_cmp(c, n, out, nullable);
    }
}

/* ------------------------------------------------------------------------ */
/* SELECT list, ORDER BY, the statements                                     */

static int
add_col(compiler *c, int rel, const lf_field *f, size_t pos)
{
    if (c->ncols >= SOQL_MAX_COLS)
        return ast_fail_at(c, pos, "MALFORMED_QUERY", "too many fields selected: at most %d",
                           SOQL_MAX_COLS);
    if (c->ncols == c->cap_cols) {
        c->cap_cols = c->cap_cols ? c->cap_cols * 2 : 16;
        c->cols = xrealloc(c->cols, (size_t)c->cap_cols * sizeof *c->cols);
    }
    c->cols[c->ncols].field = f;
    c->cols[c->ncols].rel = rel;
    c->cols[c->ncols].sql_col = 0;
    c->ncols++;
    return 0;
}

/* Which fields of level rel (-1: the FROM object) are selected: 0 no, 1 by
 * name, 2 through FIELDS(). */
static unsigned char *
seen_for(compiler *c, int rel, const lf_object *o)
{
    if (c->seen[rel + 1] == NULL)
        c->seen[rel + 1] = ast_alloc(c, o->nfields);
    return (unsigned char *)c->seen[rel + 1];
}

static int
compile_select(compiler *c, int64_t limit, bool *count_only)
{
    int first_count = -1;
    for (int i = 0; i < c->nitems && first_count < 0; i++)
        if (c->items[i].k == SI_COUNT)
            first_count = i;
    if (first_count >= 0) {
        for (int i = 0; i < c->nitems; i++) {
            if (i == first_count)
                continue;
            const sel_item *it = &c->items[i];
            char buf[ERR_TOKEN_MAX + 1] = "COUNT()";
            if (it->k == SI_FIELD)
                res_path_text(c, &it->path, buf, sizeof buf);
            else if (it->k == SI_FIELDS)
                snprintf(buf, sizeof buf, "FIELDS()");
            return ast_fail_at(c, it->pos, "MALFORMED_QUERY",
                               "Field must be grouped or aggregated: %s", buf);
        }
        *count_only = true;
        return 0;
    }
    for (int i = 0; i < c->nitems; i++) {
        const sel_item *it = &c->items[i];
        if (it->k == SI_FIELDS) {
            if (it->fk != FIELDS_STANDARD && (limit < 0 || limit > SOQL_FIELDS_LIMIT))
                return ast_fail_at(c, it->pos, "MALFORMED_QUERY",
                                   "The SOQL FIELDS function must have a LIMIT of at most %d",
                                   SOQL_FIELDS_LIMIT);
            unsigned char *seen = seen_for(c, -1, c->obj);
            for (size_t j = 0; j < c->obj->nfields; j++) {
                const lf_field *f = c->obj->fields[j];
                if (seen[j] || (it->fk == FIELDS_STANDARD && f->custom) ||
                    (it->fk == FIELDS_CUSTOM && !f->custom))
                    continue;
                seen[j] = 2;
                if (add_col(c, -1, f, it->pos) != 0)
                    return -1;
            }
            continue;
        }
        fref r;
        if (res_path(c, &it->path, &r) != 0)
            return -1;
        unsigned char *seen = seen_for(c, r.rel, r.o);
        if (seen[r.idx] == 1) {
            char buf[ERR_TOKEN_MAX + 1];
            res_path_text(c, &it->path, buf, sizeof buf);
            return ast_fail_at(c, it->pos, "MALFORMED_QUERY", "duplicate field selected: %s", buf);
        }
        bool already = seen[r.idx] == 2; /* by FIELDS(): keep its column */
        seen[r.idx] = 1;
        if (!already && add_col(c, r.rel, r.f, it->pos) != 0)
            return -1;
    }
    return 0;
}

static int
compile_order(compiler *c, bool count_only, sb *out)
{
    for (int i = 0; i < c->norder; i++) {
        const order_item *o = &c->order[i];
        char buf[ERR_TOKEN_MAX + 1];
        if (count_only) {
            res_path_text(c, &o->path, buf, sizeof buf);
            return ast_fail_at(c, o->path.pos, "MALFORMED_QUERY",
                               "Ordered field must be grouped or aggregated: %s", buf);
        }
        fref r;
        if (res_path(c, &o->path, &r) != 0)
            return -1;
        if (r.f->type == FT_MULTIPICKLIST || (r.f->type == FT_TEXTAREA && r.f->length > 255))
            return ast_fail_at(c, o->path.pos, "INVALID_FIELD",
                               "field '%s' can not be sorted in a query call", r.f->name);
        res_put_col(out, r.rel, r.f);
        if (o->desc)
            sb_puts(out, " DESC");
        /* SQLite's defaults are SOQL's: ASC NULLS FIRST, DESC NULLS LAST */
        if (o->nulls_first == o->desc)
            sb_puts(out, o->nulls_first ? " NULLS FIRST" : " NULLS LAST");
        sb_puts(out, ", ");
    }
    sb_puts(out, "t0.\"_rowid\"");
    return 0;
}

/* LIMIT / OFFSET values; -1 / 0 when absent. */
static int
compile_counts(compiler *c, int64_t *limit, int64_t *offset)
{
    *limit = -1;
    *offset = 0;
    if (c->limit_tok.k != TK_EOF) {
        int64_t v = parse_uint_value(c, &c->limit_tok);
        if (v < 0 || v > INT32_MAX)
            return ast_fail_at(c, c->limit_tok.pos, "NUMBER_OUTSIDE_VALID_RANGE",
                               "Maximum SOQL LIMIT allowed is %d", INT32_MAX);
        *limit = v;
    }
    if (c->offset_tok.k != TK_EOF) {
        int64_t v = parse_uint_value(c, &c->offset_tok);
        if (v < 0 || v > SOQL_MAX_OFFSET)
            return ast_fail_at(c, c->offset_tok.pos, "NUMBER_OUTSIDE_VALID_RANGE",
                               "Maximum SOQL offset allowed is %d", SOQL_MAX_OFFSET);
        *offset = v;
    }
    return 0;
}

static const lf_object *
object_by_token(const compiler *c, const token *t)
{
    for (size_t i = 0; i < c->s->nobjects; i++)
        if (res_span_is(c, t, c->s->objects[i]->name))
            return c->s->objects[i];
    return NULL;
}

int
gen_statement(compiler *c, soql_plan **out)
{
    c->obj = object_by_token(c, &c->obj_tok);
    if (c->obj == NULL) {
        char buf[ERR_TOKEN_MAX + 1];
        ast_tok_text(c, &c->obj_tok, buf, sizeof buf);
        return ast_fail_at(c, c->obj_tok.pos, "INVALID_TYPE",
                           "sObject type '%s' is not supported. If you are attempting to use a "
                           "custom "
                           "object, be sure to append the '__c' after the entity name. Please "
                           "reference your WSDL or the describe call for the appropriate names.",
                           buf);
    }
    int64_t limit, offset;
    bool count_only = false, nullable;
    if (compile_counts(c, &limit, &offset) != 0 || compile_select(c, limit, &count_only) != 0)
        return -1;
    sb where = SB_INIT, order = SB_INIT, from = SB_INIT, sql = SB_INIT, cnt = SB_INIT;
    if ((c->where && emit_cond(c, c->where, 1, &where, &nullable) != 0) ||
        compile_order(c, count_only, &order) != 0)
        goto fail;
    int plimit = 0, poffset = 0;
    if (limit >= 0 && (plimit = res_add_param(c, c->limit_tok.pos, SP_INT, limit, 0, NULL)) < 0)
        goto fail;
    if (offset > 0 && (poffset = res_add_param(c, c->offset_tok.pos, SP_INT, offset, 0, NULL)) < 0)
        goto fail;

    /* FROM ... LEFT JOIN ... WHERE ... */
    sb_puts(&from, " FROM ");
    sb_sql_ident(&from, c->obj->name);
    sb_puts(&from, " AS t0");
    for (int i = 0; i < c->nrels; i++) {
        const soql_rel *r = &c->rels[i];
        sb_puts(&from, " LEFT JOIN ");
        sb_sql_ident(&from, r->object->name);
        sb_printf(&from, " AS t%d ON t%d.\"Id\" = ", i + 1, i + 1);
        res_put_col(&from, r->parent, c->rel_ref[i]);
    }
    bool live = !c->all_rows && object_field(c->obj, "IsDeleted") != NULL;
    if (live)
        sb_puts(&from, " WHERE t0.\"IsDeleted\" = 0");
    if (where.len)
        sb_printf(&from, live ? " AND (%s)" : " WHERE %s", where.buf);

    /* SELECT t0."Id", <fields>, <parent Ids> */
    sb_puts(&sql, "SELECT t0.\"Id\"");
    for (int i = 0; i < c->ncols; i++) {
        sb_puts(&sql, ", ");
        res_put_col(&sql, c->cols[i].rel, c->cols[i].field);
        c->cols[i].sql_col = 1 + i;
    }
    for (int i = 0; i < c->nrels; i++) {
        sb_printf(&sql, ", t%d.\"Id\"", i + 1);
        c->rels[i].id_col = 1 + c->ncols + i;
    }
    sb_append(&sql, from.buf, from.len);
    sb_printf(&sql, " ORDER BY %s", order.buf);
    sb tail = SB_INIT;
    if (plimit || poffset) {
        if (plimit)
            sb_printf(&tail, " LIMIT ?%d", plimit);
        else
            sb_puts(&tail, " LIMIT -1");
        if (poffset)
            sb_printf(&tail, " OFFSET ?%d", poffset);
        sb_append(&sql, tail.buf, tail.len);
        sb_printf(&cnt, "SELECT count(*) FROM (SELECT 1%s%s)", from.buf, tail.buf);
    } else {
        sb_printf(&cnt, "SELECT count(*)%s", from.buf);
    }
    sb_free(&tail);

    soql_plan *p = xcalloc(1, sizeof *p);
    p->object = c->obj;
    p->count_only = count_only;
    p->all_rows = c->all_rows;
    p->sql = sb_steal(&sql);
    p->count_sql = sb_steal(&cnt);
    p->params = c->params;
    p->nparams = c->nparams;
    c->params = NULL;
    c->nparams = 0;
    p->cols = c->cols;
    p->ncols = c->ncols;
    c->cols = NULL;
    c->ncols = 0;
    if (c->nrels) {
        p->rels = xcalloc((size_t)c->nrels, sizeof *p->rels);
        memcpy(p->rels, c->rels, (size_t)c->nrels * sizeof *p->rels);
    }
    p->nrels = c->nrels;
    p->limit = limit;
    p->offset = offset;
    *out = p;
    sb_free(&where);
    sb_free(&order);
    sb_free(&from);
    return 0;
fail:
    sb_free(&where);
    sb_free(&order);
    sb_free(&from);
    sb_free(&sql);
    sb_free(&cnt);
    return -1;
}
