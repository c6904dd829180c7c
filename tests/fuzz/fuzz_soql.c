/*
 * libFuzzer harness: the SOQL compiler.
 *
 * Each input is one SOQL statement (NUL-terminated copy), compiled against
 * the fixture schema (tests/unit/fixture_schema.h) for query and for
 * queryAll. Beyond "no crash, no leak, no hang", two properties are checked:
 * a failure is a well-formed Salesforce error, and a plan that compiles is SQL
 * that SQLite accepts: both statements are prepared, bound and run against the
 * fixture's (empty) tables. Anything else aborts.
 */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/fixture_schema.h"
#include "soql.h"

static lf_schema *schema;
static sqlite3 *db;

static void
die(const char *what, const char *q, const char *detail)
{
    fprintf(stderr, "fuzz_soql: %s\nstatement: %s\ndetail: %s\n", what, q, detail);
    abort();
}

static void
run_sql(const soql_plan *p, const char *sql, const char *q)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        die(sqlite3_errmsg(db), q, sql);
    for (int i = 0; i < p->nparams; i++) {
        const soql_param *sp = &p->params[i];
        int rc;
        switch (sp->type) {
        case SP_INT: rc = sqlite3_bind_int64(st, i + 1, sp->i); break;
        case SP_REAL: rc = sqlite3_bind_double(st, i + 1, sp->r); break;
        case SP_TEXT: rc = sqlite3_bind_text(st, i + 1, sp->s, -1, SQLITE_STATIC); break;
        default: rc = sqlite3_bind_null(st, i + 1); break;
        }
        if (rc != SQLITE_OK)
            die("bind failed", q, sql);
    }
    if (sqlite3_bind_parameter_count(st) > p->nparams)
        die("unbound parameter", q, sql);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        ;
    if (rc != SQLITE_DONE)
        die(sqlite3_errmsg(db), q, sql);
    sqlite3_finalize(st);
}

static void
check_plan(const soql_plan *p, const char *q)
{
    if (p->sql == NULL || p->count_sql == NULL || p->object == NULL)
        die("incomplete plan", q, "");
    for (int i = 0; i < p->ncols; i++)
        if (p->cols[i].field == NULL || p->cols[i].rel >= p->nrels || p->cols[i].sql_col != i + 1)
            die("bad column", q, p->sql);
    for (int i = 0; i < p->nrels; i++)
        if (p->rels[i].parent >= i || p->rels[i].object == NULL || p->rels[i].name == NULL)
            die("bad relationship", q, p->sql);
    run_sql(p, p->sql, q);
    run_sql(p, p->count_sql, q);
}

static void
check_error(const err_t *e, const char *q)
{
    static const char *const codes[] = {"MALFORMED_QUERY", "INVALID_FIELD", "INVALID_TYPE",
                                        "NUMBER_OUTSIDE_VALID_RANGE",
                                        "INVALID_QUERY_FILTER_OPERATOR"};
    bool known = false;
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        known = known || strcmp(e->code, codes[i]) == 0;
    if (e->http != 400 || !known)
        die("unexpected error code", q, e->code);
    if (e->msg[0] != '\n' || strstr(e->msg, "^\nERROR at Row:") == NULL)
        die("error message not in Salesforce's layout", q, e->msg);
}

static void
cleanup(void)
{
    sqlite3_close(db);
    fixture_free(schema);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (schema == NULL) {
        schema = fixture_schema();
        if (sqlite3_open(":memory:", &db) != SQLITE_OK || fixture_create_tables(db, schema) != 0)
            abort();
        atexit(cleanup);
    }
    char *q = xmalloc(size + 1);
    memcpy(q, data, size);
    q[size] = '\0';
    for (int all_rows = 0; all_rows < 2; all_rows++) {
        soql_plan *p = NULL;
        err_t e;
        memset(&e, 0, sizeof e);
        if (soql_compile(schema, q, all_rows, 1718452800000LL, &p, &e) == 0) {
            check_plan(p, q);
            soql_plan_free(p);
        } else {
            if (p != NULL)
                die("plan returned with an error", q, e.msg);
            check_error(&e, q);
        }
    }
    free(q);
    return 0;
}
