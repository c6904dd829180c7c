/*
 * parser: the recursive-descent SOQL parser: statement text -> AST (SELECT list,
 * FROM, WHERE, ORDER BY, LIMIT, OFFSET). Recursion only through parentheses,
 * at most SOQL_MAX_DEPTH deep. The whole statement is parsed before any name
 * is resolved, so syntax errors come first, as in Salesforce.
 */
#include "parser.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lexer.h"
/* Parser: statement text -> AST                                             */

/* The k-th token from the current one (k is 0 or 1); NULL on a lexical error. */
static token *
peek(compiler *c, int k)
{
    while (c->nla <= k) {
        if (lex_next(c, &c->la[c->nla]) != 0)
            return NULL;
        c->nla++;
    }
    return &c->la[k];
}

/* Drop the current token (peek(c, 0) must have succeeded). */
static void
advance(compiler *c)
{
    c->la[0] = c->la[1];
    c->nla--;
}

/* SOQL's reserved words: never a field, object or alias name. */
static const char *const reserved_words[] = {
    "AND",  "ASC",  "DESC",  "EXCLUDES", "FIRST", "FROM",  "GROUP", "HAVING", "IN",    "INCLUDES",
    "LAST", "LIKE", "LIMIT", "NOT",      "NULL",  "NULLS", "OR",    "SELECT", "WHERE", "WITH",
};

static bool
is_reserved(const compiler *c, const token *t)
{
    if (t->k != TK_IDENT || t->len > 8)
        return false;
    for (size_t i = 0; i < sizeof reserved_words / sizeof reserved_words[0]; i++)
        if (ast_tok_is(c, t, reserved_words[i]))
            return true;
    return false;
}

/* 1 if the current token is keyword kw (and consume it), 0 if not, -1 on error. */
static int
accept_kw(compiler *c, const char *kw)
{
    token *t = peek(c, 0);
    if (t == NULL)
        return -1;
    if (!ast_tok_is(c, t, kw))
        return 0;
    advance(c);
    return 1;
}

static int
expect_kw(compiler *c, const char *kw)
{
    int r = accept_kw(c, kw);
    if (r < 0)
        return -1;
    return r ? 0 : ast_unexpected(c, &c->la[0]);
}

/* 1 and past it if the next token is of kind k, 0 if not, -1 on a lexer error. */
static int
accept_tk(compiler *c, tkind k)
{
    token *t = peek(c, 0);
    if (t == NULL)
        return -1;
    if (t->k != k)
        return 0;
    advance(c);
    return 1;
}

static int
expect_tk(compiler *c, tkind k)
{
    int r = accept_tk(c, k);
    if (r < 0)
        return -1;
    return r ? 0 : ast_unexpected(c, &c->la[0]);
}

/* An identifier that is not a reserved word. */
static int
parse_ident(compiler *c, token *out)
{
    token *t = peek(c, 0);
    if (t == NULL)
        return -1;
    if (t->k != TK_IDENT || is_reserved(c, t))
        return ast_unexpected(c, t);
    *out = *t;
    advance(c);
    return 0;
}

int
parse_too_many_levels(compiler *c, size_t pos)
{
    return ast_fail_at(c, pos, "MALFORMED_QUERY",
                       "SOQL statements cannot query more than %d levels of child-to-parent "
                       "relationships",
                       SOQL_MAX_HOPS);
}

/* name(.name)* */
static int
parse_path(compiler *c, fpath *p)
{
    token *t = peek(c, 0);
    if (t == NULL)
        return -1;
    p->pos = t->pos;
    p->nseg = 0;
    for (;;) {
        token id;
        if (parse_ident(c, &id) != 0)
            return -1;
        if (p->nseg == SOQL_MAX_SEGS)
            return parse_too_many_levels(c, p->pos);
        p->seg[p->nseg++] = id;
        p->end = id.pos + id.len;
        int r = accept_tk(c, TK_DOT);
        if (r <= 0)
            return r;
    }
}

