/*
 * lexer: the SOQL tokenizer: identifiers, keywords, numbers, quoted strings with
 * their escapes, date and datetime literals; one token of lookahead, produced
 * on demand.
 */
#ifndef LEXER_H
#define LEXER_H

#include "ast.h"

typedef enum { DEC_CHECK, DEC_PLAIN, DEC_LIKE } decmode;

bool lex_is_digit(int ch);
int lex_decode_string(compiler *c, const token *t, decmode mode, sb *out);
int lex_next(compiler *c, token *t);

#endif
