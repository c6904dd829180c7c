/*
 * parser: the recursive-descent SOQL parser: statement text -> AST (SELECT list,
 * FROM, WHERE, ORDER BY, LIMIT, OFFSET). Recursion only through parentheses,
 * at most SOQL_MAX_DEPTH deep. The whole statement is parsed before any name
 * is resolved, so syntax errors come first, as in Salesforce.
 */
#ifndef PARSER_H
#define PARSER_H

#include "ast.h"

int parse_too_many_levels(compiler *c, size_t pos);
int64_t parse_uint_value(const compiler *c, const token *t);
int parse_statement(compiler *c);

#endif