/* A function call where localforce takes none: name it in the error. */
static int
unsupported_function(compiler *c, const token *t)
{
    char buf[ERR_TOKEN_MAX + 1], what[ERR_TOKEN_MAX + 32];
    ast_tok_text(c, t, buf, sizeof buf);
    snprintf(what, sizeof what, "the function %s()", buf);
    return ast_unsupported(c, t->pos, what);
}

static int
parse_select_item(compiler *c, sel_item *it)
{
    token *t = peek(c, 0);
    if (t == NULL)
        return -1;
    it->pos = t->pos;
    if (t->k == TK_LPAREN) {
        token *t1 = peek(c, 1);
        if (t1 == NULL)
            return -1;
        if (ast_tok_is(c, t1, "SELECT"))
            return ast_unsupported(c, c->la[0].pos, "child relationship subqueries");
        return ast_unexpected(c, &c->la[0]);
    }
    if (t->k != TK_IDENT || is_reserved(c, t))
        return ast_unexpected(c, t);
    if (ast_tok_is(c, t, "TYPEOF"))
        return ast_unsupported(c, t->pos, "TYPEOF");
    token *t1 = peek(c, 1);
    if (t1 == NULL)
        return -1;
    t = &c->la[0];
    if (t1->k != TK_LPAREN) {
        it->k = SI_FIELD;
        return parse_path(c, &it->path);
    }
    token name = *t;
    if (ast_tok_is(c, &name, "COUNT")) {
        advance(c), advance(c);
        if ((t = peek(c, 0)) == NULL)
            return -1;
        if (t->k != TK_RPAREN)
            return ast_unsupported(c, name.pos,
                                   "aggregate queries (COUNT(field), GROUP BY); use COUNT()");
        advance(c);
        it->k = SI_COUNT;
        return 0;
    }
    if (ast_tok_is(c, &name, "FIELDS")) {
        advance(c), advance(c);
        if ((t = peek(c, 0)) == NULL)
            return -1;
        if (ast_tok_is(c, t, "ALL"))
            it->fk = FIELDS_ALL;
        else if (ast_tok_is(c, t, "STANDARD"))
            it->fk = FIELDS_STANDARD;
        else if (ast_tok_is(c, t, "CUSTOM"))
            it->fk = FIELDS_CUSTOM;
        else
            return ast_unexpected(c, t);
        advance(c);
        it->k = SI_FIELDS;
        return expect_tk(c, TK_RPAREN);
    }
    return unsupported_function(c, &name);
}

static int
parse_select_list(compiler *c)
{
    for (;;) {
        c->items = ast_grow(c, c->items, c->nitems, &c->cap_items, sizeof *c->items);
        sel_item *it = &c->items[c->nitems];
        memset(it, 0, sizeof *it);
        if (parse_select_item(c, it) != 0)
            return -1;
        c->nitems++;
        int r = accept_tk(c, TK_COMMA);
        if (r <= 0)
            return r;
    }
}

/* Date literals: name, range kind, whether it takes ":n", and the largest n. */
static const struct {
    const char *name;
    datefn fn;
    bool takes_n;
    int64_t max_n;
} date_literals[] = {
    {"TODAY", DF_TODAY, false, 0},
    {"YESTERDAY", DF_YESTERDAY, false, 0},
    {"TOMORROW", DF_TOMORROW, false, 0},
    {"LAST_N_DAYS", DF_LAST_N_DAYS, true, 100000},
    {"NEXT_N_DAYS", DF_NEXT_N_DAYS, true, 100000},
    {"N_DAYS_AGO", DF_N_DAYS_AGO, true, 100000},
    {"LAST_90_DAYS", DF_LAST_90_DAYS, false, 0},
    {"NEXT_90_DAYS", DF_NEXT_90_DAYS, false, 0},
    {"THIS_MONTH", DF_THIS_MONTH, false, 0},
    {"LAST_MONTH", DF_LAST_MONTH, false, 0},
    {"NEXT_MONTH", DF_NEXT_MONTH, false, 0},
    {"LAST_N_MONTHS", DF_LAST_N_MONTHS, true, 12000},
    {"NEXT_N_MONTHS", DF_NEXT_N_MONTHS, true, 12000},
    {"THIS_YEAR", DF_THIS_YEAR, false, 0},
    {"LAST_YEAR", DF_LAST_YEAR, false, 0},
    {"NEXT_YEAR", DF_NEXT_YEAR, false, 0},
    {"LAST_N_YEARS", DF_LAST_N_YEARS, true, 1000},
    {"NEXT_N_YEARS", DF_NEXT_N_YEARS, true, 1000},
};

