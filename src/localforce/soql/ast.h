/*
 * ast: what the SOQL compiler's passes share: tokens, the AST, the compiler's
 * state and its arena, and errors in Salesforce's layout
 * ("ERROR at Row:1:Column:N", MALFORMED_QUERY and friends). Limits that bound
 * every pass are here too.
 */
#ifndef AST_H
#define AST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "err.h"
#include "sb.h"
#include "soql.h"

#define SOQL_MAX_LEN      100000 /* characters in a statement, as Salesforce */
#define SOQL_MAX_DEPTH    64     /* nested parentheses in WHERE, as written */
#define SOQL_MAX_NEST     16     /* parentheses in the SQL for WHERE (SQLite's parser stack) */
#define CHAIN_FLAT        200    /* longest flat AND/OR chain handed to SQLite */
#define CHAIN_CHUNK       100    /* longer chains go in parenthesised chunks of this size */
#define SOQL_MAX_HOPS     5      /* relationships in one field path */
#define SOQL_MAX_SEGS     (SOQL_MAX_HOPS + 2) /* + the field + an object/alias prefix */
#define SOQL_MAX_RELS     55    /* distinct parent relationships per query, as Salesforce */
#define SOQL_MAX_PARAMS   20000 /* bound values (SQLite allows 32766) */
#define SOQL_MAX_COLS     1900  /* result columns (SQLite allows 2000) */
#define SOQL_MAX_OFFSET   2000
#define SOQL_FIELDS_LIMIT 200   /* FIELDS(ALL|CUSTOM) needs LIMIT <= 200 */
#define LIKE_MAX          50000 /* bytes in a LIKE pattern (SQLite's limit) */
#define ERR_WINDOW        200   /* statement characters shown around an error */
#define ERR_TOKEN_MAX     120   /* bytes of a token quoted in a message */
#define MS_PER_DAY        86400000LL

/* ------------------------------------------------------------------------ */
/* Tokens                                                                    */

typedef enum {
    TK_EOF,
    TK_IDENT,
    TK_STRING,
    TK_NUMBER,
    TK_DATE,
    TK_DATETIME,
    TK_LPAREN,
    TK_RPAREN,
    TK_COMMA,
    TK_DOT,
    TK_COLON,
    TK_EQ,
    TK_NE,
    TK_LT,
    TK_LE,
    TK_GT,
    TK_GE,
} tkind;

typedef struct token {
    tkind k;
    size_t pos, len; /* byte span in the statement */
} token;

/* ------------------------------------------------------------------------ */
/* AST                                                                       */

typedef struct fpath { /* a.b.c as written */
    token seg[SOQL_MAX_SEGS];
    int nseg;
    size_t pos, end; /* span of the whole path */
} fpath;

typedef enum { SI_FIELD, SI_COUNT, SI_FIELDS } sikind;
typedef enum { FIELDS_ALL, FIELDS_STANDARD, FIELDS_CUSTOM } fields_kind;

typedef struct sel_item {
    sikind k;
    fpath path;     /* SI_FIELD */
    fields_kind fk; /* SI_FIELDS */
    size_t pos;
} sel_item;

typedef enum { V_NULL, V_TRUE, V_FALSE, V_NUMBER, V_STRING, V_DATE, V_DATETIME, V_DATEFN } vkind;

typedef enum {
    DF_TODAY,
    DF_YESTERDAY,
    DF_TOMORROW,
    DF_LAST_N_DAYS,
    DF_NEXT_N_DAYS,
    DF_N_DAYS_AGO,
    DF_LAST_90_DAYS,
    DF_NEXT_90_DAYS,
    DF_THIS_MONTH,
    DF_LAST_MONTH,
    DF_NEXT_MONTH,
    DF_LAST_N_MONTHS,
    DF_NEXT_N_MONTHS,
    DF_THIS_YEAR,
    DF_LAST_YEAR,
    DF_NEXT_YEAR,
    DF_LAST_N_YEARS,
    DF_NEXT_N_YEARS,
} datefn;

typedef struct value {
    vkind k;
    token tok; /* the literal (for V_DATEFN, the name) */
    datefn fn;
    int64_t n; /* LAST_N_DAYS:n etc. */
} value;

typedef enum {
    OP_EQ,
    OP_NE,
    OP_LT,
    OP_LE,
    OP_GT,
    OP_GE,
    OP_LIKE,
    OP_IN,
    OP_NOT_IN,
    OP_INCLUDES,
    OP_EXCLUDES
} cmpop;

typedef enum { CN_AND, CN_OR, CN_NOT, CN_CMP } cnkind;

typedef struct cnode {
    cnkind k;
    size_t pos;          /* where it starts in the statement */
    struct cnode **kids; /* CN_AND, CN_OR: nkids >= 2; CN_NOT: one */
    int nkids;
    fpath path; /* CN_CMP */
    cmpop op;
    size_t op_pos;
    value *vals; /* one, or the list of IN/INCLUDES/EXCLUDES */
    int nvals;
} cnode;

typedef struct order_item {
    fpath path;
    bool desc;
    bool nulls_first;
} order_item;

/* ------------------------------------------------------------------------ */
/* The compiler's state                                                      */

typedef struct compiler {
    const lf_schema *s;
    const char *q;
    size_t qlen;
    int64_t now_ms;
    bool all_rows;
    err_t *e;

    /* tokenizer: la[0] is the current token, la[1] the next, nla how many are valid */
    size_t lexpos;
    token la[2];
    int nla;

    /* everything the parser allocates, freed together */
    void **allocs;
    size_t nallocs, cap_allocs;

    /* the parsed statement */
    sel_item *items;
    int nitems, cap_items;
    token obj_tok;
    token alias_tok; /* TK_EOF if none */
    cnode *where;
    order_item *order;
    int norder, cap_order;
    token limit_tok, offset_tok; /* TK_EOF if absent */

    /* the plan under construction */
    const lf_object *obj;
    soql_param *params;
    int nparams, cap_params;
    soql_col *cols;
    int ncols, cap_cols;
    soql_rel rels[SOQL_MAX_RELS];
    const lf_field *rel_ref[SOQL_MAX_RELS]; /* the reference field each rel follows */
    int nrels;
    bool *seen[SOQL_MAX_RELS + 1]; /* selected fields per level, by field index */
} compiler;

void *ast_alloc(compiler *c, size_t n);
void *ast_grow(compiler *c, void *arr, int n, int *cap, size_t elem);
bool ast_is_cont(unsigned char ch);
size_t ast_count_chars(const char *q, size_t a, size_t b);
bool ast_tok_is(const compiler *c, const token *t, const char *kw);
/* Fill c->e with "\n<text>\n<spaces>^\nERROR at Row:R:Column:C\n<what>" for the
 * error at byte pos. Returns -1. */
int ast_fail_at(compiler *c, size_t pos, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void ast_cut_text(const char *s, size_t len, char *out, size_t outsz);
void ast_tok_text(const compiler *c, const token *t, char *out, size_t outsz);
int ast_unexpected(compiler *c, const token *t);
int ast_unsupported(compiler *c, size_t pos, const char *what);

#endif
