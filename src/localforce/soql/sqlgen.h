/*
 * sqlgen: SQLite SQL from the resolved AST: WHERE conditions with SOQL's null
 * semantics, the SELECT list and its output columns, ORDER BY, LIMIT/OFFSET,
 * the rows statement and the count statement.
 */
#ifndef SQLGEN_H
#define SQLGEN_H

#include "ast.h"

int gen_statement(compiler *c, soql_plan **out);

#endif