/* Does an identifier look like one of SOQL's other date literals (weeks,
 * quarters, fiscal periods), which localforce does not implement? */
static bool
other_date_literal(const compiler *c, const token *t)
{
    static const char *const parts[] = {"WEEK",  "QUARTER", "FISCAL", "_AGO",
                                        "LAST_", "NEXT_",   "THIS_"};
    char buf[64];
    if (t->len >= sizeof buf)
        return false;
    for (size_t i = 0; i < t->len; i++) {
        char ch = c->q[t->pos + i];
        buf[i] = (char)(ch >= 'a' && ch <= 'z' ? ch - 32 : ch);
    }
    buf[t->len] = '\0';
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        if (strstr(buf, parts[i]))
            return true;
    return false;
}

/* An unsigned integer literal's value; -1 if t is not one or it is too large for int64. */
int64_t
parse_uint_value(const compiler *c, const token *t)
{
    if (t->k != TK_NUMBER || !lex_is_digit((unsigned char)c->q[t->pos]))
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < t->len; i++) {
        char ch = c->q[t->pos + i];
        if (!lex_is_digit((unsigned char)ch))
            return -1;
        if (v > (INT64_MAX - (ch - '0')) / 10)
            return -2;
        v = v * 10 + (ch - '0');
    }
    return v;
}

static int
parse_value(compiler *c, value *v)
{
    token *t = peek(c, 0);
    if (t == NULL)
        return -1;
    v->tok = *t;
    switch (t->k) {
    case TK_STRING: v->k = V_STRING; break;
    case TK_NUMBER: v->k = V_NUMBER; break;
    case TK_DATE: v->k = V_DATE; break;
    case TK_DATETIME: v->k = V_DATETIME; break;
    case TK_IDENT:
        if (ast_tok_is(c, t, "NULL")) {
            v->k = V_NULL;
            break;
        }
        if (ast_tok_is(c, t, "TRUE")) {
            v->k = V_TRUE;
            break;
        }
        if (ast_tok_is(c, t, "FALSE")) {
            v->k = V_FALSE;
            break;
        }
        for (size_t i = 0; i < sizeof date_literals / sizeof date_literals[0]; i++) {
            if (!ast_tok_is(c, t, date_literals[i].name))
                continue;
            v->k = V_DATEFN;
            v->fn = date_literals[i].fn;
            advance(c);
            if (!date_literals[i].takes_n)
                return 0;
            if (expect_tk(c, TK_COLON) != 0 || (t = peek(c, 0)) == NULL)
                return -1;
            int64_t n = parse_uint_value(c, t);
            if (n < 0 || n > date_literals[i].max_n)
                return ast_unexpected(c, t);
            v->n = n;
            advance(c);
            return 0;
        }
        if (other_date_literal(c, t)) {
            char buf[ERR_TOKEN_MAX + 1], what[ERR_TOKEN_MAX + 32];
            ast_tok_text(c, t, buf, sizeof buf);
            snprintf(what, sizeof what, "the date literal %s", buf);
            return ast_unsupported(c, t->pos, what);
        }
        return ast_unexpected(c, t);
    default: return ast_unexpected(c, t);
    }
    advance(c);
    return 0;
}

static int parse_logical(compiler *c, int depth, cnode **out);

