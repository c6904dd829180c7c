/*
 * soql: the SOQL parser and its translation to SQLite SQL.
 *
 * soql_compile() parses a SOQL statement, resolves every name against the
 * schema, type-checks literals against fields, and produces a plan: one SQL
 * statement for the rows (with bound parameters only, never spliced values),
 * one for the total count, and a description of the output columns so the
 * caller can write each row as Salesforce JSON.
 *
 * Supported: SELECT field list, parent relationship paths (Teacher__r.Email__c,
 * up to 5 levels), COUNT(); FROM one object; WHERE with = != <> < <= > >=,
 * LIKE, IN (...), NOT IN (...), INCLUDES/EXCLUDES for multipicklists,
 * AND/OR/NOT, parentheses, string/number/boolean/null literals, unquoted date
 * and datetime literals and the date literals TODAY, YESTERDAY, TOMORROW,
 * LAST_N_DAYS:n, NEXT_N_DAYS:n; ORDER BY with ASC/DESC and NULLS FIRST/LAST;
 * LIMIT; OFFSET (at most 2000).
 *
 * Errors are Salesforce's: MALFORMED_QUERY, INVALID_FIELD, INVALID_TYPE,
 * NUMBER_OUTSIDE_VALID_RANGE, with the message in Salesforce's layout:
 *     "\n<statement>\n<spaces>^\nERROR at Row:1:Column:N\n<what>".
 *
 * Translation rules (the SQLite layout is described in schema.h):
 *  - the FROM object is aliased t0; each distinct parent relationship path gets
 *    a LEFT JOIN aliased t1, t2, ... on parent."Id" = child."<ReferenceField>";
 *  - unless all_rows, the WHERE clause gets t0."IsDeleted" = 0 (parents are
 *    joined whatever their IsDeleted, as Salesforce does);
 *  - string comparisons are case-insensitive (columns are COLLATE NOCASE);
 *    Id and reference comparisons take 15- or 18-character IDs (literals are
 *    normalised to 18); datetime literals become ms since epoch; date literals
 *    stay "YYYY-MM-DD"; booleans become 0/1;
 *  - "x = null" becomes "x IS NULL", "x != null" becomes "x IS NOT NULL";
 *  - default ordering: ASC NULLS FIRST, DESC NULLS LAST (as in Salesforce); when
 *    ORDER BY is given, t0.rowid is appended as the last key so paging is stable;
 *    without ORDER BY rows come in t0.rowid order (insertion order).
 */
#ifndef SOQL_H
#define SOQL_H

#include <stdbool.h>
#include <stdint.h>

#include <sqlite3.h>

#include "err.h"
#include "schema.h"

typedef enum { SP_NULL, SP_INT, SP_REAL, SP_TEXT } soql_ptype;

typedef struct soql_param { /* bound as ?1, ?2, ... in plan order */
    soql_ptype type;
    int64_t i;
    double r;
    char *s; /* owned */
} soql_param;

/* A parent relationship the query walks. rels[0..nrels) in join order. */
typedef struct soql_rel {
    const char *name;        /* canonical relationship name, e.g. "Teacher__r" */
    const lf_object *object; /* the parent object */
    int parent;              /* index of the rel it hangs off, or -1 for the root */
    int id_col;              /* SQL result column holding the parent's Id */
} soql_rel;

/* One selected field, in SELECT order. */
typedef struct soql_col {
    const lf_field *field; /* its definition (canonical name, type) */
    int rel;               /* -1 for a field of the FROM object, else rels[] index */
    int sql_col;           /* SQL result column holding its value */
} soql_col;

typedef struct soql_plan {
    const lf_object *object; /* the FROM object */
    bool count_only;         /* SELECT COUNT() */
    bool all_rows;           /* compiled for queryAll */
    char *sql;               /* rows; result column 0 is always t0."Id" */
    char *count_sql;         /* one row, one column: the number of rows sql returns
                                (honours LIMIT and OFFSET) */
    soql_param *params;      /* shared by sql and count_sql */
    int nparams;
    soql_col *cols;
    int ncols;
    soql_rel *rels;
    int nrels;
    int64_t limit;  /* -1 if none */
    int64_t offset; /* 0 if none */
} soql_plan;

/* Compile q against schema s. all_rows: include IsDeleted = true rows (queryAll).
 * now_ms: "now", for TODAY and friends (pass util_now_ms()). */
int soql_compile(const lf_schema *s, const char *q, bool all_rows, int64_t now_ms, soql_plan **out,
                 err_t *e);
void soql_plan_free(soql_plan *p);

/* Bind p's parameters (?1, ?2, ...) to stmt, prepared from p->sql or
 * p->count_sql (text is bound SQLITE_STATIC: p must outlive stmt's use).
 * 0, or -1 if SQLite refuses one. */
int soql_bind(sqlite3_stmt *stmt, const soql_plan *p);

#endif
