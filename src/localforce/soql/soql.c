/*
 * soql: the SOQL compiler's entry points (soql_compile, soql_bind,
 * soql_plan_free). See soql.h.
 *
 * Three stages, each bounded: a tokenizer (on demand, one token of
 * lookahead beyond the current one), a recursive-descent parser that builds
 * a small AST (recursion only through parentheses, at most SOQL_MAX_DEPTH
 * deep), and a compiler that resolves names against the schema, checks
 * literals against field types and writes SQLite SQL with bound parameters.
 * Syntax errors are reported before name errors, as Salesforce does, because
 * the whole statement is parsed before anything is resolved.
 *
 * Null semantics follow SOQL, not SQL: "x != v" and "x NOT IN (...)" match
 * rows where x is null, and NOT negates a two-valued condition (comparisons
 * that SQL would make NULL count as false before NOT applies).
 */
#include "soql.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "parser.h"
#include "sqlgen.h"
int
soql_compile(const lf_schema *s, const char *q, bool all_rows, int64_t now_ms, soql_plan **out,
             err_t *e)
{
    *out = NULL;
    compiler c;
    memset(&c, 0, sizeof c);
    c.s = s;
    c.q = q ? q : "";
    c.qlen = strlen(c.q);
    c.now_ms = now_ms;
    c.all_rows = all_rows;
    c.e = e;
    int rc;
    size_t chars = 0, i;
    for (i = 0; i < c.qlen; i++) {
        chars += !ast_is_cont((unsigned char)c.q[i]);
        if (chars > SOQL_MAX_LEN)
            break;
    }
    if (chars > SOQL_MAX_LEN)
        rc = ast_fail_at(&c, i, "MALFORMED_QUERY",
                         "SOQL statements cannot be longer than %d characters", SOQL_MAX_LEN);
    else
        rc = parse_statement(&c) != 0 ? -1 : gen_statement(&c, out);
    for (size_t k = 0; k < c.nallocs; k++)
        free(c.allocs[k]);
    free(c.allocs);
    for (int k = 0; k < c.nparams; k++)
        free(c.params[k].s);
    free(c.params);
    free(c.cols);
    return rc;
}

void
soql_plan_free(soql_plan *p)
{
    if (p == NULL)
        return;
    free(p->sql);
    free(p->count_sql);
    for (int i = 0; i < p->nparams; i++)
        free(p->params[i].s);
    free(p->params);
    free(p->cols);
    free(p->rels);
    free(p);
}

int
soql_bind(sqlite3_stmt *stmt, const soql_plan *p)
{
    for (int i = 0; i < p->nparams; i++) {
        const soql_param *sp = &p->params[i];
        int rc;
        switch (sp->type) {
        case SP_INT: rc = sqlite3_bind_int64(stmt, i + 1, sp->i); break;
        case SP_REAL: rc = sqlite3_bind_double(stmt, i + 1, sp->r); break;
        case SP_TEXT: rc = sqlite3_bind_text(stmt, i + 1, sp->s, -1, SQLITE_STATIC); break;
        default: rc = sqlite3_bind_null(stmt, i + 1);
        }
        if (rc != SQLITE_OK)
            return -1;
    }
    return 0;
}