/* field op value */
static int
parse_field_expr(compiler *c, cnode **out)
{
    token *t = peek(c, 0), *t1;
    if (t == NULL || (t1 = peek(c, 1)) == NULL)
        return -1;
    t = &c->la[0];
    if (t->k == TK_IDENT && !is_reserved(c, t) && t1->k == TK_LPAREN)
        return unsupported_function(c, t);
    cnode *n = ast_alloc(c, sizeof *n);
    n->k = CN_CMP;
    n->pos = t->pos;
    if (parse_path(c, &n->path) != 0 || (t = peek(c, 0)) == NULL)
        return -1;
    n->op_pos = t->pos;
    switch (t->k) {
    case TK_EQ: n->op = OP_EQ; break;
    case TK_NE: n->op = OP_NE; break;
    case TK_LT: n->op = OP_LT; break;
    case TK_LE: n->op = OP_LE; break;
    case TK_GT: n->op = OP_GT; break;
    case TK_GE: n->op = OP_GE; break;
    default:
        if (ast_tok_is(c, t, "LIKE")) {
            n->op = OP_LIKE;
        } else if (ast_tok_is(c, t, "IN")) {
            n->op = OP_IN;
        } else if (ast_tok_is(c, t, "INCLUDES")) {
            n->op = OP_INCLUDES;
        } else if (ast_tok_is(c, t, "EXCLUDES")) {
            n->op = OP_EXCLUDES;
        } else if (ast_tok_is(c, t, "NOT")) {
            advance(c);
            if ((t = peek(c, 0)) == NULL)
                return -1;
            if (!ast_tok_is(c, t, "IN"))
                return ast_unexpected(c, t);
            n->op = OP_NOT_IN;
        } else {
            return ast_unexpected(c, t);
        }
    }
    advance(c);
    if (n->op == OP_IN || n->op == OP_NOT_IN || n->op == OP_INCLUDES || n->op == OP_EXCLUDES) {
        if ((t = peek(c, 0)) == NULL || (t1 = peek(c, 1)) == NULL)
            return -1;
        t = &c->la[0];
        if (t->k == TK_LPAREN && ast_tok_is(c, t1, "SELECT"))
            return ast_unsupported(c, t->pos, "semi-join subqueries (IN (SELECT ...))");
        if (expect_tk(c, TK_LPAREN) != 0)
            return -1;
        int cap = 0;
        for (;;) {
            n->vals = ast_grow(c, n->vals, n->nvals, &cap, sizeof *n->vals);
            if (parse_value(c, &n->vals[n->nvals]) != 0)
                return -1;
            n->nvals++;
            int r = accept_tk(c, TK_COMMA);
            if (r < 0)
                return -1;
            if (r == 0)
                break;
        }
        if (expect_tk(c, TK_RPAREN) != 0)
            return -1;
    } else {
        n->vals = ast_alloc(c, sizeof *n->vals);
        n->nvals = 1;
        if (parse_value(c, &n->vals[0]) != 0)
            return -1;
    }
    *out = n;
    return 0;
}

/* '(' logical ')' | field expression */
static int
parse_conditional(compiler *c, int depth, cnode **out)
{
    token *t = peek(c, 0);
    if (t == NULL)
        return -1;
    if (t->k != TK_LPAREN)
        return parse_field_expr(c, out);
    if (depth >= SOQL_MAX_DEPTH)
        return ast_fail_at(c, t->pos, "MALFORMED_QUERY",
                           "conditions are nested too deeply: at most %d levels of parentheses",
                           SOQL_MAX_DEPTH);
    advance(c);
    if (parse_logical(c, depth + 1, out) != 0)
        return -1;
    return expect_tk(c, TK_RPAREN);
}

/* NOT cond | cond (AND cond)* | cond (OR cond)*: SOQL wants parentheses to mix
 * AND and OR, and NOT applies to one condition and ends the expression. */
static int
parse_logical(compiler *c, int depth, cnode **out)
{
    token *t = peek(c, 0);
    if (t == NULL)
        return -1;
    if (ast_tok_is(c, t, "NOT")) {
        size_t pos = t->pos;
        advance(c);
        cnode *n = ast_alloc(c, sizeof *n);
        n->k = CN_NOT;
        n->pos = pos;
        n->kids = ast_alloc(c, sizeof *n->kids);
        n->nkids = 1;
        *out = n;
        return parse_conditional(c, depth, &n->kids[0]);
    }
    cnode *first;
    if (parse_conditional(c, depth, &first) != 0 || (t = peek(c, 0)) == NULL)
        return -1;
    const char *kw = ast_tok_is(c, t, "AND") ? "AND" : ast_tok_is(c, t, "OR") ? "OR" : NULL;
    if (kw == NULL) {
        *out = first;
        return 0;
    }
    cnode *n = ast_alloc(c, sizeof *n);
    n->k = kw[0] == 'A' ? CN_AND : CN_OR;
    n->pos = first->pos;
    int cap = 0;
    n->kids = ast_grow(c, n->kids, n->nkids, &cap, sizeof *n->kids);
    n->kids[n->nkids++] = first;
    while (ast_tok_is(c, t, kw)) {
        advance(c);
        n->kids = ast_grow(c, n->kids, n->nkids, &cap, sizeof *n->kids);
        if (parse_conditional(c, depth, &n->kids[n->nkids]) != 0 || (t = peek(c, 0)) == NULL)
            return -1;
        n->nkids++;
    }
    *out = n;
    return 0;
}

static int
parse_order_by(compiler *c)
{
    for (;;) {
        c->order = ast_grow(c, c->order, c->norder, &c->cap_order, sizeof *c->order);
        order_item *o = &c->order[c->norder];
        memset(o, 0, sizeof *o);
        token *t = peek(c, 0), *t1;
        if (t == NULL || (t1 = peek(c, 1)) == NULL)
            return -1;
        t = &c->la[0];
        if (t->k == TK_IDENT && !is_reserved(c, t) && t1->k == TK_LPAREN)
            return unsupported_function(c, t);
        if (parse_path(c, &o->path) != 0)
            return -1;
        c->norder++;
        int r;
        if ((r = accept_kw(c, "DESC")) < 0)
            return -1;
        o->desc = r == 1;
        if (!o->desc && accept_kw(c, "ASC") < 0)
            return -1;
        o->nulls_first = !o->desc;
        if ((r = accept_kw(c, "NULLS")) < 0)
            return -1;
        if (r) {
            if ((r = accept_kw(c, "FIRST")) < 0)
                return -1;
            if (r)
                o->nulls_first = true;
            else if (expect_kw(c, "LAST") != 0)
                return -1;
            else
                o->nulls_first = false;
        }
        r = accept_tk(c, TK_COMMA);
        if (r <= 0)
            return r;
    }
}

/* LIMIT n / OFFSET n: an unsigned integer literal. */
static int
parse_count_clause(compiler *c, const char *kw, token *out)
{
    int r = accept_kw(c, kw);
    if (r <= 0)
        return r;
    token *t = peek(c, 0);
    if (t == NULL)
        return -1;
    if (parse_uint_value(c, t) == -1)
        return ast_unexpected(c, t);
    *out = *t;
    advance(c);
    return 0;
}

/* Keywords that end the FROM clause and so cannot be an alias. */
static const char *const after_from[] = {"ORDER", "OFFSET", "FOR", "UPDATE", "USING", "ALL"};

int
parse_statement(compiler *c)
{
    if (expect_kw(c, "SELECT") != 0 || parse_select_list(c) != 0 || expect_kw(c, "FROM") != 0 ||
        parse_ident(c, &c->obj_tok) != 0)
        return -1;
    token *t = peek(c, 0);
    if (t == NULL)
        return -1;
    if (t->k == TK_IDENT && !is_reserved(c, t)) {
        bool kw = false;
        for (size_t i = 0; i < sizeof after_from / sizeof after_from[0]; i++)
            kw = kw || ast_tok_is(c, t, after_from[i]);
        if (!kw) {
            c->alias_tok = *t;
            advance(c);
        }
    }
    int r = accept_kw(c, "WHERE");
    if (r < 0 || (r == 1 && parse_logical(c, 0, &c->where) != 0))
        return -1;
    if ((r = accept_kw(c, "ORDER")) < 0)
        return -1;
    if (r == 1 && (expect_kw(c, "BY") != 0 || parse_order_by(c) != 0))
        return -1;
    if (parse_count_clause(c, "LIMIT", &c->limit_tok) != 0 ||
        parse_count_clause(c, "OFFSET", &c->offset_tok) != 0)
        return -1;
    if ((t = peek(c, 0)) == NULL)
        return -1;
    return t->k == TK_EOF ? 0 : ast_unexpected(c, t);
}
